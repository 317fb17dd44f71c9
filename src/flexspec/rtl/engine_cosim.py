"""Co-simulation of the whole layer engine (``flexspec.rtl.layer_engine``): Verilator, and
Amaranth's simulator for quick small cases.

Both stream the host beats in (input always offered), take every write-back beat (output always
ready) and report the edge after which ``done`` is high, counted from the first edge after reset
(the convention of :func:`flexspec.accel.layer_events.engine_events`).  Verilator: one build per
layer (the program and bias are compiled in), the script testbench of :mod:`flexspec.rtl.verilate`.
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
    data = mon.get("o_data", [])
    beats_out = [(edge, word, *(mon[p][k][1] for p in ("o_mask", "o_chan", "o_row", "o_col")))
                 for k, (edge, word) in enumerate(data)]
    done = [int(r[2]) for r in rows if r[0] == "p" and r[1] == "done"]
    conflict = [int(r[3], 16) for r in rows if r[0] == "p" and r[1] == "conflict"]
    return _result(g, db, beats_out, done[0], bool(conflict and conflict[0]))


def _result(g, db: int, beats_out, cycles: int, conflict: bool) -> dict:
    """Assemble write-back beats (edge, data, mask, channel, row, column) into the output image."""
    out = np.full((g.out_channels, g.out_height, g.out_width), -1, dtype=np.int64)
    writes = 0
    for _, word, mask, chan, row, col in beats_out:
        for c in range(g.fft_size):
            if mask >> c & 1:
                x = col + c - g.offset
                if not (0 <= chan < g.out_channels and 0 <= row < g.out_height and 0 <= x < g.out_width):
                    raise ToolError(f"write-back outside the output: channel {chan}, row {row}, column {x}")
                out[chan, row, x] = _signed(word >> (c * db), db)
                writes += 1
    return {"output": out, "writes": writes, "cycles": int(cycles), "out_edges": [b[0] for b in beats_out],
            "beats": len(beats_out), "conflict": conflict}


def simulate_engine(case, spec=None, _fault: str | None = None, beats=None, max_cycles: int | None = None) -> dict:
    """The same run in Amaranth's simulator (seconds for small layers); ``spec`` overrides the
    case's (fault injection: another program).  Same result as :func:`verilate_engine`; a run that
    never raises ``done`` raises ToolError."""
    from amaranth.sim import Simulator  # heavy, only here

    spec = spec or case.spec
    g, db = spec.geometry, spec.pe_config.data_bits
    dut = LayerEngine(spec, checks=True, _fault=_fault)
    beats = case.input_beats() if beats is None else list(beats)
    limit = max_cycles or 4 * spec.expected_cycles() + 1000
    got, res = [], {}
    ports = (dut.o_data, dut.o_mask, dut.o_chan, dut.o_row, dut.o_col)

    async def bench(ctx):
        ctx.set(dut.o_ready, 1)
        nxt = 0
        for edge in range(1, limit):
            ctx.set(dut.i_valid, int(nxt < len(beats)))
            if nxt < len(beats):
                ctx.set(dut.i_data, beats[nxt])
                if ctx.get(dut.i_ready):
                    nxt += 1
            if ctx.get(dut.o_valid):
                got.append((edge - 1, *(ctx.get(p) for p in ports)))
            if ctx.get(dut.done):
                res["cycles"], res["conflict"] = edge - 1, ctx.get(dut.conflict)
                return
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    if "cycles" not in res:
        raise ToolError(f"the layer engine never raised done within {limit} cycles (a hung design)")
    return _result(g, db, got, res["cycles"], bool(res["conflict"]))


def engine_events_bound(spec) -> int:
    """A generous cycle budget for one run (the model's count; the testbench waits 50x longer)."""
    return spec.expected_cycles()
