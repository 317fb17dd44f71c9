"""PyTorch spectral convolution (autograd): ``SpectralConv2d``, ``to_spectral`` and ``plan_spectral``.

Importing this module needs torch (the optional extra ``flexspec[torch]``).  The layer computes
the same OaA function as :mod:`flexspec.spectral.oaa` (the numpy reference); the trainable
parameter is the spectral kernel itself, so pruning and ADMM act directly on spectral weights.

How it is fast (each step measured side by side with conv2d, see BENCHMARKS.md and
``benchmarks/bench_oaa.py``):

* the kernels live in the layout the product wants: frequency-major complex ``[F, Cin, Cout]``
  (stored as a real parameter ``[F, Cin, Cout, 2]``), so a forward never re-lays them out;
* the tile transforms are dense GEMMs with the real DFT matrices of the half-plane
  (``D``: h*h pixels -> 2F real values; ``G``: 2F values -> N*N pixels), which on CPU beats
  many small FFT calls and their transposes, and lands the spectra directly frequency-major;
* the per-frequency product is one batched complex GEMM ``[F, B*T, Cin] @ [F, Cin, Cout]``;
* overlap-add accumulates the N x N blocks in channels-last order (``ceil(N/h)^2`` slice adds);
  the output is a logical NCHW tensor with channels-last strides.

Every step is a plain differentiable torch op, so the backward pass is GEMMs as well.
"""

from __future__ import annotations

import copy
import functools
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from .geometry import check_fft_size, half_width, num_frequencies


# --------------------------------------------------------------------------- DFT matrices
@functools.lru_cache(maxsize=32)
def dft_matrices(fft_size: int, tile: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The real matrices of the half-plane 2-D DFT of an ``tile x tile`` tile zero-padded to N x N,
    and of its inverse (float64, constant for given sizes).

    ``D`` [2F, tile*tile]: row ``f`` the real part and row ``F + f`` the imaginary part of spectrum
    position ``f = r * (N//2+1) + c``; column ``py * tile + px``.
    ``G`` [N*N, 2F]: ``irfft2`` of the half-plane as a matrix, columns in the same (re, im) x f
    order (weight 1 for columns 0 and N/2, whose conjugate twins are in the half-plane, else 2).
    """
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
    return torch.from_numpy(d), torch.from_numpy(g)


def _padding_pair(padding) -> tuple[int, int]:
    return (padding, padding) if isinstance(padding, int) else tuple(int(p) for p in padding)


# --------------------------------------------------------------------------- kernel layouts
def frequency_major(wf: torch.Tensor) -> torch.Tensor:
    """Complex kernels [Cout, Cin, N, N//2+1] -> the layer's layout: real planes [2, F, Cin, Cout]
    (real part, imaginary part; frequency-major, as the per-frequency GEMM reads them)."""
    cout, cin, n, m = wf.shape
    wm = wf.reshape(cout, cin, n * m).permute(2, 1, 0)
    return torch.stack((wm.real, wm.imag)).contiguous()


def standard_layout(wp: torch.Tensor, fft_size: int) -> torch.Tensor:
    """Inverse of :func:`frequency_major`: real planes [2, F, Cin, Cout] -> complex [Cout, Cin, N, N//2+1]."""
    _, f, cin, cout = wp.shape
    return torch.complex(wp[0], wp[1]).permute(2, 1, 0).reshape(cout, cin, fft_size, half_width(fft_size))


def mask_frequency_major(mask: torch.Tensor) -> torch.Tensor:
    """A mask [Cout, Cin, N, N//2+1] in the layer's layout [F, Cin, Cout]."""
    cout, cin, n, m = mask.shape
    return mask.reshape(cout, cin, n * m).permute(2, 1, 0).contiguous()


def mask_standard_layout(mask: torch.Tensor, fft_size: int) -> torch.Tensor:
    """Inverse of :func:`mask_frequency_major`."""
    f, cin, cout = mask.shape
    return mask.permute(2, 1, 0).reshape(cout, cin, fft_size, half_width(fft_size))


# --------------------------------------------------------------------------- the OaA computation
def oaa_frequency_major(x: torch.Tensor, wm: torch.Tensor, fft_size: int, kernel_size: int, padding=0, bias=None,
                        dft: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """OaA convolution of ``x`` [B, Cin, H, W] with kernels ``wm`` [2, F, Cin, Cout] (real and
    imaginary planes, :func:`frequency_major` layout); stride 1, zero ``padding``.  Differentiable.

    ``dft``: the matrices of :func:`dft_matrices` already in ``x``'s dtype and device (a layer
    keeps them as buffers); computed here when None.
    """
    n, k = fft_size, kernel_size
    h = n - k + 1
    ph, pw = _padding_pair(padding)
    b, cin, height, width = x.shape
    _, f_count, _, cout = wm.shape
    if dft is None:
        d, g = (t.to(dtype=x.dtype, device=x.device) for t in dft_matrices(n, h))
    else:
        d, g = dft
    ty, tx = -(-height // h), -(-width // h)
    t = ty * tx
    tiles = _Tiles.apply(x, h).view(h * h, b * t * cin)
    xr, xi = (d @ tiles).view(2, f_count, b * t, cin).unbind(0)  # real and imaginary planes
    wr, wi = wm.unbind(0)
    # one complex GEMM per frequency, in real planes (4 real batched GEMMs, no interleaving copies)
    yr = torch.baddbmm(torch.bmm(xr, wr), xi, wi, alpha=-1.0).view(f_count, b * t * cout)
    yi = torch.baddbmm(torch.bmm(xr, wi), xi, wr).view(f_count, b * t * cout)
    blocks = torch.addmm(g[:, :f_count] @ yr, g[:, f_count:], yi).view(n, n, b, ty, tx, cout)
    full = _OverlapAdd.apply(blocks, h)  # [B, (Ty+A-1)*h, (Tx+A-1)*h, Cout]
    out_h, out_w = height + 2 * ph - k + 1, width + 2 * pw - k + 1
    sh, sw = k - 1 - ph, k - 1 - pw
    lo_h, lo_w = max(0, -sh), max(0, -sw)
    hi_h, hi_w = max(0, sh + out_h - full.shape[1]), max(0, sw + out_w - full.shape[2])
    if lo_h or lo_w or hi_h or hi_w:
        full = F.pad(full, (0, 0, lo_w, hi_w, lo_h, hi_h))
    sh, sw = sh + lo_h, sw + lo_w
    out = full[:, sh:sh + out_h, sw:sw + out_w, :]
    if bias is not None:
        out = out + bias
    return out.permute(0, 3, 1, 2)  # logical NCHW, channels-last memory


def _tile_pieces(height: int, width: int, tile: int):
    """(first tile row, tile rows, pixel rows, first tile column, tile columns, pixel columns) of the
    up to four rectangles of whole tiles and cut-off last tiles that cover an H x W input."""
    def spans(size):
        whole, rest = divmod(size, tile)
        return [s for s in ((0, whole, tile), (whole, 1, rest)) if s[1] and s[2]]
    return [(y0, ny, ry, x0, nx, rx) for y0, ny, ry in spans(height) for x0, nx, rx in spans(width)]


class _Tiles(torch.autograd.Function):
    """[B, C, H, W] (any strides) -> tiles [tile, tile, B, Ty, Tx, C], pixels first, zero-padded at
    the bottom and right: the layout the DFT GEMM reads, made in one pass over the input."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, tile: int) -> torch.Tensor:
        b, c, height, width = x.shape
        ty, tx = -(-height // tile), -(-width // tile)
        out = x.new_zeros(tile, tile, b, ty, tx, c)
        for y0, ny, ry, x0, nx, rx in _tile_pieces(height, width, tile):
            src = x[:, :, y0 * tile:y0 * tile + ny * ry, x0 * tile:x0 * tile + nx * rx]
            out[:ry, :rx, :, y0:y0 + ny, x0:x0 + nx] = src.reshape(b, c, ny, ry, nx, rx).permute(3, 5, 0, 2, 4, 1)
        ctx.shape, ctx.tile = x.shape, tile
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        b, c, height, width = ctx.shape
        tile = ctx.tile
        gx = grad.new_empty(b, height, width, c).permute(0, 3, 1, 2)  # channels-last, like the layer's output
        for y0, ny, ry, x0, nx, rx in _tile_pieces(height, width, tile):
            dst = gx[:, :, y0 * tile:y0 * tile + ny * ry, x0 * tile:x0 * tile + nx * rx]
            dst.view(b, c, ny, ry, nx, rx).copy_(grad[:ry, :rx, :, y0:y0 + ny, x0:x0 + nx].permute(2, 5, 3, 0, 4, 1))
        return gx, None


class _OverlapAdd(torch.autograd.Function):
    """Add N x N blocks [N, N, B, Ty, Tx, C] placed every ``tile`` pixels into a channels-last canvas
    [B, (Ty+A-1)*tile, (Tx+A-1)*tile, C], A = ceil(N / tile).  The backward pass is the adjoint
    (each block reads its window of the gradient), written out so that autograd does not clone
    the canvas once per slice."""

    @staticmethod
    def _pieces(n: int, tile: int):
        parts = -(-n // tile)
        for a in range(parts):
            for c in range(parts):
                yield a, c, min(tile, n - a * tile), min(tile, n - c * tile)

    @staticmethod
    def forward(ctx, blocks: torch.Tensor, tile: int) -> torch.Tensor:
        n, _, b, ty, tx, ch = blocks.shape
        parts = -(-n // tile)
        canvas = blocks.new_zeros(b, ty + parts - 1, tile, tx + parts - 1, tile, ch)
        for a, c, ra, rc in _OverlapAdd._pieces(n, tile):
            canvas[:, a:a + ty, :ra, c:c + tx, :rc, :] += blocks[a * tile:a * tile + ra,
                                                                 c * tile:c * tile + rc].permute(2, 3, 0, 4, 1, 5)
        ctx.tile, ctx.shape = tile, blocks.shape
        return canvas.view(b, (ty + parts - 1) * tile, (tx + parts - 1) * tile, ch)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        n, _, b, ty, tx, ch = ctx.shape
        tile = ctx.tile
        parts = -(-n // tile)
        grad = grad.reshape(b, ty + parts - 1, tile, tx + parts - 1, tile, ch)
        out = grad.new_empty(ctx.shape)
        for a, c, ra, rc in _OverlapAdd._pieces(n, tile):
            out[a * tile:a * tile + ra, c * tile:c * tile + rc] = grad[:, a:a + ty, :ra, c:c + tx, :rc, :].permute(
                2, 4, 0, 1, 3, 5)
        return out, None


def spectral_conv2d(x: torch.Tensor, wf: torch.Tensor, kernel_size: int, padding=0, bias=None) -> torch.Tensor:
    """OaA convolution with complex kernels ``wf`` [Cout, Cin, N, N//2+1]. Differentiable."""
    check_fft_size(wf.shape[-2], kernel_size)
    return oaa_frequency_major(x, frequency_major(wf), wf.shape[-2], kernel_size, padding, bias)


# --------------------------------------------------------------------------- the layer
class SpectralConv2d(nn.Module):
    """A drop-in replacement for a stride-1 ``nn.Conv2d`` that computes by FFT overlap-and-add.

    ``weight`` is the spectral kernel, frequency-major, as real and imaginary planes
    [2, F, Cin, Cout] (:func:`frequency_major`; :meth:`spectrum` gives the usual complex
    [Cout, Cin, N, N//2+1]); the optional boolean buffer ``mask`` [F, Cin, Cout] zeroes pruned
    frequencies (None: dense).  Masks are set and read in the usual layout (:meth:`set_mask`,
    :meth:`mask_standard`).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding=0, fft_size: int = 8,
                 bias: bool = True):
        super().__init__()
        check_fft_size(fft_size, kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding, self.fft_size = kernel_size, padding, fft_size
        self.weight = nn.Parameter(torch.zeros(2, num_frequencies(fft_size), in_channels, out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("mask", None)
        self.register_buffer("dft_d", None, persistent=False)
        self.register_buffer("dft_g", None, persistent=False)
        self._reset_dft()
        spatial = torch.empty(out_channels, in_channels, kernel_size, kernel_size)
        nn.init.kaiming_uniform_(spatial, a=5**0.5)
        self.set_spatial_weight(spatial)

    def _reset_dft(self) -> None:
        """The DFT matrices in the weights' dtype and device, rounded once from float64."""
        d, g = dft_matrices(self.fft_size, self.fft_size - self.kernel_size + 1)
        self.dft_d = d.to(dtype=self.weight.dtype, device=self.weight.device)
        self.dft_g = g.to(dtype=self.weight.dtype, device=self.weight.device)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self._reset_dft()  # after .double()/.to(): round from float64, not from float32
        return self

    @torch.no_grad()
    def set_spatial_weight(self, w: torch.Tensor) -> None:
        """Set the spectrum from spatial kernels [Cout, Cin, K, K] (flipped, padded to N, rfft2)."""
        wf = torch.fft.rfft2(torch.flip(w.to(self.weight.dtype), dims=(-2, -1)), s=(self.fft_size, self.fft_size))
        self.set_spectrum(wf)

    @torch.no_grad()
    def set_spectrum(self, wf) -> None:
        """Set the weights from complex spectra [Cout, Cin, N, N//2+1] (the mask is kept)."""
        wf = torch.as_tensor(wf)
        want = (self.out_channels, self.in_channels, self.fft_size, half_width(self.fft_size))
        if tuple(wf.shape) != want:
            raise UsageError(f"spectra of shape {tuple(wf.shape)} do not match the layer's {want}")
        self.weight.copy_(frequency_major(wf.to(self.weight.device)))

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

    def kernels(self) -> torch.Tensor:
        """The effective kernels in the layer's layout [2, F, Cin, Cout] (masked if a mask is set)."""
        return self.weight * self.mask if self.mask is not None else self.weight

    def spectrum(self) -> torch.Tensor:
        """The effective complex spectrum [Cout, Cin, N, N//2+1] (masked if a mask is set)."""
        return standard_layout(self.kernels(), self.fft_size)

    def set_mask(self, mask) -> None:
        """Set the pruning mask, bool [Cout, Cin, N, N//2+1] (True = kept); None removes it."""
        if mask is None:
            self.mask = None
            return
        mask = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask, dtype=torch.bool)
        want = (self.out_channels, self.in_channels, self.fft_size, half_width(self.fft_size))
        if tuple(mask.shape) != want:
            raise UsageError(f"mask shape {tuple(mask.shape)} does not match kernels {want}")
        self.mask = mask_frequency_major(mask).to(self.weight.device, copy=True)

    def mask_standard(self) -> torch.Tensor | None:
        """The mask in the usual layout [Cout, Cin, N, N//2+1], or None (dense)."""
        return None if self.mask is None else mask_standard_layout(self.mask, self.fft_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return oaa_frequency_major(x, self.kernels(), self.fft_size, self.kernel_size, self.padding, self.bias,
                                   (self.dft_d, self.dft_g))

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


# --------------------------------------------------------------------------- conversion and planning
@dataclass(frozen=True)
class LayerChoice:
    """What :func:`plan_spectral` measured for one convolution and chose.

    ``fft_size`` None means the layer stays ``nn.Conv2d`` (only with ``keep_conv2d``);
    ``seconds`` maps "conv2d" and each candidate N to the median measured forward time."""

    name: str
    input_shape: tuple
    fft_size: int | None
    seconds: dict

    def line(self) -> str:
        conv = self.seconds["conv2d"]
        times = ", ".join(f"{k if k == 'conv2d' else 'N=' + str(k)} {v * 1e3:.2f} ms" for k, v in self.seconds.items())
        what = "conv2d (spectral does not pay)" if self.fft_size is None else f"spectral N={self.fft_size}"
        best = conv if self.fft_size is None else self.seconds[self.fft_size]
        return f"{self.name}: {what}, {best / conv:.2f}x conv2d  [{times}]"


def _eligible_convs(model: nn.Module) -> dict:
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and _ineligible(m) is None}


def _median_seconds(fn, reps: int) -> float:
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def plan_spectral(model: nn.Module, example_input: torch.Tensor, candidates=(8, 16), keep_conv2d: bool = False,
                  reps: int = 5) -> dict:
    """Choose the FFT size of every eligible convolution of ``model`` by measured speed.

    Runs ``model`` once on ``example_input`` to learn each conv's input shape, then times (inference,
    interleaved repetitions, median) ``nn.Conv2d`` and a ``SpectralConv2d`` at each candidate N on
    that shape.  Returns name -> :class:`LayerChoice`: the fastest N, or None (stay conv2d) where
    conv2d is faster and ``keep_conv2d`` is set.
    """
    for n in candidates:
        check_fft_size(n, 1)
    convs = _eligible_convs(model)
    shapes = {}
    def remember(name):
        def hook(module, args):
            shapes.setdefault(name, tuple(args[0].shape))  # returns None: the input is not replaced
        return hook

    hooks = [m.register_forward_pre_hook(remember(name)) for name, m in convs.items()]
    try:
        with torch.inference_mode():
            model(example_input)
    finally:
        for h in hooks:
            h.remove()
    plan = {}
    with torch.inference_mode():
        for name, conv in convs.items():
            if name not in shapes:
                continue
            x = torch.randn(shapes[name], dtype=conv.weight.dtype, device=conv.weight.device)
            fns = {"conv2d": lambda conv=conv, x=x: conv(x)}
            for n in candidates:
                if n >= conv.kernel_size[0]:
                    layer = SpectralConv2d.from_conv2d(conv, n)
                    fns[n] = (lambda layer=layer, x=x: layer(x))
            samples = {k: [] for k in fns}
            for fn in fns.values():
                fn()  # warm-up
            for _ in range(reps):
                for k, fn in fns.items():
                    samples[k].append(_median_seconds(fn, 1))
            seconds = {k: statistics.median(v) for k, v in samples.items()}
            best_n = min((k for k in seconds if k != "conv2d"), key=lambda k: seconds[k])
            if keep_conv2d and seconds["conv2d"] <= seconds[best_n]:
                best_n = None
            plan[name] = LayerChoice(name, shapes[name], best_n, seconds)
    return plan


def to_spectral(model: nn.Module, fft_size=8, *, example_input: torch.Tensor | None = None, keep_conv2d: bool = False,
                candidates=(8, 16), report=None) -> nn.Module:
    """A copy of ``model`` with every eligible ``nn.Conv2d`` (stride 1, no groups or dilation,
    square kernel larger than 1x1, zero padding) replaced by ``SpectralConv2d``.

    ``fft_size``: one N for every layer; a dict name -> N (None: keep that layer conv2d); or
    ``"auto"``: chosen per layer by measured speed (:func:`plan_spectral`, needs ``example_input``;
    with ``keep_conv2d`` a layer stays conv2d where spectral does not pay at inference).
    ``report``: a callable given one line per converted or kept layer (e.g. ``print``).
    """
    if isinstance(fft_size, str):
        if fft_size != "auto":
            raise UsageError(f"fft_size must be an integer, a dict or 'auto', got {fft_size!r}")
        if example_input is None:
            raise UsageError("fft_size='auto' measures each layer and needs example_input (a batch of inputs)")
        plan = plan_spectral(model, example_input, candidates, keep_conv2d)
        choice = {name: c.fft_size for name, c in plan.items()}
        if report:
            for c in plan.values():
                report(c.line())
    elif isinstance(fft_size, dict):
        choice = dict(fft_size)
        unknown = set(choice) - set(_eligible_convs(model))
        if unknown:
            raise UsageError(f"no eligible convolution named {sorted(unknown)} in the model")
    else:
        check_fft_size(fft_size, 1)
        choice = {name: fft_size for name in _eligible_convs(model)}
    model = copy.deepcopy(model)
    for name, conv in _eligible_convs(model).items():
        n = choice.get(name)
        if n is None:
            if report and not isinstance(fft_size, str):
                report(f"{name}: conv2d (kept)")
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, SpectralConv2d.from_conv2d(conv, n))
        if report and not isinstance(fft_size, str):
            report(f"{name}: spectral N={n}")
    return model

