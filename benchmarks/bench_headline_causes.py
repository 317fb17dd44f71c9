"""What moved the VGG16 headline: the U200 design that fits (as searched by bench_designs.py)
simulated with the kernels counted as packed entries or as the stored schedule stream, and with the
forward FFT charged N cycles a channel (the rate before) or at the RTL's sustained rate
(``layer_events.fft_channel_interval_cycles``).  Same design, same kernels, one run.

    nice python benchmarks/bench_headline_causes.py [DESIGNS.json]   # -> benchmarks/results/headline_causes.json

DESIGNS.json: a bench_designs.json (default: benchmarks/results/bench_designs.json); its u200 row's
design is simulated.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from unittest import mock

from flexspec.accel import layer_cycles
from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.sim import ScheduleCache, simulate_network
from flexspec.fileio import write_file
from flexspec.workload.zoo import get_network

OUT = Path(__file__).resolve().parent / "results" / "headline_causes.json"


def main(designs_path: Path) -> dict:
    designs = json.loads(designs_path.read_text())
    row = next(r for r in designs["rows"] if r["device"] == "u200")
    cfg = AcceleratorConfig(**row["config"])
    net = get_network("vgg16")
    masks, nk, _ = resolve_kernels(net, None)
    kernels = nk if nk is not None else masks
    cache = ScheduleCache()
    out = {"design": row["config"], "load_before": os.getloadavg(), "runs": []}
    for fft_rate in ("N", "rtl"):
        for storage in ("entries", "stream"):
            patch = mock.patch.object(layer_cycles, "fft_channel_interval_cycles", lambda n, d: float(n)) \
                if fft_rate == "N" else mock.patch.object(layer_cycles, "fft_channel_interval_cycles",
                                                          layer_cycles.fft_channel_interval_cycles)
            with patch:
                r = simulate_network(net, "u200", cfg, kernels, histograms=False, schedules=cache,
                                     kernel_storage=storage)
            conv = [lr for lr in r.layers if lr.kind == "spectral"]
            conv_s = sum(lr.cycles for lr in conv) / r.clock_hz
            bound = {lr.name: lr.bound for lr in conv}
            out["runs"].append({"fft_rate": fft_rate, "kernel_storage": storage, "conv_seconds": conv_s,
                                "bound": bound})
            print(f"FFT rate {fft_rate:3s}, kernels as {storage:7s}: convs {conv_s * 1e3:.2f} ms; bound: "
                  + ", ".join(f"{k}={v}" for k, v in bound.items()))
    out["load_after"] = os.getloadavg()
    return out


if __name__ == "__main__":
    paths = [Path(p) for p in sys.argv[1:]] or [OUT.parent / "bench_designs.json"]
    write_file(OUT, json.dumps({str(p.name): main(p) for p in paths}, indent=1))
