"""Verilator co-simulation of the whole layer engine (``flexspec.rtl.layer_engine``).

One build per layer (the program and bias are compiled in); the script testbench of
:mod:`flexspec.rtl.verilate` streams the host beats in (input always offered), takes every
write-back beat (output always ready) and reports the edge ``done`` rises at.
"""

from __future__ import annotations

import numpy as np

from .export import ToolError, port_rows, to_verilog
from .layer_engine import TOP, LayerEngine
from .verilate import _signed, build, run


def engine_script(beats, limit: int) -> str:
    lines = ["s o_ready 1"] + [f"m {p} o_valid" for p in ("o_data", "o_mask", "o_chan", "o_row", "o_col")]
    lines += ["c", "s i_valid 1"]
    for b in beats:
        lines += [f"s i_data {int(b):x}", f"w i_ready 1 {limit}", "t 1"]
    lines += ["s i_valid 0", f"w done 1 {limit}", "p done", "p conflict"]
    return "\n".join(lines) + "\n"


def engine_verilog(spec, checks: bool = True, _fault: str | None = None) -> str:
    return to_verilog(LayerEngine(spec, checks=checks, _fault=_fault), TOP)


def verilate_engine(case, workdir, _fault: str | None = None, beats=None, timeout_seconds: float = 900) -> dict:
    """Build the checked engine of ``case.spec`` and stream ``case``'s image through it.

    Returns ``output`` int64 [Cout, H', W'] (the write-back, after ReLU; pixels never written stay
    at -1), ``writes`` (pixels written, counting repeats), ``cycles`` (the edge after which
    ``done`` is high, from the first edge after reset), ``out_edges`` and the conflict flag."""
    spec = case.spec
    g, db = spec.geometry, spec.pe_config.data_bits
    dut = LayerEngine(spec, checks=True, _fault=_fault)
    binary = build(to_verilog(dut, TOP), TOP, port_rows(dut), workdir)
    beats = case.input_beats() if beats is None else beats
    limit = 50 * (engine_events_bound(spec) + 1000)
    rows = run(binary, engine_script(beats, limit), workdir, timeout_seconds)
    timeouts = [r for r in rows if r[0] == "timeout"]
    if timeouts:
        raise ToolError(f"the layer engine never raised {timeouts[0][1]} (a hung design)")
    mon = {}
    for r in rows:
        if r[0] == "m":
            mon.setdefault(r[1], []).append((int(r[2]), int(r[3], 16)))
    out = np.full((g.out_channels, g.out_height, g.out_width), -1, dtype=np.int64)
    writes = 0
    data = mon.get("o_data", [])
    for k, (edge, word) in enumerate(data):
        mask, chan, row, col = (mon[p][k][1] for p in ("o_mask", "o_chan", "o_row", "o_col"))
        for c in range(g.fft_size):
            if mask >> c & 1:
                x = col + c - g.offset
                if not (0 <= chan < g.out_channels and 0 <= row < g.out_height and 0 <= x < g.out_width):
                    raise ToolError(f"write-back outside the output: channel {chan}, row {row}, column {x}")
                out[chan, row, x] = _signed(word >> (c * db), db)
                writes += 1
    done = [int(r[2]) for r in rows if r[0] == "p" and r[1] == "done"]
    conflict = [int(r[3], 16) for r in rows if r[0] == "p" and r[1] == "conflict"]
    return {"output": out, "writes": writes, "cycles": done[0], "out_edges": [e for e, _ in data],
            "beats": len(data), "conflict": bool(conflict and conflict[0])}


def engine_events_bound(spec) -> int:
    """A generous cycle budget for one run (the model's count; the testbench waits 50x longer)."""
    return spec.expected_cycles()
