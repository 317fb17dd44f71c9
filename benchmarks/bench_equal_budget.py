"""Magnitude pruning + masked retraining with the SAME number of training steps as ADMM + retraining
(benchmarks/train_fmnist.py gives ADMM 40 + 25 steps, magnitude_ft 25); accuracy on the first 2000
Fashion-MNIST test images, like train_fmnist.py.  Needs the Debian package and torch.
Run: python benchmarks/bench_equal_budget.py [--steps 65] [--densities 0.25]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from flexspec import datasets
from flexspec.spectral import real_model as rm
from flexspec.spectral.admm import magnitude_prune_model, masked_retrain
from flexspec.spectral.torch_ops import to_spectral


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=65)
    ap.add_argument("--densities", default="0.25")
    args = ap.parse_args()
    torch.set_num_threads(1)
    xtr_u8, ytr = datasets.fashion_mnist("train")
    xte_u8, yte = datasets.fashion_mnist("test")
    xtr, ytr = torch.from_numpy(datasets.to_float(xtr_u8)), torch.from_numpy(ytr.astype(np.int64))
    xev, yev = torch.from_numpy(datasets.to_float(xte_u8[:2000])), torch.from_numpy(yte[:2000].astype(np.int64))
    for density in (float(d) for d in args.densities.split(",")):
        model = rm.torch_model()
        model.load_state_dict({k: torch.from_numpy(v) for k, v in rm.load_dense_weights().items()})
        spec = to_spectral(model, 8)
        magnitude_prune_model(spec, density)
        t0 = time.time()
        masked_retrain(spec, xtr, ytr, args.steps, 5e-4, 64, 1)
        spec.eval()
        with torch.no_grad():
            acc = float((torch.cat([spec(xev[s:s + 500]).argmax(1) for s in range(0, 2000, 500)]) == yev)
                        .float().mean())
        print(f"magnitude + {args.steps} masked retraining steps @ {density}: accuracy {acc:.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
