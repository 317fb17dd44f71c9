"""Dataflow benchmark: VGG16, N = 8, 25% density (seeded random masks), 16-bit activations.

Figures: total off-chip traffic of the flexible dataflow, kernel reuse everywhere and
activation reuse everywhere (each with its best blocking), the compulsory bound, at the
reference device's capacity; a sweep of on-chip capacities with the range over which the
flexible dataflow saves at least 42% against the worse fixed dataflow; and the analysis time.
Both with and without cross-layer residency.  Prints a report and writes JSON (--out).

    python benchmarks/bench_dataflow.py [--device u200] [--out benchmarks/results/bench_dataflow.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from flexspec.accel.search import fit_design
from flexspec.devices import load_device
from flexspec.dataflow import analyze_network, budget_from_device, synthetic_nnz_by_layer
from flexspec.workload import get_network


def summary(r) -> dict:
    kr, ar = r.total_bytes("kernel-reuse"), r.total_bytes("activation-reuse")
    if not (np.isfinite(kr) and np.isfinite(ar)):  # a fixed baseline does not fit: no ratio to report
        return {"onchip_bytes": r.budget.onchip_bytes, "flexible_bytes": r.total_bytes(),
                "bound_bytes": r.bound.total_bytes, "flexible_over_bound": r.total_bytes() / r.bound.total_bytes,
                "infeasible": sorted(r.infeasible)}
    return {
        "onchip_bytes": r.budget.onchip_bytes,
        "flexible_bytes": r.total_bytes(), "kernel_reuse_bytes": kr, "activation_reuse_bytes": ar,
        "bound_bytes": r.bound.total_bytes, "flexible_over_bound": r.total_bytes() / r.bound.total_bytes,
        "reduction_vs_kernel_reuse": r.reduction("kernel-reuse"),
        "reduction_vs_activation_reuse": r.reduction("activation-reuse"),
        "reduction_vs_worse_fixed": 1 - r.total_bytes() / max(kr, ar),
        "reduction_vs_better_fixed": 1 - r.total_bytes() / min(kr, ar),
        "memory_bound_layers": r.memory_bound_layers,
        "time_seconds": r.totals()["time_seconds"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="u200")
    ap.add_argument("--density", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    net = get_network("vgg16")
    device = load_device(args.device)
    nnz = synthetic_nnz_by_layer(net, 8, args.density, args.seed)
    config, res = fit_design(device, 8)  # the design flexspec run builds: one compute rate
    ref = budget_from_device(device, pe_count=config.pe_count, fft_engines=config.fft_engines,
                             onchip_bytes=res.dataflow_bits // 8)
    report = {"network": "vgg16", "fft_size": 8, "density": args.density, "seed": args.seed,
              "device": device.name, "reference_budget": ref.to_dict()}

    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        analyze_network(net, nnz, 8, ref)
        times.append(time.perf_counter() - t0)
    report["analysis_seconds_median_of_3"] = statistics.median(times)
    print(f"analysis of all 13 VGG16 layers (3 plans, residency DP): median {statistics.median(times):.3f} s "
          f"(runs {', '.join(f'{t:.3f}' for t in times)})")

    capacities = np.unique(np.round(np.geomspace(4e3, 64e6, 57)).astype(int))
    for residency in (True, False):
        key = "with_residency" if residency else "without_residency"
        at_ref = summary(analyze_network(net, nnz, 8, ref, residency=residency))
        sweep = [summary(analyze_network(net, nnz, 8, ref.__class__(int(c), ref.bandwidth_bytes_per_s,
                                                                      ref.macs_per_second), residency=residency))
                 for c in capacities]
        hit = [s["onchip_bytes"] for s in sweep if s.get("reduction_vs_worse_fixed", 0) >= 0.42]
        report[key] = {"reference": at_ref, "sweep": sweep,
                       "capacity_range_reduction_ge_42pct_vs_worse_fixed": [min(hit), max(hit)] if hit else None}
        print(f"\n== {key.replace('_', ' ')} ==")
        print(f"at {ref.onchip_bytes:,} B on chip ({device.name}): flexible {at_ref['flexible_bytes'] / 1e6:.2f} MB, "
              f"kernel-reuse {at_ref['kernel_reuse_bytes'] / 1e6:.2f} MB, activation-reuse "
              f"{at_ref['activation_reuse_bytes'] / 1e6:.2f} MB, bound {at_ref['bound_bytes'] / 1e6:.2f} MB; "
              f"flexible/bound {at_ref['flexible_over_bound']:.4f}; reduction vs KR "
              f"{100 * at_ref['reduction_vs_kernel_reuse']:.1f}%, vs AR {100 * at_ref['reduction_vs_activation_reuse']:.1f}%")
        print(f"{'on-chip B':>12} {'flex MB':>9} {'KR MB':>9} {'AR MB':>9} {'vs KR':>7} {'vs AR':>7} {'flex/bound':>10}")
        for s in sweep:
            if "infeasible" in s:
                print(f"{s['onchip_bytes']:>12,} {s['flexible_bytes'] / 1e6:9.2f}  ({', '.join(s['infeasible'])} "
                      f"does not fit)")
                continue
            print(f"{s['onchip_bytes']:>12,} {s['flexible_bytes'] / 1e6:9.2f} {s['kernel_reuse_bytes'] / 1e6:9.2f} "
                  f"{s['activation_reuse_bytes'] / 1e6:9.2f} {100 * s['reduction_vs_kernel_reuse']:6.1f}% "
                  f"{100 * s['reduction_vs_activation_reuse']:6.1f}% {s['flexible_over_bound']:10.3f}")
        rng = report[key]["capacity_range_reduction_ge_42pct_vs_worse_fixed"]
        print("capacities with >= 42% less traffic than the worse fixed dataflow: "
              + (f"{rng[0]:,} .. {rng[1]:,} B (on the sampled grid)" if rng else "none"))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f, indent=1)
        os.replace(tmp, args.out)
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
