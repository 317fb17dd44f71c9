"""The simulator's per-layer cycles against the whole layer engine's cycle model, at one array.

For real VGG16 conv layers (224x224 input, N = 8, the synthesized kernels at density 0.25), on one
array of the headline's kind (P = 8, B x R = 20 x 2) with ONE FFT and ONE IFFT engine (A = 1: the
engine that ``flexspec.rtl.layer_engine`` builds), at read-out rows K = 1 (the headline's) and
K = N: the simulator's cycles for the layer alone (``flexspec.accel.sim.simulate_network`` on a
one-layer network: the per-step model of ``accel.layer_cycles``, with its dataflow blocking, DRAM
traffic and FFT/IFFT charge) next to ``flexspec.accel.layer_events.engine_cycles`` (the RTL's
cycle model, Verilator-checked) for the engine walking the *simulator's own blocking* (cout block,
cin block, tile block, loop order: ``blocked_engine_geometry``, the RTL's blocked controller) on
the simulator's own schedule, and, for reference, for the one-block engine (all Cin in the tile
buffer, all Cout in the accumulators).  The engine model assumes the host always offers input and
the psum buffer keeps up; the simulator charges DRAM.

Writes benchmarks/results/bench_sim_vs_engine.json; ``--markdown`` prints the BENCHMARKS.md table.
Usage: nice python benchmarks/bench_sim_vs_engine.py [layers...] | --markdown
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.grouping import schedule_layer_blocks
from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.layer_events import blocked_engine_geometry, engine_cycles, engine_geometry
from flexspec.accel.sim import simulate_network
from flexspec.fileio import write_file
from flexspec.workload.layers import Network
from flexspec.workload.zoo import get_network

LAYERS = ("conv2_2", "conv3_2", "conv4_2", "conv5_2")
DEVICE = "u200"
OUT = Path(__file__).resolve().parent / "results" / "bench_sim_vs_engine.json"


def config(readout_rows: int) -> AcceleratorConfig:
    return AcceleratorConfig(arrays=1, pes=8, banks=20, ports=2, fft_engines=1, ifft_engines=1, fft_size=8,
                             readout_rows=readout_rows)


def compare_layer(layer, mask, cfg: AcceleratorConfig, device=DEVICE) -> dict:
    """Simulator vs engine model for one layer alone on ``cfg`` (one array)."""
    net = Network(f"one_{layer.name}", (layer.in_channels, layer.height, layer.width), (layer,))
    t0 = time.perf_counter()
    r = simulate_network(net, device, cfg, {layer.name: mask}, histograms=False)
    lay = r.layers[0]
    t_sim = time.perf_counter() - t0
    cout, cin, _ = mask.shape
    sch = schedule_layer_blocks(mask, cfg, lay.cout_block)
    geom = blocked_engine_geometry(sch.cycles, sch.schedule.bank_of, cfg.banks, cfg.pes, cfg.fft_size, cin, cout,
                                   layer.height, layer.width, lay.cout_block, lay.cin_block, lay.tile_block, lay.order,
                                   layer.kernel_size, layer.padding, cfg.readout_rows)
    t0 = time.perf_counter()
    eng = engine_cycles(geom)
    t_eng = time.perf_counter() - t0
    one = schedule_layer_blocks(mask, cfg, cout)
    whole = engine_cycles(engine_geometry(one.schedule.cycles, one.schedule.bank_of, cfg.banks, cfg.pes, cfg.fft_size,
                                          cin, cout, layer.height, layer.width, layer.kernel_size, layer.padding,
                                          cfg.readout_rows))
    return {"layer": layer.name, "cin": cin, "cout": cout, "height": layer.height, "readout_rows": cfg.readout_rows,
            "tiles": geom.tiles, "runs": len(geom.runs), "program_cycles": geom.program_cycles,
            "sim_cycles": int(lay.cycles), "engine_cycles": int(eng), "gap": lay.cycles / eng - 1,
            "one_block_engine_cycles": int(whole), "sim_blocking":
            {"cout_block": lay.cout_block, "cin_block": lay.cin_block, "tile_block": lay.tile_block,
             "order": lay.order}, "sim_bound": lay.bound, "sim_fill_cycles": int(lay.fill_cycles),
            "sim_fft_stall_cycles": int(lay.fft_stall_cycles), "sim_memory_stall_cycles": int(lay.memory_stall_cycles),
            "sim_s": t_sim, "engine_s": t_eng}


def main(names) -> None:
    net = get_network("vgg16")
    masks, _, src = resolve_kernels(net, None)
    rows = []
    for name in names:
        for k in (1, 8):
            row = compare_layer(net.layer(name), masks[name], config(k))
            print(row, flush=True)
            rows.append(row)
    write_file(OUT, json.dumps({"network": "vgg16", "kernels": src.to_dict(), "device": DEVICE,
                                "design": "A=1 x P=8, B x R = 20 x 2, one FFT + one IFFT, N=8",
                                "load_average": os.getloadavg()[0], "rows": rows}, indent=1, default=str))


def markdown() -> str:
    data = json.loads(OUT.read_text())
    head = ["layer", "Cin x Cout @ H", "K", "simulator's blocking (cout, cin, tiles, order)", "engine runs",
            "engine cycles (that blocking)", "simulator cycles", "simulator / engine - 1",
            "one-block engine cycles", "simulator's bound"]
    out = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in data["rows"]:
        b = r["sim_blocking"]
        out.append(f"| {r['layer']} | {r['cin']} x {r['cout']} @ {r['height']} | {r['readout_rows']} | "
                   f"{b['cout_block']}, {b['cin_block']}, {b['tile_block']}, {b['order']} | {r['runs']:,} | "
                   f"{r['engine_cycles']:,} | {r['sim_cycles']:,} | {100 * r['gap']:+.2f}% | "
                   f"{r['one_block_engine_cycles']:,} | {r['sim_bound']} |")
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        print(markdown())
    else:
        main(sys.argv[1:] or LAYERS)
