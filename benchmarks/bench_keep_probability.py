"""Frequency keep probability of the shipped real pruned fmnist_vgg (and synthesized VGG16 for comparison).

Writes benchmarks/results/keep_probability_<model>.png and prints, per layer, the share of kept
entries at radial frequency <= N/4 against the share of positions there (uniform keeping would
give equal numbers), plus the numpy sparse-OaA accuracy of every shipped model on the shipped
1,000-image subset.
Run: python benchmarks/bench_keep_probability.py [--vgg16]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from flexspec import datasets
from flexspec.spectral import real_model as rm
from flexspec.spectral.synth import low_frequency_share, plot_keep_probability, vgg16_kernels

OUT = Path(__file__).resolve().parent / "results"


def report(net, tag):
    (OUT / f"keep_probability_{tag}.png").write_bytes(plot_keep_probability(net))
    print(f"{tag}: {net.provenance}")
    for name, layer in net.layers.items():
        share, area = low_frequency_share(layer)
        print(f"  {name:<8} density {layer.density:.3f}  kept at r<=N/4: {share:.3f} (positions there: {area:.3f})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vgg16", action="store_true", help="also synthesized VGG16 at density 0.25 (about a minute)")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    images, labels = datasets.fashion_mnist_subset()
    for method in rm.SHIPPED_METHODS:
        for density in rm.SHIPPED_DENSITIES:
            net = rm.load_pruned(method, density)
            t0 = time.time()
            acc = rm.numpy_accuracy(net, images, labels)
            print(f"{method:>12} @ {density:<5}: numpy sparse-OaA accuracy on the shipped 1000 images {acc:.3f} "
                  f"({time.time() - t0:.1f} s), {net.total_bytes()} bytes")
    report(rm.load_pruned("admm", 0.25), "fmnist_vgg_admm_d0250")
    report(rm.load_pruned("magnitude", 0.25), "fmnist_vgg_magnitude_d0250")
    if args.vgg16:
        report(vgg16_kernels(8, 0.25, seed=0), "vgg16_synth_d0250")


if __name__ == "__main__":
    main()
