"""Stage 1 of a shipped model: train fmnist_vgg (or --model fmnist_vgg16) densely (spatial conv2d) to convergence.

Dense training runs spatially with ``nn.Conv2d``: a dense spectral layer computes the same
function (OaA with unpruned spectra is exactly conv2d), so the dense weights do not depend on
which one trains them; only pruning needs the spectral layer.  The net trains with batch
normalization after each conv (folded into the conv afterwards, exact at inference), SGD with
Nesterov momentum, a one-cycle learning-rate schedule, weight decay, and light augmentation
(random horizontal flip, random shift of up to ``--shift`` pixels).

Writes (atomically) src/flexspec/data/<model>_dense.npz (folded spatial weights + metadata),
a checkpoint after every epoch (``--checkpoint``, resumable) and benchmarks/results/<model>_dense.json
(fmnist_dense.json for fmnist_vgg).  Inputs are the 28x28 images zero-padded to the model's input
side (32x32 for fmnist_vgg16); the random shift moves the 28x28 image inside that frame.
Needs the Debian package dataset-fashion-mnist and torch.
Run: nice python benchmarks/fmnist_dense.py --epochs 12
     nice python benchmarks/fmnist_dense.py --model fmnist_vgg16 --epochs 12
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from flexspec import datasets, fileio
from flexspec.spectral import real_model as rm

ROOT = Path(__file__).resolve().parent


evaluate = rm.torch_accuracy


def augment(xpad: torch.Tensor, idx: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """Images idx of the padded set [n, 1, S+2s, S+2s]: an S x S window at a random shift in [-s, s]^2
    and a random horizontal flip per image."""
    n = len(idx)
    side = xpad.shape[-1] - 2 * shift
    oy = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
    ox = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
    ar = torch.arange(side)
    rows = (oy[:, None] + ar[None, :])[:, :, None]
    cols = (ox[:, None] + ar[None, :])[:, None, :]
    x = xpad[idx[:, None, None], 0, rows, cols]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None], x.flip(-1), x)
    return x[:, None]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="fmnist_vgg", choices=sorted(rm.MODELS))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--shift", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint", default=None, help="default benchmarks/results/<model>_dense.ckpt "
                                                          "(fmnist_dense.ckpt for fmnist_vgg)")
    args = ap.parse_args()
    arch = rm.get_arch(args.model)
    stem = "fmnist" if arch.name == rm.NAME else arch.name
    if args.checkpoint is None:
        args.checkpoint = str(ROOT / "results" / f"{stem}_dense.ckpt")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xtr_u8, ytr = datasets.fashion_mnist("train")
    xte_u8, yte = datasets.fashion_mnist("test")
    xtr, xte = torch.from_numpy(arch.prepare(xtr_u8)), torch.from_numpy(arch.prepare(xte_u8))
    ytr, yte = torch.from_numpy(ytr.astype(np.int64)), torch.from_numpy(yte.astype(np.int64))
    xpad = F.pad(xtr, (args.shift,) * 4)

    model = rm.torch_model(batch_norm=True, arch=arch)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.wd)
    steps_per_epoch = len(xtr) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch,
                                                pct_start=0.25)
    gen = torch.Generator().manual_seed(args.seed)
    log = {"args": vars(args), "epochs": []}
    start_epoch, train_s = 0, 0.0
    ckpt = Path(args.checkpoint)
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        if state["args"] != vars(args):
            raise SystemExit(f"{ckpt} was written with other arguments {state['args']}; remove it or match them")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        start_epoch, train_s, log = state["epoch"], state["train_s"], state["log"]
        print(f"resuming after epoch {start_epoch}", flush=True)
    for epoch in range(start_epoch, args.epochs):
        t0 = time.time()
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for step in range(steps_per_epoch):
            idx = perm[step * args.batch:(step + 1) * args.batch]
            loss = F.cross_entropy(model(augment(xpad, idx, args.shift, gen)), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        train_s += time.time() - t0
        acc = evaluate(model, xte, yte)
        log["epochs"].append({"epoch": epoch + 1, "train_loss": total / steps_per_epoch, "test_accuracy_10k": acc,
                              "seconds": time.time() - t0})
        print(f"epoch {epoch + 1}: loss {total / steps_per_epoch:.4f} test {acc:.4f} ({time.time() - t0:.0f} s)",
              flush=True)
        buf = io.BytesIO()
        torch.save({"args": vars(args), "model": model.state_dict(), "opt": opt.state_dict(),
                    "sched": sched.state_dict(), "gen": gen.get_state(), "epoch": epoch + 1, "train_s": train_s,
                    "log": log}, buf)
        fileio.write_file(ckpt, buf.getvalue())

    plain = rm.fold_batch_norm(model, arch)
    acc_bn, acc_plain = evaluate(model, xte, yte), evaluate(plain, xte, yte)
    print(f"dense (BN) {acc_bn:.4f}, folded {acc_plain:.4f}", flush=True)
    state = {k: v.detach().numpy().astype(np.float32) for k, v in plain.state_dict().items()}
    fileio.save_npz(arch.dense_file, {**{f"w/{k}": v for k, v in state.items()}, "meta/model": np.array(arch.name),
                                      "meta/test_accuracy": np.float64(acc_plain), "meta/epochs": np.int64(args.epochs),
                                      "meta/seed": np.int64(args.seed), "meta/train_seconds": np.float64(train_s)},
                    compressed=True)
    log.update(test_accuracy_10k=acc_plain, test_accuracy_10k_bn=acc_bn, train_seconds=train_s)
    fileio.write_file(ROOT / "results" / f"{stem}_dense.json", json.dumps(log, indent=1))


if __name__ == "__main__":
    main()
