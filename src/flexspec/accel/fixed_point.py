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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FlexSpecError, UsageError

__all__ = [
    "AccumulatorOverflowError",
    "BankConflictError",
    "FixedPointFormat",
    "bank_addresses",
    "check_bank_conflicts",
    "choose_frac_bits",
    "complex_product",
    "dequantize",
    "execute_group",
    "execute_group_tiles",
    "max_terms",
    "quantize_complex",
    "required_acc_bits",
    "saturate",
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
