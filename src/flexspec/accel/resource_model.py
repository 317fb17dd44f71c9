"""Per-block resource costs of a design: synthesized blocks from the calibrated fit, the rest estimated.

* **PE array** (one per array): the synthesis-calibrated model of ``flexspec/data/resource_model.json``
  (``benchmarks/calibrate_resources.py``: Yosys ``synth_xilinx`` of the generated RTL over a grid
  of sizes, non-negative least squares on structural features; provenance and held-out errors
  are in the file).  UltraScale+ profiles use the ``xcup`` fit, 7-series the ``xc7`` fit.
* **FFT / IFFT engines**: no RTL exists yet, so they are a *structural estimate*
  (:func:`fft_engine_cost`), labelled as such in every result; when the generated engine lands,
  it becomes one more entry of ``flexspec.accel.calibrate.BLOCKS``.  DSPs: every non-trivial
  twiddle is a complex multiply; the IFFT works at accumulator width, and an operand wider than
  the DSP multiplier's port (27 bits on DSP48E2, 25 on DSP48E1) takes ceil(width / port) DSPs per
  real product (a 48 x 18 product is 2 DSP48E2).
* **Intel (Stratix 10)**: no Yosys flow maps to Intel primitives here.  LUT/FF/LUT-RAM are the
  UltraScale+ fit with one ALUT counted as one LUT (an estimate); DSPs follow the profile's DSPs
  per complex MAC; memories in M20K blocks.  Every Intel figure is marked estimated.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

from ..errors import InputFileError
from .calibrate import BLOCKS

MODEL_PATH = Path(__file__).resolve().parent.parent / "data" / "resource_model.json"

#: Width of the DSP multiplier's wide input port, by synthesis family.
DSP_PORT_BITS = {"xcup": 27, "xc7": 25, "intel": 27}


def family_of(device) -> str:
    """Synthesis family of a device profile: 'xcup' (UltraScale+), 'xc7' (7-series) or 'intel'."""
    fam = device.family.lower()
    if device.vendor.lower().startswith(("intel", "altera")):
        return "intel"
    if "ultrascale" in fam:
        return "xcup"
    if fam.endswith("-7") or fam.startswith(("virtex-7", "kintex-7", "artix-7", "zynq-7")):
        return "xc7"
    raise InputFileError(device.path or device.name, f"no resource model for family '{device.family}' "
                                                     f"(known: UltraScale+, 7-series, Intel Stratix 10)", "family")


@lru_cache(maxsize=4)
def load_model(path: str = str(MODEL_PATH)) -> dict:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise InputFileError(p, f"cannot read the calibrated resource model: {exc}; regenerate it with "
                                "benchmarks/calibrate_resources.py") from None
    if data.get("format_version") != 1 or "blocks" not in data:
        raise InputFileError(p, "not a FlexSpec resource model (format_version 1 with 'blocks')")
    return data


def block_cost(block: str, family: str, params: dict) -> dict:
    """Resources (LUT, LUTRAM, FF, DSP, BRAM18, URAM) of one instance of a synthesized block."""
    fit_family = "xcup" if family == "intel" else family
    entry = load_model()["blocks"][block]["families"]
    if fit_family not in entry:
        raise InputFileError(MODEL_PATH, f"block '{block}' has no fit for family '{fit_family}'; rerun "
                                         f"benchmarks/calibrate_resources.py --family {fit_family}", "blocks")
    coef = entry[fit_family]["coefficients"]
    feats = BLOCKS[block].features(params)
    return {res: sum(c * feats[t] for t, c in terms.items()) for res, terms in coef.items()}


def synthesized_max(block: str, family: str, key: str) -> int:
    """The largest ``key`` (e.g. 'pes') among the sizes of ``block`` synthesized for ``family``
    (fitted or held out): beyond it the model extrapolates."""
    fits = load_model()["blocks"][block]["families"]
    fit = fits["xcup" if family == "intel" else family]
    sizes = list(fit["fitted_points"]) + [e["params"] for e in fit["held_out"].get("lut", [])]
    if "reference_family" in fit:  # a scale of another family's fit: calibrated as far as that one
        ref = fits[fit["reference_family"]]
        sizes += list(ref["fitted_points"]) + [e["params"] for e in ref["held_out"].get("lut", [])]
    return max(int(p.get(key, 0)) for p in sizes)


def scale_note(block: str, family: str) -> str | None:
    """Why ``block`` on ``family`` is estimated when its fit is a scale of another family's
    (``calibrate_resources.py --scale-of``), else None."""
    fit = load_model()["blocks"][block]["families"].get(family, {})
    if "reference_family" not in fit:
        return None
    largest = max(int(p.get("pes", 0)) for p in fit["fitted_points"])
    return (f"{block} on {family}: the {fit['reference_family']} fit scaled per resource by {family} synthesis "
            f"at P <= {largest} (no {family} block RAM measured)")


def fft_engine_cost(fft_size: int, width_bits: int, twiddle_bits: int, family: str,
                    dsp_per_complex_mac: int) -> dict:
    """Structural estimate of one pipelined 2-D N x N FFT engine (one tile every N cycles).

    A fully parallel N-point row FFT and an N-point column FFT per cycle: 2 x (N/2) log2 N
    radix-2 butterflies of 4 real adders (one LUT per bit: carry chain); a pipeline register of
    N complex words per stage; a double-buffered N x N transpose in N LUT-RAM banks (N parallel
    reads); complex twiddle multiplies on DSPs (see the module doc for wide operands)."""
    n = fft_size
    stages = max(1, math.ceil(math.log2(n)))
    butterflies = 2 * (n // 2) * stages
    wide = math.ceil(width_bits / DSP_PORT_BITS[family]) * math.ceil(twiddle_bits / 18)
    return {
        "lut": 4 * width_bits * butterflies + n * 2 * width_bits * math.ceil(2 * n / 64),
        "lutram": n * 2 * width_bits * math.ceil(2 * n / 64),
        "ff": 2 * stages * n * 2 * width_bits,
        "dsp": 2 * nontrivial_twiddles(n) * dsp_per_complex_mac * wide,
        "bram18": 0,
        "uram": 0,
    }


def nontrivial_twiddles(fft_size: int) -> int:
    """Complex multiplications by twiddles other than +-1, +-j in a radix-2 N-point FFT."""
    if fft_size & (fft_size - 1):
        return fft_size * max(1, math.ceil(math.log2(fft_size)))  # non power of two: generous
    count, n = 0, fft_size
    span = 2
    while span <= n:
        for k in range(span // 2):
            e = k * (n // span)  # exponent of W_n
            if e % (n // 4 if n >= 4 else 1) != 0:
                count += n // span
        span *= 2
    return count


def provenance() -> dict:
    m = load_model()
    return {"yosys": m["yosys"], **m["provenance"]}
