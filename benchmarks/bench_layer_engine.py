"""The whole layer engine (``flexspec.rtl.layer_engine``) on real layers of the shipped fmnist_vgg:
co-simulated (Verilator, or Amaranth's simulator with ``--sim=amaranth``) against the fixed-point
functional model (bit for bit) and the engine's cycle model (to the cycle), next to what the
spectral pass alone takes (``flexspec.accel.engine.pass_events``, what the simulator charged).

Usage: python benchmarks/bench_layer_engine.py [--layers=conv1_1,conv1_2] [--sim=verilator|amaranth|model]
Writes benchmarks/results/layer_engine.json (merged by layer and simulator).  ``--sim=model``: the cycle
model and the pass-only cycles of every listed layer, no co-simulation (what bounds each layer).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from flexspec.accel.engine import pass_shape
from flexspec.fileio import write_file
from flexspec.rtl._cli import layer_engine_case
from flexspec.rtl.engine_cosim import simulate_engine, verilate_engine
from flexspec.rtl.source import RTLOptions
from flexspec.rtl.verilator import DEFAULT_WORKDIR

OUT = Path(__file__).resolve().parent / "results" / "layer_engine.json"


def one(layer: str, sim: str) -> dict:
    case, info = layer_engine_case(layer, RTLOptions())
    spec, g = case.spec, case.spec.geometry
    t0 = time.perf_counter()
    want = case.expected_output()
    if sim == "model":
        r = {"output": want, "writes": 0, "cycles": -1}
    else:
        r = verilate_engine(case, DEFAULT_WORKDIR) if sim == "verilator" else simulate_engine(case)
    seconds = time.perf_counter() - t0
    ps = pass_shape(spec.program.group_cycles, g.in_channels, g.out_channels, spec.pe_config.bank_of,
                    spec.pe_config.num_banks, spec.pe_config.num_pes, g.fft_size)
    return {"layer": layer, "simulator": sim, "bit_exact": bool(np.array_equal(r["output"], want)),
            "pixels": int(want.size), "pixels_written": int(r["writes"]), "rtl_cycles": int(r["cycles"]),
            "model_cycles": spec.expected_cycles(), "pass_only_cycles": ps.cycles(g.tiles), "tiles": g.tiles,
            "ifft_cycles_per_tile": g.out_channels * g.fft_size, "fft_cycles_per_tile": g.in_channels * g.fft_size,
            "tile_buffer_rows_per_tile": g.rows_per_tile,
            "program_cycles": spec.program.length, "groups": len(spec.groups), "cin": g.in_channels,
            "cout": g.out_channels, "design": "P=4 B=4 R=1 N=8, 16-bit data, 48-bit accumulators",
            "saturated": {k: int(v) for k, v in case.trace.saturated.items()}, "seconds": round(seconds, 1),
            "load_average": os.getloadavg(), "calibration": info["calibration"]}


def main(argv) -> int:
    opts = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    layers = opts.get("layers", "conv1_1").split(",")
    sim = opts.get("sim", "verilator")
    rows = json.loads(OUT.read_text()) if OUT.exists() else []
    for layer in layers:
        row = one(layer, sim)
        print(json.dumps(row), flush=True)
        rows = [r for r in rows if (r["layer"], r["simulator"]) != (layer, sim)] + [row]
        write_file(OUT, json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
