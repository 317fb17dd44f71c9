"""Spectral OaA forward vs torch conv2d on every VGG16 conv layer (batch 1, 224x224, float32).

Side by side in one run, same thread count, same inputs; each layer is timed as the
median of several repetitions, alternating the two implementations so that background
load affects both alike.  Writes a Markdown table to stdout (and --out FILE).

    python benchmarks/bench_oaa.py --threads 2 --fft-sizes 8 16 32
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from flexspec.spectral.torch_ops import frequency_major, spectral_conv2d_fmajor
from flexspec.workload import get_network


def _time(fn, reps):
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fft-sizes", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", help="also write the Markdown table here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    layers = get_network("vgg16").conv_layers
    rows, totals = [], {"conv2d": 0.0, **{n: 0.0 for n in args.fft_sizes}}
    with torch.inference_mode():
        for layer in layers:
            x = torch.randn(1, layer.in_channels, layer.height, layer.width)
            w = torch.randn(layer.out_channels, layer.in_channels, 3, 3) * 0.05
            # kernels transformed and laid out once, as a deployed inference engine keeps them
            specs = {n: frequency_major(torch.fft.rfft2(torch.flip(w, (-2, -1)), s=(n, n))) for n in args.fft_sizes}
            ref = torch.nn.functional.conv2d(x, w, padding=1)
            fns = {"conv2d": lambda x=x, w=w: torch.nn.functional.conv2d(x, w, padding=1)}
            for n in args.fft_sizes:
                got = spectral_conv2d_fmajor(x, specs[n], n, 3, 1)
                err = (got - ref).abs().max().item() / ref.abs().max().item()
                assert err < 1e-4, f"{layer.name} N={n}: relative error {err}"
                fns[n] = (lambda n=n, x=x, s=specs: spectral_conv2d_fmajor(x, s[n], n, 3, 1))
            samples = {k: [] for k in fns}
            for _ in range(args.reps):  # alternate implementations
                for k, fn in fns.items():
                    samples[k] += _time(fn, 1)
            med = {k: statistics.median(v) for k, v in samples.items()}
            for k, v in med.items():
                totals[k] += v
            rows.append((layer.name, med))
            print(layer.name, {k: f"{v * 1e3:.1f} ms" for k, v in med.items()}, flush=True)
    best = min(args.fft_sizes, key=lambda n: totals[n])
    lines = [
        "| layer | conv2d (ms) | " + " | ".join(f"OaA N={n} (ms)" for n in args.fft_sizes) + " | best N / conv2d |",
        "|---|---|" + "---|" * len(args.fft_sizes) + "---|",
    ]
    for name, med in rows:
        b = min(args.fft_sizes, key=lambda n: med[n])
        lines.append(f"| {name} | {med['conv2d'] * 1e3:.1f} | " + " | ".join(f"{med[n] * 1e3:.1f}" for n in args.fft_sizes)
                     + f" | N={b}: {med[b] / med['conv2d']:.2f}x |")
    lines.append(f"| **total** | {totals['conv2d'] * 1e3:.0f} | " + " | ".join(f"{totals[n] * 1e3:.0f}" for n in args.fft_sizes)
                 + f" | N={best}: {totals[best] / totals['conv2d']:.2f}x |")
    per_layer_best = sum(min(med[n] for n in args.fft_sizes) for _, med in rows)
    lines.append(f"\nFastest single FFT size: N = {best} ({totals[best] / totals['conv2d']:.2f}x conv2d). "
                 f"Best N chosen per layer: {per_layer_best / totals['conv2d']:.2f}x conv2d. "
                 f"torch {torch.__version__}, {args.threads} threads, median of {args.reps}.")
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
