"""What the accelerator makes of the real pruned fmnist_vgg masks (read-only use of the simulator).

For each shipped pruned model (method x density), the design is the one the design search picks
for those kernels on a design of this network's size (``flexspec.accel.search.search_design``,
U200 profile by default): one array of P = 16 PEs, 16 banks (the bank count the bank-friendly
kernels carry their maps for) x R ports (``--ports``, searched in 1, 2 by default), the
accumulators' read-out rows K in {1, 2, 4, 8} and the FFT / IFFT engines searched.  Per spectral
layer it records the simulator's cycles and DSP efficiency, the PE utilization of the layer's
kernel-read schedule (``flexspec.schedule.schedule_layer`` with the design's P, banks, ports,
broadcast and the bank map the simulator uses: the kernels' own for that bank count, else
``auto``; non-zeros / (P x cycles)), and **what binds the layer** (:func:`binding_terms`): the
total cycles each resource of the engine needs for the layer, from the simulator's own plan and
schedules --

* ``pe_array``: the PE array's schedule, program words x tiles of every kernel-block run
  (a run accepts a tile every L words at best: ``engine.issue_and_drain``, A_k >= A_{k-1} + L);
* ``readout``: the accumulators' read-out, (Q + 1) x tiles of every run (Q requests a tile,
  one a cycle, and a drain starts the cycle after the previous one's last request:
  F_k >= F_{k-1} + 1 + Q);
* ``tile_load``: the tile buffer's load, D rows x tiles of every run (S_k >= E_{k-1} + 1);
* ``fft`` / ``ifft`` / ``memory``: the forward and inverse FFT engines and the DRAM traffic, as
  the simulator totals them (``LayerResult.bound``), less the start-up and drain parts;
* ``fill``: the exposed start-up and drain (``LayerResult.fill_cycles``).

A layer is compute-bound when ``pe_array`` is the largest term; the engine's real per-tile
interval (``engine_stall``: what the simulator's compute charges beyond the PE schedule, e.g.
the accumulators' double buffer waiting on a read-out) is recorded next to it.  The terms are
per layer on the one array (the design fixes A = 1: every (cout block, cin block) pair of the
blocking sees every tile once, so each term is tiles x its per-tile cost, summed over pairs).

Accuracies come from benchmarks/results/fmnist_pruning_*.json (the 10k test set).  Writes
benchmarks/results/prune_hw_<--out>.json.

    python benchmarks/bench_prune_hw.py [--device u200] [--ports 1 2] [--out search]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
from pathlib import Path

import numpy as np

from flexspec.accel.arch import resources
from flexspec.accel.sim import ScheduleCache, analyze, design_plan, precision_of
from flexspec.accel.engine import pass_shape
from flexspec.accel.layer_cycles import layer_steps, pipeline_steps
from flexspec.accel.search import search_design
from flexspec.devices import load_device
from flexspec.errors import UsageError
from flexspec.fileio import write_file
from flexspec.schedule import schedule_layer
from flexspec.spectral import real_model as rm
from flexspec.workload.zoo import get_network

ROOT = Path(__file__).resolve().parent
#: The engine resources whose totals :func:`binding_terms` compares (the PE array first).
TERMS = ("pe_array", "readout", "tile_load", "fft", "ifft", "memory", "fill")


def accuracies() -> dict:
    out = {}
    for path in sorted(glob.glob(str(ROOT / "results" / "fmnist_pruning_*.json"))):
        data = json.loads(Path(path).read_text())
        for run in data.get("runs", []):
            out[(run["method"], run["density"])] = run["test_accuracy_10k"]
        if "dense" in data:
            out[("dense", 1.0)] = data["dense"]["test_accuracy_10k"]
    return out


def binding_terms(network, kernels, result) -> dict:
    """layer -> {term: cycles} (:data:`TERMS`), plus 'engine_cycles' (the simulator's PE-array
    compute: the engine's per-tile interval x tiles), 'bound' (the largest term) and
    'compute_bound', for every spectral layer of ``result`` (a ``NetworkResult`` of
    ``simulate_network`` / ``search_design`` on ``kernels``): the simulator's plan and schedules
    rebuilt for that design, checked against the result's blocking."""
    config = result.config
    if config.arrays != 1:
        raise UsageError(f"binding_terms times one array (every pair sees every tile once); got A = {config.arrays}")
    device = load_device(result.device)
    masks = {name: lay.mask() for name, lay in kernels.layers.items()}
    schedules = ScheduleCache()
    schedules.use_bank_maps(kernels)
    res = resources(config, device)
    prec = precision_of(config, kernels)
    nd = analyze(network, masks, config, device, res, prec, plans=("flexible",))
    plan_layers, models, _ = design_plan(network, masks, config, device, res, prec, nd, "flexible", "optimal",
                                         schedules, result.kernel_storage)
    bpc = device.bytes_per_cycle
    out = {}
    for ld in plan_layers:
        if ld.kind != "spectral":
            continue
        lay = result.layer(ld.layer_name)
        b = ld.traffic.blocking
        if (b.cout_block, b.cin_block, b.tile_block, b.order) != (lay.cout_block, lay.cin_block, lay.tile_block,
                                                                   lay.order):
            raise AssertionError(f"{ld.layer_name}: rebuilt blocking differs from the simulated one")
        model = models[ld.layer_name]
        g = model.geom
        sch = schedules.get(masks[ld.layer_name], config, b.cout_block, "optimal")
        st = layer_steps(ld, model, sch, config, lambda a_g, mask=masks[ld.layer_name], bo=b.cout_block:
                         schedules.sliced(mask, config, bo, a_g, "optimal"))
        _, _, _, pro, epi, _ = pipeline_steps(st, bpc)
        bo, bi = min(b.cout_block, g.cout), min(b.cin_block, g.cin)
        per_tile = np.zeros(3)  # program words, read-out cycles, tile-buffer rows, summed over the pairs
        for ob in range(-(-g.cout // bo)):
            for lo in range(0, g.cin, bi):
                hi = min(g.cin, lo + bi)
                shape = pass_shape(sch.cycles[ob, lo:hi].ravel(), hi - lo, min(bo, g.cout - ob * bo),
                                   sch.schedule.bank_of, config.banks, config.pes, config.fft_size,
                                   config.readout_rows)
                per_tile += (shape.program_cycles, shape.outputs_per_tile + 1, shape.rows_per_tile)
        terms = dict(zip(TERMS[:3], (g.tiles * per_tile).tolist(), strict=True))
        terms.update(fft=float(st.fft.sum() - pro[1]), ifft=float(st.ifft.sum() - epi[1]),
                     memory=float((st.load_bytes.sum() + st.write_bytes.sum() - pro[0] - epi[0]) / bpc),
                     fill=float(lay.fill_cycles))
        bound = max(TERMS, key=lambda k: terms[k])
        out[ld.layer_name] = {**{k: round(v, 1) for k, v in terms.items()},
                              "engine_cycles": round(float(st.compute.sum()), 1),
                              "engine_stall": round(float(st.compute.sum()) - terms["pe_array"], 1),
                              "bound": bound, "compute_bound": bound == "pe_array"}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="u200")
    ap.add_argument("--methods", nargs="+", default=["magnitude", "admm", "admm_hw"])
    ap.add_argument("--ports", nargs="+", type=int, default=[1, 2], help="bank ports R searched (16 banks)")
    ap.add_argument("--out", default="search", help="results/prune_hw_<OUT>.json")
    args = ap.parse_args(argv)
    net = get_network("fmnist_vgg")
    acc = accuracies()
    rows = []
    for method in args.methods:
        for density in rm.SHIPPED_DENSITIES:
            if not rm.pruned_file(method, density).exists():
                continue
            kernels = rm.load_pruned(method, density)
            # the design search on a design of this network's size: one array of 16 PEs, 16 banks
            r = search_design(net, args.device, 8, kernels, pes=(16,), arrays=1,
                              bank_ports=tuple((16, p) for p in args.ports), readout_rows=(1, 2, 4, 8))
            cfg = r.config
            bind = binding_terms(net, kernels, r)
            layers = {}
            for lay in r.layers:
                mask = kernels.layers[lay.name].mask()
                bmap = kernels.bank_map(lay.name, cfg.banks)  # the simulator's map: the kernels' own, else auto
                sched = schedule_layer(mask.reshape(mask.shape[0], mask.shape[1], -1), cfg.pes, cfg.banks, cfg.ports,
                                       cfg.broadcast, bmap)
                layers[lay.name] = {"dsp_efficiency": lay.dsp_efficiency, "pe_utilization": sched.pe_utilization,
                                    "cycles": lay.cycles, "simulator_bound": lay.bound,
                                    "blocking": [lay.order, lay.cout_block, lay.cin_block, lay.tile_block],
                                    "bank_map": "auto" if isinstance(bmap, str) else "the kernels' own",
                                    "terms": bind[lay.name]}
            comp = {k: v["dsp_efficiency"] for k, v in layers.items() if v["terms"]["compute_bound"]}
            row = {"method": method, "density": density, "test_accuracy_10k": acc.get((method, density)),
                   "cycles": r.cycles, "dsp_efficiency": r.dsp_efficiency,
                   "compute_bound_layers": sorted(comp),
                   "min_dsp_efficiency_compute_bound": min(comp.values()) if comp else None,
                   "min_pe_utilization": min(v["pe_utilization"] for v in layers.values()),
                   "config": {"pes": cfg.pes, "arrays": cfg.arrays, "banks": cfg.banks, "ports": cfg.ports,
                              "fft_engines": cfg.fft_engines, "ifft_engines": cfg.ifft_engines,
                              "readout_rows": cfg.readout_rows, "broadcast": cfg.broadcast},
                   "layers": layers}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "layers"}), flush=True)
    res = {"device": args.device, "design": "search: A = 1, P = 16, B = 16, R in " + str(args.ports)
           + ", K in (1, 2, 4, 8), engines searched", "load_average": os.getloadavg(),
           "dense_accuracy_10k": acc.get(("dense", 1.0)), "rows": rows}
    write_file(ROOT / "results" / f"prune_hw_{args.out}.json", json.dumps(res, indent=1))
    print("| method | density | 10k accuracy | design (R, K, engines) | cycles | DSP eff. per layer (binding term) "
          "| min DSP eff. (compute-bound) | PE util. min / max |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        a = "-" if r["test_accuracy_10k"] is None else f"{100 * r['test_accuracy_10k']:.2f}%"
        m = "-" if r["min_dsp_efficiency_compute_bound"] is None else f"{r['min_dsp_efficiency_compute_bound']:.3f}"
        c = r["config"]
        per = " / ".join(f"{v['dsp_efficiency']:.3f} ({v['terms']['bound']})" for v in r["layers"].values())
        pu = [v["pe_utilization"] for v in r["layers"].values()]
        print(f"| {r['method']} | {r['density']} | {a} | {c['ports']}, {c['readout_rows']}, {c['fft_engines']} | "
              f"{r['cycles']:,} | {per} | {m} | {100 * min(pu):.1f}% / {100 * max(pu):.1f}% |")


if __name__ == "__main__":
    main()
