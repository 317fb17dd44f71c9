"""Fixed point end to end on the shipped real model: accuracy and agreement with float on the full
Fashion-MNIST test set (10,000 images), scales calibrated on training images.

The fixed-point path is ``flexspec.accel.functional.functional_fmnist``: every convolution through
the bit-exact models of the FFT engine, the PE array (schedules replayed, bank ports checked),
the rounding to the IFFT width, the IFFT engine, overlap-add, bias and output rounding; ReLU and
max-pool on integers; fc1/fc2 in float.  Calibration: the first ``--calib`` (default 1000)
Fashion-MNIST *training* images (never the evaluated test images).  The first batch also checks
every layer against the float64 OaA and its derived per-pixel bound.

Usage: OPENBLAS_NUM_THREADS=1 python benchmarks/bench_fixed_point.py [--images=N] [--calib=N]
(single-threaded BLAS: on a shared, loaded machine threaded OpenBLAS ran the per-frequency complex
matrix products ~25x slower, measured here at load ~20).
Writes benchmarks/results/fixed_point.json.  Needs the Debian package dataset-fashion-mnist.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from flexspec import datasets
from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.functional import calibrate_fmnist, functional_fmnist
from flexspec.accel.kernels import resolve_kernels
from flexspec.fileio import write_file
from flexspec.workload.zoo import get_network

OUT = Path(__file__).resolve().parent / "results" / "fixed_point.json"


def main(argv) -> int:
    opts = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    images, calib = int(opts.get("images", 10000)), int(opts.get("calib", 1000))
    if not datasets.fashion_mnist_available():
        print("skipped: the full Fashion-MNIST set is not installed (apt-get install -y dataset-fashion-mnist)")
        return 0
    _, kernels, src = resolve_kernels(get_network("fmnist_vgg"), None)
    config = AcceleratorConfig(arrays=1, pes=16, banks=20, ports=2)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    train = datasets.fashion_mnist("train")[0][:calib]
    quants = calibrate_fmnist(kernels, train, data_bits=config.data_bits, acc_bits=config.acc_bits)
    t_calib = time.perf_counter() - t0
    x, y = datasets.fashion_mnist("test")
    res = functional_fmnist(kernels, x[:images], y[:images], config, quants=quants, check_batches=1)
    out = {
        "format": 1,
        "kernels": src.to_dict(),
        "config": config.to_dict(),
        "calibration": f"Fashion-MNIST training images 0..{calib - 1}",
        "calibration_s": t_calib,
        "result": res.to_dict(),
        "accuracy_points_fixed_minus_float": 100 * (res.accuracy_fixed - res.accuracy_float),
        "load_average_before_after": [load_before, os.getloadavg()],
        "machine": f"{os.cpu_count()} CPU cores shared with other jobs",
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
    }
    write_file(OUT, json.dumps(out, indent=1, default=str) + "\n")
    print(json.dumps({k: out[k] for k in ("accuracy_points_fixed_minus_float", "calibration_s",
                                          "load_average_before_after")}))
    print(f"{res.images} images: agreement {100 * res.agreement:.2f}%, accuracy fixed {100 * res.accuracy_fixed:.2f}% "
          f"/ float {100 * res.accuracy_float:.2f}%, {res.seconds:.0f} s")
    for c in res.layers:
        print(f"  {c.name}: max |err| {c.max_abs_error:.3e}, max bound {c.bound:.3e} (x{c.bound_to_max_error:.1f}), "
              f"worst pixel err/bound {c.max_error_to_bound:.3f}, over bound {c.pixels_over_bound}")
    print("saturated:", res.saturated)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
