"""Scheduling of sparse kernel reads on every spectral layer of a network (default VGG16, N = 8).

Side by side in one run, same masks: ``inorder`` (naive, per-PE stall), ``greedy`` (list
scheduling), ``optimal`` (edge colouring, = lower bound) with the default ``balanced`` grouping
and with ``bank_aware`` grouping, all without broadcast; then, with broadcast, ``inorder`` and the
broadcast-aware heuristic next to its own lower bound.  Cycles are per input tile (every kernel
group streamed once); PE utilization = non-zeros / (P x cycles).  The speed figure is the end-to-end
time of ``schedule_layer`` (grouping + bank map + optimal schedule) over all layers, numba already
compiled (the compile time is printed apart).

Masks: uniformly random with exactly round(density * F) kept positions per kernel (seeded), unless

    --masks FILE.npz   HOOK FOR REAL PRUNED MASKS: a flexspec.spectral SparseNetworkKernels file
                       (has 'layer_names'), or a plain npz mapping layer name -> bool [Cout, Cin, F].
                       Layers of the model missing from the file are skipped.

    python benchmarks/bench_schedule.py --verify --json benchmarks/bench_schedule.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from flexspec.schedule import group_kernels, schedule_groups, schedule_layer, validate
from flexspec.spectral.geometry import num_frequencies
from flexspec.workload import get_network


def random_masks(layers, num_freq: int, density: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    keep = int(round(density * num_freq))
    out = {}
    for layer in layers:
        n = layer.out_channels * layer.in_channels
        idx = np.argsort(rng.random((n, num_freq), dtype=np.float32), axis=1)[:, :keep]
        mask = np.zeros((n, num_freq), dtype=bool)
        np.put_along_axis(mask, idx, True, axis=1)
        out[layer.name] = mask.reshape(layer.out_channels, layer.in_channels, num_freq)
    return out


def load_masks(path: str, layers, num_freq: int) -> dict:
    with np.load(path, allow_pickle=False) as data:
        files = set(data.files)
    if "layer_names" in files:  # a SparseNetworkKernels file of flexspec.spectral
        from flexspec.spectral.sparse import SparseNetworkKernels

        net = SparseNetworkKernels.load(path)
        raw = {name: lay.mask() for name, lay in net.layers.items()}
    else:
        with np.load(path, allow_pickle=False) as data:
            raw = {k: data[k] for k in data.files}
    out = {}
    for layer in layers:
        if layer.name not in raw:
            print(f"note: {path} has no mask for {layer.name}; skipped", file=sys.stderr)
            continue
        mask = np.asarray(raw[layer.name], dtype=bool)
        if mask.shape != (layer.out_channels, layer.in_channels, num_freq):
            sys.exit(f"{path}: mask {layer.name} has shape {mask.shape}, expected "
                     f"{(layer.out_channels, layer.in_channels, num_freq)}")
        out[layer.name] = mask
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vgg16")
    ap.add_argument("--fft-size", type=int, default=8)
    ap.add_argument("--pes", type=int, default=16)
    ap.add_argument("--banks", type=int, default=16)
    ap.add_argument("--ports", type=int, default=1)
    ap.add_argument("--density", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--masks", help="npz of real pruned masks (see the module docstring)")
    ap.add_argument("--bank-map", default="auto", choices=("mod", "auto"))
    ap.add_argument("--verify", action="store_true", help="run the independent validator on every schedule")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--out", help="also write the Markdown table here")
    args = ap.parse_args(argv)

    layers = [lay for lay in get_network(args.model).spectral_layers if lay.kernel_size <= args.fft_size]
    num_freq = num_frequencies(args.fft_size)
    t0 = time.perf_counter()
    if args.masks:
        masks, source = load_masks(args.masks, layers, num_freq), f"masks from {args.masks}"
        layers = [lay for lay in layers if lay.name in masks]
    else:
        masks = random_masks(layers, num_freq, args.density, args.seed)
        source = (f"uniformly random masks, exactly {int(round(args.density * num_freq))} of {num_freq} "
                  f"kept per kernel, seed {args.seed}")
    t_masks = time.perf_counter() - t0
    P, B, R = args.pes, args.banks, args.ports

    # compile (or load from the numba cache) every kernel outside the timings
    t0 = time.perf_counter()
    tiny = np.zeros((2, P, num_freq), bool)
    tiny[:, :, ::3] = True
    for method in ("optimal", "inorder", "greedy", "broadcast"):
        schedule_groups(tiny, B, R, method == "broadcast", "mod", method)
    group_kernels(tiny.reshape(2 * P, 1, num_freq), P, "bank_aware", bank_of=np.arange(num_freq) % B, banks=B)
    t_compile = time.perf_counter() - t0

    # end-to-end speed of the optimal scheduler (grouping + bank map + colouring)
    speed = {}
    for name, kwargs in (("optimal", dict(method="optimal")),
                         ("broadcast", dict(broadcast=True, method="broadcast")),
                         ("optimal_bank_aware", dict(method="optimal", grouping="bank_aware"))):
        t0 = time.perf_counter()
        for lay in layers:
            schedule_layer(masks[lay.name], P, B, R, bank_map=args.bank_map, **kwargs)
        speed[name] = time.perf_counter() - t0

    rows, t_verify = [], 0.0
    runs = (
        ("inorder", dict(method="inorder")),
        ("greedy", dict(method="greedy")),
        ("optimal", dict(method="optimal")),
        ("optimal_bank_aware", dict(method="optimal", grouping="bank_aware")),
        ("inorder_bc", dict(method="inorder", broadcast=True)),
        ("broadcast", dict(method="broadcast", broadcast=True)),
    )
    for lay in layers:
        row = {"layer": lay.name, "cout": lay.out_channels, "cin": lay.in_channels}
        for key, kwargs in runs:
            ls = schedule_layer(masks[lay.name], P, B, R, bank_map=args.bank_map, **kwargs)
            if args.verify:
                t0 = time.perf_counter()
                flat = masks[lay.name].reshape(-1, num_freq)  # grouped mask rebuilt from the kernel ids
                grouped = (flat[np.maximum(ls.groups, 0)] & (ls.groups >= 0)[..., None])
                validate(ls.schedule, grouped)
                t_verify += time.perf_counter() - t0
            row["nnz"] = ls.nnz
            row["groups"] = ls.schedule.num_groups
            row[key] = ls.cycles
            row[key + "_lb"] = ls.lower_bound
        rows.append(row)

    keys = [k for k, _ in runs]
    total = {"layer": "total", "nnz": sum(r["nnz"] for r in rows), "groups": sum(r["groups"] for r in rows)}
    for k in keys:
        total[k] = sum(r[k] for r in rows)
        total[k + "_lb"] = sum(r[k + "_lb"] for r in rows)

    def util(r, k):
        return r["nnz"] / (P * r[k]) if r[k] else 0.0

    header = (f"{args.model}, N = {args.fft_size}, P = {P} PEs, B = {B} banks x R = {R} port(s), "
              f"bank map {args.bank_map}; {source}")
    lines = [
        header, "",
        "| layer | groups | nnz | inorder | greedy | optimal (= LB) | util | optimal, bank-aware grouping | util "
        "| inorder + bcast | broadcast-aware | bcast LB | util |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows + [total]:
        lines.append(
            f"| {r['layer']} | {r['groups']} | {r['nnz']} | {r['inorder']} | {r['greedy']} | {r['optimal']} "
            f"| {util(r, 'optimal'):.1%} | {r['optimal_bank_aware']} | {util(r, 'optimal_bank_aware'):.1%} "
            f"| {r['inorder_bc']} | {r['broadcast']} | {r['broadcast_lb']} | {util(r, 'broadcast'):.1%} |"
        )
    extra = total["optimal"] - total["optimal_lb"] + total["optimal_bank_aware"] - total["optimal_bank_aware_lb"]
    lines += [
        "",
        f"optimal: {extra} cycles above the lower bound over {2 * total['groups']} groups (both groupings).",
        f"optimal vs inorder: {total['inorder'] / total['optimal']:.3f}x fewer cycles; vs greedy: "
        f"{total['greedy'] / total['optimal']:.3f}x.  broadcast-aware vs inorder with broadcast: "
        f"{total['inorder_bc'] / total['broadcast']:.3f}x; "
        f"above its bound by {total['broadcast'] / total['broadcast_lb'] - 1:.1%}.",
        f"time: masks {t_masks:.1f} s, numba compile/cache load {t_compile:.1f} s, end to end over all layers: "
        f"optimal {speed['optimal']:.1f} s, broadcast-aware {speed['broadcast']:.1f} s, optimal with "
        f"bank-aware grouping {speed['optimal_bank_aware']:.1f} s"
        + (f"; validator over all {len(runs)} x {len(rows)} schedules {t_verify:.1f} s" if args.verify else ""),
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"config": vars(args), "source": source, "rows": rows, "total": total, "speed_seconds": speed,
                       "compile_seconds": t_compile, "verify_seconds": t_verify}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
