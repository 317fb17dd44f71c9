"""The sparse spectral PE array in Amaranth HDL (synthesizable; exported to Verilog by export.py).

Block diagram (one clock domain ``sync``)::

    schedule/kernel ROM --(valid, freq, W re/im per PE)--> bank map LUT + port arbiter
           |                                                     | (address per bank port)
           |                                     B tile-buffer banks, R sync read ports each
           v                                                     v
    P complex MACs: operand/pre-adder reg -> multiplier reg -> post-add + accumulate
           |
    P accumulator memories (F words of 2*acc_bits each, read-modify-write in one cycle)

Pipeline (entry issued in schedule cycle k, cycles counted after the edge sampling ``start``):
ROM read (k+1), arbitration + bank read (k+2), operand select + pre-adders (k+3),
multipliers (k+4), post-add and accumulator write (k+5).  ``done`` rises together with the
last accumulator write, so ``cycles == makespan + LATENCY_CYCLES`` (4, see config.py).

The port arbiter is real hardware: each cycle the PEs requesting a bank get its ports in PE
order (with ``broadcast``, PEs reading the same frequency share the first one's port).  If a
bank is asked for more than R reads the sticky ``conflict`` output goes high, and with
``sim_assertions=True`` an Amaranth ``Assert`` fails the simulation at that cycle.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Assert
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..accel.fixed_point import bank_addresses
from .config import LATENCY_CYCLES, PEArrayConfig, _bits_for

CYCLE_COUNTER_BITS = 32


def _u(n_values: int):
    return unsigned(_bits_for(n_values))


class SparsePEArray(wiring.Component):
    """P-PE sparse Hadamard-product array over a B-bank, R-port tile buffer.

    Ports (all synchronous to ``clk``; ``rst`` synchronous reset):

    * ``start`` (in): pulse while idle to run ``sched_len`` schedule entries.
    * ``accumulate`` (in, sampled with start): 1 = add to the accumulators, 0 = start from zero.
    * ``sched_len`` (in): schedule entries to run (the group's makespan).
    * ``busy``, ``done`` (out): ``done`` is high from the end of a run until the next start.
    * ``cycles`` (out): cycles from start to done of the last run (makespan + 4).
    * ``conflict`` (out): sticky; a bank got more reads than ports in the last run.
    * ``tb_we, tb_bank, tb_addr, tb_data`` (in): write one tile-buffer word
      (``tb_data = im << data_bits | re``).
    * ``sch_we, sch_addr, sch_data`` (in): write one schedule/kernel ROM word (see program.py).
    * ``rd_pe, rd_freq`` (in) -> ``rd_re, rd_im`` (out, combinational): accumulator readout.
    """

    def __init__(self, config: PEArrayConfig, bank_init=None, rom_init=None, sim_assertions: bool = False,
                 _done_latency: int = LATENCY_CYCLES):
        self.config = config
        self._done_latency = _done_latency  # only tests change it (to prove the checks can fail)
        self.bank_init = bank_init
        self.rom_init = rom_init
        self.sim_assertions = sim_assertions
        c = config
        super().__init__({
            "start": In(1),
            "accumulate": In(1),
            "sched_len": In(_u(c.schedule_depth + 1)),
            "busy": Out(1),
            "done": Out(1),
            "cycles": Out(CYCLE_COUNTER_BITS),
            "conflict": Out(1),
            "tb_we": In(1),
            "tb_bank": In(_u(c.num_banks)),
            "tb_addr": In(_u(c.bank_depth)),
            "tb_data": In(2 * c.data_bits),
            "sch_we": In(1),
            "sch_addr": In(_u(c.schedule_depth)),
            "sch_data": In(c.rom_word_bits),
            "rd_pe": In(_u(c.num_pes)),
            "rd_freq": In(_u(c.num_freq)),
            "rd_re": Out(signed(c.acc_bits)),
            "rd_im": Out(signed(c.acc_bits)),
        })

    def elaborate(self, platform):
        c = self.config
        m = Module()
        P, B, R, F = c.num_pes, c.num_banks, c.ports, c.num_freq
        db, fb, ab = c.data_bits, c.freq_bits, c.acc_bits
        E = c.entry_bits

        # ---------------------------------------------------------------- memories
        rom = Memory(shape=unsigned(c.rom_word_bits), depth=c.schedule_depth,
                     init=list(self.rom_init or [0] * c.schedule_depth))
        m.submodules.sched_rom = rom
        rom_rd = rom.read_port()
        rom_wr = rom.write_port()
        m.d.comb += [rom_wr.en.eq(self.sch_we), rom_wr.addr.eq(self.sch_addr), rom_wr.data.eq(self.sch_data)]

        bank_rd = []  # [b][r]
        for b in range(B):
            init = list(self.bank_init[b]) if self.bank_init is not None else [0] * c.bank_depth
            mem = Memory(shape=unsigned(2 * db), depth=c.bank_depth, init=init)
            m.submodules[f"tile_bank{b}"] = mem
            wr = mem.write_port()
            m.d.comb += [wr.en.eq(self.tb_we & (self.tb_bank == b)), wr.addr.eq(self.tb_addr),
                         wr.data.eq(self.tb_data)]
            ports = [mem.read_port() for _ in range(R)]
            for rp in ports:
                m.d.comb += rp.en.eq(1)
            bank_rd.append(ports)

        # ---------------------------------------------------------------- control
        idx = Signal(_u(c.schedule_depth + 1))
        cnt = Signal(CYCLE_COUNTER_BITS)
        busy = Signal()
        done = Signal()
        conflict = Signal()
        acc_mode = Signal()
        clear = Signal()  # one-cycle pulse: forget the accumulators' contents
        issue = Signal()
        m.d.comb += [self.busy.eq(busy), self.done.eq(done), self.conflict.eq(conflict),
                     issue.eq(busy & (idx < self.sched_len)),
                     rom_rd.addr.eq(idx), rom_rd.en.eq(1)]
        m.d.comb += clear.eq(self.start & ~busy & ~self.accumulate)
        with m.If(self.start & ~busy):
            m.d.sync += [busy.eq(1), done.eq(0), idx.eq(0), cnt.eq(0), conflict.eq(0),
                         acc_mode.eq(self.accumulate)]
        with m.Elif(busy):
            m.d.sync += cnt.eq(cnt + 1)
            with m.If(issue):
                m.d.sync += idx.eq(idx + 1)
            with m.If(cnt == self.sched_len + (self._done_latency - 1)):
                m.d.sync += [busy.eq(0), done.eq(1), self.cycles.eq(cnt + 1)]

        # ---------------------------------------------------------------- stage 1: decode, arbitrate
        s1_valid = Signal()
        m.d.sync += s1_valid.eq(issue)
        bank_lut = Array(Const(b, _u(B)) for b in c.bank_of)
        addr_lut = Array(Const(int(a), _u(c.bank_depth)) for a in bank_addresses(list(c.bank_of)))
        v1, f1, kr1, ki1, bank1, addr1 = [], [], [], [], [], []
        for p in range(P):
            word = rom_rd.data[p * E:(p + 1) * E]
            v = Signal(name=f"v1_{p}")
            f = Signal(fb, name=f"f1_{p}")
            kr = Signal(signed(db), name=f"kr1_{p}")
            ki = Signal(signed(db), name=f"ki1_{p}")
            bk = Signal(_u(B), name=f"bank1_{p}")
            ad = Signal(_u(c.bank_depth), name=f"addr1_{p}")
            m.d.comb += [v.eq(s1_valid & word[0]), f.eq(word[1:1 + fb]),
                         kr.eq(word[1 + fb:1 + fb + db]), ki.eq(word[1 + fb + db:1 + fb + 2 * db]),
                         bk.eq(bank_lut[f]), ad.eq(addr_lut[f])]
            v1.append(v)
            f1.append(f)
            kr1.append(kr)
            ki1.append(ki)
            bank1.append(bk)
            addr1.append(ad)

        same = {(q, p): v1[q] & v1[p] & (f1[q] == f1[p]) for p in range(P) for q in range(p)}
        leader, rank, port1 = [], [], []
        for p in range(P):
            ld = Signal(name=f"leader_{p}")
            if c.broadcast and p > 0:
                m.d.comb += ld.eq(v1[p] & ~Cat(*(same[q, p] for q in range(p))).any())
            else:
                m.d.comb += ld.eq(v1[p])
            leader.append(ld)
        for p in range(P):
            rk = Signal(_u(P + 1), name=f"rank_{p}")
            m.d.comb += rk.eq(sum((leader[q] & (bank1[q] == bank1[p]) for q in range(p)), Const(0, _u(P + 1))))
            rank.append(rk)
        for p in range(P):
            pt = Signal(_u(P + 1), name=f"port1_{p}")
            val = rank[p]
            if c.broadcast:
                for q in range(p - 1, -1, -1):  # the lowest matching PE wins (outermost Mux)
                    val = Mux(same[q, p], rank[q], val)
            m.d.comb += pt.eq(val)
            port1.append(pt)
        for b in range(B):
            for r in range(R):
                terms = [Mux(leader[q] & (bank1[q] == b) & (rank[q] == r), addr1[q], 0) for q in range(P)]
                acc = terms[0]
                for t in terms[1:]:
                    acc = acc | t
                m.d.comb += bank_rd[b][r].addr.eq(acc)
        conflict_now = Signal()
        m.d.comb += conflict_now.eq(Cat(*(leader[q] & (rank[q] >= R) for q in range(P))).any())
        with m.If(conflict_now):
            m.d.sync += conflict.eq(1)
        if self.sim_assertions:
            m.d.sync += Assert(~conflict_now, "bank conflict: a tile-buffer bank got more reads than ports")

        # ---------------------------------------------------------------- stage 2: select operands
        flat = Array(bank_rd[b][r].data for b in range(B) for r in range(R))
        s2 = []
        for p in range(P):
            v = Signal(name=f"v2_{p}")
            f = Signal(fb, name=f"f2_{p}")
            kr = Signal(signed(db), name=f"kr2_{p}")
            ki = Signal(signed(db), name=f"ki2_{p}")
            sel = Signal(_u(B * (P + 1)), name=f"sel2_{p}")
            m.d.sync += [v.eq(v1[p]), f.eq(f1[p]), kr.eq(kr1[p]), ki.eq(ki1[p]),
                         sel.eq(bank1[p] * R + port1[p])]
            x = Signal(2 * db, name=f"x2_{p}")
            m.d.comb += x.eq(flat[sel])
            s2.append((v, f, x[:db].as_signed(), x[db:].as_signed(), kr, ki))

        # ---------------------------------------------------------------- stages 3-5 per PE
        rd_re = Array(Signal(signed(ab), name=f"rd_re_{p}") for p in range(P))
        rd_im = Array(Signal(signed(ab), name=f"rd_im_{p}") for p in range(P))
        s3_any, s4_any = [], []
        for p in range(P):
            v2, f2, xr, xi, wr, wi = s2[p]
            v3 = Signal(name=f"v3_{p}")
            f3 = Signal(fb, name=f"f3_{p}")
            v4 = Signal(name=f"v4_{p}")
            f4 = Signal(fb, name=f"f4_{p}")
            m.d.sync += [v3.eq(v2), f3.eq(f2), v4.eq(v3), f4.eq(f3)]
            s3_any.append(v3)
            s4_any.append(v4)
            pre = signed(db + 1)
            prod_w = signed(2 * db + 2)
            if c.dsp_per_complex_mac == 3:
                # Gauss: k1 = wr*(xr+xi), k2 = xr*(wi-wr), k3 = xi*(wr+wi); re = k1-k3, im = k1+k2
                a1, a2, a3 = (Signal(pre, name=f"{n}_{p}") for n in ("xsum", "wdiff", "wsum"))
                b1, b2, b3 = (Signal(signed(db), name=f"{n}_{p}") for n in ("wr3", "xr3", "xi3"))
                m.d.sync += [a1.eq(xr + xi), a2.eq(wi - wr), a3.eq(wr + wi), b1.eq(wr), b2.eq(xr), b3.eq(xi)]
                k1, k2, k3 = (Signal(prod_w, name=f"k{i}_{p}") for i in (1, 2, 3))
                m.d.sync += [k1.eq(b1 * a1), k2.eq(b2 * a2), k3.eq(b3 * a3)]
                prod_re, prod_im = k1 - k3, k1 + k2
            else:
                o = [Signal(signed(db), name=f"{n}3_{p}") for n in ("xr", "xi", "wr", "wi")]
                m.d.sync += [o[0].eq(xr), o[1].eq(xi), o[2].eq(wr), o[3].eq(wi)]
                mm = [Signal(prod_w, name=f"m{i}_{p}") for i in range(4)]
                m.d.sync += [mm[0].eq(o[0] * o[2]), mm[1].eq(o[1] * o[3]),
                             mm[2].eq(o[0] * o[3]), mm[3].eq(o[1] * o[2])]
                prod_re, prod_im = mm[0] - mm[1], mm[2] + mm[3]

            accmem = Memory(shape=unsigned(2 * ab), depth=F, init=[])
            m.submodules[f"acc{p}"] = accmem
            rmw = accmem.read_port(domain="comb")
            host = accmem.read_port(domain="comb")
            wr_port = accmem.write_port()
            touched = Signal(F, name=f"touched_{p}")
            old_re = Signal(signed(ab), name=f"old_re_{p}")
            old_im = Signal(signed(ab), name=f"old_im_{p}")
            t_bit = touched.bit_select(f4, 1)
            m.d.comb += [rmw.addr.eq(f4),
                         old_re.eq(Mux(t_bit, rmw.data[:ab].as_signed(), 0)),
                         old_im.eq(Mux(t_bit, rmw.data[ab:].as_signed(), 0))]
            new_re = Signal(signed(ab), name=f"new_re_{p}")
            new_im = Signal(signed(ab), name=f"new_im_{p}")
            m.d.comb += [new_re.eq(old_re + prod_re), new_im.eq(old_im + prod_im),
                         wr_port.addr.eq(f4), wr_port.data.eq(Cat(new_re, new_im)), wr_port.en.eq(v4)]
            with m.If(clear):
                m.d.sync += touched.eq(0)
            with m.Elif(v4):
                m.d.sync += touched.bit_select(f4, 1).eq(1)
            h_bit = touched.bit_select(self.rd_freq, 1)
            m.d.comb += [host.addr.eq(self.rd_freq),
                         rd_re[p].eq(Mux(h_bit, host.data[:ab].as_signed(), 0)),
                         rd_im[p].eq(Mux(h_bit, host.data[ab:].as_signed(), 0))]
        m.d.comb += [self.rd_re.eq(rd_re[self.rd_pe]), self.rd_im.eq(rd_im[self.rd_pe])]

        if self.sim_assertions:
            # done is derived from a cycle count; check that the pipeline really is empty then
            finishing = busy & (cnt == self.sched_len + (self._done_latency - 1))
            m.d.sync += Assert(~finishing | ~(Cat(*s3_any).any() | Cat(*v1).any() | Cat(*(s[0] for s in s2)).any()
                                              | issue), "done raised while the pipeline still holds work")
        return m
