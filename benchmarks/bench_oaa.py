"""The SpectralConv2d module vs torch conv2d, side by side in one run (float32, CPU).

1. Inference, every VGG16 conv layer (224x224), batch 1 and batch 8: ``nn.Conv2d`` and the
   ``SpectralConv2d`` module (the one ``to_spectral`` users get, kernels held in place) at each FFT
   size in --fft-sizes; at batch > 1 also as before inference ran in chunks of images ("whole
   batch": every pass over the whole batch at once).  Each layer's implementations alternate within every repetition (median of
   --reps), so background load hits all alike.  Totals: spectral on every layer with its best N,
   and the best of conv2d / spectral per layer (what ``to_spectral(..., keep_conv2d=True)`` picks).
2. Training: one step (forward, backward, SGD update) of fmnist_vgg at batch 128, spatial vs
   spectral (N = 8 and N = 9 with the previous and the current product forms, N per layer measured for
   training), alternating, median of --reps and the fastest repetition of each (:func:`train_step`).
3. Sparse vs dense spectral: VGG16's kernels pruned to --density (synthesized, magnitude, layer
   scope, N = 8) through ``SparseOaA`` (operator built once, only kept values multiplied) against
   its dense twin, a ``SpectralConv2d`` holding the same kernels with zeros where pruned (same
   transforms, dense product; no mask buffer, so no per-call mask multiply), alternating, on the
   layers in --sparse-layers, at each batch; the sparse product on --threads threads
   (``benchmarks/bench_sparse.py`` has the fuller comparison, with conv2d and kernel-scope masks).
The load average is recorded before and after.  Writes Markdown to stdout and JSON to --json.

    python benchmarks/bench_oaa.py --threads 2 --json benchmarks/results/bench_oaa.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from unittest import mock

import torch
import torch.nn.functional as F

import numpy as np

from flexspec.spectral import real_model as rm
from flexspec.spectral import torch_ops
from flexspec.spectral.sparse import SparseOaA
from flexspec.spectral.synth import vgg16_kernels
from flexspec.spectral.torch_ops import SpectralConv2d, to_spectral
from flexspec.workload import get_network


#: (clock, statistic) of every timing: wall clock and median, or with --cpu-time (one thread) the process
#: CPU time and the minimum, which other jobs on a loaded machine disturb far less.
_TIMING = {"clock": time.perf_counter, "stat": statistics.median}


def _once(fn) -> float:
    clock = _TIMING["clock"]
    t0 = clock()
    fn()
    return clock() - t0


def _interleaved(fns: dict, reps: int, stat=None) -> dict:
    for fn in fns.values():
        fn()  # warm-up
    samples = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            samples[k].append(_once(fn))
    return {k: (stat or _TIMING["stat"])(v) for k, v in samples.items()}


def forward_rows(batch: int, sizes, reps: int):
    rows = []
    with torch.inference_mode():
        for layer in get_network("vgg16").conv_layers:
            torch.manual_seed(0)
            conv = torch.nn.Conv2d(layer.in_channels, layer.out_channels, 3, padding=1)
            x = torch.randn(batch, layer.in_channels, layer.height, layer.width)
            fns = {"conv2d": lambda conv=conv, x=x: conv(x)}
            ref = conv(x)
            for n in sizes:
                spec = SpectralConv2d.from_conv2d(conv, n)
                err = ((spec(x) - ref).abs().max() / ref.abs().max()).item()
                assert err < 1e-4, f"{layer.name} N={n}: relative error {err}"
                fns[n] = (lambda spec=spec, x=x: spec(x))
                if batch > 1:  # the previous module: the whole batch through each pass at once
                    fns[f"whole{n}"] = (lambda spec=spec, x=x: _whole_batch(spec, x))
            med = _interleaved(fns, reps)
            rows.append((layer.name, med))
            chunks = {n: torch_ops.inference_chunk(layer.in_channels, layer.out_channels, n, 3, layer.height,
                                                   layer.width, x.element_size()) for n in sizes}
            print(f"batch {batch} {layer.name}", {k: f"{v * 1e3:.1f} ms" for k, v in med.items()},
                  "chunk (images, tile rows)", chunks, flush=True)
    return rows


def _whole_batch(spec, x):
    """``spec(x)`` as before inference ran in chunks of images (every pass over the whole batch)."""
    with mock.patch.object(torch_ops, "inference_chunk", lambda *args, **kw: (x.shape[0], x.shape[2])):
        return spec(x)


def forward_summary(rows, sizes) -> dict:
    conv = sum(m["conv2d"] for _, m in rows)
    best_spec = sum(min(m[n] for n in sizes) for _, m in rows)
    best_any = sum(min(m[k] for k in ("conv2d", *sizes)) for _, m in rows)
    whole = {}
    if all(f"whole{n}" in m for _, m in rows for n in sizes):
        whole["spectral_best_n_whole_batch_ratio"] = sum(min(m[f"whole{n}"] for n in sizes) for _, m in rows) / conv
    return {"conv2d_s": conv, "spectral_best_n_s": best_spec, "spectral_best_n_ratio": best_spec / conv, **whole,
            "best_of_conv2d_or_spectral_s": best_any, "best_of_ratio": best_any / conv,
            **{f"spectral_n{n}_ratio": sum(m[n] for _, m in rows) / conv for n in sizes},
            "best_n": {name: min(sizes, key=lambda n: m[n]) for name, m in rows},
            "layers": {name: {str(k): v for k, v in m.items()} for name, m in rows}}


def sparse_rows(batches, density: float, names, reps: int, threads: int) -> dict:
    net = vgg16_kernels(8, density, 0, layers=names)
    shapes = {layer.name: layer for layer in get_network("vgg16").conv_layers}
    rows = {}
    with torch.inference_mode():
        for name, ssk in net.layers.items():
            layer = shapes[name]
            dense = SpectralConv2d(layer.in_channels, layer.out_channels, 3, 1, 8)
            dense.set_spectrum(torch.from_numpy(ssk.dense()))  # pruned values are zeros: no mask pass per call
            sparse = SparseOaA(ssk, threads=threads)
            for batch in batches:
                torch.manual_seed(0)
                xt = torch.randn(batch, layer.in_channels, layer.height, layer.width)
                x = xt.numpy()
                ref = dense(xt).numpy()
                err = float(np.abs(sparse(x, 1) - ref).max() / np.abs(ref).max())
                assert err < 1e-4, f"{name}: sparse vs dense relative error {err}"
                med = _interleaved({"dense": lambda dense=dense, xt=xt: dense(xt),
                                    "sparse": lambda sparse=sparse, x=x: sparse(x, 1)}, reps)
                rows[f"{name} b{batch}"] = {"dense_s": med["dense"], "sparse_s": med["sparse"],
                                            "ratio": med["sparse"] / med["dense"], "density": ssk.density}
                print(f"sparse {name} batch {batch}", {k: f"{v * 1e3:.1f} ms" for k, v in med.items()}, flush=True)
    return rows


def _previous_forms(in_channels, out_channels, fft_size, lanes):
    """The product forms before the block form existed (stacked or planes), for the side-by-side row."""
    return "stacked" if torch_ops.stacked_product(in_channels, fft_size, lanes) else "planes"


def train_step(reps: int, report=print) -> dict:
    """One fmnist_vgg training step (batch 128, SGD), interleaved: the spatial model; spectral N = 8 on
    every layer with the previous product forms (the figure recorded before) and with the current
    ones; N = 9 on every layer (its 7-pixel tile divides 28, 14 and 7: no wasted tile area), with the
    previous and the current forms; and N
    chosen per layer by measured forward + backward time among 8, 9 and 16 (``to_spectral(...,
    "auto", training=True)``, spectral on every layer; each choice printed)."""
    torch.manual_seed(0)
    spatial = rm.torch_model()
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    plan_lines = []
    models = {"spatial": spatial, "spectral_n8_previous": to_spectral(spatial, 8), "spectral_n8": to_spectral(spatial, 8),
              "spectral_n9_previous": to_spectral(spatial, 9), "spectral_n9": to_spectral(spatial, 9),
              "spectral_auto": to_spectral(spatial, "auto", example_input=x, candidates=(8, 9, 16), training=True,
                                           report=plan_lines.append)}
    for line in plan_lines:
        report(f"training plan {line}")
    opts = {k: torch.optim.SGD(m.parameters(), lr=1e-3) for k, m in models.items()}

    def step(key):
        with mock.patch.object(torch_ops, "product_form", _previous_forms) if key.endswith("_previous") \
                else contextlib.nullcontext():
            opts[key].zero_grad()
            F.cross_entropy(models[key](x), y).backward()
            opts[key].step()

    samples = _interleaved({k: (lambda k=k: step(k)) for k in models}, reps, stat=list)
    med = {k: statistics.median(v) for k, v in samples.items()}
    res = {f"{k}_s": v for k, v in med.items()}
    res.update({f"{k}_ratio": v / med["spatial"] for k, v in med.items() if k != "spatial"})
    # the fastest repetition of each: the least disturbed by the other jobs on the machine
    res.update({f"{k}_min_ratio": min(v) / min(samples["spatial"]) for k, v in samples.items() if k != "spatial"})
    res["samples_s"] = samples
    res["ratio"] = res["spectral_auto_ratio"]
    res["auto_plan"] = plan_lines
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fft-sizes", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--batches", type=int, nargs="*", default=[1, 8])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--density", type=float, default=0.25)
    ap.add_argument("--sparse-layers", nargs="*", default=["conv3_1", "conv3_2", "conv4_1", "conv4_2", "conv5_1",
                                                           "conv5_2"])
    ap.add_argument("--train", action=argparse.BooleanOptionalAction, default=True,
                    help="time the fmnist_vgg training step (--no-train: inference and sparse only)")
    ap.add_argument("--json", help="write all figures here")
    ap.add_argument("--cpu-time", action="store_true",
                    help="one thread; time by process CPU time, minimum of the repetitions (a loaded machine)")
    args = ap.parse_args(argv)
    if args.cpu_time:
        if args.threads != 1:
            ap.error("--cpu-time measures one thread: pass --threads 1")
        _TIMING.update(clock=time.process_time, stat=min)
    torch.set_num_threads(args.threads)
    res = {"torch": torch.__version__, "threads": args.threads, "reps": args.reps,
           "load_before": os.getloadavg(), "forward": {}}
    if args.train:
        res["train_step_fmnist_vgg_b128"] = train_step(args.reps)
        print("train step", res["train_step_fmnist_vgg_b128"], flush=True)
    lines = []
    for batch in args.batches:
        rows = forward_rows(batch, args.fft_sizes, args.reps)
        summ = forward_summary(rows, args.fft_sizes)
        res["forward"][f"batch{batch}"] = summ
        lines.append(f"\nBatch {batch}: conv2d {summ['conv2d_s'] * 1e3:.0f} ms in total over VGG16's 13 convs\n")
        cols = [*args.fft_sizes, *(f"whole{n}" for n in args.fft_sizes if batch > 1)]
        lines.append("| layer | conv2d (ms) | " + " | ".join(
            f"N={c} (ms)" if isinstance(c, int) else f"N={c[5:]} whole batch (ms)" for c in cols) + " | best N / conv2d |")
        lines.append("|---|---|" + "---|" * len(cols) + "---|")
        for name, m in rows:
            b = summ["best_n"][name]
            lines.append(f"| {name} | {m['conv2d'] * 1e3:.1f} | " + " | ".join(f"{m[c] * 1e3:.1f}" for c in cols)
                         + f" | N={b}: {m[b] / m['conv2d']:.2f}x |")
        whole = summ.get("spectral_best_n_whole_batch_ratio")
        lines.append(f"| **total** | {summ['conv2d_s'] * 1e3:.0f} | "
                     + " | ".join(f"{sum(m[c] for _, m in rows) * 1e3:.0f}" for c in cols)
                     + f" | best N per layer: **{summ['spectral_best_n_ratio']:.2f}x**"
                     + (f" (whole batch per pass, as before: {whole:.2f}x)" if whole else "")
                     + f"; best of conv2d/spectral: {summ['best_of_ratio']:.2f}x |")
    if args.sparse_layers:
        res["load_before_sparse"] = os.getloadavg()
        res["sparse"] = sparse_rows(args.batches, args.density, args.sparse_layers, args.reps, args.threads)
        lines.append(f"\nSparse ({args.density:.0%} kept, synthesized VGG16 kernels, N=8) vs its dense spectral twin\n")
        lines.append("| layer, batch | dense twin (ms) | SparseOaA (ms) | sparse / dense |")
        lines.append("|---|---|---|---|")
        for key, r in res["sparse"].items():
            lines.append(f"| {key} | {r['dense_s'] * 1e3:.1f} | {r['sparse_s'] * 1e3:.1f} | {r['ratio']:.2f}x |")
    res["load_after"] = os.getloadavg()
    ts = res.get("train_step_fmnist_vgg_b128")
    if ts is not None:
        lines.append(f"\nTraining step, fmnist_vgg, batch 128: spatial {ts['spatial_s'] * 1e3:.0f} ms; spectral "
                     + "; ".join(f"{k.removeprefix('spectral_')} {ts[k + '_s'] * 1e3:.0f} ms ({ts[k + '_ratio']:.2f}x)"
                                 for k in ("spectral_n8_previous", "spectral_n8", "spectral_n9_previous", "spectral_n9",
                                           "spectral_auto"))
                     + f"; N per layer (auto, training): **{ts['ratio']:.2f}x**. Fastest repetitions: "
                     + "; ".join(f"{k.removeprefix('spectral_')} {ts[k + '_min_ratio']:.2f}x"
                                 for k in ("spectral_n8_previous", "spectral_n8", "spectral_n9_previous", "spectral_n9",
                                           "spectral_auto")) + ".")
    timing = "process CPU time, minimum" if args.cpu_time else "wall clock, median"
    lines.append(f"torch {torch.__version__}, {args.threads} threads, {timing} of {args.reps} interleaved repetitions; "
                 f"load average {res['load_before'][0]:.1f} before, {res['load_after'][0]:.1f} after.")
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
