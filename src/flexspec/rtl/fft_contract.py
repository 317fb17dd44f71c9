"""Timing and beat layout of the fixed-point FFT/IFFT blocks (plain Python: no Amaranth import).

The blocks themselves are in :mod:`flexspec.rtl.fft`; their arithmetic (bit-exact model) is
:func:`flexspec.accel.fixed_point.fft2d_real_fixed` / :func:`~flexspec.accel.fixed_point.ifft2d_real_fixed`,
both parameterised by one :class:`~flexspec.accel.fixed_point.FFTFormat`.  The cycle model of the
simulator calls :func:`latency_cycles` and :func:`interval_cycles` (one place for both).  See
``INTERFACES.md`` next to this file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..accel.fixed_point import FFTFormat, _nontrivial

#: Register levels of a radix-2 stage whose butterflies need a multiplier: pre-adder, product,
#: combine (k1-k3, k1+k2), then round + butterfly.
MULTIPLIER_STAGE_CYCLES = 4
#: Register levels of a stage with only W = 1 and W = -j twiddles: the butterfly.
WIRE_STAGE_CYCLES = 1


def stage_has_multiplier(n: int, stage: int) -> bool:
    """Whether radix-2 stage ``stage`` (1-based, span 2^stage) of an N-point DIT transform multiplies."""
    m = 2**stage
    return bool(np.any(_nontrivial(n, np.arange(m // 2) * (n // m))))


@dataclass(frozen=True)
class StageShape:
    """One radix-2 stage of an N-point DIT transform on ``width``-bit inputs: stage ``s`` (1-based),
    butterfly span ``m = 2^s`` and half-span ``h``, operand / output widths (one bit of growth a stage),
    whether it multiplies, and the extra register levels its non-multiplying paths are delayed by."""

    s: int
    m: int
    h: int
    w_in: int
    w_out: int
    multiplier: bool
    extra_cycles: int


def stage_shapes(n: int, width: int) -> list[StageShape]:
    """The stages of one pipelined 1-D transform (the RTL's generator and the resource model walk these)."""
    out = []
    for s in range(1, n.bit_length()):
        mult = stage_has_multiplier(n, s)
        out.append(StageShape(s, 2**s, 2 ** (s - 1), width if s == 1 else width + s, width + 1 + s, mult,
                              MULTIPLIER_STAGE_CYCLES - 1 if mult else 0))
    return out


def stage_latency_cycles(n: int, stage: int) -> int:
    return MULTIPLIER_STAGE_CYCLES if stage_has_multiplier(n, stage) else WIRE_STAGE_CYCLES


def transform_latency_cycles(n: int) -> int:
    """Register levels of one pipelined 1-D N-point transform (N=4: 2, N=8: 6, N=16: 10)."""
    return sum(stage_latency_cycles(n, s) for s in range(1, n.bit_length()))


def beats_in(fmt: FFTFormat) -> int:
    """Input beats per tile: N rows (FFT) or N/2+1 half-plane columns (IFFT)."""
    return fmt.half if fmt.inverse else fmt.n


def beats_out(fmt: FFTFormat) -> int:
    """Output beats per tile: N/2+1 half-plane columns (FFT) or N rows (IFFT)."""
    return fmt.n if fmt.inverse else fmt.half


def latency_cycles(fmt: FFTFormat) -> int:
    """Clock edges from the edge accepting a tile's first beat (edge 0) to the edge after which its
    first output beat is valid, without stalls: the last input beat is accepted at edge
    ``beats_in - 1``, leaves transform A after ``L1`` more edges and is written into the corner turn
    at edge ``beats_in - 1 + L1``; the reader loads the first beat into transform B at the next
    edge, whose ``L1`` levels end in the output (rounding) register: ``beats_in + 2 L1``."""
    return beats_in(fmt) + 2 * transform_latency_cycles(fmt.n)


def interval_cycles(fmt: FFTFormat) -> int:
    """Cycles between tiles at full rate (input offered every cycle, output always ready): N."""
    return max(beats_in(fmt), beats_out(fmt))


def release_index(fmt: FFTFormat) -> int:
    """The reader frees a corner-turn bank for the next tile while reading this beat of it: the
    next tile's first write comes ``transform_latency_cycles`` cycles after its acceptance, when
    the reader has finished (see fft.py)."""
    return max(0, beats_out(fmt) - 1 - transform_latency_cycles(fmt.n))


def in_beat_bits(fmt: FFTFormat) -> int:
    return fmt.n * fmt.in_bits if not fmt.inverse else fmt.n * 2 * fmt.in_bits


def out_beat_bits(fmt: FFTFormat) -> int:
    return fmt.n * 2 * fmt.out_bits if not fmt.inverse else fmt.n * fmt.out_bits


def _pack(values, bits: int) -> list[int]:
    """Rows of signed integers [beats, k] -> one int per beat, value j at bits [j*bits, (j+1)*bits)."""
    values = np.asarray(values, dtype=np.int64)
    mask = (1 << bits) - 1
    out = []
    for row in values:
        word = 0
        for j, v in enumerate(row.tolist()):
            word |= (int(v) & mask) << (j * bits)
        out.append(word)
    return out


def _unpack(words, count: int, bits: int) -> np.ndarray:
    mask, half = (1 << bits) - 1, 1 << (bits - 1)
    out = np.zeros((len(words), count), dtype=np.int64)
    for b, w in enumerate(words):
        for j in range(count):
            v = (int(w) >> (j * bits)) & mask
            out[b, j] = v - (1 << bits) if v & half else v
    return out


def _interleave(re, im):
    """[..., k] re and im -> [..., 2k] with re of value j at 2j and im at 2j+1."""
    out = np.empty(re.shape[:-1] + (2 * re.shape[-1],), dtype=np.int64)
    out[..., 0::2], out[..., 1::2] = re, im
    return out


def pack_input(fmt: FFTFormat, *data) -> list[int]:
    """Input beats of tiles: FFT ``pack_input(fmt, tiles [T, N, N])`` (one row per beat);
    IFFT ``pack_input(fmt, re, im)`` with [T, N, N/2+1] (one column per beat)."""
    if fmt.inverse:
        re, im = (np.asarray(d, dtype=np.int64) for d in data)
        cols = _interleave(re, im).reshape(-1, fmt.n, fmt.half, 2).transpose(0, 2, 1, 3)
        return _pack(cols.reshape(-1, 2 * fmt.n), fmt.in_bits)
    tiles = np.asarray(data[0], dtype=np.int64)
    return _pack(tiles.reshape(-1, fmt.n), fmt.in_bits)


def unpack_output(fmt: FFTFormat, words):
    """Output beats -> FFT (re, im) [T, N, N/2+1] or IFFT tiles [T, N, N]."""
    if fmt.inverse:
        return _unpack(words, fmt.n, fmt.out_bits).reshape(-1, fmt.n, fmt.n)
    v = _unpack(words, 2 * fmt.n, fmt.out_bits).reshape(-1, fmt.half, fmt.n, 2).transpose(0, 2, 1, 3)
    return v[..., 0], v[..., 1]
