"""Contents of the design's memories for one group and one tile (plain numpy, no Amaranth).

* Tile buffer: ``bank_words[b][a]`` = the tile value of the frequency stored in bank ``b`` at
  address ``a``, packed as ``(im << data_bits) | re`` (both two's complement, ``data_bits`` each).
* Schedule/kernel ROM: one word per schedule cycle; PE ``p`` owns bits
  ``[p*E, (p+1)*E)`` with ``E = 1 + freq_bits + 2*data_bits``, laid out from the LSB as
  ``valid | freq | kernel_re | kernel_im``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..accel.fixed_point import bank_addresses
from ..errors import UsageError
from .config import PEArrayConfig


def _to_unsigned(v: int, bits: int) -> int:
    return int(v) & ((1 << bits) - 1)


def pack_complex(re, im, bits: int) -> list[int]:
    """Pack signed (re, im) integer pairs into ``2*bits``-wide unsigned words (re in the low half)."""
    return [_to_unsigned(r, bits) | (_to_unsigned(i, bits) << bits) for r, i in zip(
        np.asarray(re).ravel().tolist(), np.asarray(im).ravel().tolist(), strict=True)]


@dataclass(frozen=True)
class GroupProgram:
    """What the hardware must be loaded with to run one group on one tile."""

    config: PEArrayConfig
    table: np.ndarray  # int64 [makespan, P], -1 idle
    bank_words: tuple  # B tuples of bank_depth ints
    rom_words: tuple  # makespan ints (schedule_depth with zero padding when loaded)

    @property
    def makespan_cycles(self) -> int:
        return int(self.table.shape[0])

    def rom_init(self) -> list[int]:
        """The ROM's full contents (schedule_depth words, idle words after the makespan)."""
        return list(self.rom_words) + [0] * (self.config.schedule_depth - len(self.rom_words))


def tile_bank_words(config: PEArrayConfig, tile_re, tile_im) -> tuple:
    """Tile-buffer contents per bank for one tile (integers already quantized to data_bits)."""
    tile_re = np.asarray(tile_re, dtype=np.int64)
    tile_im = np.asarray(tile_im, dtype=np.int64)
    if tile_re.shape != (config.num_freq,) or tile_im.shape != (config.num_freq,):
        raise UsageError(f"tile must have {config.num_freq} values, got {tile_re.shape}")
    _check_range(tile_re, config.data_bits, "tile")
    _check_range(tile_im, config.data_bits, "tile")
    bank_of = np.asarray(config.bank_of)
    addr = bank_addresses(bank_of)
    words = [[0] * config.bank_depth for _ in range(config.num_banks)]
    packed = pack_complex(tile_re, tile_im, config.data_bits)
    for f in range(config.num_freq):
        words[bank_of[f]][addr[f]] = packed[f]
    return tuple(tuple(w) for w in words)


def _check_range(x, bits, what):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if x.size and (x.min() < lo or x.max() > hi):
        raise UsageError(f"{what} values must be {bits}-bit signed integers ({lo}..{hi})")


def schedule_rom_words(config: PEArrayConfig, table, kernel_re, kernel_im) -> tuple:
    """Schedule/kernel ROM words for a read table [cycles, P] and kernels [P, F]."""
    table = np.asarray(table, dtype=np.int64)
    kernel_re = np.asarray(kernel_re, dtype=np.int64)
    kernel_im = np.asarray(kernel_im, dtype=np.int64)
    P, F, db = config.num_pes, config.num_freq, config.data_bits
    if table.ndim != 2 or table.shape[1] != P:
        raise UsageError(f"schedule table must be [cycles, {P}], got {table.shape}")
    if table.shape[0] > config.schedule_depth:
        raise UsageError(
            f"schedule of {table.shape[0]} cycles does not fit the ROM of {config.schedule_depth} entries; "
            f"raise schedule_depth"
        )
    if np.any(table < -1) or np.any(table >= F):
        raise UsageError(f"schedule table holds a frequency outside -1..{F - 1}")
    if kernel_re.shape != (P, F) or kernel_im.shape != (P, F):
        raise UsageError(f"kernels must be [{P}, {F}], got {kernel_re.shape}")
    _check_range(kernel_re, db, "kernel")
    _check_range(kernel_im, db, "kernel")
    E, fb = config.entry_bits, config.freq_bits
    words = []
    for row in table.tolist():
        word = 0
        for p, f in enumerate(row):
            if f < 0:
                continue
            entry = 1 | (f << 1) | (_to_unsigned(kernel_re[p, f], db) << (1 + fb)) \
                | (_to_unsigned(kernel_im[p, f], db) << (1 + fb + db))
            word |= entry << (p * E)
        words.append(word)
    return tuple(words)


def build_program(config: PEArrayConfig, table, tile_re, tile_im, kernel_re, kernel_im) -> GroupProgram:
    """Everything to load for one group on one tile."""
    table = np.asarray(table, dtype=np.int64).reshape(-1, config.num_pes)
    return GroupProgram(
        config=config,
        table=table,
        bank_words=tile_bank_words(config, tile_re, tile_im),
        rom_words=schedule_rom_words(config, table, kernel_re, kernel_im),
    )
