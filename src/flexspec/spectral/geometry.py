"""Overlap-and-add geometry shared by every stage.

Conventions (used everywhere in FlexSpec):

* FFT size ``N`` (``fft_size``); a KxK kernel and an h x h input tile are zero-padded to
  N x N with ``h = N - K + 1`` (``tile_size``).
* Only the Hermitian half-plane of a 2-D real FFT is stored: ``N x (N//2 + 1)`` complex
  values in numpy/torch ``rfft2`` layout.  Frequency position ``f`` indexes that plane in
  row-major order: ``f = row * (N//2 + 1) + col``, ``0 <= f < F = N * (N//2 + 1)``.
* Tiles cut the *unpadded* input: ``ceil(H / h) x ceil(W / h)`` tiles per channel; zero
  padding of the layer is applied when the overlap-added output is cropped, so it costs
  neither tiles nor FFTs.
"""

from __future__ import annotations

import math

from ..errors import UsageError


def half_width(fft_size: int) -> int:
    """Columns of the stored half-plane: N//2 + 1."""
    return fft_size // 2 + 1


def num_frequencies(fft_size: int) -> int:
    """F = N * (N//2 + 1): complex values stored per kernel or per tile channel."""
    return fft_size * half_width(fft_size)


def fft_size_from_frequencies(num_freq: int) -> int:
    """Inverse of :func:`num_frequencies`; raises UsageError if ``num_freq`` is not N*(N//2+1)."""
    for n in range(1, 1 + int(math.isqrt(2 * max(num_freq, 0))) + 2):
        if num_frequencies(n) == num_freq:
            return n
    raise UsageError(f"{num_freq} frequency positions is not of the form N*(N//2+1) for any FFT size N")


def tile_size(fft_size: int, kernel_size: int) -> int:
    """Input tile edge h = N - K + 1."""
    check_fft_size(fft_size, kernel_size)
    return fft_size - kernel_size + 1


#: The largest FFT size N that FlexSpec supports, everywhere (API, CLI, accelerator model): one limit.
MAX_FFT_SIZE = 32


def check_fft_size(fft_size: int, kernel_size: int) -> None:
    """UsageError unless ``kernel_size <= fft_size <= MAX_FFT_SIZE`` (and N >= 2)."""
    if not isinstance(fft_size, int) or isinstance(fft_size, bool) or fft_size < 2:
        raise UsageError(f"FFT size must be an integer >= 2, got {fft_size!r}")
    if fft_size > MAX_FFT_SIZE:
        raise UsageError(f"FFT size {fft_size} is above the supported maximum {MAX_FFT_SIZE}")
    if fft_size < kernel_size:
        raise UsageError(
            f"FFT size {fft_size} is smaller than the {kernel_size}x{kernel_size} kernel; "
            f"use an FFT size of at least {kernel_size + 1}"
        )


def tile_grid(height: int, width: int, kernel_size: int, fft_size: int) -> tuple[int, int]:
    """Number of input tiles (rows, columns) that cover an unpadded H x W input."""
    h = tile_size(fft_size, kernel_size)
    return -(-height // h), -(-width // h)


def num_tiles(layer, fft_size: int) -> int:
    """Input tiles per channel of a ConvLayer (batch 1)."""
    ty, tx = tile_grid(layer.height, layer.width, layer.kernel_size, fft_size)
    return ty * tx
