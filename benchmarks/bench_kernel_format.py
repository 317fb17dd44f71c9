"""Bytes and latency of the ways VGG16's sparse spectral kernels can be stored (flexspec.kernel_format).

Design and kernels as ``flexspec run vgg16 --device u200`` picks them (the design that fits the
U200, ``flexspec.accel.search.fit_design``; synthesized kernels, layer-scope magnitude pruning to
25%, seed 0).
Per layer, the stored kernel bytes of

* ``entries``: what the dataflow and the simulator count -- nnz x (2 x 16 + 6) bits;
* ``stream``: what the generated RTL's schedule memory holds for the schedules the simulator runs
  (the flexspec design's cout blocking, broadcast-aware schedules): one schedule word
  (``flexspec.rtl.config.PEArrayConfig.word_bits``: B x R port addresses, then per PE valid | port
  select | first | accumulator address | row | re | im) per schedule cycle, idle slots included
  (``flexspec.accel.grouping.stored_stream_bits``);
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


from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.grouping import stored_stream_bits
from flexspec.accel.search import fit_design
from flexspec.accel.sim import ScheduleCache, precision_of, simulate_network
from flexspec.dataflow import kernel_bits
from flexspec.fileio import write_file
from flexspec.workload import get_network

OUT = Path(__file__).resolve().parent / "results" / "kernel_format.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    net = get_network("vgg16")
    masks, net_k, src = resolve_kernels(net, None)
    cfg, _ = fit_design("u200", 8, network=net, masks=masks)
    entries = precision_of(cfg, net_k)
    once = replace(entries, kernel_format=replace(entries.kernel_format, twins="once"))
    cache = ScheduleCache()
    load = {"before": os.getloadavg()[0]}
    t0 = time.perf_counter()
    runs = {name: simulate_network(net, "u200", cfg, net_k, histograms=False, schedules=cache, precision=prec)
            for name, prec in (("entries", entries), ("twins_once", once))}

    def stream_of(blocks: dict) -> dict:
        return {name: stored_stream_bits(masks[name], cfg, cout_block, cache) for name, cout_block in blocks.items()}

    # the stored stream depends on the grouping, hence on the cout block the run picks: iterate to a fixed point
    blocks = {lay.name: lay.cout_block for lay in runs["entries"].layers}
    for _ in range(4):
        stored_blocks, stream = dict(blocks), stream_of(blocks)
        runs["stream"] = simulate_network(net, "u200", cfg, net_k, histograms=False, schedules=cache,
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
    report = {"network": "vgg16", "device": "u200", "config": cfg.to_dict(), "kernels": src.to_dict(),
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
