"""The PE-array rule: which of the dataflow optimizer's blockings the PE arrays run well.

The P PEs of an array work on P output channels of one input channel, so a kernel block holds a
multiple of P output channels (or all of them).  A blocking's PE occupancy counts both the A
arrays' (tile, group) slots (:func:`array_occupancy`) and the PE load balance of the balanced
grouping over each cout block (:func:`pe_balance`), so the optimizer trades a larger cout block
(more accumulator storage) for balanced PE loads (:func:`pe_array_candidates`, passed to
``flexspec.dataflow`` through :func:`flexspec.accel.design_dataflow.analyze`).
"""

from __future__ import annotations

import numpy as np

from ..dataflow.model import ORDERS, PLANS, LayerModel

#: Blockings offered to the dataflow optimizer keep the PE arrays at least this fraction as busy
#: as the busiest blocking that fits *of the same plan family* (work of a kernel-block run mapped
#: onto the A arrays).  Per family, because a fixed-dataflow baseline may only use blockings of
#: its own loop order: a threshold taken over all orders can leave a baseline with nothing (small
#: layers where only the flexible orders fill the arrays).
OCCUPANCY_KEEP = 0.95


def array_occupancy(cands: dict, geom, pes: int, arrays: int, divisors) -> np.ndarray:
    """Fraction of the A arrays' (tile, group) slots a kernel-block run fills, per candidate.

    A run = the steps that keep one kernel block: all T tiles when the tile loop is innermost,
    else one tile block.  It holds ``cin_block * ceil(cout_block / P)`` groups; the arrays split
    it as a_t (tiles) x a_g (groups) = A, the best split counted."""
    inner_t = np.array([o[2] == "t" for o in ORDERS])[cands["order_index"]]
    tiles = np.where(inner_t, geom.tiles, np.minimum(cands["tile_block"], geom.tiles))
    groups = np.minimum(cands["cin_block"], geom.cin) * -(-np.minimum(cands["cout_block"], geom.cout) // pes)
    slots = None
    for a_g in divisors:
        a_t = arrays // int(a_g)
        s = -(-tiles // a_t) * a_t * (-(-groups // int(a_g)) * int(a_g))
        if a_g > 1:  # as the simulator (grouping.array_makespan): no more array columns than groups
            s = np.where(groups >= a_g, s, np.iinfo(np.int64).max)
        slots = s if slots is None else np.minimum(slots, s)
    return tiles * groups / slots


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


def pe_array_candidates(model, cands: dict, pes: int, arrays: int, onchip_bits: int,
                        bits_per_cycle: float | None = None, group_splits=None,
                        readout_requests_per_column: int = 0) -> dict:
    """The PE-array rule on a LayerModel's candidate blockings.

    1. a kernel block holds a multiple of P output channels, or all of them;
    2. occupancy = array occupancy (:func:`array_occupancy`) x PE balance (:func:`pe_balance`
       of the cout block), compute cycles = MACs / (A*P*occupancy); with ``bits_per_cycle``
       (DRAM bits per cycle) a candidate's time is estimated as max(compute, traffic / bandwidth),
       at best with kernels + partial sums only (inputs/outputs may be resident) and at worst with
       all its traffic (without ``bits_per_cycle``: compute only).  Per plan family
       (``flexspec.dataflow.PLANS``: every blocking for 'flexible', the family's loop order for a
       fixed baseline), keep the blockings within 1 / OCCUPANCY_KEEP of the family's best
       best-case time, or of its best worst-case time, among those that fit ``onchip_bits`` (or
       among all of the family when none fits): on compute-bound layers only well-occupied,
       balanced blockings survive; where traffic dominates, the low-traffic ones stay.  A boolean column per plan
       (``pe_occupancy_ok_<plan>``) says which survivors each plan may use; a family with
       candidates always keeps its best one.  When rule 1 leaves a fixed family nothing, the
       family is its loop order alone (FAMILY_ORDER)."""
    g = model.geom
    ok = (cands["cout_block"] % pes == 0) | (cands["cout_block"] >= g.cout)
    c = {k: v[ok] for k, v in cands.items()}
    # the a_g the design allows (AcceleratorConfig.group_splits; default every divisor of A)
    divisors = np.array(group_splits if group_splits is not None else
                        [d for d in range(1, arrays + 1) if arrays % d == 0])
    occ = array_occupancy(c, g, pes, arrays, divisors) * pe_balance(model.nnz, pes, c["cout_block"])
    fits = c["buffer_bits"] <= onchip_bits
    # time estimate in cycles: compute at this occupancy; traffic at best (kernels + partial sums:
    # inputs and outputs may stay resident) and at worst (everything off-chip)
    compute = model.complex_macs / (pes * arrays * np.maximum(occ, 1e-12))
    if readout_requests_per_column:
        # every kernel-block run's accumulators are read out (rtl.layer_engine, accel.layer_cycles):
        # per cin block and tile, Cout x (N/2+1) columns x N/K requests; an array reads out its own
        # tiles, at best ceil(T / A) of them
        cin_blocks = -(-g.cin // np.minimum(c["cin_block"], g.cin))
        compute = np.maximum(compute, cin_blocks * -(-g.tiles // arrays) * g.cout * (g.fft_size // 2 + 1)
                             * readout_requests_per_column)
    est_lo = est_hi = compute
    if bits_per_cycle:
        low = (c["kernels_bits"] + c["psums_bits"]) / bits_per_cycle
        est_lo = np.maximum(compute, low)
        est_hi = np.maximum(compute, low + (c["inputs_bits"] + model.output_bits) / bits_per_cycle)
    keep = np.zeros(occ.shape, dtype=bool)
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
