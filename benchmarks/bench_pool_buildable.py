"""The U200 headline designs at engine counts the generated pool cluster builds (lead, after merging h11f/h12e).

``flexspec.rtl.cluster`` builds a shared FFT/IFFT pool only where the F FFT engines divide the a_t = A / a_g
array columns of a split (FFT f serves columns f, f+F, ...).  The design search deals any split
(``AcceleratorConfig.group_splits``); this script simulates the searched U200 designs (the merged main's
70 x 8, 10 x 1, K = 1, 16/16 and h12e's 72 x 8, 20 x 1, K = 1, 32/32) as the simulator charges them, and at the
neighbouring engine counts restricted to the buildable splits (``bench_pool_headline.BuildableSplits``), with
every resource checked (the pool glue included).  A design that does not fit is recorded with the error.
Writes benchmarks/results/bench_pool_buildable.json.
Usage: nice python benchmarks/bench_pool_buildable.py
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

from bench_pool_headline import BuildableSplits

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.sim import ScheduleCache, simulate_network
from flexspec.errors import FlexSpecError
from flexspec.fileio import write_file
from flexspec.workload.zoo import get_network

OUT = Path(__file__).resolve().parent / "results" / "bench_pool_buildable.json"
DESIGNS = {  # searched design -> (its engine count, engine counts to try with buildable splits)
    AcceleratorConfig(arrays=70, pes=8, banks=10, ports=1, fft_engines=16, ifft_engines=16, fft_size=8,
                      readout_rows=1): (7, 10, 14, 35),
    AcceleratorConfig(arrays=72, pes=8, banks=20, ports=1, fft_engines=32, ifft_engines=32, fft_size=8,
                      readout_rows=1): (8, 9, 12, 18, 24, 36),
}


def main() -> None:
    load0 = os.getloadavg()
    net = get_network("vgg16")
    masks, nk, src = resolve_kernels(net, None)
    kernels = nk if nk is not None else masks
    cache = ScheduleCache()
    rows = []
    for base, engines in DESIGNS.items():
        variants = [("simulator's splits", base)]
        variants += [("buildable splits", BuildableSplits(**replace(base, fft_engines=e, ifft_engines=e).to_dict()))
                     for e in engines]
        for label, cfg in variants:
            row = {"arrays": cfg.arrays, "banks": cfg.banks, "ports": cfg.ports, "readout_rows": cfg.readout_rows,
                   "engines": cfg.fft_engines, "splits": label, "group_splits": list(cfg.group_splits)}
            t0 = time.perf_counter()
            try:
                r = simulate_network(net, "u200", cfg, kernels, histograms=False, schedules=cache)
                row.update(latency_ms=r.seconds * 1e3, cycles=r.cycles, dsp_efficiency=r.dsp_efficiency,
                           binding=r.resources.binding, resources=r.resources.table())
            except FlexSpecError as exc:
                row["does_not_fit"] = str(exc)
            row["wall_s"] = time.perf_counter() - t0
            rows.append(row)
            print({k: v for k, v in row.items() if k != "resources"}, flush=True)
    write_file(OUT, json.dumps({"network": "vgg16 (13 conv layers)", "device": "u200", "kernels": src.to_dict(),
                                "load_average_before": load0, "load_average_after": os.getloadavg(),
                                "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
