"""Sparse spectral kernel format: exact round trips, Hermitian consistency, accounting, sparse OaA."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import correlate

from flexspec.errors import InputFileError, UsageError
from flexspec.spectral.oaa import oaa_conv2d_spectral
from flexspec.spectral.sparse import (
    SparseNetworkKernels,
    SparseSpectralKernels,
    conjugate_partner,
    hermitian_error,
    hermitian_project,
    mask_violations,
    self_conjugate,
    sparse_kernel_bits,
    SparseOaA,
    sparse_oaa_conv2d,
)
from flexspec.spectral.transform import spectral_kernels


def _random_case(seed, cout, cin, n, k, keep):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
    wf = spectral_kernels(w, n)
    m = n // 2 + 1
    mask = rng.random((cout, cin, n * m)) < keep
    mask |= mask[..., conjugate_partner(n)]  # make twins agree
    return rng, wf, mask.reshape(cout, cin, n, m)


cases = st.tuples(
    st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(1, 3), st.sampled_from([4, 5, 6, 7, 8]),
    st.sampled_from([2, 3]), st.floats(0.0, 1.0),
)


def test_conjugate_partner_matches_brute_force_fft():
    rng = np.random.default_rng(1)
    for n in (2, 3, 4, 5, 8, 9):
        m = n // 2 + 1
        full = np.fft.fft2(rng.standard_normal((n, n)))
        partner = conjugate_partner(n)
        selfc = self_conjugate(n)
        for f in range(n * m):
            r, c = divmod(f, m)
            twins = [(rr, cc) for rr in range(n) for cc in range(m) if rr == (-r) % n and cc == (-c) % n]
            if twins:
                assert partner[f] == twins[0][0] * m + twins[0][1]
                pr, pc = divmod(int(partner[f]), m)
                assert np.isclose(full[pr, pc], np.conj(full[r, c]))
            else:
                assert partner[f] == f
            assert selfc[f] == (((-r) % n, (-c) % n) == (r, c))
        assert selfc.sum() == (4 if n % 2 == 0 else 1)


@settings(max_examples=40, deadline=None)
@given(case=cases)
def test_round_trip_is_exact(case, tmp_path_factory):
    seed, cout, cin, n, k, keep = case
    _, wf, mask = _random_case(seed, cout, cin, n, k, keep)
    ssk = SparseSpectralKernels.from_dense(wf, mask, k)
    path = tmp_path_factory.mktemp("rt") / "k.npz"
    ssk.save(path)
    back = SparseSpectralKernels.load(path)
    assert back.equals(ssk)
    assert back.values.dtype == np.complex64 and back.indptr.dtype == np.int64
    # dense() puts exactly the kept values back; from_dense(dense()) is the identity
    dense = ssk.dense()
    assert not np.any((dense != 0) & ~mask)  # nothing outside the kept positions
    assert np.array_equal(ssk.mask().reshape(mask.shape), mask)
    assert SparseSpectralKernels.from_dense(dense, mask, k).equals(ssk)
    np.testing.assert_allclose(dense, np.where(mask, wf, 0), atol=1e-5 * (1 + np.abs(wf).max()))
    assert ssk.nnz == mask.sum() and np.array_equal(ssk.nnz_per_kernel(), mask.sum(axis=(2, 3)))
    assert math.isclose(ssk.density, mask.mean())


@settings(max_examples=40, deadline=None)
@given(case=cases)
def test_kept_kernels_are_hermitian_and_invert_to_real(case):
    seed, cout, cin, n, k, keep = case
    rng, wf, mask = _random_case(seed, cout, cin, n, k, keep)
    # break the symmetry of the input on purpose: from_dense must project it back
    noisy = wf + 0.3 * (rng.standard_normal(wf.shape) + 1j * rng.standard_normal(wf.shape))
    ssk = SparseSpectralKernels.from_dense(noisy, mask, k)
    dense = ssk.dense()
    assert mask_violations(ssk.mask(), n) == 0
    assert hermitian_error(dense) < 1e-6 * (1 + np.abs(dense).max())
    # the half-plane is the rfft2 of a real N x N signal: irfft2 loses nothing
    spatial = np.fft.irfft2(dense, s=(n, n))
    np.testing.assert_allclose(np.fft.rfft2(spatial), dense, atol=1e-6 * (1 + np.abs(dense).max()))
    # and through the full complex inverse FFT the signal is real
    full = np.zeros(dense.shape[:2] + (n, n), dtype=complex)
    full[..., : n // 2 + 1] = dense
    cols = np.arange(n // 2 + 1, n)
    full[..., cols] = np.conj(dense[..., (-np.arange(n)) % n, :][..., (-cols) % n])
    assert np.abs(np.fft.ifft2(full).imag).max() < 1e-6 * (1 + np.abs(dense).max())


def test_hermitian_project_is_an_orthogonal_projection():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 5)) + 1j * rng.standard_normal((2, 8, 5))
    p = hermitian_project(x)
    np.testing.assert_allclose(hermitian_project(p), p, atol=1e-12)
    np.testing.assert_allclose(np.fft.irfft2(p, s=(8, 8)), np.fft.irfft2(x, s=(8, 8)), atol=1e-12)
    np.testing.assert_allclose(p, np.fft.rfft2(np.fft.irfft2(x, s=(8, 8))), atol=1e-12)
    assert np.abs(p.reshape(2, 40)[:, self_conjugate(8)].imag).max() < 1e-12


@settings(max_examples=25, deadline=None)
@given(case=cases, padding=st.integers(0, 2), height=st.integers(1, 11), width=st.integers(1, 11))
def test_sparse_conv_equals_dense_with_zeros(case, padding, height, width):
    seed, cout, cin, n, k, keep = case
    rng, wf, mask = _random_case(seed, cout, cin, n, k, keep)
    if height + 2 * padding < k or width + 2 * padding < k:
        return
    ssk = SparseSpectralKernels.from_dense(wf, mask, k)
    x = rng.standard_normal((2, cin, height, width)).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    got = sparse_oaa_conv2d(x, ssk, padding, bias)
    want = oaa_conv2d_spectral(x, np.where(mask, wf, 0), k, padding, bias)
    np.testing.assert_allclose(got, want, atol=1e-4 * (1 + np.abs(want).max()))
    assert sparse_oaa_conv2d(x[0], ssk, padding, bias).shape == got.shape[1:]


@settings(max_examples=25, deadline=None)
@given(case=cases, padding=st.integers(0, 4), batch=st.integers(1, 3), height=st.integers(1, 13),
       width=st.integers(1, 13))
def test_sparse_operator_float64_equals_numpy_fft_reference(case, padding, batch, height, width):
    """SparseOaA (DFT GEMMs, sparse product, numba passes) against the plain numpy FFT OaA, float64, tight."""
    seed, cout, cin, n, k, keep = case
    rng, wf, mask = _random_case(seed, cout, cin, n, k, keep)
    if height + 2 * padding < k or width + 2 * padding < k:
        return
    ssk = SparseSpectralKernels.from_dense(wf, mask, k)
    x = rng.standard_normal((batch, cin, height, width))
    bias = rng.standard_normal(cout)
    op = SparseOaA(ssk, np.float64)
    got = op(x, padding, bias)
    want = oaa_conv2d_spectral(x, ssk.dense().astype(np.complex128), k, padding, bias)
    assert got.dtype == np.float64 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * (1 + np.abs(want).max()))
    np.testing.assert_array_equal(op(x, padding, bias), got)  # the operator is reused, not rebuilt


def test_unpruned_sparse_conv_equals_cross_correlation():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((3, 2, 3, 3))
    x = rng.standard_normal((1, 2, 10, 9))
    ssk = SparseSpectralKernels.from_dense(spectral_kernels(w, 8), None, 3)
    assert ssk.density == 1.0
    got = sparse_oaa_conv2d(x, ssk, padding=1)
    xp = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    want = np.stack([sum(correlate(xp[i], w[j, i], mode="valid") for i in range(2)) for j in range(3)])
    np.testing.assert_allclose(got[0], want, atol=1e-4)


def test_byte_accounting():
    rng, wf, mask = _random_case(7, 4, 3, 8, 3, 0.3)
    ssk = SparseSpectralKernels.from_dense(wf, mask, 3)
    assert ssk.index_bits == 6 and ssk.value_bits == 16 and ssk.entry_bits == 38
    nnz = mask.sum(axis=(2, 3))
    assert ssk.kernel_bits(1, 2) == nnz[1, 2] * 38
    assert np.array_equal(ssk.kernel_bits(), nnz * 38)
    assert ssk.total_bits() == mask.sum() * 38 == ssk.kernel_bits().sum()
    assert ssk.total_bytes() == -(-(int(mask.sum()) * 38) // 8)
    assert ssk.dense_bytes() == 4 * 3 * 40 * 4
    wide = SparseSpectralKernels.from_dense(wf, mask, 3, value_bits=8, index_bits=8)
    assert wide.total_bits() == mask.sum() * 24 == sparse_kernel_bits(mask.sum(), 8, 8)
    for n, bits in ((4, 4), (5, 4), (8, 6), (16, 8), (32, 10)):
        assert SparseSpectralKernels.from_dense(np.zeros((1, 1, n, n // 2 + 1), complex), None, 2).index_bits == bits
    with pytest.raises(UsageError):
        SparseSpectralKernels.from_dense(wf, mask, 3, index_bits=5)


def test_rejects_inconsistent_mask_and_bad_arrays():
    _, wf, _ = _random_case(2, 1, 1, 8, 3, 1.0)
    mask = np.zeros((1, 1, 8, 5), dtype=bool)
    mask[0, 0, 1, 0] = True  # twin (7, 0) pruned
    with pytest.raises(UsageError, match="conjugate twin"):
        SparseSpectralKernels.from_dense(wf, mask, 3)
    with pytest.raises(UsageError, match="strictly increasing"):
        SparseSpectralKernels(8, 3, 1, 1, np.array([0, 2]), np.array([3, 2]), np.ones(2, np.complex64))
    with pytest.raises(UsageError, match="indptr"):
        SparseSpectralKernels(8, 3, 1, 2, np.array([0, 1]), np.array([3]), np.ones(1, np.complex64))
    with pytest.raises(UsageError, match=r"\[0, 40\)"):
        SparseSpectralKernels(8, 3, 1, 1, np.array([0, 1]), np.array([40]), np.ones(1, np.complex64))
    with pytest.raises(UsageError):
        SparseSpectralKernels.from_dense(wf, np.ones((1, 1, 8, 4), bool), 3)


def test_arrays_are_read_only():
    _, wf, mask = _random_case(4, 2, 2, 8, 3, 0.5)
    ssk = SparseSpectralKernels.from_dense(wf, mask, 3)
    with pytest.raises(ValueError):
        ssk.values[0] = 0


def test_bad_files_raise_input_file_error(tmp_path):
    _, wf, mask = _random_case(4, 2, 2, 8, 3, 0.5)
    ssk = SparseSpectralKernels.from_dense(wf, mask, 3)
    with pytest.raises(InputFileError, match="not found"):
        SparseSpectralKernels.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not an npz")
    with pytest.raises(InputFileError, match="junk.npz"):
        SparseSpectralKernels.load(junk)
    good = ssk.save(tmp_path / "good.npz")
    data = dict(np.load(good))
    for field, change in (("indices", None), ("format_version", np.int64(99)), ("kind", np.array("other")),
                          ("indptr", np.zeros(3, np.int64))):
        bad = dict(data)
        if change is None:
            del bad[field]
        else:
            bad[field] = change
        path = tmp_path / f"bad_{field}.npz"
        np.savez(path, **bad)
        with pytest.raises(InputFileError) as err:
            SparseSpectralKernels.load(path)
        assert str(path) in str(err.value)
        if field != "indptr":
            assert field in str(err.value)
    with pytest.raises(InputFileError, match="folder"):
        ssk.save(tmp_path / "no" / "such" / "dir.npz")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_network_container_round_trip(tmp_path):
    layers, biases = {}, {}
    for idx, (cout, cin) in enumerate(((3, 1), (4, 3))):
        _, wf, mask = _random_case(10 + idx, cout, cin, 8, 3, 0.4)
        layers[f"conv{idx}"] = SparseSpectralKernels.from_dense(wf, mask, 3)
        biases[f"conv{idx}"] = np.arange(cout, dtype=np.float32)
    net = SparseNetworkKernels("toy", 8, layers, "synthesized from seed 0 by test", False, biases,
                               {"fc.weight": np.ones((2, 5), np.float32)}, "magnitude", 0.4)
    back = SparseNetworkKernels.load(net.save(tmp_path / "net.npz"))
    assert back.equals(net) and back.provenance == net.provenance and back.is_real is False
    assert list(back.layers) == ["conv0", "conv1"] and back.target_density == 0.4
    assert back.total_bytes() == sum(layer.total_bytes() for layer in layers.values())
    with pytest.raises(InputFileError, match="sparse_network_kernels"):
        SparseSpectralKernels.load(tmp_path / "net.npz")
    with pytest.raises(UsageError, match="bias"):
        SparseNetworkKernels("toy", 8, layers, "x", False, {"conv0": np.zeros(7)})


def test_sparse_operator_refuses_bad_input():
    _, wf, mask = _random_case(1, 3, 2, 8, 3, 0.5)
    op = SparseOaA(SparseSpectralKernels.from_dense(wf, mask, 3))
    with pytest.raises(UsageError, match=r"input must be \[B, 2, H, W\]"):
        op(np.zeros((1, 3, 6, 6)))
    with pytest.raises(UsageError, match=r"bias must have shape \(3,\)"):
        op(np.zeros((1, 2, 6, 6)), 1, np.zeros(2))
    with pytest.raises(UsageError, match="larger than the padded"):
        op(np.zeros((1, 2, 2, 2)))
