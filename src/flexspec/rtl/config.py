"""Parameters of the generated PE array (plain Python; no Amaranth import)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..spectral.geometry import num_frequencies

#: Pipeline latency of the design, in clock cycles: the number of clock edges from the edge that
#: samples ``start`` to the first cycle with ``done`` high is ``makespan + LATENCY_CYCLES``.
#: Schedule entry k (0-based) is fetched from the ROM at edge k+1, read from its tile bank at
#: edge k+2, registered as multiplier operands (with the pre-adders) at edge k+3, multiplied at
#: edge k+4 and accumulated at edge k+5; the last entry (k = makespan-1) is thus accumulated at
#: edge makespan+4, and ``done`` rises at that same edge, when every result is readable.
LATENCY_CYCLES = 4


def _bits_for(n: int) -> int:
    """Bits to hold values 0..n-1 (at least 1)."""
    return max(1, int(n - 1).bit_length())


@dataclass(frozen=True)
class PEArrayConfig:
    """One configuration of the sparse Hadamard-product PE array.

    ``bank_of``: the schedule's frequency -> bank map (length F = N*(N//2+1)); frequency f is
    stored at address = its rank among that bank's frequencies.  ``schedule_depth``: entries
    of the schedule/kernel ROM (the longest makespan it must hold).  ``broadcast``: PEs that
    read the same frequency in one cycle share one bank port.
    """

    num_pes: int
    num_banks: int
    ports: int
    fft_size: int
    bank_of: tuple
    schedule_depth: int
    data_bits: int = 16
    acc_bits: int = 48
    dsp_per_complex_mac: int = 3
    broadcast: bool = False

    def __post_init__(self):
        for name in ("num_pes", "num_banks", "ports", "fft_size", "schedule_depth"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise UsageError(f"{name} must be an integer >= 1, got {v!r}")
        object.__setattr__(self, "bank_of", tuple(int(b) for b in self.bank_of))
        if len(self.bank_of) != self.num_freq:
            raise UsageError(
                f"bank map has {len(self.bank_of)} entries but N={self.fft_size} has {self.num_freq} frequencies"
            )
        if any(b < 0 or b >= self.num_banks for b in self.bank_of):
            raise UsageError(f"bank map holds a bank outside 0..{self.num_banks - 1}")
        if not 2 <= self.data_bits <= 27:
            raise UsageError(f"data_bits must be 2..27, got {self.data_bits}")
        if not 2 * self.data_bits + 2 <= self.acc_bits <= 63:
            raise UsageError(f"acc_bits must be {2 * self.data_bits + 2}..63, got {self.acc_bits}")
        if self.dsp_per_complex_mac not in (3, 4):
            raise UsageError(f"dsp_per_complex_mac must be 3 or 4, got {self.dsp_per_complex_mac}")

    @property
    def num_freq(self) -> int:
        return num_frequencies(self.fft_size)

    @property
    def freq_bits(self) -> int:
        return _bits_for(self.num_freq)

    @property
    def bank_depth(self) -> int:
        """Words per bank memory: the most frequencies any bank holds (at least 1)."""
        return max(1, int(np.bincount(np.asarray(self.bank_of), minlength=self.num_banks).max()))

    @property
    def bank_addr_bits(self) -> int:
        return _bits_for(self.bank_depth)

    @property
    def entry_bits(self) -> int:
        """Bits of one PE's slot in a schedule-ROM word: valid, frequency, kernel re, kernel im."""
        return 1 + self.freq_bits + 2 * self.data_bits

    @property
    def rom_word_bits(self) -> int:
        return self.num_pes * self.entry_bits

    @property
    def multipliers(self) -> int:
        """Real multipliers of the array (the resource model's DSP count)."""
        return self.num_pes * self.dsp_per_complex_mac

    @property
    def latency_cycles(self) -> int:
        return LATENCY_CYCLES
