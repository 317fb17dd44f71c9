"""Which FFT/IFFT pool structure the U200 headline needs (helper h11f, issue 11/12, item 1).

One run, side by side, VGG16's 13 conv layers on the u200 profile (synthesized kernels, N = 8):

1. the headline design (``bench_designs.json``'s u200 row) simulated as published (``array_split``
   "tiles+groups": FFT'd tiles broadcast to a_g arrays, partial outputs summed before one IFFT);
2. the same design with ``array_split="tiles"`` (the shared pool, each FFT'd tile to ONE array: a
   distributor and an IFFT arbiter, no broadcast, no cross-array sum);
3. the search over shared-pool designs restricted to ``array_split="tiles"``;
4. the search over the as-built structure (``engines=PER_ARRAY``: one FFT + one IFFT per array).

Writes benchmarks/results/bench_pool_split.json (with the load average before and after).
Usage: nice python benchmarks/bench_pool_split.py [--no-per-array]
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.search import PER_ARRAY, search_design
from flexspec.accel.sim import ScheduleCache, simulate_network
from flexspec.devices import load_device
from flexspec.fileio import write_file
from flexspec.workload.zoo import get_network

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "bench_pool_split.json"


def _row(label, r, t):
    c = r.config
    return {"case": label, "config": c.to_dict(), "latency_ms": r.seconds * 1e3, "cycles": r.cycles,
            "dsp_efficiency": r.dsp_efficiency, "binding_resource": r.resources.binding, "wall_s": t,
            "design": f"{c.arrays} x {c.pes}, {c.banks} x {c.ports}, K={c.readout_rows}, "
                      f"{c.fft_engines}/{c.ifft_engines}, {c.array_split}"}


def main(per_array: bool = True) -> None:
    load0 = os.getloadavg()
    dev = load_device("u200")
    net = get_network("vgg16")
    masks, nk, src = resolve_kernels(net, None)
    kernels = nk if nk is not None else masks
    cache = ScheduleCache()
    head = json.loads((RESULTS / "bench_designs.json").read_text())["rows"][0]
    assert head["device"] == "u200"
    cfg = AcceleratorConfig(**head["config"])
    rows = []
    for label, c in (("headline design, tiles+groups", cfg),
                     ("headline design, tiles (pool without broadcast)", replace(cfg, array_split="tiles"))):
        t0 = time.perf_counter()
        r = simulate_network(net, dev, c, kernels, histograms=False, schedules=cache)
        rows.append(_row(label, r, time.perf_counter() - t0))
        print(rows[-1]["case"], rows[-1]["design"], f"{rows[-1]['latency_ms']:.3f} ms", flush=True)
    searches = [("search, shared pool, tiles", dict(array_split="tiles"))]
    if per_array:
        searches.append(("search, per-array engines (as built)", dict(engines=PER_ARRAY)))
    for label, kw in searches:
        t0 = time.perf_counter()
        r = search_design(net, dev, 8, kernels, schedules=cache, **kw)
        rows.append(_row(label, r, time.perf_counter() - t0))
        print(rows[-1]["case"], rows[-1]["design"], f"{rows[-1]['latency_ms']:.3f} ms", flush=True)
    write_file(OUT, json.dumps({"network": "vgg16 (13 conv layers)", "device": "u200", "kernels": src.to_dict(),
                                "load_average_before": load0, "load_average_after": os.getloadavg(),
                                "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    main(per_array="--no-per-array" not in sys.argv[1:])
