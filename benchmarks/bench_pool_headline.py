"""The U200 headline design with the engine counts and array splits the generated pool cluster builds
(helper h11f): ``flexspec.rtl.cluster`` needs F | a_t (FFT f serves columns f, f+F, ...), so at
A = 36 the headline's 16/16 engines are not buildable; the neighbours F = E in {12, 18, 36} are,
with a_g restricted to the splits where F divides a_t = 36 / a_g.  Each design is simulated as
the simulator charges it (every a_g) and restricted to the buildable a_g (:class:`BuildableSplits`),
with the pool glue charged by ``resources()``.  Within a split the simulator gives each array row
its output-channel slice's kernel groups, as the cluster does (helper h12s; before, it dealt the
groups by LPT over any output channels: ``results/history/bench_pool_headline_lpt.json``).
Writes benchmarks/results/bench_pool_headline.json.
Usage: nice python benchmarks/bench_pool_headline.py
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.sim import ScheduleCache, simulate_network
from flexspec.fileio import write_file
from flexspec.workload.zoo import get_network

OUT = Path(__file__).resolve().parent / "results" / "bench_pool_headline.json"
HEADLINE = AcceleratorConfig(arrays=36, pes=8, banks=10, ports=2, fft_engines=16, ifft_engines=16, fft_size=8,
                             readout_rows=2)


@dataclass(frozen=True)
class BuildableSplits(AcceleratorConfig):
    """The design restricted to the array splits the cluster builds: a_g with F | A / a_g."""

    @property
    def group_splits(self) -> tuple:
        return tuple(d for d in super().group_splits if (self.arrays // d) % self.fft_engines == 0)


def main() -> None:
    load0 = os.getloadavg()
    net = get_network("vgg16")
    masks, nk, src = resolve_kernels(net, None)
    kernels = nk if nk is not None else masks
    cache = ScheduleCache()
    rows = []
    for e in (16, 12, 18, 36):
        cfg = replace(HEADLINE, fft_engines=e, ifft_engines=e)
        variants = [("simulator's splits", cfg)]
        if 36 % e == 0:
            variants.append(("buildable splits", BuildableSplits(**cfg.to_dict())))
        for label, c in variants:
            t0 = time.perf_counter()
            r = simulate_network(net, "u200", c, kernels, histograms=False, schedules=cache)
            rows.append({"engines": e, "splits": label, "group_splits": list(c.group_splits),
                         "latency_ms": r.seconds * 1e3, "cycles": r.cycles, "dsp_efficiency": r.dsp_efficiency,
                         "resources": r.resources.table(), "binding": r.resources.binding,
                         "pool_glue": r.resources.by_block.get("pool_glue"), "wall_s": time.perf_counter() - t0})
            print(e, label, list(c.group_splits), f"{r.seconds * 1e3:.3f} ms", r.resources.binding, flush=True)
    write_file(OUT, json.dumps({"network": "vgg16 (13 conv layers)", "device": "u200", "kernels": src.to_dict(),
                                "design": HEADLINE.to_dict(), "load_average_before": load0,
                                "load_average_after": os.getloadavg(), "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
