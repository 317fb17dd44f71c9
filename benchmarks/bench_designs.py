"""Designs that fit: VGG16's conv layers (224x224, N = 8, density 0.25, synthesized kernels) on the
six device profiles, each with the fastest searched design that fits every resource of the
synthesis-calibrated model (``flexspec.accel.search.search_design``), at the profile's
evidence-backed clock and at 200 / 250 / 300 MHz (``latency_at_clocks``).

Per device: the design, every resource used / available (after the shell and DRAM-controller
reserves), the resource that bounds it and what one more array would need, the read-out rows per
request K the search chose, the clock with its source, the latency and the search time.  Simulator figures, not hardware.

``--per-array``: the as-built structure instead (``engines=PER_ARRAY``: A replicated layer engines,
each with its own FFT and IFFT, as ``flexspec.rtl.layer_engine`` builds one), written to
benchmarks/results/bench_designs_per_array.json; ``--markdown --per-array`` prints it next to the
shared-pool rows.

Writes benchmarks/results/bench_designs.json; ``--markdown`` prints the BENCHMARKS.md tables
from that file (no simulation).
Usage: nice python benchmarks/bench_designs.py [--per-array] [devices...] | --markdown [--per-array]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.resource_model import provenance
from flexspec.accel.search import (DATAFLOW_MEMORY, PER_ARRAY, Design, describe_design, describe_need,
                                   latency_at_clocks, one_more_array, search_design)
from flexspec.accel.sim import ScheduleCache
from flexspec.devices import load_device
from flexspec.fileio import write_file
from flexspec.workload.zoo import get_network

DEVICES = ("u200", "u250", "vcu118", "zcu102", "vc709", "s10gx2800")
OUT = Path(__file__).resolve().parent / "results" / "bench_designs.json"
OUT_PER_ARRAY = OUT.with_name("bench_designs_per_array.json")


def main(devices, per_array: bool = False) -> None:
    """``per_array``: ``engines=PER_ARRAY``, which implies the design's ``array_split="tiles"``
    (every array runs the layer's whole program on its own tiles, a_t = A, a_g = 1: a group split
    would need each FFT'd tile broadcast to several arrays and their partial outputs summed before
    one IFFT, neither of which is generated)."""
    out = OUT_PER_ARRAY if per_array else OUT
    net = get_network("vgg16")
    masks, nk, src = resolve_kernels(net, None)
    kernels = nk if nk is not None else masks
    cache = ScheduleCache()
    # rows of devices not run now are kept from the previous file (rerun one board after a change)
    old = json.loads(out.read_text())["rows"] if out.exists() else []
    rows = [r for r in old if r["device"] not in devices]
    for name in devices:
        dev = load_device(name)
        t0 = time.perf_counter()
        best = search_design(net, dev, 8, kernels, schedules=cache, engines=PER_ARRAY if per_array else None)
        t_search = time.perf_counter() - t0
        design = Design(best.config, best.resources, {}, one_more_array(best.config, dev, per_array))
        lines = describe_design(design, dev)
        print("\n".join(lines), flush=True)
        clocks = latency_at_clocks(net, dev, best.config, masks, schedules=cache)
        for c in clocks:
            print(f"  {c['clock_hz'] / 1e6:5.0f} MHz{' (default)' if c['default'] else ''}: "
                  f"{c['seconds'] * 1e3:.3f} ms ({c['cycles']:,} cycles)", flush=True)
        rows.append({"device": name, "config": best.config.to_dict(), "resources": best.resources.table(),
                     "binding_resource": design.bound_by,
                     "one_more_array": {k: {"needs": v[0], "available": v[1]} for k, v in design.next_array.items()},
                     "estimated": list(best.resources.estimated),
                     "clock_hz": dev.clock_hz, "clock_source": dev.sources["clock_hz"],
                     "latency_ms": best.seconds * 1e3, "cycles": best.cycles,
                     "dsp_efficiency": best.dsp_efficiency, "traffic_MB": best.traffic_bytes / 1e6,
                     "bound_by_layer": {lay.name: lay.bound for lay in best.layers},
                     "at_clocks": clocks, "search_s": t_search, "lines": lines,
                     "resource_model": provenance()["date"]})
        rows.sort(key=lambda r: DEVICES.index(r["device"]) if r["device"] in DEVICES else len(DEVICES))
        write_file(out, json.dumps({
            "network": "vgg16 (13 conv layers)", "engines": PER_ARRAY if per_array else "shared pool", "kernels": src.to_dict(), "resource_model": provenance(),
            "machine": f"2 CPU cores shared with other jobs; load average {os.getloadavg()[0]:.1f}",
            "rows": rows}, indent=1, default=str))


def markdown() -> str:
    data = json.loads(OUT.read_text())
    short = {"lut": "LUT", "lutram_luts": "LUT-RAM", "ff": "FF", "dsp": "DSP", "bram_bits": "BRAM Mb",
             "uram_bits": "URAM Mb", DATAFLOW_MEMORY: "on-chip memory for the dataflow"}
    order = [row["resource"] for row in data["rows"][0]["resources"]]
    head = (["device", "design A x P, B x R, K, FFT/IFFT engines"] + [f"{short[k]} used / available" for k in order]
            + ["bound by", "one more array needs", "clock MHz", "latency ms", "at 200 / 250 / 300 MHz (ms)"])
    out = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in data["rows"]:
        c = r["config"]
        cells = []
        for row in r["resources"]:
            if row["resource"].endswith("bits"):
                cells.append(f"{row['used'] / 2**20:,.1f} / {row['available'] / 2**20:,.1f}")
            else:
                cells.append(f"{row['used']:,} / {row['available']:,}")
        more = ", ".join(describe_need(k if k == DATAFLOW_MEMORY else short[k], (v["needs"], v["available"]))
                         for k, v in r["one_more_array"].items())
        clocks = " / ".join(f"{x['seconds'] * 1e3:.2f}" for x in r["at_clocks"] if not x["default"])
        out.append(f"| {r['device']} | {c['arrays']} x {c['pes']}, {c['banks']} x {c['ports']}, "
                   f"K={c.get('readout_rows', 8)}, {c['fft_engines']}/"
                   f"{c['ifft_engines']} | " + " | ".join(cells) + f" | {short[r['binding_resource']]} | {more} | "
                   f"{r['clock_hz'] / 1e6:.0f} | **{r['latency_ms']:.2f}** | {clocks} |")
    return "\n".join(out)


def markdown_per_array() -> str:
    """As-built (one FFT + one IFFT per array) next to the shared pool, per device."""
    pool = {r["device"]: r for r in json.loads(OUT.read_text())["rows"]}
    data = json.loads(OUT_PER_ARRAY.read_text())
    head = ["device", "shared pool: A x P, K, FFT/IFFT", "bound by", "latency ms",
            "as built: A x P, K, one FFT + IFFT per array", "bound by", "latency ms", "as built / pool"]
    out = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]

    def design(r):
        c = r["config"]
        return f"{c['arrays']} x {c['pes']}, {c['banks']} x {c['ports']}, K={c['readout_rows']}, " \
               f"{c['fft_engines']}/{c['ifft_engines']}"
    for r in data["rows"]:
        p = pool.get(r["device"])
        if p is None:
            continue
        out.append(f"| {r['device']} | {design(p)} | {p['binding_resource']} | {p['latency_ms']:.2f} | {design(r)} | "
                   f"{r['binding_resource']} | **{r['latency_ms']:.2f}** | {r['latency_ms'] / p['latency_ms']:.2f} |")
    return "\n".join(out)


if __name__ == "__main__":
    args = sys.argv[1:]
    tied = "--per-array" in args
    args = [a for a in args if a != "--per-array"]
    if args == ["--markdown"]:
        print(markdown_per_array() if tied else markdown())
    else:
        main(args or DEVICES, per_array=tied)
