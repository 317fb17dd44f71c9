"""The output tail after an IFFT, in Amaranth HDL: overlap-add, bias, rounding, ReLU, write-back.

Shared by the one-array engine (:mod:`flexspec.rtl.layer_engine`: one tail after its IFFT) and the
shared-pool cluster (:mod:`flexspec.rtl.cluster`: one tail after each IFFT engine)::

    i_* (one row of N block values, block_frac, of one output channel of one tile a beat)
      -> overlap-add (carries: K-1 columns to the next tile of the row, K-1 rows to the tile
         below, in two small memories) -> + bias -> round to data_bits, saturate -> ReLU
      -> o_* write-back (one block row of one output channel a beat, with its address and mask)

The tail takes its *items* in a static order (a ROM): item ``(ty, tx, chan_base, channels,
mem_base)`` is ``channels`` output channels ``chan_base..`` of tile ``(ty, tx)``, N rows each; its
carries live at local channels ``mem_base..`` of the carry memories.  The order must visit the
tiles of each output channel in row-major order (the carries a tile reads were written by the tile
to its left and the tile above, earlier in the same tail).  Every beat is accepted the cycle it is
offered unless the write-back register is full and not taken (``i_ready = ~stall``), and a write-back
beat leaves ``OLA_CYCLES`` (:mod:`flexspec.accel.layer_events`) after its row was taken.

``done``: every write-back beat of the tail's items has left.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import _bits_for
from .fft import _round_saturate
from .spectral_pass import RunTable


def _signed_bits(values) -> int:
    """Bits of a signed integer holding every value (at least 2)."""
    return max([2] + [(int(v) if v >= 0 else ~int(v)).bit_length() + 1 for v in values])


def tail_beats(geometry, items) -> int:
    """Write-back beats of ``items`` (rows with output pixels x channels, per item)."""
    g = geometry
    return sum(int(ch) * sum(g.emits(int(ty), int(tx), r) for r in range(g.fft_size))
               for ty, tx, _, ch, *_ in items)


def tail_ports(geometry, data_bits: int) -> dict:
    """The write-back stream's members (name -> In/Out, the ``o_`` prefix left off): value c of
    the ``data`` beat is output pixel ``(chan, row, col + c - offset)`` when bit c of ``mask`` is set."""
    g = geometry
    return {"valid": Out(1), "ready": In(1), "data": Out(g.fft_size * data_bits), "mask": Out(g.fft_size),
            "chan": Out(_bits_for(g.out_channels)), "row": Out(_bits_for(g.out_height)),
            "col": Out(_bits_for(g.tiles_x * g.tile + 1))}


def step_item_walk(m: Module, take, row, chan, item, channels, rows: int) -> None:
    """On ``take``: the next of ``rows`` rows; after the last, the next of the item's ``channels``
    channels; after the last, the next item (an IFFT's output walk: items, channels, rows)."""
    with m.If(take):
        m.d.sync += row.eq(Mux(row == rows - 1, 0, row + 1))
        with m.If(row == rows - 1):
            m.d.sync += chan.eq(Mux(chan == channels - 1, 0, chan + 1))
            with m.If(chan == channels - 1):
                m.d.sync += item.eq(item + 1)


class OutputTail(wiring.Component):
    """Overlap-add, bias, ReLU and write-back of ``items`` (module doc) for ``geometry`` (an
    :class:`flexspec.accel.layer_events.EngineGeometry`), ``quant`` (block_bits, out_shift, data
    width) and ``bias`` (integers per output channel, at the accumulator's block scale)."""

    #: Deliberate faults the tests inject: one write-back beat lost, done one beat early, one
    #: right-hand carry not added (output channel ``chan_base`` of the first item with tx = 1).
    FAULTS = ("drop_beat", "early_done", "drop_carry")

    def __init__(self, geometry, quant, bias, items, data_bits: int, _fault: str | None = None):
        if _fault is not None and _fault not in self.FAULTS:
            raise ValueError(f"unknown fault {_fault!r}; known: {self.FAULTS}")
        self.geometry, self.quant, self.bias, self._fault = geometry, quant, [int(v) for v in bias], _fault
        self.items = [tuple(int(v) for v in it) for it in items]
        self.data_bits = data_bits
        N = geometry.fft_size
        super().__init__({"i_valid": In(1), "i_ready": Out(1), "i_data": In(N * quant.block_bits), "done": Out(1)}
                         | {f"o_{k}": v for k, v in tail_ports(geometry, data_bits).items()})

    def elaborate(self, platform):
        g, q, db = self.geometry, self.quant, self.data_bits
        m = Module()
        N, h, K = g.fft_size, g.tile, g.kernel_size
        bb = q.block_bits
        S = bb + 2  # up to four overlapping blocks
        items = self.items
        local = max(mb + ch for _, _, _, ch, mb in items)  # channels the carry memories hold
        same = all(cb == mb for _, _, cb, _, mb in items)  # carries addressed by the output channel
        frun = Signal(range(len(items) + 1))
        fr_ = RunTable(m, [it[:4] if same else it for it in items], None,
                       ("ty", "tx", "chan_base", "channels") + (() if same else ("mem_base",)),
                       "ola_runs").read(frun)
        ty, tx = Signal(range(g.tiles_y)), Signal(range(g.tiles_x))
        oc = Signal(range(g.out_channels))
        mc = Signal(range(local)) if not same else oc  # carry-memory channel
        ol = Signal(range(max(ch for *_, ch, _ in items)))  # output channel within the item
        orow = Signal(range(N))
        rowbase = Signal(range(g.tiles_y * h + 1))  # ty * h
        colbase = Signal(range(g.tiles_x * h + 1))  # tx * h
        m.d.comb += [ty.eq(fr_["ty"]), tx.eq(fr_["tx"]), oc.eq(fr_["chan_base"] + ol),
                     rowbase.eq(ty * h), colbase.eq(tx * h)]
        if not same:
            m.d.comb += mc.eq(fr_["mem_base"] + ol)
        ty_last, tx_last = Signal(), Signal()
        m.d.comb += [ty_last.eq(ty == g.tiles_y - 1), tx_last.eq(tx == g.tiles_x - 1)]
        stall = Signal()
        m.d.comb += [stall.eq(self.o_valid & ~self.o_ready), self.i_ready.eq(~stall)]
        take = Signal()
        m.d.comb += take.eq(self.i_valid & ~stall)
        step_item_walk(m, take, orow, ol, frun, fr_["channels"], N)
        # carries: below[(o, j, tx)] = N values (row j of the K-1 rows that carry down);
        # right[(o, r)] = K-1 values (the K-1 columns that carry right)
        kc = K - 1
        below = Memory(shape=unsigned(N * S), depth=max(1, local * kc * g.tiles_x), init=[])
        right = Memory(shape=unsigned(max(1, kc) * S), depth=local * N, init=[])
        m.submodules.below = below
        m.submodules.right = right
        b_rd, b_wr = below.read_port(domain="comb"), below.write_port()
        r_rd, r_wr = right.read_port(domain="comb"), right.write_port()
        m.d.comb += [b_rd.addr.eq((mc * kc + orow) * g.tiles_x + tx),
                     b_wr.addr.eq((mc * kc + (orow - h)) * g.tiles_x + tx),
                     r_rd.addr.eq(mc * N + orow), r_wr.addr.eq(mc * N + orow)]
        add_right = tx != 0
        if self._fault == "drop_carry":  # tests only: the first tile with a left neighbour loses it
            first = next(it for it in items if it[1] == 1)
            add_right = add_right & ~((ty == first[0]) & (tx == 1) & (oc == first[2]))
        sums = []
        for col in range(N):
            v = self.i_data[col * bb:(col + 1) * bb].as_signed()
            below_val = b_rd.data[col * S:(col + 1) * S].as_signed()
            add_below = (orow < kc) & (ty != 0)
            if col >= h:
                add_below = add_below & tx_last
            v = v + Mux(add_below, below_val, 0)
            if col < kc:
                v = v + Mux(add_right, r_rd.data[col * S:(col + 1) * S].as_signed(), 0)
            sv = Signal(signed(S), name=f"ola_{col}")
            m.d.comb += sv.eq(v)
            sums.append(sv)
        m.d.comb += [b_wr.data.eq(Cat(*sums)), b_wr.en.eq(take & (orow >= h) & ~ty_last),
                     r_wr.data.eq(Cat(*sums[h:h + kc])), r_wr.en.eq(take & ~tx_last)]
        # bias, rounding to the output width, ReLU
        yb = max(S, _signed_bits(self.bias)) + 1
        bias_sig = Array(Const(v, signed(yb)) for v in self.bias)[oc]
        outs = []
        for col in range(N):
            y = Signal(signed(yb), name=f"biased_{col}")
            m.d.comb += y.eq(sums[col] + bias_sig)
            r = _round_saturate(y, q.out_shift, db)
            outs.append(Mux(r < 0, 0, r)[:db])
        # write-back: only final rows inside the output window, with the columns' mask
        out_row = Signal(signed(_bits_for(g.tiles_y * h + N) + 2))
        m.d.comb += out_row.eq(rowbase + orow - g.offset)
        row_ok = (out_row >= 0) & (out_row < g.out_height) & ((orow < h) | ty_last)
        mask = []
        for col in range(N):
            x = colbase + col - g.offset
            ok = (x >= 0) & (x < g.out_width)
            mask.append(ok & tx_last if col >= h else ok)
        mask_sig = Signal(N)
        m.d.comb += mask_sig.eq(Cat(*mask))
        emit = take & row_ok & (mask_sig != 0)
        if self._fault == "drop_beat":  # tests only: the write-back loses one beat
            f0 = items[0]
            emit = emit & ~((oc == f0[2]) & (orow == h - 1) & (tx == f0[1]) & (ty == f0[0]))
        with m.If(~stall):
            m.d.sync += [self.o_valid.eq(emit), self.o_data.eq(Cat(*outs)), self.o_mask.eq(mask_sig),
                         self.o_chan.eq(oc), self.o_row.eq(out_row), self.o_col.eq(colbase)]
        beats = tail_beats(g, items)
        sent = Signal(range(beats + 1))
        with m.If(self.o_valid & self.o_ready):
            m.d.sync += sent.eq(sent + 1)
        target = beats - (1 if self._fault == "early_done" else 0)
        m.d.comb += self.done.eq(sent == target)
        return m
