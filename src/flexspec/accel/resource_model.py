"""Per-block resource costs of a design: synthesized blocks from the calibrated fit, the rest estimated.

* **PE array** (one per array): the synthesis-calibrated model of ``flexspec/data/resource_model.json``
  (``benchmarks/calibrate_resources.py``: Yosys ``synth_xilinx`` of the generated RTL over a grid
  of sizes, non-negative least squares on structural features; provenance and held-out errors
  are in the file).  UltraScale+ profiles use the ``xcup`` fit, 7-series the ``xc7`` fit.
* **FFT / IFFT engines** (:func:`transform_cost`): the generated ``FFT2DReal`` / ``IFFT2DReal``
  (``flexspec.rtl.fft``) synthesized like the PE array (blocks ``fft2d`` / ``ifft2d`` of
  ``flexspec.accel.calibrate.BLOCKS``, fitted on structural counts of their stages).  The IFFT
  takes the accumulators rounded to the data width (the functional model's and the engine's
  ``ifft_bits``), not the 48-bit accumulators.  Calibrated on UltraScale+ only: 7-series and
  Intel use that fit, marked estimated.  (Before, they were a structural estimate at the
  accumulator width: its figures are kept in BENCHMARKS.md "Designs that fit".)
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
    entry = load_model()["blocks"].get(block, {}).get("families", {})
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


#: Synthesized transform blocks of ``calibrate.BLOCKS``: forward and inverse.
TRANSFORM_BLOCKS = {False: "fft2d", True: "ifft2d"}


def transform_cost(fft_size: int, in_bits: int, inverse: bool, family: str) -> tuple[dict, str | None]:
    """Resources of one FFT (``inverse`` False) or IFFT engine from the synthesis-calibrated fit,
    and why it is estimated (None when the family and size were calibrated)."""
    block = TRANSFORM_BLOCKS[bool(inverse)]
    fits = load_model()["blocks"].get(block, {}).get("families", {})
    fit_family = family if family in fits else "xcup"
    if fit_family not in fits:
        raise InputFileError(MODEL_PATH, f"block '{block}' has no fit; rerun benchmarks/calibrate_resources.py "
                                         f"--family xcup --blocks fft2d,ifft2d", "blocks")
    cost = block_cost(block, fit_family, {"n": fft_size, "in_bits": in_bits, "inverse": bool(inverse)})
    notes = []
    if fit_family != family:
        notes.append(f"{block} on {family}: the {fit_family} synthesis fit (no {family} synthesis of it)")
    sizes = fits[fit_family]["fitted_points"] + [e["params"] for e in fits[fit_family]["held_out"].get("lut", [])]
    if fft_size not in {p["n"] for p in sizes}:
        notes.append(f"{block} at N={fft_size}: calibrated at N in {sorted({p['n'] for p in sizes})}; extrapolated")
    return cost, "; ".join(notes) or None


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
