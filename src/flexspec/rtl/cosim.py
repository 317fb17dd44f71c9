"""Co-simulation: run the generated PE array in Amaranth's simulator and read back the results.

:func:`simulate_groups` runs a sequence of groups on one design instance: for each group it
loads the tile buffer and the schedule ROM through the design's write ports (the way a host
would), pulses ``start``, counts the clock edges until ``done`` and reads every accumulator
through the readout port.  The result is compared by the tests with
:func:`flexspec.accel.fixed_point.execute_group`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..accel.fixed_point import BankConflictError
from ..errors import FlexSpecError, UsageError
from .config import PEArrayConfig
from .program import GroupProgram

#: Give up on a run after this many cycles past the expected end (a hung design).
_HANG_MARGIN_CYCLES = 64


class RTLSimulationError(FlexSpecError):
    """The RTL simulation did not finish or disagreed with itself (a design defect)."""


@dataclass(frozen=True)
class RunResult:
    """What one run of the hardware produced."""

    acc_re: np.ndarray  # int64 [P, F]
    acc_im: np.ndarray  # int64 [P, F]
    measured_cycles: int  # clock edges from the edge sampling start to done high (testbench count)
    counter_cycles: int  # the design's own cycle counter
    conflict: bool


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def simulate_groups(config: PEArrayConfig, programs, accumulate=None, load_tile: bool = True,
                    read_results: bool = True, _done_latency: int | None = None) -> list[RunResult]:
    """Run ``programs`` (GroupProgram each, same config) back to back on one simulated design.

    ``accumulate[i]`` (default all False): run i adds to the accumulators instead of clearing.
    A bank conflict fails the built-in simulation assertion and raises BankConflictError.
    """
    from amaranth.sim import Simulator

    from .pe_array import SparsePEArray

    programs = list(programs)
    if not programs:
        return []
    for prog in programs:
        if not isinstance(prog, GroupProgram) or prog.config != config:
            raise UsageError("every program must be a GroupProgram built for the same PEArrayConfig")
    accumulate = [False] * len(programs) if accumulate is None else list(accumulate)
    dut = SparsePEArray(config, sim_assertions=True,
                        _done_latency=config.latency_cycles if _done_latency is None else _done_latency)
    results: list[RunResult] = []
    where = {"ticks": -1}  # ticks after the start edge, before the tick in flight
    P, F = config.num_pes, config.num_freq

    async def bench(ctx):
        for i, prog in enumerate(programs):
            # load the tile buffer and the schedule ROM through the write ports
            if load_tile:
                ctx.set(dut.tb_we, 1)
                for b, words in enumerate(prog.bank_words):
                    for a, w in enumerate(words):
                        ctx.set(dut.tb_bank, b)
                        ctx.set(dut.tb_addr, a)
                        ctx.set(dut.tb_data, w)
                        await ctx.tick()
                ctx.set(dut.tb_we, 0)
            ctx.set(dut.sch_we, 1)
            for a, w in enumerate(prog.rom_words):
                ctx.set(dut.sch_addr, a)
                ctx.set(dut.sch_data, w)
                await ctx.tick()
            ctx.set(dut.sch_we, 0)
            ctx.set(dut.sched_len, prog.makespan_cycles)
            ctx.set(dut.accumulate, int(bool(accumulate[i])))
            ctx.set(dut.start, 1)
            await ctx.tick()  # the edge that samples start
            ctx.set(dut.start, 0)
            n = 0
            where["ticks"] = -1
            limit = prog.makespan_cycles + config.latency_cycles + _HANG_MARGIN_CYCLES
            while not ctx.get(dut.done):
                where["ticks"] = n
                await ctx.tick()
                n += 1
                if n > limit:
                    raise RTLSimulationError(f"run {i}: done not raised within {limit} cycles")
            re = np.zeros((P, F), dtype=np.int64)
            im = np.zeros((P, F), dtype=np.int64)
            if read_results:
                for p in range(P):
                    ctx.set(dut.rd_pe, p)
                    for f in range(F):
                        ctx.set(dut.rd_freq, f)
                        re[p, f] = ctx.get(dut.rd_re)
                        im[p, f] = ctx.get(dut.rd_im)
            results.append(RunResult(re, im, n, int(ctx.get(dut.cycles)), bool(ctx.get(dut.conflict))))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    try:
        sim.run()
    except AssertionError as exc:
        if "done raised while" in str(exc):
            raise RTLSimulationError(f"run {len(results)}: {exc}") from None
        if "bank conflict" in str(exc):
            # the arbiter sees schedule entry k at the edge k+2 after start (see config.py)
            raise BankConflictError(cycle=where["ticks"] - 1, bank=-1, reads=config.ports + 1,
                                    ports=config.ports, group=len(results)) from None
        raise
    return results
