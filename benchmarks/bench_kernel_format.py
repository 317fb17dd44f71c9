"""Bytes and latency of the ways VGG16's sparse spectral kernels can be stored (flexspec.kernel_format).

Design and kernels as ``flexspec run vgg16 --device u200`` picks them (the design that fits the
U200, ``flexspec.accel.search.fit_design``; synthesized kernels, layer-scope magnitude pruning to
25%, seed 0), and the same design on the U200 with 1/``--bandwidth-scale`` of its DRAM bandwidth
(default 4: a what-if with 4x the compute per byte of DRAM bandwidth, as 4x the arrays would have
-- about the 35 arrays the U200's LUTs allow once the BRAM bound goes -- where conv4_x / conv5_x
become memory-bound).

Every format is counted here, independently of ``flexspec.kernel_format``, from the schedules the
simulator runs (the stored-stream run's cout blocking, optimal conflict-free schedules: each
read's group, PE, cycle and frequency) and the generated PE array's field widths
(``flexspec.accel.grouping.stream_array``):

* ``entries``: packed non-zeros, nnz x (2 x 16 + 6) bits -- no schedule at all (the count of a
  pure dataflow analysis; hardware would have to schedule on chip);
* ``stream``: what the generated RTL's schedule memory holds, one word per schedule cycle, idle
  slots included: B x R port addresses + P x (valid | port select | first | acc address | row |
  re | im) -- the default count of ``flexspec run``; checked against
  ``flexspec.accel.grouping.stored_stream_bits`` (the formula the simulator uses);
* ``used_ports``: the same word with a B x R port-used mask, an address only for the ports read in
  that cycle (RTL change: the word decoder);
* ``valid_slots``: per cycle a P-bit valid mask, then for each valid PE only: bank | bank address |
  first | acc address | row | re | im (RTL change: the decoder assigns the ports);
* ``compact``: the DRAM stream a loader expands into the RTL words on chip (no change to the PE
  array): per entry re | im | index | cycle in its group; per group its makespan and the P
  accumulator slots (the port addresses, rows, columns and the first flags follow from the index,
  the bank map and the group order);
* ``compact_twins_once``: ``compact`` with each Hermitian twin of columns 0 and N/2 stored once
  (the loader conjugates it; the twin keeps its cycle field) and the real DC/Nyquist bins as
  their real part;
* ``compact_bitmap``: ``compact`` with a per-kernel F-bit presence map instead of the per-entry
  index (index information shared within a kernel).

Latency: each format's per-group bits are spread over the group's kernels
(``flexspec.kernel_format.spread_over_kernels``) and the flexspec design is simulated with the
kernels moved as that format, every layer pinned to the stream run's cout block (so every format
moves the same grouping), side by side in one run.  Values are unchanged in every format, so
accuracy is unchanged.

    python benchmarks/bench_kernel_format.py [--out benchmarks/results/kernel_format.json] [--bandwidth-scale 4]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from flexspec.accel.arch import resources
from flexspec.accel.design_dataflow import analyze, layer_models
from flexspec.accel.grouping import ScheduleCache, stored_stream_bits, stream_array
from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.search import fit_design
from flexspec.accel.sim import precision_of, simulate_network, simulate_plan
from flexspec.devices import load_device
from flexspec.fileio import write_file
from flexspec.kernel_format import spread_over_kernels
from flexspec.spectral.sparse import twin_once_counts
from flexspec.workload import get_network

OUT = Path(__file__).resolve().parent / "results" / "kernel_format.json"
FORMATS = ("entries", "stream", "used_ports", "valid_slots", "compact", "compact_twins_once", "compact_bitmap")


def _bits_for(n: int) -> int:
    return max(1, int(n - 1).bit_length())


def format_bits(mask: np.ndarray, sch, array, value_bits: int, index_bits: int) -> dict:
    """name -> int [Cout, Cin] bits of every format (see the module doc), per kernel."""
    cout, cin, f = mask.shape
    s = sch.schedule
    groups = sch.groups
    g_count, p = groups.shape
    cyc = np.asarray(s.cycles, dtype=np.int64)
    nnz_k = mask.sum(axis=2, dtype=np.int64).ravel()
    reads_g = np.bincount(s.group, minlength=g_count).astype(np.int64)
    assert int(reads_g.sum()) == int(nnz_k.sum())
    if s.broadcast:  # reads of one frequency in one cycle share a port
        ports_g = np.bincount(np.unique(np.stack([s.group, s.cycle, s.index]), axis=1)[0], minlength=g_count)
    else:
        ports_g = reads_g
    a = array
    addr, bank = _bits_for(a.bank_depth), _bits_for(a.num_banks)
    port_sel, acc, row = _bits_for(a.num_ports), _bits_for(a.acc_channels * (a.fft_size // 2 + 1)), _bits_for(a.fft_size)
    pe_field = 1 + port_sel + 1 + acc + row + 2 * a.data_bits
    word = a.num_ports * addr + p * pe_field
    per_group = {
        "stream": cyc * word,
        "used_ports": cyc * (a.num_ports + p * pe_field) + ports_g * addr,
        "valid_slots": cyc * p + reads_g * (bank + addr + 1 + acc + row + 2 * a.data_bits),
        # makespan and the P accumulator slots (or idle) of every group that holds a kernel
        "compact_groups": np.where((groups >= 0).any(axis=1),
                                   _bits_for(int(cyc.max(initial=1)) + 1) + p * _bits_for(sch.cout_block + 1), 0),
    }
    cycle_bits = _bits_for(int(cyc.max(initial=1)))
    entry = 2 * value_bits + index_bits
    stored, real = twin_once_counts(mask.reshape(-1, f), a.fft_size)
    dropped = nnz_k - stored
    per_kernel = {
        "entries": nnz_k * entry,
        "compact": nnz_k * (entry + cycle_bits),
        "compact_twins_once": stored * (entry + cycle_bits) - real * value_bits + dropped * cycle_bits,
        "compact_bitmap": nnz_k * (2 * value_bits + cycle_bits) + np.where(nnz_k > 0, f, 0),
    }
    out = {"entries": per_kernel["entries"]}
    for name in ("stream", "used_ports", "valid_slots"):
        out[name] = spread_over_kernels(groups, per_group[name], cout * cin)
    head = spread_over_kernels(groups, per_group["compact_groups"], cout * cin)
    for name in ("compact", "compact_twins_once", "compact_bitmap"):
        out[name] = per_kernel[name] + head
    return {k: v.reshape(cout, cin) for k, v in out.items()}


def simulate_pinned(net, masks, cfg, dev, prec, stored: dict, blocks: dict, cache, src):
    """The flexspec design with kernels moved as ``stored``, every layer at its ``blocks`` cout block."""
    res = resources(cfg, dev)
    nd = analyze(net, masks, cfg, dev, res, prec, stored, plans=("flexible",), cout_blocks=blocks)
    models = layer_models(net, masks, cfg, prec, stored)
    return simulate_plan(net, masks, nd.plans["flexible"], models, cfg, dev, res, "optimal", src, "flexspec",
                         histograms=False, schedules=cache, kernel_storage="given")


def study(net, masks, net_k, src, cfg, dev, cache) -> dict:
    """Bits and simulated cycles of every format on one design and device."""
    prec = precision_of(cfg, net_k)
    fmt = prec.kernel_format
    run = simulate_network(net, dev, cfg, net_k, histograms=False, schedules=cache)  # default: stored stream
    blocks = {lay.name: lay.cout_block for lay in run.layers if lay.kind == "spectral"}
    bits = {}
    for name, b in blocks.items():
        sch = cache.get(masks[name], cfg, b, "optimal")
        bits[name] = format_bits(masks[name], sch, stream_array(cfg, sch, masks[name].shape[1]), fmt.value_bits,
                                 fmt.index_bits_for(cfg.fft_size))
        # the independent count of the RTL word agrees with the simulator's formula
        assert np.array_equal(bits[name]["stream"], stored_stream_bits(masks[name], cfg, b, cache)), name
    sims = {f: simulate_pinned(net, masks, cfg, dev, prec, {n: bits[n][f] for n in bits}, blocks, cache, src)
            for f in FORMATS}
    rows = []
    for name in blocks:
        row = {"layer": name, "cout_block": blocks[name], "memory_bound_stream": bool(sims["stream"].layer(name).memory_bound)}
        for f in FORMATS:
            row[f"{f}_bytes"] = int(bits[name][f].sum()) / 8
            row[f"{f}_cycles"] = sims[f].layer(name).cycles
        rows.append(row)
    return {"config": cfg.to_dict(), "dram_bandwidth_bytes_per_s": dev.dram_bandwidth_bytes_per_s, "layers": rows,
            "total_bytes": {f: sum(r[f"{f}_bytes"] for r in rows) for f in FORMATS},
            "total_cycles": {f: sims[f].cycles for f in FORMATS},
            # the default simulation (stored stream, cout blocks free): what flexspec run reports
            "default_run_cycles": run.cycles, "default_run_stored_kernel_bytes": run.stored_kernel_bytes,
            "memory_bound_layers": [r["layer"] for r in rows if r["memory_bound_stream"]]}


def table(result: dict) -> str:
    lines = ["| layer | bound | " + " | ".join(f"{f} MB" for f in FORMATS) + " | " +
             " | ".join(f"{f} cycles" for f in FORMATS) + " |", "|---" * (2 + 2 * len(FORMATS)) + "|"]
    rows = result["layers"] + [{"layer": "**total**", "memory_bound_stream": None,
                                **{f"{f}_bytes": result["total_bytes"][f] for f in FORMATS},
                                **{f"{f}_cycles": result["total_cycles"][f] for f in FORMATS}}]
    for r in rows:
        bound = "" if r["memory_bound_stream"] is None else ("memory" if r["memory_bound_stream"] else "compute")
        lines.append(f"| {r['layer']} | {bound} | " + " | ".join(f"{r[f'{f}_bytes'] / 1e6:.2f}" for f in FORMATS)
                     + " | " + " | ".join(f"{int(r[f'{f}_cycles'])}" for f in FORMATS) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--bandwidth-scale", type=int, default=4, help="the what-if device has 1/this of the DRAM bandwidth")
    args = ap.parse_args()
    net = get_network("vgg16")
    masks, net_k, src = resolve_kernels(net, None)
    dev = load_device("u200")
    cfg, _ = fit_design(dev, 8, network=net, masks=masks)
    cache = ScheduleCache()
    load = {"before": os.getloadavg()[0]}
    t0 = time.perf_counter()
    narrow = replace(dev, dram_bandwidth_bytes_per_s=dev.dram_bandwidth_bytes_per_s / args.bandwidth_scale)
    designs = {"fitted": study(net, masks, net_k, src, cfg, dev, cache),
               f"bandwidth_div{args.bandwidth_scale}": study(net, masks, net_k, src, cfg, narrow, cache)}
    load["after"] = os.getloadavg()[0]
    report = {"network": "vgg16", "device": "u200", "kernels": src.to_dict(), "formats": list(FORMATS),
              "designs": designs, "seconds": time.perf_counter() - t0, "load_average": load}
    write_file(args.out, json.dumps(report, indent=1) + "\n")
    for name, d in designs.items():
        c = d["config"]
        print(f"\n### {name}: A = {c['arrays']}, P = {c['pes']}, B = {c['banks']} x R = {c['ports']}, DRAM "
              f"{d['dram_bandwidth_bytes_per_s'] / 1e9:.1f} GB/s peak; "
              f"memory-bound (stream): {', '.join(d['memory_bound_layers']) or 'none'}\n")
        print(table(d))
        tb, tc = d["total_bytes"], d["total_cycles"]
        print(f"\ndefault simulation (stream, blocks free): {d['default_run_cycles']} cycles")
        print("\n" + ", ".join(f"{f}: {tb[f] / tb['stream']:.3f} x stream bytes, {tc[f] / tc['stream']:.4f} x cycles"
                               for f in FORMATS))
    print(f"\n{report['seconds']:.0f} s, load average {load}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
