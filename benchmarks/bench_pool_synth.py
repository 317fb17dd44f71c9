"""Yosys synthesis of the shared pool's glue (helper h11f, item 5) and its fit for the resource model.

The glue is everything ``flexspec.rtl.cluster.PoolCluster`` adds around the blocks the resource
model already costs (spectral pass / PE array, FFT, IFFT): FFT feeders and the static distributor,
the bank writers (two channel slots per array column), the broadcast bus, per-array rounding,
output FIFO and credits, the static IFFT arbiter with its item ROMs, the output tags and ``done``.
Those blocks are black boxes (``PoolCluster(blackbox=True)``), so Yosys maps the glue alone:
``synth_xilinx -family xcup -noiopad -top flexspec_pool_cluster`` (Yosys 0.23 here).

Sizes: (a_t, a_g, F, E) below, N = 8, 16-bit data, 48-bit accumulators, P = 8, B x R = 10 x 2,
``ROW_COUT`` output channels per array row (the FIFO depth is CREDITS x that x (N/2+1) beats).
Fit: non-negative least squares per resource on its structural features (``GLUE_TERMS``)
over the fitted sizes (:func:`flexspec.accel.resource_model.glue_features`); the held-out sizes give the error.  Writes
benchmarks/results/bench_pool_synth.json and the ``pool_glue`` entry of
``flexspec/data/resource_model.json`` (with provenance).

Usage: nice python benchmarks/bench_pool_synth.py [--fit-only] | --markdown
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.calibrate import classify, parse_stat, yosys_version
from flexspec.accel.functional import calibrate_layer
from flexspec.accel.resource_model import GLUE_RESOURCES as RESOURCES
from flexspec.accel.resource_model import GLUE_TERMS, MODEL_PATH, glue_features
from flexspec.fileio import write_file
from flexspec.rtl.cluster import TOP, PoolCluster, blackbox_stubs
from flexspec.rtl.cluster_case import PoolShape, cluster_spec
from flexspec.rtl.export import to_verilog
from flexspec.spectral.prune import magnitude_mask
from flexspec.spectral.sparse import SparseSpectralKernels
from flexspec.spectral.transform import spectral_kernels

OUT = Path(__file__).resolve().parent / "results" / "bench_pool_synth.json"
ROW_COUT = 8
FIT = [(1, 1, 1, 1), (2, 1, 1, 1), (2, 2, 2, 2), (4, 1, 2, 2), (1, 3, 1, 3), (4, 2, 4, 4), (3, 1, 3, 1)]
HELD = [(6, 1, 3, 2), (2, 3, 2, 3)]
COMMAND = "read_verilog {stubs}; read_verilog {src}; synth_xilinx -family xcup -noiopad -top {top}; tee -q -o {stat} stat"


def glue_spec(a_t, a_g, f, e, seed=0):
    rng = np.random.default_rng(seed)
    cout, cin = ROW_COUT * a_g, 2
    wf = spectral_kernels(rng.normal(size=(cout, cin, 3, 3)), 8)
    ssk = SparseSpectralKernels.from_dense(wf, magnitude_mask(wf, 0.25), 3)
    side = 6 * max(2, int(np.ceil(np.sqrt(max(a_t, e)))))  # enough tiles for every column and IFFT
    quant = calibrate_layer(rng.normal(size=(2, cin, side, side)), ssk, 1)
    cfg = AcceleratorConfig(arrays=a_t * a_g, pes=8, banks=10, ports=2, fft_size=8, fft_engines=f, ifft_engines=e)
    return cluster_spec(ssk, quant, cfg, PoolShape(a_t, a_g, f, e), side, side)


def synthesize(size) -> dict:
    spec = glue_spec(*size)
    dut = PoolCluster(spec, blackbox=True, tail=False)  # the glue as fitted (the output tails: not yet charged)
    text = to_verilog(dut, TOP)
    with tempfile.TemporaryDirectory(prefix="flexspec-pool-") as tmp:
        t = Path(tmp)
        (t / "stubs.v").write_text(blackbox_stubs(dut.boxes))
        (t / "glue.v").write_text(text)
        cmd = COMMAND.format(stubs=t / "stubs.v", src=t / "glue.v", top=TOP, stat=t / "stat.txt")
        t0 = time.perf_counter()
        proc = subprocess.run([shutil.which("yosys"), "-q", "-p", cmd], capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"yosys failed on {size}: {(proc.stderr or proc.stdout)[-1500:]}")
        cells = parse_stat((t / "stat.txt").read_text())
    boxes = {c: n for c, n in cells.items() if c.startswith("pool_bb_")}
    cells = {c: n for c, n in cells.items() if c not in boxes}
    sh = spec.shape
    feats = glue_features(sh.a_t, sh.a_g, sh.fft_engines, sh.ifft_engines, spec.geometry.fft_size, spec.quant.data_bits,
                          ROW_COUT, spec.geometry.tiles, spec.quant.ifft_bits)
    return {"size": list(size), "features": feats, "cells": cells, "black_boxes": boxes, **classify(cells),
            "synth_s": time.perf_counter() - t0}


def fit(rows) -> dict:
    fitted = [r for r in rows if tuple(r["size"]) in FIT]
    held = [r for r in rows if tuple(r["size"]) in HELD]
    coef, errors = {}, {}
    for res in RESOURCES:
        terms = GLUE_TERMS[res]
        a = np.array([[r["features"][k] for k in terms] for r in fitted], dtype=float)
        b = np.array([r[res] for r in fitted], dtype=float)
        x, _ = nnls(a, b)
        coef[res] = {k: float(v) for k, v in zip(terms, x, strict=True) if v > 0}
        errors[res] = [{"size": r["size"], "synthesized": r[res],
                        "model": float(sum(coef[res].get(k, 0) * r["features"][k] for k in terms))}
                       for r in held]
    return {"coefficients": coef, "held_out": errors, "fitted_sizes": [r["size"] for r in fitted]}


def main(fit_only: bool) -> None:
    rows = json.loads(OUT.read_text())["rows"] if OUT.exists() else []
    done = {tuple(r["size"]) for r in rows}
    if not fit_only:
        for size in FIT + HELD:
            if size in done:
                continue
            rows.append(synthesize(size))
            print(rows[-1]["size"], {k: rows[-1][k] for k in RESOURCES}, f"{rows[-1]['synth_s']:.0f} s", flush=True)
            write_file(OUT, json.dumps({"rows": rows}, indent=1))
    model = fit(rows)
    prov = {"generated_by": "benchmarks/bench_pool_synth.py", "yosys": yosys_version(),
            "date": datetime.date.today().isoformat(), "command": COMMAND,
            "sizes": "(a_t, a_g, F, E) fitted " + str(FIT) + ", held out " + str(HELD),
            "design": f"N=8, 16-bit data, 48-bit accumulators, P=8, B x R=10 x 2, {ROW_COUT} output channels a row"}
    write_file(OUT, json.dumps({"rows": rows, "fit": model, "provenance": prov}, indent=1))
    data = json.loads(MODEL_PATH.read_text())
    data["blocks"]["pool_glue"] = {"families": {"xcup": {**model, "provenance": prov}}}
    write_file(MODEL_PATH, json.dumps(data, indent=1))
    for res in RESOURCES:
        for e in model["held_out"][res]:
            print(res, e["size"], e["synthesized"], round(e["model"]), flush=True)


def markdown() -> str:
    data = json.loads(OUT.read_text())
    head = ["a_t x a_g, F/E", "arrays", "LUT", "LUT-RAM", "FF", "DSP", "BRAM18", "fitted / held out"]
    out = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in data["rows"]:
        a_t, a_g, f, e = r["size"]
        out.append(f"| {a_t} x {a_g}, {f}/{e} | {a_t * a_g} | {r['lut']:,} | {r['lutram']:,} | {r['ff']:,} | "
                   f"{r['dsp']} | {r['bram18']} | {'held out' if tuple(r['size']) in HELD else 'fitted'} |")
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        print(markdown())
    else:
        main("--fit-only" in sys.argv[1:])
