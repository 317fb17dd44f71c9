"""Fixed point end to end on the shipped real model: accuracy and agreement with float on the full
Fashion-MNIST test set (10,000 images), scales calibrated on training images.

The fixed-point path is ``flexspec.accel.functional.functional_fmnist``: every convolution through
the bit-exact models of the FFT engine, the PE array (schedules replayed, bank ports checked),
the rounding to the IFFT width, the IFFT engine, overlap-add, bias and output rounding; ReLU and
max-pool on integers; fc1/fc2 in float.  Calibration: the first ``--calib`` (default 1000)
Fashion-MNIST *training* images (never the evaluated test images).  The first batch also checks
every layer against the float64 OaA and its derived per-pixel bound.

Usage: OPENBLAS_NUM_THREADS=1 python benchmarks/bench_fixed_point.py [--images=N] [--calib=N] [--part=K/M]
then, after all M parts, ``--merge=M``.  ``--part=K/M`` evaluates the K-th of M contiguous slices of
the test images (so M processes can share the run) and writes results/fixed_point_partK.json;
without ``--part`` the whole set runs in one process.  Writes benchmarks/results/fixed_point.json.
Single-threaded BLAS: on a shared, loaded machine threaded OpenBLAS ran the per-frequency complex
matrix products ~25x slower (measured here at load ~20).  Needs the Debian package
dataset-fashion-mnist.
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

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "fixed_point.json"
CONFIG = AcceleratorConfig(arrays=1, pes=16, banks=20, ports=2)


def _part_file(k: int) -> Path:
    return RESULTS / f"fixed_point_part{k}.json"


def run_part(images: int, calib: int, k: int, m: int) -> dict:
    _, kernels, src = resolve_kernels(get_network("fmnist_vgg"), None)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    quants = calibrate_fmnist(kernels, datasets.fashion_mnist("train")[0][:calib], data_bits=CONFIG.data_bits,
                              acc_bits=CONFIG.acc_bits)
    t_calib = time.perf_counter() - t0
    x, y = datasets.fashion_mnist("test")
    lo, hi = images * k // m, images * (k + 1) // m
    test_bytes = {img.tobytes() for img in x[lo:hi]}
    calib_in_eval = sum(img.tobytes() in test_bytes for img in datasets.fashion_mnist("train")[0][:calib])
    res = functional_fmnist(kernels, x[lo:hi], y[lo:hi], CONFIG, quants=quants, check_batches=1 if k == 0 else 0)
    return {"part": [k, m], "images": [lo, hi], "kernels": src.to_dict(), "calibration_s": t_calib,
            "calibration_images_identical_to_an_evaluated_image": calib_in_eval,
            "correct_fixed": round(res.accuracy_fixed * res.images), "correct_float": round(res.accuracy_float * res.images),
            "agree": round(res.agreement * res.images), "result": res.to_dict(),
            "load_average_before_after": [load_before, os.getloadavg()],
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}


def merge(parts: list[dict], calib: int) -> dict:
    n = sum(p["result"]["images"] for p in parts)
    first = parts[0]["result"]
    saturated: dict = {}
    for p in parts:
        for layer, points in p["result"]["saturated"].items():
            for point, c in points.items():
                saturated.setdefault(layer, {})[point] = saturated.get(layer, {}).get(point, 0) + c
    acc_fixed = sum(p["correct_fixed"] for p in parts) / n
    acc_float = sum(p["correct_float"] for p in parts) / n
    return {
        "format": 1, "images": n, "kernels": parts[0]["kernels"], "config": CONFIG.to_dict(),
        "calibration": f"Fashion-MNIST training images 0..{calib - 1}",
        "calibration_images_identical_to_an_evaluated_image": sum(
            p["calibration_images_identical_to_an_evaluated_image"] for p in parts),
        "agreement": sum(p["agree"] for p in parts) / n, "accuracy_fixed": acc_fixed, "accuracy_float": acc_float,
        "accuracy_points_fixed_minus_float": 100 * (acc_fixed - acc_float),
        "layers_checked_on_first_batch": first["layers"], "saturated": saturated, "quant": first["quant"],
        "seconds_per_part": [p["result"]["seconds"] for p in parts],
        "calibration_s": [p["calibration_s"] for p in parts],
        "load_average_before_after": [p["load_average_before_after"] for p in parts],
        "blas_threads": parts[0]["blas_threads"],
        "machine": f"{os.cpu_count()} CPU cores shared with other jobs",
    }


def report(out: dict) -> None:
    print(f"{out['images']} images: agreement {100 * out['agreement']:.2f}%, accuracy fixed "
          f"{100 * out['accuracy_fixed']:.2f}% / float {100 * out['accuracy_float']:.2f}% "
          f"({out['accuracy_points_fixed_minus_float']:+.2f} points)")
    for c in out["layers_checked_on_first_batch"]:
        print(f"  {c['name']}: max |err| {c['max_abs_error']:.3e}, max bound {c['bound']:.3e} "
              f"(x{c['bound_to_max_error']:.1f}), worst pixel err/bound {c['max_error_to_bound']:.3f}, "
              f"over bound {c['pixels_over_bound']}")
    print("saturated:", out["saturated"])


def main(argv) -> int:
    opts = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    images, calib = int(opts.get("images", 10000)), int(opts.get("calib", 1000))
    if not datasets.fashion_mnist_available():
        print("skipped: the full Fashion-MNIST set is not installed (apt-get install -y dataset-fashion-mnist)")
        return 0
    if "merge" in opts:
        parts = [json.loads(_part_file(k).read_text()) for k in range(int(opts["merge"]))]
    elif "part" in opts:
        k, m = (int(v) for v in opts["part"].split("/"))
        write_file(_part_file(k), json.dumps(run_part(images, calib, k, m), indent=1, default=str) + "\n")
        print(f"part {k}/{m} written")
        return 0
    else:
        parts = [run_part(images, calib, 0, 1)]
    out = merge(parts, calib)
    write_file(OUT, json.dumps(out, indent=1, default=str) + "\n")
    report(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
