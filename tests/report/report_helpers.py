"""Shared by the report tests: a tiny network (two spectral convs, a stride-2 conv that stays
spatial, relu, pool, linear) that runs the whole pipeline in seconds, and a user kernels file."""

from __future__ import annotations

import numpy as np

from flexspec.workload.layers import ActivationLayer, ConvLayer, LinearLayer, Network, PoolLayer

TINY = "tiny_test_net"


def tiny_network() -> Network:
    return Network(TINY, (8, 16, 16), (
        ConvLayer("c1", 8, 16, 16, 16, 3, 1, 1),
        ActivationLayer("c1_relu", (16, 16, 16)),
        ConvLayer("c2", 16, 16, 16, 16, 3, 1, 1),
        ConvLayer("down", 16, 16, 16, 16, 3, 2, 1),
        PoolLayer("pool", 16, 8, 8, 2, 2),
        LinearLayer("fc", 16 * 4 * 4, 10),
    ))


def weights_file(folder, network, density=0.25, is_real=False, name=None):
    """A SparseNetworkKernels .npz with magnitude-pruned random kernels for ``network``."""
    from flexspec.spectral.prune import magnitude_mask
    from flexspec.spectral.sparse import SparseNetworkKernels, SparseSpectralKernels
    from flexspec.spectral.transform import spectral_kernels

    rng = np.random.default_rng(1)
    layers = {}
    for lay in network.spectral_layers:
        w = rng.standard_normal((lay.out_channels, lay.in_channels, 3, 3)).astype(np.float32)
        wf = spectral_kernels(w, 8)
        layers[lay.name] = SparseSpectralKernels.from_dense(wf, magnitude_mask(wf, density), 3)
    net = SparseNetworkKernels(name or network.name, 8, layers, "test kernels", is_real)
    path = folder / "kernels.npz"
    net.save(path)
    return path
