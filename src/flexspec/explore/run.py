"""``explore(space, out)``: run a design-space exploration on Dask, resumably, with screening.

1. Load ``DIR/points.csv`` (:mod:`.journal`): points already there are not computed again.
2. Screening: one Dask task per kernel set (:func:`.tasks.screen_group`) gives every new point
   its design, exact resources and closed-form lower bounds; impossible or oversized designs
   are final rows.
3. Exact phase: the candidates, most promising first, go to the workers (at most two per worker
   in flight).  Before a candidate is sent, it is pruned when the exact results so far dominate
   its optimistic vector (:mod:`.pareto`) or its bounds already break a constraint; with
   ``screen=False`` every candidate is simulated.
4. Each finished point is appended to the journal at once.  At the end: the front, the best
   design of each device, ``points.parquet``, ``front.csv``, ``front.html``, ``summary.json``.

Execution: a LocalCluster on this machine (one single-threaded worker process per core, on the
loopback interface), or an existing cluster (``scheduler='tcp://host:port'``), with the same code.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path

import numpy as np

from ..errors import FlexSpecError, UsageError
from ..fileio import OutputError, check_output_folder
from . import adapter
from .cache import code_fingerprint, default_cache_dir
from .journal import Journal
from .output import write_outputs as write_output_files
from .pareto import Front, feasible, pareto_front, vector, violated_for_sure
from .space import Space, load_space
from .tasks import evaluate_point, screen_group

#: seconds to wait for a Dask scheduler given by address before giving up
CONNECT_TIMEOUT_SECONDS = 5
#: candidates in flight per worker in the exact phase when screening (enough to keep each busy,
#: few enough that screening sees most results before it decides); without screening, all at once
IN_FLIGHT_PER_WORKER = 3
_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+$|^[A-Za-z0-9_.\-\[\]:]+:\d+$")


@dataclass
class ExploreResult:
    folder: Path
    space: Space
    rows: list  # one per point of the space (and its invalid combinations), in the space's order
    front: list
    best: dict  # device -> row of the fastest feasible design on the front
    counts: dict
    seconds: float
    run_id: str
    lost: list = field(default_factory=list)  # point ids lost to cluster failures (rerun to retry)
    lost_reason: str = ""  # the first such failure


# --------------------------------------------------------------------------------- cluster --
@contextmanager
def connect(scheduler: str | None = None, workers: int | None = None):
    """(client, number of workers): an existing cluster at ``scheduler``, or a LocalCluster of
    ``workers`` single-threaded processes (default: one per core) on 127.0.0.1."""
    try:
        from distributed import Client, LocalCluster  # optional dependency (the 'explore' extra)
    except ImportError:
        raise UsageError("flexspec explore needs Dask: pip install 'flexspec[explore]' (dask[distributed], "
                         "pyarrow)") from None
    cluster = None
    if scheduler:
        if not _ADDRESS.match(scheduler):
            raise UsageError(f"--scheduler '{scheduler}' is not a scheduler address; give e.g. tcp://127.0.0.1:8786")
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_SECONDS}s")
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT_SECONDS} s "
                             f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); is it running?") \
                from None
    else:
        n = workers if workers is not None else (os.cpu_count() or 1)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UsageError(f"--workers must be a positive integer, got {n!r}")
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        yield client
    finally:
        try:
            client.close(timeout=10)
        finally:
            if cluster is not None:
                cluster.close(timeout=10)


def _n_workers(client) -> int:
    try:
        return max(1, len(client.scheduler_info()["workers"]))
    except Exception:  # noqa: BLE001
        return 1


# -------------------------------------------------------------------------------- progress --
class _Progress:
    """done / failed / pruned and the time left; rich bar on a terminal, lines otherwise, a
    callable ``f(event: dict)`` from the Python API, or nothing."""

    def __init__(self, progress, total: int, reused: int):
        self.callback = progress if callable(progress) else None
        self.enabled = bool(progress)
        self.total, self.reused = total, reused
        self.counts = {"ok": 0, "failed": 0, "pruned": 0, "does-not-fit": 0, "invalid": 0}
        self.t0 = time.perf_counter()
        self.bar = None
        self._next_line = 0.0
        if self.enabled and self.callback is None and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.bar = Progress(TextColumn("explore"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("ok {task.fields[ok]}  failed {task.fields[failed]}  pruned "
                                           "{task.fields[pruned]}  no-fit {task.fields[nofit]}"),
                                TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                                console=Console(stderr=True))
            self.task = self.bar.add_task("points", total=total, ok=0, failed=0, pruned=0, nofit=0)
            self.bar.start()

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def step(self, row: dict) -> None:
        st = row["status"]
        self.counts[st] = self.counts.get(st, 0) + 1
        if not self.enabled:
            return
        if self.callback is not None:
            self.callback({"done": self.done, "total": self.total, **self.counts, "row": row})
        elif self.bar is not None:
            self.bar.update(self.task, completed=self.done, ok=self.counts["ok"], failed=self.counts["failed"],
                            pruned=self.counts["pruned"], nofit=self.counts["does-not-fit"] + self.counts["invalid"])
        else:
            now = time.perf_counter()
            if now >= self._next_line or self.done == self.total:
                self._next_line = now + 5.0
                el = now - self.t0
                left = el / self.done * (self.total - self.done) if self.done else math.nan
                print(f"flexspec: explore {self.done}/{self.total} points: ok {self.counts['ok']}, failed "
                      f"{self.counts['failed']}, pruned {self.counts['pruned']}, does not fit "
                      f"{self.counts['does-not-fit'] + self.counts['invalid']}; {el:.0f} s, about {left:.0f} s left",
                      file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


# --------------------------------------------------------------------------------- explore --
def _check_out(out) -> Path:
    """The output folder, checked (it is, or can become, a writable folder); creates nothing."""
    try:
        return check_output_folder(out)
    except OutputError as exc:
        raise UsageError(str(exc)) from None


def _prepare_out(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output folder '{folder}': {exc.strerror or exc}; choose another --out") \
            from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write in '{folder}' (permission denied); choose another --out")
    return folder


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def explore(space, out, *, scheduler: str | None = None, workers: int | None = None, screen: bool = True,
            cache_dir=None, progress=True, retry_failed: bool = False, networks: dict | None = None,
            write_outputs: bool = True) -> ExploreResult:
    """Explore ``space`` (a SPACE.yaml path, a dict, or a :class:`Space`) into the folder ``out``.

    ``scheduler``: address of an existing Dask scheduler (default: a LocalCluster of ``workers``
    processes, one per core).  ``screen``: prune, before simulating, the points the closed-form
    bounds prove off the front.  ``cache_dir``: the kernel/schedule cache (default
    :func:`~flexspec.explore.cache.default_cache_dir`, None when that is off; False: no cache).  ``progress``:
    True, False or a callable ``f(event)``.  ``retry_failed``: compute again the points recorded as
    failed.  Rerunning the same call resumes: only points missing from ``out/points.csv`` are
    computed."""
    t0 = time.perf_counter()
    sp = space if isinstance(space, Space) else load_space(space, networks=networks)
    folder = _check_out(out)
    root = None if cache_dir is False else (cache_dir or default_cache_dir())
    cache = None if root is None else str(Path(root).expanduser())
    run_id = uuid.uuid4().hex[:12]
    signature = sp.signature()
    code = code_fingerprint()
    points = sp.points()
    with ExitStack() as stack:
        # a scheduler given by address is reached first: if it cannot be, nothing is touched
        client = stack.enter_context(connect(scheduler, workers)) if scheduler else None
        journal = stack.enter_context(Journal(_prepare_out(folder)))
        prior = journal.rows

        def needs(pid: str) -> bool:
            r = prior.get(pid)
            if r is None:
                return True
            if r["status"] == "failed" and retry_failed:
                return True
            return r["status"] == "pruned" and r.get("screen_signature") != signature

        todo = [p for p in points if needs(p.point_id)]
        invalid_rows = [{"point_id": p.point_id, "status": "invalid", "error": why, "model": p.model,
                         "device": p.device, "fft_size": p.fft_size, "density_requested_fraction": p.density,
                         "prune_scope": p.prune_scope, "seed": p.seed, "arrays_requested": str(p.arrays), "pes": p.pes,
                         "banks": p.banks, "ports": p.ports, "broadcast": p.broadcast}
                        for p, why in sp.invalid if p.point_id not in prior]
        total = len(todo) + len(invalid_rows)
        bar = _Progress(progress, total, len(points) - len(todo))
        lost: list[str] = []
        lost_reason: list[str] = []

        def record(row: dict) -> None:
            row = {**row, "run_id": run_id, "finished_utc": _now(), "code_fingerprint": code,
                   "flexspec_version": adapter.version()}
            if row["point_id"] in prior and prior[row["point_id"]]["status"] in ("failed", "pruned"):
                prior.pop(row["point_id"])  # a retried / re-screened point: its new row replaces the old
            journal.append(row)
            bar.step(row)

        try:
            for row in invalid_rows:
                record(row)
            if todo:
                if client is None:
                    client = stack.enter_context(connect(None, workers))
                _run(client, sp, todo, journal, record, screen, cache, signature, lost, lost_reason)
        finally:
            bar.close()
        if write_outputs:
            journal.write_parquet()
        all_rows = dict(journal.rows)
    ordered = [all_rows[p.point_id] for p, _ in sp.invalid if p.point_id in all_rows]
    ordered += [all_rows[p.point_id] for p in points if p.point_id in all_rows]
    front = pareto_front(ordered, sp.objectives, sp.constraints)
    best = best_per_device(ordered, sp.constraints)
    counts = {s: sum(r["status"] == s for r in ordered) for s in ("ok", "failed", "pruned", "does-not-fit",
                                                                  "invalid")}
    counts.update({"points": len(points) + len(sp.invalid), "computed_now": sum(r.get("run_id") == run_id
                                                                                 for r in ordered),
                   "simulated_now": sum(r.get("run_id") == run_id and r["status"] in ("ok", "failed")
                                        and r.get("cycles_lower_bound") is not None for r in ordered),
                   "reused": sum(r.get("run_id") != run_id for r in ordered), "lost": len(lost),
                   "front": len(front),
                   "feasible": sum(r["status"] == "ok" and feasible(r, sp.constraints) for r in ordered)})
    result = ExploreResult(folder, sp, ordered, front, best, counts, time.perf_counter() - t0, run_id, lost,
                           " ".join(lost_reason[0].split())[:300] if lost_reason else "")
    if write_outputs:
        write_output_files(result)
    return result


def _order(rows: list[dict], objectives) -> list[dict]:
    """Most promising first: the sum of the optimistic objectives, each scaled to [0, 1]."""
    if not rows:
        return rows
    v = np.array([vector(r, objectives, optimistic=True) for r in rows])
    v = np.where(np.isfinite(v), v, np.nan)
    lo, hi = np.nanmin(v, axis=0), np.nanmax(v, axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    score = np.nansum((v - lo) / span, axis=1)
    return [rows[k] for k in np.argsort(score, kind="stable")]


def _run(client, sp: Space, todo, journal, record, screen: bool, cache, signature: str, lost: list,
         lost_reason: list) -> None:
    from distributed import as_completed  # optional dependency

    groups: dict = {}
    for p in todo:
        groups.setdefault(p.kernel_axes, []).append(p)
    need_acc = "accuracy" in sp.objectives or "accuracy" in sp.constraints
    # screening tasks of at most `chunk` points: a large kernel set is screened by every worker (the
    # kernels are computed once per machine under the cache's lock, then read)
    chunk = max(1, math.ceil(len(todo) / (2 * _n_workers(client))))
    specs = []
    for (model, n, dens, seed, scope), all_pts in groups.items():
        for lo in range(0, len(all_pts), chunk):
            pts = all_pts[lo:lo + chunk]
            specs.append({"network": sp.networks[model], "model": model, "fft_size": n, "density": dens,
                          "seed": seed, "prune_scope": scope, "cache_dir": cache, "accuracy": need_acc,
                          "devices": {p.device: sp.devices[p.device] for p in pts},
                          "device_labels": {p.device: adapter.device_label(sp.devices[p.device]) for p in pts},
                          "points": [{"point_id": p.point_id, "device": p.device, "arrays": p.arrays,
                                      "pes": p.pes, "banks": p.banks, "ports": p.ports,
                                      "broadcast": p.broadcast} for p in pts]})
    futures = client.map(screen_group, specs, pure=False)
    candidates = []
    for fut in as_completed(futures):
        try:
            rows = fut.result()
        except (FlexSpecError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - a cluster failure (e.g. the worker died thrice): rerun retries
            spec = specs[futures.index(fut)]
            lost.extend(p["point_id"] for p in spec["points"])
            lost_reason.append(f"{exc.__class__.__name__}: {exc}")
            continue
        for row in rows:
            if row["status"] == "screened":
                candidates.append(row)
            else:
                record(row)
    # one running front per device: a point is pruned only by a design of its own device, so each
    # device's front (and its best design) is exact, and so is the global front (a part of theirs)
    fronts = {d: Front(sp.objectives, sp.constraints) for d in sp.devices}
    space_ids = {p.point_id for p in sp.points()}  # the folder may hold rows of other spaces: not those
    for r in journal.rows.values():
        if r.get("status") == "ok" and r["point_id"] in space_ids:
            fronts[r["device"]].add(r)
    queue = _order(candidates, sp.objectives)
    capacity = IN_FLIGHT_PER_WORKER * _n_workers(client) if screen else len(queue)
    pending = as_completed()
    in_flight: dict = {}
    k = 0
    while k < len(queue) or in_flight:
        while k < len(queue) and len(in_flight) < capacity:
            row = queue[k]
            k += 1
            if screen:
                why = violated_for_sure(row, sp.constraints)
                by = "constraint: " + why if why else \
                    fronts[row["device"]].dominator(vector(row, sp.objectives, optimistic=True))
                if by is not None:
                    out = {**row, "status": "pruned", "pruned_by": by, "screen_signature": signature}
                    out.pop("config", None)
                    record(out)
                    continue
            task = {"row": row, "config": row["config"], "network": sp.networks[row["model"]],
                    "device": sp.devices[row["device"]], "cache_dir": cache}
            fut = client.submit(evaluate_point, task, pure=False)
            in_flight[fut.key] = row
            pending.add(fut)
        if not in_flight:
            continue
        fut = next(pending)
        row = in_flight.pop(fut.key)
        try:
            done = fut.result()
        except (FlexSpecError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - lost to the cluster (not the point's fault): rerun retries it
            lost.append(row["point_id"])
            lost_reason.append(f"{exc.__class__.__name__}: {exc}")
            continue
        record(done)
        fronts[done["device"]].add(done)


def best_per_device(rows: list[dict], constraints: dict) -> dict:
    """device -> its fastest simulated design that meets the constraints (ties: fewer DSPs)."""
    best: dict = {}
    for r in rows:
        if r.get("status") != "ok" or not feasible(r, constraints):
            continue
        key = (r.get("latency_seconds") or math.inf, r.get("dsp_used_count") or 0)
        cur = best.get(r["device"])
        if cur is None or key < (cur.get("latency_seconds") or math.inf, cur.get("dsp_used_count") or 0):
            best[r["device"]] = r
    return best
