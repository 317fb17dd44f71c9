"""Regenerate the synthesis-calibrated resource model (``flexspec/data/resource_model.json``).

Synthesizes every block of ``flexspec.accel.calibrate.BLOCKS`` at every size of its grid (fitted
and held-out points) with Yosys for each FPGA family, appending each result to
``benchmarks/results/synthesis_rows_<family>.json`` as it finishes (a rerun skips points already
there for the same Verilog (SHA-256 of the generated source), Yosys version and command;
``--fresh`` starts over; ``--tag`` gives a run its own rows file so runs can go side by side;
``--only`` restricts a run to listed sizes), then fits the per-block model of every family that has
rows and writes it with its provenance and the held-out errors.  Old rows of another RTL are kept
under ``benchmarks/results/history/`` (not read).

Run it nice'd in the background: a P=16 array takes minutes on 2 cores.

Usage: nice python benchmarks/calibrate_resources.py [--family xcup,xc7] [--blocks pe_array]
       [--held-out-max-pes P] [--held-out-only] [--tag T] [--only JSON] [--scale-of FAMILY] [--fit-only]
       [--fresh]
       python benchmarks/calibrate_resources.py --markdown   (BENCHMARKS.md tables from the stored model)
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

from flexspec.accel.calibrate import (BLOCKS, FAMILY_SCRIPTS, fit_block, fit_scaled, synthesize, verilog_digest,
                                      yosys_script, yosys_version)
from flexspec.accel.resource_model import MODEL_PATH
from flexspec.fileio import write_file

RESULTS = Path(__file__).resolve().parent / "results"


def rows_path(family: str, tag: str = "") -> Path:
    return RESULTS / f"synthesis_rows_{family}{'_' + tag if tag else ''}.json"


def load_rows(family: str) -> list:
    """Every stored row of ``family`` (all tags)."""
    return [r for path in sorted(RESULTS.glob(f"synthesis_rows_{family}*.json")) for r in json.loads(path.read_text())
            if r["family"] == family]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="xcup,xc7")
    ap.add_argument("--blocks", default=",".join(BLOCKS))
    ap.add_argument("--fit-only", action="store_true")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--held-out-max-pes", type=int, default=None,
                    help="synthesize only held-out sizes with at most this many PEs (a shorter run)")
    ap.add_argument("--held-out-only", action="store_true",
                    help="synthesize only the held-out sizes (rows tagged 'held': can run beside a fitting run)")
    ap.add_argument("--tag", default=None,
                    help="rows file suffix (synthesis_rows_<family>_<tag>.json) so runs can go side by side")
    ap.add_argument("--only", default=None,
                    help="JSON list of sizes (parameter dicts) of the grid to synthesize, the rest skipped")
    ap.add_argument("--scale-of", default=None,
                    help="fit each other family as one factor per resource times this family's model (few rows)")
    args = ap.parse_args()
    families = args.family.split(",")
    blocks = [BLOCKS[b] for b in args.blocks.split(",")]
    version = yosys_version()
    tag = args.tag if args.tag is not None else ("held" if args.held_out_only else "")
    only = None if args.only is None else [json.dumps(p, sort_keys=True) for p in json.loads(args.only)]
    for family in families if not args.fit_only else ():
        rows = [] if args.fresh else load_rows(family)
        path = rows_path(family, tag)
        own = json.loads(path.read_text()) if path.exists() and not args.fresh else []  # this run's file
        for block in blocks:
            held = [p for p in block.held_out_points
                    if args.held_out_max_pes is None or p.get("pes", 0) <= args.held_out_max_pes]
            for params in ([] if args.held_out_only else list(block.fit_points)) + held:
                key = (block.name, family, json.dumps(params, sort_keys=True))
                if only is not None and key[2] not in only:
                    continue
                digest = verilog_digest(block, params)
                if any((r["block"], r["family"], json.dumps(r["params"], sort_keys=True)) == key
                       and r.get("verilog_sha256") == digest and r.get("yosys") == version and r.get("command") == yosys_script(block, family)
                       for r in rows):
                    continue
                t0 = time.perf_counter()
                row = synthesize(block, params, family)
                row.update(yosys=version, command=yosys_script(block, family),
                           seconds=round(time.perf_counter() - t0, 1),
                           date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
                rows.append(row)
                own.append(row)
                write_file(rows_path(family, tag), json.dumps(own, indent=1))
                print(f"{block.name} {family} {params}: LUT {row['lut']} LUTRAM {row['lutram']} FF {row['ff']} "
                      f"DSP {row['dsp']} BRAM18 {row['bram18']} depth {row['lut_levels']} "
                      f"({row['seconds']} s)", flush=True)
    model = {"format_version": 1, "yosys": version, "blocks": {}, "provenance": {
        "generated_by": "benchmarks/calibrate_resources.py",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commands": {f: f"read_verilog BLOCK.v; {FAMILY_SCRIPTS[f]}; stat" for f in FAMILY_SCRIPTS},
        "rows": "benchmarks/results/synthesis_rows_<family>*.json",
    }}
    if MODEL_PATH.exists():  # blocks not refit now keep their stored fit, other scripts' entries their data
        stored = json.loads(MODEL_PATH.read_text())
        model["blocks"] = dict(stored.get("blocks", {}))  # pool_glue: bench_pool_synth.py
        model |= {k: v for k, v in stored.items() if k not in model}  # output_fifo: bench_output_fifo.py
    fitted = sorted((f for f in FAMILY_SCRIPTS if load_rows(f)), key=lambda f: f != args.scale_of)
    rows = [r for f in fitted for r in load_rows(f)]
    for block in blocks:
        entry = {"description": block.description, "top": block.top, "features_doc": block.features.__doc__,
                 "terms": {k: list(v) for k, v in block.model_terms.items()}, "families": {}}
        for family in fitted:
            fam_rows = [r for r in rows if r["block"] == block.name and r["family"] == family]
            if len(fam_rows) < 2:
                print(f"{block.name}/{family}: {len(fam_rows)} rows; not fitted")
                continue
            if args.scale_of and family != args.scale_of:
                if args.scale_of not in entry["families"]:
                    print(f"{block.name}/{family}: no {args.scale_of} fit to scale; not fitted")
                    continue
                fit = fit_scaled(block, rows, family, entry["families"][args.scale_of])
                fit["reference_family"] = args.scale_of
            else:
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


def size_label(params: dict) -> str:
    """A calibration size in the tables' words: PE array (P, B x R, N[, K]), FFT/IFFT (N, input bits)."""
    if "pes" in params:
        k = f", K={params['readout_rows']}" if "readout_rows" in params else ""
        a = f", {params['acc_channels']} slots" if "acc_channels" in params else ""
        return f"{params['pes']}, {params['banks']} x {params['ports']}, {params.get('fft_size', 8)}{k}{a}"
    return f"N={params['n']}, {params['in_bits']} bits in"


def markdown() -> str:
    """Held-out error per resource and logic depth per synthesized size, from the stored model."""
    model = json.loads(MODEL_PATH.read_text())
    out = ["| block | family | size | resource | synthesized | model | error |", "|---" * 7 + "|"]
    depth = ["| block | family | size | LUT levels (deepest path) | carry cells on it | "
             "longest carry chain (cells) |", "|---" * 6 + "|"]
    for name, entry in ((k, v) for k, v in model["blocks"].items() if k in BLOCKS):
        for fam, fit in entry["families"].items():
            for res in ("lut", "lutram", "ff", "dsp"):
                for e in fit["held_out"].get(res, []):
                    p = e["params"]
                    out.append(f"| {name} | {fam}{' (leave-one-out)' if 'leave-one-out' in fit.get('method', '') else ''} | "
                               f"{size_label(p)} | {res} | "
                               f"{e['synthesized']:,} | {e['model']:,.0f} | {e['relative_error']:+.1%} |")
            for d in fit["depth"]:
                p = d["params"]
                depth.append(f"| {name} | {fam} | {size_label(p)} | "
                             f"{d['lut_levels']} | {d['carry_cells']} | {d['longest_carry_cells']} |")
    return "\n".join(out) + "\n\n" + "\n".join(depth)


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        print(markdown())
    else:
        main()
