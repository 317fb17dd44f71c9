"""PyTorch spectral convolution (autograd): ``SpectralConv2d`` and ``to_spectral``.

Importing this module needs torch (the optional extra ``flexspec[torch]``).  The forward
pass is the same OaA computation as :mod:`flexspec.spectral.oaa`; the trainable parameter
is the spectral kernel itself, so pruning and ADMM act directly on spectral weights.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from .geometry import check_fft_size, half_width


def _tiles(x: torch.Tensor, tile: int) -> torch.Tensor:
    b, c, height, width = x.shape
    ty, tx = -(-height // tile), -(-width // tile)
    x = F.pad(x, (0, tx * tile - width, 0, ty * tile - height))
    return x.reshape(b, c, ty, tile, tx, tile).permute(0, 1, 2, 4, 3, 5)


def _overlap_add(blocks: torch.Tensor, tile: int) -> torch.Tensor:
    """Add N x N blocks [B, C, Ty, Tx, N, N] placed every ``tile`` pixels (``F.fold`` sums overlaps)."""
    b, c, ty, tx, n, _ = blocks.shape
    cols = blocks.permute(0, 1, 4, 5, 2, 3).reshape(b, c * n * n, ty * tx)
    return F.fold(cols, output_size=((ty - 1) * tile + n, (tx - 1) * tile + n), kernel_size=n, stride=tile)


def frequency_major(wf: torch.Tensor) -> torch.Tensor:
    """Kernels [Cout, Cin, N, N//2+1] laid out as the per-frequency matmul wants: [F, Cin, Cout]."""
    cout, cin, n, m = wf.shape
    return wf.reshape(cout, cin, n * m).permute(2, 1, 0).contiguous()


def spectral_conv2d(x: torch.Tensor, wf: torch.Tensor, kernel_size: int, padding=0, bias=None) -> torch.Tensor:
    """OaA convolution in torch; ``wf`` complex [Cout, Cin, N, N//2+1]. Differentiable."""
    return spectral_conv2d_fmajor(x, frequency_major(wf), wf.shape[-2], kernel_size, padding, bias)


def spectral_conv2d_fmajor(x: torch.Tensor, wm: torch.Tensor, fft_size: int, kernel_size: int, padding=0,
                           bias=None) -> torch.Tensor:
    """OaA convolution with kernels already in :func:`frequency_major` layout [F, Cin, Cout]
    (inference keeps them so, saving a transpose of every kernel on every call)."""
    ph, pw = (padding, padding) if isinstance(padding, int) else tuple(padding)
    n = fft_size
    tile = n - kernel_size + 1
    b, cin, height, width = x.shape
    cout = wm.shape[-1]
    xf = torch.fft.rfft2(_tiles(x, tile), s=(n, n))  # [B, Cin, Ty, Tx, N, M]
    _, _, ty, tx, _, m = xf.shape
    # one complex matmul per frequency: [F, B*T, Cin] @ [F, Cin, Cout]
    # (strided operands send matmul and the FFTs down slow paths: lay each one out first)
    xm = xf.reshape(b, cin, ty * tx, n * m).permute(3, 0, 2, 1).reshape(n * m, b * ty * tx, cin).contiguous()
    ym = torch.matmul(xm, wm).reshape(n, m, b, ty, tx, cout).permute(2, 5, 3, 4, 0, 1).contiguous()
    full = _overlap_add(torch.fft.irfft2(ym, s=(n, n)), tile)
    out_h, out_w = height + 2 * ph - kernel_size + 1, width + 2 * pw - kernel_size + 1
    sh, sw = kernel_size - 1 - ph, kernel_size - 1 - pw
    lo_h, lo_w = max(0, -sh), max(0, -sw)
    hi_h = max(0, sh + out_h - full.shape[-2])
    hi_w = max(0, sw + out_w - full.shape[-1])
    if lo_h or lo_w or hi_h or hi_w:
        full = F.pad(full, (lo_w, hi_w, lo_h, hi_h))
    sh, sw = sh + lo_h, sw + lo_w
    out = full[:, :, sh : sh + out_h, sw : sw + out_w]
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


class SpectralConv2d(nn.Module):
    """A drop-in replacement for a stride-1 ``nn.Conv2d`` that computes by FFT overlap-and-add.

    ``weight`` is the spectral kernel as a real tensor [Cout, Cin, N, N//2+1, 2]
    (``torch.view_as_complex`` gives the spectrum); the optional boolean buffer ``mask``
    [Cout, Cin, N, N//2+1] zeroes pruned frequencies (None: dense).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding=0, fft_size: int = 8,
                 bias: bool = True):
        super().__init__()
        check_fft_size(fft_size, kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding, self.fft_size = kernel_size, padding, fft_size
        self.weight = nn.Parameter(torch.zeros(out_channels, in_channels, fft_size, half_width(fft_size), 2))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("mask", None)
        spatial = torch.empty(out_channels, in_channels, kernel_size, kernel_size)
        nn.init.kaiming_uniform_(spatial, a=5**0.5)
        self.set_spatial_weight(spatial)

    @torch.no_grad()
    def set_spatial_weight(self, w: torch.Tensor) -> None:
        """Set the spectrum from spatial kernels [Cout, Cin, K, K] (flipped, padded to N, rfft2)."""
        wf = torch.fft.rfft2(torch.flip(w.to(self.weight.dtype), dims=(-2, -1)), s=(self.fft_size, self.fft_size))
        self.weight.copy_(torch.view_as_real(wf))

    @classmethod
    def from_conv2d(cls, conv: nn.Conv2d, fft_size: int = 8) -> SpectralConv2d:
        why = _ineligible(conv, allow_pointwise=True)
        if why:
            raise UsageError(f"this Conv2d cannot go spectral: {why}")
        padding = conv.padding if isinstance(conv.padding, tuple) else (conv.padding, conv.padding)
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size[0], tuple(padding), fft_size,
                    bias=conv.bias is not None)
        layer.to(device=conv.weight.device, dtype=conv.weight.dtype)
        layer.set_spatial_weight(conv.weight.detach())
        if conv.bias is not None:
            with torch.no_grad():
                layer.bias.copy_(conv.bias)
        return layer

    def spectrum(self) -> torch.Tensor:
        """The effective complex spectrum [Cout, Cin, N, N//2+1] (masked if a mask is set)."""
        wf = torch.view_as_complex(self.weight)
        return wf * self.mask if self.mask is not None else wf

    def set_mask(self, mask) -> None:
        mask = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask, dtype=torch.bool)
        if tuple(mask.shape) != tuple(self.weight.shape[:-1]):
            raise UsageError(f"mask shape {tuple(mask.shape)} does not match kernels {tuple(self.weight.shape[:-1])}")
        self.mask = mask.to(self.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spectral_conv2d(x, self.spectrum(), self.kernel_size, self.padding, self.bias)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"padding={self.padding}, fft_size={self.fft_size}, masked={self.mask is not None}")


def _ineligible(conv: nn.Conv2d, allow_pointwise: bool = False) -> str | None:
    """Why ``conv`` cannot run spectrally (None if it can); 1x1 kernels gain nothing and are refused
    unless ``allow_pointwise``."""
    if conv.stride not in ((1, 1), 1):
        return f"stride {conv.stride}"
    if conv.groups != 1:
        return f"groups {conv.groups}"
    if conv.dilation not in ((1, 1), 1):
        return f"dilation {conv.dilation}"
    k = conv.kernel_size
    if k[0] != k[1]:
        return f"non-square kernel {k}"
    if k[0] == 1 and not allow_pointwise:
        return "1x1 kernel"
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return f"padding {conv.padding!r} ({conv.padding_mode})"
    return None


def to_spectral(model: nn.Module, fft_size: int = 8) -> nn.Module:
    """A copy of ``model`` with every eligible ``nn.Conv2d`` (stride 1, no groups or dilation,
    square kernel larger than 1x1, zero padding) replaced by ``SpectralConv2d``."""
    model = copy.deepcopy(model)

    def convert(module: nn.Module):
        for name, child in module.named_children():
            if isinstance(child, nn.Conv2d) and _ineligible(child) is None:
                setattr(module, name, SpectralConv2d.from_conv2d(child, fft_size))
            else:
                convert(child)

    convert(model)
    return model
