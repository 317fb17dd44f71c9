"""The PE-array rule: which of the dataflow optimizer's blockings the PE arrays run well.

The P PEs of an array work on P output channels of one input channel, so a kernel block holds a
multiple of P output channels (or all of them).  Each blocking's time is estimated as the
simulator charges it (:func:`blocking_cycles`): its kernel-block runs split over the A arrays by
the simulator's own split (:func:`flexspec.accel.grouping.sliced_array_makespan`: array row g runs
its output-channel slice's groups, as the cluster builds it), each tile at the engine's
interval (:func:`flexspec.accel.engine.pass_shape`: the tile buffer's rows, the program, the
accumulators' read-out at N/K requests a column on every kernel-block run), the forward FFTs
at the RTL's rate (:func:`flexspec.accel.layer_events.fft_channel_interval_cycles`; recomputed for
every output-channel block of a spatial input), the inverse FFTs, and the DRAM traffic; the
optimizer keeps the blockings within 1 / OCCUPANCY_KEEP of the best (:func:`pe_array_candidates`,
passed to ``flexspec.dataflow`` through :func:`flexspec.accel.design_dataflow.analyze`).  The
groups' makespans are their conflict-free PE bound under the balanced grouping (what the
scheduler reaches up to its few bank-conflict cycles), so no schedule is computed here.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..dataflow.model import ORDERS, PLANS, LayerModel
from ..errors import UsageError
from ..rtl.config import PEArrayConfig
from ..schedule.model import resolve_bank_map
from .arch import AcceleratorConfig
from .engine import PassShape, pass_shape
from .grouping import sliced_array_makespan
from .ifft_assign import ifft_cycles, layer_ifft_cycles
from .layer_events import chain_splits, channel_depth, cin_chained, fft_channel_interval_cycles

#: Blockings offered to the dataflow optimizer take at most 1 / this of the estimated time
#: (:func:`blocking_cycles` and the traffic) of the fastest blocking that fits *of the same plan
#: family*.  Per family, because a fixed-dataflow baseline may only use blockings of its own loop
#: order: a threshold taken over all orders can leave a baseline with nothing (small layers where
#: only the flexible orders fill the arrays).
OCCUPANCY_KEEP = 0.95


#: Loop order of each fixed-dataflow family (``flexspec.dataflow.model.LayerModel.plan_mask``).
FAMILY_ORDER = {"kernel-reuse": "oit", "activation-reuse": "tio"}


def balanced_pe_cycles(nnz: np.ndarray, pes: int, cout_block: int) -> int:
    """Sum over kernel groups of the largest PE load (non-zeros), per tile, when every cout block
    of ``cout_block`` output channels is grouped ``balanced`` (per input channel: kernels sorted by
    decreasing non-zeros, cut into chunks of P) -- the conflict-free compute cycles of one tile.

    ``nnz``: int [Cout, Cin].  The groups of one input channel may take any P kernels of the block
    (each PE's accumulator memory is addressed by the output channel), so a larger block balances
    the PE loads better: with blocks of P the chunks are the fixed P-channel slices."""
    nnz = np.asarray(nnz, dtype=np.int64)
    cout = nnz.shape[0]
    bo = max(1, min(int(cout_block), cout))
    total = 0
    for lo in range(0, cout, bo):
        blk = -np.sort(-nnz[lo:lo + bo], axis=0)  # decreasing per input channel
        total += int(blk[::pes].sum())  # the first kernel of each chunk is the chunk's maximum
    return total


def pe_balance(nnz: np.ndarray, pes: int, cout_blocks) -> np.ndarray:
    """Useful MACs / (P x balanced_pe_cycles) per cout block size (float array, shape of
    ``cout_blocks``): the PE occupancy left by load imbalance (and idle PEs of a last partial group)."""
    nnz = np.asarray(nnz, dtype=np.int64)
    useful = int(nnz.sum())
    bo = np.asarray(cout_blocks, dtype=np.int64)
    out = np.ones(bo.shape)
    for b in np.unique(bo):
        cyc = balanced_pe_cycles(nnz, pes, int(b))
        out[bo == b] = useful / (pes * cyc) if cyc else 1.0
    return out


def occupancy_key(plan: str) -> str:
    """Column of a plan's surviving blockings in :func:`pe_array_candidates`' result."""
    return f"pe_occupancy_ok_{plan}"


@lru_cache(maxsize=1 << 16)
def _interval(shape: PassShape) -> float:
    """``shape.interval()``, memoized: a pure function of the (frozen) pass shape, evaluated by a
    Python recurrence, asked for the same shapes by every analysis of a design."""
    return shape.interval()


def kernel_bank_reads(mask: np.ndarray, bank_of, num_banks: int) -> np.ndarray:
    """int16 [Cout, Cin, B]: reads of each kernel from each bank (its kept frequencies per bank)."""
    mask = np.asarray(mask, dtype=bool)
    bank_of = np.asarray(bank_of, dtype=np.int64)
    depth = int(np.bincount(bank_of, minlength=num_banks).max())
    slots = np.full((num_banks, depth), mask.shape[-1], dtype=np.int64)  # index F: a column of zeros
    for b in range(num_banks):
        f = np.nonzero(bank_of == b)[0]
        slots[b, :f.size] = f
    padded = np.concatenate([mask, np.zeros(mask.shape[:2] + (1,), dtype=bool)], axis=2).view(np.uint8)
    reads = padded[..., slots[:, 0]].astype(np.int16)
    for d in range(1, depth):
        reads += padded[..., slots[:, d]]
    return reads


def group_makespans(nnz: np.ndarray, bank_reads: np.ndarray | None, pes: int, ports: int, cout_block: int,
                    blocks: int | None = None) -> np.ndarray:
    """Schedule makespans of the balanced groups of every cout block, int [cout blocks, groups per
    input channel, Cin]: per input channel a block's kernels sorted by decreasing non-zeros
    (stable, as ``flexspec.schedule.group_kernels(..., 'balanced')``), cut into chunks of P; a
    group takes max(its largest kernel's non-zeros, ceil(its busiest bank's reads / R)) cycles --
    the optimal conflict-free schedule's makespan (bipartite edge colouring; a test checks it
    against the scheduler).  ``bank_reads``: :func:`kernel_bank_reads` (None: the PE bound
    alone); ``blocks``: only the first so many cout blocks.  Without broadcast."""
    cout, cin = nnz.shape
    bo = min(int(cout_block), cout)
    n_o, per = -(-cout // bo), -(-bo // pes)
    if blocks is not None and blocks < n_o:
        nnz, cout, n_o = nnz[:blocks * bo], blocks * bo, blocks
        bank_reads = None if bank_reads is None else bank_reads[:cout]
    pad = np.full((n_o * bo, cin), -1, dtype=np.int64)  # -1: no kernel (sorts last, holds nothing)
    pad[:cout] = nnz
    # [block, input channel, row within the block]: the sort runs on the contiguous axis, and on
    # the narrowest integer that holds the keys (a stable sort of equal keys is the same permutation;
    # numpy sorts 8/16-bit keys by radix)
    srt = pad.reshape(n_o, bo, cin).transpose(0, 2, 1)
    key = -srt
    for dt in (np.int8, np.int16):
        if np.iinfo(dt).min <= int(key.min(initial=0)) and int(key.max(initial=0)) <= np.iinfo(dt).max:
            key = key.astype(dt)
            break
    order = np.argsort(key, axis=2, kind="stable")  # row within the block, decreasing non-zeros
    full = np.full((n_o, cin, per * pes), -1, dtype=np.int64)
    full[:, :, :bo] = np.take_along_axis(srt, order, axis=2)
    pe = np.maximum(full[:, :, ::pes], 0).transpose(0, 2, 1)
    if bank_reads is None:
        return pe
    banks = bank_reads.shape[2]
    rows = np.concatenate([bank_reads.reshape(cout * cin, banks), np.zeros((1, banks), bank_reads.dtype)])
    kid = np.full((n_o, cin, per * pes), cout * cin, dtype=np.int64)  # the zero row: no kernel
    kernel_row = order + (np.arange(n_o) * bo)[:, None, None]
    kid[:, :, :bo] = np.where(kernel_row < cout, kernel_row * cin + np.arange(cin)[:, None], cout * cin)
    grouped = np.take(rows, kid.reshape(n_o, cin, per, pes), axis=0).sum(axis=3, dtype=np.int32)  # [n_o, cin, per, B]
    return np.maximum(pe, (-(-grouped.max(axis=3) // ports)).transpose(0, 2, 1))


def stream_bits(cin: int, cout: int, group_cycles: np.ndarray, config: AcceleratorConfig, bank_of,
                cout_block: int) -> int:
    """Bits of a layer's schedule stream grouped by ``cout_block``: its groups' makespans
    (``group_cycles``, e.g. :func:`group_makespans`) x the generated array's schedule word
    (``PEArrayConfig.word_bits`` of the array :func:`flexspec.accel.grouping.stream_array` builds:
    the layer's input channels, one cout block of accumulators) -- what
    :func:`flexspec.accel.grouping.stored_stream_bits` sums to for the optimal schedules."""
    words = int(np.sum(group_cycles))
    arr = PEArrayConfig(config.pes, config.banks, config.ports, config.fft_size, tuple(int(b) for b in bank_of),
                        max(1, words), in_channels=cin, acc_channels=min(int(cout_block), cout),
                        data_bits=config.data_bits, acc_bits=config.acc_bits, broadcast=config.broadcast)
    return words * arr.word_bits()


def blocking_cycles(model, cands: dict, config: AcceleratorConfig, bank_of, bank_reads: np.ndarray | None = None,
                    memo: dict | None = None, stream: bool = True) -> dict:
    """Cycles of each candidate blocking as the simulator (``flexspec.accel.layer_cycles``) charges
    them, per resource: ``compute`` (PE arrays), ``fft`` and ``ifft`` (engines); dict of float arrays,
    with ``stream_bits``: the layer's schedule stream at each candidate's cout block (:func:`stream_bits`;
    zeros when ``stream`` is false: then only the first cout block is scheduled).

    A run is the steps that keep one kernel block: every tile when the tile loop lies inside the
    innermost kernel loop with more than one trip, else one tile block.  Each run takes
    :func:`flexspec.accel.grouping.sliced_array_makespan` of its slices' groups over the A arrays, a tile every
    ``engine.pass_shape(...).interval()`` cycles (tile-buffer rows = cin block x the bank map's
    deepest bank; the read-out of the cout block's accumulators, N/K requests a column, on every
    run: an accumulator half holds one tile, so a cin block's partial sums leave it, as
    ``rtl.layer_engine`` and the simulator do), over the array splits the design allows
    (``AcceleratorConfig.group_splits``).  Every cout block is costed as the first (the
    blocks of a layer hold the same number of kernels; their non-zeros differ little); input
    channel blocks by their first and last; a group takes :func:`group_makespans` cycles
    (``bank_reads``: :func:`kernel_bank_reads`; None: the PE bound alone).  ``bank_of``: the
    layer's bank map (int [F]);
    ``memo``: a caller-owned dict reused by later calls for the same layer, kernels, bank map and
    design (e.g. the rounds of ``design_dataflow.stream_dataflow``), which only saves time."""
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
            groups[key] = group_makespans(nnz, bank_reads, config.pes, config.ports, o_blk,
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
        counts, where = np.unique(tiles, return_inverse=True)
        need = [t for t in counts if t > 0 and t not in memo[key]]
        if need:
            chans = min(o_blk, g.cout)

            def interval(words, outs):  # the engine's cycles per tile for a program of `words`, as the simulator
                return _interval(pass_shape([words], hi - lo, outs, bank_of, config.banks, config.pes,
                                            config.fft_size, config.readout_rows))

            def slices(a_g):  # the groups of the block's a_g output-channel slices, as the simulator splits
                if ("slices", chans, a_g) not in groups:
                    groups[("slices", chans, a_g)] = group_makespans(
                        nnz[:chans], None if bank_reads is None else bank_reads[:chans], config.pes, config.ports,
                        -(-chans // a_g))
                return groups[("slices", chans, a_g)]

            if ("pe_bound", chans) not in groups:  # the least program of any grouping: skips splits that cannot win
                groups[("pe_bound", chans)] = group_makespans(nnz[:chans], None, config.pes, config.ports, chans)
            least = int(groups[("pe_bound", chans)][:, :, lo:hi].sum())
            def floor(t):
                return (lambda d: ifft_cycles(config, chans, t, d)) if out else None

            rows = groups.setdefault(("rows", chans), {})  # each split's rows, kept for every later run of the block
            if chain:
                spans = [sliced_array_makespan(slices, chans, lo, hi, int(t), a, chain_splits(divisors, a, int(t)),
                                               interval, drains, least, floor(int(t)), memo=rows) for t in need]
            else:
                tt = np.array(need, dtype=np.int64)
                spans = sliced_array_makespan(slices, chans, lo, hi, tt, a, divisors, interval, drains, least,
                                              floor(tt), memo=rows).tolist()
            memo[key].update(zip(need, spans, strict=True))
        return np.array([memo[key][t] if t > 0 else 0 for t in counts], dtype=float)[where.reshape(-1)]

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
    pairs, which = np.unique(np.stack([bo, bi], axis=1), axis=0, return_inverse=True)
    by_pair = np.argsort(which.reshape(-1), kind="stable")  # the candidates of each pair, in index order
    ends = np.cumsum(np.bincount(which.reshape(-1), minlength=len(pairs)))
    for (o_blk, i_blk), end, size in zip(pairs.tolist(), ends.tolist(), np.diff(ends, prepend=0).tolist(),
                                         strict=True):
        sel = by_pair[end - size:end]
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


def pe_array_candidates(model, cands: dict, pes: int, arrays: int, onchip_bits: int,
                        bits_per_cycle: float | None = None, *, config: AcceleratorConfig | None = None,
                        mask: np.ndarray | None = None, memo: dict | None = None, stream: bool = False) -> dict:
    """The PE-array rule on a LayerModel's candidate blockings.

    1. a kernel block holds a multiple of P output channels, or all of them;
    2. a candidate's time is estimated as the simulator charges it (:func:`blocking_cycles`:
       PE-array runs, forward and inverse FFTs) and, with ``bits_per_cycle`` (DRAM bits per
       cycle), its traffic: max(compute, FFT, IFFT, traffic / bandwidth), at best with kernels +
       partial sums only (inputs/outputs may be resident) and at worst with all its traffic; with
       ``stream``, the kernels are the schedule stream **of the candidate's own cout block**
       (:func:`stream_bits`; the model's stored bits are the stream of one block only).  Per
       plan family (``flexspec.dataflow.PLANS``: every blocking for 'flexible', the family's loop
       order for a fixed baseline), keep the blockings within 1 / OCCUPANCY_KEEP of the family's
       best best-case time, or of its best worst-case time, among those that fit ``onchip_bits``
       (or among all of the family when none fits).  A boolean column per plan
       (``pe_occupancy_ok_<plan>``) says which survivors each plan may use; a family with
       candidates always keeps its best one.  When rule 1 leaves a fixed family nothing, the
       family is its loop order alone (FAMILY_ORDER).

    ``config``: the design (default: ``arrays`` x ``pes`` with the default banks, engines and
    read-out); ``mask``: the layer's bool mask [Cout, Cin, F] for its bank map (default: the
    'mod' map of the config's banks); ``memo``: see :func:`blocking_cycles`; ``stream``: the
    model counts its kernels as a schedule stream (``design_dataflow.stream_dataflow``)."""
    g = model.geom
    if config is None:
        config = AcceleratorConfig(arrays=arrays, pes=pes, banks=min(AcceleratorConfig.banks, g.num_freq),
                                   fft_size=g.fft_size)
    if (config.pes, config.arrays) != (pes, arrays):
        raise UsageError(f"pe_array_candidates: P x A = {pes} x {arrays} but the config has "
                         f"{config.pes} x {config.arrays}")
    bank_of = resolve_bank_map("auto" if mask is not None else "mod",
                               mask if mask is not None else np.zeros((1, g.num_freq), bool), config.banks)
    reads = None
    if mask is not None and not config.broadcast:
        key = (g.name, config.banks, bank_of.tobytes(), "bank_reads")
        memo_ = memo if memo is not None else {}
        if key not in memo_:
            memo_[key] = kernel_bank_reads(mask, bank_of, config.banks)
        reads = memo_[key]
    ok = (cands["cout_block"] % pes == 0) | (cands["cout_block"] >= g.cout)
    c = {k: v[ok] for k, v in cands.items()}
    fits = c["buffer_bits"] <= onchip_bits
    cyc = blocking_cycles(model, c, config, bank_of, reads, memo, stream)
    est_lo = est_hi = np.maximum.reduce([cyc["compute"], cyc["fft"], cyc["ifft"]])
    if bits_per_cycle:
        kernels = c["kernel_passes"] * cyc["stream_bits"] if stream else c["kernels_bits"]
        low = (kernels + c["psums_bits"]) / bits_per_cycle
        est_lo = np.maximum(est_lo, low)
        est_hi = np.maximum(est_hi, low + (c["inputs_bits"] + model.output_bits) / bits_per_cycle)
    keep = np.zeros(fits.shape, dtype=bool)
    for plan in PLANS:
        fam = LayerModel.plan_mask(model, c, plan)
        if not fam.any() and plan in FAMILY_ORDER:
            # e.g. activation reuse on a layer with Cout <= P and Cin = 1: the PE rule allows one
            # kernel block only, which the dataflow's family definition (several kernel blocks)
            # excludes; the hardware then runs the family's loop order with that single block
            fam = c["order_index"] == ORDERS.index(FAMILY_ORDER[plan])
        if fam.any():
            pool = fam & fits if (fam & fits).any() else fam
            ok = est_lo * OCCUPANCY_KEEP <= est_lo[pool].min() * (1 + 1e-12)
            if bits_per_cycle:
                ok |= est_hi * OCCUPANCY_KEEP <= est_hi[pool].min() * (1 + 1e-12)
            c[occupancy_key(plan)] = fam & ok
        else:
            c[occupancy_key(plan)] = fam
        keep |= c[occupancy_key(plan)]
    return {k: v[keep] for k, v in c.items()}
