"""``flexspec explore SPACE.yaml --out DIR``: a design-space exploration on Dask."""

from __future__ import annotations

import os
import sys

from .output import print_result
from .run import explore

DEFAULT_OUT = "explore-out"


def register(sub) -> None:
    p = sub.add_parser(
        "explore", help="explore models x devices x designs on Dask (resumable, screened), print the Pareto front",
        description="Evaluate every point of SPACE.yaml (axes, objectives, constraints; see README 'Design-space "
                    "exploration'): closed-form screening first, then exact simulation of the points that can "
                    "still be on the Pareto front, on a Dask cluster (default: one worker process per core on this "
                    "machine). Each finished point is appended to DIR/points.csv at once; running the same "
                    "command again resumes. Writes DIR/points.csv, points.parquet, front.csv, front.html, "
                    "summary.json.")
    p.add_argument("space", metavar="SPACE.yaml", help="the space: axes, objectives, constraints")
    add_cluster_options(p)
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default: ./{DEFAULT_OUT})")
    p.add_argument("--no-screen", action="store_true",
                   help="simulate every point (no closed-form screening)")
    p.add_argument("--retry-failed", action="store_true", help="compute again the points recorded as failed")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_explore)


def add_cluster_options(p) -> None:
    """--scheduler, --workers, --cache (shared with `flexspec sweep`)."""
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running Dask scheduler (e.g. tcp://10.0.0.5:8786); default: a local cluster")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help=f"worker processes of the local cluster (default: one per core, {os.cpu_count()})")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="kernel and schedule cache shared by the workers of a machine (default: "
                        "$FLEXSPEC_CACHE_DIR/explore or ~/.cache/flexspec/explore; FLEXSPEC_CACHE_DIR=off: none)")


def _explore(args) -> int:
    try:
        res = explore(args.space, args.out, scheduler=args.scheduler, workers=args.workers,
                      screen=not args.no_screen, cache_dir=args.cache, progress=not args.quiet,
                      retry_failed=args.retry_failed)
    except KeyboardInterrupt:
        print(f"flexspec: every finished point is saved in {os.path.join(args.out, 'points.csv')}; run the same "
              f"command to resume", file=sys.stderr)
        raise
    print_result(res)
    print(f"wrote {', '.join(str(res.folder / n) for n in ('points.csv', 'points.parquet', 'front.csv', 'front.html', 'summary.json'))}")
    return 1 if res.counts["lost"] or not res.counts["ok"] else 0
