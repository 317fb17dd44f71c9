"""Regenerate the synthesis-calibrated resource model (``flexspec/data/resource_model.json``).

Synthesizes every block of ``flexspec.accel.calibrate.BLOCKS`` at every size of its grid (fitted
and held-out points) with Yosys for each FPGA family, appending each result to
``benchmarks/results/synthesis_rows_<family>.json`` as it finishes (a rerun skips points already
there for the same Yosys version and command; ``--fresh`` starts over; one process per family can
run at the same time), then fits the per-block model of every family that has rows and writes it
with its provenance and the held-out errors.

Run it nice'd in the background: a P=16 array takes minutes on 2 cores.

Usage: nice python benchmarks/calibrate_resources.py [--family xcup,xc7] [--blocks pe_array]
       [--held-out-max-pes P] [--fit-only] [--fresh]
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

from flexspec.accel.calibrate import BLOCKS, FAMILY_SCRIPTS, fit_block, synthesize, yosys_script, yosys_version
from flexspec.accel.resource_model import MODEL_PATH
from flexspec.fileio import write_file

RESULTS = Path(__file__).resolve().parent / "results"


def rows_path(family: str) -> Path:
    return RESULTS / f"synthesis_rows_{family}.json"


def load_rows(family: str) -> list:
    path = rows_path(family)
    return json.loads(path.read_text()) if path.exists() else []


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="xcup,xc7")
    ap.add_argument("--blocks", default=",".join(BLOCKS))
    ap.add_argument("--fit-only", action="store_true")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--held-out-max-pes", type=int, default=None,
                    help="synthesize only held-out sizes with at most this many PEs (a shorter run)")
    args = ap.parse_args()
    families = args.family.split(",")
    blocks = [BLOCKS[b] for b in args.blocks.split(",")]
    version = yosys_version()
    for family in families if not args.fit_only else ():
        rows = [] if args.fresh else load_rows(family)
        for block in blocks:
            held = [p for p in block.held_out_points
                    if args.held_out_max_pes is None or p.get("pes", 0) <= args.held_out_max_pes]
            for params in list(block.fit_points) + held:
                key = (block.name, family, json.dumps(params, sort_keys=True))
                if any((r["block"], r["family"], json.dumps(r["params"], sort_keys=True)) == key
                       and r.get("yosys") == version and r.get("command") == yosys_script(block, family)
                       for r in rows):
                    continue
                t0 = time.perf_counter()
                row = synthesize(block, params, family)
                row.update(yosys=version, command=yosys_script(block, family),
                           seconds=round(time.perf_counter() - t0, 1),
                           date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
                rows.append(row)
                write_file(rows_path(family), json.dumps(rows, indent=1))
                print(f"{block.name} {family} {params}: LUT {row['lut']} LUTRAM {row['lutram']} FF {row['ff']} "
                      f"DSP {row['dsp']} BRAM18 {row['bram18']} depth {row['lut_levels']} "
                      f"({row['seconds']} s)", flush=True)
    model = {"format_version": 1, "yosys": version, "blocks": {}, "provenance": {
        "generated_by": "benchmarks/calibrate_resources.py",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commands": {f: f"read_verilog BLOCK.v; {FAMILY_SCRIPTS[f]}; stat" for f in FAMILY_SCRIPTS},
        "rows": "benchmarks/results/synthesis_rows_<family>.json",
    }}
    fitted = [f for f in FAMILY_SCRIPTS if load_rows(f)]
    rows = [r for f in fitted for r in load_rows(f)]
    for block in blocks:
        entry = {"description": block.description, "top": block.top, "features_doc": block.features.__doc__,
                 "terms": {k: list(v) for k, v in block.model_terms.items()}, "families": {}}
        for family in fitted:
            fam_rows = [r for r in rows if r["block"] == block.name and r["family"] == family]
            if len(fam_rows) < 2:
                print(f"{block.name}/{family}: {len(fam_rows)} rows; not fitted")
                continue
            fit = fit_block(block, rows, family)
            fit["depth"] = [{"params": r["params"], "lut_levels": r["lut_levels"], "carry_cells": r["carry_cells"],
                             "longest_carry_cells": r["longest_carry_cells"]} for r in fam_rows]
            fit["synthesis_seconds"] = sum(r["seconds"] for r in fam_rows)
            entry["families"][family] = fit
            for res, errs in fit["held_out"].items():
                for e in errs:
                    print(f"{block.name}/{family} held out {e['params']}: {res} synthesized {e['synthesized']} "
                          f"model {e['model']:.0f} ({e['relative_error']:+.1%})")
        model["blocks"][block.name] = entry
    write_file(MODEL_PATH, json.dumps(model, indent=1))
    print(f"wrote {MODEL_PATH}")


if __name__ == "__main__":
    main()
