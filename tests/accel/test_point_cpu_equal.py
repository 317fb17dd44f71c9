"""A cheaper exploration point, the same results (issue 15, h16e).

The per-point CPU of ``explore.adapter.simulate`` was cut by: ``engine`` memos (a pass's fill and
drain, a bank map's depth, the read-out), ``grouping.slice_makespan`` on Python numbers for one
tile count, ``pe_rule.group_makespans`` sorting on the contiguous axis with radix-width keys,
``pe_rule.blocking_cycles`` walking its candidates by ``np.unique`` inverses and keeping each split's
rows and bounds (``sliced_array_makespan(memo=)``, from per-input-channel prefix sums), the
simulator summing a split's rows from such prefix sums and a kernel block's bound once for all
splits (``layer_cycles.layer_steps``), and the sliced schedules in the disk cache.  The code of main d72f852 that
these replace is kept below verbatim (renamed ``ref_*``; the split search, the PE-array rule and the
simulator's steps as h16r left them, with the IFFT assignment, before these speed-ups) and compared with the new code: on
hypothesis-drawn inputs function by function, on random layers and designs as whole candidate
costs, and on a VGG16 point on the U250 (every device with FLEXSPEC_POINT_EQUAL_ALL=1) as the
whole point (every analysis' chosen dataflow, every simulated layer).
"""

import os
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from flexspec.accel import engine, grouping, layer_cycles, pe_rule, sim
from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.engine import PERIODIC_TILES, PassShape, readout_requests
from flexspec.accel.grouping import LayerSchedules, ScheduleCache, cout_slices, slices_fill
from flexspec.accel.ifft_assign import ifft_cycles, layer_ifft_cycles
from flexspec.accel.layer_cycles import LayerSteps, _pass_shape, _split
from flexspec.accel.layer_events import chain_splits, channel_depth, cin_chained, fft_channel_interval_cycles
from flexspec.accel.pe_rule import kernel_bank_reads, stream_bits
from flexspec.dataflow import LayerModel
from flexspec.dataflow.model import ORDERS
from flexspec.devices import list_devices, load_device
from flexspec.errors import UsageError
from flexspec.explore import adapter
from flexspec.explore.cache import Store
from flexspec.pipeline import fit_design
from flexspec.rtl.config import readout_latency_cycles
from flexspec.rtl.program import program_length
from flexspec.schedule.model import resolve_bank_map
from flexspec.workload.layers import ConvLayer
from flexspec.workload.zoo import get_network


# ------------------------------------------- main d72f852's code (h16r's where it changed the IFFT) --
def ref_pass_shape(group_cycles, in_channels: int, out_channels: int, bank_of, num_banks: int, num_pes: int,
                   fft_size: int, readout_rows: int = 0) -> PassShape:
    """Main d72f852, verbatim but for the name (the reference)."""
    depth = max(1, int(np.bincount(np.asarray(bank_of, dtype=np.int64), minlength=num_banks).max()))
    return PassShape(int(in_channels) * depth, program_length(group_cycles),
                     readout_requests(out_channels, fft_size, readout_rows), readout_latency_cycles(num_pes))


def ref_overhead(self) -> int:
    """Main d72f852's ``PassShape.overhead`` (the reference)."""
    return int(round(self.cycles(PERIODIC_TILES) - PERIODIC_TILES * self.interval()))


def _ref_interval(shape: PassShape) -> float:
    return shape.interval()


def ref_group_makespans(nnz: np.ndarray, bank_reads: np.ndarray | None, pes: int, ports: int, cout_block: int,
                    blocks: int | None = None) -> np.ndarray:
    """Main d72f852, verbatim but for the names (the reference)."""
    cout, cin = nnz.shape
    bo = min(int(cout_block), cout)
    n_o, per = -(-cout // bo), -(-bo // pes)
    if blocks is not None and blocks < n_o:
        nnz, cout, n_o = nnz[:blocks * bo], blocks * bo, blocks
        bank_reads = None if bank_reads is None else bank_reads[:cout]
    pad = np.full((n_o * bo, cin), -1, dtype=np.int64)  # -1: no kernel (sorts last, holds nothing)
    pad[:cout] = nnz
    order = np.argsort(-pad.reshape(n_o, bo, cin), axis=1, kind="stable")  # row within the block
    srt = np.take_along_axis(pad.reshape(n_o, bo, cin), order, axis=1)
    full = np.full((n_o, per * pes, cin), -1, dtype=np.int64)
    full[:, :bo] = srt
    pe = np.maximum(full[:, ::pes], 0)
    if bank_reads is None:
        return pe
    banks = bank_reads.shape[2]
    rows = np.concatenate([bank_reads.reshape(cout * cin, banks), np.zeros((1, banks), bank_reads.dtype)])
    kid = np.full((n_o, per * pes, cin), cout * cin, dtype=np.int64)  # the zero row: no kernel
    kernel_row = order + (np.arange(n_o) * bo)[:, None, None]
    kid[:, :bo] = np.where(kernel_row < cout, kernel_row * cin + np.arange(cin), cout * cin)
    grouped = rows[kid.reshape(n_o, per, pes, cin)].sum(axis=2, dtype=np.int32)  # [n_o, per, cin, B]
    return np.maximum(pe, -(-grouped.max(axis=3) // ports))


def ref_slice_makespan(tiles, arrays: int, splits, rows_of: Callable, interval: Callable,
                   lower: Callable | None = None, floor: Callable | None = None) -> tuple:
    """h16r's code (main d72f852 with the IFFT assignment), verbatim but for the names (the reference)."""
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
        most: dict = {}  # the row with the most words for each slice width sets the interval
        for w, o in rows:
            most[int(o)] = max(most.get(int(o), 0), int(w))
        total = passes[a_g] * max(interval(w, o) for o, w in most.items())
        key = np.maximum(total, floor(a_g)) if floor else total
        better = (key < best) | ((key == best) & (pos < best_pos))
        best, best_pos, best_split, arrays_only = (np.where(better, x, y) for x, y in (
            (key, best), (pos, best_pos), (a_g, best_split), (total, arrays_only)))
    if not np.all(np.isfinite(best)):
        raise UsageError(f"no array split of {list(splits)} can run this kernel block on {arrays} arrays")
    if np.ndim(tiles):
        return arrays_only, best_split
    return arrays_only[0].item(), int(best_split[0])


def ref_sliced_array_makespan(slice_groups: Callable, channels: int, lo: int, hi: int, tiles, arrays: int, splits,
                          interval: Callable, drains: bool = True, least_words: int | None = None,
                          floor: Callable | None = None):
    """h16r's code (main d72f852 with the IFFT assignment), verbatim but for the names (the reference)."""
    def rows_of(a_g):
        if a_g > 1 and not slices_fill(channels, a_g):
            return None
        words = np.asarray(slice_groups(a_g))[:, :, lo:hi].sum(axis=(1, 2))
        return [(int(w), n if drains else 0) for w, (_, n) in zip(words, cout_slices(channels, a_g), strict=True)]

    def lower(a_g):
        if a_g > 1 and not slices_fill(channels, a_g):
            return np.inf
        widest = cout_slices(channels, a_g)[0][1] if drains else 0
        return max(interval(-(-least_words // a_g), 0), interval(1, widest))

    return ref_slice_makespan(tiles, arrays, splits, rows_of, interval, None if least_words is None else lower, floor)[0]


def ref_blocking_cycles(model, cands: dict, config: AcceleratorConfig, bank_of, bank_reads: np.ndarray | None = None,
                    memo: dict | None = None, stream: bool = True) -> dict:
    """h16r's code (main d72f852 with the IFFT assignment), verbatim but for the names (the reference)."""
    g = model.geom
    nnz = model.nnz
    a = config.arrays
    divisors = list(config.group_splits)
    bo = np.minimum(cands["cout_block"], g.cout)
    bi = np.minimum(cands["cin_block"], g.cin)
    bt = np.minimum(cands["tile_block"], g.tiles)
    n_o, n_i = cands["cout_blocks"], cands["cin_blocks"]
    orders = np.array([[o.index(x) for x in "oit"] for o in ORDERS])[cands["order_index"]]
    kernel_inner = np.maximum(np.where(n_o > 1, orders[:, 0], -1), np.where(n_i > 1, orders[:, 1], -1))
    all_tiles = orders[:, 2] > kernel_inner
    full = np.where(all_tiles, g.tiles, bt)
    n_full = np.where(all_tiles, 1, g.tiles // bt)
    rem = np.where(all_tiles, 0, g.tiles - n_full * bt)
    compute = np.zeros(bo.size)
    ifft = np.zeros(bo.size)
    bits = np.zeros(bo.size)
    memo = (memo if memo is not None else {}).setdefault((g.name, config, bank_of.tobytes()), {})
    groups = memo.setdefault("groups", {})

    def groups_of(o_blk: int, every_block: bool = False) -> np.ndarray:
        key = (o_blk, every_block)
        if key not in groups:
            groups[key] = ref_group_makespans(nnz, bank_reads, config.pes, config.ports, o_blk,
                                          None if every_block else 1)
        return groups[key]

    def block_cost(o_blk: int, lo: int, hi: int, drains: bool, tiles: np.ndarray, chain: bool = False,
                   out: bool = False) -> np.ndarray:
        """Cycles of one run of input channels lo..hi of a cout block over each count of ``tiles``;
        ``chain``: a chained walk's accumulator visit (every cin block, a tile an array); ``out``: the
        run finishes outputs, so its split is chosen with their IFFTs (as the simulator's)."""
        key = (o_blk, lo, hi, drains, chain, out)
        if key not in memo:
            memo[key] = {}
        need = [t for t in np.unique(tiles) if t > 0 and t not in memo[key]]
        if need:
            chans = min(o_blk, g.cout)

            def interval(words, outs):  # the engine's cycles per tile for a program of `words`, as the simulator
                return _ref_interval(ref_pass_shape([words], hi - lo, outs, bank_of, config.banks, config.pes,
                                            config.fft_size, config.readout_rows))

            def slices(a_g):  # the groups of the block's a_g output-channel slices, as the simulator splits
                if ("slices", chans, a_g) not in groups:
                    groups[("slices", chans, a_g)] = ref_group_makespans(
                        nnz[:chans], None if bank_reads is None else bank_reads[:chans], config.pes, config.ports,
                        -(-chans // a_g))
                return groups[("slices", chans, a_g)]

            if ("pe_bound", chans) not in groups:  # the least program of any grouping: skips splits that cannot win
                groups[("pe_bound", chans)] = ref_group_makespans(nnz[:chans], None, config.pes, config.ports, chans)
            least = int(groups[("pe_bound", chans)][:, :, lo:hi].sum())
            def floor(t):
                return (lambda d: ifft_cycles(config, chans, t, d)) if out else None

            if chain:
                spans = [ref_sliced_array_makespan(slices, chans, lo, hi, int(t), a, chain_splits(divisors, a, int(t)),
                                               interval, drains, least, floor(int(t))) for t in need]
            else:
                tt = np.array(need, dtype=np.int64)
                spans = ref_sliced_array_makespan(slices, chans, lo, hi, tt, a, divisors, interval, drains, least,
                                              floor(tt)).tolist()
            memo[key].update(zip(need, spans, strict=True))
        return np.array([memo[key][t] if t > 0 else 0 for t in tiles], dtype=float)

    def ifft_walk(o_blk: int, full_tiles: int, rem_tiles: int, splits) -> float:
        """IFFT cycles of the layer walked in tile blocks of ``full_tiles`` (and one of ``rem_tiles``),
        each cout block at its IFFTs' best split of ``splits`` (None: a chained walk's, one tile an array)."""
        key = ("ifft", o_blk, full_tiles, rem_tiles, splits is None)
        if key not in memo:
            def cost(t):
                sp = chain_splits(divisors, a, t) if splits is None else splits
                return layer_ifft_cycles(config, g.cout, t, o_blk, sp) if t and sp else (np.inf if t else 0.0)
            memo[key] = (g.tiles - rem_tiles) // max(1, full_tiles) * cost(full_tiles) + cost(rem_tiles)
        return memo[key]

    chained = cin_chained(orders.T, n_o, n_i, cands["tile_blocks"], bt, a // min(divisors))
    for o_blk, i_blk in {(int(x), int(y)) for x, y in zip(bo, bi, strict=True)}:
        sel = np.nonzero((bo == o_blk) & (bi == i_blk))[0]
        last_lo = (int(n_i[sel[0]]) - 1) * i_blk
        per_block = np.zeros(sel.size)
        for lo, hi, out, weight in ((0, i_blk, False, n_i[sel] - 1), (last_lo, g.cin, True, 1)):
            runs = n_full[sel] * block_cost(o_blk, lo, hi, True, full[sel], False, out) \
                + block_cost(o_blk, lo, hi, True, rem[sel], False, out)
            per_block += np.where(weight > 0, weight * runs, 0.0)
        compute[sel] = n_o[sel] * per_block
        ifft[sel] = [ifft_walk(o_blk, int(x), int(y), divisors) for x, y in zip(full[sel], rem[sel], strict=True)]
        ch = chained[sel]
        if ch.any():  # walks that may chain: one run per accumulator visit, read out once, when faster
            c_sel = sel[ch]  # (its arrays and its IFFTs: a chained tile block holds one tile an array)
            visits = n_o[c_sel] * (n_full[c_sel] * block_cost(o_blk, 0, g.cin, True, full[c_sel], True, True)
                                   + block_cost(o_blk, 0, g.cin, True, rem[c_sel], True, True))
            c_ifft = np.array([ifft_walk(o_blk, int(x), int(y), None) for x, y in zip(full[c_sel], rem[c_sel],
                                                                                       strict=True)])
            better = np.maximum(visits, c_ifft) < np.maximum(compute[c_sel], ifft[c_sel])
            compute[c_sel] = np.where(better, visits, compute[c_sel])
            ifft[c_sel] = np.where(better, c_ifft, ifft[c_sel])
        if stream and ("stream", o_blk) not in memo:
            memo[("stream", o_blk)] = stream_bits(g.cin, g.cout, groups_of(o_blk, True), config, bank_of, o_blk)
        bits[sel] = memo.get(("stream", o_blk), 0) if stream else 0
    n = config.fft_size
    fft = cands["forward_ffts"] * fft_channel_interval_cycles(n, channel_depth(bank_of, config.banks)) \
        / config.fft_engines
    return {"compute": compute, "fft": fft, "ifft": ifft, "stream_bits": bits}


def ref_layer_steps(ld, model, sch: LayerSchedules, config: AcceleratorConfig,
                sliced: Callable[[int], LayerSchedules] | None = None) -> LayerSteps:
    """h16r's code (main d72f852 with the IFFT assignment), verbatim but for the names (the reference)."""
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

    def split_rows(ob, lo, hi, a_g):
        """(words, outs) of each array row of split a_g on input channels lo..hi of cout block ob."""
        if a_g > 1 and not slices_fill(min(bo, g.cout), a_g):
            return None  # the cluster cannot build a row without channels
        ss = sliced_of(a_g)
        words = ss.cycles[ob * a_g:(ob + 1) * a_g, lo:hi].sum(axis=(1, 2))
        return [(int(w), n) for w, (_, n) in zip(words, cout_slices(int(o_ch[ob]), a_g), strict=True)]

    def split_lower(ob, lo, hi, a_g):
        """A lower bound on split a_g's cycles a tile without its slices' schedules: the busiest row runs at
        least 1 / a_g of the least program of any grouping (the block's balanced groups' PE bounds,
        sorted chunking per input channel), and of the non-zeros over the kernels a group of a slice
        holds at most (min(P, the widest slice)); it reads out at least the widest slice."""
        if a_g > 1 and not slices_fill(min(bo, g.cout), a_g):
            return np.inf
        widest = cout_slices(int(o_ch[ob]), a_g)[0][1]
        nnz = int(model.nnz[ob * bo:ob * bo + int(o_ch[ob]), lo:hi].sum())
        least = max(int(sch.pe_bound[ob, lo:hi].sum()), -(-nnz // min(config.pes, widest)))
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
                span, a_g = ref_slice_makespan(ntiles, a, splits, lambda d, ob=ob, lo=lo, hi=hi: split_rows(ob, lo, hi, d),
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


# ---------------------------------------------------------------------------- group makespans --
@st.composite
def _kernels(draw):
    """nnz [Cout, Cin] (with bank reads from a mask of 40 frequencies), or arbitrary non-zero counts
    up to 40,000 without (the 16-bit and 64-bit sort keys), and a grouping."""
    cout, cin = draw(st.integers(1, 70)), draw(st.integers(1, 10))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if draw(st.booleans()):
        mask = rng.random((cout, cin, 40)) < draw(st.sampled_from([0.0, 0.05, 0.3, 0.9]))
        banks = draw(st.sampled_from([1, 4, 10, 20]))
        reads = kernel_bank_reads(mask, resolve_bank_map("auto", mask, banks), banks)
        nnz = mask.sum(axis=2, dtype=np.int64)
    else:
        nnz, reads = rng.integers(0, draw(st.sampled_from([3, 200, 40000])), (cout, cin)).astype(np.int64), None
    cout_block = draw(st.integers(1, cout + 5))
    blocks = draw(st.one_of(st.none(), st.integers(1, 4)))
    return nnz, reads, draw(st.integers(1, 9)), draw(st.integers(1, 3)), cout_block, blocks


@settings(max_examples=300, deadline=None)
@given(case=_kernels())
def test_group_makespans_equal_the_reference(case):
    nnz, reads, pes, ports, cout_block, blocks = case
    new = pe_rule.group_makespans(nnz, reads, pes, ports, cout_block, blocks)
    ref = ref_group_makespans(nnz, reads, pes, ports, cout_block, blocks)
    assert new.shape == ref.shape and np.array_equal(new, ref)


# ----------------------------------------------------------------------------- array splits --
@st.composite
def _split_search(draw):
    """A split search of one tile count: the divisors of A, rows (None: a split that cannot run) of
    random programs and slice widths, an engine interval with many ties, optional lower bounds."""
    arrays = draw(st.integers(1, 72))
    splits = [d for d in range(1, arrays + 1) if arrays % d == 0]
    splits = draw(st.permutations(splits))[:draw(st.integers(1, len(splits)))]
    rows = {d: None if draw(st.integers(0, 5)) == 0 else
            [(draw(st.integers(0, 60)), draw(st.integers(0, 9))) for _ in range(d)] for d in splits}
    slope, floor = draw(st.sampled_from([1, 2, 0.5])), draw(st.integers(0, 40))
    lower = None
    if draw(st.booleans()):
        lower = {d: draw(st.sampled_from([0, 1, 5, 20, 80, np.inf])) for d in splits}
    return draw(st.integers(0, 400)), arrays, splits, rows, slope, floor, lower


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply")  # main's code: 0 tiles x an infinite bound
@settings(max_examples=250, deadline=None)
@given(case=_split_search())
def test_slice_makespan_of_one_count_equals_the_reference(case):
    """Cycles and split (the first listed on ties, the bounds' skips) equal main's array code, and
    both refuse a search where no split can run."""
    tiles, arrays, splits, rows, slope, floor, lower = case
    args = (tiles, arrays, splits, rows.get, lambda w, o: max(w, slope * o + floor),
            None if lower is None else lower.get)
    try:
        ref = ref_slice_makespan(*args)
    except UsageError:
        with pytest.raises(UsageError):
            grouping.slice_makespan(*args)
        return
    new = grouping.slice_makespan(*args)
    assert new == ref and type(new[0]) is type(ref[0]) and type(new[1]) is type(ref[1])


@settings(max_examples=200, deadline=None)
@given(rows=st.integers(1, 300), words=st.lists(st.integers(0, 5000), min_size=1, max_size=4),
       outs=st.integers(0, 600), pes=st.sampled_from([1, 4, 8, 16]), banks=st.sampled_from([1, 4, 10, 20]),
       readout=st.sampled_from([0, 1, 2, 8]), seed=st.integers(0, 99))
def test_pass_shape_and_its_overhead_equal_the_reference(rows, words, outs, pes, banks, readout, seed):
    bank_of = np.random.default_rng(seed).integers(0, banks, 40)
    for cyc in (words[:1], words, np.array(words)):
        new = engine.pass_shape(cyc, rows, outs, bank_of, banks, pes, 8, readout)
        ref = ref_pass_shape(cyc, rows, outs, bank_of, banks, pes, 8, readout)
        assert new == ref
        assert new.overhead() == ref_overhead(ref)


# -------------------------------------------------------------------------- blocking cycles --
@st.composite
def _layer_and_design(draw):
    cout, cin = draw(st.integers(1, 48)), draw(st.integers(1, 12))
    size = draw(st.sampled_from([4, 9, 14, 20]))
    lay = ConvLayer("c", cin, cout, size, size, 3, 1, 1)
    mask = np.random.default_rng(draw(st.integers(0, 2**16))).random((cout, cin, 40)) < \
        draw(st.sampled_from([0.05, 0.2, 0.5]))
    cfg = AcceleratorConfig(arrays=draw(st.sampled_from([1, 6, 12, 30, 60])), pes=draw(st.sampled_from([2, 4, 8])),
                            banks=draw(st.sampled_from([4, 10, 20])), ports=draw(st.sampled_from([1, 2])),
                            readout_rows=draw(st.sampled_from([0, 2, 8])),
                            array_split=draw(st.sampled_from(["tiles+groups", "tiles"])))
    return lay, mask, cfg


@settings(max_examples=40, deadline=None)
@given(case=_layer_and_design())
def test_blocking_cycles_equal_the_reference(case):
    """Every candidate blocking's compute / FFT / IFFT / stream bits, with and without the stream,
    each side with its own memo shared by both settings (as one design's analyses share it)."""
    lay, mask, cfg = case
    m = LayerModel(lay, mask, 8)
    cands = m.candidates()
    ok = (cands["cout_block"] % cfg.pes == 0) | (cands["cout_block"] >= lay.out_channels)
    cands = {k: v[ok] for k, v in cands.items()}
    bank_of = resolve_bank_map("auto", mask, cfg.banks)
    reads = kernel_bank_reads(mask, bank_of, cfg.banks)
    memo_new, memo_ref = {}, {}
    for stream in (True, False):
        new = pe_rule.blocking_cycles(m, cands, cfg, bank_of, reads, memo_new, stream)
        ref = ref_blocking_cycles(m, cands, cfg, bank_of, reads, memo_ref, stream)
        for k in ("compute", "fft", "ifft", "stream_bits"):
            assert np.array_equal(new[k], ref[k]), (cfg, stream, k)


# -------------------------------------------------------------------------- a whole point --
def _point(net, dev, cfg, masks, schedules) -> dict:
    """Everything one exploration point decides (``explore.adapter.simulate``): the entries
    analysis' plans, the stream dataflow's layers, every simulated layer and the whole network."""
    seen: dict = {}

    def recorded(name, fn):
        def run(*args, **kwargs):
            out = fn(*args, **kwargs)
            seen[name] = out
            return out
        return run

    mp = pytest.MonkeyPatch()
    for name in ("analyze", "design_plan", "simulate_plan"):
        mp.setattr(adapter, name, recorded(name, getattr(adapter, name)))
    try:
        result = adapter.simulate(net, dev, cfg, masks, schedules)
    finally:
        mp.undo()
    return {"plans": {plan: [repr(ld) for ld in layers] for plan, layers in seen["analyze"].plans.items()},
            "stream_plan": [repr(ld) for ld in seen["design_plan"][0]],
            "conv_layers": [repr(x) for x in seen["simulate_plan"].layers],
            "layers": [repr(x) for x in result.layers], "cycles": result.cycles}


def _use_reference(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(pe_rule, "blocking_cycles", ref_blocking_cycles)
    mp.setattr(grouping, "slice_makespan", ref_slice_makespan)
    mp.setattr(layer_cycles, "slice_makespan", ref_slice_makespan)
    mp.setattr(layer_cycles, "pass_shape", ref_pass_shape)
    mp.setattr(sim, "layer_steps", ref_layer_steps)
    mp.setattr(PassShape, "overhead", ref_overhead)


@pytest.fixture(scope="module")
def vgg16_kernels():
    """VGG16 at 224 x 224, random 12% masks, and one schedule cache for every point (the schedules'
    code is not changed here; the disk cache's sliced entries are checked on their own below)."""
    net = get_network("vgg16")
    rng = np.random.default_rng(5)
    masks = {lay.name: rng.random((lay.out_channels, lay.in_channels, 40)) < 0.12 for lay in net.spectral_layers}
    return net, masks, ScheduleCache()


#: CI checks the U250 (the most arrays and splits); FLEXSPEC_POINT_EQUAL_ALL=1 checks every device
#: (about 30 CPU s each; run for BENCHMARKS.md "A cheaper exploration point")
DEVICES = [d.name for d in list_devices()] if os.environ.get("FLEXSPEC_POINT_EQUAL_ALL") else ["u250"]


@pytest.mark.parametrize("device", DEVICES)
def test_a_vgg16_point_equals_the_reference(device, vgg16_kernels, monkeypatch):
    """A VGG16 point (P 4, B 10, R 1, A = fit: 140 arrays on the U250, 12 array splits: the most of
    any device) from the new code and from main's code patched in (about 30 CPU s: one device)."""
    net, masks, schedules = vgg16_kernels
    dev = load_device(device)
    cfg, _ = fit_design(dev, 8, arrays=None, pes=4, banks=10, ports=1, broadcast=False)
    new = _point(net, dev, cfg, masks, schedules)
    _use_reference(monkeypatch)
    ref = _point(net, dev, cfg, masks, schedules)
    assert new == ref


def test_the_disk_cache_serves_the_same_sliced_schedules(tmp_path):
    """``DiskScheduleCache.sliced`` (now on disk) equals ``ScheduleCache.sliced`` for every split of
    a layer whose slices are not whole blocks, computed and then read back by a second store."""
    rng = np.random.default_rng(1)
    mask = rng.random((22, 5, 40)) < 0.3
    cfg = AcceleratorConfig(arrays=12, pes=4, banks=10, ports=2)
    mem = ScheduleCache()
    first = adapter.DiskScheduleCache(Store(tmp_path))
    for cout_block in (8, 12, 22):
        for rows in (1, 2, 3, 4, 6):
            if rows > 1 and not slices_fill(min(cout_block, 22), rows):
                continue
            want = mem.sliced(mask, cfg, cout_block, rows)
            again = adapter.DiskScheduleCache(Store(tmp_path))  # a fresh process's view: read from disk
            for got in (first.sliced(mask, cfg, cout_block, rows), again.sliced(mask, cfg, cout_block, rows)):
                for k in ("groups", "cycles", "pe_bound", "cout_block", "slices"):
                    assert np.array_equal(getattr(got, k), getattr(want, k)), (cout_block, rows, k)
                assert np.array_equal(got.schedule.bank_of, want.schedule.bank_of)
    assert again.hits > 0 and again.misses == 0
