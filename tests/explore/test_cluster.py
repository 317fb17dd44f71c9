"""Runs on Dask: the command line end to end on a LocalCluster, a scheduler and a worker started
separately (``dask scheduler`` / ``dask worker`` on 127.0.0.1), a worker killed in the middle of
a sweep, resume after a torn write and after Ctrl-C, failing points, the shared cache."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from explore_helpers import SMALL

from flexspec.cli import main
from flexspec.explore import explore, read_rows
from flexspec.workload.layers import ConvLayer, Network

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _env():
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _space_file(tmp_path, data, name="space.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def _ids(folder):
    return [r["point_id"] for r in read_rows(folder)]


def test_cli_end_to_end_and_the_reproduce_commands(cluster, cache, tmp_path, capsys):
    # two read ports: the design `flexspec run` resolves itself on these boards (its estimate, which
    # charges the IFFTs a split keeps busy, prefers them), so the broadcast-off points reproduce by `run`
    space = _space_file(tmp_path, {**SMALL, "design": {"pes": [4, 8], "banks": [20], "ports": [2],
                                                       "broadcast": [False, True]}, "density": [0.125],
                                   "objectives": ["latency", "lut", "dsp"]})
    out = tmp_path / "out"
    rc = main(["explore", str(space), "--out", str(out), "--scheduler", cluster, "--cache", str(cache), "--quiet"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "Pareto front" in cap.out and "best on u200" in cap.out and "best on zcu102" in cap.out
    for name in ("points.csv", "points.parquet", "front.csv", "front.html", "summary.json"):
        assert (out / name).is_file(), name
    page = (out / "front.html").read_text()
    assert page.count("data:image/png;base64,") >= 2 and "http://" not in page and "https://" not in page
    assert page.index("alt='latency vs lut'") < page.index("alt='latency vs dsp'")  # LUTs bind: plotted first
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["points"] == 8 and set(summary["best_per_device"]) == {"u200", "zcu102"}
    import pyarrow.parquet as pq

    table = pq.read_table(out / "points.parquet")
    assert table.num_rows == 8 and table.schema.field("cycles").type == "int64"
    rows = {r["point_id"]: r for r in read_rows(out)}
    # the commands reproduce the cycles: `flexspec run` for the designs run resolves itself (no
    # broadcast: run's search space), `flexspec simulate` with every axis for the others
    best = rows[summary["best_per_device"]["u200"]["point_id"]]
    zcu = [r for r in rows.values() if r["device"] == "zcu102"]
    r2 = next(r for r in zcu if r["reproduce"].startswith("flexspec run fmnist_vgg --device zcu102"))
    r1 = next(r for r in zcu if r["reproduce"].startswith("flexspec simulate fmnist_vgg --device zcu102"))
    assert best["reproduce"].startswith(("flexspec run fmnist_vgg --device u200", "flexspec simulate fmnist_vgg "
                                         "--device u200"))
    for row in (r1, r2):
        argv = shlex.split(row["reproduce"])[1:]
        if argv[0] == "run":
            argv += ["--out", str(tmp_path / "rep"), "--no-html", "--quiet"]
            assert main(argv) == 0
            report = json.loads((tmp_path / "rep" / "report.json").read_text())
            cycles = report["summary"]["cycles"]
            assert report["summary"]["conv_cycles"] == row["conv_cycles"], row["reproduce"]
            used = report["design"]["resources"]["used"]  # the resource columns are what run reports
            assert (used["lut"], used["ff"], used["dsp"]) == (row["lut_used_count"], row["ff_used_count"],
                                                              row["dsp_used_count"])
        else:
            argv += ["--json", str(tmp_path / "rep.json")]
            assert main(argv) == 0
            cycles = json.loads((tmp_path / "rep.json").read_text())["flexspec"]["total"]["cycles"]
        assert cycles == row["cycles"], row["reproduce"]
        assert row["conv_cycles"] < row["cycles"]  # the FC layers count too, as in `flexspec run`


def test_resume_after_a_torn_write_computes_only_the_missing_points(small_runs, cluster, cache, tmp_path):
    full, _ = small_runs
    folder = tmp_path / "resume"
    shutil.copytree(full.folder, folder)
    lines = (folder / "points.csv").read_bytes().splitlines(keepends=True)
    kept = b"".join(lines[:11])  # header + 10 finished points
    (folder / "points.csv").write_bytes(kept + lines[11][:40])  # + a row cut short by a crash
    res = explore(SMALL, folder, scheduler=cluster, screen=False, cache_dir=cache, progress=False)
    rows = read_rows(folder)
    assert (folder / "points.csv").read_bytes().startswith(kept)  # earlier rows untouched
    assert len(rows) == len(full.rows) == len({r["point_id"] for r in rows})
    new = [r for r in rows if r["run_id"] == res.run_id]
    assert len(new) == res.counts["computed_now"] == len(full.rows) - 10
    assert {r["point_id"] for r in new} == {r["point_id"] for r in full.rows} - {r["point_id"] for r in rows[:10]}
    # and a second resume computes nothing
    again = explore(SMALL, folder, scheduler=cluster, screen=False, cache_dir=cache, progress=False)
    assert again.counts["computed_now"] == 0 and len(read_rows(folder)) == len(full.rows)


def test_a_worker_killed_mid_sweep_leaves_every_point_exactly_once(cluster, tmp_path):
    from distributed import Client

    space = {**SMALL, "design": {"pes": [8, 16], "banks": [10], "ports": [1, 2]}}  # new schedules: slow points
    killed = []
    client = Client(cluster)
    try:
        def on_event(ev):
            if ev["row"]["status"] == "ok" and not killed:
                busy = [w for w, keys in client.processing().items() if keys]
                pids = client.run(os.getpid, workers=busy[:1])
                for pid in pids.values():
                    os.kill(pid, signal.SIGKILL)  # a worker process of this test's cluster
                    killed.append(pid)

        res = explore(space, tmp_path / "k", scheduler=cluster, screen=False, cache_dir=tmp_path / "c",
                      progress=on_event)
    finally:
        client.close()
    assert killed, "no worker was busy when the first point finished"
    ids = _ids(tmp_path / "k")
    assert len(ids) == len(set(ids))
    if res.counts["lost"]:  # Dask gave up on a point (it ran on the killed worker too often): a rerun completes it
        res = explore(space, tmp_path / "k", scheduler=cluster, screen=False, cache_dir=tmp_path / "c",
                      progress=False)
    ids = _ids(tmp_path / "k")
    assert sorted(ids) == sorted(set(ids)) and len(ids) == len(res.space.points()) == 16
    assert all(r["status"] == "ok" for r in read_rows(tmp_path / "k"))


def test_scheduler_and_worker_started_separately(small_runs, tmp_path, capsys):
    """`--scheduler ADDRESS` runs unchanged on a cluster this test starts with `dask scheduler` and
    `dask worker` on 127.0.0.1; its figures equal the LocalCluster's."""
    full, _ = small_runs
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)], env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(600):  # at most 60 s
            if sched_file.exists() and sched_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nworkers", "1",
                                       "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"], env=_env(),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout="30s") as c:
            c.wait_for_workers(1, timeout=60)
        space = {**SMALL, "devices": ["zcu102"], "density": [0.125], "design": {**SMALL["design"], "arrays": ["fit"]}}
        out = tmp_path / "remote"
        rc = main(["explore", str(_space_file(tmp_path, space)), "--out", str(out), "--scheduler", address,
                   "--cache", str(tmp_path / "cache"), "--quiet", "--no-screen"])
        assert rc == 0, capsys.readouterr().err
        rows = read_rows(out)
        local = {r["point_id"]: r["cycles"] for r in full.rows}
        assert len(rows) == 4 and all(r["cycles"] == local[r["point_id"]] for r in rows)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_a_failing_point_is_recorded_and_the_rest_continue(cluster, cache, tmp_path):
    # a network that claims the shipped model's name but not its shapes: its kernels cannot fit it
    fake = Network("fmnist_vgg", (1, 8, 8), (ConvLayer("conv1_1", 1, 4, 8, 8, 3, 1, 1),))
    tiny = Network("tiny_explore", (4, 12, 12), (ConvLayer("c1", 4, 8, 12, 12, 3, 1, 1),
                                                  ConvLayer("c2", 8, 8, 12, 12, 3, 1, 1)))
    res = explore({"models": [fake, tiny], "devices": ["u200"], "design": {"pes": [8, 16]}}, tmp_path / "f",
                  scheduler=cluster, cache_dir=cache, progress=False, screen=False)
    by_model = {}
    for r in res.rows:
        by_model.setdefault(r["model"], []).append(r)
    assert [r["status"] for r in by_model["fmnist_vgg"]] == ["failed", "failed"]
    assert all("conv1_1" in r["error"] and "\n" not in r["error"] for r in by_model["fmnist_vgg"])
    assert [r["status"] for r in by_model["tiny_explore"]] == ["ok", "ok"]
    # a resume leaves them; --retry-failed computes exactly them again (their new rows replace the old)
    space = {"models": [fake, tiny], "devices": ["u200"], "design": {"pes": [8, 16]}}
    kw = dict(scheduler=cluster, cache_dir=cache, progress=False, screen=False)
    assert explore(space, tmp_path / "f", **kw).counts["computed_now"] == 0
    again = explore(space, tmp_path / "f", retry_failed=True, **kw)
    assert again.counts["computed_now"] == 2 and again.counts["failed"] == 2 and again.counts["ok"] == 2


def test_kernels_and_schedules_are_computed_once_per_machine(cluster, tmp_path):
    """Two devices, the same designs: the kernels are synthesized once, and every schedule key is
    computed by exactly one worker (the others read it); a point that differs only in the device
    recomputes nothing of them."""
    cache = tmp_path / "c"
    space = {**SMALL, "density": [0.25], "design": {"pes": [8], "banks": [10], "ports": [2]}}
    res = explore(space, tmp_path / "o", scheduler=cluster, screen=False, cache_dir=cache, progress=False)
    rows = [r for r in res.rows if r["status"] == "ok"]
    assert len(rows) == 2
    assert [r["kernel_cache"] for r in rows].count("miss") <= 1
    assert len(list((cache / "kernels").glob("*.npz"))) == 1
    stored = len(list((cache / "schedules").glob("*.npz")))
    assert sum(r["schedule_cache_misses"] for r in rows) == stored
    assert sum(r["schedule_cache_hits"] for r in rows) >= 1  # the second device reused at least one


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_input_one_line_exit_2_and_earlier_results_kept(small_runs, tmp_path, capsys):
    full, _ = small_runs
    folder = tmp_path / "kept"
    shutil.copytree(full.folder, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    good = _space_file(tmp_path, SMALL)
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        (["explore", str(_space_file(tmp_path, {**SMALL, "colour": 1}, "b1.yaml")), "--out", str(folder)],
         "unknown axis 'colour'"),
        (["explore", str(_space_file(tmp_path, {**SMALL, "devices": ["u200", "nope"]}, "b2.yaml")), "--out",
          str(folder)], "unknown device 'nope'"),
        (["explore", str(_space_file(tmp_path, {**SMALL, "design": {"banks": [99]}}, "b3.yaml")), "--out",
          str(folder)], "empty space"),
        (["explore", str(good), "--out", str(afile)], "not a folder"),
        (["explore", str(good), "--out", str(afile / "sub")], "is a file, not a folder"),
        (["explore", str(good), "--out", str(folder), "--scheduler", "not an address"], "not a scheduler address"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1 and err.startswith("flexspec: error:"), err
    t0 = time.perf_counter()
    assert main(["explore", str(good), "--out", str(folder), "--scheduler", f"tcp://127.0.0.1:{_free_port()}"]) == 2
    took = time.perf_counter() - t0
    err = capsys.readouterr().err.strip()
    assert "cannot reach the Dask scheduler" in err and len(err.splitlines()) == 1, err
    assert took < 15, took
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


#: the child of the Ctrl-C test: `flexspec explore` as a terminal's foreground job runs it.  A process
#: started as a background job of a non-interactive shell (a CI script's `cmd &`, nohup) inherits SIGINT
#: *ignored*, and Python then installs no KeyboardInterrupt handler: an interrupt never lands and the
#: sweep runs to its end (the cause of the skips this test used to make under CI).  So the child puts
#: back Python's own handler, as in an interactive shell, before it runs the command line.
_FOREGROUND_CLI = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                   "from flexspec.cli import main; sys.exit(main())")


def test_ctrl_c_keeps_every_finished_point_and_the_same_command_resumes(cluster, tmp_path):
    # 24 points on one worker, each computing new schedules (a fresh cache): once the first point is
    # written the others take seconds, while the interrupt is sent within one 20 ms poll
    n_points = 24
    space = _space_file(tmp_path, {**SMALL, "devices": ["u200"], "design": {"pes": [4, 8, 16], "banks": [8, 10],
                                                                             "ports": [1, 2]}})
    out, cache = tmp_path / "o", tmp_path / "c"
    argv = [sys.executable, "-c", _FOREGROUND_CLI, "explore", str(space), "--out", str(out), "--cache", str(cache),
            "--workers", "1", "--no-screen"]
    # its own process group, which gets the SIGINT, as a terminal's Ctrl-C reaches the foreground job:
    # the command, and the Dask cluster it started
    proc = subprocess.Popen(argv, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        for _ in range(6000):  # at most 120 s for the first point
            if proc.poll() is not None or (out.joinpath("points.csv").exists() and read_rows(out)):
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()[1].decode(errors="replace")[-2000:]
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    done = read_rows(out)
    assert 1 <= len(done) < n_points, f"the interrupt must land mid-sweep: {len(done)} of {n_points} points done"
    assert proc.returncode == 130 and b"interrupted" in err and b"run the same command to resume" in err, err
    assert len({r["point_id"] for r in done}) == len(done) and all(r["status"] == "ok" for r in done)
    kept = (out / "points.csv").read_bytes()
    res = explore(str(space), out, scheduler=cluster, screen=False, cache_dir=cache, progress=False)
    assert res.counts["computed_now"] == n_points - len(done)
    ids = _ids(out)
    assert len(ids) == len(set(ids)) == n_points
    assert (out / "points.csv").read_bytes().startswith(kept)  # the finished points' rows are untouched
