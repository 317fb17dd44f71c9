"""Accelerator benchmark: VGG16 224x224, N=8, 25% density (seeded random masks, exactly 10
non-zeros per kernel) on several device profiles.  Simulator figures, not hardware."""

from __future__ import annotations

import json
import sys
import time

from flexspec.accel.search import search_design
from flexspec.accel.sim import random_masks, simulate_network
from flexspec.workload.zoo import get_network


def main(devices=("u200", "zcu102", "vc709")):
    net = get_network("vgg16")
    t0 = time.perf_counter()
    masks = random_masks(net, 8, 0.25, 0)
    t_masks = time.perf_counter() - t0
    rows = []
    for dev in devices:
        t0 = time.perf_counter()
        best = search_design(net, dev, 8, masks=masks)
        t_search = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = simulate_network(net, dev, best.config, masks)  # one simulation, schedules included
        t_sim = time.perf_counter() - t0
        base = {df: simulate_network(net, dev, best.config, masks, design="baseline", fixed_dataflow=df)
                for df in ("kernel_reuse", "activation_reuse")}
        b = min(base.values(), key=lambda r: r.traffic_bytes)
        compute_bound = [lay for lay in again.layers if lay.bound == "compute"]
        row = {
            "device": dev, "A": best.config.arrays, "P": best.config.pes, "B": best.config.banks,
            "engines": best.config.fft_engines, "dsp": best.resources.dsp_total,
            "latency_ms": best.seconds * 1e3, "roofline_ms": best.roofline_cycles / again.cycles * best.seconds * 1e3,
            "achieved_over_roofline": best.cycles / best.roofline_cycles,
            "traffic_MB": best.traffic_bytes / 1e6,
            "baseline_latency_ms": b.seconds * 1e3, "baseline_traffic_MB": b.traffic_bytes / 1e6,
            "baseline_kr_traffic_MB": base["kernel_reuse"].traffic_bytes / 1e6,
            "baseline_ar_traffic_MB": base["activation_reuse"].traffic_bytes / 1e6,
            "speedup": b.cycles / best.cycles, "traffic_reduction": 1 - best.traffic_bytes / b.traffic_bytes,
            "dsp_eff": best.dsp_efficiency,
            "compute_bound_layers": [(lay.name, round(lay.dsp_efficiency, 3), round(lay.dsp_efficiency_steady, 3))
                                     for lay in compute_bound],
            "bounds": {lay.name: lay.bound for lay in best.layers},
            "max_estimate_error": max(abs(lay.estimate_cycles / lay.cycles - 1) for lay in best.layers),
            "search_s": t_search, "simulate_s": t_sim + t_masks,
        }
        rows.append(row)
        print(json.dumps(row))
    with open("benchmarks/bench_accel.json", "w") as fh:
        json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or ("u200", "zcu102", "vc709"))
