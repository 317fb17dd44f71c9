"""Wall time of the main job, `flexspec run` with defaults (VGG16, u200, synthesized kernels), as a
user runs it: a fresh process, output into a temporary folder.  Prints the total and per-stage times,
twice: with an empty kernel cache (cold: the VGG16 kernel synthesis runs and fills the cache) and
again with the cache filled (warm), each with the load average next to it.  Target: the warm run
under 60 s.

    python benchmarks/bench_main_job.py [extra flexspec run arguments]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time


def _once(argv, tmp, cache, label) -> int:
    out = os.path.join(tmp, f"out-{label}")
    env = {**os.environ, "FLEXSPEC_CACHE_DIR": cache}
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "flexspec.cli", "run", *argv, "--out", out, "--quiet"],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode:
        print(proc.stderr, file=sys.stderr)
        return proc.returncode
    rep = json.load(open(os.path.join(out, "report.json")))
    stages = rep["stage_seconds"]
    print(f"flexspec run {' '.join(argv) or '(defaults)'} [{label} kernel cache]: wall {wall:.1f} s "
          f"(pipeline {stages['total']:.1f} s; the rest is start-up, table and report rendering); load average "
          f"{load0:.1f} before, {os.getloadavg()[0]:.1f} after")
    for k, v in stages.items():
        print(f"  {k:<24} {v:6.1f} s")
    s = rep["summary"]
    print(f"  end-to-end latency {s['latency_seconds'] * 1e3:.3f} ms ({s['throughput_frames_per_second']:.1f} "
          f"frames/s), convolutions {s['conv_latency_seconds'] * 1e3:.3f} ms, speed-up {s['speedup_ratio']:.2f}x "
          f"(convolutions {s['conv_speedup_ratio']:.2f}x), traffic reduction "
          f"{100 * s['traffic_reduction_fraction']:.1f}%, weights {s['weights']}")
    return 0


def main(argv):
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        for label in ("cold", "warm"):
            rc = _once(argv, tmp, cache, label)
            if rc:
                return rc
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
