"""Parameters of the generated PE array (plain Python; no Amaranth import).

The array runs *programs*: sequences of schedule words held in the schedule/kernel memory.  Each
word carries every decision the compiler made for one cycle (see :mod:`.program`), so the
datapath has no run-time arbitration.  A program word reads the tile buffer (double buffered,
``in_channels`` channels per half) and accumulates into per-PE accumulator memories addressed by
output-channel slot and frequency (double buffered, ``acc_channels`` slots per half), banked by
the frequency's row: ``readout_rows`` = K memories per PE, memory k holding rows r = k (mod K), so
that a read-out request reads K rows of one column from every PE (N/K requests a column; K = N:
one column of N values a request, the IFFT's input beat).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..spectral.geometry import num_frequencies

#: Pipeline latency of the array, in clock cycles: a run of L schedule words whose command is
#: accepted at clock edge 0 writes its last accumulator at edge ``L + LATENCY_CYCLES`` and
#: raises ``done`` at that edge.  Word k (0-based) is read from the schedule memory at edge
#: k+1, its tile-buffer ports read at edge k+2, operands and pre-adders registered at edge k+3,
#: multiplier products at edge k+4, the post-added complex product (and the accumulator read
#: issued in that cycle) at edge k+5, and the accumulator written at edge k+6.
LATENCY_CYCLES = 5

#: Limits of the generator (beyond them the design is legal but not what it is meant for).
MAX_PES = 64
MAX_BANKS = 128
MAX_PORTS = 8
FFT_SIZES = (4, 8, 16, 32)


def _bits_for(n: int) -> int:
    """Bits to hold values 0..n-1 (at least 1)."""
    return max(1, int(n - 1).bit_length())


def readout_latency_cycles(num_pes: int) -> int:
    """Cycles from an accumulator read-out request to its data: the memory read, then one
    registered level per level of the P-input adder tree (its inputs gated by the PE mask; at
    least one level)."""
    return 1 + _bits_for(num_pes)


@dataclass(frozen=True)
class PEArrayConfig:
    """One configuration of the sparse Hadamard-product PE array.

    ``bank_of``: the schedule's frequency -> bank map (length F = N*(N//2+1)); frequency f of
    input channel i is stored in bank ``bank_of[f]`` at address ``i * channel_depth + rank``
    (rank = its position among that bank's frequencies).  ``in_channels``: channels one tile
    buffer half holds.  ``acc_channels``: output-channel slots one accumulator half holds.
    ``schedule_depth``: words of the schedule/kernel memory.  ``readout_depth``: words of the
    read-out PE-mask memory (``acc_channels * F`` per program).  ``mask_sets``: read-out mask
    sets (one per kernel block of a blocked layer; the read-out selects one with ``rd_mask_set``).  ``broadcast``: PEs reading
    the same frequency in one cycle may share one bank port (the compiler decides).
    """

    num_pes: int
    num_banks: int
    ports: int
    fft_size: int
    bank_of: tuple
    schedule_depth: int
    in_channels: int = 1
    acc_channels: int = 0  # 0: one slot per PE (num_pes)
    data_bits: int = 16
    acc_bits: int = 48
    dsp_per_complex_mac: int = 3
    broadcast: bool = False
    readout_rows: int = 0  # 0: all N rows of a column per read-out request (fft_size)
    mask_sets: int = 1  # read-out PE masks, one set per kernel block (a blocked layer's programs)

    def __post_init__(self):
        for name in ("num_pes", "num_banks", "ports", "fft_size", "schedule_depth", "in_channels"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise UsageError(f"{name} must be an integer >= 1, got {v!r}")
        if self.acc_channels == 0:
            object.__setattr__(self, "acc_channels", int(self.num_pes))
        if not isinstance(self.acc_channels, (int, np.integer)) or self.acc_channels < 1:
            raise UsageError(f"acc_channels must be an integer >= 1, got {self.acc_channels!r}")
        if self.num_pes > MAX_PES or self.num_banks > MAX_BANKS or self.ports > MAX_PORTS:
            raise UsageError(f"the generator builds P <= {MAX_PES}, B <= {MAX_BANKS}, R <= {MAX_PORTS}; "
                             f"got P={self.num_pes}, B={self.num_banks}, R={self.ports}")
        if self.fft_size not in FFT_SIZES:
            raise UsageError(f"fft_size must be one of {FFT_SIZES}, got {self.fft_size}")
        object.__setattr__(self, "bank_of", tuple(int(b) for b in self.bank_of))
        if len(self.bank_of) != self.num_freq:
            raise UsageError(
                f"bank map has {len(self.bank_of)} entries but N={self.fft_size} has {self.num_freq} frequencies"
            )
        if any(b < 0 or b >= self.num_banks for b in self.bank_of):
            raise UsageError(f"bank map holds a bank outside 0..{self.num_banks - 1}")
        if not 2 <= self.data_bits <= 27:
            raise UsageError(f"data_bits must be 2..27 (a DSP multiplier input), got {self.data_bits}")
        if not 2 * self.data_bits + 2 <= self.acc_bits <= 63:
            raise UsageError(f"acc_bits must be {2 * self.data_bits + 2}..63, got {self.acc_bits}")
        if self.readout_rows == 0:
            object.__setattr__(self, "readout_rows", int(self.fft_size))
        k = self.readout_rows
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1 or k > self.fft_size \
                or self.fft_size % k or k & (k - 1):
            raise UsageError(f"readout_rows must be a power of two dividing fft_size={self.fft_size}, got {k!r}")
        if not isinstance(self.mask_sets, (int, np.integer)) or isinstance(self.mask_sets, bool) or self.mask_sets < 1:
            raise UsageError(f"mask_sets must be an integer >= 1, got {self.mask_sets!r}")
        if self.dsp_per_complex_mac not in (3, 4):
            raise UsageError(f"dsp_per_complex_mac must be 3 or 4, got {self.dsp_per_complex_mac}")

    # ------------------------------------------------------------------ sizes
    @property
    def num_freq(self) -> int:
        return num_frequencies(self.fft_size)

    @property
    def num_ports(self) -> int:
        """Tile-buffer read ports in all (B x R)."""
        return self.num_banks * self.ports

    @property
    def channel_depth(self) -> int:
        """Words one input channel takes in a bank: the most frequencies any bank holds."""
        return max(1, int(np.bincount(np.asarray(self.bank_of), minlength=self.num_banks).max()))

    @property
    def bank_depth(self) -> int:
        """Words of one tile-buffer half in one bank."""
        return self.in_channels * self.channel_depth

    @property
    def num_columns(self) -> int:
        """Columns of the Hermitian half-plane (N/2 + 1); frequency f = row * num_columns + column."""
        return self.fft_size // 2 + 1

    @property
    def acc_depth(self) -> int:
        """Accumulators of one half (output-channel slot x frequency)."""
        return self.acc_channels * self.num_freq

    @property
    def acc_columns(self) -> int:
        """Words of one accumulator half in one row bank of one PE (output-channel slot x column):
        the read-out beats per tile (one column of N values a beat, the IFFT's input beat)."""
        return self.acc_channels * self.num_columns

    @property
    def readout_beats_per_column(self) -> int:
        """Read-out requests per accumulator column: N / ``readout_rows`` (each request reads
        ``readout_rows`` rows of the column from every PE; the drainer assembles the column)."""
        return self.fft_size // self.readout_rows

    @property
    def readout_sub_bits(self) -> int:
        """Bits of the read-out's row-group index within a column (0 when one request reads all N rows)."""
        return (self.readout_beats_per_column - 1).bit_length()

    @property
    def acc_split_halves(self) -> bool:
        """Whether each accumulator half is its own memory (one read port shared by the accumulate
        and the read-out, no copy for a second read port): at K = 1 < N only.  Measured (Yosys,
        UltraScale+, P = 8, B x R = 20 x 2): at K = 1 it halves the block RAM (96 -> 48 RAMB18, a
        half then fills a 512 x 36 RAMB18) for +1.4K LUTs; at K = 2 it saves none (+0.2K LUTs),
        at K = 4 none for +4.7K LUTs (BENCHMARKS.md "Designs that fit")."""
        return self.readout_rows == 1 and self.fft_size > 1

    @property
    def acc_lane_depth(self) -> int:
        """Words of one accumulator memory of one PE: ``readout_rows`` memories per PE, each
        holding N / readout_rows rows of both halves (half, row group, slot x column)."""
        return 2 * (1 << self.acc_addr_bits) * self.readout_beats_per_column

    # ------------------------------------------------------------------ field widths
    @property
    def bank_addr_bits(self) -> int:
        return _bits_for(self.bank_depth)

    @property
    def port_sel_bits(self) -> int:
        return _bits_for(self.num_ports)

    @property
    def bank_bits(self) -> int:
        return _bits_for(self.num_banks)

    @property
    def acc_addr_bits(self) -> int:
        return _bits_for(self.acc_columns)

    @property
    def row_bits(self) -> int:
        return _bits_for(self.fft_size)

    @property
    def pe_field_bits(self) -> int:
        """One PE's field of a schedule word: valid, port select, first, accumulator address
        (slot * (N/2+1) + column), row (the accumulator bank), kernel re, kernel im."""
        return 1 + self.port_sel_bits + 1 + self.acc_addr_bits + self.row_bits + 2 * self.data_bits

    @property
    def check_field_bits(self) -> int:
        """One PE's simulation-check field: the bank and address the compiler meant it to read."""
        return self.bank_bits + self.bank_addr_bits

    def word_bits(self, checks: bool = False) -> int:
        """Bits of one schedule word: B*R port addresses, P PE fields, then (checked builds) P check fields."""
        return self.num_ports * self.bank_addr_bits + self.num_pes * (
            self.pe_field_bits + (self.check_field_bits if checks else 0))

    @property
    def multipliers(self) -> int:
        """Real multipliers of the array (the resource model's DSP count)."""
        return self.num_pes * self.dsp_per_complex_mac

    @property
    def latency_cycles(self) -> int:
        return LATENCY_CYCLES

    @property
    def readout_latency_cycles(self) -> int:
        return readout_latency_cycles(self.num_pes)
