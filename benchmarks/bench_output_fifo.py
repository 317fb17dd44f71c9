"""The output FIFOs' memory by synthesis: what Yosys makes of an array's output FIFO, and what the
resource model charges for it.

Each array of the generated RTL (``rtl.layer_engine``, ``rtl.cluster``) has an output FIFO of
``layer_events.output_fifo_beats(channels, N)`` beats (CREDITS = 2 tiles of its output channels, N/2+1
beats a channel) x ``output_fifo_width_bits(N, ifft_bits)`` bits (257 at N = 8, 16-bit).  This script
synthesizes that FIFO (``amaranth.lib.fifo.SyncFIFOBuffered``, as the RTL instantiates it) with
Yosys ``synth_xilinx -family xcup``, with and without ``-uram``, at the depths of 8, 64, 256 and 512
channels a row, compares the block RAM with ``resource_model.fifo_bram18`` (what ``resources()``
charges), and stores the rows and the command as ``output_fifo`` in ``flexspec/data/resource_model.json``.

Usage: nice python benchmarks/bench_output_fifo.py [--no-uram] [channels ...]    (default 8 64 256 512)
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from flexspec.accel.layer_events import output_fifo_beats, output_fifo_width_bits
from flexspec.accel.resource_model import FIFO_SYNTH, MODEL_PATH, fifo_bram18, synthesize_output_fifo
from flexspec.fileio import write_file

OUT = Path(__file__).resolve().parent / "results" / "bench_output_fifo.json"
N, IFFT_BITS = 8, 16


def main(channels, flags=(False, True)) -> None:
    old = json.loads(OUT.read_text())["rows"] if OUT.exists() else []
    rows = [r for r in old if (r["channels"], r["uram_flag"]) not in {(c, u) for c in channels for u in flags}]
    width = output_fifo_width_bits(N, IFFT_BITS)
    for ch in channels:
        depth = output_fifo_beats(ch, N)
        for uram in flags:
            t0 = time.perf_counter()
            row = synthesize_output_fifo(depth, width, uram=uram, timeout_seconds=3600)
            row.update(channels=ch, seconds=round(time.perf_counter() - t0, 1), model_bram18=fifo_bram18(depth, width),
                       load_average=round(os.getloadavg()[0], 1))
            rows.append(row)
            print(f"{ch} channels, {depth} x {width}{' -uram' if uram else ''}: BRAM18 {row['bram18']} (model "
                  f"{row['model_bram18']}), URAM {row['uram']}, LUT {row['lut']}, FF {row['ff']}; {row['seconds']} s",
                  flush=True)
            rows.sort(key=lambda r: (r["channels"], r["uram_flag"]))
            write_file(OUT, json.dumps({"rows": rows}, indent=1))
    for r in rows:  # the model as it is now, for every stored synthesis
        r["model_bram18"] = fifo_bram18(r["depth"], r["width_bits"])
    write_file(OUT, json.dumps({"rows": rows}, indent=1))
    model = json.loads(MODEL_PATH.read_text())
    model["output_fifo"] = {
        "description": "each array's output FIFO (rtl.layer_engine / rtl.cluster: SyncFIFOBuffered of "
                       "layer_events.output_fifo_beats x output_fifo_width_bits); charged as "
                       "resource_model.fifo_bram18 RAMB18 per array (its control logic is in the glue fit)",
        "generated_by": "benchmarks/bench_output_fifo.py",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "yosys": subprocess.run(["yosys", "-V"], capture_output=True, text=True).stdout.strip(),
        "command": f"read_verilog FIFO.v; {FIFO_SYNTH} [-uram]; stat",
        "rows": [{k: r[k] for k in ("channels", "depth", "width_bits", "uram_flag", "bram18", "uram", "lut", "ff",
                                    "model_bram18")} for r in rows]}
    write_file(MODEL_PATH, json.dumps(model, indent=1))
    print(f"wrote {OUT} and {MODEL_PATH}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main([int(a) for a in args if a != "--no-uram"] or [8, 64, 256, 512],
         (False,) if "--no-uram" in args else (False, True))
