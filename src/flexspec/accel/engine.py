"""Cycle model of the RTL engine's spectral pass for one layer on one array (the one place the
simulator takes those cycles from).

The pass (``flexspec.rtl.spectral_pass.SpectralPass``) streams T tiles through a PE array that
runs the layer's program (every kernel group of one tile pass, back to back, ``L`` words) on
each tile.  With the input always valid and the output always ready, its events are (clock
edges counted from the first edge after reset; ``D`` tile-buffer rows per tile, ``Q``
read-out requests per tile (accumulator columns x N / readout_rows: :func:`readout_requests`),
``lat`` the read-out latency):

* load of tile k: beats at edges ``S_k .. E_k = S_k + D - 1``; ``S_0 = 1``, ``S_1 = E_0 + 1``,
  ``S_k = max(E_{k-1} + 1, A_{k-2} + L + TILE_RELEASE_CYCLES)`` (its tile-buffer half is free
  once run k-2's last word has read it);
* run k accepted at ``A_k = max(E_k + 1, A_{k-1} + L, F_{k-2} + 1)`` (tile loaded; the array
  takes the next command in the cycle the current run issues its last word: back-to-back
  issue; the accumulator half drained);
* drain of run k starts at ``G_k = max(A_k + L + LATENCY_CYCLES + DRAIN_START_CYCLES, F_{k-1} + 1)``
  and issues its last read-out at ``F_k = G_k + Q``;
* ``done`` rises after edge ``F_{T-1} + lat + OUTPUT_CYCLES``.

Every constant is a register of the RTL, named where it is defined; the Verilator tests check
the whole recurrence to the cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import UsageError
from ..rtl.config import LATENCY_CYCLES, readout_latency_cycles
from ..rtl.program import program_length

#: Edges from a run's accept to the first edge its tile-buffer half may be written again: the
#: last word reads the banks at edge L+1, the release pulse is registered (+1), the loader's
#: ready follows (+1).
TILE_RELEASE_CYCLES = 3
#: Edges from ``done`` to the drainer's first state change: the finished flag is registered,
#: then the drainer starts.
DRAIN_START_CYCLES = 2
#: Edges from the last read-out request's data to ``done``: the output FIFO's write and its
#: output register.
OUTPUT_CYCLES = 2
#: Tiles after which the recurrence is periodic (its period is at most two tiles; a test checks it).
PERIODIC_TILES = 8


@dataclass(frozen=True)
class PassEvents:
    """Edges of every event of one pass (int arrays of length T) and the total."""

    load_start: np.ndarray
    load_end: np.ndarray
    accept: np.ndarray
    drain_start: np.ndarray
    drain_end: np.ndarray
    cycles: int  # the edge after which ``done`` is high


def pass_events(rows_per_tile: int, program_cycles: int, outputs_per_tile: int, tiles: int,
                readout_cycles: int) -> PassEvents:
    """The pass's event edges (see the module docstring for the recurrence)."""
    D, L, Q, T, lat = (int(v) for v in (rows_per_tile, program_cycles, outputs_per_tile, tiles, readout_cycles))
    if min(D, L, T) < 1 or Q < 0 or lat < 0:
        raise UsageError(f"pass sizes must be >= 1 (rows {D}, program {L}, tiles {T}; outputs {Q} >= 0)")
    S, E, A, G, F = (np.zeros(T, dtype=np.int64) for _ in range(5))
    for k in range(T):
        if k == 0:
            S[k] = 1
        elif k == 1:
            S[k] = E[0] + 1
        else:
            S[k] = max(E[k - 1] + 1, A[k - 2] + L + TILE_RELEASE_CYCLES)
        E[k] = S[k] + D - 1
        G[k] = issue_and_drain(k, E[k] + 1, A, F, L, Q)
    return PassEvents(S, E, A, G, F, int(F[-1] + lat + OUTPUT_CYCLES))


def issue_and_drain(k: int, loaded: int, A: np.ndarray, F: np.ndarray, program_cycles: int,
                    readout_requests: int) -> int:
    """Run k of a pass whose tile is loaded by edge ``loaded``: its accept ``A[k]`` (back-to-back
    issue after run k-1, its accumulator half drained by run k-2) and its drain's last request
    ``F[k]`` (after its last word, once run k-1 has drained); returns the drain's start.  The whole
    engine's recurrence (``flexspec.accel.layer_events``) is the same with per-run programs and the
    accumulator-half and read-out terms per chain of runs (runs that accumulate into one half)."""
    L = program_cycles
    a = loaded
    if k >= 1:
        a = max(a, A[k - 1] + L)
    if k >= 2:
        a = max(a, F[k - 2] + 1)
    A[k] = a
    g = a + L + LATENCY_CYCLES + DRAIN_START_CYCLES
    if k >= 1:
        g = max(g, F[k - 1] + 1)
    F[k] = g + readout_requests
    return int(g)


def pass_cycles(rows_per_tile: int, program_cycles: int, outputs_per_tile: int, tiles: int,
                readout_cycles: int) -> int:
    """Cycles of one layer's spectral pass over ``tiles`` tiles (from reset to ``done``)."""
    return pass_events(rows_per_tile, program_cycles, outputs_per_tile, tiles, readout_cycles).cycles


@lru_cache(maxsize=1 << 16)  # a pure function of four ints, asked for the same shapes by every analysis
def tile_interval_cycles(rows_per_tile: int, program_cycles: int, outputs_per_tile: int, readout_cycles: int) -> int:
    """Steady-state cycles per tile of the pass: the period of the recurrence (at most two tiles
    long), i.e. ``(cycles(T+2) - cycles(T)) / 2`` once periodic.  Equal to the program length
    when the pass is compute bound (``L`` at least ``D`` and ``Q + LATENCY + ...``)."""
    c = [pass_cycles(rows_per_tile, program_cycles, outputs_per_tile, t, readout_cycles)
         for t in (PERIODIC_TILES - 2, PERIODIC_TILES)]
    return (c[1] - c[0]) / 2


@dataclass(frozen=True)
class PassShape:
    """What the pass's timing depends on, for a layer (or a kernel block) on one array."""

    rows_per_tile: int  # tile-buffer rows: input channels x the bank map's deepest bank
    program_cycles: int  # words of the program: sum of the groups' makespans (at least 1)
    outputs_per_tile: int  # read-out requests: output channels x (N/2+1) columns x N/readout_rows (0: none)
    readout_cycles: int

    def cycles(self, tiles: int) -> int:
        return pass_cycles(self.rows_per_tile, self.program_cycles, self.outputs_per_tile, tiles, self.readout_cycles)

    def interval(self) -> float:
        return tile_interval_cycles(self.rows_per_tile, self.program_cycles, self.outputs_per_tile,
                                    self.readout_cycles)

    def overhead(self) -> int:
        """Fill and drain of a pass: its cycles beyond ``tiles x interval`` once periodic (the
        first tile's load, the pipeline, the last tile's read-out)."""
        return pass_overhead_cycles(self.rows_per_tile, self.program_cycles, self.outputs_per_tile,
                                    self.readout_cycles)


@lru_cache(maxsize=1 << 16)  # a pure function of four ints; the simulator asks it for every split of every run
def pass_overhead_cycles(rows_per_tile: int, program_cycles: int, outputs_per_tile: int, readout_cycles: int) -> int:
    """:meth:`PassShape.overhead` of that shape: cycles of a periodic pass beyond ``tiles x interval``."""
    cycles = pass_cycles(rows_per_tile, program_cycles, outputs_per_tile, PERIODIC_TILES, readout_cycles)
    return int(round(cycles - PERIODIC_TILES * tile_interval_cycles(rows_per_tile, program_cycles,
                                                                     outputs_per_tile, readout_cycles)))


def readout_requests(out_channels: int, fft_size: int, readout_rows: int = 0) -> int:
    """Read-out requests of one tile: N/2 + 1 columns per output channel, N / ``readout_rows``
    requests per column (each reads ``readout_rows`` rows; 0 = N: one request a column)."""
    k = int(readout_rows) or int(fft_size)
    if k < 1 or fft_size % k:
        raise UsageError(f"readout_rows must divide fft_size={fft_size}, got {readout_rows}")
    return int(out_channels) * (fft_size // 2 + 1) * (fft_size // k)


def pass_shape(group_cycles, in_channels: int, out_channels: int, bank_of, num_banks: int, num_pes: int,
               fft_size: int, readout_rows: int = 0) -> PassShape:
    """The pass shape of a program of groups with makespans ``group_cycles`` (read-out:
    :func:`readout_requests`, one request a cycle)."""
    bank_of = np.asarray(bank_of, dtype=np.int64)
    depth = _deepest_bank(bank_of.tobytes(), int(num_banks))
    if type(group_cycles) is list and len(group_cycles) == 1:  # one program of that many words: the rule's hot path
        words = max(1, int(group_cycles[0]))
    else:
        words = program_length(group_cycles)
    return PassShape(int(in_channels) * depth, words, _readout(int(out_channels), int(fft_size), int(readout_rows)),
                     readout_latency_cycles(num_pes))


@lru_cache(maxsize=1 << 10)  # bank maps are few (one a layer and design); asked once a pass shape
def _deepest_bank(bank_of_bytes: bytes, num_banks: int) -> int:
    """Frequencies of the deepest bank of a bank map (int64 bytes), at least 1."""
    return max(1, int(np.bincount(np.frombuffer(bank_of_bytes, dtype=np.int64), minlength=num_banks).max()))


_readout = lru_cache(maxsize=1 << 12)(readout_requests)  # the same few (channels, N, rows) in every analysis
