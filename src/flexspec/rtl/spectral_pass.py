"""The engine's spectral pass for one layer: tile stream in, PE array, accumulator stream out.

Block diagram::

    i_* stream (one tile-buffer row a beat) --> loader --> double-buffered tile buffer (PE array)
                                                              | issuer: one run of the layer's program
                                                              v         per tile, back to back
                                              double-buffered output-channel accumulators
    o_* stream (one column of N a beat) <-- output FIFO <-- column assembler <-- drainer
                                                  (read-out: K = readout_rows rows a request, K adder trees)

The controller walks the layer's tiles in order (``num_tiles``, a generation parameter): the
loader fills the free tile-buffer half, the issuer starts the program on a loaded half as soon
as the array and a free accumulator half are ready, the drainer streams a finished accumulator
half out (one request a cycle, N / K requests a column, ``slot * (N/2+1) + column`` order;
the column assembler joins a column's K-row beats into one output beat) and frees it.  Loading tile t+2 overlaps the
run of tile t+1, and draining tile t overlaps the run of tile t+1: the pass is compute bound
when the program is longer than a tile load and a drain.  The timing is exactly
:func:`flexspec.accel.engine.pass_events` (the tests check it against Verilator to the cycle).

Ports (synchronous to ``clk``, ``rst`` synchronous):

* ``i_valid, i_ready, i_data``: tile-buffer rows, ``bank_depth`` beats per tile; word b of a
  beat (``2*data_bits`` bits, ``im << data_bits | re``) goes to bank b.
* ``o_valid, o_ready, o_data, o_last``: accumulators, one column of N a beat (the IFFT's input
  beat), ``acc_channels * (N/2+1)`` beats per tile in ``slot * (N/2+1) + column`` order; row r
  of the column is ``o_data[2r*acc_bits:(2r+2)*acc_bits] = im << acc_bits | re``; ``o_last``
  marks a tile's final beat.
* ``done``: high once every tile's accumulators have left through ``o_*``.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import PEArrayConfig, _bits_for
from .pe_array import SparsePEArray

#: Depth of the output FIFO beyond the read-out latency (its credit keeps the read-out pipeline
#: from overflowing it under back-pressure).
OUTPUT_FIFO_SLACK = 3


class RunTable:
    """Per-run parameters of a blocked walk (``runs``: one tuple of ``fields`` per run, in order)
    as a ROM with one combinational read port per reader; ``None``: every run the same,
    ``default`` (plain integers: today's single-block pass, no ROM)."""

    PASS_FIELDS = ("base", "length", "rows", "columns", "mask_set")

    def __init__(self, m: Module, runs, default: tuple, fields: tuple = PASS_FIELDS, name: str = "run_table"):
        self.m, self.runs, self.default, self.fields = m, runs, default, fields
        if runs is not None:
            self.widths = [_bits_for(max(int(r[k]) for r in runs) + 1) for k in range(len(fields))]
            packed = [sum(int(v) << sum(self.widths[:k]) for k, v in enumerate(r)) for r in runs]
            self.mem = Memory(shape=sum(self.widths), depth=max(1, len(runs)), init=packed)
            m.submodules[name] = self.mem

    def read(self, index, flags: tuple = ()) -> dict:
        """The fields of run ``index`` (a signal), as values (plain integers when every run is the
        same; the fields named in ``flags`` then as one-bit constants)."""
        if self.runs is None:
            return {k: Const(int(v), 1) if k in flags else v for k, v in zip(self.fields, self.default, strict=True)}
        port = self.mem.read_port(domain="comb")
        self.m.d.comb += port.addr.eq(index)
        out, lo = {}, 0
        for k, w in zip(self.fields, self.widths, strict=True):
            out[k] = port.data[lo:lo + w]
            lo += w
        return out


class SpectralPass(wiring.Component):
    #: Fields of a run: schedule base, words, tile-buffer rows, read-out columns, read-out mask
    #: set, and the chain marks (1: the run takes a fresh accumulator half; 1: its accumulators are
    #: read out after it).  A run tuple of the first five fields alone starts and ends its chain.
    RUN_FIELDS = RunTable.PASS_FIELDS + ("starts", "ends")

    def __init__(self, config: PEArrayConfig, program, num_tiles: int, checks: bool = False, runs=None):
        """``runs``: per-run fields (:attr:`RUN_FIELDS`) of a blocked layer (see :class:`RunTable`;
        ``num_tiles`` is then the number of runs); default: ``num_tiles`` runs of the whole program,
        each read out after it.  A *chain* of runs (a run that ``starts`` up to the next that
        ``ends``) accumulates into one accumulator half: the later runs' programs continue the
        sums of the earlier ones (their words' ``first`` flags say so) and only the last run's
        accumulators leave, with its read-out columns and mask set."""
        self.config = config
        self.program = program
        self.num_tiles = int(num_tiles)
        self.runs = None if runs is None else tuple(tuple(int(v) for v in r) + (1, 1)[:7 - len(r)] for r in runs)
        if self.runs is not None and len(self.runs) != self.num_tiles:
            raise ValueError(f"{len(self.runs)} runs given for num_tiles={num_tiles}")
        if self.runs is not None and (not self.runs[0][5] or not self.runs[-1][6] or any(
                a[6] != b[5] for a, b in zip(self.runs, self.runs[1:], strict=False))):
            raise ValueError("chains must start after the previous one ends (first run starts, last run ends)")
        self.checks = checks
        c = config
        super().__init__({
            "i_valid": In(1), "i_ready": Out(1), "i_data": In(c.num_banks * 2 * c.data_bits),
            "o_valid": Out(1), "o_ready": In(1), "o_data": Out(c.fft_size * 2 * c.acc_bits), "o_last": Out(1),
            "done": Out(1),
        } | ({"conflict": Out(1)} if checks else {}))

    @property
    def num_chains(self) -> int:
        """Accumulator read-outs of the pass (one per chain of runs)."""
        return self.num_tiles if self.runs is None else sum(r[6] for r in self.runs)

    def elaborate(self, platform):
        c, T = self.config, self.num_tiles
        m = Module()
        words = self.program.checked_words if self.checks else self.program.words
        m.submodules.array = arr = SparsePEArray(c, schedule_init=list(words), mask_init=list(self.program.mask),
                                                 checks=self.checks)
        if self.checks:
            m.d.comb += self.conflict.eq(arr.conflict)
        D, L, Q = c.bank_depth, self.program.length, c.acc_columns
        tbits = _bits_for(T + 1)
        n_chains = self.num_chains
        chained = self.runs is not None and n_chains < T
        table = RunTable(m, None if self.runs is None else [r[:5] for r in self.runs], (0, L, D, Q, 0))
        # chain marks (constant 1 when every run is its own chain) and the drainer's per-chain table
        marks = RunTable(m, [r[5:] for r in self.runs] if chained else None, (1, 1), ("starts", "ends"), "chain_marks")
        drains = RunTable(m, [(r[3], r[4]) for r in self.runs if r[6]] if self.runs is not None else None, (Q, 0),
                          ("columns", "mask_set"), "drain_table")

        # ------------------------------------------------------------ loader
        lh = Signal()
        la = Signal(_bits_for(D))
        loaded = Signal(tbits)
        full = Signal(2)  # tile-buffer half holds a tile not yet read to the end
        beat = Signal()
        load_run = table.read(loaded)
        m.d.comb += [self.i_ready.eq(~full.bit_select(lh, 1) & (loaded < T)),
                     beat.eq(self.i_valid & self.i_ready),
                     arr.tb_we.eq(beat), arr.tb_half.eq(lh), arr.tb_addr.eq(la), arr.tb_data.eq(self.i_data)]
        set_full = Signal(2)
        clr_full = Signal(2)
        with m.If(beat):
            with m.If(la == load_run["rows"] - 1):
                m.d.sync += [la.eq(0), lh.eq(~lh), loaded.eq(loaded + 1)]
                m.d.comb += set_full.eq(1 << lh)
            with m.Else():
                m.d.sync += la.eq(la + 1)
        with m.If(arr.tb_free):
            m.d.comb += clr_full.eq(1 << arr.tb_free_half)
        m.d.sync += full.eq((full | set_full) & ~clr_full)

        # ------------------------------------------------------------ issuer
        # tile-buffer half ih alternates per run; accumulator half ah per chain (a chain's first
        # run takes a free half, its other runs keep accumulating into it)
        ih = Signal()
        ah = Signal()
        issued = Signal(tbits)
        acc_free = Signal(2, init=0b11)
        set_free = Signal(2)
        take_free = Signal(2)
        issue_run = table.read(issued)
        issue_marks = marks.read(issued, flags=("starts", "ends"))
        acc_ok = Signal()
        m.d.comb += acc_ok.eq(~issue_marks["starts"] | acc_free.bit_select(ah, 1))
        m.d.comb += [arr.cmd_valid.eq(full.bit_select(ih, 1) & acc_ok & (issued < T)),
                     arr.cmd_base.eq(issue_run["base"]), arr.cmd_len.eq(issue_run["length"]),
                     arr.cmd_tb_half.eq(ih), arr.cmd_acc_half.eq(ah)]
        with m.If(arr.cmd_valid & arr.cmd_ready):
            m.d.sync += [ih.eq(~ih), issued.eq(issued + 1)]
            with m.If(issue_marks["ends"]):
                m.d.sync += ah.eq(~ah)
            with m.If(issue_marks["starts"]):
                m.d.comb += take_free.eq(1 << ah)
        m.d.sync += acc_free.eq((acc_free | set_free) & ~take_free)

        # ------------------------------------------------------------ drainer
        lat = c.readout_latency_cycles
        fifo_depth = lat + OUTPUT_FIFO_SLACK
        W = c.fft_size * 2 * c.acc_bits
        G, KW = c.readout_beats_per_column, c.readout_rows * 2 * c.acc_bits
        m.submodules.ofifo = fifo = SyncFIFOBuffered(width=W + 1, depth=fifo_depth)
        finished = Signal(2)  # accumulator half holds a finished chain not yet drained
        set_fin = Signal(2)
        clr_fin = Signal(2)
        dh = Signal()
        draining = Signal()
        ra = Signal(_bits_for(Q))
        sub = Signal(max(1, c.readout_sub_bits))  # row group of column ra (always 0 when G = 1)
        in_flight = Signal(_bits_for(fifo_depth + 1))  # columns requested, not yet in the FIFO
        last_pipe = Signal(lat)  # o_last tags travelling with the read-out pipeline
        cbits = _bits_for(n_chains + 1)
        drained = Signal(cbits)
        sent = Signal(cbits)
        req = Signal()
        drain_run = drains.read(drained)
        q_last = drain_run["columns"] - 1
        if c.mask_sets > 1:
            m.d.comb += arr.rd_mask_set.eq(drain_run["mask_set"])
        # the array's done pulses come in run order: a run that ends its chain finishes its half
        finished_run = Signal(tbits)
        done_marks = marks.read(finished_run, flags=("ends",))
        with m.If(arr.done):
            m.d.sync += finished_run.eq(finished_run + 1)
            with m.If(done_marks["ends"]):
                m.d.comb += set_fin.eq(1 << arr.done_half)
        # a column's first request takes a FIFO credit; its other G - 1 requests follow it
        m.d.comb += req.eq(draining & ((sub != 0) | (fifo.level + in_flight < fifo_depth)))
        with m.If(~draining & finished.bit_select(dh, 1)):
            m.d.sync += [draining.eq(1), ra.eq(0), sub.eq(0)]
        with m.If(req):
            with m.If(sub == G - 1):
                m.d.sync += sub.eq(0)
                with m.If(ra == q_last):
                    m.d.sync += [draining.eq(0), dh.eq(~dh), drained.eq(drained + 1)]
                    m.d.comb += [clr_fin.eq(1 << dh), set_free.eq(1 << dh)]
                with m.Else():
                    m.d.sync += ra.eq(ra + 1)
            with m.Else():
                m.d.sync += sub.eq(sub + 1)
        m.d.sync += finished.eq((finished | set_fin) & ~clr_fin)
        m.d.comb += [arr.rd_valid.eq(req), arr.rd_half.eq(dh), arr.rd_addr.eq(ra)]
        if G > 1:
            m.d.comb += arr.rd_sub.eq(sub)
        m.d.sync += last_pipe.eq(last_pipe << 1 | (req & (ra == q_last) & (sub == G - 1)))
        # column assembler: the first G - 1 beats of a column wait in a shift register, the
        # last one completes the column (rows in order) into the FIFO in the cycle it arrives
        col_w = Signal()
        column = Signal(W)
        if G > 1:
            rsub = Signal(c.readout_sub_bits)  # row group of the beat arriving now (in request order)
            held = Signal((G - 1) * KW)
            with m.If(arr.rd_out_valid):
                m.d.sync += [held.eq(Cat(held[KW:], arr.rd_data)), rsub.eq(Mux(rsub == G - 1, 0, rsub + 1))]
            m.d.comb += [col_w.eq(arr.rd_out_valid & (rsub == G - 1)), column.eq(Cat(held, arr.rd_data))]
        else:
            m.d.comb += [col_w.eq(arr.rd_out_valid), column.eq(arr.rd_data)]
        m.d.sync += in_flight.eq(in_flight + (req & (sub == 0)) - col_w)
        m.d.comb += [fifo.w_en.eq(col_w),
                     fifo.w_data.eq(Cat(column, last_pipe[lat - 1])),
                     self.o_valid.eq(fifo.r_rdy), fifo.r_en.eq(self.o_ready),
                     self.o_data.eq(fifo.r_data[:W]), self.o_last.eq(fifo.r_data[W])]
        with m.If(self.o_valid & self.o_ready & self.o_last):
            m.d.sync += sent.eq(sent + 1)
        m.d.comb += self.done.eq(sent == n_chains)
        return m
