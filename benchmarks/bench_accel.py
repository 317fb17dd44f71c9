"""Accelerator benchmark: VGG16 224x224 (N = 8, density 0.25) on the six built-in devices, and the
fixed-point functional check of the shipped fmnist_vgg (1000-image subset; full 10k test set when
the Debian package dataset-fashion-mnist is installed).  Simulator figures, not hardware.

Kernels: the synthesized VGG16 kernels (flexspec.spectral.synth.vgg16_kernels, labelled) when the
shipped trained model they are derived from is present, else seeded random masks (labelled).
Writes benchmarks/results/bench_accel.json.  Usage: python benchmarks/bench_accel.py [devices...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.search import search_design
from flexspec.accel.sim import compare
from flexspec.errors import FlexSpecError
from flexspec.workload.zoo import get_network

DEVICES = ("u200", "u250", "vcu118", "zcu102", "vc709", "s10gx2800")
OUT = Path(__file__).resolve().parent / "results" / "bench_accel.json"


def vgg16_rows(devices):
    net = get_network("vgg16")
    try:
        masks, nk, src = resolve_kernels(net, None)
    except FlexSpecError as exc:
        print(f"synthesized VGG16 kernels unavailable ({exc}); using seeded random masks")
        masks, nk, src = resolve_kernels(net, "random")
    kernels = nk if nk is not None else masks
    rows = []
    for dev in devices:
        t0 = time.perf_counter()
        best = search_design(net, dev, 8, kernels)
        t_search = time.perf_counter() - t0
        t0 = time.perf_counter()
        cmp = compare(net, dev, best.config, kernels)
        t_cmp = time.perf_counter() - t0
        f = cmp.flexspec
        object.__setattr__(f, "kernels", src)
        row = {
            "device": dev, "kernels": src.to_dict(), "config": f.config.to_dict(), "dsp": f.resources.dsp_total,
            "latency_ms": f.seconds * 1e3, "roofline_ms": f.roofline_cycles / f.clock_hz * 1e3,
            "achieved_over_roofline": f.cycles / f.roofline_cycles, "traffic_MB": f.traffic_bytes / 1e6,
            "baselines": {k: {"latency_ms": b.seconds * 1e3, "traffic_MB": b.traffic_bytes / 1e6,
                              "speedup": cmp.speedup(k), "traffic_reduction": cmp.traffic_reduction(k)}
                          for k, b in cmp.baselines.items()},
            "dsp_efficiency": f.dsp_efficiency,
            "compute_bound_layers": {lay.name: round(lay.dsp_efficiency, 3) for lay in f.layers
                                     if lay.bound == "compute"},
            "memory_bound_layers": [lay.name for lay in f.layers if lay.memory_bound],
            "max_estimate_error": max(abs(lay.estimate_error) for lay in f.layers),
            "simulate_s": f.simulate_seconds, "search_s": t_search, "compare_s": t_cmp,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def functional_rows():
    from flexspec import datasets
    from flexspec.accel.functional import functional_fmnist
    from flexspec.spectral import real_model as rm

    out = {}
    try:
        k = rm.load_pruned("magnitude", 0.25)
    except FlexSpecError as exc:
        return {"skipped": f"shipped fmnist_vgg model missing: {exc}"}
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


def main(devices=DEVICES):
    res = {"machine": "2 CPU cores shared with other jobs", "vgg16": vgg16_rows(devices),
           "functional": functional_rows()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or DEVICES)
