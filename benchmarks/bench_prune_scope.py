"""Accuracy cost of hardware-aware (kernel-scope) magnitude pruning on the real fmnist_vgg:
scope 'layer' (one threshold per layer) vs 'kernel' (every kernel keeps round(d*F) entries, equal
PE loads), magnitude only and magnitude + short masked retraining (budgets in epochs, Adam 1e-3
cosine, batch 128, seed 1); first 2000 test images; from the shipped dense model (92.62% on the 10k set).
Needs the Debian package dataset-fashion-mnist and torch.
Run: python benchmarks/bench_prune_scope.py [--epochs 0.05,0.1] [--densities 0.25]
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
    ap.add_argument("--epochs", default="0.05,0.1", help="comma-separated masked retraining budgets, in epochs")
    ap.add_argument("--densities", default="0.25")
    args = ap.parse_args()
    torch.set_num_threads(1)
    xtr_u8, ytr = datasets.fashion_mnist("train")
    xte_u8, yte = datasets.fashion_mnist("test")
    xtr, ytr = torch.from_numpy(datasets.to_float(xtr_u8)), torch.from_numpy(ytr.astype(np.int64))
    xev, yev = torch.from_numpy(datasets.to_float(xte_u8[:2000])), torch.from_numpy(yte[:2000].astype(np.int64))
    rows = []
    for density, scope, epochs in ((float(d), sc, float(n)) for d in args.densities.split(",")
                                   for n in args.epochs.split(",") for sc in ("layer", "kernel")):
        model = rm.torch_model()
        model.load_state_dict({k: torch.from_numpy(v) for k, v in rm.load_dense_weights().items()})
        spec = to_spectral(model, 8)
        masks = magnitude_prune_model(spec, density, scope)
        nnz = np.concatenate([np.asarray(m).reshape(-1, np.asarray(m).shape[-2] * np.asarray(m).shape[-1]).sum(1)
                              for m in masks.values()])
        pruned = _acc(spec, xev, yev)
        t0 = time.time()
        masked_retrain(spec, xtr, ytr, epochs, 1e-3, 128, 1)
        row = {"density": density, "scope": scope, "magnitude_only": pruned, "retrained": _acc(spec, xev, yev),
               "retrain_epochs": epochs, "retrain_s": time.time() - t0,
               "nnz_per_kernel_min_mean_max": [int(nnz.min()), float(nnz.mean()), int(nnz.max())]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps({"machine": f"{os.cpu_count()} CPU cores shared (1 torch thread)",
                               "load_average": os.getloadavg(), "eval_images": 2000, "rows": rows}, indent=1))
    os.replace(tmp, OUT)


if __name__ == "__main__":
    main()
