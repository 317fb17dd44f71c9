"""Wall time of the main job, `flexspec run` with defaults (VGG16, u200, synthesized kernels), as a
user runs it: a fresh process, output into a temporary folder.  Prints the total and per-stage times.

    python benchmarks/bench_main_job.py [extra flexspec run arguments]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time


def main(argv):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "flexspec.cli", "run", *argv, "--out", out, "--quiet"],
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        rep = json.load(open(os.path.join(out, "report.json")))
        stages = rep["stage_seconds"]
        print(f"flexspec run {' '.join(argv) or '(defaults)'}: wall {wall:.1f} s "
              f"(pipeline {stages['total']:.1f} s; the rest is start-up, table and report rendering)")
        for k, v in stages.items():
            print(f"  {k:<24} {v:6.1f} s")
        s = rep["summary"]
        print(f"  latency {s['latency_seconds'] * 1e3:.3f} ms, speed-up {s['speedup_ratio']:.2f}x, "
              f"traffic reduction {100 * s['traffic_reduction_fraction']:.1f}%, weights {s['weights']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
