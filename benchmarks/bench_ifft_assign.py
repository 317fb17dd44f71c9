"""What the buildable IFFT assignment (array row g on IFFT g mod E, ``flexspec.accel.ifft_assign``)
costs a design, layer by layer: VGG16's conv layers (synthesized kernels) simulated on one design
(the U200 row of a ``bench_designs.py`` result file), with per layer its cycles, what bounds it, its
compute and IFFT cycles, and the array splits a_g its kernel-block runs took (counted over the runs the
simulator evaluates: both walks when a layer may chain its cin blocks, so a count may include the walk not
taken; the IFFT cycles are the walk taken's).

Run it with the code to measure on PYTHONPATH (e.g. a checkout before the change and one after) and
a label; each run adds (or replaces) its label's entry in benchmarks/results/bench_ifft_assign.json.
Usage: nice python benchmarks/bench_ifft_assign.py LABEL DESIGNS_JSON [DEVICE]
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import flexspec.accel.layer_cycles as layer_cycles
import flexspec.accel.sim as sim
from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.sim import simulate_network
from flexspec.devices import load_device
from flexspec.fileio import write_file
from flexspec.workload.zoo import get_network

OUT = Path(__file__).resolve().parent / "results" / "bench_ifft_assign.json"


def main(label: str, designs: str, device: str = "u200") -> None:
    row = next(r for r in json.loads(Path(designs).read_text())["rows"] if r["device"] == device)
    cfg = AcceleratorConfig(**row["config"])
    net = get_network("vgg16")
    masks, nk, _ = resolve_kernels(net, None)
    splits: dict = {}
    current = {"layer": None}
    steps, makespan = sim.layer_steps, layer_cycles.slice_makespan

    engines: dict = {}

    def traced_steps(ld, *args, **kwargs):  # which layer the runs belong to, and its IFFT cycles
        current["layer"] = ld.layer_name
        st = steps(ld, *args, **kwargs)
        engines[ld.layer_name] = (float(st.ifft.sum()), float(st.fft.sum()))
        return st

    def traced_makespan(*args, **kwargs):
        out = makespan(*args, **kwargs)
        splits.setdefault(current["layer"], Counter())[int(out[1])] += 1
        return out

    sim.layer_steps, layer_cycles.slice_makespan = traced_steps, traced_makespan
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    res = simulate_network(net, load_device(device), cfg, nk if nk is not None else masks, histograms=False)
    seconds = time.perf_counter() - t0
    layers = [{"layer": lay.name, "cycles": int(lay.cycles), "bound": lay.bound,
               "blocking": f"{lay.order} cout {lay.cout_block} cin {lay.cin_block} tiles {lay.tile_block}",
               "compute_cycles": int(lay.compute_cycles), "ifft_cycles": engines.get(lay.name, (0, 0))[0],
               "fft_cycles": engines.get(lay.name, (0, 0))[1], "fft_stall_cycles": int(lay.fft_stall_cycles),
               "splits_a_g": {str(k): v for k, v in sorted(splits.get(lay.name, {}).items())}}
              for lay in res.layers]
    entry = {"label": label, "source": sys.modules["flexspec"].__file__, "device": device, "config": row["config"],
             "designs_file": str(designs), "latency_ms": res.seconds * 1e3, "cycles": int(res.cycles),
             "layers": layers, "seconds": seconds, "load_before": load0, "load_after": os.getloadavg()[0]}
    old = json.loads(OUT.read_text())["entries"] if OUT.exists() else []
    entries = [e for e in old if e["label"] != label] + [entry]
    write_file(OUT, json.dumps({"format_version": 1, "entries": entries}, indent=1) + "\n")
    print(f"{label}: {entry['latency_ms']:.3f} ms, {entry['cycles']:,} cycles ({seconds:.0f} s, load {load0:.1f})")
    for lay in layers:
        print(f"  {lay['layer']:8s} {lay['cycles']:>9,} {lay['bound']:8s} compute {lay['compute_cycles']:>9,} "
              f"IFFT {lay['ifft_cycles']:>9,.0f} a_g {lay['splits_a_g']} ({lay['blocking']})")


if __name__ == "__main__":
    main(*sys.argv[1:])
