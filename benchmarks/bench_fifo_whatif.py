"""What a smaller output FIFO would buy: VGG16's conv layers on the U200, searched (buildable designs,
every resource charged) with the output FIFOs as the RTL builds them and three cheaper variants
that the RTL does not build (measured, not adopted: ``rtl/cluster.py`` is another helper's):

* ``as built``: CREDITS = 2 tiles of the network's largest Cout (512) a row, in block RAM (Yosys);
* ``one credit``: the memory of one tile (= 2 tiles of 256 channels: the same 2,560 x 257 FIFO).
  Only the memory is changed; the timing is still simulated with two credits (one credit makes the
  pass wait for the IFFT to drain a tile before it starts the next: slower than simulated here);
* ``URAM``: the as-built FIFO placed in URAM288 (4K x 72: ceil(depth / 4096) x ceil(width / 72)
  blocks: what Yosys 0.23 ``synth_xilinx -family xcup -uram`` maps the 2,560-row FIFO to, 4 URAM288;
  ``bench_output_fifo.py``; the resource model is calibrated without ``-uram``);
* ``64 channels``: FIFOs for 64 channels a row (CREDITS tiles), as if the dataflow capped every
  cout block / a_g at 64 (the simulator does not, so this row is optimistic).

Writes benchmarks/results/bench_fifo_whatif.json.  Usage: nice python benchmarks/bench_fifo_whatif.py [variants]
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

from flexspec.accel import arch, search
from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.layer_events import output_fifo_beats, output_fifo_width_bits
from flexspec.accel.sim import ScheduleCache
from flexspec.devices import load_device
from flexspec.fileio import write_file
from flexspec.workload.zoo import get_network

OUT = Path(__file__).resolve().parent / "results" / "bench_fifo_whatif.json"
AS_BUILT, KEEP_CHANNELS = arch.output_fifo_cost, search.network_fifo_channels
URAM_ROWS, URAM_BITS_WIDE = 4096, 72


def _uram_cost(channels, fft_size, ifft_bits, family):
    beats, width = output_fifo_beats(channels, fft_size), output_fifo_width_bits(fft_size, ifft_bits)
    cost, _ = AS_BUILT(channels, fft_size, ifft_bits, family)
    return cost | {"bram18": 0.0, "lut": 0.0,
                   "uram": float(math.ceil(beats / URAM_ROWS) * math.ceil(width / URAM_BITS_WIDE))}, "what-if"


VARIANTS = {
    "as built": (AS_BUILT, None),
    "one credit": (lambda ch, n, b, fam: AS_BUILT(ch // 2, n, b, fam), None),
    "URAM": (_uram_cost, None),
    "64 channels": (AS_BUILT, 64),
}


def main(names) -> None:
    net = get_network("vgg16")
    masks, nk, src = resolve_kernels(net, None)
    kernels = nk if nk is not None else masks
    dev = load_device("u200")
    cache = ScheduleCache()
    old = json.loads(OUT.read_text())["rows"] if OUT.exists() else []
    rows = [r for r in old if r["variant"] not in names]
    for name in names:
        cost, channels = VARIANTS[name]
        arch.output_fifo_cost = cost
        try:
            t0 = time.perf_counter()
            if channels is not None:  # the search sets fifo_channels to the network's largest Cout: cap it
                search.network_fifo_channels = lambda network, ch=channels: ch
            best = search.search_design(net, dev, 8, kernels, schedules=cache)
        finally:
            arch.output_fifo_cost, search.network_fifo_channels = AS_BUILT, KEEP_CHANNELS
        c, r = best.config, best.resources
        rows.append({"variant": name, "config": c.to_dict(), "latency_ms": best.seconds * 1e3,
                     "binding_resource": r.binding, "fifo_bram18_per_array": r.by_block["output_fifos"]["bram_bits"]
                     / 18432 / c.arrays, "fifo_uram_per_array": r.by_block["output_fifos"]["uram_bits"] / 294912
                     / c.arrays, "resources": r.table(), "search_s": time.perf_counter() - t0,
                     "load_average": round(os.getloadavg()[0], 1)})
        print(f"{name}: {c.arrays} x {c.pes}, {c.banks} x {c.ports}, K={c.readout_rows}, {c.fft_engines}/"
              f"{c.ifft_engines}, fifo {c.fifo_channels} ch: {best.seconds * 1e3:.2f} ms, bound by {r.binding}",
              flush=True)
        write_file(OUT, json.dumps({"device": "u200", "network": "vgg16 (13 conv layers)", "rows": rows},
                                   indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1:] or list(VARIANTS))
