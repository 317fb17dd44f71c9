"""Contents of the PE array's memories (plain numpy, no Amaranth): the compiler's static decisions.

A *program* is what one tile pass runs: the schedules of a sequence of kernel groups issued
back to back, each group reading one input channel of the tile buffer and accumulating into the
output-channel slots its PEs were given.

Schedule word (one per cycle), from the LSB (``AB`` = bank address bits, ``E`` = PE field bits):

* ``B*R`` port addresses of ``AB`` bits each: port ``k = b*R + r`` reads bank ``b`` at that address;
* ``P`` PE fields of ``E = 1 + SB + 1 + CB + RB + 2*data_bits`` bits: ``valid | port select (SB) |
  first | accumulator address (CB) = slot*(N/2+1) + column | row (RB) | kernel re | kernel im``
  (frequency f = row*(N/2+1) + column; the row selects the accumulator bank);
* checked builds only: ``P`` check fields ``bank | address``: what the compiler meant the PE to read.

Ports are assigned per cycle and bank in PE order to the distinct addresses asked of the bank
(with broadcast, PEs asking the same address share one port; without, each PE has its own).  A
bank asked for more than R reads is a :class:`BankConflictError` at compile time; only the
fault-injection tests build such a word (``allow_conflicts``), which the checked build flags.

``first`` is set on the first contribution of a program to a (PE, accumulator address): the
accumulator then starts from zero, so no clearing pass is needed between tiles.  The read-out
mask of an accumulator address (slot, column) holds bit ``row*P + p`` when PE p contributes to
(slot, row, column); read-out sums those PEs, one column of N rows a beat.
Tile-buffer word: ``(im << data_bits) | re`` of input channel i, frequency f at bank
``bank_of[f]``, address ``i * channel_depth + rank(f)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..accel.fixed_point import BankConflictError, bank_addresses, check_bank_conflicts, complex_product, wrap_signed
from ..errors import UsageError
from .config import PEArrayConfig


def _to_unsigned(v, bits: int):
    return np.asarray(v, dtype=np.int64) & ((1 << bits) - 1)


def pack_complex(re, im, bits: int) -> list[int]:
    """Pack signed (re, im) integer pairs into ``2*bits``-wide unsigned words (re in the low half)."""
    return (_to_unsigned(re, bits) | (_to_unsigned(im, bits) << bits)).ravel().tolist()


def _check_range(x, bits, what):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    x = np.asarray(x)
    if x.size and (x.min() < lo or x.max() > hi):
        raise UsageError(f"{what} values must be {bits}-bit signed integers ({lo}..{hi})")


@dataclass(frozen=True)
class GroupSpec:
    """One kernel group of a program: its read table, input channel and PE -> slot map.

    ``table`` int [cycles, P] (frequency read by PE p in that cycle, -1 idle); ``slots`` int [P]
    (output-channel accumulator slot of PE p, -1 idle); ``kernel_re/im`` int [P, F]."""

    table: np.ndarray
    in_channel: int
    slots: np.ndarray
    kernel_re: np.ndarray
    kernel_im: np.ndarray


@dataclass(frozen=True)
class Program:
    """One tile pass: the schedule words, their read-out mask, and what they encode."""

    config: PEArrayConfig
    words: tuple  # schedule words (synthesis layout)
    checked_words: tuple  # the same words with the check fields (co-simulation builds)
    mask: tuple  # acc_columns read-out masks (bit row*P + p: PE p contributes to that row)
    group_cycles: tuple  # makespan of each group, in order (sum = number of non-padding words)
    #: bool [P, acc_depth]: the (PE, accumulator address) pairs holding a contribution after the
    #: program (with ``build_program``'s ``prior``: the earlier programs of its chain too)
    written: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def length(self) -> int:
        """Words of the program (at least one: an empty pass still takes its one idle word)."""
        return len(self.words)


def program_length(group_cycles) -> int:
    """Words the array issues for one tile pass of groups with these makespans (back to back)."""
    return max(1, int(np.sum(np.asarray(group_cycles, dtype=np.int64))))


def tile_buffer_words(config: PEArrayConfig, tile_re, tile_im) -> tuple:
    """One tile-buffer half per bank for a tile of ``in_channels`` channels: int [C, F] each."""
    c = config
    tile_re = np.asarray(tile_re, dtype=np.int64).reshape(-1, c.num_freq)
    tile_im = np.asarray(tile_im, dtype=np.int64).reshape(-1, c.num_freq)
    if tile_re.shape != tile_im.shape or tile_re.shape[0] > c.in_channels:
        raise UsageError(f"tile must be at most [{c.in_channels}, {c.num_freq}], got {tile_re.shape}")
    _check_range(tile_re, c.data_bits, "tile")
    _check_range(tile_im, c.data_bits, "tile")
    bank_of = np.asarray(c.bank_of)
    rank = bank_addresses(bank_of)
    words = np.zeros((c.num_banks, c.bank_depth), dtype=np.int64)
    packed = np.asarray(pack_complex(tile_re, tile_im, c.data_bits), dtype=np.int64).reshape(tile_re.shape)
    for i in range(tile_re.shape[0]):
        words[bank_of, i * c.channel_depth + rank] = packed[i]
    return tuple(tuple(int(w) for w in row) for row in words)


def _assign_ports(config: PEArrayConfig, banks, addrs, allow_conflicts: bool, cycle: int, group: int):
    """Port index per valid PE read of one cycle (in PE order; broadcast shares equal addresses)."""
    R = config.ports
    taken: dict = {}
    out = []
    for b, a in zip(banks, addrs, strict=True):
        lst = taken.setdefault(b, [])
        if config.broadcast and a in lst:
            r = lst.index(a)
        else:
            lst.append(a)
            r = len(lst) - 1
            if r >= R:
                if not allow_conflicts:
                    raise BankConflictError(cycle, int(b), len(lst), R, group)
                r = r % R
        out.append(b * R + r)
    return out


def build_program(config: PEArrayConfig, groups, allow_conflicts: bool = False, prior=None) -> Program:
    """Schedule words and read-out mask of one tile pass over ``groups`` (GroupSpec each).

    ``prior``: the ``written`` of the program this one continues in the same accumulator half
    (the earlier cin blocks of a chain, ``flexspec.rtl.spectral_pass``): its (PE, address) pairs
    are not ``first`` here (the sums go on) and the read-out mask covers them too."""
    c = config
    P, F, db = c.num_pes, c.num_freq, c.data_bits
    AB, SB, CB, RB, E = c.bank_addr_bits, c.port_sel_bits, c.acc_addr_bits, c.row_bits, c.pe_field_bits
    C = c.num_columns
    bank_of = np.asarray(c.bank_of)
    rank = bank_addresses(bank_of)
    written = np.zeros((P, c.acc_depth), dtype=bool) if prior is None else np.array(prior, dtype=bool)
    if written.shape != (P, c.acc_depth):
        raise UsageError(f"prior contributions must be [{P}, {c.acc_depth}], got {written.shape}")
    words, checked, cycles = [], [], []
    for gi, g in enumerate(groups):
        table = np.asarray(g.table, dtype=np.int64).reshape(-1, P)
        slots = np.asarray(g.slots, dtype=np.int64)
        kr, ki = np.asarray(g.kernel_re, dtype=np.int64), np.asarray(g.kernel_im, dtype=np.int64)
        if slots.shape != (P,) or np.any(slots >= c.acc_channels) or np.any(slots < -1):
            raise UsageError(f"group {gi}: slots must be [{P}] in -1..{c.acc_channels - 1}")
        if not 0 <= g.in_channel < c.in_channels:
            raise UsageError(f"group {gi}: input channel {g.in_channel} outside 0..{c.in_channels - 1}")
        if kr.shape != (P, F) or ki.shape != (P, F):
            raise UsageError(f"group {gi}: kernels must be [{P}, {F}], got {kr.shape}")
        if np.any(table < -1) or np.any(table >= F):
            raise UsageError(f"group {gi}: schedule table holds a frequency outside -1..{F - 1}")
        if np.any((table >= 0) & (slots[None, :] < 0)):
            raise UsageError(f"group {gi}: a PE without an output-channel slot reads a frequency")
        if not allow_conflicts:
            check_bank_conflicts(table, bank_of, c.ports, broadcast=c.broadcast, group=gi)
        _check_range(kr, db, "kernel")
        _check_range(ki, db, "kernel")
        cycles.append(table.shape[0])
        kr_u, ki_u = _to_unsigned(kr, db), _to_unsigned(ki, db)
        for cyc, row in enumerate(table.tolist()):
            pes = [p for p, f in enumerate(row) if f >= 0]
            banks = [int(bank_of[row[p]]) for p in pes]
            addrs = [g.in_channel * c.channel_depth + int(rank[row[p]]) for p in pes]
            sels = _assign_ports(c, banks, addrs, allow_conflicts, cyc, gi)
            word = 0
            for sel, a in zip(sels, addrs, strict=True):
                word |= a << (sel * AB)  # a conflicting word: the later PE's address wins the port
            base = c.num_ports * AB
            chk = 0
            for p, sel, b, a in zip(pes, sels, banks, addrs, strict=True):
                f = row[p]
                key = int(slots[p]) * F + f
                first = not written[p, key]
                written[p, key] = True
                frow, col = divmod(f, C)
                field = 1 | (sel << 1) | (int(first) << (1 + SB)) | ((int(slots[p]) * C + col) << (2 + SB)) \
                    | (frow << (2 + SB + CB)) | (int(kr_u[p, f]) << (2 + SB + CB + RB)) \
                    | (int(ki_u[p, f]) << (2 + SB + CB + RB + db))
                word |= field << (base + p * E)
                chk |= (b | (a << c.bank_bits)) << (p * c.check_field_bits)
            words.append(word)
            checked.append(word | (chk << (base + P * E)))
    if not words:
        words, checked = [0], [0]
    for w in words:
        if w >> c.word_bits(False):
            raise UsageError("a schedule word overflowed its layout (a generator defect)")
    # written[p, slot*F + row*C + col] -> mask[slot*C + col] bit row*P + p
    w = written.reshape(P, c.acc_channels, c.fft_size, C)
    mask = [0] * c.acc_columns
    for p, j, r, col in zip(*np.nonzero(w), strict=True):
        mask[j * C + col] |= 1 << (int(r) * P + int(p))
    if len(words) > c.schedule_depth:
        raise UsageError(f"program of {len(words)} words does not fit the schedule memory of "
                         f"{c.schedule_depth} words; raise schedule_depth")
    return Program(c, tuple(words), tuple(checked), tuple(mask), tuple(cycles), written)


def reference_accumulators(config: PEArrayConfig, groups, tile_re, tile_im, acc_bits: int | None = None):
    """What a program leaves in the output-channel accumulators, by brute force (no schedule):
    ``acc[slot, f] = sum over groups and PEs of X[in_channel, f] * W[p, f]`` for every frequency
    the PE's table reads, wrapped to ``acc_bits``.  int64 [acc_channels, F] (re, im)."""
    c = config
    tile_re = np.asarray(tile_re, dtype=np.int64).reshape(-1, c.num_freq)
    tile_im = np.asarray(tile_im, dtype=np.int64).reshape(-1, c.num_freq)
    re = np.zeros((c.acc_channels, c.num_freq), dtype=np.int64)
    im = np.zeros_like(re)
    for g in groups:
        table = np.asarray(g.table, dtype=np.int64).reshape(-1, c.num_pes)
        for p in range(c.num_pes):
            fs = table[:, p][table[:, p] >= 0]
            if fs.size:
                pr, pi = complex_product(tile_re[g.in_channel, fs], tile_im[g.in_channel, fs],
                                         np.asarray(g.kernel_re)[p, fs], np.asarray(g.kernel_im)[p, fs],
                                         c.dsp_per_complex_mac)
                np.add.at(re, (int(g.slots[p]), fs), pr)
                np.add.at(im, (int(g.slots[p]), fs), pi)
    bits = c.acc_bits if acc_bits is None else acc_bits
    return wrap_signed(re, bits), wrap_signed(im, bits)
