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
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from ..errors import InputFileError
from .calibrate import BLOCKS, BRAM18_WIDTH_AT_DEPTH, CalibrationError, classify, parse_stat, run_yosys
from .layer_events import output_fifo_beats, output_fifo_width_bits

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


def output_tail_cost(params: dict, family: str) -> tuple[dict, str | None]:
    """Resources of one output tail (``flexspec.rtl.output_tail.OutputTail``; ``params`` in the
    calibrated block's terms, ``arch.tail_params``) from its synthesis fit, and why it is
    estimated (None when the family was synthesized and the size is within the calibrated grid)."""
    cost, note = _output_tail_cost(tuple(sorted(params.items())), family)
    return dict(cost), note


@lru_cache(maxsize=1024)  # the search costs the same few tail sizes for many candidates
def _output_tail_cost(key: tuple, family: str) -> tuple[dict, str | None]:
    params = dict(key)
    fits = load_model()["blocks"].get("output_tail", {}).get("families", {})
    fit_family = family if family in fits else "xcup"
    if fit_family not in fits:
        raise InputFileError(MODEL_PATH, "block 'output_tail' has no fit; rerun benchmarks/calibrate_resources.py "
                                         "--family xcup --blocks output_tail", "blocks")
    cost = block_cost("output_tail", fit_family, params)
    notes = []
    if fit_family != family:
        notes.append(f"output tail on {family}: the {fit_family} synthesis fit (no {family} synthesis of it)")
    fit = fits[fit_family]
    sizes = list(fit["fitted_points"]) + [e["params"] for e in fit["held_out"].get("lut", [])]
    most, n_max = max(p["channels"] * p["tiles_x"] for p in sizes), max(p["n"] for p in sizes)
    if params["channels"] * params["tiles_x"] > most or params["n"] > n_max:
        notes.append(f"output tail of {params['channels']} x {params['tiles_x']} carried channel-tiles at "
                     f"N={params['n']}: beyond the synthesized sizes (at most {most}, N <= {n_max}); extrapolated")
    rom, rom_max = _tail_rom_words(params), max(_tail_rom_words(p) for p in sizes)
    if rom > rom_max:
        notes.append(f"output tail item ROM of {rom} words: beyond the synthesized sizes (at most {rom_max}); "
                     "extrapolated")
    return cost, "; ".join(notes) or None


def _tail_rom_words(params: dict) -> int:
    """Items of an output tail (``calibrate.tail_items``: its slices x its tiles)."""
    return -(-params["channels"] // params["item_channels"]) * params["tiles_x"] * params["tiles_y"]


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


# ------------------------------------------------------------------- the shared pool's glue (h11f)
#: Resources the glue's synthesis fit covers, and its features (per design).
GLUE_RESOURCES = ("lut", "lutram", "ff", "bram18")
GLUE_FEATURES = ("const", "column_slot_bits", "arrays", "fft_engines", "ifft_engines", "arbiter_inputs", "fifo_bits",
                 "fifo_bram18")
#: The features each resource is fitted on: logic on the structure, block RAM on the FIFOs' blocks (the
#: synthesized sizes have a fixed slice per row, so the FIFO bits would alias the array count in a logic fit).
GLUE_TERMS = {"lut": GLUE_FEATURES[:6], "lutram": GLUE_FEATURES[:6], "ff": GLUE_FEATURES[:6], "bram18": ("fifo_bram18",)}


def arbiter_inputs(a_t: int, a_g: int, ifft_engines: int, tiles: int) -> int:
    """Array FIFOs the static IFFT arbiters select from, summed over the IFFTs (each IFFT's
    multiplexer width): IFFT e reads the arrays (t mod a_t, g) of its slices g
    (:func:`flexspec.accel.ifft_assign.ifft_of_slice`), so every array FIFO feeds one IFFT."""
    from .ifft_assign import ifft_of_slice  # here: ifft_assign -> grouping -> arch -> this module
    return len({(ifft_of_slice(g, ifft_engines), t % a_t, g) for t in range(min(tiles, a_t)) for g in range(a_g)})


def glue_features(a_t: int, a_g: int, fft_engines: int, ifft_engines: int, fft_size: int, data_bits: int,
                  row_out_channels: int, tiles: int, ifft_bits: int | None = None) -> dict:
    """Structural counts of the cluster's glue (``flexspec.rtl.cluster`` without the passes, FFTs
    and IFFTs): the bank writers' slot bits (two channel slots of N x (N/2+1) complex values per
    column), the arrays (rounding, credits, FIFO control), the engines, the arbiters' inputs and the
    output FIFOs' bits and blocks (``layer_events.output_fifo_beats`` x ``output_fifo_width_bits``: CREDITS
    tiles of a row's output channels; :func:`fifo_bram18`)."""
    half = fft_size // 2 + 1
    beats, width = output_fifo_beats(row_out_channels, fft_size), output_fifo_width_bits(fft_size, ifft_bits or data_bits)
    return {"const": 1, "column_slot_bits": a_t * 2 * fft_size * half * 2 * data_bits, "arrays": a_t * a_g,
            "fft_engines": fft_engines, "ifft_engines": ifft_engines,
            "arbiter_inputs": arbiter_inputs(a_t, a_g, ifft_engines, tiles),
            "fifo_bits": a_t * a_g * beats * width,
            "fifo_bram18": a_t * a_g * fifo_bram18(beats, width) if row_out_channels else 0}


def pool_glue_cost(features: dict, family: str) -> tuple[dict, str | None]:
    """Resources of the shared pool's glue (``flexspec.rtl.cluster`` without its passes, FFTs and
    IFFTs) from its Yosys fit (``benchmarks/bench_pool_synth.py``; features:
    ``flexspec.accel.pool_events.glue_features``), and why it is estimated (None when calibrated)."""
    fits = load_model()["blocks"].get("pool_glue", {}).get("families", {})
    if "xcup" not in fits:
        raise InputFileError(MODEL_PATH, "block 'pool_glue' has no fit; rerun benchmarks/bench_pool_synth.py", "blocks")
    coef = fits["xcup"]["coefficients"]
    cost = {res: 0.0 for res in ("lut", "lutram", "ff", "dsp", "bram18", "uram")}
    cost.update({res: sum(c * features[t] for t, c in terms.items()) for res, terms in coef.items()})
    return cost, (None if family == "xcup" else f"pool glue on {family}: the xcup synthesis fit")


# ------------------------------------------------------------------- the output FIFOs' memory
def fifo_bram18(depth: int, width_bits: int) -> int:
    """RAMB18s (a RAMB36 counts as two) of one ``depth`` x ``width_bits`` FIFO memory as Yosys 0.23
    ``synth_xilinx -family xcup`` maps it: the depth cut into segments, each in one simple-dual-port
    aspect ratio (d x w: ceil(width / w) blocks for d rows), the cheapest cut.  Measured (257-bit
    beats, ``data/resource_model.json`` "output_fifo", ``benchmarks/bench_output_fifo.py``): 80 rows 8
    (512 x 36), 640 rows 15 (1K x 18), 2,560 rows 37 (2K x 9 + 512 x 36), 5,120 rows 73 (2 x 2K x 9 + 1K x 18)."""
    return _fifo_segments(depth, width_bits)[0]


@lru_cache(maxsize=256)
def _fifo_segments(depth: int, width_bits: int) -> tuple[int, int]:
    """(RAMB18s, depth segments) of the cheapest cut of ``depth`` rows (:func:`fifo_bram18`)."""
    unit = BRAM18_WIDTH_AT_DEPTH[0][0]  # the shallowest aspect ratio's rows: segments are multiples of it
    rows = -(-depth // unit)
    best = [(0, 0)] + [(math.inf, 0)] * rows
    for r in range(1, rows + 1):
        for d, w in BRAM18_WIDTH_AT_DEPTH:
            prev = best[max(0, r - d // unit)]
            cand = (prev[0] + math.ceil(width_bits / w), prev[1] + 1)
            best[r] = min(best[r], cand)
    return best[rows]


#: LUTs a bit of the output multiplexer costs when the FIFO's depth is cut into several segments
#: (fitted on the two syntheses that have one: 2,560 x 257, 609 LUT; 5,120 x 257, 585 LUT; one
#: segment: 34-52 LUT of control, in the glue's fit).
FIFO_SEGMENT_MUX_LUTS_PER_BIT = 2.33


#: URAM288 geometry (rows x bits) a FIFO memory is tiled in (``output_fifo_cost``, memory "uram").
URAM_ROWS, URAM_WIDTH_BITS = 4096, 72
#: LUTs a bit of the read multiplexer costs per extra URAM depth segment (Yosys -uram: 5,120 x 257, two
#: segments, 352 LUT; 2,560 x 257, one segment, 63 LUT of control, in the glue's fit): (352 - 63) / 257.
URAM_SEGMENT_MUX_LUTS_PER_BIT = (352 - 63) / 257


def output_fifo_cost(channels: int, fft_size: int, ifft_bits: int, family: str,
                     memory: str = "bram") -> tuple[dict, str | None]:
    """Memory of one array's output FIFO (``rtl.layer_engine`` / ``rtl.cluster``: CREDITS tiles of
    ``channels`` output channels, ``layer_events.output_fifo_beats`` x ``output_fifo_width_bits``) in
    block RAM, as synthesized with the flow every block is calibrated with (Yosys 0.23 ``synth_xilinx
    -family xcup``, no ``-uram``: RAMB18/36; with ``-uram`` the FIFOs of 2,560 rows and more go to
    URAM288, a what-if measured in BENCHMARKS); its control logic is in the glue's fit, the
    multiplexer of a depth cut into segments is charged here), and why it is estimated (None when the
    family was synthesized)."""
    beats, width = output_fifo_beats(channels, fft_size), output_fifo_width_bits(fft_size, ifft_bits)
    note = None
    if memory == "uram":  # ram_style="ultra": URAM288 tiles (Yosys -uram: 2,560 x 257 -> 4, 5,120 x 257 -> 8)
        segments = math.ceil(beats / URAM_ROWS)
        cost = {"lut": URAM_SEGMENT_MUX_LUTS_PER_BIT * width * (segments - 1), "lutram": 0.0, "ff": 0.0, "dsp": 0.0,
                "bram18": 0.0, "uram": float(segments * math.ceil(width / URAM_WIDTH_BITS))}
        if family != "xcup":
            note = f"output FIFOs in URAM on {family}: the family has no UltraRAM synthesized here"
        return cost, note
    bram18, segments = _fifo_segments(beats, width)
    cost = {"lut": FIFO_SEGMENT_MUX_LUTS_PER_BIT * width if segments > 1 else 0.0, "lutram": 0.0, "ff": 0.0,
            "dsp": 0.0, "bram18": float(bram18), "uram": 0.0}
    if family == "intel":
        note = "output FIFOs on Intel: counted in 18-Kbit block tilings (Xilinx aspect ratios), not M20K-mapped"
    elif family != "xcup":
        note = f"output FIFOs on {family}: the xcup block tiling (same RAMB18 aspect ratios; not synthesized)"
    return cost, note


#: The Yosys script the output FIFO's memory mapping was measured with (``-uram`` appended for the URAM run).
FIFO_SYNTH = "synth_xilinx -family xcup -noiopad -top output_fifo"


def synthesize_output_fifo(depth: int, width_bits: int, uram: bool = False, timeout_seconds: float = 900,
                           memory: str | None = None) -> dict:
    """Yosys ``synth_xilinx -family xcup`` (``-uram`` if asked) of the FIFO the RTL instantiates as an
    array's output FIFO (``amaranth.lib.fifo.SyncFIFOBuffered``, ``depth`` x ``width_bits``): its
    resource counts (``calibrate.classify``) and raw cells.  ``memory``: the RTL's ``ram_style`` mark
    (``rtl.output_fifo.OutputFIFO``; None: unmarked, as the block-RAM rows were measured)."""
    from amaranth.back import verilog  # heavy optional dependency
    from amaranth.lib.fifo import SyncFIFOBuffered

    from ..rtl.output_fifo import OutputFIFO  # imports amaranth

    exe = shutil.which("yosys")
    if exe is None:
        raise CalibrationError("yosys not found on PATH (Debian: apt-get install -y yosys)")
    fifo = (SyncFIFOBuffered(width=width_bits, depth=depth) if memory is None
            else OutputFIFO(width=width_bits, depth=depth, memory=memory))
    src = verilog.convert(fifo, name="output_fifo", emit_src=False,
                          ports=[fifo.w_data, fifo.w_en, fifo.w_rdy, fifo.r_data, fifo.r_en, fifo.r_rdy])
    with tempfile.TemporaryDirectory(prefix="flexspec-fifo-") as tmp:
        v, stat = Path(tmp) / "fifo.v", Path(tmp) / "stat.txt"
        v.write_text(src)
        cmd = f"read_verilog {v}; {FIFO_SYNTH}{' -uram' if uram else ''}; tee -q -o {stat} stat"
        run_yosys(exe, cmd, f"a {depth} x {width_bits} FIFO", timeout_seconds, tail_chars=800)
        cells = parse_stat(stat.read_text())
    return {"depth": depth, "width_bits": width_bits, "uram_flag": uram, "cells": cells, **classify(cells)}
