"""What the accelerator makes of the real pruned fmnist_vgg masks (read-only use of the simulator).

For each shipped pruned model (method x density): search the fastest accelerator design for
fmnist_vgg with those kernels on the device (default U200; ``flexspec.accel.search.search_design``)
and record, per spectral layer, the DSP efficiency
and whether it is compute-bound, plus the PE utilization of its kernel-read schedule (the
scheduler's ``schedule_layer`` with the chosen design's P, banks, ports, broadcast and the bank
map the simulator uses: the one bank-friendly kernels carry for that bank count, else ``auto``;
non-zeros / (P x cycles)).  Accuracies come from
benchmarks/results/fmnist_pruning_*.json (the 10k test set).  Writes benchmarks/results/prune_hw_<design>.json.

    python benchmarks/bench_prune_hw.py [--device u200]
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.search import search_design
from flexspec.accel.sim import simulate_network
from flexspec.schedule import schedule_layer
from flexspec.spectral import real_model as rm
from flexspec.workload.zoo import get_network

ROOT = Path(__file__).resolve().parent


def accuracies() -> dict:
    out = {}
    for path in sorted(glob.glob(str(ROOT / "results" / "fmnist_pruning_*.json"))):
        data = json.loads(Path(path).read_text())
        for run in data.get("runs", []):
            out[(run["method"], run["density"])] = run["test_accuracy_10k"]
        if "dense" in data:
            out[("dense", 1.0)] = data["dense"]["test_accuracy_10k"]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="u200")
    ap.add_argument("--methods", nargs="+", default=["magnitude", "admm", "admm_hw"])
    ap.add_argument("--design", default="sized", choices=("sized", "search"),
                    help="sized: one array of P=16 PEs, 16 banks x 1 port (a design the size of this small "
                         "network, as in bench_schedule); search: the fastest design on --device")
    args = ap.parse_args(argv)
    net = get_network("fmnist_vgg")
    acc = accuracies()
    rows = []
    for method in args.methods:
        for density in rm.SHIPPED_DENSITIES:
            path = rm.pruned_file(method, density)
            if not path.exists():
                continue
            kernels = rm.load_pruned(method, density)
            if args.design == "search":
                r = search_design(net, args.device, 8, kernels)  # the fastest design for these kernels
            else:
                r = simulate_network(net, args.device, AcceleratorConfig(arrays=1, pes=16, banks=16, ports=1), kernels)
            cfg = r.config
            layers = {}
            for lay in r.layers:
                mask = kernels.layers[lay.name].mask()
                bmap = kernels.bank_map(lay.name, cfg.banks)  # the simulator's map: the kernels' own, else auto
                sched = schedule_layer(mask.reshape(mask.shape[0], mask.shape[1], -1), cfg.pes, cfg.banks, cfg.ports,
                                       cfg.broadcast, bmap)
                layers[lay.name] = {"bound": lay.bound, "dsp_efficiency": lay.dsp_efficiency,
                                    "pe_utilization": sched.pe_utilization, "cycles": lay.cycles,
                                    "bank_map": "auto" if isinstance(bmap, str) else "the kernels' own"}
            comp = [v["dsp_efficiency"] for v in layers.values() if v["bound"] == "compute"]
            row = {"method": method, "density": density, "test_accuracy_10k": acc.get((method, density)),
                   "cycles": r.cycles, "dsp_efficiency": r.dsp_efficiency,
                   "min_dsp_efficiency_compute_bound": min(comp) if comp else None,
                   "min_pe_utilization": min(v["pe_utilization"] for v in layers.values()),
                   "config": {"pes": cfg.pes, "arrays": cfg.arrays, "banks": cfg.banks, "ports": cfg.ports,
                              "broadcast": cfg.broadcast},
                   "layers": layers}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "layers"}), flush=True)
    res = {"device": args.device, "design": args.design, "dense_accuracy_10k": acc.get(("dense", 1.0)), "rows": rows}
    (ROOT / "results" / f"prune_hw_{args.design}.json").write_text(json.dumps(res, indent=1))
    print("| method | density | 10k accuracy | cycles | min DSP eff. (compute-bound) | min PE util. |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        a = "-" if r["test_accuracy_10k"] is None else f"{100 * r['test_accuracy_10k']:.2f}%"
        m = "-" if r["min_dsp_efficiency_compute_bound"] is None else f"{r['min_dsp_efficiency_compute_bound']:.3f}"
        print(f"| {r['method']} | {r['density']} | {a} | {r['cycles']} | {m} | {100 * r['min_pe_utilization']:.1f}% |")


if __name__ == "__main__":
    main()
