"""The shared FFT/IFFT pool of A arrays, in Amaranth HDL: the network-level structure of
``array_split = "tiles+groups"`` (spec: :mod:`flexspec.rtl.cluster_case`).

Block diagram (one clock; every stream valid/ready)::

    i{f}_* host rows (FFT f's tiles t = f mod F)      F feeders -> F FFT2DReal
      -> static distributor: FFT f's channel goes to the bank writer of column t mod a_t
         (a writer slot of that column is reserved when the channel enters the FFT)
      -> a_t bank writers (two channel slots each, the schedule's static bank map)
      -> broadcast bus: each writer row goes to the a_g arrays of its column at once
      -> A = a_t x a_g SpectralPass (array row g: output-channel slice g, its own program)
      -> rounding acc_bits -> ifft_bits, one output FIFO per array (CREDITS tiles)
      -> static IFFT arbiter: IFFT e takes its items (tile, row) in order from a ROM, each from
         the FIFO of array (t mod a_t, g) once that tile is complete and at the FIFO's head
      -> E IFFT2DReal
      -> E OutputTail (flexspec.rtl.output_tail, the one-array engine's own block: overlap-add,
         bias, ReLU), one per IFFT, walking that IFFT's items
      -> o{e}_* write-back (the engine's beat: ``o{e}_chan``, ``o{e}_row``, ``o{e}_col``, ``o{e}_mask``)

No partial sum crosses arrays (a row owns its output channels), so there is no cross-array adder.
The tails need every tile of an output-channel slice on one IFFT (its carries pass from tile to
tile): array row g goes to IFFT g mod E (:func:`flexspec.accel.ifft_assign.ifft_of_slice`), so
any split is served; with a_g < E the IFFTs e >= a_g have no items on this layer and are not
instantiated (their ``o{e}_*`` outputs stay low).  ``tail=False`` lets the block rows leave at
``block_frac`` instead (``o{e}_chan``, ``o{e}_tile``, ``o{e}_row``).

Flow control copies the one-array engine's (``flexspec.rtl.layer_engine``) per column: a channel
enters an FFT only when a writer slot of its column is free (so no FFT stalls), a tile's first row
is broadcast only when every array of the column holds fewer than ``CREDITS`` tiles loaded and not
consumed and every array's loader is ready.  ``done``: every tail has sent all its beats (every
IFFT all its rows with ``tail=False``).  Timing: :func:`flexspec.accel.pool_events.pool_output_cycles`
(:func:`~flexspec.accel.pool_events.pool_cycles` with ``tail=False``; Verilator checks both to the
cycle).
"""

from __future__ import annotations

from amaranth import Array, Cat, ClockSignal, Const, Instance, Module, Mux, ResetSignal, Shape, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..accel.fixed_point import bank_addresses
from ..accel.layer_events import CREDITS
from .config import _bits_for
from .cluster_case import tail_items
from .fft import FFT2DReal, IFFT2DReal, _round_saturate
from .output_fifo import output_fifo
from .output_tail import OutputTail, step_item_walk, tail_ports
from .spectral_pass import RunTable, SpectralPass

TOP = "flexspec_pool_cluster"


class BlackBox(wiring.Component):
    """A stand-in with ``component``'s ports that instantiates the external module ``module``
    (synthesis of the pool's glue alone: :func:`blackbox_stubs` declares the modules to Yosys)."""

    def __init__(self, component: wiring.Component, module: str):
        self.module = module
        super().__init__(component.signature)

    def elaborate(self, platform):
        m = Module()
        ports = {("i_" if member.flow == In else "o_") + name: getattr(self, name)
                 for name, member in self.signature.members.items()}
        m.submodules.box = Instance(self.module, i_clk=ClockSignal(), i_rst=ResetSignal(), **ports)
        return m


def blackbox_stubs(boxes: dict) -> str:
    """``(* blackbox *)`` Verilog declarations of the black boxes' modules (name -> signature)."""
    out = []
    for name, sig in boxes.items():
        decl = ["input clk", "input rst"] + [
            f"{'input' if member.flow == In else 'output'} [{Shape.cast(member.shape).width - 1}:0] {port}"
            for port, member in sig.members.items()]
        out.append(f"(* blackbox *)\nmodule {name}(clk, rst, {', '.join(sig.members)});\n"
                   + "".join(f"  {d};\n" for d in decl) + "endmodule\n")
    return "".join(out)


class PoolCluster(wiring.Component):
    """One layer's shared-pool cluster; ``spec``: a :class:`flexspec.rtl.cluster_case.ClusterSpec`."""

    #: Deliberate faults the tests inject: a tile sent to the wrong array column, the arbiter
    #: dropping a tile's beat, ``done`` raised one beat early, IFFT 0's tail losing one
    #: overlap-add carry (``drop_carry``: tail builds only).
    FAULTS = ("misroute", "drop_tile", "early_done", "drop_carry")

    def __init__(self, spec, checks: bool = False, _fault: str | None = None, blackbox: bool = False,
                 tail: bool = True):
        """``blackbox``: the spectral passes, FFTs and IFFTs become external modules (their
        declarations in :attr:`boxes` after elaboration): the pool's glue alone, for synthesis.
        ``tail``: each IFFT ends in an :class:`~flexspec.rtl.output_tail.OutputTail` (overlap-add,
        bias, ReLU, write-back: the layer's spatial output; each output-channel slice's tiles go
        through one IFFT, :func:`~flexspec.rtl.cluster_case.tail_items`); ``False``: the IFFT
        block rows leave at ``block_frac``."""
        self.blackbox, self.boxes, self.tail = blackbox, {}, tail
        if _fault is not None and _fault not in self.FAULTS:
            raise ValueError(f"unknown fault {_fault!r}; known: {self.FAULTS}")
        if _fault == "drop_carry" and not tail:
            raise ValueError("the drop_carry fault is in the output tail: build with tail=True")
        self.spec, self.checks, self._fault = spec, checks, _fault
        g, sh, q = spec.geometry, spec.shape, spec.quant
        self.tail_items = [tail_items(spec, e) for e in range(sh.ifft_engines)] if tail else None
        ports = {"done": Out(1)}
        for f in range(sh.fft_engines):
            ports |= {f"i{f}_valid": In(1), f"i{f}_ready": Out(1), f"i{f}_data": In(g.tile * q.data_bits)}
        for e in range(sh.ifft_engines):
            if tail:
                ports |= {f"o{e}_{name}": member for name, member in tail_ports(g, q.data_bits).items()}
            else:
                ports |= {f"o{e}_valid": Out(1), f"o{e}_ready": In(1), f"o{e}_data": Out(g.fft_size * q.block_bits),
                          f"o{e}_chan": Out(_bits_for(g.out_channels)), f"o{e}_tile": Out(_bits_for(g.tiles)),
                          f"o{e}_row": Out(_bits_for(g.fft_size))}
        if checks:
            ports["conflict"] = Out(1)
        super().__init__(ports)

    def _part(self, component, module: str):
        if not self.blackbox:
            return component
        self.boxes[module] = component.signature
        component._MustUse__silence = True  # replaced by its black box, never elaborated
        return BlackBox(component, module)

    def _tail(self, m, e: int, ifft, sent_all: list) -> None:
        """IFFT ``e``'s rows -> its OutputTail (overlap-add, bias, ReLU) -> ``o{e}_*`` write-back."""
        s = self.spec
        fault = self._fault if self._fault in ("early_done", "drop_carry") and e == 0 else None
        tail = OutputTail(s.geometry, s.quant, s.bias_int, self.tail_items[e], s.quant.data_bits, _fault=fault)
        m.submodules[f"tail_{e}"] = tail
        m.d.comb += [tail.i_valid.eq(ifft.o_valid), tail.i_data.eq(ifft.o_data), ifft.o_ready.eq(tail.i_ready),
                     tail.o_ready.eq(getattr(self, f"o{e}_ready"))]
        m.d.comb += [getattr(self, f"o{e}_{p}").eq(getattr(tail, f"o_{p}"))
                     for p in ("valid", "data", "mask", "chan", "row", "col")]
        sent_all.append(tail.done)

    def _block_rows(self, m, e: int, ifft, rom, items, sent_all: list) -> None:
        """IFFT ``e``'s rows out at ``block_frac``, tagged with the item's tile and output channel."""
        s, g, N = self.spec, self.spec.geometry, self.spec.geometry.fft_size
        oc_item = Signal(range(len(items) + 1), name=f"oitem_{e}")
        ot = rom.read(oc_item)
        ol = Signal(range(g.out_channels + 1), name=f"ol_{e}")
        orow = Signal(range(N), name=f"orow_{e}")
        ov, ordy = getattr(self, f"o{e}_valid"), getattr(self, f"o{e}_ready")
        m.d.comb += [ov.eq(ifft.o_valid), ifft.o_ready.eq(ordy), getattr(self, f"o{e}_data").eq(ifft.o_data),
                     getattr(self, f"o{e}_chan").eq(ot["chan_base"] + ol), getattr(self, f"o{e}_tile").eq(ot["tile"]),
                     getattr(self, f"o{e}_row").eq(orow)]
        out_take = Signal(name=f"out_take_{e}")
        m.d.comb += out_take.eq(ov & ordy)
        step_item_walk(m, out_take, orow, ol, oc_item, ot["channels"], N)
        want = sum(s.row_channels[r][1] for _, r in items) * N
        sent = Signal(range(want + 2), name=f"sent_{e}")
        with m.If(out_take):
            m.d.sync += sent.eq(sent + 1)
        sent_all.append(sent >= want - (1 if self._fault == "early_done" and e == 0 else 0))

    def elaborate(self, platform):
        s, g, sh, q = self.spec, self.spec.geometry, self.spec.shape, self.spec.quant
        m = Module()
        N, h, C = g.fft_size, g.tile, g.half
        T, cin, db = g.tiles, g.in_channels, q.data_bits
        Fn, E, at, ag = sh.fft_engines, sh.ifft_engines, sh.a_t, sh.a_g
        Fq = N * C

        # ------------------------------------------------------------ arrays (column c, row r)
        passes = {}
        for c in range(at):
            tiles_c = len(sh.tiles_of_column(c, T))
            for r in range(ag):
                if tiles_c == 0:
                    continue
                sp = self._part(SpectralPass(s.row_configs[r], s.row_programs[r], tiles_c, checks=self.checks),
                                f"pool_bb_pass_r{r}")
                m.submodules[f"pass_{c}_{r}"] = sp
                passes[c, r] = sp
        if self.checks:
            m.d.comb += self.conflict.eq(Cat(*(p.conflict for p in passes.values())).any())

        # ------------------------------------------------------------ bank writers (per column)
        busy = [Signal(range(3), name=f"busy_{c}") for c in range(at)]  # writer slots reserved
        reserve = [Signal(name=f"reserve_{c}") for c in range(at)]
        free = [Signal(name=f"free_{c}") for c in range(at)]
        for c in range(at):
            m.d.sync += busy[c].eq(busy[c] + reserve[c] - free[c])
        slots = [[[(Signal(signed(db), name=f"ws{c}_{b}_{f}_re"), Signal(signed(db), name=f"ws{c}_{b}_{f}_im"))
                   for f in range(Fq)] for b in range(2)] for c in range(at)]
        wfill = [Signal(name=f"wfill_{c}") for c in range(at)]
        full = [Signal(2, name=f"full_{c}") for c in range(at)]
        set_full = [Signal(2, name=f"set_full_{c}") for c in range(at)]
        clr_full = [Signal(2, name=f"clr_full_{c}") for c in range(at)]
        for c in range(at):
            m.d.sync += full[c].eq((full[c] | set_full[c]) & ~clr_full[c])

        # ------------------------------------------------------------ F feeders + FFTs + distributor
        for f in range(Fn):
            fft = self._part(FFT2DReal(q.fft_format), "pool_bb_fft")
            m.submodules[f"fft_{f}"] = fft
            cols = sh.columns_of_fft(f)
            M = len(cols)
            tiles_f = len(range(f, T, Fn))
            J = tiles_f * cin
            iv, ir, idata = (getattr(self, f"i{f}_{p}") for p in ("valid", "ready", "data"))
            fr = Signal(range(N), name=f"fr_{f}")
            chans = Signal(range(J + 1), name=f"chans_{f}")
            ci_in = Signal(range(cin), name=f"ci_in_{f}")
            m_in = Signal(range(M), name=f"m_in_{f}")  # column (local index) of the channel entering
            host_row = Signal(name=f"host_row_{f}")
            m.d.comb += host_row.eq((fr < h) & (chans < J))
            busy_in = Array(busy[c] for c in cols)[m_in]
            admit = Signal(name=f"admit_{f}")
            m.d.comb += admit.eq((fr != 0) | (busy_in < 2))
            m.d.comb += [ir.eq(host_row & admit & fft.i_ready),
                         fft.i_valid.eq(Mux(fr < h, iv & host_row & admit, 1)),
                         fft.i_data.eq(Mux(fr < h, idata, 0))]
            take = Signal(name=f"fft_take_{f}")
            m.d.comb += take.eq(fft.i_valid & fft.i_ready)
            with m.If(take):
                m.d.sync += fr.eq(Mux(fr == N - 1, 0, fr + 1))
                with m.If(fr == N - 1):
                    m.d.sync += [chans.eq(chans + 1), ci_in.eq(Mux(ci_in == cin - 1, 0, ci_in + 1))]
                    with m.If(ci_in == cin - 1):
                        m.d.sync += m_in.eq(Mux(m_in == M - 1, 0, m_in + 1))
            for k, c in enumerate(cols):
                m.d.comb += reserve[c].eq(take & (fr == 0) & (m_in == k))
            # distributor: the channel leaving the FFT goes to its column's writer (static order)
            ci_out = Signal(range(cin), name=f"ci_out_{f}")
            m_out = Signal(range(M), name=f"m_out_{f}")
            m.d.comb += fft.o_ready.eq(1)  # a slot was reserved when the channel entered the FFT
            with m.If(fft.o_valid & fft.o_last):
                m.d.sync += ci_out.eq(Mux(ci_out == cin - 1, 0, ci_out + 1))
                with m.If(ci_out == cin - 1):
                    m.d.sync += m_out.eq(Mux(m_out == M - 1, 0, m_out + 1))
            for k, c in enumerate(cols):
                dest = (m_out == k)
                if self._fault == "misroute" and M > 1 and k < 2:  # tests only: columns 0/1 of FFT f swapped
                    dest = (m_out == 1 - k)
                with m.If(fft.o_valid & dest):
                    for b in range(2):
                        for row in range(N):
                            for col in range(C):
                                with m.If((wfill[c] == b) & (fft.o_index == col)):
                                    lo = 2 * row * db
                                    m.d.sync += [slots[c][b][row * C + col][0].eq(fft.o_data[lo:lo + db]),
                                                 slots[c][b][row * C + col][1].eq(fft.o_data[lo + db:lo + 2 * db])]
                    with m.If(fft.o_last):
                        m.d.sync += wfill[c].eq(~wfill[c])
                        m.d.comb += set_full[c].eq(Mux(wfill[c], 0b10, 0b01))

        # ------------------------------------------------------------ emitters + broadcast bus
        bank_of = list(s.bank_of)
        rank = bank_addresses(bank_of)
        d = g.channel_depth
        nb = s.row_configs[0].num_banks
        loads = {key: Signal(range(CREDITS + 1), name=f"loads_{key[0]}_{key[1]}") for key in passes}
        consumed = {key: Signal(name=f"consumed_{key[0]}_{key[1]}") for key in passes}
        for c in range(at):
            rows = [r for r in range(ag) if (c, r) in passes]
            if not rows:
                continue
            eslot, ea, ei = Signal(name=f"eslot_{c}"), Signal(range(d), name=f"ea_{c}"), Signal(range(cin), name=f"ei_{c}")
            first_row = Signal(name=f"first_row_{c}")
            m.d.comb += first_row.eq((ei == 0) & (ea == 0))
            words = []
            for b in range(nb):
                by_rank = {int(rank[f]): f for f in range(Fq) if bank_of[f] == b}
                cells = Array(Array(Cat(slots[c][sl][by_rank[a]][0], slots[c][sl][by_rank[a]][1]) if a in by_rank
                                    else Const(0, 2 * db) for a in range(d)) for sl in range(2))
                words.append(cells[eslot][ea])
            credit = Cat(*(loads[c, r] < CREDITS for r in rows)).all()
            ready = Cat(*(passes[c, r].i_ready for r in rows)).all()
            offer = Signal(name=f"offer_{c}")
            m.d.comb += offer.eq(full[c].bit_select(eslot, 1) & (~first_row | credit))
            for r in rows:
                m.d.comb += [passes[c, r].i_valid.eq(offer & ready), passes[c, r].i_data.eq(Cat(*words))]
            row_take = Signal(name=f"row_take_{c}")
            m.d.comb += row_take.eq(offer & ready)
            with m.If(row_take):
                with m.If(ea == d - 1):
                    m.d.sync += [ea.eq(0), eslot.eq(~eslot), ei.eq(Mux(ei == cin - 1, 0, ei + 1))]
                    m.d.comb += [clr_full[c].eq(Mux(eslot, 0b10, 0b01)), free[c].eq(1)]
                with m.Else():
                    m.d.sync += ea.eq(ea + 1)
            for r in rows:
                m.d.sync += loads[c, r].eq(loads[c, r] + (row_take & first_row) - consumed[c, r])

        # ------------------------------------------------------------ rounding -> per-array FIFOs
        ab, ib = s.row_configs[0].acc_bits, q.ifft_bits
        W = N * 2 * ib
        fifos, complete, heads = {}, {}, {}
        for (c, r), sp in passes.items():
            fifo = output_fifo(s.row_channels[r][1], N, ib, s.fifo_memory)
            m.submodules[f"ofifo_{c}_{r}"] = fifo
            fifos[c, r] = fifo
            acc = [sp.o_data[k * ab:(k + 1) * ab].as_signed() for k in range(2 * N)]
            rounded = [_round_saturate(v, q.acc_shift, ib)[:ib] for v in acc]
            m.d.comb += [fifo.w_en.eq(sp.o_valid), sp.o_ready.eq(fifo.w_rdy), fifo.w_data.eq(Cat(*rounded, sp.o_last))]
            complete[c, r] = Signal(range(CREDITS + 1), name=f"complete_{c}_{r}")
            heads[c, r] = Signal(range(len(sh.tiles_of_column(c, T)) + 1), name=f"head_{c}_{r}")
            m.d.sync += complete[c, r].eq(complete[c, r] + (fifo.w_en & fifo.w_rdy & sp.o_last) - consumed[c, r])

        # ------------------------------------------------------------ static IFFT arbiter + E IFFTs
        r_en = {key: [] for key in passes}
        sent_all = []
        for e in range(E):
            items = sh.items_of_ifft(e, T)
            if not items:  # a_g < E: no slice of this layer goes to IFFT e; its outputs stay low
                continue
            ifft = self._part(IFFT2DReal(q.ifft_format), "pool_bb_ifft")
            m.submodules[f"ifft_{e}"] = ifft
            srcs = sorted({(sh.column_of(t), r) for t, r in items})
            rom = RunTable(m, [(srcs.index((sh.column_of(t), r)), t // at, t, s.row_channels[r][0],
                                s.row_channels[r][1]) for t, r in items], None, ("src", "k", "tile", "chan_base", "channels"), f"ifft_items_{e}")
            item = Signal(range(len(items) + 1), name=f"item_{e}")
            it = rom.read(item)
            more = Signal(name=f"more_{e}")
            m.d.comb += more.eq(item < len(items))
            sel_ok = Array((complete[k] != 0) & fifos[k].r_rdy & (heads[k] == it["k"]) for k in srcs)[it["src"]]
            data = Array(fifos[k].r_data for k in srcs)[it["src"]]
            avail = Signal(name=f"avail_{e}")
            m.d.comb += avail.eq(more & sel_ok)
            drop = Const(0)
            if self._fault == "drop_tile" and e == 0:  # tests only: the arbiter loses one beat of its first item
                lost = Signal(init=1, name="lost")
                drop = avail & lost & (item == 0)
                with m.If(drop):
                    m.d.sync += lost.eq(0)
            pop = Signal(name=f"pop_{e}")  # the FIFO head leaves (into the IFFT)
            m.d.comb += [ifft.i_valid.eq(avail & ~drop), ifft.i_data.eq(data[:W]),
                         pop.eq((ifft.i_valid & ifft.i_ready) | drop)]
            last = Signal(name=f"ifft_last_{e}")
            m.d.comb += last.eq(pop & data[W])
            for idx, k in enumerate(srcs):
                r_en[k].append(pop & (it["src"] == idx))
                with m.If(last & (it["src"] == idx)):
                    m.d.comb += consumed[k].eq(1)
                    m.d.sync += heads[k].eq(heads[k] + 1)
            with m.If(last):
                m.d.sync += item.eq(item + 1)
            if self.tail:
                self._tail(m, e, ifft, sent_all)
            else:
                self._block_rows(m, e, ifft, rom, items, sent_all)
        for k, hits in r_en.items():
            m.d.comb += fifos[k].r_en.eq(Cat(*hits).any() if hits else 0)
        m.d.comb += self.done.eq(Cat(*sent_all).all())
        return m
