"""Bank-friendly hardware-aware pruning of fmnist_vgg: accuracy and the scheduler's PE utilization.

Starts from a hardware-aware (per-kernel, ``admm_hw``) pruned fmnist_vgg at ``--density``,
re-projects it with ADMM onto the bank-capped masks (scope ``bank``: equal non-zeros per kernel
and, in each kernel group of P = 16, no bank read more often than a PE works; the bank map is
the scheduler's ``auto`` map of the starting masks, fixed for the run), retrains the kept
values (masked), and measures on the full 10k test set.  For both the starting and the
bank-friendly masks it records, per layer, the PE utilization of the kernel-read schedule
(``flexspec.schedule.schedule_layer``: P = 16, 16 banks x 1 port, no broadcast, as in
``bench_prune_hw.py --design sized``) with the map the projection balanced for and with the
``auto`` map recomputed from the final masks (what the simulator does today).

    nice python benchmarks/bench_prune_bank.py --start /tmp/stage/fmnist_vgg_admm_hw_d0250.npz

Writes benchmarks/results/prune_bank.json (and the pruned kernels to --out when given).
Needs dataset-fashion-mnist and torch.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from flexspec import datasets, fileio
from flexspec.schedule import schedule_layer
from flexspec.spectral import real_model as rm
from flexspec.spectral.admm import AdmmConfig, admm_prune
from flexspec.spectral.sparse import SparseNetworkKernels

ROOT = Path(__file__).resolve().parent
PES, BANKS, PORTS = 16, 16, 1


def utilization(masks: dict, maps: dict | None) -> dict:
    out = {}
    for name, mask in masks.items():
        flat = mask.reshape(mask.shape[0], mask.shape[1], -1)
        out[name] = schedule_layer(flat, PES, BANKS, PORTS, bank_map="auto" if maps is None else maps[name]
                                   ).pe_utilization
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--start", required=True, help="an admm_hw SparseNetworkKernels .npz of fmnist_vgg")
    ap.add_argument("--density", type=float, default=0.25)
    ap.add_argument("--admm-epochs", type=float, default=0.2)
    ap.add_argument("--retrain-epochs", type=float, default=0.5)
    ap.add_argument("--distill", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the bank-friendly pruned kernels here (.npz)")
    ap.add_argument("--checkpoint", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    xtr_u8, ytr = datasets.fashion_mnist("train")
    xte_u8, yte = datasets.fashion_mnist("test")
    xtr, xte = torch.from_numpy(datasets.to_float(xtr_u8)), torch.from_numpy(datasets.to_float(xte_u8))
    ytr, yte = torch.from_numpy(ytr.astype(np.int64)), torch.from_numpy(yte.astype(np.int64))
    start = SparseNetworkKernels.load(args.start)
    start_masks = {n: k.mask().reshape(k.out_channels, k.in_channels, start.fft_size, -1)
                   for n, k in start.layers.items()}
    teacher = rm.torch_model()
    teacher.load_state_dict({k: torch.from_numpy(v) for k, v in rm.load_dense_weights().items()})
    model = rm.spectral_model_from_sparse(start)
    acc_start = rm.torch_accuracy(model, xte, yte)
    cfg = AdmmConfig(density=args.density, scope="bank", pes=PES, banks=BANKS, ports=PORTS,
                     admm_epochs=args.admm_epochs, retrain_epochs=args.retrain_epochs, seed=args.seed,
                     augment_shift=1, augment_flip=True, distill_weight=args.distill)

    def progress(phase, step, steps, loss, acc):
        if step % 50 == 0 or step == steps:
            print(f"  {phase} {step}/{steps} loss {loss:.4f} acc {acc:.3f}", flush=True)

    _, masks, hist = admm_prune(model, xtr, ytr, cfg, progress=progress, checkpoint=args.checkpoint, teacher=teacher)
    acc = rm.torch_accuracy(model, xte, yte)
    maps = hist.bank_maps
    res = {"start": str(args.start), "start_provenance": start.provenance, "args": vars(args),
           "design": {"pes": PES, "banks": BANKS, "ports": PORTS, "broadcast": False},
           "start_test_accuracy_10k": acc_start, "test_accuracy_10k": acc,
           "achieved_density": float(np.mean([m.mean() for m in masks.values()])),
           "pe_utilization_start_auto_map": utilization(start_masks, None),
           "pe_utilization_start_projection_map": utilization(start_masks, maps),
           "pe_utilization_bank_projection_map": utilization(masks, maps),
           "pe_utilization_bank_auto_map": utilization(masks, None),
           "bank_maps": {n: m.tolist() for n, m in maps.items()}, "seconds": time.time() - t0}
    for key in [k for k in res if k.startswith("pe_utilization")]:
        print(f"{key}: " + ", ".join(f"{n} {v:.3f}" for n, v in res[key].items()))
    print(f"10k accuracy: start {acc_start:.4f}, bank-friendly {acc:.4f}", flush=True)
    if args.out:
        net = rm.sparse_network_from_torch(
            model, "admm_hw", args.density,
            start.provenance + f"; + bank-friendly ADMM re-projection (scope bank, P={PES}, {BANKS} banks x {PORTS} "
            f"port, {args.admm_epochs} epoch) + {args.retrain_epochs} epoch masked retraining", True,
            bank_maps=maps, bank_map_banks=BANKS)
        net.save(args.out)
    fileio.write_file(ROOT / "results" / "prune_bank.json", json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
