"""Stage 2 of a shipped model: prune the trained fmnist_vgg (or --model fmnist_vgg16) in the spectral
domain (N = 8) and measure every variant on the full 10k Fashion-MNIST test set.

Stage 1 (``benchmarks/fmnist_dense.py``) writes the dense weights.  This script converts them to
``SpectralConv2d`` (exact: the dense spectral model equals the spatial one, checked here on the 10k
test set), then for each density in --densities and each method in --methods:

  magnitude      magnitude pruning per layer, no retraining
  magnitude_ft   magnitude pruning per layer + masked retraining (--retrain-epochs)
  admm           ADMM, one threshold per layer (--admm-epochs) + masked retraining
  admm_hw        hardware-aware ADMM: equal non-zeros per kernel (scope "kernel"), same budgets

Budgets are in epochs of the 60k training images (fractions allowed); ADMM at a lower density
starts from the ADMM result at the next higher density when --chain is given (progressive pruning).
Writes src/flexspec/data/<model>_<method>_dNNNN.npz (atomically) and
benchmarks/results/fmnist_pruning_<tag>.json (<model>_pruning_<tag>.json for another model than
fmnist_vgg).  Needs dataset-fashion-mnist and torch.

    nice python benchmarks/train_fmnist.py --methods admm --densities 0.25 0.125 0.5 --chain --tag layer
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from flexspec import datasets, fileio
from flexspec.spectral import real_model as rm
from flexspec.spectral.sparse import SparseNetworkKernels
from flexspec.spectral.admm import AdmmConfig, admm_prune, magnitude_prune_model, masked_retrain
from flexspec.spectral.torch_ops import to_spectral

ROOT = Path(__file__).resolve().parent
METHODS = ("magnitude", "magnitude_ft", "admm", "admm_hw")


evaluate = rm.torch_accuracy


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=rm.NAME, choices=sorted(rm.MODELS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--densities", nargs="+", type=float, default=list(rm.SHIPPED_DENSITIES))
    ap.add_argument("--admm-epochs", type=float, nargs="+", default=[0.5],
                    help="ADMM budget per density (one value, or one per --densities entry)")
    ap.add_argument("--retrain-epochs", type=float, nargs="+", default=[0.3],
                    help="masked retraining budget per density (one value, or one per --densities entry)")
    ap.add_argument("--lr", type=float, default=0.02, help="ADMM W-step SGD learning rate")
    ap.add_argument("--momentum", type=float, default=0.0, help="ADMM W-step SGD momentum")
    ap.add_argument("--retrain-lr", type=float, default=1e-3)
    ap.add_argument("--retrain-optimizer", choices=("adam", "sgd"), default="adam")
    ap.add_argument("--augment-shift", type=int, default=0, help="random shifts of up to this many pixels")
    ap.add_argument("--augment-flip", action="store_true", help="random horizontal flips")
    ap.add_argument("--distill", type=float, default=0.0,
                    help="weight of distillation from the dense model (0: plain cross-entropy)")
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--rho0", type=float, default=0.1)
    ap.add_argument("--rho-max", type=float, default=2.0)
    ap.add_argument("--chain", action="store_true",
                    help="start ADMM at a density from the method's result at the density run just before it, "
                         "when that one was higher (progressive pruning; densities run in the order given)")
    ap.add_argument("--start-from", type=float, default=None,
                    help="start ADMM at the first density from the model of the same method at this (higher) "
                         "density in --save-dir (progressive pruning across runs)")
    ap.add_argument("--more-retrain", type=float, default=None,
                    help="instead of pruning: load each shipped --methods model at --densities and retrain its "
                         "kept values this many more epochs (masked, --retrain-optimizer/--retrain-lr, cosine), then measure and ship it")
    ap.add_argument("--check-dense-spectral", action="store_true",
                    help="also measure the dense spectral model on the 10k test set (it must equal the spatial one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tag", default="all")
    ap.add_argument("--save-dir", default=str(rm.DATA_DIR),
                    help="where the pruned .npz files go (default: the shipped ones in src/flexspec/data)")
    ap.add_argument("--checkpoint-dir", default=None, help="resumable ADMM checkpoints (one file per run)")
    args = ap.parse_args()
    arch = rm.get_arch(args.model)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t_all = time.time()
    xtr_u8, ytr = datasets.fashion_mnist("train")
    xte_u8, yte = datasets.fashion_mnist("test")
    xtr, xte = torch.from_numpy(arch.prepare(xtr_u8)), torch.from_numpy(arch.prepare(xte_u8))
    ytr, yte = torch.from_numpy(ytr.astype(np.int64)), torch.from_numpy(yte.astype(np.int64))

    model = rm.torch_model(arch=arch)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in rm.load_dense_weights(arch=arch).items()})
    meta = rm.dense_metadata(arch=arch)
    spec = to_spectral(model, 8)
    dense_spectral = None
    if args.check_dense_spectral:  # before pruning: a mismatch shows at once, not after hours
        dense_spectral = evaluate(spec, xte, yte)
        print(f"dense spatial {float(meta['test_accuracy']):.4f}, dense spectral {dense_spectral:.4f}", flush=True)
    teacher = model if args.distill > 0 else None  # the dense spatial model (same function as spec, faster)
    recipe = AdmmConfig(z_every=10, rho0=args.rho0, rho_max=args.rho_max, lr=args.lr, momentum=args.momentum,
                        retrain_lr=args.retrain_lr, retrain_optimizer=args.retrain_optimizer, batch_size=128,
                        seed=args.seed, augment_shift=args.augment_shift, augment_flip=args.augment_flip,
                        distill_weight=args.distill, distill_temperature=args.temperature)
    extras = "".join([f", shifts <= {args.augment_shift} px" if args.augment_shift else "",
                      ", random flips" if args.augment_flip else "",
                      f", distillation from the dense model (weight {args.distill}, T {args.temperature})"
                      if args.distill else ""])
    retrain_what = (f"{args.retrain_optimizer.upper() if args.retrain_optimizer == 'sgd' else 'Adam'} "
                    f"{args.retrain_lr:g}, cosine{extras}")
    results = {"machine": "2 CPU cores shared with six other sessions, torch CPU", "args": vars(args),
               "dense": {"test_accuracy_10k": float(meta["test_accuracy"]), "epochs": int(meta["epochs"]),
                         "seed": int(meta["seed"])},
               "runs": []}
    out = ROOT / "results" / f"{'fmnist' if arch.name == rm.NAME else arch.name}_pruning_{args.tag}.json"

    def record(method, density, mod, seconds, provenance, **extra):
        acc = evaluate(mod, xte, yte)
        net = rm.sparse_network_from_torch(mod, method, density, provenance, True, arch=arch)
        net.save(Path(args.save_dir) / arch.pruned_file(method, density).name)
        run = {"method": method, "density": density, "achieved_density": net.density, "test_accuracy_10k": acc,
               "seconds": seconds, "sparse_bytes": net.total_bytes(), **extra}
        results["runs"].append(run)
        print(f"{method} @ {density}: 10k accuracy {acc:.4f} ({seconds:.0f} s)", flush=True)
        results["total_seconds"] = time.time() - t_all
        fileio.write_file(out, json.dumps(results, indent=1))

    base = f"trained on Fashion-MNIST (shipped): {arch.name}, {int(meta['epochs'])} epochs, seed {int(meta['seed'])}"
    def per_density(values, what):
        if len(values) not in (1, len(args.densities)):
            raise SystemExit(f"--{what}: give one value or one per density ({len(args.densities)})")
        return dict(zip(args.densities, values * len(args.densities) if len(values) == 1 else values, strict=True))

    admm_epochs, retrain_epochs = per_density(args.admm_epochs, "admm-epochs"), per_density(args.retrain_epochs,
                                                                                           "retrain-epochs")
    if args.more_retrain is not None:
        for density in args.densities:
            for method in args.methods:
                t0 = time.time()
                old = rm.load_pruned(method, density, arch)
                mod = rm.spectral_model_from_sparse(old)
                masked_retrain(mod, xtr, ytr, args.more_retrain, args.retrain_lr, 128, args.seed + 2, config=recipe,
                               teacher=teacher)
                record(method, density, mod, time.time() - t0,
                       old.provenance + f"; + {args.more_retrain} epoch(s) more masked retraining ({retrain_what})",
                       more_retrain_epochs=args.more_retrain)
        return

    previous = {}
    if args.start_from is not None:
        for method in args.methods:
            if method.startswith("admm"):
                previous[method] = (args.start_from, rm.spectral_model_from_sparse(SparseNetworkKernels.load(
                    Path(args.save_dir) / arch.pruned_file(method, args.start_from).name)))
    for density in args.densities:
        a_ep, r_ep = admm_epochs[density], retrain_epochs[density]
        for method in args.methods:
            t0 = time.time()
            if method in ("magnitude", "magnitude_ft"):
                mod = copy.deepcopy(spec)
                magnitude_prune_model(mod, density)
                if method == "magnitude":
                    record(method, density, mod, 0.0, base + "; magnitude pruning per layer, no retraining")
                    continue
                masked_retrain(mod, xtr, ytr, r_ep, args.retrain_lr, 128, args.seed + 1, config=recipe, teacher=teacher)
                record(method, density, mod, time.time() - t0,
                       base + f"; magnitude pruning per layer + {r_ep} epoch masked retraining ({retrain_what})",
                       retrain_epochs=r_ep)
                continue
            scope = "kernel" if method == "admm_hw" else "layer"
            start = None
            if (args.chain or args.start_from is not None) and method in previous and previous[method][0] > density:
                start = previous[method][1]
            mod = copy.deepcopy(start if start is not None else spec)
            cfg = dataclasses.replace(recipe, density=density, scope=scope, admm_epochs=a_ep, retrain_epochs=r_ep)
            ckpt = (Path(args.checkpoint_dir) / f"{method}_{density}.ckpt") if args.checkpoint_dir else None

            def progress(phase, step, steps, loss, acc, method=method, density=density):
                if step % 100 == 0 or step == steps:
                    print(f"  {method}@{density} {phase} {step}/{steps} loss {loss:.4f} acc {acc:.3f}", flush=True)

            _, _, hist = admm_prune(mod, xtr, ytr, cfg, progress=progress, checkpoint=ckpt, teacher=teacher)
            chained = " (from the previous density's ADMM result)" if start is not None else ""
            record(method, density, mod, time.time() - t0,
                   base + f"; ADMM{chained} scope {scope}, {a_ep} epoch(s) SGD lr {args.lr} momentum "
                   f"{args.momentum}, rho {args.rho0}->{args.rho_max}, + {r_ep} epoch masked retraining "
                   f"({retrain_what}), seed {args.seed}", scope=scope, admm_epochs=a_ep, retrain_epochs=r_ep,
                   final_primal_residual=hist.primal_residual[-1] if hist.primal_residual else None,
                   chained=start is not None)
            previous[method] = (density, mod)
    if dense_spectral is not None:
        results["dense_spectral_10k"] = dense_spectral
        fileio.write_file(out, json.dumps(results, indent=1))
    print(f"total {time.time() - t_all:.0f} s")


if __name__ == "__main__":
    main()
