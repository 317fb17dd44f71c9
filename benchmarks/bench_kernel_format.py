"""Bytes and latency of the ways VGG16's sparse spectral kernels can be stored (flexspec.kernel_format).

Design and kernels as ``flexspec simulate vgg16 --device u200`` picks them (A=55 P=32 B=20 R=2
broadcast, 64/64 FFT engines; synthesized kernels, layer-scope magnitude pruning to 25%, seed 0).
Per layer, the stored kernel bytes of

* ``entries``: what the dataflow and the simulator count -- nnz x (2 x 16 + 6) bits;
* ``stream``: what the generated RTL's kernel ROM holds for the schedules the simulator runs
  (the flexspec design's cout blocking, broadcast-aware schedules): one 39-bit word
  (valid | index | re | im) per PE per schedule cycle, idle slots included;
* ``twins once``: entries with one member of each conjugate pair of columns 0 and N/2 stored and
  the real-valued DC/Nyquist bins stored as their real part only;

and the simulated latency (flexspec design) with the kernels stored as each (the simulator moves the
format's bytes; compute is the same).  The stream run stores each layer's kernels as the stream of
the grouping of the entries run's cout blocking (spread over the kernels of each group); a layer
that then picks another cout block is re-stored with that block's grouping until the blocks stop
changing (at most 4 rounds; a layer still changing is flagged).

    python benchmarks/bench_kernel_format.py [--out benchmarks/results/kernel_format.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path


from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.sim import ScheduleCache, precision_of, simulate_network
from flexspec.dataflow import kernel_bits
from flexspec.fileio import write_file
from flexspec.kernel_format import schedule_stream_bits, spread_over_kernels
from flexspec.workload import get_network

OUT = Path(__file__).resolve().parent / "results" / "kernel_format.json"
CFG = AcceleratorConfig(arrays=55, pes=32, banks=20, ports=2, fft_engines=64, ifft_engines=64, broadcast=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    net = get_network("vgg16")
    masks, net_k, src = resolve_kernels(net, None)
    entries = precision_of(CFG, net_k)
    once = replace(entries, kernel_format=replace(entries.kernel_format, twins="once"))
    cache = ScheduleCache()
    load = {"before": os.getloadavg()[0]}
    t0 = time.perf_counter()
    runs = {name: simulate_network(net, "u200", CFG, net_k, histograms=False, schedules=cache, precision=prec)
            for name, prec in (("entries", entries), ("twins_once", once))}
    def stream_of(blocks: dict) -> dict:
        out = {}
        for name, cout_block in blocks.items():
            sch = cache.get(masks[name], CFG, cout_block, "optimal")
            bits = schedule_stream_bits(sch.cycles.ravel(), CFG.pes, 8, entries.kernel_format)
            out[name] = spread_over_kernels(sch.groups, bits, masks[name][..., 0].size).reshape(masks[name].shape[:2])
        return out

    # the stored stream depends on the grouping, hence on the cout block the run picks: iterate to a fixed point
    blocks = {lay.name: lay.cout_block for lay in runs["entries"].layers}
    for _ in range(4):
        stored_blocks, stream = dict(blocks), stream_of(blocks)
        runs["stream"] = simulate_network(net, "u200", CFG, net_k, histograms=False, schedules=cache,
                                          precision=entries, stored_kernel_bits=stream)
        picked = {lay.name: lay.cout_block for lay in runs["stream"].layers}
        if picked == blocks:
            break
        blocks = picked
    load["after"] = os.getloadavg()[0]
    rows = []
    for lay in runs["entries"].layers:
        mask = masks[lay.name]
        row = {"layer": lay.name, "memory_bound": bool(lay.memory_bound), "cout_block": int(lay.cout_block),
               "entries_bytes": int(kernel_bits(mask, 8, entries).sum()) / 8,
               "stream_bytes": int(stream[lay.name].sum()) / 8,
               "twins_once_bytes": int(kernel_bits(mask, 8, once).sum()) / 8,
               "cycles_entries": lay.cycles, "cycles_twins_once": runs["twins_once"].layer(lay.name).cycles,
               "cycles_stream": runs["stream"].layer(lay.name).cycles,
               "stream_cout_block_changed": bool(runs["stream"].layer(lay.name).cout_block != stored_blocks[lay.name]),
               "stream_cout_block": int(stored_blocks[lay.name]),
               "traffic_bytes_entries": lay.traffic_bytes,
               "traffic_bytes_twins_once": runs["twins_once"].layer(lay.name).traffic_bytes}
        rows.append(row)
    tot = {k: float(sum(r[k] for r in rows)) for k in rows[0] if k.endswith(("_bytes", "_entries", "_once", "_stream"))}
    report = {"network": "vgg16", "device": "u200", "config": CFG.to_dict(), "kernels": src.to_dict(),
              "layers": rows, "total": tot, "seconds": time.perf_counter() - t0, "load_average": load,
              "cycles": {k: r.cycles for k, r in runs.items()}}
    write_file(args.out, json.dumps(report, indent=1) + "\n")
    print("| layer | bound | entries MB | stream MB | stream / entries | twins once MB | once / entries | "
          "cycles entries | cycles stream | stream / entries | cycles twins once | once / entries |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows + [{"layer": "**total**", "memory_bound": "", **tot}]:
        bound = "" if r["memory_bound"] == "" else ("memory" if r["memory_bound"] else "compute")
        print(f"| {r['layer']} | {bound} | {r['entries_bytes'] / 1e6:.2f} | {r['stream_bytes'] / 1e6:.2f} | "
              f"{r['stream_bytes'] / r['entries_bytes']:.3f} | {r['twins_once_bytes'] / 1e6:.2f} | "
              f"{r['twins_once_bytes'] / r['entries_bytes']:.3f} | {int(r['cycles_entries'])} | "
              f"{int(r['cycles_stream'])} | {r['cycles_stream'] / r['cycles_entries']:.4f} | "
              f"{int(r['cycles_twins_once'])} | {r['cycles_twins_once'] / r['cycles_entries']:.4f} |"
              + (" (stream run chose another cout block than the stored grouping's)" if r.get("stream_cout_block_changed")
                 else ""))
    print(f"network cycles: {report['cycles']}; {report['seconds']:.0f} s, load average {load}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
