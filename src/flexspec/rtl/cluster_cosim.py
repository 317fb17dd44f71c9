"""Co-simulation of the shared-pool cluster (``flexspec.rtl.cluster``) in Verilator.

The cluster has F input streams and E output streams that move at the same time, so the script
testbench of :mod:`flexspec.rtl.verilate` (one command at a time) does not fit; this module
generates a small C++ testbench instead (``flexspec.rtl.verilator.build`` compiles and caches it,
with its ``PORT_HELPERS_CPP``).  Every cycle it offers the head of each input stream (host always
valid while beats remain), keeps every output ready, prints each output beat it takes and the edge
after which ``done`` is high, counted from the first edge after reset (the convention of
:func:`flexspec.accel.pool_events.pool_events`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..accel.pool_events import pool_cycles, pool_output_cycles
from . import verilator
from .cluster import TOP, PoolCluster
from .engine_cosim import _result as engine_result
from .export import ToolError, to_verilog
from .verilate import _signed, strip_zero_initials


#: The output ports printed per beat (suffixes of ``o{e}_``), in the order :func:`_beats` reads them.
TAIL_FIELDS = ("data", "mask", "chan", "row", "col")
BLOCK_FIELDS = ("chan", "tile", "row", "data")


def cluster_testbench_cpp(fft_engines: int, ifft_engines: int, fields: tuple = TAIL_FIELDS) -> str:
    """C++ testbench: ``argv[1]`` lines ``f HEX`` (a beat for input stream f, in order),
    ``argv[2]`` the cycle limit.  Prints ``O e edge HEX...`` (the ``fields`` of output e) per
    output beat and ``D edge`` (or ``T edge`` on time-out)."""
    set_in, take_in, outs = [], [], []
    for f in range(fft_engines):
        set_in.append(f"        dut->i{f}_valid = pos[{f}] < beats[{f}].size();\n"
                      f"        if (pos[{f}] < beats[{f}].size()) set_port(dut->i{f}_data, beats[{f}][pos[{f}]]);")
        take_in.append(f"        take[{f}] = dut->i{f}_valid && dut->i{f}_ready;")
    for e in range(ifft_engines):
        outs.append(f"        dut->o{e}_ready = 1;")
        fmt = " %s" * len(fields)
        args = "".join(f", hex_of(dut->o{e}_{p}).c_str()" for p in fields)
        outs.append(f"        if (dut->o{e}_valid) std::printf(\"O {e} %lld{fmt}\\n\", cycle + 1{args});")
    return verilator.PORT_HELPERS_CPP + f"""
#include <fstream>
#include <sstream>
#include "V{TOP}.h"

int main(int argc, char** argv) {{
    Verilated::commandArgs(argc, argv);
    if (argc < 3) {{ std::fprintf(stderr, "usage: %s beats.txt max_cycles\\n", argv[0]); return 2; }}
    std::vector<std::vector<std::vector<uint32_t>>> beats({fft_engines});
    {{
        std::ifstream in(argv[1]);
        if (!in) {{ std::fprintf(stderr, "cannot read %s\\n", argv[1]); return 2; }}
        std::string line;
        while (std::getline(in, line)) {{
            std::istringstream ls(line); unsigned f; std::string h;
            if (ls >> f >> h) beats.at(f).push_back(words_of_hex(h));
        }}
    }}
    const long long limit = std::atoll(argv[2]);
    std::vector<size_t> pos({fft_engines}, 0);
    std::vector<bool> take({fft_engines}, false);
    V{TOP}* dut = new V{TOP};
    dut->clk = 0; dut->rst = 1; dut->eval();
    for (int i = 0; i < 2; i++) {{ dut->clk = 0; dut->eval(); dut->clk = 1; dut->eval(); }}
    dut->rst = 0;
    long long cycle = 0;
    while (cycle < limit) {{
{chr(10).join(set_in)}
        dut->clk = 0; dut->eval();
{chr(10).join(take_in)}
{chr(10).join(outs)}
        dut->clk = 1; dut->eval();
        cycle++;
        for (int f = 0; f < {fft_engines}; f++) if (take[f]) pos[f]++;
        if (dut->done) {{ std::printf("D %lld\\n", cycle); std::printf("C %s\\n", hex_of(dut->conflict).c_str()); break; }}
    }}
    if (cycle >= limit) std::printf("T %lld\\n", cycle);
    dut->final();
    delete dut;
    return 0;
}}
"""


def verilate_cluster(case, workdir, _fault: str | None = None, limit: int | None = None,
                     timeout_seconds: float = 600, tail: bool = True) -> dict:
    """Build the checked cluster of ``case.spec`` and stream ``case``'s image through it.

    ``tail``: the cluster ends in its output tails; returns ``output`` int64 [Cout, H', W'] (the
    write-back, after ReLU; -1 where never written), ``writes`` (pixels written), ``beats``;
    else ``blocks`` int64 [Cout, T, N, N] (the IFFT rows received; -1 where none arrived) and
    ``writes`` (rows received, counting repeats).  Both: ``cycles`` (the edge after which ``done``
    is high), ``out_edges``, ``conflict``; a cluster that never raises ``done`` raises ToolError."""
    spec = case.spec
    sh = spec.shape
    fields = TAIL_FIELDS if tail else BLOCK_FIELDS
    dut = PoolCluster(spec, checks=True, _fault=_fault, tail=tail)
    text = strip_zero_initials(to_verilog(dut, TOP))
    binary = verilator.build(text, TOP, cluster_testbench_cpp(sh.fft_engines, sh.ifft_engines, fields), workdir)
    lines = [f"{f} {int(b):x}" for f, beats in enumerate(case.input_beats()) for b in beats]
    text_in = "\n".join(lines) + "\n"
    path = Path(workdir) / f"beats-{hashlib.sha1(text_in.encode()).hexdigest()[:16]}.txt"
    path.write_text(text_in)
    limit = limit or 20 * expected_cycles(spec, tail) + 2000
    out = verilator.run(binary, [path, str(limit)], timeout_seconds)
    rows = [ln.split() for ln in out.splitlines() if ln.strip()]
    if any(r[0] == "T" for r in rows):
        raise ToolError(f"the pool cluster never raised done within {limit} cycles (a hung design)")
    beats = [(int(r[2]), *(int(v, 16) for v in r[3:])) for r in rows if r[0] == "O"]
    done = [int(r[1]) for r in rows if r[0] == "D"]
    conflict = [int(r[1], 16) for r in rows if r[0] == "C"]
    return _assemble(spec, tail, beats, done[0], bool(conflict and conflict[0]))


def expected_cycles(spec, tail: bool = True) -> int:
    """The cycle model's count for the cluster built with (or without) its output tails."""
    return pool_output_cycles(spec) if tail else pool_cycles(spec)


def _assemble(spec, tail: bool, beats, cycles: int, conflict: bool) -> dict:
    """Output beats (edge, the fields of :data:`TAIL_FIELDS` or :data:`BLOCK_FIELDS`) -> result."""
    if tail:
        return engine_result(spec.geometry, spec.quant.data_bits, beats, cycles, conflict)
    return _result(spec.geometry, spec.quant.block_bits, beats, cycles, conflict)


def _result(g, bb: int, beats, cycles: int, conflict: bool) -> dict:
    """Assemble block-row beats (edge, channel, tile, row, data) into the blocks [Cout, T, N, N]."""
    blocks = np.full((g.out_channels, g.tiles, g.fft_size, g.fft_size), -1, dtype=np.int64)
    for _, chan, tile, row, word in beats:  # BLOCK_FIELDS
        if not (chan < g.out_channels and tile < g.tiles and row < g.fft_size):
            raise ToolError(f"a block row outside the layer: channel {chan}, tile {tile}, row {row}")
        blocks[chan, tile, row] = [_signed(word >> (c * bb), bb) for c in range(g.fft_size)]
    return {"blocks": blocks, "writes": len(beats), "cycles": int(cycles), "out_edges": [b[0] for b in beats],
            "conflict": conflict}


def simulate_cluster(case, _fault: str | None = None, max_cycles: int | None = None, tail: bool = True) -> dict:
    """The same run in Amaranth's simulator (small cases); same result as :func:`verilate_cluster`."""
    from amaranth.sim import Simulator  # heavy, only here

    spec = case.spec
    sh = spec.shape
    fields = TAIL_FIELDS if tail else BLOCK_FIELDS
    dut = PoolCluster(spec, checks=True, _fault=_fault, tail=tail)
    streams = case.input_beats()
    limit = max_cycles or 4 * expected_cycles(spec, tail) + 1000
    got, res = [], {}
    ins = [(getattr(dut, f"i{f}_valid"), getattr(dut, f"i{f}_ready"), getattr(dut, f"i{f}_data"))
           for f in range(sh.fft_engines)]
    outs = [(getattr(dut, f"o{e}_valid"), getattr(dut, f"o{e}_ready"), *(getattr(dut, f"o{e}_{p}") for p in fields))
            for e in range(sh.ifft_engines)]

    async def bench(ctx):
        pos = [0] * len(ins)
        for o in outs:
            ctx.set(o[1], 1)
        for edge in range(1, limit):
            for f, (v, _, dat) in enumerate(ins):
                ctx.set(v, int(pos[f] < len(streams[f])))
                if pos[f] < len(streams[f]):
                    ctx.set(dat, streams[f][pos[f]])
            takes = [ctx.get(v) and ctx.get(r) for v, r, _ in ins]
            for o in outs:
                if ctx.get(o[0]):
                    got.append((edge, *(ctx.get(p) for p in o[2:])))
            await ctx.tick()
            pos = [p + int(t) for p, t in zip(pos, takes, strict=True)]
            if ctx.get(dut.done):
                res["cycles"], res["conflict"] = edge, ctx.get(dut.conflict)
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    if "cycles" not in res:
        raise ToolError(f"the pool cluster never raised done within {limit} cycles (a hung design)")
    return _assemble(spec, tail, got, res["cycles"], bool(res["conflict"]))
