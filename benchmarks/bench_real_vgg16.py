"""Real masks of a deep network next to the synthesized VGG16 masks, at the same density (N = 8).

The real masks are those of the shipped ``fmnist_vgg16`` (VGG16's 13 convolutions at 1/8 of its
widths, trained on Fashion-MNIST at 32x32, pruned by ADMM / magnitude / hardware-aware ADMM:
``benchmarks/fmnist_dense.py`` + ``benchmarks/train_fmnist.py --model fmnist_vgg16``); the
synthesized ones are ``flexspec.spectral.synth.vgg16_kernels`` (VGG16 at 224x224, seed 0, magnitude
pruning per layer, what ``flexspec run vgg16`` uses).  Side by side in one run, per kernel source:

* keep probability per frequency: the share of kept entries at radial frequency <= N/4 (uniform
  keeping gives the share of positions there), the fraction of kernels keeping DC, and the spread
  of non-zeros per kernel (coefficient of variation; 0 = every kernel equal, what the PEs want);
* schedule quality (``flexspec.schedule.schedule_layer``, optimal method, ``auto`` bank map,
  P = 16 PEs, B = 16 banks x 1 port, as in bench_schedule.py): PE utilization = non-zeros /
  (P x cycles) per layer and over the network, cycles against the lower bound;
* the accelerator on --device (default u200), ``flexspec.run`` (the simulator of ``flexspec run``)
  on two designs: ``default``, the design ``flexspec run`` fits to the board (the same for both
  networks: sized for VGG16, far too big for a 32x32 network), and ``sized``, one array of P = 16
  PEs with 16 banks (the design bench_prune_hw.py uses for the small real models): end-to-end
  latency, DSP efficiency, achieved/roofline cycles of the spectral layers, per layer too.

Writes benchmarks/results/bench_real_vgg16.json and keep_probability_fmnist_vgg16_<method>_dNNNN.png.

    python benchmarks/bench_real_vgg16.py [--density 0.25] [--device u200]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from flexspec import fileio
from flexspec.accel.kernels import cached_vgg16_kernels
from flexspec.pipeline import run
from flexspec.schedule import schedule_layer
from flexspec.spectral import real_model as rm
from flexspec.spectral.synth import keep_probability, low_frequency_share, plot_keep_probability

OUT = Path(__file__).resolve().parent / "results"
P, BANKS, PORTS = 16, 16, 1


def mask_figures(net) -> dict:
    """Per layer and in total: keep-probability and schedule figures of a SparseNetworkKernels."""
    layers, nnz_all, cycles_all, lb_all = {}, 0, 0, 0
    for name, ssk in net.layers.items():
        share, area = low_frequency_share(ssk)
        per_kernel = ssk.nnz_per_kernel().astype(np.float64)
        mask = ssk.mask()
        sched = schedule_layer(mask.reshape(mask.shape[0], mask.shape[1], -1), P, BANKS, PORTS, method="optimal")
        layers[name] = {"cout": ssk.out_channels, "cin": ssk.in_channels, "density": ssk.density,
                        "low_frequency_share": share, "low_frequency_positions_share": area,
                        "dc_keep_probability": float(keep_probability(ssk)[0, 0]),
                        "nnz_per_kernel_cv": float(per_kernel.std() / per_kernel.mean()) if per_kernel.mean() else 0.0,
                        "nnz": sched.nnz, "schedule_cycles": sched.cycles, "schedule_lower_bound_cycles":
                        sched.lower_bound, "pe_utilization": sched.pe_utilization}
        nnz_all, cycles_all, lb_all = nnz_all + sched.nnz, cycles_all + sched.cycles, lb_all + sched.lower_bound
    vals = list(layers.values())
    return {"layers": layers, "density": net.density,
            "low_frequency_share_mean": float(np.mean([v["low_frequency_share"] for v in vals])),
            "low_frequency_positions_share": vals[0]["low_frequency_positions_share"],
            "dc_keep_probability_mean": float(np.mean([v["dc_keep_probability"] for v in vals])),
            "nnz_per_kernel_cv_mean": float(np.mean([v["nnz_per_kernel_cv"] for v in vals])),
            "pe_utilization_network": nnz_all / (P * cycles_all), "schedule_cycles": cycles_all,
            "schedule_lower_bound_cycles": lb_all,
            "pe_utilization_min": min(v["pe_utilization"] for v in vals)}


DESIGNS = {"default": {}, "sized": {"arrays": 1, "pes": P, "banks": BANKS}}


def accelerator_figures(model: str, net, device: str, design: dict) -> dict:
    rep = run(model, device, weights=net, progress=False, tradeoff=False, html=False, **design)
    spec = [r for r in rep.flexspec.layers if r.kind == "spectral"]
    return {"latency_seconds": rep.latency_seconds, "cycles": rep.flexspec.cycles,
            "dsp_efficiency_fraction": rep.dsp_efficiency,
            "spectral_cycles": sum(r.cycles for r in spec),
            "spectral_roofline_cycles": sum(r.roofline_cycles for r in spec),
            "spectral_achieved_over_roofline_ratio": sum(r.cycles for r in spec) / sum(r.roofline_cycles for r in spec),
            "compute_bound_layers": sum(r.bound == "compute" for r in spec), "spectral_layers": len(spec),
            "accelerator": rep.configuration["accelerator"], "stage_seconds": rep.stage_seconds,
            "layers": {r.name: {"cycles": r.cycles, "bound": r.bound, "dsp_efficiency": r.dsp_efficiency,
                                "achieved_over_roofline": r.achieved_over_roofline} for r in spec}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--density", type=float, default=0.25)
    ap.add_argument("--device", default="u200")
    ap.add_argument("--methods", nargs="+", default=list(rm.SHIPPED_METHODS))
    ap.add_argument("--no-accelerator", action="store_true", help="masks and schedules only")
    args = ap.parse_args(argv)
    t_all = time.time()
    sources = []
    for method in args.methods:
        if rm.FMNIST_VGG16.pruned_file(method, args.density).is_file():
            net = rm.load_pruned(method, args.density, rm.FMNIST_VGG16)
            sources.append((f"fmnist_vgg16 real {method}", "fmnist_vgg16", net))
            fileio.write_file(OUT / f"keep_probability_fmnist_vgg16_{method}_d{round(args.density * 1000):04d}.png",
                              plot_keep_probability(net))
    sources.append(("vgg16 synthesized (layer scope)", "vgg16", cached_vgg16_kernels(8, args.density, 0, "layer")))
    results = {"density": args.density, "device": args.device, "pes": P, "banks": BANKS, "ports": PORTS,
               "sources": {}}
    for label, model, net in sources:
        t0 = time.time()
        fig = mask_figures(net)
        if not args.no_accelerator:
            fig["accelerator"] = {d: accelerator_figures(model, net, args.device, kw) for d, kw in DESIGNS.items()}
        fig.update(model=model, provenance=net.provenance, seconds=time.time() - t0)
        results["sources"][label] = fig
        print(f"{label}: density {fig['density']:.3f}, kept at r<=N/4 {fig['low_frequency_share_mean']:.3f} "
              f"(positions {fig['low_frequency_positions_share']:.3f}), DC kept {fig['dc_keep_probability_mean']:.3f}, "
              f"nnz/kernel CV {fig['nnz_per_kernel_cv_mean']:.3f}, PE util {fig['pe_utilization_network']:.3f} "
              f"(min layer {fig['pe_utilization_min']:.3f})"
              + "".join(f"; {args.device} {d} design: latency {a['latency_seconds'] * 1e6:.1f} us, DSP eff. "
                        f"{a['dsp_efficiency_fraction']:.3f}, spectral/roofline "
                        f"{a['spectral_achieved_over_roofline_ratio']:.3f}"
                        for d, a in fig.get("accelerator", {}).items())
              + f" ({time.time() - t0:.0f} s)", flush=True)
    results["total_seconds"] = time.time() - t_all
    fileio.write_file(OUT / "bench_real_vgg16.json", json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
