"""Accuracy cost of hardware-aware (kernel-scope) magnitude pruning on the real fmnist_vgg:
scope 'layer' (one threshold per layer) vs 'kernel' (every kernel keeps round(d*F) entries, equal
PE loads), magnitude only and magnitude + the same short masked retraining as
benchmarks/train_fmnist.py (25 steps, Adam 5e-4, batch 64, seed 1); first 2000 test images.
Needs the Debian package dataset-fashion-mnist and torch.
Run: python benchmarks/bench_prune_scope.py [--steps 25,65] [--densities 0.25]
Writes benchmarks/results/prune_scope.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from flexspec import datasets
from flexspec.spectral import real_model as rm
from flexspec.spectral.admm import magnitude_prune_model, masked_retrain
from flexspec.spectral.torch_ops import to_spectral

OUT = Path(__file__).resolve().parent / "results" / "prune_scope.json"


def _acc(spec, xev, yev) -> float:
    spec.eval()
    with torch.no_grad():
        pred = torch.cat([spec(xev[s:s + 500]).argmax(1) for s in range(0, xev.shape[0], 500)])
    return float((pred == yev).float().mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="25,65", help="comma-separated retraining budgets (25: train_fmnist.py's "
                                                     "magnitude_ft; 65: ADMM's 40 + 25, the equal-budget comparison)")
    ap.add_argument("--densities", default="0.25")
    args = ap.parse_args()
    torch.set_num_threads(1)
    xtr_u8, ytr = datasets.fashion_mnist("train")
    xte_u8, yte = datasets.fashion_mnist("test")
    xtr, ytr = torch.from_numpy(datasets.to_float(xtr_u8)), torch.from_numpy(ytr.astype(np.int64))
    xev, yev = torch.from_numpy(datasets.to_float(xte_u8[:2000])), torch.from_numpy(yte[:2000].astype(np.int64))
    rows = []
    for density, scope, steps in ((float(d), sc, int(n)) for d in args.densities.split(",")
                                  for n in args.steps.split(",") for sc in ("layer", "kernel")):
        model = rm.torch_model()
        model.load_state_dict({k: torch.from_numpy(v) for k, v in rm.load_dense_weights().items()})
        spec = to_spectral(model, 8)
        masks = magnitude_prune_model(spec, density, scope)
        nnz = np.concatenate([np.asarray(m).reshape(-1, np.asarray(m).shape[-2] * np.asarray(m).shape[-1]).sum(1)
                              for m in masks.values()])
        pruned = _acc(spec, xev, yev)
        t0 = time.time()
        masked_retrain(spec, xtr, ytr, steps, 5e-4, 64, 1)
        row = {"density": density, "scope": scope, "magnitude_only": pruned, "retrained": _acc(spec, xev, yev),
               "retrain_steps": steps, "retrain_s": time.time() - t0,
               "nnz_per_kernel_min_mean_max": [int(nnz.min()), float(nnz.mean()), int(nnz.max())]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps({"machine": f"{os.cpu_count()} CPU cores shared (1 torch thread)",
                               "eval_images": 2000, "rows": rows}, indent=1))
    os.replace(tmp, OUT)


if __name__ == "__main__":
    main()
