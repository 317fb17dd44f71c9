"""Kernel transforms between the spatial and the spectral (half-plane) domain.

The spectral kernel of a KxK spatial kernel ``w`` is ``rfft2(flip(w), s=(N, N))``: the
kernel is flipped because ``conv2d`` is a cross-correlation while overlap-and-add
computes a linear convolution.  Only the Hermitian half-plane N x (N//2+1) is kept.
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import UsageError
from .geometry import check_fft_size, half_width


def spectral_kernels(w, fft_size: int) -> np.ndarray:
    """Spatial kernels [Cout, Cin, K, K] -> complex spectral kernels [Cout, Cin, N, N//2+1]."""
    w = np.asarray(w)
    if w.ndim != 4 or w.shape[-1] != w.shape[-2]:
        raise UsageError(f"kernels must have shape [Cout, Cin, K, K] with a square kernel, got {w.shape}")
    check_fft_size(fft_size, w.shape[-1])
    dtype = np.complex128 if w.dtype == np.float64 else np.complex64
    return np.fft.rfft2(w[..., ::-1, ::-1], s=(fft_size, fft_size)).astype(dtype, copy=False)


def spatial_kernels(wf, kernel_size: int) -> np.ndarray:
    """Inverse of :func:`spectral_kernels`: complex [Cout, Cin, N, N//2+1] -> real [Cout, Cin, K, K].

    For a spectrum that did not come from a KxK kernel (e.g. after pruning) this returns
    the KxK window of its N x N spatial response; see :func:`spatial_support` for the whole.
    """
    full = spatial_support(wf)
    if kernel_size > full.shape[-1]:
        raise UsageError(f"kernel size {kernel_size} exceeds the FFT size {full.shape[-1]}")
    return np.ascontiguousarray(full[..., :kernel_size, :kernel_size][..., ::-1, ::-1])


def spatial_support(wf) -> np.ndarray:
    """The full N x N (flipped) spatial response of half-plane spectra [..., N, N//2+1]."""
    wf = np.asarray(wf)
    n = wf.shape[-2]
    if wf.shape[-1] != half_width(n):
        raise UsageError(f"spectra must have shape [..., N, N//2+1], got {wf.shape}")
    return np.fft.irfft2(wf, s=(n, n))


@functools.lru_cache(maxsize=32)
def dft_matrices(fft_size: int, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """The real matrices of the half-plane 2-D DFT of a ``tile x tile`` tile zero-padded to N x N,
    and of its inverse (float64, read-only, constant for given sizes): the transforms of the fast
    OaA paths as GEMMs (:mod:`flexspec.spectral.torch_ops`, :class:`flexspec.spectral.sparse.SparseOaA`).

    ``D`` [2F, tile*tile]: row ``f`` the real part and row ``F + f`` the imaginary part of spectrum
    position ``f = r * (N//2+1) + c``; column ``py * tile + px``.
    ``G`` [N*N, 2F]: ``irfft2`` of the half-plane as a matrix, columns in the same (re, im) x f
    order (weight 1 for columns 0 and N/2, whose conjugate twins are in the half-plane, else 2).
    """
    check_fft_size(fft_size, 1)
    if not 1 <= tile <= fft_size:
        raise UsageError(f"tile size must lie in [1, {fft_size}] for FFT size {fft_size}, got {tile}")
    n, m = fft_size, half_width(fft_size)
    r = np.repeat(np.arange(n), m).astype(np.float64)
    c = np.tile(np.arange(m), n).astype(np.float64)
    py, px = np.divmod(np.arange(tile * tile), tile)
    theta = 2 * np.pi * (r[:, None] * py[None, :] + c[:, None] * px[None, :]) / n
    d = np.concatenate([np.cos(theta), -np.sin(theta)], axis=0)
    qy, qx = np.divmod(np.arange(n * n), n)
    theta = 2 * np.pi * (qy[:, None] * r[None, :] + qx[:, None] * c[None, :]) / n
    weight = np.where((c == 0) | ((n % 2 == 0) & (c == n // 2)), 1.0, 2.0) / (n * n)
    g = np.concatenate([weight * np.cos(theta), -weight * np.sin(theta)], axis=1)
    for a in (d, g):
        a.setflags(write=False)
    return d, g
