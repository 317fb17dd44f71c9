"""Trace counter: runs the blocked loop nest iteration by iteration and counts the bits moved.

It is the independent reference for the closed form in :mod:`flexspec.dataflow.model`: it
knows nothing of trip-count products or pass multipliers.  It keeps the block of each tensor
that is on chip, loads a block whenever the iteration needs a different one (summing the
real bits of the kernels / tiles in it), tracks how many input-channel blocks every
accumulator block has absorbed (partial sums are written on eviction of an incomplete block
and read back when it returns; a complete block is inverse-transformed and written out), and
records the largest block of each buffer.  Output pixels are attributed to tiles by brute
force (each cropped output pixel to the tile whose h x h region holds its full-convolution
position, clipped to the grid), so edge blocks carry their real share of the output.

Slow by design (Python loop over block iterations): use it on small layers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..spectral.geometry import num_frequencies, tile_grid, tile_size
from .model import DEFAULT_PRECISION, Blocking, Precision, kernel_bits


@dataclass(frozen=True)
class TraceCount:
    kernels_bits: int
    inputs_bits: int
    outputs_bits: int
    psums_bits: int
    kernel_buffer_bits: int
    input_buffer_bits: int
    accumulator_bits: int
    forward_ffts: int
    inverse_ffts: int
    iterations: int

    @property
    def total_bits(self) -> int:
        return self.kernels_bits + self.inputs_bits + self.outputs_bits + self.psums_bits


def _tile_input_pixels(layer, fft_size) -> np.ndarray:
    h = tile_size(fft_size, layer.kernel_size)
    ty, tx = tile_grid(layer.height, layer.width, layer.kernel_size, fft_size)
    yy, xx = np.meshgrid(np.arange(layer.height), np.arange(layer.width), indexing="ij")
    tiles = (yy // h) * tx + (xx // h)
    return np.bincount(tiles.ravel(), minlength=ty * tx)


def _tile_output_pixels(layer, fft_size) -> np.ndarray:
    h = tile_size(fft_size, layer.kernel_size)
    ty, tx = tile_grid(layer.height, layer.width, layer.kernel_size, fft_size)
    shift = layer.kernel_size - 1 - layer.padding
    yy, xx = np.meshgrid(np.arange(layer.out_height), np.arange(layer.out_width), indexing="ij")
    row = np.clip((yy + shift) // h, 0, ty - 1)
    col = np.clip((xx + shift) // h, 0, tx - 1)
    return np.bincount((row * tx + col).ravel(), minlength=ty * tx)


def trace_traffic(layer, nnz, fft_size: int, blocking: Blocking, precision: Precision = DEFAULT_PRECISION, *,
                  input_resident: bool = False, output_resident: bool = False, stored_kernel_bits=None) -> TraceCount:
    """Count the bits the loop nest of ``blocking`` moves, by simulating it.  Kernels count as
    packed entries of ``precision``, or as ``stored_kernel_bits`` (int [Cout, Cin], e.g. a
    design's schedule stream)."""
    p = precision
    nnz = np.asarray(nnz, dtype=np.int64)
    kb = kernel_bits(nnz, fft_size, p) if stored_kernel_bits is None else np.asarray(stored_kernel_bits, np.int64)
    cout, cin = nnz.shape
    F = num_frequencies(fft_size)
    in_pix = _tile_input_pixels(layer, fft_size)
    out_pix = _tile_output_pixels(layer, fft_size)
    T = in_pix.size
    size = {"o": cout, "i": cin, "t": T}
    block = {"o": blocking.cout_block, "i": blocking.cin_block, "t": blocking.tile_block}
    ranges = {x: [range(s, min(s + block[x], size[x])) for s in range(0, size[x], block[x])] for x in "oit"}
    n_i = len(ranges["i"])
    spectral_in = blocking.input_format == "spectral" and not input_resident

    count = dict(kernels=0, inputs=0, outputs=0, psums=0, fwd=0, inv=0)
    peak = dict(k=0, x=0, a=0)
    resident = dict(k=None, x=None, a=None)
    absorbed: dict = {}

    def evict_acc(key):
        o_r, t_r = ranges["o"][key[0]], ranges["t"][key[1]]
        if absorbed[key] < n_i:
            count["psums"] += len(o_r) * len(t_r) * F * p.psum_bits
        else:
            count["inv"] += len(o_r) * len(t_r)
            if not output_resident:
                count["outputs"] += len(o_r) * int(sum(out_pix[t] for t in t_r)) * p.activation_bits

    iterations = 0
    for idx in itertools.product(*(range(len(ranges[x])) for x in blocking.order)):
        at = dict(zip(blocking.order, idx, strict=True))
        o_r, i_r, t_r = ranges["o"][at["o"]], ranges["i"][at["i"]], ranges["t"][at["t"]]
        iterations += 1
        key = (at["o"], at["i"])
        if resident["k"] != key:
            bits = int(kb[o_r.start:o_r.stop, i_r.start:i_r.stop].sum())
            count["kernels"] += bits
            peak["k"] = max(peak["k"], bits)
            resident["k"] = key
        key = (at["i"], at["t"])
        if resident["x"] != key:
            if not input_resident:
                if spectral_in:
                    count["inputs"] += len(i_r) * len(t_r) * F * 2 * p.activation_bits
                else:
                    count["inputs"] += len(i_r) * int(sum(in_pix[t] for t in t_r)) * p.activation_bits
            if not spectral_in:
                count["fwd"] += len(i_r) * len(t_r)
            peak["x"] = max(peak["x"], len(i_r) * len(t_r) * F * 2 * p.activation_bits)
            resident["x"] = key
        key = (at["o"], at["t"])
        if resident["a"] != key:
            if resident["a"] is not None:
                evict_acc(resident["a"])
            if absorbed.get(key, 0) > 0:
                count["psums"] += len(o_r) * len(t_r) * F * p.psum_bits
            peak["a"] = max(peak["a"], len(o_r) * len(t_r) * F * p.psum_bits)
            resident["a"] = key
        absorbed[key] = absorbed.get(key, 0) + 1
    evict_acc(resident["a"])
    if spectral_in:
        count["fwd"] = cin * T  # transformed once, by the producer
    return TraceCount(count["kernels"], count["inputs"], count["outputs"], count["psums"], peak["k"], peak["x"],
                      peak["a"], count["fwd"], count["inv"], iterations)
