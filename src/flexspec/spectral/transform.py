"""Kernel transforms between the spatial and the spectral (half-plane) domain.

The spectral kernel of a KxK spatial kernel ``w`` is ``rfft2(flip(w), s=(N, N))``: the
kernel is flipped because ``conv2d`` is a cross-correlation while overlap-and-add
computes a linear convolution.  Only the Hermitian half-plane N x (N//2+1) is kept.
"""

from __future__ import annotations

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
