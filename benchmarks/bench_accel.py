"""Accelerator benchmark: VGG16 224x224 (N = 8, density 0.25) on the six built-in devices, and the
fixed-point functional check of the shipped fmnist_vgg (1000-image subset; full 10k test set when
the Debian package dataset-fashion-mnist is installed).  Simulator figures, not hardware.

Kernels: the accelerator's defaults (``flexspec.accel.kernels.resolve_kernels``): the synthesized
VGG16 kernels (``flexspec.spectral.synth.vgg16_kernels``, labelled synthesized) and the shipped
ADMM-pruned fmnist_vgg (real weights).  Seeded random masks only with ``--random-masks``.

Per device: design search (``search_design``, full default grid), then the chosen design against
both fixed-dataflow baselines (``compare``), sharing one ScheduleCache; then the chosen design
simulated again from scratch (fresh schedules) to time "simulate all of VGG16, schedules included".

Writes benchmarks/results/bench_accel.json.
``--prune-scope=kernel``: the synthesized kernels pruned per kernel (every kernel keeps
round(0.25*F) entries: equal PE loads), written under "vgg16_kernel_scope" (default: scope
'layer', under "vgg16").

Usage: python benchmarks/bench_accel.py [--random-masks] [--prune-scope=kernel] [--no-functional] [--no-vgg16]
       [devices...]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.search import search_design
from flexspec.accel.sim import ScheduleCache, compare, simulate_network
from flexspec.workload.zoo import get_network

DEVICES = ("u200", "u250", "vcu118", "zcu102", "vc709", "s10gx2800")
OUT = Path(__file__).resolve().parent / "results" / "bench_accel.json"


def _result_row(r) -> dict:
    return {"latency_ms": r.seconds * 1e3, "cycles": r.cycles, "traffic_MB": r.traffic_bytes / 1e6,
            "roofline_ms": r.roofline_cycles / r.clock_hz * 1e3, "achieved_over_roofline": r.cycles / r.roofline_cycles,
            "dsp_efficiency": r.dsp_efficiency}


def vgg16_rows(devices, random_masks: bool = False, prune_scope: str = "layer"):
    net = get_network("vgg16")
    t0 = time.perf_counter()
    masks, nk, src = resolve_kernels(net, "random" if random_masks else None, prune_scope=prune_scope)
    t_kernels = time.perf_counter() - t0
    print(f"kernels: {src.kind} ({src.provenance[:100]}), {t_kernels:.1f} s", flush=True)
    kernels = nk if nk is not None else masks
    cache = ScheduleCache()
    rows = []
    for dev in devices:
        t0 = time.perf_counter()
        best = search_design(net, dev, 8, kernels, schedules=cache)
        t_search = time.perf_counter() - t0
        t0 = time.perf_counter()
        cmp = compare(net, dev, best.config, masks, schedules=cache)
        t_cmp = time.perf_counter() - t0
        t0 = time.perf_counter()
        fresh = simulate_network(net, dev, best.config, masks)  # schedules included
        t_fresh = time.perf_counter() - t0
        f = cmp.flexspec
        assert fresh.cycles == f.cycles
        res = f.resources
        comp = {lay.name: round(lay.dsp_efficiency, 4) for lay in f.layers if lay.bound == "compute"}
        row = {
            "device": dev, "kernels": src.to_dict(), "config": f.config.to_dict(), "resources": res.to_dict(),
            "dsp_used": res.dsp_total, "dsp_device": res.device_dsp,
            "bram_Mb_used": res.bram_bits_used / 2**20, "bram_Mb_device": res.device_bram_bits / 2**20,
            "uram_Mb_used": res.uram_bits_used / 2**20, "uram_Mb_device": res.device_uram_bits / 2**20,
            **_result_row(f),
            "baselines": {k: {**_result_row(b), "speedup": cmp.speedup(k), "traffic_reduction": cmp.traffic_reduction(k)}
                          for k, b in cmp.baselines.items()},
            "compute_bound_layers": comp,
            "min_dsp_efficiency_compute_bound": min(comp.values()) if comp else None,
            "memory_bound_layers": [lay.name for lay in f.layers if lay.memory_bound],
            "bound_by_layer": {lay.name: lay.bound for lay in f.layers},
            "dataflow_by_layer": {lay.name: f"{lay.dataflow}/{lay.order}" for lay in f.layers},
            "max_abs_estimate_error": max(abs(lay.estimate_error) for lay in f.layers),
            "simulate_s_fresh": t_fresh, "search_s": t_search, "compare_s": t_cmp, "kernels_s": t_kernels,
        }
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("kernels", "resources", "config")}), flush=True)
    return rows


def functional_rows():
    from flexspec import datasets
    from flexspec.accel.functional import functional_fmnist

    _, k, src = resolve_kernels(get_network("fmnist_vgg"), None)
    out = {"kernels": src.to_dict()}
    x, y = datasets.fashion_mnist_subset()
    out["subset1000"] = functional_fmnist(k, x, y).to_dict()
    print(json.dumps(out["subset1000"]), flush=True)
    if datasets.fashion_mnist_available():
        x, y = datasets.fashion_mnist("test")
        out["test10k"] = functional_fmnist(k, x, y).to_dict()
        print(json.dumps(out["test10k"]), flush=True)
    else:
        out["test10k"] = "skipped: Debian package dataset-fashion-mnist not installed"
    return out


def main(argv) -> None:
    flags = {a for a in argv if a.startswith("--")}
    devices = tuple(a for a in argv if not a.startswith("--")) or DEVICES
    res = {"machine": f"{os.cpu_count()} CPU cores shared with other jobs (times pessimistic)"}
    scope = "kernel" if "--prune-scope=kernel" in flags else "layer"
    if "--no-vgg16" not in flags:
        res["vgg16" if scope == "layer" else "vgg16_kernel_scope"] = vgg16_rows(devices, "--random-masks" in flags,
                                                                              scope)
    if "--no-functional" not in flags:
        res["functional"] = functional_rows()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    if isinstance(old, dict) and old.get("format") == 2:  # keep the part not re-run
        res = {**old, **res}
    res["format"] = 2
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, OUT)


if __name__ == "__main__":
    main(sys.argv[1:])
