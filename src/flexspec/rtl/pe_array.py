"""The sparse spectral PE array in Amaranth HDL (synthesizable; exported to Verilog by export.py).

Block diagram (one clock domain ``sync``)::

    command (base, len, halves) --> issue counter --> schedule/kernel memory (one word per cycle)
                                                        | B*R port addresses | P PE fields
                                                        v                    v
                      double-buffered tile buffer: B banks x R sync read ports      (static select)
                                                        |                    |
                                                        +--> P operand muxes + pre-adders -> multipliers
                                                                    -> post-add -> accumulate (2 stages)
    P x K accumulator memories (K = readout_rows), addressed by (half, row group, slot x column)
       --> read-out: PE-mask memory + K registered P-input adder trees (K rows of a column a request)

Every decision is in the schedule word (see program.py): which address each bank port reads,
which port each PE takes its operand from, the kernel value, the accumulator address and whether
this is the first contribution to that address (the accumulator then starts from zero, so no
clearing pass exists).  There is no arbiter: the datapath only follows the word.

Pipeline of word k of a run whose command is accepted at clock edge 0 (see config.py):
schedule read (edge k+1), bank read (k+2), operand select and pre-adders (k+3), multipliers (k+4),
post-add and accumulator read (k+5), accumulate and write (k+6).  The accumulate is not a
single-cycle read-modify-write: the accumulator is read one cycle ahead (a synchronous,
non-transparent read) and the one hazard left -- the previous word writing the same address in
the cycle the read was taken -- is resolved by forwarding the previous sum.  Runs issue back to
back: the next command is accepted in the cycle the current run issues its last word.

``checks=True`` (simulation and co-simulation builds) widens each word by the bank and address
the compiler meant each PE to read, and compares them with what the selected port reads: a
mismatch (a bank conflict or a corrupted word) sets the sticky ``conflict`` output, and with
``sim_assertions`` also fails an Amaranth ``Assert``.  Synthesis builds leave both out.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Assert
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import PEArrayConfig, _bits_for


def _u(n_values: int):
    return unsigned(_bits_for(n_values))


def pe_array_signature(c: PEArrayConfig, checks: bool) -> dict:
    """The ports of :class:`SparsePEArray` (name -> wiring member)."""
    sig = {
        "cmd_valid": In(1),
        "cmd_ready": Out(1),
        "cmd_base": In(_u(c.schedule_depth)),
        "cmd_len": In(_u(c.schedule_depth + 1)),
        "cmd_tb_half": In(1),
        "cmd_acc_half": In(1),
        "busy": Out(1),
        "done": Out(1),
        "done_half": Out(1),
        "tb_free": Out(1),
        "tb_free_half": Out(1),
        "tb_we": In(1),
        "tb_half": In(1),
        "tb_addr": In(c.bank_addr_bits),
        "tb_data": In(c.num_banks * 2 * c.data_bits),
        "sch_we": In(1),
        "sch_addr": In(_u(c.schedule_depth)),
        "sch_data": In(c.word_bits(checks)),
        "mk_we": In(1),
        "mk_addr": In(c.acc_addr_bits),
        "mk_data": In(c.fft_size * c.num_pes),
        "rd_valid": In(1),
        "rd_half": In(1),
        "rd_addr": In(c.acc_addr_bits),
        "rd_out_valid": Out(1),
        "rd_data": Out(c.readout_rows * 2 * c.acc_bits),
    }
    if c.readout_sub_bits:
        sig["rd_sub"] = In(c.readout_sub_bits)
    if c.mask_sets > 1:
        sig["rd_mask_set"] = In(_u(c.mask_sets))
    if checks:
        sig["conflict"] = Out(1)
    return sig


class SparsePEArray(wiring.Component):
    """P-PE sparse Hadamard-product array over a double-buffered B-bank, R-port tile buffer.

    Ports (synchronous to ``clk``; ``rst`` synchronous reset):

    * ``cmd_valid/cmd_ready, cmd_base, cmd_len, cmd_tb_half, cmd_acc_half``: run ``cmd_len`` (>= 1)
      schedule words from ``cmd_base``, reading tile-buffer half ``cmd_tb_half`` and
      accumulating into accumulator half ``cmd_acc_half``.  Ready is high when idle and in the
      cycle the current run issues its last word (back-to-back runs).
    * ``done``: one-cycle pulse at the edge the last word of a run is accumulated (``done_half``:
      the run's accumulator half); ``busy``: a word is in flight.
    * ``tb_free``: one-cycle pulse when the last word of a run has read its tile-buffer half
      (``tb_free_half``), which may be overwritten from the next cycle on.
    * ``tb_we, tb_half, tb_addr, tb_data``: write one tile-buffer row: word b of ``tb_data``
      (``2*data_bits`` bits each, ``im << data_bits | re``) into bank b at ``tb_addr``.
    * ``sch_we, sch_addr, sch_data``: write one schedule word.  ``mk_we, mk_addr, mk_data``:
      write the read-out PE mask of one accumulator address (bit ``row*P + p``: PE p holds a
      contribution to that row).
    * ``rd_valid, rd_half, rd_addr[, rd_sub]`` -> ``rd_out_valid, rd_data`` (``readout_latency_cycles``
      later, one per cycle): rows ``rd_sub * K .. rd_sub * K + K - 1`` (K = ``readout_rows``;
      ``rd_sub`` exists only when K < N) of column ``rd_addr = slot * (N/2+1) + column`` of output
      channel ``slot``, half ``rd_half``, summed over the PE mask of set ``rd_mask_set`` (only
      when ``mask_sets`` > 1: one set per kernel block; ``mask_init`` holds set s at addresses
      ``s * 2**acc_addr_bits + column``): K accumulators (row ``rd_sub * K + k``: bits
      ``[2k*acc_bits, (2k+2)*acc_bits)``, re low, im high), each summed over the PEs of its mask.
      Each PE keeps K accumulator memories (one write and two read ports each: accumulate and
      read-out), memory k holding the rows r = k (mod K) one after the other in its depth, so K
      sets the memories' width-to-depth ratio (block RAM) against the read-out's requests per
      column (N / K).  At K = 1 each half is its own memory whose one read port serves the
      accumulate and the read-out: read a half out only while no run accumulates into it (the
      spectral pass never does; ``sim_assertions`` builds assert it).
    * ``conflict`` (``checks`` builds only): sticky; a PE's selected port did not read the bank
      and address the compiler meant.
    """

    def __init__(self, config: PEArrayConfig, bank_init=None, schedule_init=None, mask_init=None,
                 checks: bool = False, sim_assertions: bool = False, _done_stage: int = 5,
                 _forwarding: bool = True):
        self.config = config
        self.checks = checks or sim_assertions
        self.sim_assertions = sim_assertions
        self.bank_init = bank_init  # [B][2 * 2**AB] words (both halves) or None
        self.schedule_init = schedule_init
        self.mask_init = mask_init
        self._done_stage = _done_stage  # only tests change these two (to prove the checks can fail)
        self._forwarding = _forwarding
        super().__init__(pe_array_signature(config, self.checks))

    def elaborate(self, platform):
        c = self.config
        m = Module()
        P, R, NP = c.num_pes, c.ports, c.num_ports
        db, ab, AB, CB, SB = c.data_bits, c.acc_bits, c.bank_addr_bits, c.acc_addr_bits, c.port_sel_bits
        E, W = c.pe_field_bits, c.word_bits(self.checks)

        # ---------------------------------------------------------------- memories
        sched = Memory(shape=unsigned(W), depth=c.schedule_depth,
                       init=list(self.schedule_init or []) + [0] * (c.schedule_depth - len(self.schedule_init or [])))
        m.submodules.schedule = sched
        sch_rd = sched.read_port()
        sch_wr = sched.write_port()
        m.d.comb += [sch_wr.en.eq(self.sch_we), sch_wr.addr.eq(self.sch_addr), sch_wr.data.eq(self.sch_data)]

        half_words = 1 << AB
        bank_rd = []  # flat port index b*R + r
        for b in range(c.num_banks):
            init = list(self.bank_init[b]) if self.bank_init is not None else []
            mem = Memory(shape=unsigned(2 * db), depth=2 * half_words, init=init)
            m.submodules[f"tile_bank{b}"] = mem
            wr = mem.write_port()
            m.d.comb += [wr.en.eq(self.tb_we), wr.addr.eq(Cat(self.tb_addr, self.tb_half)),
                         wr.data.eq(self.tb_data[b * 2 * db:(b + 1) * 2 * db])]
            bank_rd.extend(mem.read_port() for _ in range(R))

        acc_words = 1 << CB
        N = c.fft_size
        RB = c.row_bits
        K, G = c.readout_rows, c.readout_beats_per_column
        KB = (K - 1).bit_length()  # row bits that pick the lane (row mod K); the rest: the row group
        split = c.acc_split_halves
        mask_mem = Memory(shape=unsigned(N * P), depth=acc_words * c.mask_sets, init=list(self.mask_init or []))
        m.submodules.readout_mask = mask_mem
        mk_wr = mask_mem.write_port()
        mk_rd = mask_mem.read_port()
        m.d.comb += [mk_wr.en.eq(self.mk_we), mk_wr.addr.eq(self.mk_addr), mk_wr.data.eq(self.mk_data)]

        # ---------------------------------------------------------------- issue
        active = Signal()
        idx = Signal(_u(c.schedule_depth))
        remaining = Signal(_u(c.schedule_depth + 1))
        tbh0 = Signal()
        acch0 = Signal()
        accept = Signal()
        m.d.comb += [self.cmd_ready.eq(~active | (remaining == 1)),
                     accept.eq(self.cmd_valid & self.cmd_ready & (self.cmd_len != 0)),
                     sch_rd.addr.eq(idx), sch_rd.en.eq(1)]
        with m.If(accept):
            m.d.sync += [active.eq(1), idx.eq(self.cmd_base), remaining.eq(self.cmd_len),
                         tbh0.eq(self.cmd_tb_half), acch0.eq(self.cmd_acc_half)]
        with m.Elif(active):
            m.d.sync += [idx.eq(idx + 1), remaining.eq(remaining - 1)]
            with m.If(remaining == 1):
                m.d.sync += active.eq(0)

        # tags travelling with each word: (word valid, last word of its run, tile half, acc half)
        def tag_stage(prev, n):
            t = [Signal(name=f"{nm}{n}") for nm in ("wv", "last", "tbh", "acch")]
            m.d.sync += [a.eq(b) for a, b in zip(t, prev, strict=True)]
            return t

        tags = [tag_stage((active, remaining == 1, tbh0, acch0), 1)]
        for n in range(2, 6):
            tags.append(tag_stage(tags[-1], n))
        # tags[s-1] = tags of the word in stage s (s = 1..5)

        # ---------------------------------------------------------------- stage 1: word -> ports
        word = sch_rd.data
        wv1, _, tbh1, _ = tags[0]
        port_addr = [word[k * AB:(k + 1) * AB] for k in range(NP)]
        for k in range(NP):
            m.d.comb += [bank_rd[k].addr.eq(Cat(port_addr[k], tbh1)), bank_rd[k].en.eq(1)]
        base = NP * AB
        fields = []
        for p in range(P):
            w = word[base + p * E: base + (p + 1) * E]
            o = 0
            valid = w[o]
            o += 1
            sel = w[o:o + SB]
            o += SB
            first = w[o]
            o += 1
            aaddr = w[o:o + CB]
            o += CB
            row = w[o:o + RB]
            o += RB
            kr, ki = w[o:o + db].as_signed(), w[o + db:o + 2 * db].as_signed()
            fields.append((valid & wv1, sel, first, Cat(aaddr, row), kr, ki))

        if self.checks:
            conflict = Signal()
            m.d.comb += self.conflict.eq(conflict)
            cbase = base + P * E
            CF = c.check_field_bits
            port_bank = Array(Const(k // R, c.bank_bits) for k in range(NP))
            port_addr_arr = Array(port_addr)
            bad = []
            for p in range(P):
                chk = word[cbase + p * CF: cbase + (p + 1) * CF]
                v, sel = fields[p][0], fields[p][1]
                b = Signal(name=f"bad_{p}")
                m.d.comb += b.eq(v & ((sel >= NP) | (port_bank[sel] != chk[:c.bank_bits])
                                      | (port_addr_arr[sel] != chk[c.bank_bits:])))
                bad.append(b)
            bad_now = Signal()
            m.d.comb += bad_now.eq(Cat(*bad).any())
            with m.If(bad_now):
                m.d.sync += conflict.eq(1)
            if self.sim_assertions:
                m.d.sync += Assert(~bad_now, "bank conflict: a PE's tile-buffer port does not read what the "
                                             "schedule meant")

        # ---------------------------------------------------------------- stages 2..5 per PE
        flat = Array(bank_rd[k].data for k in range(NP))
        acc_rd_host = []  # per PE: the K read-out data words
        host_half_d = []  # per PE (split halves): per lane, the two halves' read data
        hosts_ports = []  # per PE (one memory a lane): the read-out ports
        v5_any = []
        for p in range(P):
            v1, sel1, first1, aaddr1, kr1, ki1 = fields[p]
            v2, first2 = Signal(name=f"v2_{p}"), Signal(name=f"first2_{p}")
            sel2 = Signal(SB, name=f"sel2_{p}")
            a2 = Signal(CB + RB, name=f"aaddr2_{p}")
            kr2, ki2 = Signal(signed(db), name=f"kr2_{p}"), Signal(signed(db), name=f"ki2_{p}")
            m.d.sync += [v2.eq(v1), first2.eq(first1), sel2.eq(sel1), a2.eq(aaddr1), kr2.eq(kr1), ki2.eq(ki1)]
            x = Signal(2 * db, name=f"x2_{p}")
            m.d.comb += x.eq(flat[sel2])
            xr, xi = x[:db].as_signed(), x[db:].as_signed()
            # stage 3: operands and pre-adders registered
            v3, first3, a3 = Signal(name=f"v3_{p}"), Signal(name=f"first3_{p}"), Signal(CB + RB, name=f"aaddr3_{p}")
            m.d.sync += [v3.eq(v2), first3.eq(first2), a3.eq(a2)]
            pre = signed(db + 1)
            prod_w = signed(2 * db + 2)
            if c.dsp_per_complex_mac == 3:
                # Gauss: k1 = wr*(xr+xi), k2 = xr*(wi-wr), k3 = xi*(wr+wi); re = k1-k3, im = k1+k2
                s1, s2, s3 = (Signal(pre, name=f"{n}_{p}") for n in ("xsum", "wdiff", "wsum"))
                b1, b2, b3 = (Signal(signed(db), name=f"{n}_{p}") for n in ("wr3", "xr3", "xi3"))
                m.d.sync += [s1.eq(xr + xi), s2.eq(ki2 - kr2), s3.eq(kr2 + ki2), b1.eq(kr2), b2.eq(xr), b3.eq(xi)]
                k = [Signal(prod_w, name=f"k{i}_{p}") for i in (1, 2, 3)]
                m.d.sync += [k[0].eq(b1 * s1), k[1].eq(b2 * s2), k[2].eq(b3 * s3)]
                post_re, post_im = k[0] - k[2], k[0] + k[1]
            else:
                o = [Signal(signed(db), name=f"{n}3_{p}") for n in ("xr", "xi", "wr", "wi")]
                m.d.sync += [o[0].eq(xr), o[1].eq(xi), o[2].eq(kr2), o[3].eq(ki2)]
                k = [Signal(prod_w, name=f"m{i}_{p}") for i in range(4)]
                m.d.sync += [k[0].eq(o[0] * o[2]), k[1].eq(o[1] * o[3]), k[2].eq(o[0] * o[3]), k[3].eq(o[1] * o[2])]
                post_re, post_im = k[0] - k[1], k[2] + k[3]
            # stage 4: products registered; post-add; accumulator read issued
            v4, first4, a4 = Signal(name=f"v4_{p}"), Signal(name=f"first4_{p}"), Signal(CB + RB, name=f"aaddr4_{p}")
            m.d.sync += [v4.eq(v3), first4.eq(first3), a4.eq(a3)]
            # K accumulator memories (lane k: the frequency rows r = k mod K), each
            # (half, row group r // K, slot x column) deep
            acch4 = tags[3][3]
            if not split:  # one memory per lane, a read port each for the accumulate and the read-out
                banks_rd, banks_wr, hosts = [], [], []
                for k_ in range(K):
                    accmem = Memory(shape=unsigned(2 * ab), depth=c.acc_lane_depth, init=[])
                    m.submodules[f"acc{p}_r{k_}"] = accmem
                    banks_rd.append(accmem.read_port())  # synchronous, not transparent: forwarding covers it
                    banks_wr.append(accmem.write_port())
                    hosts.append(accmem.read_port())
                acc_rd_host.append([h.data for h in hosts])
                hosts_ports.append(hosts)
                for rp in banks_rd:
                    m.d.comb += [rp.addr.eq(Cat(a4[:CB], a4[CB + KB:CB + RB], acch4)), rp.en.eq(1)]
                lane_rd = [rp.data for rp in banks_rd]
            else:
                # K = 1 < N: each half of the lane is its own memory with one read port, shared
                # by the accumulate (the half a run accumulates into) and the read-out (the other
                # half): one write and one read port a memory, so no copy for a second read port
                halves = [[Memory(shape=unsigned(2 * ab), depth=c.acc_lane_depth // 2, init=[]) for _ in range(2)]
                          for _ in range(K)]
                ports = []
                for k_ in range(K):
                    row = []
                    for h_ in range(2):
                        m.submodules[f"acc{p}_r{k_}_h{h_}"] = halves[k_][h_]
                        row.append((halves[k_][h_].read_port(), halves[k_][h_].write_port()))
                    ports.append(row)
                acc_here = [Signal(name=f"acc_rd_h{h_}_{p}") for h_ in range(2)]
                for h_ in range(2):
                    m.d.comb += acc_here[h_].eq(v4 & (acch4 == h_))
                    for k_ in range(K):
                        rp = ports[k_][h_][0]
                        m.d.comb += [rp.addr.eq(Mux(acc_here[h_], Cat(a4[:CB], a4[CB + KB:CB + RB]),
                                                    Cat(self.rd_addr, self.rd_sub))), rp.en.eq(1)]
                banks_wr = [[ports[k_][h_][1] for h_ in range(2)] for k_ in range(K)]
                hosts = [Signal(2 * ab, name=f"acc_host_{p}_{k_}") for k_ in range(K)]
                acc_rd_host.append(hosts)
                host_half_d.append([[ports[k_][h_][0].data for h_ in range(2)] for k_ in range(K)])
                if self.sim_assertions:
                    m.d.sync += Assert(~(self.rd_valid & v4 & (acch4 == self.rd_half)),
                                       "accumulator read-out of the half a run accumulates into")
            # stage 5: post-added product registered; accumulate with forwarding
            v5, first5 = Signal(name=f"v5_{p}"), Signal(name=f"first5_{p}")
            wa5 = Signal(CB + RB + 1, name=f"waddr5_{p}")  # column address, row, half
            pr5, pi5 = Signal(signed(2 * db + 2), name=f"pr5_{p}"), Signal(signed(2 * db + 2), name=f"pi5_{p}")
            m.d.sync += [v5.eq(v4), first5.eq(first4), wa5.eq(Cat(a4, acch4)), pr5.eq(post_re), pi5.eq(post_im)]
            v5_any.append(v5)
            lane5 = wa5[CB:CB + KB]
            rd5 = Signal(2 * ab, name=f"accrd5_{p}")
            if split:  # the half this word accumulates into
                lane_rd = [Mux(wa5[CB + RB], ports[k_][1][0].data, ports[k_][0][0].data) for k_ in range(K)]
            m.d.comb += rd5.eq(Array(lane_rd)[lane5] if K > 1 else lane_rd[0])
            fwd_v = Signal(name=f"fwd_v_{p}")
            fwd_a = Signal(CB + RB + 1, name=f"fwd_a_{p}")
            fwd_re, fwd_im = Signal(signed(ab), name=f"fwd_re_{p}"), Signal(signed(ab), name=f"fwd_im_{p}")
            hit = Signal(name=f"fwd_hit_{p}")
            old_re, old_im = Signal(signed(ab), name=f"old_re_{p}"), Signal(signed(ab), name=f"old_im_{p}")
            new_re, new_im = Signal(signed(ab), name=f"new_re_{p}"), Signal(signed(ab), name=f"new_im_{p}")
            m.d.comb += [hit.eq(fwd_v & (fwd_a == wa5) & int(self._forwarding)),
                         old_re.eq(Mux(first5, 0, Mux(hit, fwd_re, rd5[:ab].as_signed()))),
                         old_im.eq(Mux(first5, 0, Mux(hit, fwd_im, rd5[ab:].as_signed()))),
                         new_re.eq(old_re + pr5), new_im.eq(old_im + pi5)]
            for k_, wp in enumerate(banks_wr):
                if not split:
                    m.d.comb += [wp.en.eq(v5 & ((lane5 == k_) if K > 1 else 1)),
                                 wp.addr.eq(Cat(wa5[:CB], wa5[CB + KB:CB + RB], wa5[CB + RB])),
                                 wp.data.eq(Cat(new_re, new_im))]
                else:
                    for h_, wph in enumerate(wp):
                        m.d.comb += [wph.en.eq(v5 & ((lane5 == k_) if K > 1 else 1) & (wa5[CB + RB] == h_)),
                                     wph.addr.eq(Cat(wa5[:CB], wa5[CB + KB:CB + RB])),
                                     wph.data.eq(Cat(new_re, new_im))]
            m.d.sync += [fwd_v.eq(v5), fwd_a.eq(wa5), fwd_re.eq(new_re), fwd_im.eq(new_im)]

        # done: the last word of a run is accumulated at this edge (stage 5 -> memory)
        wv_d, last_d = tags[self._done_stage - 1][0], tags[self._done_stage - 1][1]
        m.d.sync += [self.done.eq(wv_d & last_d), self.done_half.eq(tags[self._done_stage - 1][3])]
        m.d.comb += [self.tb_free.eq(tags[1][0] & tags[1][1]), self.tb_free_half.eq(tags[1][2])]
        m.d.comb += self.busy.eq(active | Cat(*(t[0] for t in tags)).any())

        # ---------------------------------------------------------------- read-out
        if not split:
            rd_sub = self.rd_sub if G > 1 else Const(0, 0)
            for p in range(P):
                for host in hosts_ports[p]:
                    m.d.comb += [host.addr.eq(Cat(self.rd_addr, rd_sub, self.rd_half)), host.en.eq(1)]
        else:
            rdh1 = Signal(name="rd_half1")
            m.d.sync += rdh1.eq(self.rd_half)
            for hosts, halves_d in zip(acc_rd_host, host_half_d, strict=True):
                for host, (d0, d1) in zip(hosts, halves_d, strict=True):
                    m.d.comb += host.eq(Mux(rdh1, d1, d0))
        m.d.comb += [mk_rd.addr.eq(Cat(self.rd_addr, self.rd_mask_set) if c.mask_sets > 1 else self.rd_addr),
                     mk_rd.en.eq(1)]
        rvs = Signal(name="rd_v1")
        m.d.sync += rvs.eq(self.rd_valid)
        # the PE mask of the K rows this request reads (rows sub*K .. sub*K+K-1; bit k*P + p)
        if G > 1:
            sub1 = Signal(c.readout_sub_bits, name="rd_sub1")
            m.d.sync += sub1.eq(self.rd_sub)
            mask = Signal(K * P, name="rd_mask")
            m.d.comb += mask.eq(Array(mk_rd.data[g * K * P:(g + 1) * K * P] for g in range(G))[sub1])
        else:
            mask = mk_rd.data
        lanes = []
        for r in range(K):  # one P-input adder tree per lane; the PE mask gates its inputs
            level = []
            for p, hosts in enumerate(acc_rd_host):
                d, bit = hosts[r], mask[r * P + p]
                re_, im_ = Signal(signed(ab), name=f"rd_m_re_{r}_{p}"), Signal(signed(ab), name=f"rd_m_im_{r}_{p}")
                m.d.comb += [re_.eq(Mux(bit, d[:ab].as_signed(), 0)), im_.eq(Mux(bit, d[ab:].as_signed(), 0))]
                level.append((re_, im_))
            n = 0
            while n == 0 or len(level) > 1:  # registered levels (at least one)
                n += 1
                nxt = []
                for q in range(0, len(level), 2):
                    sre = Signal(signed(ab), name=f"rd_t{n}_re_{r}_{q}")
                    sim_ = Signal(signed(ab), name=f"rd_t{n}_im_{r}_{q}")
                    if q + 1 == len(level):
                        m.d.sync += [sre.eq(level[q][0]), sim_.eq(level[q][1])]
                    else:
                        m.d.sync += [sre.eq(level[q][0] + level[q + 1][0]), sim_.eq(level[q][1] + level[q + 1][1])]
                    nxt.append((sre, sim_))
                level = nxt
            lanes.append(level[0])
        for _ in range(c.readout_latency_cycles - 1):
            v = Signal()
            m.d.sync += v.eq(rvs)
            rvs = v
        m.d.comb += [self.rd_data.eq(Cat(*(x for lane in lanes for x in lane))), self.rd_out_valid.eq(rvs)]

        if self.sim_assertions:
            m.d.sync += Assert(~(accept & (self.cmd_len > c.schedule_depth)), "run longer than the schedule memory")
        return m
