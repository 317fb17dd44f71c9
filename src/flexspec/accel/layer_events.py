"""Cycle model of the whole spectral layer engine on one array (``flexspec.rtl.layer_engine``).

The engine streams one image's layer through: input rows -> FFT -> bank writer -> spectral pass
(``flexspec.rtl.spectral_pass``: the PE array running the layer's program on each tile) ->
rounding -> output FIFO -> IFFT -> overlap-add -> bias, rounding, ReLU -> write-back.  With the
host always offering input and the write-back always ready (what :func:`engine_events` assumes, as
:func:`flexspec.accel.engine.pass_events` does for the pass alone), its events are, in clock edges
counted from the first edge after reset (``j = k*Cin + i`` the input channel i of tile k, ``u =
k*Cout + o`` the output channel o of tile k; ``d`` tile-buffer rows per channel, ``L`` the
program's words, ``Q`` the read-out requests of a tile: ``Cout*(N/2+1)`` columns x ``N/K`` requests a
column at read-out rows ``K`` (:func:`flexspec.accel.engine.readout_requests`); the output beats stay
one column each, ``Cout*(N/2+1)`` a tile):

* FFT feed of channel j (N rows: h from the host, N-h zero rows): its first row enters at
  ``I_j = max(I_{j-1} + N, W_{j-2} + SLOT_FREE_CYCLES, R_{j-2} + r_fft)``, ``I_0 = 1`` (a writer slot
  must be free, and the FFT's corner-turn bank: ``r_fft`` = the FFT's ``release_index``);
* the FFT reads channel j's first corner-turn column at ``R_j = max(I_j + N + L1 + 1, R_{j-1} + N/2+1)``
  (``L1`` = one 1-D transform's latency); its last column is taken at ``R_j + L1 + N/2`` and the
  writer slot is full ``WRITER_FILL_CYCLES`` later;
* writer rows: the pass takes channel j's first row at ``S_j = max(full_j, W_{j-1} + 1)``, and for
  the first channel of tile k not before ``C_{k-CREDITS} + CREDIT_CYCLES`` (output-FIFO credit)
  nor ``A_{k-2} + L + TILE_RELEASE_CYCLES`` (its tile-buffer half); the rows of a channel follow one
  a cycle: ``W_j = S_j + d - 1``;
* the spectral pass: ``A_k = max(W_{k*Cin+Cin-1} + 1, A_{k-1} + L, F_{k-2} + 1)``,
  ``G_k = max(A_k + L + LATENCY_CYCLES + DRAIN_START_CYCLES, F_{k-1} + 1)``, ``F_k = G_k + Q``: the
  recurrence of :func:`~flexspec.accel.engine.pass_events` with the loads above;
* tile k is complete in the output FIFO, for the IFFT, from edge ``Z_k = F_k + readout +
  OUTPUT_CYCLES + FIFO_COMPLETE_CYCLES`` (its last beat leaves the pass at ``Z_k - 1``);
* IFFT: output channel u's first beat is accepted at ``V_u = max(V_{u-1} + N/2+1, R'_{u-2} + r_ifft)``
  and, for the first channel of tile k, not before ``Z_k``; read from edge
  ``R'_u = max(V_u + N/2+1 + L1 + 1, R'_{u-1} + N)``; tile k consumed at ``C_k = V_{k*Cout+Cout-1} + N/2``;
* write-back: row r of u is taken at ``R'_u + L1 + r + OLA_CYCLES`` (only rows with output pixels);
  ``done`` is high after the last write-back beat's edge.

Blocked layers (:class:`EngineGeometry`'s ``cout_block``, ``cin_block``, ``tile_block``, ``order``):
the engine walks *runs* (one tile through one kernel block, :attr:`EngineGeometry.runs`) instead of
tiles, and the recurrence above is over runs: run k's channels are its cin block's, its program
``L_k`` its kernel block's.  Runs form *chains* (:attr:`EngineGeometry.chain_marks`): the runs that
accumulate into one accumulator half before it is read out.  When the walk has the cin loop
innermost with one-tile blocks (:func:`cin_chained`), a chain is every cin block of one (cout
block, tile): its runs issue back to back into the same half (no read-out, no partial-sum round
trip between them) and only its last run is read out; otherwise each run is its own chain.  The
accept ``A_k = max(W + 1, A_{k-1} + L_{k-1})`` and, for the first run of chain c, not before
``F_{c-2} + 1`` (its half drained); chain c's read-out ``F_c = max(A_k + L_k + LATENCY_CYCLES +
DRAIN_START_CYCLES, F_{c-1} + 1) + Q_c`` after its last run k (``Q_c`` its cout block's requests).
The output-FIFO credit is per chain (taken by its first run's first row, waiting for the
(c - CREDITS)-th consumption in time order).  A chain that ends before the last cin block (walks
that do not chain) sends its columns (plus the returning partial sums) to the psum FIFO instead of
the IFFT and is consumed when its last column has gone in (``F_c + readout + OUTPUT_CYCLES``).
Only the chains ending in the last cin block go through the IFFT (``V``, ``R'``) and the write-back.

Every constant is a register of the RTL named where it is defined in ``flexspec.rtl.layer_engine``;
the Verilator tests check the whole recurrence to the cycle.  :func:`engine_cycles` is what the
simulator should charge per layer (one array holding the whole layer, one image).
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, replace
from functools import cache, cached_property

import numpy as np

from ..errors import UsageError
from ..rtl.program import program_length
from ..rtl.fft_contract import release_index, transform_latency_cycles
from ..rtl.config import LATENCY_CYCLES, readout_latency_cycles
from .engine import DRAIN_START_CYCLES, OUTPUT_CYCLES, TILE_RELEASE_CYCLES, readout_requests
from .fixed_point import FFTFormat

#: Output tiles the FIFO between the spectral pass and the IFFT holds (its depth is CREDITS x Q):
#: a tile may start loading into the pass only while fewer tiles than this are loaded but not yet
#: consumed by the IFFT, so the pass is never back-pressured.
CREDITS = 2


def output_fifo_beats(out_channels: int, fft_size: int) -> int:
    """Depth of an array's output FIFO (``rtl.layer_engine``, ``rtl.cluster``): CREDITS tiles of
    ``out_channels`` output channels, one beat per accumulator column (N/2 + 1 a channel)."""
    return CREDITS * out_channels * (fft_size // 2 + 1)


def output_fifo_width_bits(fft_size: int, ifft_bits: int) -> int:
    """Width of an output-FIFO beat: N complex values at ``ifft_bits`` and the run's last-beat tag."""
    return 2 * fft_size * ifft_bits + 1
#: Edges from a writer slot's last row accepted by the pass to the FFT feed seeing it free.
SLOT_FREE_CYCLES = 1
#: Edges from the FFT's last column valid to the writer slot flagged full (the column register).
WRITER_FILL_CYCLES = 1
#: Edges from the IFFT accepting a tile's last beat to the credit returning to the writer.
CREDIT_CYCLES = 1
#: Edges from the pass's last beat of a tile (at ``F_k + readout + OUTPUT_CYCLES``) to the IFFT
#: seeing the tile complete in the FIFO.
FIFO_COMPLETE_CYCLES = 1
#: Edges from the IFFT's output beat to the write-back register.
OLA_CYCLES = 1
#: Channels over which the FFT feed's period (two channels, one per writer slot) is averaged.
PERIODIC_CHANNELS = 8


def cin_chained(order, cout_blocks, cin_blocks, tile_blocks, tile_block, tiles_at_once=1):
    """Whether a blocked walk keeps each tile's partial sums in the accumulators across its cin
    blocks (broadcasts over arrays): the cin loop is innermost among the loops with more than one
    trip, and a tile block is at most ``tiles_at_once`` tiles (an array's accumulator half holds one
    tile: 1 for the one-array engine, the A arrays' tiles for a design that puts them on tiles,
    :func:`chain_splits`), so the engine runs a tile's cin blocks back to back into one
    accumulator half and reads it out once, after the last.  ``order``: a loop order string, or the
    positions (o, i, t) of its loops (int arrays); ``tile_blocks``: the tile loop's trips;
    ``tile_block``: tiles a block (at most the layer's tiles).  One place for the engine
    (:attr:`EngineGeometry.chained`), the simulator and the blocking rule."""
    pos_o, pos_i, pos_t = ([order.index(x) for x in "oit"] if isinstance(order, str) else order)
    pos_o, pos_i, pos_t = (np.asarray(x) for x in (pos_o, pos_i, pos_t))
    ok = (np.asarray(cin_blocks) > 1) & (np.asarray(tile_block) <= np.asarray(tiles_at_once))
    ok = ok & ((pos_o < pos_i) | (np.asarray(cout_blocks) == 1))
    return ok & ((pos_t < pos_i) | (np.asarray(tile_blocks) == 1))


def chain_splits(divisors, arrays: int, tile_block: int) -> tuple:
    """The array splits a_g (arrays on kernel groups, of ``divisors``) that can run a chained walk's
    tile block of ``tile_block`` tiles: a_t = A / a_g arrays on tiles hold one tile each."""
    return tuple(int(d) for d in divisors if arrays // int(d) >= tile_block)


@dataclass(frozen=True)
class EngineGeometry:
    """What the engine's structure and timing depend on, for one layer on one array (one image).

    ``channel_depth``: tile-buffer rows per input channel (the bank map's deepest bank);
    ``program_cycles``: words of the layer's program (every kernel group of a tile pass);
    ``readout_rows``: the PE array's read-out rows K (0 = N: one request a column).

    Blocking (the dataflow's ``LayerDataflow`` blocking; 0 = the whole extent): ``cout_block``
    output channels in the accumulators, ``cin_block`` input channels in the tile buffer,
    ``tile_block`` tiles a step, loop ``order`` (outermost first, over o = cout blocks, i = cin
    blocks, t = tile blocks; the tiles of a block innermost).  ``block_program_cycles``: the
    program words of each kernel block ``ob * cin_blocks + ib`` (empty: one block of
    ``program_cycles``).  A *run* is one tile through one kernel block: :attr:`runs`."""

    fft_size: int
    kernel_size: int
    padding: int
    height: int
    width: int
    in_channels: int
    out_channels: int
    channel_depth: int
    program_cycles: int
    num_pes: int
    readout_rows: int = 0
    cout_block: int = 0
    cin_block: int = 0
    tile_block: int = 0
    order: str = "oit"
    block_program_cycles: tuple = ()

    def __post_init__(self):
        n, k = self.fft_size, self.kernel_size
        if n not in (4, 8, 16, 32):
            raise UsageError(f"the engine builds N in 4, 8, 16, 32; got N={n}")
        if not 1 <= k or 2 * (k - 1) > n:
            raise UsageError(f"kernel {k} needs N >= 2(K-1) for the overlap-add's one-tile carries; N={n}")
        if not 0 <= self.padding <= k - 1:
            raise UsageError(f"padding must be 0..{k - 1}, got {self.padding}")
        for name in ("height", "width", "in_channels", "out_channels", "channel_depth", "program_cycles",
                     "num_pes"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)}")
        k_rows = self.readout_rows or n
        if k_rows < 1 or k_rows & (k_rows - 1) or n % k_rows:
            raise UsageError(f"readout_rows must be a power of two dividing N={n}, got {self.readout_rows}")
        if self.out_height < 1 or self.out_width < 1:
            raise UsageError(f"kernel {k} with padding {self.padding} leaves no output of {self.height}x{self.width}")
        if sorted(self.order) != ["i", "o", "t"]:
            raise UsageError(f"loop order must be a permutation of 'oit', got {self.order!r}")
        for name in ("cout_block", "cin_block", "tile_block"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be >= 0 (0: the whole extent), got {getattr(self, name)}")
        if self.block_program_cycles and len(self.block_program_cycles) != self.cout_blocks * self.cin_blocks:
            raise UsageError(f"block_program_cycles needs one length per kernel block ({self.cout_blocks} x "
                             f"{self.cin_blocks}), got {len(self.block_program_cycles)}")

    # ---------------------------------------------------------------- blocking
    @property
    def bo(self) -> int:
        return min(self.cout_block or self.out_channels, self.out_channels)

    @property
    def bi(self) -> int:
        return min(self.cin_block or self.in_channels, self.in_channels)

    @property
    def bt(self) -> int:
        return min(self.tile_block or self.tiles, self.tiles)

    @property
    def cout_blocks(self) -> int:
        return -(-self.out_channels // self.bo)

    @property
    def cin_blocks(self) -> int:
        return -(-self.in_channels // self.bi)

    @property
    def blocked(self) -> bool:
        return self.cout_blocks * self.cin_blocks > 1

    @cached_property
    def runs(self) -> np.ndarray:
        """int [runs, 3]: (cout block, cin block, tile) of every run in the walk's order: the steps
        (ob, ib, tile block) of the loop nest in ``order``, each the tiles of its block in order."""
        n_t = -(-self.tiles // self.bt)
        trips = {"o": self.cout_blocks, "i": self.cin_blocks, "t": n_t}
        idx = np.indices(tuple(trips[x] for x in self.order)).reshape(3, -1)
        o, i, tb = (idx[self.order.index(x)] for x in "oit")
        rows = [(ob, ib, t) for ob, ib, b in zip(o.tolist(), i.tolist(), tb.tolist(), strict=True)
                for t in range(b * self.bt, min(self.tiles, (b + 1) * self.bt))]
        return np.array(rows, dtype=np.int64).reshape(-1, 3)

    def run_in_channels(self, ib: int) -> int:
        return min(self.bi, self.in_channels - ib * self.bi)

    def run_out_channels(self, ob: int) -> int:
        return min(self.bo, self.out_channels - ob * self.bo)

    def block_program(self, ob: int, ib: int) -> int:
        """Program words of kernel block (ob, ib)."""
        return int(self.block_program_cycles[ob * self.cin_blocks + ib]) if self.block_program_cycles \
            else self.program_cycles

    @property
    def schedule_words(self) -> int:
        """Words of the schedule memory: every kernel block's program back to back."""
        return int(sum(self.block_program_cycles)) if self.block_program_cycles else self.program_cycles

    @property
    def chained(self) -> bool:
        """The walk keeps a tile's partial sums in the accumulators across its cin blocks
        (:func:`cin_chained`): consecutive runs are the same tile and cout block, cin blocks in order."""
        n_t = -(-self.tiles // self.bt)
        return bool(cin_chained(self.order, self.cout_blocks, self.cin_blocks, n_t, self.bt))

    @cached_property
    def chain_marks(self) -> np.ndarray:
        """int [runs, 2]: per run, (starts a chain, ends a chain).  A *chain* is the runs that
        accumulate into one accumulator half before it is read out: every cin block of one
        (cout block, tile) when :attr:`chained`, else each run alone."""
        runs = self.runs
        if not self.chained:
            return np.ones((len(runs), 2), dtype=np.int64)
        ib = runs[:, 1]
        return np.stack([ib == 0, ib == self.cin_blocks - 1], axis=1).astype(np.int64)

    @property
    def psum_beats_in_flight(self) -> int:
        """Most partial-sum columns held at once between a chain's drain and the next drain of the
        same (cout block, tile): the depth the engine's psum FIFO needs (0 when chained)."""
        level = best = 0
        for (ob, ib, _), (_, ends) in zip(self.runs.tolist(), self.chain_marks.tolist(), strict=True):
            if not ends:
                continue
            q = self.run_out_channels(ob) * self.half
            if ib > 0 and not self.chained:
                level -= q
            if ib < self.cin_blocks - 1:
                level += q
                best = max(best, level)
        return best

    # ---------------------------------------------------------------- sizes
    @property
    def tile(self) -> int:
        """h = N - K + 1: input pixels per tile side (the overlap-add stride)."""
        return self.fft_size - self.kernel_size + 1

    @property
    def half(self) -> int:
        return self.fft_size // 2 + 1

    @property
    def tiles_y(self) -> int:
        return -(-self.height // self.tile)

    @property
    def tiles_x(self) -> int:
        return -(-self.width // self.tile)

    @property
    def tiles(self) -> int:
        return self.tiles_y * self.tiles_x

    @property
    def offset(self) -> int:
        """Output pixel (y, x) is full-convolution pixel (y + offset, x + offset)."""
        return self.kernel_size - 1 - self.padding

    @property
    def out_height(self) -> int:
        return self.height + 2 * self.padding - self.kernel_size + 1

    @property
    def out_width(self) -> int:
        return self.width + 2 * self.padding - self.kernel_size + 1

    @property
    def rows_per_tile(self) -> int:
        return self.bi * self.channel_depth

    @property
    def outputs_per_tile(self) -> int:
        """Output beats of a run of a full cout block (one accumulator column each)."""
        return self.bo * self.half

    @property
    def readout_requests_per_tile(self) -> int:
        """Read-out requests of a run of a full cout block (N / K a column:
        :func:`~flexspec.accel.engine.readout_requests`)."""
        return readout_requests(self.bo, self.fft_size, self.readout_rows)

    @property
    def readout_cycles(self) -> int:
        return readout_latency_cycles(self.num_pes)

    # ---------------------------------------------------------------- write-back pattern
    def out_row(self, ty: int, r: int) -> int | None:
        """The output row of block row r of tile row ty, or None when that row is not final in this
        block (it carries into the tile row below) or falls outside the output."""
        if r >= self.tile and ty != self.tiles_y - 1:
            return None
        y = ty * self.tile + r - self.offset
        return y if 0 <= y < self.out_height else None

    def col_mask(self, tx: int) -> int:
        """Bit c set when block column c of tile column tx is a final output pixel."""
        mask = 0
        for c in range(self.fft_size):
            if c >= self.tile and tx != self.tiles_x - 1:
                continue
            if 0 <= tx * self.tile + c - self.offset < self.out_width:
                mask |= 1 << c
        return mask

    def emits(self, ty: int, tx: int, r: int) -> bool:
        return self.out_row(ty, r) is not None and self.col_mask(tx) != 0

    @property
    def out_beats(self) -> int:
        """Write-back beats of the layer (one block row of one output channel a beat)."""
        rows = sum(self.out_row(ty, r) is not None for ty in range(self.tiles_y) for r in range(self.fft_size))
        cols = sum(self.col_mask(tx) != 0 for tx in range(self.tiles_x))
        return rows * cols * self.out_channels


@dataclass(frozen=True)
class EngineEvents:
    """Edges of the engine's events (see the module doc), per input channel j, tile k, output
    channel u, and the total."""

    feed: np.ndarray  # I_j
    load: np.ndarray  # S_j: the pass takes channel j's first row
    accept: np.ndarray  # A_k
    drain_end: np.ndarray  # F_c, per chain (per run when no chain is longer than one run)
    ifft_start: np.ndarray  # V_u
    last_out_edge: int
    cycles: int  # the edge after which ``done`` is high


def engine_events(geom: EngineGeometry) -> EngineEvents:
    """The engine's event edges (module doc), run by run (a run: one tile through one kernel
    block, :attr:`EngineGeometry.runs`; a chain: the runs that share one accumulator half,
    :attr:`EngineGeometry.chain_marks`); O(runs x (cin block + cout block)) integer steps."""
    g = geom
    n, half, d, lat = g.fft_size, g.half, g.channel_depth, g.readout_cycles
    L1 = transform_latency_cycles(n)
    r_fft = release_index(FFTFormat(n, 16, 16, 0))  # widths do not change the timing
    r_ifft = release_index(FFTFormat(n, 16, 16, 0, inverse=True))
    runs = g.runs.tolist()
    marks = g.chain_marks.tolist()
    ci = [g.run_in_channels(ib) for _, ib, _ in runs]
    co = [g.run_out_channels(ob) for ob, _, _ in runs]
    Lr = [g.block_program(ob, ib) for ob, ib, _ in runs]
    final = [ib == g.cin_blocks - 1 for _, ib, _ in runs]
    T, J = len(runs), int(sum(ci))
    n_chains = int(sum(e for _, e in marks))
    U = int(sum(c for c, f in zip(co, final, strict=True) if f))
    Fd, Rf, S, W = (np.zeros(J, dtype=np.int64) for _ in range(4))
    A = np.zeros(T, dtype=np.int64)
    F = np.zeros(n_chains, dtype=np.int64)  # drain's last request, per chain
    V, Rv = np.zeros(U, dtype=np.int64), np.zeros(U, dtype=np.int64)
    j = u = 0
    c = -1  # the chain of run k
    last = 0
    consumed = []  # per chain so far, the edge its output left for the psum FIFO or the IFFT, sorted
    for k in range(T):
        starts, ends = marks[k]
        c += starts
        for i in range(ci[k]):
            # FFT feed: N rows a channel from edge I_j; the FFT's corner-turn bank of channel j-2
            # is free once its reader reaches release_index (flexspec.rtl.fft)
            feed = Fd[j - 1] + n if j else 1
            if j >= 2:
                feed = max(feed, W[j - 2] + SLOT_FREE_CYCLES, Rf[j - 2] + r_fft)
            Fd[j] = feed
            Rf[j] = Fd[j] + n + L1 + 1 if not j else max(Fd[j] + n + L1 + 1, Rf[j - 1] + half)
            full = Rf[j] + L1 + half - 1 + WRITER_FILL_CYCLES  # last column taken, then the slot is full
            offer = max(full, W[j - 1] + 1) if j else full
            if i == 0:
                if starts and c >= CREDITS:  # fewer than CREDITS chains loaded and not consumed
                    offer = max(offer, consumed[c - CREDITS] + CREDIT_CYCLES)
                if k >= 2:
                    offer = max(offer, A[k - 2] + Lr[k - 2] + TILE_RELEASE_CYCLES)
            S[j] = offer
            W[j] = S[j] + d - 1
            j += 1
        # issue: back to back after run k-1; a chain's first run also needs its accumulator half,
        # drained by chain c-2 (the runs of a chain accumulate into the half their first took)
        a = W[j - 1] + 1
        if k:
            a = max(a, A[k - 1] + Lr[k - 1])
        if starts and c >= 2:
            a = max(a, F[c - 2] + 1)
        A[k] = a
        if not ends:
            continue
        q = readout_requests(co[k], n, g.readout_rows)
        drain = A[k] + Lr[k] + LATENCY_CYCLES + DRAIN_START_CYCLES
        F[c] = (max(drain, F[c - 1] + 1) if c else drain) + q
        if not final[k]:
            # partial sums: the last column leaves the pass into the psum FIFO at this edge
            insort(consumed, int(F[c] + lat + OUTPUT_CYCLES))
            continue
        z = F[c] + lat + OUTPUT_CYCLES + FIFO_COMPLETE_CYCLES  # the chain is complete in the FIFO
        for o in range(co[k]):
            e = z if o == 0 else 0
            if u:
                e = max(e, V[u - 1] + half)
            if u >= 2:
                e = max(e, Rv[u - 2] + r_ifft)
            V[u] = e
            Rv[u] = V[u] + half + L1 + 1 if not u else max(V[u] + half + L1 + 1, Rv[u - 1] + n)
            u += 1
        insort(consumed, int(V[u - 1] + half - 1))
        ty, tx = divmod(runs[k][2], g.tiles_x)
        rows = [r for r in range(n) if g.emits(ty, tx, r)]
        if rows:
            last = max(last, int(Rv[u - 1]) + L1 + rows[-1] + OLA_CYCLES)
    return EngineEvents(Fd, S, A, F, V, last, last)


def channel_depth(bank_of, num_banks: int) -> int:
    """Tile-buffer rows one input channel takes: its busiest bank's frequency count."""
    return max(1, int(np.bincount(np.asarray(bank_of, dtype=np.int64), minlength=num_banks).max()))


def blocked_engine_geometry(block_cycles, bank_of, num_banks: int, num_pes: int, fft_size: int, in_channels: int,
                            out_channels: int, height: int, width: int, cout_block: int, cin_block: int,
                            tile_block: int, order: str, kernel_size: int = 3, padding: int = 1,
                            readout_rows: int = 0) -> EngineGeometry:
    """The engine geometry of a layer walked in a blocking (the dataflow's ``LayerDataflow``
    blocking): ``block_cycles`` int [cout blocks, Cin, groups per channel], the makespans of the
    layer's kernel groups scheduled for that cout block (``accel.grouping.LayerSchedules.cycles``)."""
    cyc = np.asarray(block_cycles, dtype=np.int64)
    g = EngineGeometry(int(fft_size), int(kernel_size), int(padding), int(height), int(width), int(in_channels),
                       int(out_channels), channel_depth(bank_of, num_banks), 1, int(num_pes), int(readout_rows),
                       int(cout_block), int(cin_block), int(tile_block), order)
    if cyc.shape[:2] != (g.cout_blocks, g.in_channels):
        raise UsageError(f"block_cycles must be [{g.cout_blocks}, {g.in_channels}, groups], got {cyc.shape}")
    lengths = tuple(program_length(cyc[ob, ib * g.bi:(ib + 1) * g.bi].ravel())
                    for ob in range(g.cout_blocks) for ib in range(g.cin_blocks))
    return replace(g, program_cycles=int(sum(lengths)), block_program_cycles=lengths)


def engine_geometry(group_cycles, bank_of, num_banks: int, num_pes: int, fft_size: int, in_channels: int,
                    out_channels: int, height: int, width: int, kernel_size: int = 3, padding: int = 1,
                    readout_rows: int = 0) -> EngineGeometry:
    """The engine geometry of a layer whose program is the kernel groups with makespans
    ``group_cycles`` (every group of the layer, one kernel block) over the bank map ``bank_of``,
    on an array reading out ``readout_rows`` rows a request (0 = N)."""
    depth = channel_depth(bank_of, num_banks)
    return EngineGeometry(int(fft_size), int(kernel_size), int(padding), int(height), int(width), int(in_channels),
                          int(out_channels), depth, program_length(group_cycles), int(num_pes), int(readout_rows))


@cache
def fft_channel_interval_cycles(fft_size: int, channel_depth: int) -> float:
    """Steady-state cycles per input channel of the engine's FFT when nothing else holds it back
    (the pass and the IFFT keep up): a channel holds one of the bank writer's two slots from
    entering the FFT until the pass has read its ``channel_depth`` rows, so the FFT takes a channel
    every ``max(N, round trip / 2)`` cycles, not every N (N = 8, depth 2: 8 and 20 alternating, 14 on
    average).  What a simulator should charge per forward channel on this RTL."""
    g = EngineGeometry(int(fft_size), 3, 1, 64, 64, 2 * PERIODIC_CHANNELS, 1, int(channel_depth), 1, 1)
    feed = engine_events(g).feed
    return float(feed[-1] - feed[-1 - PERIODIC_CHANNELS]) / PERIODIC_CHANNELS


def engine_cycles(geom: EngineGeometry) -> int:
    """Cycles of one layer (one image) on the whole engine, from reset to ``done``."""
    return engine_events(geom).cycles
