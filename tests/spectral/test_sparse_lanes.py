"""The vectorised sparse path of SparseOaA: its product kernel against brute force, and the whole
operator against the dense spectral twin (the torch layer holding the same kernels with zeros where
pruned) and against the numpy FFT OaA, on wide layers, row lengths that are not multiples of the
unroll, several chunks of tiles, empty rows, layer-scope and kernel-scope (equal non-zeros per
kernel) magnitude masks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flexspec.errors import UsageError
from flexspec.spectral import _oaa_kernels as kernels
from flexspec.spectral.oaa import oaa_conv2d_spectral
from flexspec.spectral.prune import magnitude_mask
from flexspec.spectral.sparse import SparseOaA, SparseSpectralKernels, conjugate_partner
from flexspec.spectral.transform import spectral_kernels


def _masked_kernels(rng, cout, cin, n, k, keep, scope=None):
    """Random spatial kernels' spectra and a keep mask: random (twins kept together) when ``scope`` is
    None, else magnitude pruning at that scope ("kernel": equal non-zeros per kernel, up to a twin)."""
    wf = spectral_kernels(rng.standard_normal((cout, cin, k, k)), n)
    if scope is not None:
        return wf, magnitude_mask(wf, keep, scope)
    mask = rng.random((cout, cin, n * (n // 2 + 1))) < keep
    mask |= mask[..., conjugate_partner(n)]
    return wf, mask.reshape(wf.shape)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), cout=st.integers(1, 40), cin=st.integers(1, 300),
       chunks=st.integers(1, 3), dtype=st.sampled_from([np.float32, np.float64]))
def test_product_kernel_equals_brute_force(seed, cout, cin, chunks, dtype):
    """sparse_product_lanes on a random CSR (rows of any length, some empty, channel indices past 255)
    equals the dense per-frequency complex product computed by einsum."""
    rng = np.random.default_rng(seed)
    f_count, lanes, unroll = 5, kernels.LANES, kernels.SPARSE_UNROLL
    w = (rng.standard_normal((f_count, cout, cin)) + 1j * rng.standard_normal((f_count, cout, cin)))
    w *= rng.random((f_count, cout, cin)) < rng.uniform(0, 0.6)
    rows = w.reshape(f_count * cout, cin)
    counts = np.count_nonzero(rows, axis=1)
    indptr = np.zeros(rows.shape[0] + 1, dtype=np.int64)
    np.cumsum(-(-counts // unroll) * unroll, out=indptr[1:])
    channels = np.zeros(indptr[-1], dtype=np.uint16)
    values = np.zeros((indptr[-1], 2), dtype=dtype)
    for r in range(rows.shape[0]):
        kept = np.flatnonzero(rows[r])
        channels[indptr[r]:indptr[r] + kept.size] = kept
        values[indptr[r]:indptr[r] + kept.size] = np.stack([rows[r, kept].real, rows[r, kept].imag], 1)
    x = rng.standard_normal((2, f_count, chunks, cin, lanes)).astype(dtype)
    y = np.full((2, f_count, chunks, cout, lanes), np.nan, dtype=dtype)
    kernels.sparse_product_lanes(x, indptr, channels, values, y, 0, 2)  # two frequency ranges, as threads do
    kernels.sparse_product_lanes(x, indptr, channels, values, y, 2, f_count)
    xc = x[0] + 1j * x[1]
    want = np.einsum("fji,fcil->fcjl", w, xc)
    tol = (1e-4 if dtype == np.float32 else 1e-11) * (1 + np.abs(want).max())
    np.testing.assert_allclose(y[0], want.real, rtol=0, atol=tol)
    np.testing.assert_allclose(y[1], want.imag, rtol=0, atol=tol)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 13), inner=st.integers(1, 11), chunks=st.integers(1, 160),
       data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_rows_times_equals_numpy_matmul(seed, rows, inner, chunks, data, dtype):
    """The transforms' small GEMM on any row range and any column range of whole chunks (register tiles
    and their edges) equals numpy's matmul there and leaves every other entry alone."""
    rng = np.random.default_rng(seed)
    cols = chunks * kernels.LANES
    a = rng.standard_normal((rows, inner)).astype(dtype)
    b = rng.standard_normal((inner, cols)).astype(dtype)
    r0 = data.draw(st.integers(0, rows - 1))
    r1 = data.draw(st.integers(r0 + 1, rows))
    c0 = data.draw(st.integers(0, chunks - 1)) * kernels.LANES
    c1 = data.draw(st.integers(c0 // kernels.LANES + 1, chunks)) * kernels.LANES
    out = np.full((rows, cols), 7.0, dtype=dtype)
    kernels.rows_times(a, r0, r1, b, out, c0, c1)
    want = np.full((rows, cols), 7.0)
    want[r0:r1, c0:c1] = a[r0:r1].astype(np.float64) @ b[:, c0:c1]
    np.testing.assert_allclose(out, want, rtol=0, atol=(1e-4 if dtype == np.float32 else 1e-12) * inner)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), cout=st.integers(1, 24), cin=st.integers(1, 48),
       n=st.sampled_from([4, 6, 8]), keep=st.floats(0.01, 1.0), scope=st.sampled_from([None, "layer", "kernel"]),
       batch=st.integers(1, 4), height=st.integers(3, 20), width=st.integers(3, 20), padding=st.integers(0, 3))
def test_operator_equals_numpy_fft_reference(seed, cout, cin, n, keep, scope, batch, height, width, padding):
    """SparseOaA in float64 equals the plain numpy FFT OaA with the pruned kernels, to 1e-10."""
    rng = np.random.default_rng(seed)
    wf, mask = _masked_kernels(rng, cout, cin, n, 3, keep, scope)
    ssk = SparseSpectralKernels.from_dense(wf, mask, 3)
    x = rng.standard_normal((batch, cin, height, width))
    bias = rng.standard_normal(cout)
    got = SparseOaA(ssk, np.float64)(x, padding, bias)
    want = oaa_conv2d_spectral(x, ssk.dense().astype(np.complex128), 3, padding, bias)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * (1 + np.abs(want).max()))


@pytest.mark.parametrize("scope", ["layer", "kernel"])
@pytest.mark.parametrize("batch", [1, 3])
def test_operator_equals_dense_spectral_twin_on_a_wide_layer(scope, batch):
    """A 25%-kept 160 -> 96 channel layer (several chunks of tiles, rows of every length) against the
    torch layer holding the same kernels with zeros where pruned (the benchmark's dense twin)."""
    torch = pytest.importorskip("torch")
    from flexspec.spectral.torch_ops import SpectralConv2d  # torch is an optional extra

    rng = np.random.default_rng(11)
    wf, mask = _masked_kernels(rng, 96, 160, 8, 3, 0.25, scope)
    ssk = SparseSpectralKernels.from_dense(wf, mask, 3)
    per_kernel = ssk.nnz_per_kernel()
    assert abs(ssk.density - 0.25) < 0.02
    assert per_kernel.max() - per_kernel.min() <= (1 if scope == "kernel" else 40)
    twin = SpectralConv2d(160, 96, 3, 1, 8).double()
    twin.set_spectrum(torch.from_numpy(ssk.dense().astype(np.complex128)))
    bias = rng.standard_normal(96)
    with torch.no_grad():
        twin.bias.copy_(torch.from_numpy(bias))
        x = torch.randn(batch, 160, 21, 17, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        want = twin(x).numpy()
    for threads in (1, 2, 3):
        op = SparseOaA(ssk, np.float64, threads=threads)
        assert op.frequency_ranges[0][0] == 0 and op.frequency_ranges[-1][1] == ssk.num_frequencies
        assert len(op.frequency_ranges) == threads
        got = op(x.numpy(), 1, bias)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * np.abs(want).max())
    got32 = SparseOaA(ssk)(x.numpy().astype(np.float32), 1, bias)
    np.testing.assert_allclose(got32, want, rtol=0, atol=1e-4 * np.abs(want).max())


def test_thread_count_is_checked():
    rng = np.random.default_rng(4)
    wf, mask = _masked_kernels(rng, 2, 2, 8, 3, 0.5)
    with pytest.raises(UsageError, match="threads must be a positive integer"):
        SparseOaA(SparseSpectralKernels.from_dense(wf, mask, 3), threads=0)


def test_all_pruned_layer_gives_the_bias():
    rng = np.random.default_rng(2)
    wf, _ = _masked_kernels(rng, 5, 7, 8, 3, 0.5)
    ssk = SparseSpectralKernels.from_dense(wf, np.zeros(wf.shape, bool), 3)
    bias = rng.standard_normal(5)
    got = SparseOaA(ssk, np.float64, threads=2)(rng.standard_normal((2, 7, 9, 9)), 1, bias)
    np.testing.assert_array_equal(got, np.broadcast_to(bias[None, :, None, None], got.shape))
