"""Cycles of one spectral layer: its blocked loop nest unrolled into steps.

A step is one (cout block, cin block, tile block) of the blocking's loop order.  A tensor block
is loaded when its block index changes (kernels, input tiles -- forward FFTs on load of a spatial
input --, partial sums on a revisit); an accumulator block is written (partial sums, or the
finished output after the inverse FFTs) when its visit ends.  The per-step bytes add up *exactly*
to the dataflow model's traffic.  Compute: consecutive steps on the same kernel block form a run,
split over the A arrays by :func:`flexspec.accel.grouping.slice_makespan` (the splits the
design's ``array_split`` allows; array row g runs its output-channel slice's kernel groups, as the
generated cluster does) at the engine's cycles per tile (:mod:`.engine`), its
accumulators read out after every run; a walk that chains the cin blocks
(:func:`flexspec.accel.layer_events.cin_chained`) runs every cin block of an accumulator visit as
one run read out once (a tile an array: :func:`~flexspec.accel.layer_events.chain_splits`).  The
inverse FFTs of a step's finished outputs take the busiest IFFT's time at its run's split (array
row g on IFFT g mod E: :func:`flexspec.accel.ifft_assign.ifft_cycles`), and a run that finishes
outputs picks its split by its compute and those IFFTs together.  :func:`pipeline_steps` overlaps
the steps under double buffering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .arch import AcceleratorConfig
from .engine import PassShape, pass_shape
from .layer_events import chain_splits, channel_depth, cin_chained, fft_channel_interval_cycles
from ..errors import UsageError
from .grouping import LayerSchedules, cout_slices, schedule_layer_blocks, slice_makespan, slices_fill
from .ifft_assign import ifft_cycles
from .results import LayerResult
from .spatial import layer_result as spatial_layer_result, spatial_conv_cost


def _split(total: int, parts_end: np.ndarray, whole: int) -> np.ndarray:
    """Integer split of ``total`` over consecutive ranges ending at ``parts_end`` (of ``whole``),
    proportional to their length, summing exactly to ``total``."""
    ends = np.asarray(parts_end, dtype=np.int64)
    cum = (np.int64(total) * ends) // max(1, whole) if total < 2**62 // max(1, whole) else \
        np.array([total * int(e) // whole for e in ends], dtype=np.int64)
    return np.diff(np.concatenate([[0], cum]))


def _pass_shape(sch: LayerSchedules, ob: int, lo: int, hi: int, o_channels: int, config: AcceleratorConfig,
                group_cycles=None) -> PassShape:
    """The engine's pass shape of one kernel block: input channels lo..hi of cout block ob."""
    cyc = sch.cycles[ob, lo:hi].ravel() if group_cycles is None else group_cycles
    return pass_shape(cyc, hi - lo, o_channels, sch.schedule.bank_of, config.banks, config.pes, config.fft_size,
                      config.readout_rows)


def engine_layer_cycles(mask: np.ndarray, config: AcceleratorConfig, tiles: int, method: str = "optimal",
                        bank_of="auto") -> int:
    """Cycles of one layer's spectral pass on one array holding the whole layer (every kernel
    group of a tile back to back, all input channels in the tile buffer, all output channels in
    the accumulators), from the simulator's own schedules and the engine's cycle model: what the
    RTL spectral pass takes for that layer (tests compare the two in Verilator)."""
    mask = np.asarray(mask, dtype=bool)
    cout, cin, _ = mask.shape
    sch = schedule_layer_blocks(mask, config, cout, method, bank_map=bank_of)
    return _pass_shape(sch, 0, 0, cin, cout, config).cycles(tiles)


@dataclass
class LayerSteps:
    """One layer's steps: per-step compute cycles, bytes and FFT engine cycles."""

    compute: np.ndarray  # float cycles per step
    conflict_free: np.ndarray
    load_bytes: np.ndarray
    kernel_bytes: np.ndarray  # the kernel-block part of load_bytes
    write_bytes: np.ndarray
    fft: np.ndarray  # forward FFT engine cycles of the loads of each step
    ifft: np.ndarray  # inverse FFT engine cycles of the writes of each step
    totals: dict
    tiles: np.ndarray | None = None  # tiles in each step's tile block (uneven last block)
    pass_overhead_cycles: int = 0  # the engine pass's fill and drain (once per layer)
    pass_load_cycles: int = 0  # the part of that fill which writes the first tile into the tile buffer


def layer_steps(ld, model, sch: LayerSchedules, config: AcceleratorConfig,
                sliced: Callable[[int], LayerSchedules] | None = None) -> LayerSteps:
    """Unroll one layer's blocked nest into steps with their bytes, FFTs and compute.

    ``sch``: the layer's schedules at the blocking's cout block; ``sliced(a_g)``: the same blocks
    cut into a_g array rows' output-channel slices (``ScheduleCache.sliced``), needed when the
    design splits kernel groups over arrays (``config.group_splits`` beyond 1)."""
    tr = ld.traffic
    b = tr.blocking
    g = model.geom
    n_o, n_i, n_t = tr.cout_blocks, tr.cin_blocks, tr.tile_blocks
    bo, bi, bt = min(b.cout_block, g.cout), min(b.cin_block, g.cin), min(b.tile_block, g.tiles)
    trips = {"o": n_o, "i": n_i, "t": n_t}
    idx = np.indices(tuple(trips[x] for x in b.order)).reshape(3, -1)
    o, i, t = (idx[b.order.index(x)] for x in "oit")
    steps = o.size
    first = np.zeros(steps, dtype=bool)
    first[0] = True
    k_new = first.copy()
    k_new[1:] = (o[1:] != o[:-1]) | (i[1:] != i[:-1])
    x_new = first.copy()
    x_new[1:] = (i[1:] != i[:-1]) | (t[1:] != t[:-1])
    a_new = first.copy()
    a_new[1:] = (o[1:] != o[:-1]) | (t[1:] != t[:-1])
    a_end = np.zeros(steps, dtype=bool)
    a_end[-1] = True
    a_end[:-1] = a_new[1:]
    # visit number of each accumulator block
    key = o * n_t + t
    starts = np.nonzero(a_new)[0]
    visit_of_start = np.zeros(starts.size, dtype=np.int64)
    order = np.argsort(key[starts], kind="stable")
    ks = key[starts][order]
    first_of = np.searchsorted(ks, ks, side="left")
    visit_of_start[order] = np.arange(ks.size) - first_of
    visit = visit_of_start[np.searchsorted(starts, np.arange(steps), side="right") - 1]
    n_visits = tr.psum_round_trips + 1

    # block extents
    o_ch = np.minimum(bo, g.cout - np.arange(n_o) * bo)
    i_ch = np.minimum(bi, g.cin - np.arange(n_i) * bi)
    t_end = np.minimum((np.arange(n_t) + 1) * bt, g.tiles)
    t_cnt = np.diff(np.concatenate([[0], t_end]))
    # kernel block bits (real sizes)
    kb = np.add.reduceat(np.add.reduceat(model.kbits, np.arange(n_o) * bo, axis=0), np.arange(n_i) * bi, axis=1)
    load = np.where(k_new, kb[o, i], 0).astype(np.int64)
    # input block bits
    if tr.input_resident:
        in_bits = np.zeros((n_i, n_t), dtype=np.int64)
    elif b.input_format == "spectral":
        in_bits = np.outer(i_ch, t_cnt * g.num_freq * 2 * model.precision.activation_bits)
    else:
        per_ch = g.height * g.width * model.precision.activation_bits
        in_bits = np.outer(i_ch, _split(per_ch, t_end, g.tiles))
    load += np.where(x_new, in_bits[i, t], 0)
    fwd = np.where(x_new, i_ch[i] * t_cnt[t], 0).astype(np.int64)
    if b.input_format == "spectral" and not tr.input_resident:
        # transformed once (by the producer, on the same FFT engines): charge the first load only
        seen = np.zeros((n_i, n_t), dtype=bool)
        firsts = np.zeros(steps, dtype=bool)
        for s in np.nonzero(x_new)[0]:
            if not seen[i[s], t[s]]:
                seen[i[s], t[s]] = firsts[s] = True
        fwd = np.where(firsts, fwd, 0)
    # partial sums and outputs
    psum_blk = np.outer(o_ch, t_cnt) * g.num_freq * model.precision.psum_bits
    load += np.where(a_new & (visit > 0), psum_blk[o, t], 0)
    write = np.where(a_end & (visit < n_visits - 1), psum_blk[o, t], 0).astype(np.int64)
    last = a_end & (visit == n_visits - 1)
    out_per_ch = tr.outputs_bits // g.cout if g.cout else 0
    out_blk = np.outer(o_ch, _split(out_per_ch, t_end, g.tiles))
    write += np.where(last, out_blk[o, t], 0)
    inv = np.where(last, o_ch[o] * t_cnt[t], 0).astype(np.int64)

    # compute: runs of steps on the same kernel block share the arrays.  A walk that may chain
    # (layer_events.cin_chained: cin innermost, a tile an array) can instead run a tile block's cin
    # blocks back to back into the same accumulators, read out once (its run: the accumulator
    # visit); the compiler chains only when that is faster (a chain holds one tile an array, so it
    # may leave arrays idle that a group split would use).  A split a_t x a_g gives array row g
    # the kernel groups of its output-channel slice (grouping.slice_makespan), as the cluster does
    a = config.arrays
    divisors = config.group_splits
    tiles_step = t_cnt[t].astype(np.int64)
    if sliced is None:
        if any(d > 1 for d in divisors):
            raise UsageError("layer_steps: a design that splits kernel groups over arrays needs the sliced "
                             "schedules (sliced=)")
        sliced = {1: sch}.__getitem__
    by_split: dict = {}
    intervals: dict = {}

    def sliced_of(a_g: int) -> LayerSchedules:
        if a_g not in by_split:
            by_split[a_g] = sliced(a_g)
        return by_split[a_g]

    def shape_of(ob, lo, hi, words, outs):  # (pass shape, cycles a tile) of one array row on this kernel block
        key = (lo, hi, words, outs)
        if key not in intervals:
            shp = _pass_shape(sch, ob, lo, hi, outs, config, [words])
            intervals[key] = (shp, shp.interval())
        return intervals[key]

    prefix: dict = {}  # a_g -> each slice row's program words summed over input channels 0..c (int [rows, Cin + 1])
    block_sums: dict = {}  # (ob, lo, hi) -> (kernel non-zeros, PE-bound words) of a kernel block: every split's bound

    def split_rows(ob, lo, hi, a_g):
        """(words, outs) of each array row of split a_g on input channels lo..hi of cout block ob."""
        if a_g > 1 and not slices_fill(min(bo, g.cout), a_g):
            return None  # the cluster cannot build a row without channels
        if a_g not in prefix:
            per_channel = sliced_of(a_g).cycles.sum(axis=2)
            prefix[a_g] = np.concatenate([np.zeros((per_channel.shape[0], 1), np.int64),
                                          np.cumsum(per_channel, axis=1, dtype=np.int64)], axis=1)
        rows = prefix[a_g][ob * a_g:(ob + 1) * a_g]
        words = rows[:, hi] - rows[:, lo]
        return [(int(w), n) for w, (_, n) in zip(words, cout_slices(int(o_ch[ob]), a_g), strict=True)]

    def split_lower(ob, lo, hi, a_g):
        """A lower bound on split a_g's cycles a tile without its slices' schedules: the busiest row runs at
        least 1 / a_g of the least program of any grouping (the block's balanced groups' PE bounds,
        sorted chunking per input channel), and of the non-zeros over the kernels a group of a slice
        holds at most (min(P, the widest slice)); it reads out at least the widest slice."""
        if a_g > 1 and not slices_fill(min(bo, g.cout), a_g):
            return np.inf
        widest = cout_slices(int(o_ch[ob]), a_g)[0][1]
        if (ob, lo, hi) not in block_sums:
            block_sums[(ob, lo, hi)] = (int(model.nnz[ob * bo:ob * bo + int(o_ch[ob]), lo:hi].sum()),
                                        int(sch.pe_bound[ob, lo:hi].sum()))
        nnz, bound = block_sums[(ob, lo, hi)]
        least = max(bound, -(-nnz // min(config.pes, widest)))
        return max(shape_of(ob, lo, hi, -(-least // a_g), 0)[1], shape_of(ob, lo, hi, 1, widest)[1])

    def runs_compute(chained: bool):
        run_start = np.nonzero(a_new if chained else k_new)[0]
        run_end = np.append(run_start[1:], steps)
        compute = np.zeros(steps)
        free = np.zeros(steps)
        split = np.ones(steps, dtype=np.int64)  # a_g of each step's run
        cache = {}
        overhead = first_load = 0
        for s0, s1 in zip(run_start, run_end, strict=True):
            ob, ib = int(o[s0]), int(i[s0])
            if chained:  # every cin block of the cout block, on one tile block
                ntiles, lo, hi = int(tiles_step[s0]), 0, g.cin
                ck, splits = (ob, -1, ntiles), chain_splits(divisors, a, ntiles)
            else:
                # every run's accumulators are read out (an accumulator half holds one tile, so a cin
                # block's partial sums leave it and come back through the psum buffer)
                ntiles, lo, hi = int(tiles_step[s0:s1].sum()), ib * bi, min(g.cin, (ib + 1) * bi)
                ck, splits = (ob, ib, ntiles), divisors
            # a run that finishes outputs also waits for their IFFTs: its split is chosen by both
            out_tiles = int(tiles_step[s0:s1][last[s0:s1]].sum())
            ck += (out_tiles,)
            if ck not in cache:
                span, a_g = slice_makespan(ntiles, a, splits, lambda d, ob=ob, lo=lo, hi=hi: split_rows(ob, lo, hi, d),
                                           lambda w, n, ob=ob, lo=lo, hi=hi: shape_of(ob, lo, hi, w, n)[1],
                                           lambda d, ob=ob, lo=lo, hi=hi: split_lower(ob, lo, hi, d),
                                           (lambda d, ob=ob, m=out_tiles: ifft_cycles(config, int(o_ch[ob]), m, d))
                                           if out_tiles else None)
                ss = sliced_of(a_g)
                rows = slice(ob * a_g, (ob + 1) * a_g)
                tot = int(ss.cycles[rows, lo:hi].sum())
                cache[ck] = (span, span * (int(ss.pe_bound[rows, lo:hi].sum()) / tot if tot else 1.0), a_g)
                # the pass's fill and drain: the split's slowest array row
                shape = max((shape_of(ob, lo, hi, w, n) for w, n in split_rows(ob, lo, hi, a_g)),
                            key=lambda x: (x[1], x[0].overhead()))[0]
                if chained:  # the pass starts once the chain's first cin block is in the tile buffer
                    first_rows = _pass_shape(sch, ob, 0, int(i_ch[0]), 0, config).rows_per_tile
                    shape = replace(shape, rows_per_tile=first_rows)
                if shape.overhead() > overhead:
                    overhead, first_load = shape.overhead(), shape.rows_per_tile + 1
            span, span_free, split[s0:s1] = cache[ck]
            if chained:  # the visit's time spread over its cin blocks by their program words
                words = np.array([sch.cycles[ob, i[x] * bi:min(g.cin, (i[x] + 1) * bi)].sum()
                                  for x in range(s0, s1)], dtype=float)
                share = words / words.sum() if words.sum() else np.full(s1 - s0, 1.0 / (s1 - s0))
            else:
                share = tiles_step[s0:s1] / max(1, ntiles)
            compute[s0:s1] = span * share
            free[s0:s1] = span_free * share
        return compute, free, overhead, first_load, split

    def ifft_of(split: np.ndarray) -> np.ndarray:
        """The inverse FFTs of each step's finished outputs at its run's split (ifft_assign: slice g on
        IFFT g mod E)."""
        pairs, pos = np.unique(np.stack([o_ch[o], split]), axis=1, return_inverse=True)
        per_tile = np.array([ifft_cycles(config, int(c), 1, int(d)) for c, d in pairs.T])
        return np.where(last, tiles_step * per_tile[np.ravel(pos)], 0.0)

    walks = [runs_compute(False)]
    if cin_chained(b.order, n_o, n_i, n_t, bt, a // min(divisors)):
        walks.append(runs_compute(True))  # chained only when faster: its arrays and its IFFTs (one tile an array)
    compute, free, overhead, first_load, split = min(walks, key=lambda w: float(np.maximum(w[0], ifft_of(w[4])).sum()))
    n = config.fft_size
    totals = {"kernels_bits": int(np.where(k_new, kb[o, i], 0).sum()),
              "inputs_bits": int(np.where(x_new, in_bits[i, t], 0).sum()),
              "psums_bits": int(np.where(a_new & (visit > 0), psum_blk[o, t], 0).sum()
                                + np.where(a_end & (visit < n_visits - 1), psum_blk[o, t], 0).sum()),
              "outputs_bits": int(np.where(last, out_blk[o, t], 0).sum()),
              "forward_ffts": int(fwd.sum()), "inverse_ffts": int(inv.sum()), "steps": steps}
    # the engine's FFT takes a channel every fft_channel_interval_cycles (its bank writer's two
    # slots make that more than N when the pass reads a channel's rows slowly; the RTL's rate)
    fft_interval = fft_channel_interval_cycles(n, channel_depth(sch.schedule.bank_of, config.banks))
    return LayerSteps(compute, free, load / 8.0, np.where(k_new, kb[o, i], 0) / 8.0, write / 8.0,
                      fwd * fft_interval / config.fft_engines, ifft_of(split), totals, tiles_step, overhead,
                      first_load)


def pipeline_steps(st: LayerSteps, bpc: float):
    """Per-step durations under double buffering, and the layer's prologue / epilogue parts.

    Input tiles and partial sums of step s+1 load during step s; the next kernel block (double
    buffered) streams in during the whole previous run, spread over its steps by tile count;
    writes and inverse FFTs of step s-1 drain during step s."""
    s = st.compute.size
    rest = st.load_bytes - st.kernel_bytes
    load_next = np.zeros(s)
    load_next[:-1] = rest[1:]
    runs = np.nonzero(st.kernel_bytes > 0)[0]
    if runs.size == 0 or runs[0] != 0:
        runs = np.concatenate([[0], runs])
    run_id = np.searchsorted(runs, np.arange(s), side="right") - 1
    weight = np.maximum(st.compute, 1e-9)
    run_w = np.bincount(run_id, weights=weight, minlength=runs.size)
    nxt = np.zeros(runs.size)
    nxt[:-1] = st.kernel_bytes[runs[1:]]
    load_next += nxt[run_id] * weight / run_w[run_id]
    fft_next = np.zeros(s)
    fft_next[:-1] = st.fft[1:]
    write_prev = np.zeros(s)
    write_prev[1:] = st.write_bytes[:-1]
    ifft_prev = np.zeros(s)
    ifft_prev[1:] = st.ifft[:-1]
    mem = (load_next + write_prev) / bpc
    eng = np.maximum(fft_next, ifft_prev)
    step = np.maximum.reduce([st.compute, mem, eng])
    pro = (st.load_bytes[0], st.fft[0])
    epi = (st.write_bytes[-1], st.ifft[-1])
    # closed-form estimate: per kernel-block run and tile-block shape (a run over uneven tile
    # blocks, e.g. 8, 8, 8, 1 tiles, has a full part and a remainder), the largest resource total
    shape = np.zeros(s, dtype=np.int64) if st.tiles is None else np.unique(st.tiles, return_inverse=True)[1]
    part = run_id * (int(shape.max(initial=0)) + 1) + shape
    per_run = [np.bincount(part, weights=x) for x in (st.compute, mem, fft_next, ifft_prev)]
    est = float(np.maximum.reduce(per_run).sum())
    return step, mem, eng, pro, epi, est


def spatial_conv_result(ld, config, device, res, conv) -> LayerResult:
    """A convolution that is not spectral-eligible, on the spatial mode of the PE arrays
    (:func:`flexspec.accel.spatial.spatial_conv_cost`: occupancy from its shape, its own traffic)."""
    cost = spatial_conv_cost(conv, config.arrays, config.pes, int(res.dataflow_bits), device.bytes_per_cycle,
                             config.pe_pipeline_cycles, config.data_bits, config.data_bits,
                             output_bits=int(ld.outputs_bits))
    return spatial_layer_result(cost, config, device, res)
