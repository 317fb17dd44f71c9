"""Generated hardware: the sparse spectral PE array as synthesizable RTL (Amaranth -> Verilog).

Plain-Python parts (config, program) import without Amaranth; the design (``pe_array``),
the simulator front end (``cosim``) and the exporter (``export``) import it on use.
"""

from __future__ import annotations

from .config import LATENCY_CYCLES, PEArrayConfig
from .program import GroupProgram, build_program, schedule_rom_words, tile_bank_words

__all__ = ["LATENCY_CYCLES", "GroupProgram", "PEArrayConfig", "build_program", "schedule_rom_words",
           "tile_bank_words"]
