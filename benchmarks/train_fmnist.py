"""Train fmnist_vgg on Fashion-MNIST, convert to spectral (N=8), prune, measure, and write the shipped files.

Regenerates, deterministically (seeds below; torch CPU, 1 thread by default):
  src/flexspec/data/fmnist_test1000.npz            first 1000 test images (shipped subset)
  src/flexspec/data/fmnist_vgg_dense.npz           trained dense spatial weights + test accuracy
  src/flexspec/data/fmnist_vgg_<method>_dNNNN.npz  SparseNetworkKernels, method in
                                                   {magnitude, magnitude_ft, admm}, density 0.5/0.25/0.125
  benchmarks/results/fmnist_pruning.json           every measured accuracy and time

Needs the Debian package dataset-fashion-mnist (apt-get install -y dataset-fashion-mnist) and torch.
Run: python benchmarks/train_fmnist.py [--epochs 1] [--admm-steps 50] [--retrain-steps 30]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from flexspec import datasets
from flexspec.spectral import real_model as rm
from flexspec.spectral.admm import AdmmConfig, admm_prune, magnitude_prune_model, masked_retrain
from flexspec.spectral.torch_ops import to_spectral

ROOT = Path(__file__).resolve().parent


def evaluate(model, x, y, batch=500) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(x), batch):
            correct += int((model(x[s:s + batch]).argmax(1) == y[s:s + batch]).sum())
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--admm-steps", type=int, default=50)
    ap.add_argument("--retrain-steps", type=int, default=30)
    ap.add_argument("--eval-count", type=int, default=10000, help="test images used for accuracy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-dense", action="store_true",
                    help="reuse the dense weights already in src/flexspec/data instead of training them")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 is several times faster than 2 on a shared 2-core machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t_all = time.time()
    results = {"machine": "2 CPU cores shared with other jobs, torch CPU", "args": vars(args), "runs": []}

    datasets.write_subset()
    xtr_u8, ytr = datasets.fashion_mnist("train")
    xte_u8, yte = datasets.fashion_mnist("test")
    xtr, xte = torch.from_numpy(datasets.to_float(xtr_u8)), torch.from_numpy(datasets.to_float(xte_u8))
    ytr, yte = torch.from_numpy(ytr.astype(np.int64)), torch.from_numpy(yte.astype(np.int64))
    xev, yev = xte[:args.eval_count], yte[:args.eval_count]

    # 1. dense spatial training
    model = rm.torch_model()
    if args.skip_dense:
        model.load_state_dict({k: torch.from_numpy(v) for k, v in rm.load_dense_weights().items()})
        meta = rm.dense_metadata()
        results["dense"] = {"test_accuracy_10k": float(meta["test_accuracy"]), "epochs": int(meta["epochs"]),
                            "train_seconds": float(meta["train_seconds"]), "test_accuracy_eval": evaluate(model, xev, yev)}
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(args.seed)
        t0 = time.time()
        model.train()
        for epoch in range(args.epochs):
            perm = torch.randperm(len(xtr), generator=gen)
            for step, s in enumerate(range(0, len(xtr), 128)):
                idx = perm[s:s + 128]
                opt.zero_grad()
                loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
                loss.backward()
                opt.step()
                if step % 100 == 0:
                    print(f"epoch {epoch} step {step} loss {loss.item():.4f}", flush=True)
        train_s = time.time() - t0
        dense_acc = evaluate(model, xev, yev)
        dense_acc_full = evaluate(model, xte, yte)
        print(f"dense spatial: test accuracy {dense_acc_full:.4f} (train {train_s:.0f} s)", flush=True)
        results["dense"] = {"test_accuracy_10k": dense_acc_full, "test_accuracy_eval": dense_acc,
                            "train_seconds": train_s, "epochs": args.epochs}
        state = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
        tmp = rm.DENSE_FILE.with_name(".dense.tmp.npz")
        np.savez_compressed(tmp, **{f"w/{k}": v for k, v in state.items()},
                            **{"meta/test_accuracy": np.float64(dense_acc_full), "meta/epochs": np.int64(args.epochs),
                               "meta/seed": np.int64(args.seed), "meta/train_seconds": np.float64(train_s)})
        tmp.replace(rm.DENSE_FILE)

    # 2. spectral conversion (dense spectral must equal dense spatial)
    spec = to_spectral(model, 8)
    t0 = time.time()
    spec_acc = evaluate(spec, xev, yev)
    results["dense_spectral"] = {"test_accuracy_eval": spec_acc, "eval_seconds": time.time() - t0}
    print(f"dense spectral: {spec_acc:.4f} ({time.time() - t0:.0f} s eval)", flush=True)

    # 3. pruning
    provenance = (f"trained on Fashion-MNIST (shipped): fmnist_vgg, {args.epochs} epoch(s), seed {args.seed}, "
                  f"benchmarks/train_fmnist.py")
    for density in rm.SHIPPED_DENSITIES:
        # magnitude only
        mag = copy.deepcopy(spec)
        magnitude_prune_model(mag, density)
        acc = evaluate(mag, xev, yev)
        _record(results, "magnitude", density, acc, 0.0, mag, provenance + "; magnitude pruning, no retraining")
        # magnitude + masked retraining (same retraining budget as ADMM)
        t0 = time.time()
        masked_retrain(mag, xtr, ytr, args.retrain_steps, 5e-4, 64, args.seed + 1)
        acc = evaluate(mag, xev, yev)
        _record(results, "magnitude_ft", density, acc, time.time() - t0, mag,
                provenance + f"; magnitude pruning + {args.retrain_steps} masked retraining steps")
        # ADMM + masked retraining
        adm = copy.deepcopy(spec)
        t0 = time.time()
        cfg = AdmmConfig(density=density, admm_steps=args.admm_steps, z_every=5, rho0=1.0, rho_growth=1.3,
                         optimizer="sgd", lr=0.05, retrain_steps=args.retrain_steps, batch_size=64, seed=args.seed)
        _, _, hist = admm_prune(adm, xtr, ytr, cfg, log=lambda s: print("  " + s, flush=True))
        acc = evaluate(adm, xev, yev)
        _record(results, "admm", density, acc, time.time() - t0, adm,
                provenance + f"; ADMM ({args.admm_steps} SGD steps lr 0.05, rho 1 x1.3 every 5) + "
                             f"{args.retrain_steps} masked retraining steps",
                residuals=hist.primal_residual)
    results["total_seconds"] = time.time() - t_all
    out = ROOT / "results" / "fmnist_pruning.json"
    out.write_text(json.dumps(results, indent=1))
    print(json.dumps({r["method"] + f"@{r['density']}": round(r["test_accuracy_eval"], 4)
                      for r in results["runs"]}, indent=1))
    print(f"total {results['total_seconds']:.0f} s")


def _record(results, method, density, acc, seconds, model, provenance, residuals=None):
    net = rm.sparse_network_from_torch(model, method, density, provenance, True)
    net.save(rm.pruned_file(method, density))
    run = {"method": method, "density": density, "achieved_density": net.density, "test_accuracy_eval": acc,
           "seconds": seconds, "sparse_bytes": net.total_bytes()}
    if residuals:
        run["final_primal_residual"] = residuals[-1]
    results["runs"].append(run)
    print(f"{method} @ {density}: accuracy {acc:.4f}, achieved density {net.density:.4f}, {seconds:.0f} s",
          flush=True)


if __name__ == "__main__":
    main()
