"""The 25%-sparse spectral path (``SparseOaA``) against its dense spectral twin and conv2d, side by side.

For each VGG16 conv layer in --layers (224x224 input, float32, N = 8) and each batch in --batches:

* ``conv2d``: ``nn.Conv2d`` with the layer's synthesized spatial weights (torch, --threads threads);
* ``dense twin``: a ``SpectralConv2d`` holding the pruned spectral kernels with zeros where pruned (same
  transforms, dense stacked/four-GEMM product; torch, --threads threads);
* ``sparse``: ``SparseOaA`` built once from the same pruned kernels (only kept values multiplied; its
  numba passes on --threads threads: frequency ranges, then output-channel ranges);

for each mask in --scopes: "layer" (one magnitude threshold per layer, the synthesized VGG16 default) and
"kernel" (equal non-zeros per kernel, the accelerator's hardware-aware masks).  The implementations
alternate inside every repetition (median of --reps; --settle-ms: a pause before each timed call, so that
none runs on cores the previous one's spinning OpenMP threads still hold); each sparse output is checked
against the twin first (relative error < 1e-4).  Then, with --profile, the sparse path's stages (tiles; tile spectra and
sparse product; the product alone, on the threads and on one; inverse transform and overlap-add) and the
twin's product alone (its two stacked GEMMs on the same number of tiles) on --profile-layers.  The load average
is recorded before and after.  Markdown to stdout, JSON to --json.

    python benchmarks/bench_sparse.py --threads 2 --json benchmarks/results/bench_sparse_2threads.json
"""
# ruff: noqa: B023  (the profile's stage closures are timed and dropped within the loop iteration that binds them)

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numba
import numpy as np
import torch

from flexspec.fileio import write_file
from flexspec.spectral import _oaa_kernels as kernels
from flexspec.spectral.sparse import SparseOaA
from flexspec.spectral.synth import synthesize_vgg16_weights, vgg16_kernels
from flexspec.spectral.torch_ops import SpectralConv2d
from flexspec.workload import get_network

WIDE = ["conv3_1", "conv3_2", "conv3_3", "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"]


def _interleaved(fns: dict, reps: int, settle_s: float = 0.0) -> dict:
    """Median time of each function, alternating within every repetition; with ``settle_s``, a pause
    before each timed call, so that none pays for the threads the previous one left spinning
    (torch's OpenMP threads spin after each parallel region and take the cores from what follows)."""
    for fn in fns.values():
        fn()  # warm-up (and numba compilation on the first layer)
    samples = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            if settle_s:
                time.sleep(settle_s)
            t0 = time.perf_counter()
            fn()
            samples[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in samples.items()}


def compare(names, batches, scopes, density: float, reps: int, threads: int, settle_s: float = 0.0) -> dict:
    shapes = {layer.name: layer for layer in get_network("vgg16").conv_layers}
    spatial = synthesize_vgg16_weights(0, layers=names)
    nets = {scope: vgg16_kernels(8, density, 0, scope=scope, layers=names) for scope in scopes}
    rows = {}
    with torch.inference_mode():
        for name in names:
            layer = shapes[name]
            conv = torch.nn.Conv2d(layer.in_channels, layer.out_channels, 3, padding=1, bias=False)
            conv.weight.copy_(torch.from_numpy(spatial[name]))
            for scope in scopes:
                ssk = nets[scope].layers[name]
                twin = SpectralConv2d(layer.in_channels, layer.out_channels, 3, 1, 8, bias=False)
                twin.set_spectrum(torch.from_numpy(ssk.dense()))  # pruned values are zeros: no mask pass
                sparse = SparseOaA(ssk, threads=threads)
                for batch in batches:
                    xt = torch.randn(batch, layer.in_channels, layer.height, layer.width,
                                     generator=torch.Generator().manual_seed(0))
                    x = xt.numpy()
                    ref = twin(xt).numpy()
                    err = float(np.abs(sparse(x, 1) - ref).max() / np.abs(ref).max())
                    assert err < 1e-4, f"{name} {scope}: sparse vs dense twin relative error {err}"
                    med = _interleaved({"conv2d": lambda xt=xt, c=conv: c(xt), "dense": lambda t=twin, xt=xt: t(xt),
                                        "sparse": lambda s=sparse, x=x: s(x, 1)}, reps, settle_s)
                    key = f"{name} {scope} b{batch}"
                    rows[key] = {"layer": name, "scope": scope, "batch": batch, "density": ssk.density,
                                 "conv2d_s": med["conv2d"], "dense_s": med["dense"], "sparse_s": med["sparse"],
                                 "sparse_over_dense": med["sparse"] / med["dense"],
                                 "sparse_over_conv2d": med["sparse"] / med["conv2d"], "load": os.getloadavg()[0]}
                    print(key, {k: f"{v * 1e3:.1f} ms" for k, v in med.items()},
                          f"sparse/dense {med['sparse'] / med['dense']:.2f}x", flush=True)
    return rows


def profile(names, batches, density: float, reps: int, threads: int) -> dict:
    """Median time of each stage of SparseOaA (the same calls as ``SparseOaA.__call__``), and of the
    dense twin's product alone (its two stacked GEMMs on as many tiles)."""
    net = vgg16_kernels(8, density, 0, layers=names)
    shapes = {layer.name: layer for layer in get_network("vgg16").conv_layers}
    out = {}
    for name, ssk in net.layers.items():
        layer, op = shapes[name], SparseOaA(ssk, threads=threads)
        n, h, lanes, f_count = 8, op.tile, kernels.LANES, ssk.num_frequencies
        cin, cout = ssk.in_channels, ssk.out_channels
        twin = SpectralConv2d(cin, cout, 3, 1, 8, bias=False)
        twin.set_spectrum(torch.from_numpy(ssk.dense()))
        wr, wi = twin.weight.detach().unbind(0)
        for batch in batches:
            x = np.random.default_rng(0).standard_normal((batch, cin, layer.height, layer.width)).astype(np.float32)
            ty, tx = -(-layer.height // h), -(-layer.width // h)
            m = batch * ty * tx
            chunks = -(-m // lanes)
            tiles = np.empty((h, h, chunks, cin, lanes), np.float32)
            xs = np.empty((2, f_count, chunks, cin, lanes), np.float32)
            y = np.empty((2, f_count, chunks, cout, lanes), np.float32)
            blocks = np.empty((n, n, chunks, cout, lanes), np.float32)
            res = np.empty((batch, cout, layer.height, layer.width), np.float32)
            bias = np.zeros(cout, np.float32)
            phase1 = (tiles, op.dft_d, xs, op.indptr, op.channels, op.values, y)
            phase2 = (op.dft_g, y, blocks, h, ty, tx, 1, 1, bias, res)
            kernels.tiles_forward_lanes(x, h, tiles, 0, cin)  # real data in every buffer (garbage may hold denormals)
            op._on_threads(kernels.sparse_spectra_and_product, op.frequency_ranges, phase1)
            x2 = torch.randn(f_count, 2 * m, cin)
            yy = torch.empty(2, f_count, 2 * m, cout)
            stages = {
                "tiles": lambda: op._on_threads(kernels.tiles_forward_lanes, op.input_channel_ranges, (x, h, tiles)),
                "spectra_and_product": lambda: op._on_threads(kernels.sparse_spectra_and_product,
                                                              op.frequency_ranges, phase1),
                "product_alone": lambda: op.product(xs, y),
                "product_alone_1thread": lambda: kernels.sparse_product_lanes(xs, op.indptr, op.channels, op.values,
                                                                              y, 0, f_count),
                "inverse_and_overlap_add": lambda: op._on_threads(kernels.sparse_blocks_and_overlap_add,
                                                                  op.channel_ranges, phase2),
                "whole_sparse": lambda: op(x, 1),
                "dense_twin_product": lambda: (torch.bmm(x2, wr, out=yy[0]), torch.bmm(x2, wi, out=yy[1])),
            }
            med = _interleaved(stages, reps)
            out[f"{name} b{batch}"] = med
            print("profile", name, f"b{batch}", {k: f"{v * 1e3:.1f} ms" for k, v in med.items()}, flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", nargs="+", default=WIDE)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--scopes", nargs="+", default=["layer", "kernel"], choices=["layer", "kernel"])
    ap.add_argument("--density", type=float, default=0.25)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="also time the sparse path's stages")
    ap.add_argument("--profile-layers", nargs="+", default=["conv4_1", "conv5_1"])
    ap.add_argument("--settle-ms", type=float, default=0.0,
                    help="pause before each timed call (so that no implementation runs on cores the previous one's "
                         "spinning threads still hold)")
    ap.add_argument("--json", help="write all figures here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = {"torch": torch.__version__, "numba": numba.__version__, "threads": args.threads, "reps": args.reps,
           "density": args.density, "load_before": os.getloadavg()}
    res["settle_ms"] = args.settle_ms
    res["rows"] = compare(args.layers, args.batches, args.scopes, args.density, args.reps, args.threads,
                          args.settle_ms / 1e3)
    if args.profile:
        res["profile"] = profile(args.profile_layers, args.batches, args.density, args.reps, args.threads)
    res["load_after"] = os.getloadavg()
    lines = [f"\n{args.density:.0%} kept, synthesized VGG16 kernels, N = 8, {args.threads} threads, median of "
             f"{args.reps} interleaved repetitions, {args.settle_ms:g} ms pause before each; load average {res['load_before'][0]:.1f} before, "
             f"{res['load_after'][0]:.1f} after\n",
             "| layer | mask | batch | conv2d (ms) | dense twin (ms) | SparseOaA (ms) | sparse / dense | sparse / conv2d |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"].values():
        lines.append(f"| {r['layer']} | {r['scope']} | {r['batch']} | {r['conv2d_s'] * 1e3:.1f} | "
                     f"{r['dense_s'] * 1e3:.1f} | {r['sparse_s'] * 1e3:.1f} | **{r['sparse_over_dense']:.2f}x** | "
                     f"{r['sparse_over_conv2d']:.2f}x |")
    for scope in args.scopes:
        for batch in args.batches:
            sel = [r for r in res["rows"].values() if r["scope"] == scope and r["batch"] == batch]
            if sel:
                ratio = sum(r["sparse_s"] for r in sel) / sum(r["dense_s"] for r in sel)
                wins = sum(r["sparse_over_dense"] < 1 for r in sel)
                lines.append(f"\n{scope} masks, batch {batch}: sparse / dense twin over the {len(sel)} layers "
                             f"**{ratio:.2f}x**; sparse faster on {wins} of {len(sel)}.")
    if args.profile:
        stages = list(next(iter(res["profile"].values())))
        lines.append("\n| layer, batch | " + " | ".join(f"{s} (ms)" for s in stages) + " |")
        lines.append("|---|" + "---|" * len(stages))
        for key, med in res["profile"].items():
            lines.append(f"| {key} | " + " | ".join(f"{med[s] * 1e3:.1f}" for s in stages) + " |")
    print("\n".join(lines))
    if args.json:
        write_file(args.json, json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
