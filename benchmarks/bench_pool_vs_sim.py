"""The pool cluster's cycle model against what the simulator charges, per VGG16 layer (helper h11f, item 4).

Design: the U200 headline's arrays (A = 36 x P = 8, B x R = 10 x 2, read-out rows K = 2) with
F = E = 12 FFT/IFFT engines: the nearest engine count the generated cluster builds at A = 36 (its
F must divide the a_t array columns; 16 divides no a_t of 36).  Per layer (224 x 224 input, N = 8,
synthesized kernels at density 0.25, alone in a one-layer network on the u200 profile):

* ``sim``: ``flexspec.accel.sim.simulate_network`` (the per-step model of ``accel.layer_cycles``:
  arrays split a_t x a_g over any divisor, array row g running its output-channel slice's kernel
  groups as the cluster does (helper h12s; before: groups dealt by LPT over any output channels,
  ``results/history/bench_pool_vs_sim_lpt.json``), FFT/IFFT charged as throughput
  ``channels x interval / F``, DRAM traffic of the dataflow's blocking);
* ``sim, tiles``: the same with ``array_split="tiles"`` (a_g = 1: like with like for the pool at a_g = 1);
* ``pool``: ``flexspec.accel.pool_events.pool_layer_cycles``: the generated cluster's cycle model
  (Verilator-checked to the cycle on small cases), one kernel block, best of the splits the RTL
  builds (a_g in {1, 3}: F | a_t), output-channel slices per array row, host always offering.

The two agree only where the simulator's blocking is one kernel block (all Cin, all Cout);
elsewhere the row says so.  Writes benchmarks/results/bench_pool_vs_sim.json.
Usage: nice python benchmarks/bench_pool_vs_sim.py [layers...] | --markdown
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.pool_events import pool_layer_cycles
from flexspec.accel.sim import simulate_network
from flexspec.fileio import write_file
from flexspec.workload.layers import Network
from flexspec.workload.zoo import get_network

from bench_pool_headline import BuildableSplits  # the same restriction (this script's folder is on sys.path)

LAYERS = ("conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2")
SPLITS = (1, 3)
OUT = Path(__file__).resolve().parent / "results" / "bench_pool_vs_sim.json"
CONFIG = AcceleratorConfig(arrays=36, pes=8, banks=10, ports=2, fft_engines=12, ifft_engines=12, fft_size=8,
                           readout_rows=2)


@dataclass(frozen=True)
class FixedSplit(AcceleratorConfig):
    """The design with every kernel-block run split a_t = 12 columns x a_g = 3 rows."""

    @property
    def group_splits(self) -> tuple:
        return (3,)


def compare(layer, mask) -> dict:
    net = Network(f"one_{layer.name}", (layer.in_channels, layer.height, layer.width), (layer,))
    t0 = time.perf_counter()
    lay = simulate_network(net, "u200", CONFIG, {layer.name: mask}, histograms=False).layers[0]
    t_sim = time.perf_counter() - t0
    # like with like: the simulator restricted to the splits the cluster builds (F | a_t)
    built = simulate_network(net, "u200", BuildableSplits(**CONFIG.to_dict()), {layer.name: mask},
                             histograms=False).layers[0]
    # the group split itself: the simulator fixed to a_g = 3 (12 columns x 3 rows) against the pool's a_g = 3
    split3 = simulate_network(net, "u200", FixedSplit(**CONFIG.to_dict()), {layer.name: mask},
                              histograms=False).layers[0]
    tiles_only = simulate_network(net, "u200", replace(CONFIG, array_split="tiles"), {layer.name: mask},
                                  histograms=False).layers[0]
    t0 = time.perf_counter()
    pool = {a_g: pool_layer_cycles(mask, CONFIG, a_g, layer.height, layer.width, layer.kernel_size, layer.padding)
            for a_g in SPLITS}
    t_pool = time.perf_counter() - t0
    best = min(pool, key=pool.get)
    cout, cin, _ = mask.shape
    one_block = lay.cout_block >= cout and lay.cin_block >= cin
    return {"layer": layer.name, "cin": cin, "cout": cout, "height": layer.height, "sim_cycles": int(lay.cycles),
            "sim_blocking": [lay.cout_block, lay.cin_block, lay.tile_block, lay.order], "sim_bound": lay.bound,
            "pool_cycles": {str(k): int(v) for k, v in pool.items()}, "pool_best_a_g": best,
            "pool_best_cycles": int(pool[best]), "sim_over_pool": lay.cycles / pool[best] - 1,
            "comparable": one_block, "sim_s": t_sim, "pool_s": t_pool,
            "sim_tiles_cycles": int(tiles_only.cycles), "sim_tiles_blocking":
            [tiles_only.cout_block, tiles_only.cin_block, tiles_only.tile_block, tiles_only.order],
            "sim_tiles_over_pool_a_g1": tiles_only.cycles / pool[1] - 1,
            "sim_buildable_cycles": int(built.cycles),
            "sim_buildable_blocking": [built.cout_block, built.cin_block, built.tile_block, built.order],
            "sim_buildable_over_pool": built.cycles / pool[best] - 1,
            "sim_buildable_comparable": built.cout_block >= cout and built.cin_block >= cin,
            "sim_a_g3_cycles": int(split3.cycles),
            "sim_a_g3_blocking": [split3.cout_block, split3.cin_block, split3.tile_block, split3.order],
            "sim_a_g3_over_pool_a_g3": split3.cycles / pool[3] - 1,
            "sim_a_g3_comparable": split3.cout_block >= cout and split3.cin_block >= cin}


def main(names) -> None:
    load0 = os.getloadavg()
    net = get_network("vgg16")
    masks, _, src = resolve_kernels(net, None)
    rows = []
    for name in names:
        rows.append(compare(net.layer(name), masks[name]))
        print(rows[-1], flush=True)
    write_file(OUT, json.dumps({"network": "vgg16", "kernels": src.to_dict(), "device": "u200",
                                "design": CONFIG.to_dict(), "splits": SPLITS, "load_average_before": load0,
                                "load_average_after": os.getloadavg(), "rows": rows}, indent=1, default=str))


def markdown() -> str:
    data = json.loads(OUT.read_text())
    head = ["layer", "Cin x Cout @ H", "simulator's blocking (cout, cin, tiles, order)", "simulator cycles",
            "pool model cycles (a_g = 1 / 3)", "simulator / pool - 1", "simulator's bound",
            "simulator at a_g = 1 (array_split tiles)", "that / pool at a_g = 1 - 1",
            "simulator on the buildable splits (blocking)", "that / pool - 1",
            "simulator at a_g = 3 (blocking)", "that / pool at a_g = 3 - 1"]
    out = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in data["rows"]:
        b = r["sim_blocking"]
        gap = f"{100 * r['sim_over_pool']:+.1f}%" + ("" if r["comparable"] else " (blocked: not like with like)")
        pools = " / ".join(f"{r['pool_cycles'][str(k)]:,}" for k in data["splits"])
        out.append(f"| {r['layer']} | {r['cin']} x {r['cout']} @ {r['height']} | {b[0]}, {b[1]}, {b[2]}, {b[3]} | "
                   f"{r['sim_cycles']:,} | {pools} | {gap} | {r['sim_bound']} | {r['sim_tiles_cycles']:,} | "
                   f"{100 * r['sim_tiles_over_pool_a_g1']:+.2f}%"
                   + ("" if r["sim_tiles_blocking"][:2] == [r["cout"], r["cin"]] else " (blocked)") + " | "
                   + (f"{r['sim_buildable_cycles']:,} ({', '.join(str(x) for x in r['sim_buildable_blocking'])}) | "
                      f"{100 * r['sim_buildable_over_pool']:+.2f}%"
                      + ("" if r["sim_buildable_comparable"] else " (blocked)") + " |" if "sim_buildable_cycles" in r
                      else " | |")
                   + (f" {r['sim_a_g3_cycles']:,} ({', '.join(str(x) for x in r['sim_a_g3_blocking'])}) | "
                      f"{100 * r['sim_a_g3_over_pool_a_g3']:+.2f}%"
                      + ("" if r["sim_a_g3_comparable"] else " (blocked)") + " |" if "sim_a_g3_cycles" in r
                      else " | |"))
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        print(markdown())
    else:
        main(sys.argv[1:] or LAYERS)
