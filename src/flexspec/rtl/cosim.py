"""Co-simulation of the generated PE array in Amaranth's simulator (quick, small cases).

:func:`simulate_program` runs one program over one or two tiles back to back: the tiles sit in
the two tile-buffer halves, the runs' commands are issued as soon as the array is ready, and
each run accumulates into its own accumulator half, read out after the last ``done``.  The
Verilator co-simulation (:mod:`.verilate`) runs the same design compiled, for longer sequences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..accel.fixed_point import BankConflictError
from ..errors import FlexSpecError, UsageError
from .config import PEArrayConfig
from .program import Program, tile_buffer_words

#: Give up after this many cycles past the expected end (a hung design).
_HANG_MARGIN_CYCLES = 64


class RTLSimulationError(FlexSpecError):
    """The RTL simulation did not finish or disagreed with itself (a design defect)."""


@dataclass(frozen=True)
class RunResult:
    """What one run (one tile pass of a program) produced."""

    acc_re: np.ndarray  # int64 [acc_channels, F]
    acc_im: np.ndarray
    done_cycle: int  # clock edges from the edge accepting the first command to this run's done
    conflict: bool


def bank_init_words(config: PEArrayConfig, tiles) -> list:
    """Initial tile-buffer contents (both halves, ``2 * 2**bank_addr_bits`` words per bank)."""
    half = 1 << config.bank_addr_bits
    init = [[0] * (2 * half) for _ in range(config.num_banks)]
    for h, (re, im) in enumerate(tiles):
        for b, words in enumerate(tile_buffer_words(config, re, im)):
            init[b][h * half:h * half + len(words)] = words
    return init


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def unpack_columns(config: PEArrayConfig, beats):
    """Read-out beats (one column of N accumulators each, in slot * (N/2+1) + column order) ->
    (re, im) int64 [acc_channels, F] (frequency f = row * (N/2+1) + column)."""
    c = config
    N, C, ab = c.fft_size, c.num_columns, c.acc_bits
    beats = list(beats)
    if len(beats) != c.acc_columns:
        raise RTLSimulationError(f"read {len(beats)} accumulator columns, expected {c.acc_columns}")
    re = np.zeros((c.acc_channels, N, C), dtype=np.int64)
    im = np.zeros_like(re)
    for k, beat in enumerate(beats):
        j, col = divmod(k, C)
        for r in range(N):
            re[j, r, col] = _signed(beat >> (2 * r * ab), ab)
            im[j, r, col] = _signed(beat >> ((2 * r + 1) * ab), ab)
    return re.reshape(c.acc_channels, c.num_freq), im.reshape(c.acc_channels, c.num_freq)


def simulate_program(config: PEArrayConfig, program: Program, tiles, _done_stage: int = 5,
                     _forwarding: bool = True) -> list[RunResult]:
    """Run ``program`` on each of ``tiles`` (one or two (re, im) int arrays [C, F]) back to back.

    A checked build: a word whose PE reads something else than the compiler meant fails the
    simulation assertion and raises :class:`BankConflictError`."""
    # amaranth is an optional dependency (extra "rtl"): imported on use
    from amaranth.sim import Simulator

    from .pe_array import SparsePEArray  # amaranth, as above

    tiles = list(tiles)
    if not 1 <= len(tiles) <= 2:
        raise UsageError("the Amaranth co-simulation runs one or two tiles (the two tile-buffer halves)")
    if not isinstance(program, Program) or program.config != config:
        raise UsageError("the program must be built for this PEArrayConfig")
    dut = SparsePEArray(config, bank_init=bank_init_words(config, tiles), schedule_init=list(program.checked_words),
                        mask_init=list(program.mask), sim_assertions=True, _done_stage=_done_stage,
                        _forwarding=_forwarding)
    L = program.length
    out: dict = {"done": [], "acc": []}
    where = {"cycle": 0}

    async def bench(ctx):
        ctx.set(dut.cmd_base, 0)
        ctx.set(dut.cmd_len, L)
        cycle = 0
        for r in range(len(tiles)):
            ctx.set(dut.cmd_tb_half, r)
            ctx.set(dut.cmd_acc_half, r)
            ctx.set(dut.cmd_valid, 1)
            while not ctx.get(dut.cmd_ready):
                await ctx.tick()
                cycle += 1
                if ctx.get(dut.done):
                    out["done"].append(cycle)
            await ctx.tick()  # the edge that accepts the command
            if r == 0:
                cycle = 0
            else:
                cycle += 1
            if ctx.get(dut.done):
                out["done"].append(cycle)
        ctx.set(dut.cmd_valid, 0)
        limit = len(tiles) * (L + config.latency_cycles) + _HANG_MARGIN_CYCLES
        while len(out["done"]) < len(tiles):
            await ctx.tick()
            cycle += 1
            where["cycle"] = cycle
            if ctx.get(dut.done):
                out["done"].append(cycle)
            if cycle > limit:
                raise RTLSimulationError(f"done not raised within {limit} cycles")
        out["conflict"] = bool(ctx.get(dut.conflict))
        # read-out, one column request per cycle, collected rd_latency cycles later
        lat = config.readout_latency_cycles
        Q = config.acc_columns
        for h in range(len(tiles)):
            cols = []
            ctx.set(dut.rd_half, h)
            for a in range(Q + lat):
                ctx.set(dut.rd_valid, int(a < Q))
                ctx.set(dut.rd_addr, min(a, Q - 1))
                await ctx.tick()
                if ctx.get(dut.rd_out_valid):
                    cols.append(int(ctx.get(dut.rd_data)))
            out["acc"].append(unpack_columns(config, cols))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    try:
        sim.run()
    except AssertionError as exc:
        if "bank conflict" in str(exc):
            # the check sees word k one edge after the schedule memory read (see config.py)
            raise BankConflictError(cycle=where["cycle"], bank=-1, reads=config.ports + 1, ports=config.ports) from None
        raise
    return [RunResult(re, im, d, out["conflict"]) for (re, im), d in zip(out["acc"], out["done"], strict=True)]
