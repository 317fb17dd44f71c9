"""The whole spectral layer engine of one array, in Amaranth HDL (synthesizable, stream in/out).

Block diagram (one clock; every stream valid/ready)::

    i_* (one row of h input samples of one channel of one tile a beat)
      -> feeder (h host rows + N-h zero rows per channel; admits a channel when a writer slot is free)
      -> FFT2DReal (half-plane, one column of N complex values a beat)
      -> bank writer (two channel slots of N x (N/2+1) registers; emits the channel's tile-buffer
         rows through the schedule's static bank map: word b of row a = the frequency of rank a
         in bank b)
      -> SpectralPass (black box: tile buffer, PE array running the layer's program per tile,
         accumulators, read-out one column of N a beat)
      -> rounding acc_bits -> ifft_bits (round half away from zero, saturate)
      -> output FIFO (CREDITS tiles deep; a tile starts loading only while fewer than CREDITS
         tiles are loaded and not yet consumed, so the pass never sees back-pressure)
      -> IFFT2DReal (takes a tile once it is complete in the FIFO; one row of N a beat)
      -> OutputTail (flexspec.rtl.output_tail): overlap-add (carries: K-1 columns to the next
         tile of the row, K-1 rows to the tile below, in two small memories) -> + bias -> round
         to data_bits, saturate -> ReLU
      -> o_* write-back (one block row of one output channel a beat, with its address and mask)

The controller walks one image's tiles in row-major order; each tile runs every kernel group of
the layer back to back (the program), accumulating into output-channel slots: one kernel block
(all Cout) and one input-channel block (all Cin) on one array.  A blocked layer (``spec.runs``)
walks runs (one tile through one kernel block) in the dataflow's loop order; when that order has
the cin loop innermost with one-tile blocks, the runs of a tile's cin blocks form a chain that
keeps accumulating into one accumulator half (their programs continue each other's sums; the
choice is static, in the run table) and is read out once, after its last cin block; otherwise a
run's partial sums leave through the on-chip psum FIFO and come back with the next cin block's
read-out.

Ports (besides ``clk``, ``rst``):

* ``i_valid, i_ready, i_data`` (``h * data_bits``): tiles in row-major order (tile row, tile
  column), channels 0..Cin-1 of a tile, rows 0..h-1 of a channel; sample j of the row at bits
  ``[j*data_bits, (j+1)*data_bits)``, zero outside the image;
* ``o_valid, o_ready, o_data`` (``N * data_bits``), ``o_mask`` (N), ``o_chan``, ``o_row``,
  ``o_col``: value c of the beat is output pixel ``(o_chan, o_row, o_col + c - offset)`` when bit c
  of ``o_mask`` is set (``offset = K - 1 - padding``), after ReLU;
* ``done``: every write-back beat has left; ``conflict`` (checked builds): the pass's sticky
  bank-conflict flag.

Timing: :func:`flexspec.accel.layer_events.engine_events` (Verilator checks it to the cycle).
Arithmetic: :func:`flexspec.accel.functional.fixed_layer` (Verilator checks it bit for bit).
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..accel.fixed_point import bank_addresses
from ..accel.layer_events import CREDITS
from .fft import FFT2DReal, IFFT2DReal, _round_saturate
from .output_fifo import output_fifo
from .output_tail import OutputTail, tail_ports
from .spectral_pass import RunTable, SpectralPass

TOP = "flexspec_layer_engine"


class LayerEngine(wiring.Component):
    """One layer's engine; ``spec``: a :class:`flexspec.rtl.engine_case.EngineSpec`."""

    #: Deliberate faults the tests inject to prove that the checks catch them.
    FAULTS = ("drop_beat", "early_done", "drop_psum", "readout_each_run", "drop_carry")

    def __init__(self, spec, checks: bool = False, _fault: str | None = None):
        if _fault is not None and _fault not in self.FAULTS:
            raise ValueError(f"unknown fault {_fault!r}; known: {self.FAULTS}")
        self.spec, self.checks, self._fault = spec, checks, _fault
        g, c = spec.geometry, spec.pe_config
        super().__init__({"i_valid": In(1), "i_ready": Out(1), "i_data": In(g.tile * c.data_bits), "done": Out(1)}
                         | {f"o_{k}": v for k, v in tail_ports(g, c.data_bits).items()}
                         | ({"conflict": Out(1)} if checks else {}))

    def elaborate(self, platform):
        s, g, c = self.spec, self.spec.geometry, self.spec.pe_config
        q = s.quant
        m = Module()
        N, h, C = g.fft_size, g.tile, g.half
        db = c.data_bits
        F = N * C
        runs = g.runs.tolist()  # (cout block, cin block, tile) of each run of the walk
        T = len(runs)
        J = sum(g.run_in_channels(ib) for _, ib, _ in runs)  # channels the host streams
        blocked = g.blocked
        psums = g.cin_blocks > 1 and not g.chained  # partial sums leave the accumulators between cin blocks
        marks = g.chain_marks.tolist()  # per run: (starts a chain, ends a chain)
        chains = [(ob, ib_end) for (ob, ib_end, _), (_, e) in zip(runs, marks, strict=True) if e]
        if self._fault == "readout_each_run" and g.chained:  # tests only: read out after every cin block
            marks = [(1, 1)] * T

        m.submodules.fft = fft = FFT2DReal(q.fft_format)
        m.submodules.spass = sp = SpectralPass(c, s.program, T, checks=self.checks,
                                               runs=[r[:5] + tuple(mk) for r, mk in zip(s.runs, marks, strict=True)]
                                               if blocked else None)
        m.submodules.ifft = ifft = IFFT2DReal(q.ifft_format)
        if self.checks:
            m.d.comb += self.conflict.eq(sp.conflict)

        # ------------------------------------------------------------ feeder -> FFT
        fr = Signal(range(N))  # row of the channel going into the FFT
        chans = Signal(range(J + 1))  # channels fed so far
        busy = Signal(range(3))  # writer slots reserved (a channel in the FFT or in a slot)
        reserve, free = Signal(), Signal()
        host_row = Signal()
        m.d.comb += host_row.eq((fr < h) & (chans < J))
        admit = Signal()
        m.d.comb += admit.eq((fr != 0) | (busy < 2))
        m.d.comb += [self.i_ready.eq(host_row & admit & fft.i_ready),
                     fft.i_valid.eq(Mux(fr < h, self.i_valid & host_row & admit, 1)),
                     fft.i_data.eq(Mux(fr < h, self.i_data, 0))]
        fft_take = Signal()
        m.d.comb += [fft_take.eq(fft.i_valid & fft.i_ready), reserve.eq(fft_take & (fr == 0))]
        with m.If(fft_take):
            m.d.sync += fr.eq(Mux(fr == N - 1, 0, fr + 1))
            with m.If(fr == N - 1):
                m.d.sync += chans.eq(chans + 1)
        m.d.sync += busy.eq(busy + reserve - free)

        # ------------------------------------------------------------ bank writer
        # slot[b][f] = (re, im) of frequency f of the channel in slot b; the FFT's column c fills
        # f = r*C + c for every row r (static wiring)
        slot = [[(Signal(signed(db), name=f"ws{b}_{f}_re"), Signal(signed(db), name=f"ws{b}_{f}_im"))
                 for f in range(F)] for b in range(2)]
        wfill = Signal()
        full = Signal(2)
        set_full, clr_full = Signal(2), Signal(2)
        m.d.comb += fft.o_ready.eq(1)  # a slot was reserved when the channel entered the FFT
        with m.If(fft.o_valid):
            for b in range(2):
                for r in range(N):
                    for col in range(C):
                        with m.If((wfill == b) & (fft.o_index == col)):
                            m.d.sync += [slot[b][r * C + col][0].eq(fft.o_data[2 * r * db:(2 * r + 1) * db]),
                                         slot[b][r * C + col][1].eq(fft.o_data[(2 * r + 1) * db:(2 * r + 2) * db])]
            with m.If(fft.o_last):
                m.d.sync += wfill.eq(~wfill)
                m.d.comb += set_full.eq(Mux(wfill, 0b10, 0b01))
        m.d.sync += full.eq((full | set_full) & ~clr_full)

        # emitter: row a of the channel in slot `eslot` (word b = frequency of rank a in bank b)
        bank_of = list(c.bank_of)
        rank = bank_addresses(bank_of)
        d = c.channel_depth
        eslot = Signal()
        ea = Signal(range(d))
        ei = Signal(range(g.bi))
        erun = Signal(range(T + 1))  # the run whose channels the emitter writes
        erow = RunTable(m, [(g.run_in_channels(ib), st) for (_, ib, _), (st, _) in zip(runs, marks, strict=True)]
                        if blocked else None, (g.bi, 1), ("channels", "starts"), "emit_runs").read(erun, ("starts",))
        e_ci = erow["channels"]
        loads = Signal(range(CREDITS + 1))  # tiles loading or loaded, not yet consumed by the IFFT
        consumed = Signal()
        first_row = Signal()
        m.d.comb += first_row.eq((ei == 0) & (ea == 0) & erow["starts"])  # a chain's first row takes a credit
        words = []
        for b in range(c.num_banks):
            by_rank = {int(rank[f]): f for f in range(F) if bank_of[f] == b}
            cells = Array(Array(Cat(slot[sl][by_rank[a]][0], slot[sl][by_rank[a]][1]) if a in by_rank
                                else Const(0, 2 * db) for a in range(d)) for sl in range(2))
            words.append(cells[eslot][ea])
        m.d.comb += [sp.i_valid.eq(full.bit_select(eslot, 1) & (~first_row | (loads < CREDITS))),
                     sp.i_data.eq(Cat(*words))]
        row_take = Signal()
        m.d.comb += row_take.eq(sp.i_valid & sp.i_ready)
        with m.If(row_take):
            with m.If(ea == d - 1):
                m.d.sync += [ea.eq(0), eslot.eq(~eslot), ei.eq(Mux(ei == e_ci - 1, 0, ei + 1))]
                with m.If(ei == e_ci - 1):
                    m.d.sync += erun.eq(erun + 1)
                m.d.comb += [clr_full.eq(Mux(eslot, 0b10, 0b01)), free.eq(1)]
            with m.Else():
                m.d.sync += ea.eq(ea + 1)
        psum_done = Signal()  # a run's last partial-sum column has gone into the psum FIFO
        m.d.sync += loads.eq(loads + (row_take & first_row) - consumed - psum_done)

        # ------------------------------------------------------------ partial sums, rounding -> output FIFO
        # run orun's columns: + the previous cin block's partial sums (unless its first), then to
        # the psum FIFO (unless its last cin block) or rounded into the output FIFO
        ab, ib = c.acc_bits, q.ifft_bits
        W = N * 2 * ib
        m.submodules.ofifo = fifo = output_fifo(g.bo, N, ib, s.fifo_memory)
        orun = Signal(range(T + 1))
        # per chain (its last run's cin block): the first cin block, the last
        route = RunTable(m, [(int(ib_ == 0), int(ib_ == g.cin_blocks - 1)) for _, ib_ in chains] if psums
                         else None, (1, 1), ("first", "final"), "route_runs").read(orun)
        acc = [sp.o_data[k * ab:(k + 1) * ab].as_signed() for k in range(2 * N)]
        sp_take = Signal()
        m.d.comb += sp_take.eq(sp.o_valid & sp.o_ready)
        if psums:
            m.submodules.psum = pf = SyncFIFOBuffered(width=2 * N * ab, depth=g.psum_beats_in_flight + 2)
            first, final = route["first"], route["final"]
            add = ~first
            if self._fault == "drop_psum":  # tests only: the first partial sum that comes back is lost
                lost = Signal(init=1)
                with m.If(sp_take & ~first):
                    m.d.sync += lost.eq(0)
                add = add & ~lost
            acc = [Mux(add, (v + pf.r_data[k * ab:(k + 1) * ab].as_signed())[:ab].as_signed(), v)
                   for k, v in enumerate(acc)]
            psum_ok = first | pf.r_rdy
            m.d.comb += [pf.w_en.eq(sp.o_valid & ~final & psum_ok), pf.w_data.eq(Cat(*acc)),
                         pf.r_en.eq(sp_take & ~first),
                         fifo.w_en.eq(sp.o_valid & final & psum_ok),
                         sp.o_ready.eq(psum_ok & Mux(final, fifo.w_rdy, pf.w_rdy)),
                         psum_done.eq(sp_take & sp.o_last & ~final)]
        else:
            m.d.comb += [fifo.w_en.eq(sp.o_valid), sp.o_ready.eq(fifo.w_rdy)]
        with m.If(sp_take & sp.o_last):
            m.d.sync += orun.eq(orun + 1)
        rounded = [_round_saturate(v, q.acc_shift, ib)[:ib] for v in acc]
        m.d.comb += fifo.w_data.eq(Cat(*rounded, sp.o_last))
        complete = Signal(range(CREDITS + 1))  # runs whose last beat is in the FIFO, not yet consumed
        tile_in = Signal()
        m.d.comb += tile_in.eq(fifo.w_en & fifo.w_rdy & sp.o_last)
        ifft_take = Signal()
        m.d.comb += [ifft.i_valid.eq(fifo.r_rdy & (complete != 0)), ifft.i_data.eq(fifo.r_data[:W]),
                     fifo.r_en.eq(ifft.i_ready & (complete != 0)), ifft_take.eq(ifft.i_valid & ifft.i_ready)]
        m.d.comb += consumed.eq(ifft_take & fifo.r_data[W])  # the run's last column (its o_last tag)
        m.d.sync += complete.eq(complete + tile_in - consumed)

        # ------------------------------------------------------------ overlap-add, bias, ReLU, write-back
        # the IFFT's tiles: the final runs (last cin block) in walk order; per run its tile and cout block
        finals = [(divmod(t, g.tiles_x) + (ob * g.bo, g.run_out_channels(ob), ob * g.bo))
                  for ob, ib_, t in runs if ib_ == g.cin_blocks - 1]
        tail_fault = self._fault if self._fault in OutputTail.FAULTS else None
        m.submodules.tail = tail = OutputTail(g, q, s.bias_int, finals, db, _fault=tail_fault)
        m.d.comb += [tail.i_valid.eq(ifft.o_valid), tail.i_data.eq(ifft.o_data), ifft.o_ready.eq(tail.i_ready),
                     tail.o_ready.eq(self.o_ready), self.done.eq(tail.done)]
        m.d.comb += [getattr(self, p).eq(getattr(tail, p)) for p in ("o_valid", "o_data", "o_mask", "o_chan",
                                                                      "o_row", "o_col")]
        return m
