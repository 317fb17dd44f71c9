"""``flexspec schedule``: schedule the reads of kernel groups given as a mask file."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import InputFileError, UsageError
from .schedulers import check_mask, schedule_groups
from .validate import validate


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "schedule",
        help="schedule sparse kernel reads from banked memory (conflict-free)",
        description=(
            "Schedule the reads of P sparse kernels per group from B banks of R ports. IN.npz holds "
            "'mask', bool [G, P, F] (F = N*(N//2+1), row-major rfft2 half-plane). OUT.npz holds one "
            "entry per read (group, pe, index, cycle), bank_of [F], cycles [G], lower_bound [G]."
        ),
    )
    p.add_argument("--kernels", required=True, metavar="IN.npz", help="npz with 'mask' bool [G, P, F]")
    p.add_argument("--banks", required=True, type=int, metavar="B", help="memory banks (>= 1)")
    p.add_argument("--ports", type=int, default=1, metavar="R", help="read ports per bank (>= 1, default 1)")
    p.add_argument("--broadcast", action="store_true",
                   help="PEs reading the same address in one cycle share one port")
    p.add_argument("--bank-map", choices=("mod", "auto"), default="mod",
                   help="frequency -> bank map: f mod B, or load-balanced over the whole mask (default mod)")
    p.add_argument("--method", choices=("optimal", "greedy", "inorder", "broadcast"), default=None,
                   help="scheduler (default: broadcast with --broadcast, else optimal)")
    p.add_argument("--out", required=True, metavar="OUT.npz", help="schedule file to write")
    p.add_argument("--verify", action="store_true", help="check the schedule with the independent validator")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.banks < 1:
        raise UsageError(f"--banks must be >= 1, got {args.banks}")
    if args.ports < 1:
        raise UsageError(f"--ports must be >= 1, got {args.ports}")
    path = Path(args.kernels)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "mask" not in data.files:
                raise InputFileError(path, "missing (expected bool [G, P, F])", "mask")
            mask = data["mask"]
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - unreadable input is a user error
        raise InputFileError(path, f"not a readable npz file ({exc})") from None
    check_mask(mask, path=path)
    out = Path(args.out)
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise UsageError(f"output folder {out.parent} does not exist")
    sched = schedule_groups(mask, args.banks, args.ports, args.broadcast, args.bank_map, args.method)
    if args.verify:
        validate(sched, mask)
    sched.save(out)
    extra = sched.extra_cycles
    print(
        f"{sched.num_groups} groups x {sched.num_pes} PEs, {sched.nnz} reads, method {sched.method}, "
        f"{sched.banks} banks x {sched.ports} ports{' (broadcast)' if sched.broadcast else ''}: "
        f"{sched.total_cycles} cycles (lower bound {sched.total_lower_bound}, +{extra}), "
        f"PE utilization {100 * sched.pe_utilization:.1f}%"
        + (", verified" if args.verify else "")
        + f" -> {out}"
    )
    return 0
