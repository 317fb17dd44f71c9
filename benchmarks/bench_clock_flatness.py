"""Why a design's latency is flat in the clock: per layer, at several clocks, the simulated time
against the DRAM floor (the layer's traffic at the profile's sustained bandwidth) and the PE-array
compute time.  A memory-bound layer takes its traffic / bandwidth at any clock.

Usage: nice python benchmarks/bench_clock_flatness.py BENCH_DESIGNS_JSON DEVICE OUT_JSON [MHz ...]
(the design is that device's row of a ``bench_designs.py`` result file; default clocks 200 225 250 300).
Simulator figures, not hardware.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.sim import ScheduleCache, simulate_network
from flexspec.devices import load_device
from flexspec.fileio import write_file
from flexspec.workload.zoo import get_network


def main(designs_json: str, device: str, out_json: str, clocks_mhz=(200, 225, 250, 300)) -> None:
    net = get_network("vgg16")
    masks, nk, _ = resolve_kernels(net, None)
    kernels = nk if nk is not None else masks
    row = next(r for r in json.loads(open(designs_json).read())["rows"] if r["device"] == device)
    cfg = AcceleratorConfig(**row["config"])
    dev0 = load_device(device)
    cache = ScheduleCache()
    out = {"device": device, "config": row["config"], "sustained_GBps": dev0.sustained_bandwidth_bytes_per_s / 1e9,
           "clocks": []}
    for mhz in clocks_mhz:
        dev = replace(dev0, clock_hz=mhz * 1e6)
        r = simulate_network(net, dev, cfg, kernels, histograms=False, schedules=cache)
        bw = dev.sustained_bandwidth_bytes_per_s
        layers = [{"name": L.name, "bound": L.bound, "ms": L.seconds * 1e3, "cycles": L.cycles,
                   "compute_ms": L.compute_cycles / dev.clock_hz * 1e3, "dram_floor_ms": L.traffic_bytes / bw * 1e3,
                   "traffic_MB": L.traffic_bytes / 1e6,
                   "blocking": f"{L.order} {L.cout_block}/{L.cin_block}/{L.tile_block}"} for L in r.layers]
        c = {"mhz": mhz, "ms": r.seconds * 1e3, "cycles": r.cycles,
             "dram_floor_ms": sum(x["dram_floor_ms"] for x in layers),
             "compute_ms": sum(x["compute_ms"] for x in layers),
             "memory_bound_layers": sum(x["bound"] == "memory" for x in layers),
             "traffic_MB": sum(x["traffic_MB"] for x in layers), "layers": layers}
        out["clocks"].append(c)
        print(f"{mhz} MHz: {c['ms']:.2f} ms, DRAM floor {c['dram_floor_ms']:.2f} ms, PE-array compute "
              f"{c['compute_ms']:.2f} ms, {c['memory_bound_layers']} of {len(layers)} layers memory-bound, "
              f"traffic {c['traffic_MB']:.0f} MB", flush=True)
    write_file(out_json, json.dumps(out, indent=1))


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3], tuple(int(x) for x in sys.argv[4:]) or (200, 225, 250, 300))
