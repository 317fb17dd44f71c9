"""Spectral convolution by FFT overlap-and-add (OaA), numpy reference.

This is the computation the accelerator performs, written once in plain numpy so that
every simulator can be compared against it:

1. cut the unpadded input [B, Cin, H, W] into h x h tiles (h = N - K + 1), zero-padding
   the last row/column of tiles;
2. transform each tile with a 2-D real FFT of size N x N (half-plane kept);
3. per tile and output channel, sum over input channels the Hadamard products
   ``X[t, i] * W[j, i]`` (one complex multiply-accumulate per frequency);
4. inverse FFT gives an N x N block per tile; blocks overlap by K - 1 and are added;
5. crop the window that ``conv2d`` with zero padding ``p`` (stride 1) returns, add bias.

With spectral kernels made by :func:`~flexspec.spectral.transform.spectral_kernels` the
result equals ``torch.nn.functional.conv2d`` (cross-correlation); with pruned spectra it
is, by definition, what the pruned spectral layer computes.
"""

from __future__ import annotations

import numpy as np

from ..errors import UsageError
from .geometry import check_fft_size, half_width
from .transform import spectral_kernels


def padding_pair(padding) -> tuple[int, int]:
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise UsageError(f"padding must be an int or a pair, got {padding!r}")
        ph, pw = (int(p) for p in padding)
    else:
        ph = pw = int(padding)
    if ph < 0 or pw < 0:
        raise UsageError(f"padding must be >= 0, got {padding!r}")
    return ph, pw


def _batched(x) -> tuple[np.ndarray, bool]:
    x = np.asarray(x)
    if x.ndim == 3:
        return x[None], True
    if x.ndim != 4:
        raise UsageError(f"input must have shape [B, C, H, W] or [C, H, W], got {x.shape}")
    return x, False


def input_tiles(x: np.ndarray, tile: int) -> np.ndarray:
    """[B, C, H, W] -> [B, C, Ty, Tx, tile, tile], zero-padding the last tiles."""
    b, c, height, width = x.shape
    ty, tx = -(-height // tile), -(-width // tile)
    padded = np.zeros((b, c, ty * tile, tx * tile), dtype=x.dtype)
    padded[:, :, :height, :width] = x
    return padded.reshape(b, c, ty, tile, tx, tile).transpose(0, 1, 2, 4, 3, 5)


def transform_tiles(x: np.ndarray, kernel_size: int, fft_size: int) -> np.ndarray:
    """Spectra of the input tiles: [B, C, H, W] -> complex [B, C, Ty, Tx, N, N//2+1]."""
    check_fft_size(fft_size, kernel_size)
    return np.fft.rfft2(input_tiles(x, fft_size - kernel_size + 1), s=(fft_size, fft_size))


def hadamard_accumulate(xf: np.ndarray, wf: np.ndarray) -> np.ndarray:
    """Y[b, j, ty, tx, f] = sum_i X[b, i, ty, tx, f] * W[j, i, f] (one matmul per frequency)."""
    b, cin, ty, tx, n, m = xf.shape
    cout = wf.shape[0]
    xm = xf.reshape(b, cin, ty * tx, n * m).transpose(3, 0, 2, 1).reshape(n * m, b * ty * tx, cin)
    wm = wf.reshape(cout, cin, n * m).transpose(2, 1, 0)
    ym = np.matmul(xm, wm)  # [F, B*T, Cout]
    return ym.reshape(n, m, b, ty, tx, cout).transpose(2, 5, 3, 4, 0, 1)


def overlap_add(blocks: np.ndarray, tile: int) -> np.ndarray:
    """Add N x N blocks [B, C, Ty, Tx, N, N] placed every ``tile`` pixels: [B, C, (Ty+A-1)*tile, ...]."""
    b, c, ty, tx, n, _ = blocks.shape
    parts = -(-n // tile)  # A: how many tile-sized strips one block spans
    span = parts * tile
    if span != n:
        padded = np.zeros((b, c, ty, tx, span, span), dtype=blocks.dtype)
        padded[..., :n, :n] = blocks
        blocks = padded
    strips = blocks.reshape(b, c, ty, tx, parts, tile, parts, tile)
    canvas = np.zeros((b, c, ty + parts - 1, tile, tx + parts - 1, tile), dtype=blocks.dtype)
    for a in range(parts):
        for d in range(parts):
            canvas[:, :, a : a + ty, :, d : d + tx, :] += strips[:, :, :, :, a, :, d, :].transpose(0, 1, 2, 4, 3, 5)
    return canvas.reshape(b, c, (ty + parts - 1) * tile, (tx + parts - 1) * tile)


def crop_output(full: np.ndarray, height: int, width: int, kernel_size: int, padding) -> np.ndarray:
    """The conv2d window (zero padding ``padding``, stride 1) of a full linear convolution."""
    ph, pw = padding_pair(padding)
    out_h = height + 2 * ph - kernel_size + 1
    out_w = width + 2 * pw - kernel_size + 1
    if out_h < 1 or out_w < 1:
        raise UsageError(f"kernel {kernel_size} is larger than the padded {height}x{width} input")
    start_h, start_w = kernel_size - 1 - ph, kernel_size - 1 - pw
    lo_h, lo_w = max(0, -start_h), max(0, -start_w)
    hi_h = max(0, start_h + out_h - full.shape[-2])
    hi_w = max(0, start_w + out_w - full.shape[-1])
    if lo_h or lo_w or hi_h or hi_w:
        full = np.pad(full, ((0, 0), (0, 0), (lo_h, hi_h), (lo_w, hi_w)))
    start_h, start_w = start_h + lo_h, start_w + lo_w
    return full[:, :, start_h : start_h + out_h, start_w : start_w + out_w]


def oaa_conv2d_spectral(x, wf, kernel_size: int, padding=0, bias=None) -> np.ndarray:
    """OaA convolution of ``x`` [B, Cin, H, W] (or [Cin, H, W]) with spectral kernels
    ``wf`` [Cout, Cin, N, N//2+1]; ``kernel_size`` K fixes the tile size h = N - K + 1."""
    x, squeeze = _batched(x)
    wf = np.asarray(wf)
    if wf.ndim != 4 or wf.shape[-1] != half_width(wf.shape[-2]):
        raise UsageError(f"spectral kernels must have shape [Cout, Cin, N, N//2+1], got {wf.shape}")
    if wf.shape[1] != x.shape[1]:
        raise UsageError(f"kernels expect {wf.shape[1]} input channels, the input has {x.shape[1]}")
    n = wf.shape[-2]
    tile = n - kernel_size + 1
    real = np.float64 if (x.dtype == np.float64 or wf.dtype == np.complex128) else np.float32
    xf = transform_tiles(x.astype(real, copy=False), kernel_size, n)
    yf = hadamard_accumulate(xf, wf.astype(xf.dtype, copy=False))
    blocks = np.fft.irfft2(yf, s=(n, n)).astype(real, copy=False)
    out = crop_output(overlap_add(blocks, tile), x.shape[2], x.shape[3], kernel_size, padding)
    if bias is not None:
        out = out + np.asarray(bias, dtype=real)[None, :, None, None]
    out = np.ascontiguousarray(out)
    return out[0] if squeeze else out


def oaa_conv2d(x, w, padding=0, fft_size: int = 8, bias=None) -> np.ndarray:
    """``conv2d(x, w, padding)`` (stride 1, cross-correlation) computed by FFT overlap-and-add."""
    w = np.asarray(w)
    return oaa_conv2d_spectral(x, spectral_kernels(w, fft_size), w.shape[-1], padding, bias)
