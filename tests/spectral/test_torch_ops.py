"""The fast torch spectral layer against independent references: numpy's FFT OaA (masked spectra),
finite differences (gradients), numpy rfft2/irfft2 (the DFT matrices)."""

from __future__ import annotations

import functools
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from flexspec.errors import UsageError  # noqa: E402
from flexspec.spectral import torch_ops  # noqa: E402
from flexspec.spectral.geometry import MAX_FFT_SIZE  # noqa: E402
from flexspec.spectral.oaa import oaa_conv2d_spectral  # noqa: E402
from flexspec.spectral.torch_ops import (  # noqa: E402
    PRODUCT_FORMS,
    SpectralConv2d,
    dft_matrices,
    frequency_major,
    oaa_frequency_major,
    plan_spectral,
    to_spectral,
)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    pass


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.sampled_from([1, 3, 5]), st.integers(0, 6), st.integers(0, 2),
       st.integers(1, 13), st.integers(1, 13), st.floats(0.05, 1.0), st.integers(0, 99))
def test_masked_layer_equals_numpy_fft_reference(cin, cout, k, extra, padding, height, width, keep, seed):
    n = k + extra
    if n < 2 or height + 2 * padding < k or width + 2 * padding < k:
        return
    rng = np.random.default_rng(seed)
    layer = SpectralConv2d(cin, cout, k, padding, n).double()
    wf = rng.standard_normal((cout, cin, n, n // 2 + 1)) + 1j * rng.standard_normal((cout, cin, n, n // 2 + 1))
    layer.set_spectrum(torch.from_numpy(wf))
    mask = rng.random(wf.shape) < keep
    layer.set_mask(mask)
    x = rng.standard_normal((2, cin, height, width))
    got = layer(torch.from_numpy(x)).detach().numpy()
    ref = oaa_conv2d_spectral(x, np.where(mask, wf, 0), k, padding, layer.bias.detach().numpy())
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1e-10 * max(1.0, np.abs(ref).max())
    assert np.array_equal(layer.mask_standard().numpy(), mask)
    np.testing.assert_array_equal(layer.spectrum().detach().numpy(), np.where(mask, wf, 0))


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    layer = SpectralConv2d(2, 3, 3, 1, 6).double()
    layer.set_mask(torch.rand(3, 2, 6, 4) < 0.6)
    x = torch.randn(2, 2, 7, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp, w: torch.func.functional_call(layer, {"weight": w}, (inp,)),
                                    (x, layer.weight.detach().clone().requires_grad_(True)))


@pytest.mark.parametrize("n,tile", [(8, 6), (16, 14), (5, 3), (4, 4)])
def test_dft_matrices_are_rfft2_and_irfft2(n, tile):
    d, g = dft_matrices(n, tile)
    rng = np.random.default_rng(n)
    t = rng.standard_normal((tile, tile))
    spec = np.fft.rfft2(t, s=(n, n)).ravel()
    got = (d.numpy() @ t.ravel())
    np.testing.assert_allclose(got[:spec.size] + 1j * got[spec.size:], spec, atol=1e-12)
    y = np.fft.rfft2(rng.standard_normal((n, n))).ravel()
    back = g.numpy() @ np.concatenate([y.real, y.imag])
    np.testing.assert_allclose(back, np.fft.irfft2(y.reshape(n, n // 2 + 1), s=(n, n)).ravel(), atol=1e-12)


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(2, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.Conv2d(8, 4, 1))


def test_auto_fft_size_and_keep_conv2d_report_each_choice():
    model, x = _net(), torch.randn(2, 2, 20, 20)
    lines = []
    spec = to_spectral(model, "auto", example_input=x, keep_conv2d=True, candidates=(8, 16), report=lines.append)
    assert len(lines) == 2 and all(line.startswith(("0:", "2:")) for line in lines)  # the 1x1 conv is not eligible
    plan = plan_spectral(model, x, (8, 16), keep_conv2d=False, reps=1)
    assert set(plan) == {"0", "2"} and all(c.fft_size in (8, 16) for c in plan.values())
    assert plan["2"].input_shape == (2, 8, 20, 20) and set(plan["2"].seconds) == {"conv2d", 8, 16}
    for name, line in zip(("0", "2"), lines, strict=True):
        kept = "conv2d (spectral does not pay)" in line
        assert isinstance(spec.get_submodule(name), torch.nn.Conv2d if kept else SpectralConv2d)
    torch.testing.assert_close(spec(x), model(x), atol=1e-5, rtol=1e-5)


def test_per_layer_fft_sizes_and_limits():
    model = _net()
    spec = to_spectral(model, {"0": 16, "2": None})
    assert spec[0].fft_size == 16 and isinstance(spec[2], torch.nn.Conv2d)
    with pytest.raises(UsageError, match=f"above the supported maximum {MAX_FFT_SIZE}"):
        to_spectral(model, 1024)
    with pytest.raises(UsageError, match="needs example_input"):
        to_spectral(model, "auto")
    with pytest.raises(UsageError, match="no eligible convolution named"):
        to_spectral(model, {"7": 8})
    with pytest.raises(UsageError, match="does not match kernels"):
        SpectralConv2d(2, 3, 3, 1, 8).set_mask(np.ones((3, 2, 8, 4), bool))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 4), st.sampled_from([1, 3, 5]), st.integers(0, 5),
       st.integers(0, 3), st.integers(1, 12), st.integers(1, 12), st.booleans(), st.sampled_from(PRODUCT_FORMS),
       st.booleans(), st.booleans(), st.integers(0, 99))
def test_forward_and_all_gradients_equal_conv2d(batch, cin, cout, k, extra, padding, height, width, channels_last,
                                                form, input_grad, summed, seed):
    """Output and the gradients of input, spatial kernels and bias against torch conv2d (float64): the
    spectrum is made from the spatial kernels by a differentiable rfft2, so the kernel gradient goes
    through the layer's own backward pass.  Every product form (four GEMMs on the planes, two on the
    stacked planes, one on the channel-major real block) is drawn whatever the channel count; the input
    may need no gradient (a first layer), and the upstream gradient is a dense random tensor or the
    expanded (stride-0) one of ``out.sum()``."""
    n = max(k + extra, 2)
    if height + 2 * padding < k or width + 2 * padding < k:
        return
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cin, height, width, dtype=torch.float64, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(cout, cin, k, k, dtype=torch.float64, generator=gen)
    bias = torch.randn(cout, dtype=torch.float64, generator=gen)
    up = torch.randn(batch, cout, height + 2 * padding - k + 1, width + 2 * padding - k + 1, dtype=torch.float64,
                     generator=gen)
    grads = []
    for spectral in (False, True):
        xi = x.clone().requires_grad_(input_grad)
        wi, bi = (t.clone().requires_grad_(True) for t in (w, bias))
        if spectral:
            wf = torch.fft.rfft2(torch.flip(wi, dims=(-2, -1)), s=(n, n))
            with mock.patch.object(torch_ops, "product_form", lambda cin, cout, n, lanes: form):
                out = oaa_frequency_major(xi, frequency_major(wf), n, k, padding, bi)
        else:
            out = torch.nn.functional.conv2d(xi, wi, bi, padding=padding)
        (out.sum() if summed else (out * up).sum()).backward()
        grads.append((out.detach(), xi.grad, wi.grad, bi.grad))
    assert (grads[1][1] is None) == (not input_grad)
    for got, want in zip(grads[1], grads[0], strict=True):
        if want is not None:
            torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4),
       st.sampled_from([1, 3, 5]), st.integers(0, 5), st.integers(0, 6), st.integers(1, 16), st.integers(1, 12),
       st.sampled_from(["nchw", "channels_last", "strided"]), st.sampled_from(PRODUCT_FORMS), st.booleans(),
       st.integers(1, 3), st.integers(0, 99))
def test_inference_in_chunks_equals_conv2d(batch, images, rows, cin, cout, k, extra, padding, height, width, layout,
                                           form, bias, threads, seed):
    """Without autograd the layer runs the chain on chunks of whole images or strips of tile rows,
    carrying what a strip's blocks spill into the next, on 1-3 worker threads (torch threads): any
    chunk (the last one may be smaller), any product form, padding beyond K - 1, NCHW, channels-last
    or non-contiguous input, against torch conv2d in float64; the module under ``torch.no_grad`` and
    ``torch.inference_mode``."""
    n = max(k + extra, 2)
    if height + 2 * padding < k or width + 2 * padding < k:
        return
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cin, height, width + 2, dtype=torch.float64, generator=gen)
    x = {"nchw": x[..., :width].contiguous(), "channels_last": x[..., :width].contiguous(
        memory_format=torch.channels_last), "strided": x[..., 1:width + 1]}[layout]
    w = torch.randn(cout, cin, k, k, dtype=torch.float64, generator=gen)
    b = torch.randn(cout, dtype=torch.float64, generator=gen) if bias else None
    want = torch.nn.functional.conv2d(x, w, b, padding=padding)
    conv = torch.nn.Conv2d(cin, cout, k, padding=padding, bias=bias).double()
    with torch.no_grad():
        conv.weight.copy_(w)
        if bias:
            conv.bias.copy_(b)
    layer = SpectralConv2d.from_conv2d(conv, n)
    with mock.patch.object(torch_ops, "product_form", lambda cin, cout, n, lanes: form), \
            mock.patch.object(torch_ops, "inference_chunk", lambda *args: (images, rows)):
        torch.set_num_threads(threads)  # the fixture restores one thread
        with torch.no_grad():
            got = layer(x)
        with torch.inference_mode():
            got_inference = layer(x)
        torch.set_num_threads(1)
    for out in (got, got_inference):
        assert out.shape == want.shape and not out.requires_grad
        torch.testing.assert_close(out, want, atol=1e-9, rtol=1e-9)


def test_inference_chunk_bounds_the_intermediates_and_the_kernel_rereads():
    """VGG16's conv1_2 (64 -> 64 at 224x224, N = 8: 38 x 38 tiles of 6 x 6): a strip of tile rows whose
    tiles, spectra, products and blocks fit the budget; conv4_2 at N = 16 reads 302 MB of kernels per
    chunk against ~5 MB of intermediates per image: one chunk for a batch of 8; a larger budget takes
    whole images, then more of them."""
    per_tile = 4 * (36 * 64 + 80 * 64 + 80 * 64 + 64 * 64)  # float32, the planes form: tiles, spectra, products, blocks
    chunk = functools.partial(torch_ops.inference_chunk, 64, 64, 8, 3, 224, 224, 4)
    assert chunk(chunk_bytes=5 * 38 * per_tile) == (1, 5)
    assert chunk(chunk_bytes=5 * 38 * per_tile - 1) == (1, 4)
    assert chunk(chunk_bytes=1) == (1, 1)
    assert chunk(chunk_bytes=3 * 38 * 38 * per_tile) == (3, 38)
    assert chunk(chunk_bytes=3 * 38 * 38 * per_tile - 1) == (2, 38)
    assert torch_ops.inference_chunk(512, 512, 16, 3, 28, 28, 4)[0] >= 8
    assert torch_ops.inference_chunk(4, 4, 4, 3, 28, 28, 4, chunk_bytes=1) == (1, 1)  # 2-pixel tiles: 2-row spill
    assert torch_ops.inference_chunk(4, 4, 6, 5, 28, 28, 4, chunk_bytes=1) == (1, 2)  # 4-row spill, 2-row tiles


def test_layer_refuses_what_it_cannot_compute():
    layer = SpectralConv2d(2, 3, 3, 1, 8)
    with pytest.raises(UsageError, match=r"input must have shape \[B, 2, H, W\]"):
        layer(torch.zeros(1, 3, 8, 8))
    with pytest.raises(UsageError, match="float32 or float64"):
        layer(torch.zeros(1, 2, 8, 8, dtype=torch.bfloat16))
    with pytest.raises(UsageError, match="larger than the padded"):
        SpectralConv2d(2, 3, 5, 0, 8)(torch.zeros(1, 2, 3, 3))
    with pytest.raises(UsageError, match=r"kernels must have shape \[2, 40, Cin, Cout\]"):
        oaa_frequency_major(torch.zeros(1, 2, 8, 8), torch.zeros(2, 24, 2, 3), 8, 3, 1)
    with pytest.raises(UsageError, match=r"bias must have shape \(3,\)"):
        oaa_frequency_major(torch.zeros(1, 2, 8, 8), torch.zeros(2, 40, 2, 3), 8, 3, 1, torch.zeros(2))

