"""Synthesis of the generated PE array (Yosys synth_xilinx, UltraScale+) and Verilator
co-simulation of whole real layers' spectral passes (bit-exactness and cycles vs the model).

Run: python benchmarks/bench_rtl.py [--out benchmarks/results/rtl.json] [--no-synth] [--layers conv1_2,conv2_1]
Needs Debian's yosys and verilator (skips a part with a note when one is missing).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from flexspec.accel import engine
from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.fixed_point import execute_group_tiles, wrap_signed
from flexspec.accel.sim import engine_layer_cycles
from flexspec.rtl import PEArrayConfig
from flexspec.rtl.export import generate_verilog
from flexspec.rtl.source import RTLOptions, layer_case

SYNTH_POINTS = [(4, 8, 1), (8, 20, 2)]  # (P, B, R) at N = 8, 16-bit data, 48-bit accumulators
#: LUTs per Xilinx LUTRAM primitive (UltraScale+ CLB: RAM64X1D = 2, RAM32M16/RAM64M8 = 8 LUTs)
LUTRAM_LUTS = {"RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8,
               "RAM256X1D": 8, "RAM32X1S": 1, "RAM64X1S": 1}


def functional_accumulators(case):
    """(Moved here from rtl/_cli.py, whose CLI now verifies the whole engine.) The functional model's accumulators of every tile: int64 [T, Cout, F] (re, im), from the
    per-PE group model (execute_group_tiles) scattered to the output channels."""
    c = case.pe_config
    T = case.num_tiles
    re = np.zeros((T, c.acc_channels, c.num_freq), np.int64)
    im = np.zeros_like(re)
    for g in case.groups:
        pr, pi = execute_group_tiles(g.table, np.asarray(c.bank_of), c.ports, case.tile_re[g.in_channel],
                                     case.tile_im[g.in_channel], g.kernel_re, g.kernel_im, broadcast=c.broadcast,
                                     acc_bits=c.acc_bits, dsp_per_complex_mac=c.dsp_per_complex_mac)
        live = g.slots >= 0
        np.add.at(re, (slice(None), g.slots[live]), pr[:, live])
        np.add.at(im, (slice(None), g.slots[live]), pi[:, live])
    return wrap_signed(re, c.acc_bits), wrap_signed(im, c.acc_bits)


def synth_counts(verilog: str, top: str = "flexspec_pe_array") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.v"
        path.write_text(verilog)
        stat = Path(tmp) / "stat.txt"
        t0 = time.perf_counter()
        proc = subprocess.run(["yosys", "-q", "-p", f"read_verilog {path}; synth_xilinx -family xcup -top {top}; "
                               f"tee -q -o {stat} stat"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        cells = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+(\w+)\s+(\d+)\s*$", stat.read_text(), re.M)}
    return {"lut": sum(v for k, v in cells.items() if re.fullmatch(r"LUT\d", k)),
            "lutram_luts": sum(v * LUTRAM_LUTS[k] for k, v in cells.items() if k in LUTRAM_LUTS),
            "ff": sum(v for k, v in cells.items() if k.startswith("FD")),
            "dsp": cells.get("DSP48E2", 0), "bram18": cells.get("RAMB18E2", 0) + 2 * cells.get("RAMB36E2", 0),
            "cells": cells, "yosys_seconds": round(time.perf_counter() - t0, 1)}


def layer_cosim(layer: str, P: int, B: int, workdir) -> dict:
    from flexspec.rtl.verilate import verilate_spectral_pass

    case = layer_case(layer, RTLOptions(num_pes=P, num_banks=B))
    c = case.pe_config
    tiles = [case.tile(t) for t in range(case.num_tiles)]
    t0 = time.perf_counter()
    r = verilate_spectral_pass(c, case.program, tiles, workdir)
    wall = time.perf_counter() - t0
    want_re, want_im = functional_accumulators(case)
    sim = engine_layer_cycles(case.mask, AcceleratorConfig(arrays=1, pes=P, banks=B, ports=1), case.num_tiles)
    shape = engine.pass_shape(case.layer_schedule.schedule.cycles, c.in_channels, c.acc_channels, c.bank_of,
                              c.num_banks, c.num_pes, c.fft_size)
    return {"layer": layer, "P": P, "B": B, "R": 1, "tiles": case.num_tiles, "groups": case.num_groups,
            "program_cycles": case.program.length, "rows_per_tile": c.bank_depth, "outputs_per_tile": c.acc_columns,
            "bit_exact": bool(np.array_equal(r["acc_re"], want_re) and np.array_equal(r["acc_im"], want_im)),
            "accumulators_compared": int(want_re.size), "rtl_cycles": r["cycles"], "simulated_cycles": sim,
            "tile_interval_cycles": shape.interval(), "compute_bound": shape.interval() == case.program.length,
            "build_and_run_seconds": round(wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/results/rtl.json")
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--layers", default="conv1_2,conv2_1")
    args = ap.parse_args()
    result = {"load_average": os.getloadavg(), "synth": [], "cosim": [], "notes": []}
    if args.no_synth or shutil.which("yosys") is None:
        result["notes"].append("synthesis not run")
    else:
        for P, B, R in SYNTH_POINTS:
            cfg = PEArrayConfig(P, B, R, 8, tuple(f % B for f in range(40)), schedule_depth=64)
            row = {"P": P, "B": B, "R": R, "acc_channels": cfg.acc_channels, **synth_counts(generate_verilog(cfg))}
            print(row, flush=True)
            result["synth"].append(row)
    if shutil.which("verilator") is None:
        result["notes"].append("verilator missing: co-simulation not run")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for layer in args.layers.split(","):
                row = layer_cosim(layer, 4, 8, tmp)
                print(row, flush=True)
                result["cosim"].append(row)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
