"""Generated hardware: the sparse spectral PE array as synthesizable RTL (Amaranth -> Verilog).

Plain-Python parts (config, program, engine cycles) import without Amaranth; the design
(``pe_array``), the simulator front ends (``cosim``, ``verilate``) and the exporter (``export``)
import it on use.
"""

from __future__ import annotations

from .config import LATENCY_CYCLES, PEArrayConfig
from .program import GroupSpec, Program, build_program, program_length, reference_accumulators, tile_buffer_words

__all__ = ["LATENCY_CYCLES", "GroupSpec", "PEArrayConfig", "Program", "build_program", "program_length",
           "reference_accumulators", "tile_buffer_words"]
