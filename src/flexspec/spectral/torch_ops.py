"""PyTorch spectral convolution (autograd): ``SpectralConv2d``, ``to_spectral`` and ``plan_spectral``.

Importing this module needs torch (the optional extra ``flexspec[torch]``).  The layer computes
the same OaA function as :mod:`flexspec.spectral.oaa` (the numpy reference); the trainable
parameter is the spectral kernel itself, so pruning and ADMM act directly on spectral weights.

How it is fast (each step measured side by side with conv2d, see BENCHMARKS.md and
``benchmarks/bench_oaa.py``):

* the kernels live in the layout the product wants: frequency-major complex ``[F, Cin, Cout]``
  (stored as real and imaginary planes ``[2, F, Cin, Cout]``), so a forward never re-lays them out;
* the tile transforms are dense GEMMs with the real DFT matrices of the half-plane
  (``D``: h*h pixels -> 2F real values; ``G``: 2F values -> N*N pixels), which on CPU beats
  many small FFT calls and their transposes, and lands the spectra directly frequency-major;
* the per-frequency complex product is four real batched GEMMs accumulating in place, two on
  stacked planes where the kernels bound it, or, on narrow layers with many tiles per channel (a
  training step at batch 128), one GEMM on the real block ``[[wr^T, -wi^T], [wi^T, wr^T]]`` with
  channel-major tiles (:func:`product_form`);
* the memory-bound passes (cutting tiles; overlap-add, crop and bias) are single serial numba
  passes (:mod:`flexspec.spectral._oaa_kernels`) instead of ~10 short parallel torch ops: on a
  loaded 2-core machine each 2-thread op waits whenever its second thread is descheduled;
* the whole layer is one autograd node with a hand-written adjoint (same GEMMs and gathers
  backwards, only the gradients that are needed); the output is a logical NCHW tensor with
  channels-last strides;
* without autograd (inference) the chain runs on chunks (images or strips of tile rows) with reused
  buffers (:func:`inference_chunk`), so each pass reads what the previous one wrote while it is
  still in cache instead of streaming the whole batch's intermediates (7.5x the input's bytes)
  through memory; with several torch threads the chunks run side by side on worker threads of one
  torch thread each;
* the FFT size can be chosen per layer by measured speed, at inference or for training
  (:func:`plan_spectral`).

CPU only, float32 or float64 (the numba passes); other devices or dtypes get a clear error.
"""

from __future__ import annotations

import concurrent.futures
import copy
import functools
import statistics
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ..errors import UsageError
from . import _oaa_kernels as _kernels
from . import transform
from .geometry import check_fft_size, half_width, num_frequencies
from .oaa import padding_pair


# --------------------------------------------------------------------------- DFT matrices
@functools.lru_cache(maxsize=32)
def dft_matrices(fft_size: int, tile: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`flexspec.spectral.transform.dft_matrices` as float64 tensors ``(D, G)``."""
    return tuple(torch.from_numpy(a.copy()) for a in transform.dft_matrices(fft_size, tile))


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
_DTYPES = (torch.float32, torch.float64)


def oaa_frequency_major(x: torch.Tensor, wm: torch.Tensor, fft_size: int, kernel_size: int, padding=0, bias=None,
                        dft: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """OaA convolution of ``x`` [B, Cin, H, W] with kernels ``wm`` [2, F, Cin, Cout] (real and
    imaginary planes, :func:`frequency_major` layout); stride 1, zero ``padding``.  Differentiable
    in ``x``, ``wm`` and ``bias``; CPU, float32 or float64.  Returns a logical NCHW tensor with
    channels-last memory.

    ``dft``: the matrices of :func:`dft_matrices` already in ``x``'s dtype and device (a layer
    keeps them as buffers); computed here when None.
    """
    n, k = fft_size, kernel_size
    check_fft_size(n, k)
    if wm.dim() != 4 or wm.shape[0] != 2 or wm.shape[1] != num_frequencies(n):
        raise UsageError(f"kernels must have shape [2, {num_frequencies(n)}, Cin, Cout] for N={n}, "
                         f"got {tuple(wm.shape)}")
    if bias is not None and tuple(bias.shape) != (wm.shape[3],):
        raise UsageError(f"bias must have shape ({wm.shape[3]},), got {tuple(bias.shape)}")
    if x.dim() != 4 or x.shape[1] != wm.shape[2]:
        raise UsageError(f"input must have shape [B, {wm.shape[2]}, H, W], got {tuple(x.shape)}")
    if x.device.type != "cpu" or x.dtype not in _DTYPES or wm.dtype != x.dtype:
        raise UsageError(f"the spectral layer computes on the CPU in float32 or float64; got input "
                         f"{x.dtype} on {x.device}, kernels {wm.dtype}")
    ph, pw = padding_pair(padding)
    out_h, out_w = x.shape[2] + 2 * ph - k + 1, x.shape[3] + 2 * pw - k + 1
    if out_h < 1 or out_w < 1:
        raise UsageError(f"kernel {k} is larger than the padded {x.shape[2]}x{x.shape[3]} input")
    if dft is None:
        d, g = (t.to(dtype=x.dtype, device=x.device) for t in dft_matrices(n, n - k + 1))
    else:
        d, g = dft
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, wm, bias)):
        return _SpectralOaA.apply(x, wm, bias, d, g, (n, k, ph, pw))
    return _inference(x, wm, bias, d, g, (n, k, ph, pw))


def _tiling(fft_size: int, kernel_size: int, height: int, width: int, batch: int) -> tuple[int, int, int, int]:
    """(tile side h, tile rows Ty, tile columns Tx, lanes B*Ty*Tx) of an OaA layer's input."""
    h = fft_size - kernel_size + 1
    ty, tx = -(-height // h), -(-width // h)
    return h, ty, tx, batch * ty * tx


def _flat_images(t: torch.Tensor):
    """(flat numpy storage, shape, element strides) of an image batch [B, C, H, W] for the channel-major
    numba passes: no copy if it is NCHW- or channels-last-contiguous, else a contiguous copy first."""
    t = t.detach()
    if not (t.is_contiguous() or t.is_contiguous(memory_format=torch.channels_last)):
        t = t.contiguous()
    return t.as_strided((t.numel(),), (1,)).numpy(), tuple(t.shape), tuple(t.stride())


def _bhwc(t: torch.Tensor):
    """A logical NCHW tensor as a numpy [B, H, W, C] view (no copy, any strides)."""
    return t.detach().permute(0, 2, 3, 1).numpy()


def stacked_product(in_channels: int, fft_size: int, lanes: int) -> bool:
    """Whether the layer multiplies real and imaginary tile spectra stacked (two batched GEMMs
    ``[xr; xi] @ wr`` and ``[xr; xi] @ wi``, each kernel plane read once, the signs folded into a
    ``[N*N, 4F]`` inverse matrix) rather than four GEMMs on the planes (each plane read twice).

    Stacking doubles the inverse transform's multiply-accumulates, ``N*N*2F`` more per tile and
    output channel against the product's ``4F*Cin``: an extra ``N*N / (2*Cin)`` of the product,
    at most a quarter where ``Cin >= 2*N*N``.  It pays where reading the kernels bounds the
    product, i.e. where the GEMMs have fewer rows (``lanes`` = batch x tiles) than ``Cin``.
    Measured side by side at batch 1 and 8 on VGG16's layers (BENCHMARKS.md)."""
    return in_channels >= 2 * fft_size * fft_size and lanes <= in_channels


#: The product forms of :class:`_SpectralOaA` (:func:`product_form`).
PRODUCT_FORMS = ("planes", "stacked", "block")
#: ``"block"`` is chosen on narrow layers (at most BLOCK_MAX_CHANNELS channels in and out) where
#: batch x tiles >= BLOCK_LANES_PER_CHANNEL times the wider channel count (measured per layer,
#: BENCHMARKS.md "Training step: the block product and N per layer").
BLOCK_LANES_PER_CHANNEL = 16
BLOCK_MAX_CHANNELS = 32


def product_form(in_channels: int, out_channels: int, fft_size: int, lanes: int) -> str:
    """How the layer multiplies its tile spectra by its kernels, per frequency (``lanes`` = batch x tiles):

    * ``"block"``: channel-major spectra ``[2*Cin, lanes]`` (real rows, then imaginary rows) times
      the real block ``[[wr^T, -wi^T], [wi^T, wr^T]]`` ``[2*Cout, 2*Cin]``: one GEMM forward and two
      backward (weight gradient, input gradient), each reading the spectra once with twice the
      inner dimension; the tiles, spectra and blocks are channel-major (lanes innermost), cut from and
      overlap-added into images of any layout by offsets.  Pays where the spectra, not the kernels, are the traffic: narrow layers with many
      lanes per channel (fmnist_vgg's 16-32 channels at batch 128: 0.56-0.92x the other forms per
      layer, forward + backward); it lost on VGG16's 64-128-channel conv1/conv2 at inference (1.3-1.6x),
      hence the channel bound;
    * ``"stacked"`` (:func:`stacked_product`): where the kernels bound the product;
    * ``"planes"``: four GEMMs on the planes, otherwise."""
    wide = max(in_channels, out_channels)
    if wide <= BLOCK_MAX_CHANNELS and lanes >= BLOCK_LANES_PER_CHANNEL * wide:
        return "block"
    return "stacked" if stacked_product(in_channels, fft_size, lanes) else "planes"


def _stacked_matrices(d: torch.Tensor, g: torch.Tensor, f_count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``D`` with rows ordered (frequency, plane), so that the tile spectra come out as
    ``[F, 2*M, Cin]`` (real rows, then imaginary rows), and the inverse ``[N*N, 4F]`` that turns
    ``P = X2 @ wr`` and ``Q = X2 @ wi`` into blocks: ``G_r (P_re - Q_im) + G_i (Q_re + P_im)``."""
    d2 = _block_matrices(d, g, f_count)[0]
    gr, gi = g[:, :f_count], g[:, f_count:]
    g4 = torch.stack((torch.stack((gr, gi), -1), torch.stack((gi, -gr), -1)), 1).reshape(g.shape[0], 4 * f_count)
    return d2, g4


def _block_kernels(wm: torch.Tensor) -> torch.Tensor:
    """The kernels [2, F, Cin, Cout] as real blocks [F, 2*Cout, 2*Cin]: ``[[wr^T, -wi^T], [wi^T, wr^T]]``, so
    that ``[yr; yi] = block @ [xr; xi]`` is the complex product ``y = w^T x`` per frequency."""
    wr, wi = wm[0].mT, wm[1].mT
    return torch.cat((torch.cat((wr, -wi), 2), torch.cat((wi, wr), 2)), 1)


def _block_matrices(d: torch.Tensor, g: torch.Tensor, f_count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``D`` with rows and ``G`` with columns ordered (frequency, plane): channel-major tiles
    ``[h*h, Cin*L]`` -> spectra ``[F, 2*Cin, L]``, and products ``[F, 2*Cout, L]`` -> blocks ``[N*N, Cout*L]``."""
    d2 = d.view(2, f_count, d.shape[1]).transpose(0, 1).reshape(2 * f_count, d.shape[1])
    g2 = g.view(g.shape[0], 2, f_count).transpose(1, 2).reshape(g.shape[0], 2 * f_count)
    return d2, g2


def _bias_array(bias, out: torch.Tensor, cout: int) -> np.ndarray:
    """The bias as the numpy vector the overlap-add pass adds (zeros without one)."""
    if bias is not None:
        return bias.detach().to(out.dtype).numpy()
    return np.zeros(cout, dtype=out.numpy().dtype)


def _work_sizes(fft_size: int, kernel_size: int, f_count: int, lanes: int, cin: int, cout: int,
                stacked: bool) -> tuple[int, int, int]:
    """Elements of the tiles, products and blocks of the ``"planes"`` / ``"stacked"`` forward pass on
    ``lanes`` tiles (the spectra have ``2F x lanes x Cin``)."""
    h = fft_size - kernel_size + 1
    planes = 4 if stacked else 2  # the stacked products P, Q have twice the rows
    return h * h * lanes * cin, planes * f_count * lanes * cout, fft_size * fft_size * lanes * cout


def _spectral_blocks(x, wm, d, g, geometry, stacked: bool, xs: torch.Tensor,
                     work: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> np.ndarray:
    """The forward pass of the ``"planes"`` / ``"stacked"`` forms up to the blocks, on images ``x``
    [b, Cin, H, W]: tiles (numba) -> spectra ``xs = D @ tiles`` -> per-frequency product -> blocks
    ``G @ Y``, returned as a numpy view [N, N, b, Ty, Tx, Cout] for the overlap-add.  ``d``, ``g``:
    the matrices of the form (:func:`_stacked_matrices` when ``stacked``); ``xs`` [2F, b*T*Cin]
    receives the spectra (the backward pass keeps them); ``work``: flat buffers of at least the
    sizes of the tiles, products and blocks (:func:`_work_sizes`), reused from chunk to chunk
    (None: fresh ones)."""
    n, k, ph, pw = geometry
    b, cin, height, width = x.shape
    f_count, cout = wm.shape[1], wm.shape[3]
    h, ty, tx, bt = _tiling(n, k, height, width, b)
    sizes = _work_sizes(n, k, f_count, bt, cin, cout, stacked)
    if work is None:
        work = tuple(x.new_empty(size) for size in sizes)
    tiles, y, blocks = (buf[:size] for buf, size in zip(work, sizes, strict=True))
    tiles = tiles.view(h * h, bt * cin)
    if x.stride(1) != 1 and x.stride(3) == 1:  # NCHW rows: stream rows, not channels
        _kernels.tiles_forward_planar(x.detach().numpy(), h, tiles.numpy().reshape(h, h, b, ty, tx, cin))
    else:
        _kernels.tiles_forward(_bhwc(x), h, tiles.numpy().reshape(h, h, b, ty, tx, cin))
    torch.mm(d, tiles, out=xs)  # tile spectra: [2F, B*T*Cin], rows (plane, f), or (f, plane) when stacked
    wr, wi = wm.unbind(0)
    if stacked:
        x2 = xs.view(f_count, 2 * bt, cin)
        y = y.view(2, f_count, 2 * bt, cout)  # P = X2 @ wr, Q = X2 @ wi
        torch.bmm(x2, wr, out=y[0])
        torch.bmm(x2, wi, out=y[1])
    else:
        xr, xi = xs.view(2, f_count, bt, cin).unbind(0)
        y = y.view(2, f_count, bt, cout)
        torch.bmm(xr, wr, out=y[0])
        y[0].baddbmm_(xi, wi, alpha=-1.0)
        torch.bmm(xr, wi, out=y[1])
        y[1].baddbmm_(xi, wr)
    blocks = blocks.view(n * n, bt * cout)
    torch.mm(g, y.view(g.shape[1], bt * cout), out=blocks)  # [N*N, B*T*Cout]
    return blocks.numpy().reshape(n, n, b, ty, tx, cout)


#: Bytes of the intermediates (tiles, spectra, products, blocks) of one chunk of tiles at inference;
#: see :func:`inference_chunk`.
INFERENCE_CHUNK_BYTES = 8 << 20


def inference_chunk(in_channels: int, out_channels: int, fft_size: int, kernel_size: int, height: int, width: int,
                    itemsize: int, chunk_bytes: int | None = None) -> tuple[int, int]:
    """How an inference pass cuts the batch into chunks that run through the whole chain (tiles ->
    spectra -> product -> blocks -> overlap-add) one after the other with one set of buffers:
    ``(images, tile_rows)``, a chunk being ``images`` whole images (more than the batch: the whole batch
    at once), or (``images`` = 1) a strip of ``tile_rows`` rows of tiles of one image.  A chunk holds as many tiles as keep its intermediates
    within ``chunk_bytes`` (default :data:`INFERENCE_CHUNK_BYTES`), at least as many as make them
    outweigh the kernels, which every chunk reads again (VGG16's conv4 at N = 16: 300 MB of kernels,
    5 MB of intermediates per image), and a strip at least the rows a block spills into (``K - 1``
    pixels).  A whole batch at once writes and reads its intermediates (7.5x the input's bytes)
    through memory: ~0.8 GB on VGG16's conv1_2 at batch 8, N = 8 (BENCHMARKS.md "Inference in chunks")."""
    f_count = num_frequencies(fft_size)
    h, ty, tx, per_image = _tiling(fft_size, kernel_size, height, width, 1)
    stacked = product_form(in_channels, out_channels, fft_size, per_image) == "stacked"
    per_tile = itemsize * (2 * f_count * in_channels
                           + sum(_work_sizes(fft_size, kernel_size, f_count, 1, in_channels, out_channels, stacked)))
    budget = INFERENCE_CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    kernel_bytes = itemsize * 2 * f_count * in_channels * out_channels  # read again by every chunk
    tiles = max(1, budget // per_tile, -(-kernel_bytes // per_tile))
    if tiles >= per_image:
        return tiles // per_image, ty
    return 1, min(ty, max(tiles // tx, _min_strip_rows(kernel_size, h)))


def _min_strip_rows(kernel_size: int, tile: int) -> int:
    """The fewest tile rows of a strip such that its blocks spill (``K - 1`` rows) into the next strip only."""
    return max(1, -(-(kernel_size - 1) // tile))


@functools.lru_cache(maxsize=4)
def _chunk_workers(count: int) -> concurrent.futures.ThreadPoolExecutor:
    """``count`` threads that run inference chunks, each with one torch thread (a thread-local setting):
    the chunks run side by side instead of each short op of a chunk being split over the cores."""
    return concurrent.futures.ThreadPoolExecutor(count, thread_name_prefix="flexspec-chunks",
                                                 initializer=torch.set_num_threads, initargs=(1,))


def _inference(x, wm, bias, d, g, geometry) -> torch.Tensor:
    """The forward pass without autograd (no gradient needed): the ``"planes"`` / ``"stacked"`` chain
    run on chunks of whole images or strips of tile rows (:func:`inference_chunk`), so that each
    chunk's intermediates are still in cache when the next pass reads them; the ``"block"`` form as in
    training.  With several torch threads the chunks run on as many worker threads of one torch
    thread each (a shared queue: a descheduled worker delays only its chunk), each with its own
    buffers, reused from chunk to chunk.  A strip owns the output rows its tiles start in; the
    ``N - h`` rows its last tiles spill into the next strip are overlap-added into a carry, added
    once every strip has written its own rows."""
    n, k, ph, pw = geometry
    b, cin, height, width = x.shape
    f_count, cout = wm.shape[1], wm.shape[3]
    h, ty, tx, bt = _tiling(n, k, height, width, b)
    if product_form(cin, cout, n, bt) == "block":
        return _SpectralOaA.apply(x, wm, bias, d, g, geometry)
    images, rows = inference_chunk(cin, cout, n, k, height, width, x.element_size())
    images, rows = min(b, images), min(ty, max(rows, _min_strip_rows(k, h)))
    lanes = images * rows * tx
    stacked = product_form(cin, cout, n, lanes) == "stacked"  # any form is exact: one per call
    if stacked:
        d, g = _stacked_matrices(d, g, f_count)
    out = x.new_empty(b, height + 2 * ph - k + 1, width + 2 * pw - k + 1, cout)
    out_np, (oh, ow) = out.numpy(), out.shape[1:3]
    bias_np = _bias_array(bias, out, cout)
    start_h, start_w = k - 1 - ph, k - 1 - pw  # canvas row/column of output pixel (0, 0)
    chunks = [(b0, t0, min(ty, t0 + rows)) for b0 in range(0, b, images) for t0 in range(0, ty, rows)]
    carry = np.empty((len(chunks), images, n - h, ow, cout), dtype=out_np.dtype) if rows < ty else None
    spills = [(0, 0)] * len(chunks)  # (first output row, rows) of each strip's carry
    no_bias = np.zeros_like(bias_np)
    queue = iter(range(len(chunks)))
    lock = threading.Lock()

    def run_chunks():
        with torch.inference_mode():  # grad mode is per thread: a worker's starts enabled
            _run_chunks()

    def _run_chunks():
        work = tuple(x.new_empty(size) for size in _work_sizes(n, k, f_count, lanes, cin, cout, stacked))
        xs = x.new_empty(d.shape[0] * lanes * cin)
        while True:
            with lock:
                i = next(queue, None)
            if i is None:
                return
            b0, t0, t1 = chunks[i]
            xc = x[b0:b0 + images, :, t0 * h:min(t1 * h, height)]
            spectra = xs[:d.shape[0] * xc.shape[0] * (t1 - t0) * tx * cin].view(d.shape[0], -1)
            blocks = _spectral_blocks(xc, wm, d, g, geometry, stacked, spectra, work)
            dst = out_np[b0:b0 + images]
            lo = 0 if t0 == 0 else min(oh, max(0, t0 * h - start_h))  # the output rows this strip owns
            hi = oh if t1 == ty else min(oh, max(0, t1 * h - start_h))
            if hi > lo:
                _kernels.overlap_add_forward(blocks, h, lo + start_h - t0 * h, start_w, bias_np, dst[:, lo:hi])
            if t1 < ty:  # what this strip adds to the rows the next one owns
                c_lo = min(oh, max(0, t1 * h - start_h))
                spills[i] = c_lo, min(oh, max(0, t1 * h - start_h + n - h)) - c_lo
                _kernels.overlap_add_forward(blocks, h, c_lo + start_h - t0 * h, start_w, no_bias,
                                             carry[i, :len(dst), :spills[i][1]])

    workers = min(torch.get_num_threads(), len(chunks))
    if workers > 1:
        for job in [_chunk_workers(workers).submit(run_chunks) for _ in range(workers)]:
            job.result()
    else:
        run_chunks()
    for i, (c_lo, spill) in enumerate(spills):
        if spill:
            b0 = chunks[i][0]
            dst = out_np[b0:b0 + images]
            dst[:, c_lo:c_lo + spill] += carry[i, :len(dst), :spill]
    return out.permute(0, 3, 1, 2)


class _SpectralOaA(torch.autograd.Function):
    """The whole OaA layer as one autograd node, so that every pass is written once (forward and
    adjoint) and no intermediate is copied:

    tiles (one serial numba pass) -> tile spectra ``D @ tiles`` (one GEMM) -> per-frequency complex
    product in real planes (four batched GEMMs accumulating in place into one buffer, two on
    stacked planes, or one on the real block: :func:`product_form`) -> N x N blocks ``G @ Y`` (one
    GEMM) -> overlap-add, crop and bias (one serial numba pass).  The backward pass runs the adjoints
    in reverse: one numba gather, one GEMM, eight (stacked: four; block: two) batched GEMMs (only
    those whose gradient is needed), one GEMM, one numba gather."""

    @staticmethod
    def forward(ctx, x, wm, bias, d, g, geometry):
        n, k, ph, pw = geometry
        b, cin, height, width = x.shape
        _, f_count, _, cout = wm.shape
        h, ty, tx, bt = _tiling(n, k, height, width, b)
        form = product_form(cin, cout, n, bt)
        ctx.geometry, ctx.x_shape, ctx.form = geometry, x.shape, form
        if form == "block":
            return _SpectralOaA._block_forward(ctx, x, wm, bias, d, g)
        if form == "stacked":
            d, g = _stacked_matrices(d, g, f_count)
        out = x.new_empty(b, height + 2 * ph - k + 1, width + 2 * pw - k + 1, cout)
        xs = x.new_empty(d.shape[0], bt * cin)
        blocks = _spectral_blocks(x, wm, d, g, ctx.geometry, form == "stacked", xs)
        _kernels.overlap_add_forward(blocks, h, k - 1 - ph, k - 1 - pw, _bias_array(bias, out, cout), out.numpy())
        ctx.save_for_backward(xs, wm)
        ctx.d, ctx.g = d, g
        return out.permute(0, 3, 1, 2)

    @staticmethod
    def _block_forward(ctx, x, wm, bias, d, g):
        """The forward pass in the ``"block"`` form (:func:`product_form`): channel-major throughout."""
        n, k, ph, pw = ctx.geometry
        b, cin, height, width = x.shape
        _, f_count, _, cout = wm.shape
        h, ty, tx, bt = _tiling(n, k, height, width, b)
        d, g = _block_matrices(d, g, f_count)
        tiles = x.new_empty(h * h, cin * bt)
        _kernels.tiles_forward_cmajor(*_flat_images(x), h, ty, tx, tiles.numpy().reshape(h, h, cin, bt))
        xs = (d @ tiles).view(f_count, 2 * cin, bt)  # [xr; xi] per frequency
        wb = _block_kernels(wm)
        y = torch.bmm(wb, xs)  # [yr; yi] per frequency: [F, 2*Cout, L]
        blocks = g @ y.view(2 * f_count, cout * bt)  # [N*N, Cout*L]
        # channels-last output, as the other forms: ReLU and max-pool run 2.6-3x faster on it (measured)
        out = x.new_empty(b, height + 2 * ph - k + 1, width + 2 * pw - k + 1, cout).permute(0, 3, 1, 2)
        _kernels.overlap_add_cmajor(blocks.numpy().reshape(n, n, cout, bt), h, ty, tx, k - 1 - ph, k - 1 - pw,
                                    _bias_array(bias, xs, cout), *_flat_images(out))
        ctx.save_for_backward(xs, wb)
        ctx.d, ctx.g = d, g
        return out

    @staticmethod
    def _block_backward(ctx, grad_out):
        """The adjoint of :meth:`_block_forward`: one GEMM per gradient and frequency."""
        xs, wb = ctx.saved_tensors
        n, k, ph, pw = ctx.geometry
        b, cin, height, width = ctx.x_shape
        f_count, cout2, cin2 = wb.shape
        cout = cout2 // 2
        h, ty, tx, bt = _tiling(n, k, height, width, b)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_blocks = grad_out.new_empty(n * n, cout * bt)
        _kernels.overlap_add_adjoint_cmajor(*_flat_images(grad_out), h, ty, tx, k - 1 - ph, k - 1 - pw,
                                            grad_blocks.numpy().reshape(n, n, cout, bt))
        gy = (ctx.g.t() @ grad_blocks).view(f_count, cout2, bt)
        grad_x = grad_w = grad_b = None
        if need_w:  # the gradient of the block, folded back onto the planes it repeats
            gb = torch.bmm(gy, xs.mT)
            g_rr, g_ri, g_ir, g_ii = gb[:, :cout, :cin], gb[:, :cout, cin:], gb[:, cout:, :cin], gb[:, cout:, cin:]
            grad_w = torch.stack(((g_rr + g_ii).mT, (g_ir - g_ri).mT))
        if need_x:
            grad_tiles = ctx.d.t() @ torch.bmm(wb.mT, gy).view(2 * f_count, cin * bt)
            grad_x = grad_out.new_empty(b, height, width, cin).permute(0, 3, 1, 2)  # channels-last, as the output
            _kernels.tiles_adjoint_cmajor(grad_tiles.numpy().reshape(h, h, cin, bt), h, ty, tx, *_flat_images(grad_x))
        if need_b:
            grad_b = grad_out.sum(dim=(0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None

    @staticmethod
    @once_differentiable  # the numba passes are not recorded: refuse double backward instead of a wrong one
    def backward(ctx, grad_out):
        if ctx.form == "block":
            return _SpectralOaA._block_backward(ctx, grad_out)
        xs, wm = ctx.saved_tensors
        n, k, ph, pw = ctx.geometry
        b, cin, height, width = ctx.x_shape
        _, f_count, _, cout = wm.shape
        h, ty, tx, bt = _tiling(n, k, height, width, b)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_blocks = grad_out.new_empty(n * n, bt * cout)
        _kernels.overlap_add_adjoint(_bhwc(grad_out), h, k - 1 - ph, k - 1 - pw,
                                     grad_blocks.numpy().reshape(n, n, b, ty, tx, cout))
        gy = ctx.g.t() @ grad_blocks
        wr, wi = wm.unbind(0)
        grad_x = grad_w = grad_b = None
        if ctx.form == "stacked":
            gp, gq = gy.view(2, f_count, 2 * bt, cout).unbind(0)
            x2 = xs.view(f_count, 2 * bt, cin)
            if need_w:
                grad_w = wm.new_empty(wm.shape)
                torch.bmm(x2.mT, gp, out=grad_w[0])
                torch.bmm(x2.mT, gq, out=grad_w[1])
            if need_x:
                gxs = torch.bmm(gp, wr.mT)
                gxs.baddbmm_(gq, wi.mT)
        else:
            gyr, gyi = gy.view(2, f_count, bt, cout).unbind(0)
            if need_w:
                xr, xi = xs.view(2, f_count, bt, cin).unbind(0)
                grad_w = wm.new_empty(wm.shape)
                torch.bmm(xr.mT, gyr, out=grad_w[0])
                grad_w[0].baddbmm_(xi.mT, gyi)
                torch.bmm(xr.mT, gyi, out=grad_w[1])
                grad_w[1].baddbmm_(xi.mT, gyr, alpha=-1.0)
            if need_x:
                gxs = grad_out.new_empty(2, f_count, bt, cin)
                torch.bmm(gyr, wr.mT, out=gxs[0])
                gxs[0].baddbmm_(gyi, wi.mT)
                torch.bmm(gyi, wr.mT, out=gxs[1])
                gxs[1].baddbmm_(gyr, wi.mT, alpha=-1.0)
        if need_x:
            grad_tiles = ctx.d.t() @ gxs.view(2 * f_count, bt * cin)
            grad_x = grad_out.new_empty(b, height, width, cin)  # channels-last, like the layer's output
            _kernels.tiles_adjoint(grad_tiles.numpy().reshape(h, h, b, ty, tx, cin), h, grad_x.numpy())
            grad_x = grad_x.permute(0, 3, 1, 2)
        if need_b:
            grad_b = grad_out.sum(dim=(0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None


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
    ``seconds`` maps "conv2d" and each candidate N to the median measured time of ``measured``:
    "forward" (inference) or "forward+backward" (a training step's share: output, input and weight
    gradients)."""

    name: str
    input_shape: tuple
    fft_size: int | None
    seconds: dict
    measured: str = "forward"

    def line(self) -> str:
        conv = self.seconds["conv2d"]
        times = ", ".join(f"{k if k == 'conv2d' else 'N=' + str(k)} {v * 1e3:.2f} ms" for k, v in self.seconds.items())
        what = "conv2d (spectral does not pay)" if self.fft_size is None else f"spectral N={self.fft_size}"
        best = conv if self.fft_size is None else self.seconds[self.fft_size]
        return f"{self.name}: {what}, {best / conv:.2f}x conv2d ({self.measured})  [{times}]"


def _eligible_convs(model: nn.Module) -> dict:
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and _ineligible(m) is None}


def _median_seconds(fn, reps: int) -> float:
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def _timed_call(layer: nn.Module, x: torch.Tensor, training: bool):
    """A function running ``layer`` on ``x``: inference, or forward + backward with the input and weight
    gradients (a random upstream gradient, fixed per layer)."""
    if not training:
        def infer():
            with torch.inference_mode():
                layer(x)
        return infer
    xg = x.clone().requires_grad_(True)
    up = torch.randn_like(layer(x).detach())

    def train():
        layer.zero_grad(set_to_none=True)
        xg.grad = None
        torch.autograd.backward(layer(xg), up)
    return train


def plan_spectral(model: nn.Module, example_input: torch.Tensor, candidates=(8, 16), keep_conv2d: bool = False,
                  reps: int = 5, training: bool = False) -> dict:
    """Choose the FFT size of every eligible convolution of ``model`` by measured speed.

    Runs ``model`` once on ``example_input`` to learn each conv's input shape, then times (interleaved
    repetitions, median) ``nn.Conv2d`` and a ``SpectralConv2d`` at each candidate N on that shape:
    inference, or with ``training`` forward + backward (input and weight gradients), as a training
    step runs it.  Returns name -> :class:`LayerChoice`: the fastest N, or None (stay conv2d) where
    conv2d is faster and ``keep_conv2d`` is set.

    Candidates whose tile ``N - K + 1`` divides the layer's side waste no tile area (e.g. N = 9 on
    28/14/7-pixel layers with 3x3 kernels); pass them in ``candidates`` to have them measured.
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
    for name, conv in convs.items():
        if name not in shapes:
            continue
        x = torch.randn(shapes[name], dtype=conv.weight.dtype, device=conv.weight.device)
        conv = copy.deepcopy(conv)  # its gradients are not the model's
        fns = {"conv2d": _timed_call(conv, x, training)}
        for n in candidates:
            if n >= conv.kernel_size[0]:
                fns[n] = _timed_call(SpectralConv2d.from_conv2d(conv, n), x, training)
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
        plan[name] = LayerChoice(name, shapes[name], best_n, seconds, "forward+backward" if training else "forward")
    return plan


def to_spectral(model: nn.Module, fft_size=8, *, example_input: torch.Tensor | None = None, keep_conv2d: bool = False,
                candidates=(8, 16), report=None, training: bool = False) -> nn.Module:
    """A copy of ``model`` with every eligible ``nn.Conv2d`` (stride 1, no groups or dilation,
    square kernel larger than 1x1, zero padding) replaced by ``SpectralConv2d``.

    ``fft_size``: one N for every layer; a dict name -> N (None: keep that layer conv2d); or
    ``"auto"``: chosen per layer by measured speed (:func:`plan_spectral`, needs ``example_input``;
    with ``keep_conv2d`` a layer stays conv2d where spectral does not pay; with ``training`` each layer
    is measured forward + backward, as a training step runs it, instead of at inference).
    ``report``: a callable given one line per converted or kept layer (e.g. ``print``).
    """
    if isinstance(fft_size, str):
        if fft_size != "auto":
            raise UsageError(f"fft_size must be an integer, a dict or 'auto', got {fft_size!r}")
        if example_input is None:
            raise UsageError("fft_size='auto' measures each layer and needs example_input (a batch of inputs)")
        plan = plan_spectral(model, example_input, candidates, keep_conv2d, training=training)
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

