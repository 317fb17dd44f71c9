"""OaA spectral convolution against torch.nn.functional.conv2d (an independent reference)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flexspec.errors import UsageError
from flexspec.spectral import oaa_conv2d, spatial_kernels, spectral_kernels
from flexspec.spectral.oaa import overlap_add
from flexspec.spectral.torch_ops import SpectralConv2d, to_spectral


@st.composite
def conv_cases(draw):
    k = draw(st.sampled_from([1, 3, 5]))
    n = draw(st.integers(min_value=max(k + 1, 2), max_value=k + 8))  # tile h = n - k + 1 from 2 to 9
    return dict(
        batch=draw(st.integers(1, 2)),
        cin=draw(st.integers(1, 4)),
        cout=draw(st.integers(1, 4)),
        height=draw(st.integers(1, 15)),
        width=draw(st.integers(1, 15)),
        kernel=k,
        padding=draw(st.integers(0, k + 1)),
        fft=n,
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def _case_arrays(c, dtype):
    rng = np.random.default_rng(c["seed"])
    x = rng.standard_normal((c["batch"], c["cin"], c["height"], c["width"])).astype(dtype)
    w = rng.standard_normal((c["cout"], c["cin"], c["kernel"], c["kernel"])).astype(dtype)
    b = rng.standard_normal(c["cout"]).astype(dtype)
    return x, w, b


def _reference(x, w, b, padding):
    return torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                                      padding=padding).numpy()


def _valid(c):
    return c["height"] + 2 * c["padding"] >= c["kernel"] and c["width"] + 2 * c["padding"] >= c["kernel"]


@settings(max_examples=150, deadline=None)
@given(conv_cases())
def test_numpy_float64_equals_conv2d(c):
    if not _valid(c):
        return
    x, w, b = _case_arrays(c, np.float64)
    got = oaa_conv2d(x, w, c["padding"], c["fft"], b)
    ref = _reference(x, w, b, c["padding"])
    assert got.shape == ref.shape
    assert np.max(np.abs(got - ref)) <= 1e-9


@settings(max_examples=100, deadline=None)
@given(conv_cases())
def test_numpy_float32_equals_conv2d(c):
    if not _valid(c):
        return
    x, w, b = _case_arrays(c, np.float32)
    got = oaa_conv2d(x, w, c["padding"], c["fft"], b)
    ref = _reference(x, w, b, c["padding"])
    assert got.dtype == np.float32
    assert np.max(np.abs(got - ref)) <= 1e-4 * max(np.max(np.abs(ref)), 1e-30)


@settings(max_examples=60, deadline=None)
@given(conv_cases(), st.sampled_from([torch.float32, torch.float64]))
def test_torch_spectral_conv_equals_conv2d_with_gradients(c, dtype):
    if not _valid(c):
        return
    x, w, b = _case_arrays(c, np.float64)
    conv = torch.nn.Conv2d(c["cin"], c["cout"], c["kernel"], padding=c["padding"]).to(dtype)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
        conv.bias.copy_(torch.from_numpy(b))
    spec = SpectralConv2d.from_conv2d(conv, c["fft"])
    xt = torch.from_numpy(x).to(dtype).requires_grad_(True)
    xr = xt.detach().clone().requires_grad_(True)
    y, r = spec(xt), conv(xr)
    tol = 1e-9 if dtype == torch.float64 else 1e-4 * max(r.abs().max().item(), 1e-30)
    assert (y - r).abs().max().item() <= tol
    g = torch.from_numpy(np.random.default_rng(1).standard_normal(tuple(r.shape))).to(dtype)
    y.backward(g)
    r.backward(g)
    gtol = 1e-9 if dtype == torch.float64 else 1e-4 * max(xr.grad.abs().max().item(), 1e-30)
    assert (xt.grad - xr.grad).abs().max().item() <= gtol


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.sampled_from([1, 3, 5]), st.integers(0, 4), st.integers(0, 99))
def test_kernel_transform_round_trip(cout, cin, k, extra, seed):
    w = np.random.default_rng(seed).standard_normal((cout, cin, k, k))
    n = k + 1 + extra
    wf = spectral_kernels(w, n)
    assert wf.shape == (cout, cin, n, n // 2 + 1)
    np.testing.assert_allclose(spatial_kernels(wf, k), w, atol=1e-12)


def test_overlap_add_places_blocks_every_tile():
    blocks = np.zeros((1, 1, 2, 1, 4, 4))
    blocks[0, 0, 0, 0] = 1.0
    blocks[0, 0, 1, 0] = 2.0
    out = overlap_add(blocks, tile=2)  # N=4, K=3: blocks overlap by 2
    assert out.shape == (1, 1, 6, 4)
    np.testing.assert_array_equal(out[0, 0, :, 0], [1, 1, 3, 3, 2, 2])


def test_to_spectral_converts_only_eligible_convs():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3, stride=2), torch.nn.Conv2d(4, 4, 1),
    )
    spec = to_spectral(model, fft_size=8)
    kinds = [type(m).__name__ for m in spec]
    assert kinds == ["SpectralConv2d", "ReLU", "Conv2d", "Conv2d"]
    x = torch.randn(2, 1, 12, 10)
    assert torch.allclose(spec(x), model(x), atol=1e-5)
    assert type(model[0]).__name__ == "Conv2d"  # the original is untouched


def test_bad_sizes_are_clear_errors():
    with pytest.raises(UsageError, match="FFT size 2 is smaller"):
        spectral_kernels(np.zeros((1, 1, 3, 3)), 2)
    with pytest.raises(UsageError, match="input channels"):
        oaa_conv2d(np.zeros((2, 5, 5)), np.zeros((1, 3, 3, 3)))
    with pytest.raises(UsageError, match="larger than the padded"):
        oaa_conv2d(np.zeros((1, 2, 2)), np.zeros((1, 1, 3, 3)))
