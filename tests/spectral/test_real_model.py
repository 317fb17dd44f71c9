"""The shipped real model: trained dense weights and pruned sparse kernels (Fashion-MNIST)."""

from __future__ import annotations

import numpy as np
import pytest

from flexspec import datasets
from flexspec.spectral import real_model as rm
from flexspec.spectral.prune import magnitude_prune
from flexspec.spectral.sparse import SparseNetworkKernels, mask_violations
from flexspec.workload.zoo import fmnist_vgg


def test_zoo_entry_matches_the_torch_model_and_shipped_weights():
    net = fmnist_vgg()
    weights = rm.load_dense_weights()
    assert [layer.name for layer in net.spectral_layers] == list(rm.CONV_NAMES)
    for layer in net.spectral_layers:
        assert weights[f"{layer.name}.weight"].shape == (layer.out_channels, layer.in_channels, 3, 3)
    assert net.param_count == sum(v.size for v in weights.values())
    assert rm.dense_metadata()["test_accuracy"] >= 0.80


@pytest.mark.parametrize("method", rm.SHIPPED_METHODS)
@pytest.mark.parametrize("density", rm.SHIPPED_DENSITIES)
def test_shipped_pruned_models_are_real_consistent_and_at_density(method, density):
    net = rm.load_pruned(method, density)
    assert net.is_real and "Fashion-MNIST" in net.provenance and net.method == method
    assert list(net.layers) == list(rm.CONV_NAMES) and net.target_density == density
    for ssk in net.layers.values():
        if method == "admm_hw":  # hardware-aware: every kernel keeps round(d*F) entries (one fewer where a
            per_kernel = ssk.nnz_per_kernel()  # conjugate pair does not fit)
            target = round(density * ssk.num_frequencies)
            assert per_kernel.max() == target and per_kernel.min() >= target - 1
        else:
            assert density - 2 / ssk.mask().size <= ssk.density <= density + 1e-12
        assert mask_violations(ssk.mask(), 8) == 0
        dense = ssk.dense()
        back = np.fft.rfft2(np.fft.irfft2(dense, s=(8, 8)))
        assert np.abs(back - dense).max() < 1e-6 * (1 + np.abs(dense).max())


def _unpruned():
    weights = rm.load_dense_weights()
    layers = magnitude_prune(rm.spectral_spectra(weights), {n: 3 for n in rm.CONV_NAMES}, 1.0)
    return weights, SparseNetworkKernels(
        rm.NAME, 8, layers, "test", True, {n: weights[f"{n}.bias"] for n in rm.CONV_NAMES},
        {f"{fc}.{p}": weights[f"{fc}.{p}"] for fc in rm.FC_NAMES for p in ("weight", "bias")})


def test_numpy_sparse_forward_equals_torch_spatial_model():
    torch = pytest.importorskip("torch")
    weights, net = _unpruned()
    images, _ = datasets.fashion_mnist_subset()
    x = datasets.to_float(images[:16])
    model = rm.torch_model().double()  # the exact function, in float64
    model.load_state_dict({k: torch.from_numpy(v).double() for k, v in weights.items()})
    with torch.no_grad():
        want = model(torch.from_numpy(x).double()).numpy()
    # the conversion is exact: only float32 rounding remains (measured 1.5e-7 x max; float32 eps 1.2e-7)
    np.testing.assert_allclose(rm.numpy_forward(net, x), want, rtol=0, atol=2e-6 * np.abs(want).max())


@pytest.mark.parametrize("method", sorted({"admm", rm.DEFAULT_METHOD}))  # per layer, and the default
def test_pruned_model_classifies_real_images(method):
    images, labels = datasets.fashion_mnist_subset()
    images, labels = images[:300], labels[:300]
    _, dense = _unpruned()
    dense_acc = rm.numpy_accuracy(dense, images, labels)
    pruned_acc = rm.numpy_accuracy(rm.load_pruned(method, 0.25), images, labels)
    assert dense_acc >= 0.75
    assert pruned_acc >= dense_acc - 0.10
