"""VGG16 kernels (synthesized or from a state_dict) and the frequency keep-probability map."""

from __future__ import annotations

import numpy as np
import pytest

from flexspec.errors import InputFileError, UnknownNameError
from flexspec.spectral.sparse import SparseSpectralKernels, mask_violations
from flexspec.spectral.synth import (
    VGG16_FEATURE_INDEX,
    keep_probability,
    low_frequency_share,
    plot_keep_probability,
    vgg16_kernels,
)
from flexspec.spectral.transform import spatial_kernels, spectral_kernels
from flexspec.workload.zoo import vgg16

SMALL = ("conv1_1", "conv2_1")


def test_synthesized_vgg16_is_deterministic_documented_and_pruned():
    a = vgg16_kernels(8, 0.25, seed=0, layers=SMALL)
    b = vgg16_kernels(8, 0.25, seed=0, layers=SMALL)
    c = vgg16_kernels(8, 0.25, seed=1, layers=SMALL)
    assert a.equals(b) and not a.layers["conv1_1"].equals(c.layers["conv1_1"])
    assert a.provenance.startswith("synthesized from seed 0 by statistics transfer") and not a.is_real
    zoo = {layer.name: layer for layer in vgg16().spectral_layers}
    for name, ssk in a.layers.items():
        assert (ssk.out_channels, ssk.in_channels) == (zoo[name].out_channels, zoo[name].in_channels)
        assert 0.25 - 1 / ssk.mask().size <= ssk.density <= 0.25
        assert mask_violations(ssk.mask(), 8) == 0
    with pytest.raises(UnknownNameError):
        vgg16_kernels(8, 0.25, layers=("conv9_9",))


def test_user_state_dict_is_used_and_reported(tmp_path):
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    sd = {}
    for layer in vgg16().spectral_layers:
        idx = VGG16_FEATURE_INDEX[layer.name]
        shape = (layer.out_channels, layer.in_channels, 3, 3)
        sd[f"features.{idx}.weight"] = torch.zeros(shape) if layer.name != "conv1_1" else torch.randn(shape, generator=gen)
        sd[f"features.{idx}.bias"] = torch.arange(layer.out_channels, dtype=torch.float32)
    sd["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg16.pth"
    torch.save(sd, path)
    net = vgg16_kernels(8, 1.0, state_dict_path=path, layers=("conv1_1",))
    assert net.is_real and net.provenance == f"user state_dict {path}"
    w = sd["features.0.weight"].numpy()
    np.testing.assert_allclose(spatial_kernels(net.layers["conv1_1"].dense(), 3), w, atol=1e-5)
    assert np.array_equal(net.biases["conv1_1"], np.arange(64, dtype=np.float32))
    # a broken file names the file and the key
    del sd["features.28.weight"]
    torch.save(sd, path)
    with pytest.raises(InputFileError, match=r"vgg16.pth, field 'features.28.weight'"):
        vgg16_kernels(8, 0.5, state_dict_path=path)
    sd["features.28.weight"] = torch.zeros(512, 512, 5, 5)
    torch.save(sd, path)
    with pytest.raises(InputFileError, match="features.28.weight.*VGG16 needs"):
        vgg16_kernels(8, 0.5, state_dict_path=path)
    with pytest.raises(InputFileError, match="not found"):
        vgg16_kernels(8, 0.5, state_dict_path=tmp_path / "nope.pth")


def test_keep_probability_against_counting():
    rng = np.random.default_rng(0)
    wf = spectral_kernels(rng.standard_normal((5, 4, 3, 3)), 8)
    from flexspec.spectral.prune import magnitude_mask

    mask = magnitude_mask(wf, 0.3)
    ssk = SparseSpectralKernels.from_dense(wf, mask, 3)
    p = keep_probability(ssk)
    assert p.shape == (8, 5)
    np.testing.assert_allclose(p, mask.mean(axis=(0, 1)))
    assert np.isclose((p * 20).sum(), ssk.nnz)
    share, area = low_frequency_share(ssk)
    rows = np.minimum(np.arange(8), 8 - np.arange(8))[:, None]
    low = np.hypot(rows, np.arange(5)[None, :]) <= 2
    assert np.isclose(share, mask[..., low].sum() / mask.sum()) and np.isclose(area, low.mean())
    net = vgg16_kernels(8, 0.25, layers=("conv1_1",))
    assert plot_keep_probability(net)[:8] == b"\x89PNG\r\n\x1a\n"
