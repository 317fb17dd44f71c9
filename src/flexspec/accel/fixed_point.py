"""Bit-exact fixed-point arithmetic of the sparse Hadamard-product PE array.

This is the functional model that the generated RTL (``flexspec.rtl``) reproduces bit for
bit, and that the accelerator's functional simulation uses.

Number formats
--------------
* Tile values X[f] and kernel values W[p, f] are complex; real and imaginary parts are each a
  signed ``data_bits``-bit two's-complement integer (default 16) with a power-of-two scale:
  ``value = integer * 2**-frac_bits``.  ``frac_bits`` is chosen per layer (separately for
  tiles and kernels) from the largest magnitude, see :func:`choose_frac_bits`; it may be
  negative for large values.
* Quantization (:func:`quantize_complex`) rounds to nearest, ties to even (``numpy.rint``),
  then saturates to ``[-2**(bits-1), 2**(bits-1) - 1]``.
* A complex product is computed in full precision:
  ``re = xr*wr - xi*wi``, ``im = xr*wi + xi*wr`` (4 real multipliers), or with the 3-multiplier
  Gauss trick ``k1 = wr*(xr+xi)``, ``k2 = xr*(wi-wr)``, ``k3 = xi*(wr+wi)``, ``re = k1-k3``,
  ``im = k1+k2``.  Both give the identical integer (tests check it); only the DSP count differs
  (``dsp_per_complex_mac``).
* Accumulators are signed ``acc_bits`` wide (default 48, the width of a DSP48 P register) with
  ``tile_frac_bits + kernel_frac_bits`` fractional bits.  **Overflow wraps** (two's
  complement modulo ``2**acc_bits``), exactly what the RTL adder does; :func:`max_terms`
  gives how many products can be summed without any wrap (for 16-bit data and 48-bit
  accumulators: 65535 products, i.e. far more input channels than any layer has), and
  :func:`required_acc_bits` the width needed for a given count.  Because wrapping is
  modular, wrapping once at the end equals wrapping after every addition, which lets the
  executor sum in int64 and wrap once.

Schedule execution
------------------
:func:`execute_group` replays a per-cycle read table ``table[c, p]`` (frequency index read by
PE ``p`` in cycle ``c``; -1 = idle) against a tile buffer of ``B`` banks with ``ports`` read
ports each (frequency ``f`` lives in bank ``bank_of[f]`` at address = its rank among that
bank's frequencies, :func:`bank_addresses`).  A bank serving more reads than ports in one
cycle raises :class:`BankConflictError`.  Without broadcast every PE read uses a port of its
own; with ``broadcast=True`` PEs reading the *same* frequency in the same cycle share one
port (one read, fanned out), so only distinct frequencies are counted.

Fixed-point 2-D FFT and IFFT (the FFT/IFFT engines, ``flexspec.rtl.fft``)
------------------------------------------------------------------------
:func:`fft2d_real_fixed` (real N x N tile -> Hermitian half-plane N x (N/2+1), numpy ``rfft2``
layout, unnormalized) and :func:`ifft2d_real_fixed` (half-plane -> real tile, ``N^2 irfft2``)
are the bit-exact models of the RTL blocks; :class:`FFTFormat` holds their parameters.

* Radix-2 decimation in time along one axis at a time: rows then columns (FFT), columns then
  rows (IFFT; the row transform extends the N/2+1 stored bins by X[N-k] = conj(X[k]) and keeps
  the real part of a complex IFFT, which is numpy's ``irfft``).
* Twiddles: ``round(cos, sin * 2^(tw_bits-1))`` (float -> int conversions on the host round to
  nearest even, ``numpy.rint``; no ties occur).  W = 1 and W = -j (+j inverse) are exact wires.
  Other products ``b * W`` are formed exactly and rounded by :func:`round_shift` by
  ``tw_bits - 1`` bits: **round half away from zero** (the datapath's one rounding rule).
* No scaling between stages: each radix-2 stage grows the word by one bit and each 1-D transform
  starts with one guard bit, so a stage ``s`` (1-based) of a transform whose input is ``w`` bits
  wide produces ``w + 1 + s`` bits.  *No overflow is possible*: after ``s`` stages a value is a
  2^s-point DFT of the transform's inputs plus its rounding error, so its magnitude is at most
  ``2^s max|input| + E``; a real input of ``w`` bits has ``max|input| <= 2^(w-1)``, a complex
  one ``<= sqrt(2) 2^(w-1)``, while ``w + 1 + s`` signed bits hold ``2^(w+s) - 1``, a margin of
  at least ``sqrt(2)`` that the rounding error E (bounded below, a few units) never uses up.
  The model checks it anyway (:class:`FixedPointOverflowError`).
* Output: ``saturate(round_shift(v, out_shift), out_bits)``; saturations are counted.

Error bound (derived, data-dependent, rigorous; :func:`fft2d_real_checked`,
:func:`ifft2d_real_checked`).  Let ``e`` bound the magnitude of the error of every complex value
(exact arithmetic on the same inputs as reference; the initial ``e`` is the caller's input
error).  A butterfly ``a' = a + t``, ``b' = a - t`` with ``t = round(b W_q)`` has
``t - b_true W = b (W_q - W) + (b - b_true) W + r`` with ``|r| <= sqrt(2)/2`` (each part rounded
to within 1/2), so ``e_t <= e_b + |b| |W_q - W| + sqrt(2)/2`` (``e_t = e_b`` for exact twiddles)
and ``e_a' = e_b' <= e_a + e_t``.  The model propagates these bounds through the same butterfly
network as the values (``|b|`` and ``|W_q - W|`` are the actual ones), so each output gets its
own bound; the output rounding adds 1/2 per part.  Every output part then satisfies
``|out - reference / 2^out_shift| <= e / 2^out_shift + 1/2`` when nothing saturated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import FlexSpecError, UsageError

__all__ = [
    "AccumulatorOverflowError",
    "BankConflictError",
    "FFTFormat",
    "FFT_SIZES",
    "FixedPointFormat",
    "FixedPointOverflowError",
    "TransformCheck",
    "bank_addresses",
    "check_bank_conflicts",
    "choose_frac_bits",
    "complex_product",
    "dequantize",
    "execute_group",
    "execute_group_tiles",
    "fft2d_real_checked",
    "fft2d_real_fixed",
    "ifft2d_real_checked",
    "ifft2d_real_fixed",
    "max_terms",
    "quantize_complex",
    "quantize_real",
    "required_acc_bits",
    "round_shift",
    "saturate",
    "twiddles_fixed",
    "wrap_signed",
]


class BankConflictError(FlexSpecError):
    """A schedule asks a tile-buffer bank for more reads in one cycle than it has ports."""

    def __init__(self, cycle: int, bank: int, reads: int, ports: int, group: int | None = None):
        self.cycle, self.bank, self.reads, self.ports, self.group = cycle, bank, reads, ports, group
        where = f"group {group}, " if group is not None else ""
        what = f"bank {bank} gets {reads} reads" if bank >= 0 else "a bank gets more reads"
        super().__init__(
            f"bank conflict: {where}cycle {cycle}, {what} but has {ports} "
            f"read port(s); the schedule is not valid for this bank map (re-run the scheduler)"
        )


class AccumulatorOverflowError(FlexSpecError):
    """A sum would not fit the accumulator width (raised only where asked to check)."""


class FixedPointOverflowError(FlexSpecError):
    """A value inside a transform left its word (impossible by the width rule: a design defect)."""


# --------------------------------------------------------------------------- formats


def choose_frac_bits(max_abs: float, bits: int = 16) -> int:
    """Largest fractional-bit count such that ``max_abs`` quantizes without saturation.

    Returns the largest integer ``q`` with ``rint(max_abs * 2**q) <= 2**(bits-1) - 1``
    (``q`` may be negative).  A zero (or non-finite-free all-zero) input gives ``bits - 1``.
    """
    if bits < 2 or bits > 32:
        raise UsageError(f"data width must be 2..32 bits, got {bits}")
    max_abs = float(max_abs)
    if not np.isfinite(max_abs) or max_abs < 0:
        raise UsageError(f"max magnitude must be finite and >= 0, got {max_abs}")
    limit = 2 ** (bits - 1) - 1
    if max_abs == 0.0:
        return bits - 1
    q = int(np.floor(np.log2(limit / max_abs)))
    # exact adjustment around the floating-point estimate
    while np.rint(max_abs * 2.0 ** (q + 1)) <= limit:
        q += 1
    while np.rint(max_abs * 2.0**q) > limit:
        q -= 1
    return q


def max_terms(data_bits: int = 16, acc_bits: int = 48) -> int:
    """How many full-precision complex-product parts can be summed with no possible wrap.

    One product part (``xr*wr - xi*wi`` or ``xr*wi + xi*wr``) of two ``data_bits`` signed
    operands has magnitude at most ``2**(2*data_bits - 1)``; a sum of ``n`` of them fits a
    signed ``acc_bits`` accumulator when ``n * 2**(2*data_bits-1) <= 2**(acc_bits-1) - 1``.
    """
    bound = 2 ** (2 * data_bits - 1)
    return (2 ** (acc_bits - 1) - 1) // bound


def required_acc_bits(num_terms: int, data_bits: int = 16) -> int:
    """Smallest accumulator width that sums ``num_terms`` products with no possible wrap."""
    acc = 2 * data_bits
    while max_terms(data_bits, acc) < num_terms:
        acc += 1
    return acc


@dataclass(frozen=True)
class FixedPointFormat:
    """Fixed-point configuration of one layer on the PE array.

    ``tile_frac_bits``/``kernel_frac_bits``: power-of-two scales of tile and kernel values
    (value = integer * 2**-frac).  Accumulators carry ``acc_frac_bits`` = their sum.
    """

    data_bits: int = 16
    tile_frac_bits: int = 15
    kernel_frac_bits: int = 15
    acc_bits: int = 48
    dsp_per_complex_mac: int = 3

    def __post_init__(self):
        if not 2 <= self.data_bits <= 27:
            raise UsageError(f"data_bits must be 2..27 (a DSP multiplier input), got {self.data_bits}")
        if not 2 * self.data_bits + 1 <= self.acc_bits <= 63:
            raise UsageError(
                f"acc_bits must be between 2*data_bits+1 = {2 * self.data_bits + 1} and 63, "
                f"got {self.acc_bits}"
            )
        if self.dsp_per_complex_mac not in (3, 4):
            raise UsageError(f"dsp_per_complex_mac must be 3 or 4, got {self.dsp_per_complex_mac}")

    @property
    def acc_frac_bits(self) -> int:
        return self.tile_frac_bits + self.kernel_frac_bits

    @property
    def max_terms(self) -> int:
        """Products summable per accumulator with no possible wrap."""
        return max_terms(self.data_bits, self.acc_bits)

    @classmethod
    def for_values(cls, tile, kernel, data_bits: int = 16, acc_bits: int = 48,
                   dsp_per_complex_mac: int = 3) -> FixedPointFormat:
        """Choose the scales from the largest real/imaginary magnitude of each operand set."""
        return cls(
            data_bits=data_bits,
            tile_frac_bits=choose_frac_bits(_max_part(tile), data_bits),
            kernel_frac_bits=choose_frac_bits(_max_part(kernel), data_bits),
            acc_bits=acc_bits,
            dsp_per_complex_mac=dsp_per_complex_mac,
        )

    def quantize_tile(self, x):
        return quantize_complex(x, self.data_bits, self.tile_frac_bits)

    def quantize_kernel(self, w):
        return quantize_complex(w, self.data_bits, self.kernel_frac_bits)

    def dequantize_acc(self, re, im):
        return dequantize(re, im, self.acc_frac_bits)


def _max_part(x) -> float:
    x = np.asarray(x)
    if x.size == 0:
        return 0.0
    return float(max(np.max(np.abs(np.real(x))), np.max(np.abs(np.imag(x)))))


# --------------------------------------------------------------------------- conversion


def saturate(x, bits: int):
    """Clip integers to the signed ``bits`` range."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return np.clip(x, lo, hi)


def wrap_signed(x, bits: int):
    """Two's-complement wrap of int64 values to ``bits`` (<= 63) bits."""
    x = np.asarray(x, dtype=np.int64)
    if bits >= 64:
        return x
    half = np.uint64(1 << (bits - 1))
    mask = np.uint64((1 << bits) - 1)
    u = (x.view(np.uint64) + half) & mask  # modular arithmetic, no int64 overflow
    return u.view(np.int64) - np.int64(1 << (bits - 1))


def quantize_complex(x, bits: int, frac_bits: int):
    """Complex values -> (re, im) int64 with round-to-nearest (ties to even) and saturation."""
    x = np.asarray(x)
    scale = np.ldexp(1.0, int(frac_bits))
    out = []
    for part in (np.real(x), np.imag(x)):
        part = np.asarray(part, dtype=np.float64)
        if not np.all(np.isfinite(part)):
            raise UsageError("cannot quantize non-finite values (NaN or infinity)")
        r = np.rint(part * scale)
        r = np.clip(r, -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)
        out.append(r.astype(np.int64))
    return out[0], out[1]


def quantize_real(x, bits: int, frac_bits: int):
    """Real values -> int64, the rule of :func:`quantize_complex` (nearest, ties to even; saturate)."""
    return quantize_complex(np.asarray(x, dtype=np.float64), bits, frac_bits)[0]


def round_shift(x, shift: int):
    """Arithmetic right shift by ``shift`` bits, rounding half away from zero (int64 in and out):
    ``(x + 2^(shift-1) - [x < 0]) >> shift``.  The datapath's one rounding rule (RTL: one adder
    with the sign bit as carry-in, then a wire shift)."""
    x = np.asarray(x, dtype=np.int64)
    shift = int(shift)
    if shift < 0:
        raise UsageError(f"rounding shift must be >= 0, got {shift}")
    if shift == 0:
        return x.copy()
    return (x + (np.int64(1) << np.int64(shift - 1)) - (x < 0)) >> np.int64(shift)


def dequantize(re, im, frac_bits: int):
    """(re, im) integers with ``frac_bits`` fractional bits -> complex128."""
    scale = np.ldexp(1.0, -int(frac_bits))
    return (np.asarray(re, dtype=np.float64) + 1j * np.asarray(im, dtype=np.float64)) * scale


# --------------------------------------------------------------------------- arithmetic


def complex_product(xr, xi, wr, wi, dsp_per_complex_mac: int = 3):
    """Full-precision integer complex product (re, im) as int64 (4- or 3-multiplier form)."""
    xr, xi, wr, wi = (np.asarray(a, dtype=np.int64) for a in (xr, xi, wr, wi))
    if dsp_per_complex_mac == 4:
        return xr * wr - xi * wi, xr * wi + xi * wr
    if dsp_per_complex_mac == 3:
        k1 = wr * (xr + xi)
        k2 = xr * (wi - wr)
        k3 = xi * (wr + wi)
        return k1 - k3, k1 + k2
    raise UsageError(f"dsp_per_complex_mac must be 3 or 4, got {dsp_per_complex_mac}")


def bank_addresses(bank_of) -> np.ndarray:
    """Address of each frequency inside its bank: its rank among that bank's frequencies."""
    bank_of = np.asarray(bank_of, dtype=np.int64)
    addr = np.zeros(bank_of.shape, dtype=np.int64)
    if bank_of.size == 0:
        return addr
    order = np.argsort(bank_of, kind="stable")
    sorted_banks = bank_of[order]
    starts = np.searchsorted(sorted_banks, sorted_banks, side="left")
    addr[order] = np.arange(bank_of.size) - starts
    return addr


def _check_table(table, num_freq: int, num_pe: int | None = None) -> np.ndarray:
    table = np.asarray(table)
    if table.ndim != 2:
        raise UsageError(f"schedule table must be 2-D [cycles, PEs], got shape {table.shape}")
    if not np.issubdtype(table.dtype, np.integer):
        raise UsageError(f"schedule table must hold integers, got {table.dtype}")
    table = table.astype(np.int64)
    if num_pe is not None and table.shape[1] != num_pe:
        raise UsageError(f"schedule table has {table.shape[1]} PE columns but the kernels have {num_pe} rows")
    if np.any(table < -1) or np.any(table >= num_freq):
        raise UsageError(f"schedule table holds a frequency outside -1..{num_freq - 1}")
    return table


def check_bank_conflicts(table, bank_of, ports: int, broadcast: bool = False, group: int | None = None):
    """Raise :class:`BankConflictError` (first cycle, lowest bank) if any bank is over-subscribed.

    Returns the per-cycle, per-bank read counts [cycles, B] (int64).
    """
    bank_of = np.asarray(bank_of, dtype=np.int64)
    table = _check_table(table, bank_of.size)
    if ports < 1:
        raise UsageError(f"read ports per bank must be >= 1, got {ports}")
    cycles, num_pe = table.shape
    num_banks = int(bank_of.max()) + 1 if bank_of.size else 1
    counts = np.zeros((cycles, num_banks), dtype=np.int64)
    valid = table >= 0
    if cycles and np.any(valid):
        c_idx = np.broadcast_to(np.arange(cycles)[:, None], table.shape)[valid]
        f_idx = table[valid]
        if broadcast:
            # count distinct frequencies per cycle
            key = np.unique(c_idx * bank_of.size + f_idx)
            c_idx, f_idx = key // bank_of.size, key % bank_of.size
        np.add.at(counts, (c_idx, bank_of[f_idx]), 1)
        bad = np.argwhere(counts > ports)
        if bad.size:
            c, b = (int(v) for v in bad[0])
            raise BankConflictError(c, b, int(counts[c, b]), ports, group)
    return counts


def execute_group(table, bank_of, ports, tile_re, tile_im, kernel_re, kernel_im, broadcast=False,
                  acc_re=None, acc_im=None, acc_bits: int = 48, dsp_per_complex_mac: int = 3,
                  group: int | None = None):
    """Replay one group's schedule on one tile; return the P x F accumulators (re, im) int64.

    ``tile_re/im`` [F] integers (the banked tile buffer's contents), ``kernel_re/im`` [P, F]
    (kernel value of PE p at frequency f; only scheduled positions are read).  Each valid
    ``table[c, p] = f`` adds ``X[f] * W[p, f]`` to accumulator ``(p, f)``; the result is
    ``acc_in + sum`` wrapped to ``acc_bits``.  Optional ``acc_re/acc_im`` [P, F] continue an
    accumulation (e.g. over the input channels of one output-channel group).
    """
    re, im = execute_group_tiles(
        table, bank_of, ports,
        np.asarray(tile_re)[None, :], np.asarray(tile_im)[None, :],
        kernel_re, kernel_im, broadcast=broadcast,
        acc_re=None if acc_re is None else np.asarray(acc_re)[None],
        acc_im=None if acc_im is None else np.asarray(acc_im)[None],
        acc_bits=acc_bits, dsp_per_complex_mac=dsp_per_complex_mac, group=group,
    )
    return re[0], im[0]


def execute_group_tiles(table, bank_of, ports, tile_re, tile_im, kernel_re, kernel_im, broadcast=False,
                        acc_re=None, acc_im=None, acc_bits: int = 48, dsp_per_complex_mac: int = 3,
                        group: int | None = None):
    """:func:`execute_group` applied to T tiles at once: tiles [T, F] -> accumulators [T, P, F]."""
    kernel_re = np.asarray(kernel_re, dtype=np.int64)
    kernel_im = np.asarray(kernel_im, dtype=np.int64)
    if kernel_re.ndim != 2 or kernel_re.shape != kernel_im.shape:
        raise UsageError(f"kernel arrays must both be [P, F], got {kernel_re.shape} and {kernel_im.shape}")
    num_pe, num_freq = kernel_re.shape
    tile_re = np.asarray(tile_re, dtype=np.int64)
    tile_im = np.asarray(tile_im, dtype=np.int64)
    if tile_re.ndim != 2 or tile_re.shape != tile_im.shape or tile_re.shape[1] != num_freq:
        raise UsageError(f"tile arrays must both be [T, {num_freq}], got {tile_re.shape} and {tile_im.shape}")
    bank_of = np.asarray(bank_of, dtype=np.int64)
    if bank_of.shape != (num_freq,):
        raise UsageError(f"bank map must have one bank per frequency ({num_freq}), got shape {bank_of.shape}")
    table = _check_table(table, num_freq, num_pe)
    check_bank_conflicts(table, bank_of, ports, broadcast=broadcast, group=group)

    num_tiles = tile_re.shape[0]
    # multiplicity of each (p, f) read (a valid schedule reads each at most once, but the
    # executor is exact for any table)
    mult = np.zeros((num_pe, num_freq), dtype=np.int64)
    valid = table >= 0
    if np.any(valid):
        p_idx = np.broadcast_to(np.arange(num_pe)[None, :], table.shape)[valid]
        np.add.at(mult, (p_idx, table[valid]), 1)
    pr, pi = complex_product(tile_re[:, None, :], tile_im[:, None, :], kernel_re[None], kernel_im[None],
                             dsp_per_complex_mac)
    out_re = pr * mult[None]
    out_im = pi * mult[None]
    if acc_re is not None:
        out_re = out_re + np.broadcast_to(np.asarray(acc_re, dtype=np.int64), (num_tiles, num_pe, num_freq))
    if acc_im is not None:
        out_im = out_im + np.broadcast_to(np.asarray(acc_im, dtype=np.int64), (num_tiles, num_pe, num_freq))
    return wrap_signed(out_re, acc_bits), wrap_signed(out_im, acc_bits)


# --------------------------------------------------------------------------- FFT / IFFT engines

#: FFT sizes the fixed-point transforms (model and RTL) support.
FFT_SIZES = (2, 4, 8, 16, 32)
_HALF_SQRT2 = math.sqrt(0.5)  # magnitude bound of one complex rounding (1/2 per part)


@dataclass(frozen=True)
class FFTFormat:
    """Parameters of one fixed-point 2-D transform (the model's and the RTL's).

    ``n``: FFT size N; ``in_bits``: width of each input part; ``out_bits``/``out_shift``: the
    output is ``saturate(round_shift(v, out_shift), out_bits)``; ``tw_bits``: twiddle width
    (``tw_bits - 1`` fractional bits); ``inverse``: the IFFT (half-plane in, real tile out).
    """

    n: int
    in_bits: int
    out_bits: int
    out_shift: int
    tw_bits: int = 18
    inverse: bool = False

    def __post_init__(self):
        if self.n not in FFT_SIZES:
            raise UsageError(f"FFT size must be one of {FFT_SIZES}, got {self.n}")
        if not 2 <= self.in_bits <= 32:
            raise UsageError(f"FFT input width must be 2..32 bits, got {self.in_bits}")
        if not 4 <= self.tw_bits <= 27:
            raise UsageError(f"twiddle width must be 4..27 bits, got {self.tw_bits}")
        if self.full_bits + self.tw_bits > 62:
            raise UsageError(f"FFT words of {self.full_bits} bits times {self.tw_bits}-bit twiddles exceed "
                             f"the 62-bit products the model forms exactly; use narrower inputs or twiddles")
        if not 2 <= self.out_bits <= self.full_bits:
            raise UsageError(f"FFT output width must be 2..{self.full_bits} bits, got {self.out_bits}")
        if not 0 <= self.out_shift <= self.full_bits:
            raise UsageError(f"FFT output shift must be 0..{self.full_bits}, got {self.out_shift}")
        # W = 1 and W = -j are wires; every twiddle that is multiplied must fit tw_bits signed bits
        wr, wi = twiddles_fixed(self.n, self.tw_bits, self.inverse)
        nontrivial = _nontrivial(self.n, np.arange(self.n // 2))
        if np.any(nontrivial) and np.abs(np.concatenate([wr[nontrivial], wi[nontrivial]])).max() >= 2 ** (self.tw_bits - 1):
            raise UsageError(f"{self.tw_bits}-bit twiddles cannot hold the N={self.n} twiddles")

    @property
    def stages(self) -> int:
        """Radix-2 stages of one 1-D transform: log2(N)."""
        return self.n.bit_length() - 1

    @property
    def half(self) -> int:
        """Columns of the half-plane: N/2 + 1."""
        return self.n // 2 + 1

    @property
    def tw_frac_bits(self) -> int:
        return self.tw_bits - 1

    @property
    def mid_bits(self) -> int:
        """Word width after the first 1-D transform (rows of the FFT, columns of the IFFT)."""
        return self.in_bits + 1 + self.stages

    @property
    def full_bits(self) -> int:
        """Word width after the second 1-D transform, before the output rounding."""
        return self.mid_bits + 1 + self.stages

    def out_frac_bits(self, in_frac_bits: int) -> int:
        """Fractional bits of the output when the input has ``in_frac_bits``.

        FFT: the output is the unnormalized DFT (numpy ``rfft2``), scaled by 2^-out_shift.
        IFFT: numpy's ``irfft2`` carries 1/N^2 = 2^-(2 stages), folded into the binary point."""
        return in_frac_bits - self.out_shift + (2 * self.stages if self.inverse else 0)


def twiddles_fixed(n: int, tw_bits: int, inverse: bool = False):
    """Integer twiddles W_n^k = exp(-+2 pi i k / n), k = 0..n/2-1: (wr, wi) int64, ``tw_bits - 1``
    fractional bits, rounded to nearest (``numpy.rint``; no ties occur)."""
    k = np.arange(n // 2)
    angle = (2.0 if inverse else -2.0) * np.pi * k / n
    scale = float(2 ** (tw_bits - 1))
    wr = np.rint(np.cos(angle) * scale).astype(np.int64)
    wi = np.rint(np.sin(angle) * scale).astype(np.int64)
    return wr, wi


def _nontrivial(n: int, exponent):
    """Twiddles W_n^e that need a multiplier (all but W = 1 and W = -+j)."""
    exponent = np.asarray(exponent)
    return (exponent != 0) & ((exponent != n // 4) if n >= 4 else True)


def _bit_reverse(n: int) -> np.ndarray:
    bits = n.bit_length() - 1
    return np.array([int(format(i, f"0{bits}b")[::-1], 2) if bits else 0 for i in range(n)], dtype=np.int64)


def _fft1d(re, im, err, n: int, width: int, tw_bits: int, inverse: bool):
    """Radix-2 DIT N-point transform along the last axis of int64 ``re``/``im`` (``width``-bit
    inputs); returns values of ``width + 1 + log2 N`` bits and, when ``err`` (magnitude bound of
    each input's error, float, broadcastable) is given, each output's error bound."""
    rev = _bit_reverse(n)
    re, im = re[..., rev], im[..., rev]
    if err is not None:
        err = np.broadcast_to(err, re.shape)[..., rev].astype(np.float64)
    wr_all, wi_all = twiddles_fixed(n, tw_bits, inverse)
    frac = tw_bits - 1
    k = np.arange(n // 2)
    w_exact = np.exp((2j if inverse else -2j) * np.pi * k / n)
    w_err = np.abs((wr_all + 1j * wi_all) * 2.0**-frac - w_exact)
    lead = re.shape[:-1]
    for s in range(1, n.bit_length()):
        m, h = 2**s, 2 ** (s - 1)
        shape = lead + (n // m, 2, h)
        r, i = re.reshape(shape), im.reshape(shape)
        ar, ai, br, bi = r[..., 0, :], i[..., 0, :], r[..., 1, :], i[..., 1, :]
        e = np.arange(h) * (n // m)  # twiddle W_m^j = W_n^(j n/m)
        nt = np.flatnonzero(_nontrivial(n, e))
        js = np.flatnonzero((e == n // 4) & (n >= 4))
        tr, ti = br.copy(), bi.copy()
        if js.size:  # b * (-j) = bi - j br (forward); b * (+j) = -bi + j br (inverse)
            tr[..., js], ti[..., js] = (-bi[..., js], br[..., js]) if inverse else (bi[..., js], -br[..., js])
        if nt.size:
            wr, wi = wr_all[e[nt]], wi_all[e[nt]]
            bnr, bni = br[..., nt], bi[..., nt]
            tr[..., nt] = round_shift(bnr * wr - bni * wi, frac)
            ti[..., nt] = round_shift(bnr * wi + bni * wr, frac)
        out_w = width + 1 + s
        new_r = np.empty(shape, dtype=np.int64)
        new_i = np.empty(shape, dtype=np.int64)
        np.add(ar, tr, out=new_r[..., 0, :])
        np.subtract(ar, tr, out=new_r[..., 1, :])
        np.add(ai, ti, out=new_i[..., 0, :])
        np.subtract(ai, ti, out=new_i[..., 1, :])
        lim = 2 ** (out_w - 1)
        if new_r.size and (new_r.max() >= lim or new_r.min() < -lim or new_i.max() >= lim or new_i.min() < -lim):
            raise FixedPointOverflowError(f"a {n}-point transform stage {s} left its {out_w}-bit word "
                                          f"(impossible by the width rule: a defect)")
        re, im = new_r.reshape(lead + (n,)), new_i.reshape(lead + (n,))
        if err is not None:
            ev = err.reshape(shape)
            ea, eb = ev[..., 0, :], ev[..., 1, :]
            et = eb.copy()
            if nt.size:
                et[..., nt] += np.hypot(br[..., nt], bi[..., nt]) * w_err[e[nt]] + _HALF_SQRT2
            err = np.broadcast_to((ea + et)[..., None, :], shape).reshape(lead + (n,))
    return re, im, err


def _check_range(x, bits: int, what: str):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if x.size and (x.min() < lo or x.max() > hi):
        raise UsageError(f"{what} holds values outside the signed {bits}-bit range [{lo}, {hi}]")


def _output(v, fmt: FFTFormat):
    r = round_shift(v, fmt.out_shift)
    sat = saturate(r, fmt.out_bits)
    return sat, int(np.count_nonzero(sat != r))


def _fft2d(tile, fmt: FFTFormat, in_err):
    if fmt.inverse:
        raise UsageError("this FFTFormat is an inverse transform; use ifft2d_real_fixed")
    tile = np.asarray(tile)
    n = fmt.n
    if tile.ndim < 2 or tile.shape[-2:] != (n, n) or not np.issubdtype(tile.dtype, np.integer):
        raise UsageError(f"FFT input must be integer tiles [..., {n}, {n}], got {tile.dtype} {tile.shape}")
    tile = tile.astype(np.int64)
    _check_range(tile, fmt.in_bits, "FFT input")
    err = None if in_err is None else np.broadcast_to(np.asarray(in_err, dtype=np.float64), tile.shape)
    re, im, err = _fft1d(tile, np.zeros_like(tile), err, n, fmt.in_bits, fmt.tw_bits, False)  # rows
    keep = slice(0, fmt.half)
    re, im = re[..., keep].swapaxes(-1, -2), im[..., keep].swapaxes(-1, -2)  # [..., N/2+1, N]
    if err is not None:
        err = err[..., keep].swapaxes(-1, -2)
    re, im, err = _fft1d(re, im, err, n, fmt.mid_bits, fmt.tw_bits, False)  # columns
    re, im = re.swapaxes(-1, -2), im.swapaxes(-1, -2)
    (ore, s1), (oim, s2) = _output(re, fmt), _output(im, fmt)
    return ore, oim, None if err is None else err.swapaxes(-1, -2), s1 + s2


def _ifft2d(re, im, fmt: FFTFormat, in_err):
    if not fmt.inverse:
        raise UsageError("this FFTFormat is a forward transform; use fft2d_real_fixed")
    n, half = fmt.n, fmt.half
    re, im = np.asarray(re), np.asarray(im)
    if (re.shape != im.shape or re.ndim < 2 or re.shape[-2:] != (n, half)
            or not np.issubdtype(re.dtype, np.integer) or not np.issubdtype(im.dtype, np.integer)):
        raise UsageError(f"IFFT input must be integer half-planes [..., {n}, {half}] (re and im), "
                         f"got {re.dtype} {re.shape} and {im.dtype} {im.shape}")
    re, im = re.astype(np.int64), im.astype(np.int64)
    _check_range(re, fmt.in_bits, "IFFT input (real part)")
    _check_range(im, fmt.in_bits, "IFFT input (imaginary part)")
    err = None if in_err is None else np.broadcast_to(np.asarray(in_err, dtype=np.float64), re.shape)
    # columns: [..., N/2+1, N]
    zr, zi, err = _fft1d(re.swapaxes(-1, -2), im.swapaxes(-1, -2),
                         None if err is None else err.swapaxes(-1, -2), n, fmt.in_bits, fmt.tw_bits, True)
    zr, zi = zr.swapaxes(-1, -2), zi.swapaxes(-1, -2)  # [..., N, N/2+1]
    mirror = np.arange(n // 2 - 1, 0, -1)  # bins N/2+1..N-1 are conj of N/2-1..1
    fr = np.concatenate([zr, zr[..., mirror]], axis=-1)
    fi = np.concatenate([zi, -zi[..., mirror]], axis=-1)
    if err is not None:
        err = np.concatenate([err.swapaxes(-1, -2), err.swapaxes(-1, -2)[..., mirror]], axis=-1)
    yr, _, err = _fft1d(fr, fi, err, n, fmt.mid_bits, fmt.tw_bits, True)  # rows; real part kept
    out, sat = _output(yr, fmt)
    return out, err, sat


@dataclass(frozen=True)
class TransformCheck:
    """A fixed-point transform's output with its derived error bound.

    ``bound_lsb``: per output part, a bound on ``|out - reference * 2^-out_shift|`` in output LSBs,
    where the reference is the exact transform of the exact input (the integer input plus the
    caller's ``in_err``); valid where nothing saturated (``saturated`` counts the parts that did).
    ``bound_abs_lsb``: the same for the complex magnitude of the error (FFT; = ``bound_lsb`` for the
    real IFFT output).  Both None when no bound was asked for (``in_err=None``)."""

    re: np.ndarray
    im: np.ndarray | None
    bound_lsb: np.ndarray | None
    bound_abs_lsb: np.ndarray | None
    saturated: int


def _bound_lsb(err, fmt: FFTFormat, rounding: float):
    if err is None:
        return None
    return err * 2.0**-fmt.out_shift + (rounding if fmt.out_shift > 0 else 0.0)


def fft2d_real_fixed(tile, fmt: FFTFormat):
    """Fixed-point 2-D FFT of real integer tiles [..., N, N] -> half-plane (re, im) int64
    [..., N, N/2+1], bit for bit what ``flexspec.rtl.fft.FFT2DReal`` computes (see module doc)."""
    re, im, _, _ = _fft2d(tile, fmt, None)
    return re, im


def fft2d_real_checked(tile, fmt: FFTFormat, in_err=0.0) -> TransformCheck:
    """:func:`fft2d_real_fixed` plus its saturation count and error bound; ``in_err``: bound of each
    input pixel's error in input LSBs (e.g. 1/2 for a float tile rounded to integers),
    broadcastable to the tiles; None: no bound (faster)."""
    re, im, err, sat = _fft2d(tile, fmt, in_err)
    return TransformCheck(re, im, _bound_lsb(err, fmt, 0.5), _bound_lsb(err, fmt, _HALF_SQRT2), sat)


def ifft2d_real_fixed(re, im, fmt: FFTFormat):
    """Fixed-point 2-D inverse real FFT: half-plane integers [..., N, N/2+1] -> real int64
    [..., N, N] = ``saturate(round_shift(N^2 irfft2(re + j im), out_shift), out_bits)`` up to the
    twiddle rounding; bit for bit what ``flexspec.rtl.fft.IFFT2DReal`` computes."""
    out, _, _ = _ifft2d(re, im, fmt, None)
    return out


def ifft2d_real_checked(re, im, fmt: FFTFormat, in_err=0.0) -> TransformCheck:
    """:func:`ifft2d_real_fixed` plus its error bound (``in_err``: magnitude bound of each input
    value's error in input LSBs; the reference is ``N^2 irfft2`` of the exact input; None: no bound)."""
    out, err, sat = _ifft2d(re, im, fmt, in_err)
    b = _bound_lsb(err, fmt, 0.5)
    return TransformCheck(out, None, b, b, sat)
