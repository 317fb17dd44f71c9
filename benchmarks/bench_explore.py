"""Design-space exploration on Dask: scaling with workers, resume after a kill, screening.

    python benchmarks/bench_explore.py scaling [--reps 2] [--model vgg16_cifar|fmnist_vgg] [--sessions]
                                                              # points/s, 1 vs 2 worker processes
    python benchmarks/bench_explore.py resume                 # cost of a resume after a kill mid-sweep
    python benchmarks/bench_explore.py vgg16 [--devices u200,zcu102 --pes 4,8 --densities 0.125,0.25]
                                                              # 200-point VGG16 space (default), screened vs not

Every section starts its LocalClusters before timing (start-up is reported apart), warms each
worker (imports, numba compilation) on a throwaway point, and uses a fresh schedule cache per
timed run (the kernels are pre-computed once and copied in: both sides pay the same).  Results
go to ``benchmarks/results/explore.json`` (merged by section) with ``uptime``'s load average
before and after each section: the machine is shared, so the ratios are what to read.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "explore.json"

SCALING_SPACE = {"models": ["fmnist_vgg"], "devices": ["u200", "zcu102", "vcu118"], "density": [0.25],
                 "design": {"pes": [8, 16], "banks": [10, 20], "ports": [1, 2]},
                 "objectives": ["latency", "dsp", "bram"]}
#: scaling: independent points (every design distinct: no schedule shared between points)
SCALING_SPACES = {
    "fmnist_vgg": {**SCALING_SPACE, "devices": ["u200"], "design": {"pes": [4, 8, 12, 16, 24, 32],
                                                                     "banks": [5, 8, 10, 20], "ports": [1, 2]}},
    "vgg16_cifar": {**SCALING_SPACE, "models": ["vgg16_cifar"], "devices": ["u200"],
                    "design": {"pes": [16, 32], "banks": [10, 20], "ports": [1, 2]}},
}
VGG16_DEVICES = ["u200", "u250", "vcu118", "vc709", "zcu102"]
VGG16_DENSITIES = [0.1, 0.15, 0.2, 0.25, 0.3]
VGG16_PES = [4, 8]


def vgg16_space(devices, pes=VGG16_PES, densities=VGG16_DENSITIES, latency_max_seconds: float = 0.015) -> dict:
    """What a user choosing a board for VGG16 explores: 5 devices x 5 densities (kept fraction of
    the spectral kernels, 10-30 %) x P 4/8 (the synthesized PE-array sizes) x B 10/20 x R 1/2, A = fit
    (as many arrays as the device holds) = 200 points; latency at most ``latency_max_seconds``.
    A point that differs only in the device computes no schedule again (the disk cache is keyed by
    the mask, P, B, R and the cout block, no device figure): 40 schedule sets serve 200 points."""
    return {"models": ["vgg16"], "devices": list(devices), "density": list(densities),
            "design": {"arrays": ["fit"], "pes": list(pes), "banks": [10, 20], "ports": [1, 2]},
            "objectives": ["latency", "dsp", "bram"], "constraints": {"latency": {"max": latency_max_seconds}}}


def _load() -> str:
    return os.getloadavg().__repr__()


def _warm(model: str = "fmnist_vgg") -> bool:
    """Run on every worker: import and compile what a point uses, on a tiny throwaway design."""
    from flexspec.accel.arch import AcceleratorConfig
    from flexspec.explore import adapter

    net = adapter.network_of("fmnist_vgg")
    masks, _, _, _ = adapter.kernels_of(net, 8, 0.25, 0, "layer")
    adapter.simulate(net, adapter.device_of("u200"), AcceleratorConfig(arrays=2, pes=4, banks=5), masks,
                     adapter.DiskScheduleCache(None))
    return True


class _Cluster:
    """A LocalCluster (``sessions=False``: every process in this benchmark's session), or a
    ``dask scheduler`` and one ``dask worker`` per worker, each started in its own session
    (``setsid``) on 127.0.0.1, as separately launched workers are."""

    def __init__(self, workers: int, sessions: bool = False):
        from distributed import Client, LocalCluster

        t0 = time.perf_counter()
        self.procs = []
        self.cluster = None
        if sessions:
            self._tmp = tempfile.mkdtemp()
            sched = Path(self._tmp) / "scheduler.json"
            self.procs.append(subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                                                "--port", "0", "--no-dashboard", "--scheduler-file", str(sched)],
                                               start_new_session=True, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL))
            for _ in range(600):
                if sched.exists() and sched.stat().st_size:
                    break
                time.sleep(0.1)
            self.address = json.loads(sched.read_text())["address"]
            for _ in range(workers):
                self.procs.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", self.address,
                                                    "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1",
                                                    "--no-dashboard"], start_new_session=True,
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.client = Client(self.address, timeout="60s")
            self.client.wait_for_workers(workers, timeout=300)
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                        dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
            self.address = self.cluster.scheduler_address
        self.client.run(_warm)
        self.start_seconds = time.perf_counter() - t0

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        for p in reversed(self.procs):  # the processes this benchmark started
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def _busy(seconds: float, own_session: bool, queue) -> None:
    if own_session:
        os.setsid()
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        pass
    queue.put(time.process_time() - c0)


def machine_cores(n: int, own_session: bool, seconds: float = 6.0) -> float:
    """Control experiment: CPU cores that ``n`` busy-looping processes obtain right now."""
    import multiprocessing as mp

    q = mp.Queue()
    ps = [mp.Process(target=_busy, args=(seconds, own_session, q)) for _ in range(n)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    return sum(q.get() for _ in range(n)) / seconds


def _prewarm_kernels(space: dict, cache: Path) -> None:
    """Compute the space's kernels once into ``cache/kernels`` (both timed sides copy them)."""
    from flexspec.explore import load_space
    from flexspec.explore import adapter
    from flexspec.explore.cache import Store

    sp = load_space(space)
    store = Store(cache)
    for model, n, dens, seed, scope in {p.kernel_axes for p in sp.points()}:
        adapter.kernels_of(sp.networks[model], n, dens, seed, scope, store)


def _fresh_cache(tmp: Path, kernels: Path, name: str) -> Path:
    c = tmp / name
    shutil.copytree(kernels / "kernels", c / "kernels")
    return c


def scaling(reps: int, model: str, sessions: bool) -> dict:
    from flexspec.explore import explore

    space = SCALING_SPACES[model]
    out = {"space": space, "load_before": _load(), "runs": [], "workers_in_own_sessions": sessions,
           "control_busy_loop_cores": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _prewarm_kernels(space, tmp / "k")
        clusters = {w: _Cluster(w, sessions) for w in (1, 2)}
        out["cluster_start_seconds"] = {w: c.start_seconds for w, c in clusters.items()}
        try:
            for rep in range(reps):
                for w in (1, 2):
                    cache = _fresh_cache(tmp, tmp / "k", f"c{rep}-{w}")
                    cpu0 = sum(clusters[w].client.run(time.process_time).values())
                    t0 = time.perf_counter()
                    res = explore(space, tmp / f"o{rep}-{w}", scheduler=clusters[w].address, screen=False,
                                  cache_dir=cache, progress=False, write_outputs=False)
                    wall = time.perf_counter() - t0
                    cpu = sum(clusters[w].client.run(time.process_time).values()) - cpu0
                    n = res.counts["computed_now"]
                    out["runs"].append({"workers": w, "rep": rep, "points": n, "wall_seconds": wall,
                                        "points_per_second": n / wall, "worker_cpu_seconds": cpu,
                                        "cores_obtained": cpu / wall, "load": _load()})
                    print(f"scaling: {w} worker(s), rep {rep}: {n} points in {wall:.1f} s = {n / wall:.3f} points/s; "
                          f"workers used {cpu:.1f} CPU s = {cpu / wall:.2f} cores (load {_load()})", flush=True)
                for w in (1, 2):
                    out["control_busy_loop_cores"].setdefault(w, []).append(machine_cores(w, sessions))
        finally:
            for c in clusters.values():
                c.close()
    ctl = {w: statistics.median(v) for w, v in out["control_busy_loop_cores"].items()}
    out["control_ratio_2_over_1"] = ctl[2] / ctl[1]
    print(f"scaling: control, busy loops {'each in its own session' if sessions else 'in this session'}: "
          f"{ctl[1]:.2f} vs {ctl[2]:.2f} cores = {ctl[2] / ctl[1]:.2f}x", flush=True)
    pps = {w: statistics.median(r["points_per_second"] for r in out["runs"] if r["workers"] == w) for w in (1, 2)}
    out["median_points_per_second"] = pps
    out["speedup_2_over_1"] = pps[2] / pps[1]
    out["load_after"] = _load()
    print(f"scaling: 2 workers / 1 worker = {out['speedup_2_over_1']:.2f}x (target >= 1.7x)")
    return out


def _sched(rows, run_id) -> list:
    """[schedule cache misses, hits] summed over the points ``run_id`` simulated."""
    own = [r for r in rows if r.get("run_id") == run_id and r["status"] in ("ok", "failed")]
    return [sum(r["schedule_cache_misses"] or 0 for r in own), sum(r["schedule_cache_hits"] or 0 for r in own)]


def resume() -> dict:
    """A full run, then the same run killed (SIGKILL of the whole exploring process group) about half
    way and resumed: wall time of the resume and points it computed."""
    from flexspec.explore import explore, read_rows

    out = {"space": SCALING_SPACE, "load_before": _load()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _prewarm_kernels(SCALING_SPACE, tmp / "k")
        cl = _Cluster(2)
        try:
            cache = _fresh_cache(tmp, tmp / "k", "full")
            t0 = time.perf_counter()
            full = explore(SCALING_SPACE, tmp / "full", scheduler=cl.address, screen=False, cache_dir=cache,
                           progress=False)
            out["full_seconds"] = time.perf_counter() - t0
            total = full.counts["computed_now"]
            space = tmp / "space.json"
            space.write_text(json.dumps(SCALING_SPACE))  # JSON is YAML
            cache = _fresh_cache(tmp, tmp / "k", "killed")
            env = {**os.environ}
            proc = subprocess.Popen([sys.executable, "-m", "flexspec.cli", "explore", str(space), "--out",
                                     str(tmp / "killed"), "--scheduler", cl.address, "--cache", str(cache), "--quiet",
                                     "--no-screen"], env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            for _ in range(6000):  # at most 10 minutes
                if (tmp / "killed" / "points.csv").exists() and len(read_rows(tmp / "killed")) >= total // 2:
                    break
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kept = len(read_rows(tmp / "killed"))
            cl.client.cancel(list(cl.client.futures))  # tasks of the dead client
            t0 = time.perf_counter()
            res = explore(SCALING_SPACE, tmp / "killed", scheduler=cl.address, screen=False, cache_dir=cache,
                          progress=False)
            out.update({"points": total, "kept_after_kill": kept, "resume_seconds": time.perf_counter() - t0,
                        "resume_computed": res.counts["computed_now"],
                        # schedules computed (misses) and reused (hits) by each run's points: the resumed
                        # points reuse what the killed run's points stored (schedules are shared across devices)
                        "full_schedule_misses_hits": _sched(full.rows, full.run_id),
                        "resume_schedule_misses_hits": _sched(res.rows, res.run_id),
                        "rows_after_resume": len(read_rows(tmp / "killed")),
                        "unique_after_resume": len({r["point_id"] for r in read_rows(tmp / "killed")})})
        finally:
            cl.close()
    out["load_after"] = _load()
    print(f"resume: full run {out['full_seconds']:.1f} s for {total} points; killed after {out['kept_after_kill']}; "
          f"resume computed {out['resume_computed']} in {out['resume_seconds']:.1f} s; rows "
          f"{out['rows_after_resume']} ({out['unique_after_resume']} distinct); schedules computed / reused: full "
          f"{out['full_schedule_misses_hits']}, resume {out['resume_schedule_misses_hits']}")
    return out


def _save(key: str, result: dict) -> None:
    """Merge ``result`` under ``key`` into the results file (at once: a side that finished is kept
    even if the next one is stopped)."""
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[key] = {**result, "cpu_count": os.cpu_count()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=1, default=str))


def _vgg16_key(space: dict, all_first: bool, tag: str = "") -> str:
    from flexspec.explore import load_space

    return f"vgg16_{len(load_space(space).points())}_points" + ("_all_first" if all_first else "") + (
        f"_{tag}" if tag else "")


def vgg16(devices, pes, densities, all_first: bool = False, tag: str = "") -> dict:
    from flexspec.explore import explore

    space = vgg16_space(devices, pes, densities)
    key = _vgg16_key(space, all_first, tag)
    order = (False, True) if all_first else (True, False)
    out = {"space": space, "load_before": _load(), "order": ["screened" if s else "all" for s in order]}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        _prewarm_kernels(space, tmp / "k")
        out["kernel_seconds"] = time.perf_counter() - t0
        cl = _Cluster(2)
        out["cluster_start_seconds"] = cl.start_seconds
        runs = {}
        try:
            for screen in order:
                cache = _fresh_cache(tmp, tmp / "k", f"c{screen}")
                cpu0 = sum(cl.client.run(time.process_time).values())
                load0 = _load()
                t0 = time.perf_counter()
                res = explore(space, tmp / f"o{screen}", scheduler=cl.address, screen=screen, cache_dir=cache,
                              progress=lambda ev: None, write_outputs=False)
                wall = time.perf_counter() - t0
                cpu = sum(cl.client.run(time.process_time).values()) - cpu0
                runs[screen] = res
                sim = [r for r in res.rows if r["status"] in ("ok", "failed") and r.get("run_id") == res.run_id]
                side = out["screened" if screen else "all"] = {
                    "wall_seconds": wall, "points": res.counts["points"], "simulated": res.counts["ok"]
                    + res.counts["failed"], "failed": res.counts["failed"], "pruned": res.counts["pruned"],
                    "does_not_fit": res.counts["does-not-fit"] + res.counts["invalid"], "front": len(res.front),
                    "worker_cpu_seconds": cpu, "load_before": load0, "load": _load(),
                    "simulate_seconds_sum": sum(r["simulate_seconds"] or 0 for r in sim),
                    "schedule_cache_hits": sum(r["schedule_cache_hits"] or 0 for r in sim),
                    "schedule_cache_misses": sum(r["schedule_cache_misses"] or 0 for r in sim),
                    "schedules_stored": len(list((cache / "schedules").glob("*.npz")))}
                print(f"vgg16 screen={screen}: {side}", flush=True)
                _save(key + "_partial", out)
        finally:
            cl.close()
    fkey = ("device", "density_requested_fraction", "pes", "banks", "ports")
    fronts = [sorted(tuple(r[k] for k in fkey) for r in runs[s].front) for s in (True, False)]
    out["identical_front"] = fronts[0] == fronts[1]
    out["front"] = [dict(zip(fkey, f, strict=True)) for f in fronts[1]]
    out["best_per_device"] = {d: {k: r[k] for k in (*fkey, "arrays", "latency_seconds", "dsp_used_count")}
                              for d, r in runs[False].best.items()}
    out["load_after"] = _load()
    print(f"vgg16: identical front {out['identical_front']}; screened {out['screened']['wall_seconds']:.0f} s vs all "
          f"{out['all']['wall_seconds']:.0f} s")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("section", choices=("scaling", "resume", "vgg16"))
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--model", default="vgg16_cifar", choices=sorted(SCALING_SPACES), help="scaling: the space")
    ap.add_argument("--sessions", action="store_true",
                    help="scaling: separately started dask workers, each in its own session (default: LocalCluster)")
    ap.add_argument("--devices", default=",".join(VGG16_DEVICES), help="VGG16 section: comma-separated devices")
    ap.add_argument("--pes", default=",".join(map(str, VGG16_PES)), help="VGG16 section: comma-separated PEs per array")
    ap.add_argument("--densities", default=",".join(map(str, VGG16_DENSITIES)),
                    help="VGG16 section: comma-separated densities")
    ap.add_argument("--all-first", action="store_true", help="VGG16 section: run the unscreened side first")
    ap.add_argument("--tag", default="", help="VGG16 and resume sections: suffix of the results key (keeps earlier runs)")
    args = ap.parse_args(argv)
    if args.section == "scaling":
        result = scaling(args.reps, args.model, args.sessions)
    elif args.section == "resume":
        result = resume()
    else:
        result = vgg16(args.devices.split(","), [int(p) for p in args.pes.split(",")],
                       [float(d) for d in args.densities.split(",")], args.all_first, args.tag)
    key = {"scaling": f"scaling_{args.model}" + ("_own_sessions" if args.sessions else "_localcluster"),
           "vgg16": _vgg16_key(result["space"], args.all_first, args.tag) if args.section == "vgg16" else ""
           }.get(args.section, args.section + (f"_{args.tag}" if args.tag else ""))
    _save(key, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
