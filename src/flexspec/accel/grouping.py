"""Kernel groups, their conflict-free schedules, and their assignment to the PE arrays.

The kernels of every (output-channel block, input channel) pair are grouped by P (balanced
grouping inside the block) and each group is scheduled conflict-free over the B banks x R ports
(:func:`schedule_layer_blocks`; ``optimal`` / ``broadcast``, baselines ``inorder``), memoized by
a caller-owned :class:`ScheduleCache`.  How the A arrays share a kernel-block run is
what the generated cluster (``flexspec.rtl.cluster``) builds: a_t array columns over tiles x a_g
array rows, row g holding a fixed output-channel slice (:func:`cout_slices`, one place for the
RTL spec and the simulator) and running the kernel groups of that slice, grouped inside it
(``schedule_layer_blocks(..., slices=a_g)``, :meth:`ScheduleCache.sliced`); :func:`slice_makespan`
charges that (the simulator), :func:`sliced_array_makespan` from closed-form makespans (the
PE-array rule).  :func:`array_makespan` deals the groups to the a_g columns longest-first over any
output channels instead (LPT): what a design with a cross-array adder could do, kept as that
reference (``benchmarks/results/history/bench_pool_*_lpt.json``); the simulator does not use it.
:func:`stored_stream_bits` counts a layer's kernels as the schedule stream the generated PE array
stores (``flexspec.kernel_format.schedule_stream_bits``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..kernel_format import schedule_stream_bits, spread_over_kernels
from ..rtl.config import PEArrayConfig
from ..rtl.program import program_length
from ..schedule import group_kernels, schedule_groups
from ..schedule.model import resolve_bank_map
from ..errors import UsageError
from ._lpt import lpt_span
from .arch import AcceleratorConfig


@dataclass(frozen=True, eq=False)
class LayerSchedules:
    """Schedules of one layer's kernel groups for one cout blocking.

    Groups are ordered (cout block, input channel, k); ``cycles`` [nO, Cin, per_block].  Sliced
    (``slices`` = a_g > 1, :func:`schedule_layer_blocks`): every cout block is cut into the a_g
    array rows' output-channel slices (:func:`cout_slices`) and grouped inside each slice; the
    first axis is then ``block * slices + row`` and ``cout_block`` the widest slice."""

    schedule: object  # flexspec.schedule.Schedule
    groups: np.ndarray  # int [G, P] flat kernel ids j*Cin + i, -1 idle
    cycles: np.ndarray
    pe_bound: np.ndarray  # same shape: max non-zeros of one PE (no-conflict makespan)
    cout_block: int
    slices: int = 1


@lru_cache(maxsize=1 << 12)
def cout_slices(channels: int, rows: int) -> tuple:
    """(first channel, channels) of each of ``rows`` array rows' output-channel slices of
    ``channels`` output channels: ceil(channels / rows) a row, the last row the rest (rows past the
    channels get none).  The generated cluster's rule (``flexspec.rtl.cluster_case``: array row g
    holds the accumulators of slice g and runs its kernel groups) and the simulator's."""
    channels, rows = int(channels), int(rows)
    if channels < 0 or rows < 1:
        raise UsageError(f"output-channel slices need channels >= 0 and rows >= 1, got {channels} and {rows}")
    width = -(-channels // rows)
    return tuple((min(channels, r * width), max(0, min(channels, (r + 1) * width) - r * width)) for r in range(rows))


def slices_fill(channels: int, rows: int) -> bool:
    """Whether every one of ``rows`` array rows gets at least one of ``channels`` output channels
    (:func:`cout_slices`); the cluster refuses a split that leaves a row empty."""
    return all(n > 0 for _, n in cout_slices(channels, rows))


def schedule_layer_blocks(mask: np.ndarray, config: AcceleratorConfig, cout_block: int, method: str = "optimal",
                          bank_map="auto", slices: int = 1) -> LayerSchedules:
    """Balanced groups of every cout block (or, with ``slices`` = a_g > 1, of every array row's
    output-channel slice of every cout block: :func:`cout_slices`) and their conflict-free schedules
    (one bank map for the layer)."""
    cout, cin, f = mask.shape
    p = config.pes
    bo = min(cout_block, cout)
    n_o = -(-cout // bo)
    slices = int(slices)
    width = -(-bo // slices)
    per = -(-width // p)
    bank_of = resolve_bank_map(bank_map, mask, config.banks)
    bounds = []
    for o in range(n_o):
        first, n = o * bo, min(bo, cout - o * bo)
        bounds += [(first + lo, first + lo + k) for lo, k in cout_slices(n, slices)]
    all_groups, all_masks = [], []
    for lo, hi in bounds:
        if hi == lo:  # an array row without channels in a short last block: idle groups
            all_groups.append(np.full((cin * per, p), -1, dtype=np.int64))
            all_masks.append(np.zeros((cin * per, p, f), dtype=bool))
            continue
        g, gm = group_kernels(mask[lo:hi], p, "balanced")
        # ids are local to the block: re-base them to the layer, pad to `per` groups per channel
        j, i = np.divmod(np.where(g >= 0, g, 0), cin)
        g = np.where(g >= 0, (j + lo) * cin + i, -1)
        have = g.shape[0] // cin
        if have < per:
            g = np.concatenate([g.reshape(cin, have, p), np.full((cin, per - have, p), -1)], 1).reshape(-1, p)
            gm = np.concatenate([gm.reshape(cin, have, p, f), np.zeros((cin, per - have, p, f), bool)],
                                1).reshape(-1, p, f)
        all_groups.append(g)
        all_masks.append(gm)
    groups = np.concatenate(all_groups)
    gm = np.concatenate(all_masks)
    m = method if method != "optimal" or not config.broadcast else "broadcast"
    sched = schedule_groups(gm, config.banks, config.ports, broadcast=config.broadcast, bank_map=bank_of, method=m)
    shape = (len(bounds), cin, per)
    pe_bound = gm.sum(axis=2, dtype=np.int64).max(axis=1)
    return LayerSchedules(sched, groups, np.asarray(sched.cycles, np.int64).reshape(shape), pe_bound.reshape(shape),
                          width, slices)


class ScheduleCache:
    """Caller-owned memo of :func:`schedule_layer_blocks` results (explicit, never global).

    The key is everything a layer's schedules depend on: a digest of the mask, P, B, R,
    broadcast, the method and the cout block; the same key always maps to the same schedules,
    so sharing one cache between simulations of the same kernels (design search, the flexspec
    design and its baselines, several devices) changes no result, only the time.

    Bank maps: a layer is scheduled with the scheduler's ``auto`` map, unless the kernels carry the
    map they were pruned for (bank-friendly pruning, ``SparseNetworkKernels.bank_maps``) and the
    design has that many banks: :meth:`use_bank_maps` registers them (keyed by the mask's bits and
    the bank count, and part of the key of every schedule built with them)."""

    def __init__(self):
        self._entries: dict = {}
        self._bank_maps: dict = {}

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def digest(mask: np.ndarray) -> str:
        return hashlib.sha1(np.packbits(np.asarray(mask, dtype=bool)).tobytes()).hexdigest()

    def use_bank_maps(self, kernels) -> int:
        """Schedule every layer of ``kernels`` (a SparseNetworkKernels, or None) that carries a bank
        map with that map on designs of its bank count; returns how many layers have one."""
        maps = getattr(kernels, "bank_maps", None) or {}
        for name, bmap in maps.items():
            key = (self.digest(kernels.layers[name].mask()), int(kernels.bank_map_banks))
            self._bank_maps[key] = np.asarray(bmap, dtype=np.int64)
        return len(maps)

    def bank_map_for(self, mask: np.ndarray, banks: int):
        """The registered bank map of this mask on ``banks`` banks, else 'auto'."""
        if not self._bank_maps:
            return "auto"
        return self._bank_maps.get((self.digest(mask), int(banks)), "auto")

    def get(self, mask: np.ndarray, config: AcceleratorConfig, cout_block: int, method: str = "optimal"):
        mask = np.asarray(mask, dtype=bool)
        bmap = self.bank_map_for(mask, config.banks)
        key = (self.digest(mask), mask.shape, config.pes, config.banks, config.ports, config.broadcast, method,
               min(int(cout_block), mask.shape[0]), bank_map_key(bmap))
        if key not in self._entries:
            self._entries[key] = schedule_layer_blocks(mask, config, cout_block, method, bank_map=bmap)
        return self._entries[key]

    def sliced(self, mask: np.ndarray, config: AcceleratorConfig, cout_block: int, rows: int,
               method: str = "optimal"):
        """The schedules of ``cout_block`` blocks cut into ``rows`` array rows' output-channel
        slices (``schedule_layer_blocks(..., slices=rows)``).  Where every slice of every block is
        a whole block of the slice width (one cout block, or equal blocks dividing evenly, no
        empty row), that is :meth:`get` at the slice width, shared with (and served by) it."""
        mask = np.asarray(mask, dtype=bool)
        cout = mask.shape[0]
        bo = min(int(cout_block), cout)
        if slices_are_blocks(cout, bo, rows):
            return self.get(mask, config, -(-bo // rows), method)
        bmap = self.bank_map_for(mask, config.banks)
        key = ("sliced", self.digest(mask), mask.shape, config.pes, config.banks, config.ports, config.broadcast,
               method, bo, int(rows), bank_map_key(bmap))
        if key not in self._entries:
            self._entries[key] = schedule_layer_blocks(mask, config, bo, method, bank_map=bmap, slices=rows)
        return self._entries[key]


def slices_are_blocks(channels: int, cout_block: int, rows: int) -> bool:
    """Whether every array row's slice (:func:`cout_slices`) of every ``cout_block`` block of
    ``channels`` output channels is a whole block of the slice width (then the sliced schedules are
    the blocks' schedules at that width: :meth:`ScheduleCache.sliced`)."""
    bo = min(int(cout_block), int(channels))
    return rows == 1 or (slices_fill(bo, rows) and (bo == channels or (channels % bo == 0 and bo % rows == 0)))


def bank_map_key(bank_map) -> str:
    """A short key of a bank map ('auto', 'mod' or an int array) for the schedule caches."""
    if isinstance(bank_map, str):
        return bank_map
    return hashlib.sha1(np.asarray(bank_map, dtype=np.int64).tobytes()).hexdigest()


def bank_load(sched, banks: int, ports: int) -> dict:
    """Bank-load histograms of a schedule: reads per bank (summed over groups) and, over every
    (cycle, bank) slot, how many cycles a bank served 0..R reads."""
    bank = sched.bank_of[sched.index]
    reads = np.bincount(bank, minlength=banks)
    start = np.zeros(sched.num_groups + 1, dtype=np.int64)
    np.cumsum(sched.cycles, out=start[1:])
    key = (start[sched.group] + sched.cycle) * banks + bank
    if sched.broadcast:
        key = np.unique(key * sched.num_frequencies + sched.index) // sched.num_frequencies
    per_slot = np.bincount(key, minlength=int(start[-1]) * banks)
    hist = np.bincount(per_slot, minlength=ports + 1)
    return {"reads_per_bank": reads.tolist(), "bank_cycles_by_reads": hist.tolist()}


def array_makespan(cyc: np.ndarray, tiles: int, arrays: int, divisors, interval=None) -> int:
    """Cycles for ``tiles`` tiles x groups with makespans ``cyc`` on ``arrays`` arrays:
    the best a_t x a_g = A split (a_t arrays on tiles, a_g on groups).  The compiler assigns the
    groups to the a_g array columns statically, by the better of two assignments: longest first to
    the least-loaded column (LPT; within 4/3 of the optimal assignment) and round-robin in group
    order (LPT is a heuristic and occasionally loses to it); each column runs its groups back to back
    as one program per tile.  ``interval(L)``: the engine's cycles per tile for a program of L
    words (:func:`flexspec.accel.engine.tile_interval_cycles`; default L itself).  ``tiles``: an
    int, or an int array (the cycles of each count, for the same groups)."""
    best = None
    cyc = np.asarray(cyc, dtype=np.int64)
    n = cyc.size
    desc = np.sort(cyc)[::-1].copy()
    for a_g in divisors:
        a_t = arrays // a_g
        if a_g > n and a_g > 1:
            continue
        if a_g == 1:
            span = int(desc.sum())
        else:
            dealt = np.zeros(-(-n // a_g) * a_g, dtype=np.int64)
            dealt[:n] = cyc
            span = min(int(lpt_span(desc, int(a_g))), int(dealt.reshape(-1, a_g).sum(axis=0).max()))
        per_tile = span if interval is None else interval(span)
        total = -(-np.asarray(tiles) // a_t) * per_tile  # tiles may be an array (one total each)
        best = total if best is None else np.minimum(best, total)
    return best if np.ndim(best) else best.item()


def slice_makespan(tiles, arrays: int, splits, rows_of: Callable, interval: Callable,
                   lower: Callable | None = None, floor: Callable | None = None) -> tuple:
    """(cycles, a_g) of the fastest split of ``splits`` for ``tiles`` tiles of one kernel-block run on
    ``arrays`` arrays as the generated cluster runs it: a_t = A / a_g array columns take the tiles
    (ceil(tiles / a_t) each), the a_g arrays of a column get every tile (the broadcast) and array
    row g runs its output-channel slice's program on it and reads out that slice; the broadcast
    bus feeds a column's rows together, so the column takes a tile every ``max_g interval(L_g,
    outs_g)`` cycles.  ``rows_of(a_g)``: (program words L_g, output channels outs_g) of each row,
    or None where the split cannot run (a row without channels); ``interval(words, outs)``: the
    engine's cycles per tile (:meth:`flexspec.accel.engine.PassShape.interval`, non-decreasing in
    both).  Ties go to the split listed first.  ``lower(a_g)``: optional, a lower bound on a split's
    cycles a tile; splits are then tried from the lowest bound and those whose bound exceeds the
    best found are not built (the result is the same, ``rows_of`` is asked less).  ``tiles``: an
    int, or an int array (cycles and a_g of each count, as arrays).  ``floor(a_g)``: optional, cycles
    another engine needs at that split (the IFFT's, :func:`flexspec.accel.ifft_assign.ifft_cycles`):
    the split is chosen by max(cycles, floor), the cycles returned are the arrays' alone."""
    if np.ndim(tiles) == 0:  # one count (the simulator's runs): the same search on Python numbers
        return _slice_makespan_one(int(tiles), int(arrays), splits, rows_of, interval, lower, floor)
    t = np.atleast_1d(np.asarray(tiles, dtype=np.int64))
    order = list(enumerate(int(d) for d in splits))
    passes = {a_g: -(-t // (int(arrays) // a_g)) for _, a_g in order}
    bound = {}
    if lower is not None:
        bound = {a_g: np.maximum(passes[a_g] * lower(a_g), floor(a_g) if floor else 0) for _, a_g in order}
        order.sort(key=lambda x: (float(np.min(bound[x[1]])), x[0]))
    best = np.full(t.shape, np.inf)
    best_pos = np.full(t.shape, len(order))
    best_split = np.zeros(t.shape, dtype=np.int64)
    arrays_only = np.full(t.shape, np.inf)
    for pos, a_g in order:
        if bound and np.all(bound[a_g] > best):
            continue
        rows = rows_of(a_g)
        if rows is None:
            continue
        total = passes[a_g] * _rows_interval(rows, interval)
        key = np.maximum(total, floor(a_g)) if floor else total
        better = (key < best) | ((key == best) & (pos < best_pos))
        best, best_pos, best_split, arrays_only = (np.where(better, x, y) for x, y in (
            (key, best), (pos, best_pos), (a_g, best_split), (total, arrays_only)))
    if not np.all(np.isfinite(best)):
        raise UsageError(f"no array split of {list(splits)} can run this kernel block on {arrays} arrays")
    if np.ndim(tiles):
        return arrays_only, best_split
    return arrays_only[0].item(), int(best_split[0])


def _rows_interval(rows, interval: Callable):
    """Cycles a tile of a split whose array rows are ``rows`` ((words, outs) each): the row with the
    most words for each slice width sets the interval (non-decreasing in both)."""
    most: dict = {}
    for w, o in rows:
        most[int(o)] = max(most.get(int(o), 0), int(w))
    return max(interval(w, o) for o, w in most.items())


def _slice_makespan_one(tiles: int, arrays: int, splits, rows_of: Callable, interval: Callable,
                        lower: Callable | None, floor: Callable | None) -> tuple:
    """:func:`slice_makespan` of one tile count: the same order, bounds, skips and tie-break."""
    order = list(enumerate(int(d) for d in splits))
    passes = {a_g: -(-tiles // (arrays // a_g)) for _, a_g in order}
    floors = {a_g: float(floor(a_g)) for _, a_g in order} if floor else {}
    bound = {}
    if lower is not None:
        bound = {a_g: max(float(passes[a_g] * lower(a_g)), floors.get(a_g, 0.0)) for _, a_g in order}
        order.sort(key=lambda x: (bound[x[1]], x[0]))
    best, best_pos, best_split, arrays_only = np.inf, len(order), 0, np.inf
    for pos, a_g in order:
        if bound and bound[a_g] > best:
            continue
        rows = rows_of(a_g)
        if rows is None:
            continue
        total = passes[a_g] * _rows_interval(rows, interval)
        key = max(total, floors[a_g]) if floors else total
        if key < best or (key == best and pos < best_pos):
            best, best_pos, best_split, arrays_only = key, pos, a_g, total
    if best == np.inf:
        raise UsageError(f"no array split of {list(splits)} can run this kernel block on {arrays} arrays")
    return float(arrays_only), int(best_split)


def sliced_array_makespan(slice_groups: Callable, channels: int, lo: int, hi: int, tiles, arrays: int, splits,
                          interval: Callable, drains: bool = True, least_words: int | None = None,
                          floor: Callable | None = None, memo: dict | None = None):
    """Cycles (:func:`slice_makespan`) of input channels lo..hi of a cout block of ``channels``
    output channels from closed-form group makespans: ``slice_groups(a_g)`` -> int [a_g, groups a
    channel, Cin], the makespans of the groups of each of the block's a_g output-channel slices
    (:func:`cout_slices`, grouped inside each slice); ``interval(words, outs)``: the engine's
    cycles per tile; ``drains``: the run reads its slice's accumulators out; ``least_words``:
    optional, at most the least program of any grouping of those kernels (e.g. the sum of the
    balanced groups' PE bounds), to skip splits that cannot win.  ``tiles``: an int or an int array.
    ``floor``: as :func:`slice_makespan`'s (the IFFT's cycles at a split, which the choice also sees).
    ``memo``: optional, a caller-owned dict for these ``slice_groups``, ``channels`` and
    ``interval`` (e.g. one cout block of one layer and design) that keeps each split's rows and
    bounds across calls (other tile counts, other callers); it saves time only."""
    memo = {} if memo is None else memo

    def rows_of(a_g):
        key = (lo, hi, a_g, drains)
        if key not in memo:
            if a_g > 1 and not slices_fill(channels, a_g):
                memo[key] = None
            else:
                if ("prefix", a_g) not in memo:  # each slice's words over input channels 0..c
                    per_channel = np.asarray(slice_groups(a_g)).sum(axis=1)
                    memo[("prefix", a_g)] = np.concatenate([np.zeros((per_channel.shape[0], 1), np.int64),
                                                            np.cumsum(per_channel, axis=1, dtype=np.int64)], axis=1)
                words = memo[("prefix", a_g)][:, hi] - memo[("prefix", a_g)][:, lo]
                memo[key] = [(int(w), n if drains else 0)
                             for w, (_, n) in zip(words, cout_slices(channels, a_g), strict=True)]
        return memo[key]

    def lower(a_g):
        key = ("lower", lo, hi, a_g, drains, least_words)
        if key not in memo:
            if a_g > 1 and not slices_fill(channels, a_g):
                memo[key] = np.inf
            else:
                widest = cout_slices(channels, a_g)[0][1] if drains else 0
                memo[key] = max(interval(-(-least_words // a_g), 0), interval(1, widest))
        return memo[key]

    return slice_makespan(tiles, arrays, splits, rows_of, interval, None if least_words is None else lower, floor)[0]


def stream_array(config: AcceleratorConfig, sch: LayerSchedules, in_channels: int) -> PEArrayConfig:
    """The generated PE array (``flexspec.rtl``) that runs these schedules: P PEs, B banks x R
    ports, the schedules' bank map, a tile buffer of ``in_channels`` channels (the layer's, as
    ``flexspec rtl`` generates a layer) and accumulators for one cout block; its schedule memory
    holds the groups' words back to back."""
    return PEArrayConfig(config.pes, config.banks, config.ports, config.fft_size, tuple(sch.schedule.bank_of),
                         program_length(sch.cycles), in_channels=int(in_channels), acc_channels=int(sch.cout_block),
                         data_bits=config.data_bits, acc_bits=config.acc_bits, broadcast=config.broadcast)


def stored_stream_bits(mask: np.ndarray, config: AcceleratorConfig, cout_block: int, schedules: ScheduleCache,
                       method: str = "optimal") -> np.ndarray:
    """int [Cout, Cin]: the bits of the schedule stream the generated PE array stores for this
    layer grouped by ``cout_block`` (each group's makespan x the array's schedule word,
    :func:`flexspec.kernel_format.schedule_stream_bits`), spread over the kernels of each group
    (:func:`flexspec.kernel_format.spread_over_kernels`) -- the ``stored_kernel_bits`` of a
    ``flexspec.dataflow.LayerModel`` that moves the stream instead of the packed entries."""
    mask = np.asarray(mask, dtype=bool)
    cout, cin = mask.shape[:2]
    sch = schedules.get(mask, config, cout_block, method)
    bits = schedule_stream_bits(sch.cycles.ravel(), stream_array(config, sch, cin))
    return spread_over_kernels(sch.groups, bits, cout * cin).reshape(cout, cin)
