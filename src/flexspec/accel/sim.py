"""Performance simulator of the spectral accelerator: every byte from ``flexspec.dataflow``.

Pipeline of one simulation
--------------------------
1. Kernels (:mod:`.kernels`): real / synthesized / user / (explicitly) random masks, with provenance.
2. Dataflow (:func:`flexspec.dataflow.analyze_network`): per-layer loop order and blocking, exact
   traffic (bits), cross-layer residency and spectral links, and the two fixed-dataflow baselines,
   under a :class:`~flexspec.dataflow.Budget` derived from this design (on-chip bytes left after
   the tile banks and FFT buffers, sustained DRAM bandwidth, A*P complex MACs per cycle, FFT
   engine rate).  Hardware rule passed to the optimizer: a kernel block holds a multiple of P
   output channels (or all of them), because the P PEs of an array work on P output channels of
   one input channel.  The blockings' PE occupancy counts both the arrays' (tile, group) slots and
   the PE load balance of the balanced grouping over each cout block (:func:`pe_balance`), so the
   optimizer trades a larger cout block (more accumulator storage) for balanced PE loads.
3. Schedules (:func:`flexspec.schedule.schedule_groups`): the kernels of every (output-channel
   block, input channel) pair are grouped by P (balanced grouping inside the block) and each
   group is scheduled conflict-free over the B banks x R ports (``optimal`` / ``broadcast``;
   baselines ``inorder``).
4. Steps: the blocked loop nest is unrolled into steps (one (cout block, cin block, tile block)
   each, in the blocking's loop order).  A tensor block is loaded when its block index changes
   (kernels, input tiles -- forward FFTs on load of a spatial input --, partial sums on a
   revisit); an accumulator block is written (partial sums, or the finished output after the
   inverse FFTs) when its visit ends.  The per-step bytes add up *exactly* to the dataflow
   model's traffic (tests check it).  Compute: consecutive steps on the same kernel block form a
   run; the A arrays split a run as a_t arrays over tiles x a_g arrays over kernel groups
   (best divisor pair), each group taking its schedule's makespan per tile; groups are assigned
   to the a_g array columns longest-first to the least-loaded column (LPT).
5. Timing: double buffering overlaps step s's compute with step s+1's loads / FFTs and step
   s-1's writes / inverse FFTs: a step lasts max(compute, memory, FFT, IFFT).  Between layers,
   the next layer's first loads and FFTs overlap the previous layer's last writes and inverse
   FFTs (both streams share the DRAM bandwidth), and the next layer's first kernel block streams
   in during the previous layer's last kernel-block run (its idle second kernel buffer, as far as
   the buffer and the spare bandwidth allow; the roofline moves those bytes with it).  Only the network's first prologue and last
   epilogue are exposed.

DSP efficiency (the issue's definition): useful complex MACs x DSPs per complex MAC /
(PE-array DSPs allocated x cycles) = useful MACs / (A*P*cycles).  ``dsp_efficiency_all`` divides by
all DSPs of the design (FFT engines included) instead.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..dataflow import Precision
from ..errors import UsageError
from ..kernel_format import KernelFormat, psum_bits
from ..workload.layers import Network
from .arch import AcceleratorConfig, Resources, resources
from ..devices import Device, load_device
from .engine import PassShape, pass_shape
from .fixed_point import FFTFormat
from ..rtl.fft_contract import latency_cycles as fft_latency_cycles
from .kernels import KernelSource, random_masks, resolve_kernels  # noqa: F401  (re-exported)
from .spatial import (
    conv_only, layer_result as spatial_layer_result, spatial_accelerator, spatial_conv_cost, whole_network as _whole,
)

FORMAT_VERSION = 2
BASELINES = ("kernel-reuse", "activation-reuse")
#: The headline baseline: prior spectral accelerators keep the kernels on chip and stream tiles.
HEADLINE_BASELINE = "kernel-reuse"


# ------------------------------------------------------------------------ dataflow hookup --
def precision_of(config: AcceleratorConfig, kernels=None):
    """Word widths of this design; kernel entries as a kernel file (``kernels``, a
    SparseNetworkKernels) stores them, else at the design's data width."""
    fmt = config.kernel_format
    if kernels is not None:
        widths = {(k.value_bits, k.index_bits) for k in kernels.layers.values()}
        if len(widths) != 1:
            raise UsageError(f"the kernel file stores its layers at different widths {sorted(widths)}; "
                             f"the simulator needs one (value_bits, index_bits)")
        fmt = KernelFormat(*widths.pop())
    return Precision(activation_bits=config.data_bits, kernel_format=fmt, psum_bits=psum_bits(config.acc_bits))


def budget_of(config: AcceleratorConfig, device: Device, res: Resources):
    """The dataflow Budget of this design: its on-chip buffer share, the sustained DRAM bandwidth,
    and the compute / FFT rates of ``flexspec.dataflow.budget`` (the one formula)."""
    from ..dataflow.budget import budget_from_device

    return budget_from_device(device, pe_count=config.pe_count,
                              fft_engines=min(config.fft_engines, config.ifft_engines), fft_size=config.fft_size,
                              onchip_bytes=int(res.dataflow_bits // 8))


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
    from ..dataflow.model import ORDERS

    inner_t = np.array([o[2] == "t" for o in ORDERS])[cands["order_index"]]
    tiles = np.where(inner_t, geom.tiles, np.minimum(cands["tile_block"], geom.tiles))
    groups = np.minimum(cands["cin_block"], geom.cin) * -(-np.minimum(cands["cout_block"], geom.cout) // pes)
    slots = None
    for a_g in divisors:
        a_t = arrays // int(a_g)
        s = -(-tiles // a_t) * a_t * (-(-groups // int(a_g)) * int(a_g))
        if a_g > 1:  # as the simulator (_makespan): no more array columns than groups
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


def _occupancy_key(plan: str) -> str:
    return f"pe_occupancy_ok_{plan}"


def pe_array_candidates(model, cands: dict, pes: int, arrays: int, onchip_bits: int,
                        bits_per_cycle: float | None = None) -> dict:
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
    from ..dataflow.model import ORDERS, PLANS, LayerModel

    g = model.geom
    ok = (cands["cout_block"] % pes == 0) | (cands["cout_block"] >= g.cout)
    c = {k: v[ok] for k, v in cands.items()}
    divisors = np.array([d for d in range(1, arrays + 1) if arrays % d == 0])
    occ = array_occupancy(c, g, pes, arrays, divisors) * pe_balance(model.nnz, pes, c["cout_block"])
    fits = c["buffer_bits"] <= onchip_bits
    # time estimate in cycles: compute at this occupancy; traffic at best (kernels + partial sums:
    # inputs and outputs may stay resident) and at worst (everything off-chip)
    compute = model.complex_macs / (pes * arrays * np.maximum(occ, 1e-12))
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
            c[_occupancy_key(plan)] = fam & ok
        else:
            c[_occupancy_key(plan)] = fam
        keep |= c[_occupancy_key(plan)]
    return {k: v[keep] for k, v in c.items()}


def analyze(network: Network, masks: dict, config: AcceleratorConfig, device: Device, res: Resources,
            precision: Precision | None = None, stored_kernel_bits: dict | None = None):
    """``flexspec.dataflow.analyze_network`` for this design, all three plans, with the PE-array
    rule (:func:`pe_array_candidates`) passed through its ``layer_model`` hook.  ``precision``:
    default :func:`precision_of` the design; ``stored_kernel_bits``: layer -> int [Cout, Cin] bits
    each kernel takes in memory when not the format's entry count (e.g. a schedule stream)."""
    from ..dataflow import PLANS, analyze_network
    from ..dataflow.model import LayerModel

    pes, arrays = config.pes, config.arrays
    budget = budget_of(config, device, res)
    bits_per_cycle = budget.bandwidth_bytes_per_s * 8 * config.pe_count / budget.macs_per_second

    class _PEArrayModel(LayerModel):
        def candidates(self, *args, **kwargs):
            return pe_array_candidates(self, super().candidates(*args, **kwargs), pes, arrays,
                                       budget.onchip_bytes * 8, bits_per_cycle)

        def plan_mask(self, cands, plan):
            key = _occupancy_key(plan)
            return cands[key] if key in cands else super().plan_mask(cands, plan)

    return analyze_network(network, masks, config.fft_size, budget, precision or precision_of(config), PLANS,
                           layer_model=_PEArrayModel, stored_kernel_bits_by_layer=stored_kernel_bits)


# ------------------------------------------------------------------------------ schedules --
@dataclass(frozen=True, eq=False)
class LayerSchedules:
    """Schedules of one layer's kernel groups for one cout blocking.

    Groups are ordered (cout block, input channel, k); ``cycles`` [nO, Cin, per_block]."""

    schedule: object  # flexspec.schedule.Schedule
    groups: np.ndarray  # int [G, P] flat kernel ids j*Cin + i, -1 idle
    cycles: np.ndarray
    pe_bound: np.ndarray  # same shape: max non-zeros of one PE (no-conflict makespan)
    cout_block: int


def schedule_layer_blocks(mask: np.ndarray, config: AcceleratorConfig, cout_block: int, method: str = "optimal",
                          bank_map="auto") -> LayerSchedules:
    from ..schedule import group_kernels, schedule_groups
    from ..schedule.model import resolve_bank_map

    cout, cin, f = mask.shape
    p = config.pes
    bo = min(cout_block, cout)
    n_o = -(-cout // bo)
    per = -(-bo // p)
    bank_of = resolve_bank_map(bank_map, mask, config.banks)
    all_groups, all_masks = [], []
    for o in range(n_o):
        lo, hi = o * bo, min(cout, (o + 1) * bo)
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
    shape = (n_o, cin, per)
    pe_bound = gm.sum(axis=2, dtype=np.int64).max(axis=1)
    return LayerSchedules(sched, groups, np.asarray(sched.cycles, np.int64).reshape(shape), pe_bound.reshape(shape),
                          bo)


class ScheduleCache:
    """Caller-owned memo of :func:`schedule_layer_blocks` results (explicit, never global).

    The key is everything a layer's schedules depend on: a digest of the mask, P, B, R,
    broadcast, the method and the cout block; the same key always maps to the same schedules,
    so sharing one cache between simulations of the same kernels (design search, the flexspec
    design and its baselines, several devices) changes no result, only the time."""

    def __init__(self):
        self._entries: dict = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, mask: np.ndarray, config: AcceleratorConfig, cout_block: int, method: str = "optimal"):
        import hashlib

        mask = np.asarray(mask, dtype=bool)
        digest = hashlib.sha1(np.packbits(mask).tobytes()).hexdigest()
        key = (digest, mask.shape, config.pes, config.banks, config.ports, config.broadcast, method,
               min(int(cout_block), mask.shape[0]))
        if key not in self._entries:
            self._entries[key] = schedule_layer_blocks(mask, config, cout_block, method)
        return self._entries[key]


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


# -------------------------------------------------------------------------------- results --
def _plain(x):
    """numpy scalars / arrays -> JSON-ready Python values (recursively)."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


@dataclass(frozen=True)
class LayerResult:
    name: str
    kind: str  # "spectral" | "spatial"
    dataflow: str
    order: str
    cout_block: int
    cin_block: int
    tile_block: int
    input_link: str
    output_link: str
    steps: int
    cycles: int
    seconds: float
    compute_cycles: int  # PE-array cycles at the conflict-free makespan
    bank_conflict_cycles: int  # PE-array cycles above it (schedule makespan - PE bound)
    memory_stall_cycles: int
    fft_stall_cycles: int
    fill_cycles: int  # exposed start-up / drain (after inter-layer overlap)
    useful_macs: int
    dsp_efficiency: float
    dsp_efficiency_all: float
    kernels_bytes: float
    inputs_bytes: float
    outputs_bytes: float
    psums_bytes: float
    lower_bound_bytes: float
    forward_ffts: int
    inverse_ffts: int
    estimate_cycles: int
    roofline_cycles: int
    bound: str  # compute | memory | fft | ifft
    memory_bound: bool
    bank_load: dict = field(default_factory=dict)

    @property
    def traffic_bytes(self) -> float:
        return self.kernels_bytes + self.inputs_bytes + self.outputs_bytes + self.psums_bytes

    @property
    def achieved_over_roofline(self) -> float:
        return self.cycles / max(1, self.roofline_cycles)

    @property
    def estimate_error(self) -> float:
        return self.estimate_cycles / max(1, self.cycles) - 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["traffic_bytes"] = self.traffic_bytes
        d["achieved_over_roofline"] = self.achieved_over_roofline
        d["estimate_error"] = self.estimate_error
        return _plain(d)


@dataclass(frozen=True)
class NetworkResult:
    network: str
    device: str
    design: str  # "flexspec" | "baseline-kernel-reuse" | "baseline-activation-reuse"
    config: AcceleratorConfig
    resources: Resources
    layers: tuple[LayerResult, ...]
    method: str
    kernels: KernelSource
    clock_hz: float
    notes: tuple[str, ...] = field(default=())
    simulate_seconds: float = 0.0

    @property
    def cycles(self) -> int:
        return sum(r.cycles for r in self.layers)

    @property
    def seconds(self) -> float:
        return self.cycles / self.clock_hz

    @property
    def traffic_bytes(self) -> float:
        return sum(r.traffic_bytes for r in self.layers)

    @property
    def roofline_cycles(self) -> int:
        return sum(r.roofline_cycles for r in self.layers)

    @property
    def estimate_cycles(self) -> int:
        return sum(r.estimate_cycles for r in self.layers)

    @property
    def useful_macs(self) -> int:
        return sum(r.useful_macs for r in self.layers)

    @property
    def dsp_efficiency(self) -> float:
        return self.useful_macs / max(1, self.config.pe_count * self.cycles)

    def layer(self, name: str) -> LayerResult:
        for r in self.layers:
            if r.name == name:
                return r
        raise UsageError(f"no layer '{name}' in the result")

    def to_dict(self) -> dict:
        return _plain({
            "format_version": FORMAT_VERSION,
            "network": self.network, "device": self.device, "design": self.design, "schedule_method": self.method,
            "kernels": self.kernels.to_dict(),
            "config": self.config.to_dict(), "resources": self.resources.to_dict(),
            "total": {
                "cycles": self.cycles, "seconds": self.seconds, "clock_hz": self.clock_hz,
                "traffic_bytes": self.traffic_bytes, "useful_complex_macs": self.useful_macs,
                "dsp_efficiency": self.dsp_efficiency, "estimate_cycles": self.estimate_cycles,
                "roofline_cycles": self.roofline_cycles,
                "roofline_seconds": self.roofline_cycles / self.clock_hz,
                "achieved_over_roofline": self.cycles / max(1, self.roofline_cycles),
                "simulate_seconds": self.simulate_seconds,
            },
            "layers": [r.to_dict() for r in self.layers],
            "notes": list(self.notes),
        })


# ------------------------------------------------------------------------------ one layer --
def _split(total: int, parts_end: np.ndarray, whole: int) -> np.ndarray:
    """Integer split of ``total`` over consecutive ranges ending at ``parts_end`` (of ``whole``),
    proportional to their length, summing exactly to ``total``."""
    ends = np.asarray(parts_end, dtype=np.int64)
    cum = (np.int64(total) * ends) // max(1, whole) if total < 2**62 // max(1, whole) else \
        np.array([total * int(e) // whole for e in ends], dtype=np.int64)
    return np.diff(np.concatenate([[0], cum]))


def _makespan(cyc: np.ndarray, tiles: int, arrays: int, divisors, interval=None) -> int:
    """Cycles for ``tiles`` tiles x groups with makespans ``cyc`` on ``arrays`` arrays:
    the best a_t x a_g = A split (a_t arrays on tiles, a_g on groups).  The compiler assigns the
    groups to the a_g array columns statically, by the better of two assignments: longest first to
    the least-loaded column (LPT; within 4/3 of the optimal assignment) and round-robin in group
    order (LPT is a heuristic and occasionally loses to it); each column runs its groups back to back
    as one program per tile.  ``interval(L)``: the engine's cycles per tile for a program of L
    words (:func:`flexspec.accel.engine.tile_interval_cycles`; default L itself)."""
    from ._lpt import lpt_span

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
        total = -(-tiles // a_t) * per_tile
        if best is None or total < best:
            best = total
    return best


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
class _LayerSteps:
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


def layer_steps(ld, model, sch: LayerSchedules, config: AcceleratorConfig) -> _LayerSteps:
    """Unroll one layer's blocked nest into steps with their bytes, FFTs and compute."""
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

    # compute: runs of steps on the same kernel block share the arrays
    a = config.arrays
    divisors = [d for d in range(1, a + 1) if a % d == 0]
    run_start = np.nonzero(k_new)[0]
    run_end = np.append(run_start[1:], steps)
    tiles_step = t_cnt[t].astype(np.int64)
    compute = np.zeros(steps)
    free = np.zeros(steps)
    cache = {}
    overhead = first_load = 0
    for s0, s1 in zip(run_start, run_end, strict=True):
        ob, ib = int(o[s0]), int(i[s0])
        ntiles = int(tiles_step[s0:s1].sum())
        # the accumulators are read out (one value a cycle per array) only after the run that
        # finishes them; other runs leave them on chip for the next input-channel block
        drains = bool(last[s0:s1].any())
        ck = (ob, ib, ntiles, drains)
        if ck not in cache:
            lo, hi = ib * bi, min(g.cin, (ib + 1) * bi)
            cyc = sch.cycles[ob, lo:hi].ravel()
            pb = sch.pe_bound[ob, lo:hi].ravel()
            outs = int(o_ch[ob]) if drains else 0

            def interval(words, ob=ob, lo=lo, hi=hi, outs=outs):  # engine cycles per tile, program of `words`
                return _pass_shape(sch, ob, lo, hi, outs, config, [words]).interval()

            span = _makespan(cyc, ntiles, a, divisors, interval)
            tot = int(cyc.sum())
            cache[ck] = (span, span * (int(pb.sum()) / tot if tot else 1.0))
            shape = _pass_shape(sch, ob, lo, hi, int(o_ch[ob]), config)
            if shape.overhead() > overhead:
                overhead, first_load = shape.overhead(), shape.rows_per_tile + 1
        span, span_free = cache[ck]
        share = tiles_step[s0:s1] / max(1, ntiles)
        compute[s0:s1] = span * share
        free[s0:s1] = span_free * share
    n = config.fft_size
    totals = {"kernels_bits": int(np.where(k_new, kb[o, i], 0).sum()),
              "inputs_bits": int(np.where(x_new, in_bits[i, t], 0).sum()),
              "psums_bits": int(np.where(a_new & (visit > 0), psum_blk[o, t], 0).sum()
                                + np.where(a_end & (visit < n_visits - 1), psum_blk[o, t], 0).sum()),
              "outputs_bits": int(np.where(last, out_blk[o, t], 0).sum()),
              "forward_ffts": int(fwd.sum()), "inverse_ffts": int(inv.sum()), "steps": steps}
    return _LayerSteps(compute, free, load / 8.0, np.where(k_new, kb[o, i], 0) / 8.0, write / 8.0, fwd * n / config.fft_engines,
                       inv * n / config.ifft_engines, totals, tiles_step, overhead, first_load)


def _pipeline(st: _LayerSteps, bpc: float):
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


def _spatial_layer_result(ld, config, device, res, conv) -> LayerResult:
    """A convolution that is not spectral-eligible, on the spatial mode of the PE arrays
    (:func:`flexspec.accel.spatial.spatial_conv_cost`: occupancy from its shape, its own traffic)."""
    cost = spatial_conv_cost(conv, config.arrays, config.pes, int(res.dataflow_bits), device.bytes_per_cycle,
                             config.pe_pipeline_cycles, config.data_bits, config.data_bits,
                             output_bits=int(ld.outputs_bits))
    return spatial_layer_result(cost, config, device, res)


# -------------------------------------------------------------------------------- network --
def simulate_plan(network: Network, masks: dict, plan_layers, models: dict, config: AcceleratorConfig,
                  device: Device, res: Resources, method: str, kernels: KernelSource, design: str,
                  notes=(), histograms: bool = True, schedules: ScheduleCache | None = None) -> NetworkResult:
    """Simulate one plan (a tuple of ``LayerDataflow``) of ``flexspec.dataflow`` on this design.

    ``schedules``: a :class:`ScheduleCache` to share schedules with other simulations of the
    same kernels (a fresh one when None)."""
    t0 = time.perf_counter()
    schedules = schedules if schedules is not None else ScheduleCache()
    bpc = device.bytes_per_cycle
    n = config.fft_size
    fft_depth = fft_latency_cycles(FFTFormat(n, config.data_bits, config.data_bits, 0)) + fft_latency_cycles(
        FFTFormat(n, config.data_bits, config.data_bits, 0, inverse=True))  # FFT + IFFT pipeline latency
    parts = []
    for ld in plan_layers:
        if ld.kind != "spectral":
            parts.append(("spatial", ld, None))
            continue
        model = models[ld.layer_name]
        sch = schedules.get(masks[ld.layer_name], config, ld.blocking.cout_block, method)
        st = layer_steps(ld, model, sch, config)
        for key in ("kernels_bits", "inputs_bits", "psums_bits", "outputs_bits", "forward_ffts", "inverse_ffts"):
            want = getattr(ld.traffic, key)
            if st.totals[key] != want:  # the simulator must move exactly the dataflow model's bytes
                raise AssertionError(f"{ld.layer_name}: simulated {key} {st.totals[key]} != dataflow {want}")
        parts.append(("spectral", ld, (model, sch, st)))
    out = []
    prev_epi = None
    prev_spare = prev_roof_bytes = 0.0
    for k, (kind, ld, extra) in enumerate(parts):
        if kind == "spatial":
            out.append(_spatial_layer_result(ld, config, device, res, network.layer(ld.layer_name)))
            prev_epi = None
            prev_spare = 0.0
            continue
        model, sch, st = extra
        step, mem, eng, pro, epi, est_body = _pipeline(st, bpc)
        # pipelines, and the engine pass's fill and drain; the first tile is written into the tile
        # buffer as the start-up's forward FFTs produce it, so that part overlaps their cycles
        depth = fft_depth + st.pass_overhead_cycles - min(st.pass_load_cycles, pro[1])
        # the first kernel block streams in during the previous spectral layer's last kernel-block
        # run (into that layer's idle second kernel buffer: it has no next block), as far as that
        # buffer holds it and the run leaves DRAM bandwidth; the rest loads in the start-up
        prefetch = min(float(st.kernel_bytes[0]), prev_spare)
        pro = (pro[0] - prefetch, pro[1])
        if prefetch > 0:  # the roofline moves those bytes too: they are the previous layer's traffic time
            prev = out[-1]
            prev_roof_bytes += prefetch
            out[-1] = replace(prev, roofline_cycles=int(math.ceil(max(prev.useful_macs / config.pe_count,
                                                                      prev_roof_bytes / bpc))))
        last_run = int(np.nonzero(st.kernel_bytes > 0)[0].max(initial=0))
        prev_spare = min(ld.traffic.kernel_buffer_bits / 8.0,
                         float(np.maximum(step[last_run:] - mem[last_run:], 0).sum()) * bpc)
        # start-up: overlapped with the previous spectral layer's drain when there is one
        if prev_epi is None:
            fill = pro[0] / bpc + pro[1] + depth
        else:
            fill = max((prev_epi[0] + pro[0]) / bpc, prev_epi[1], pro[1]) + depth
        is_last = k == len(parts) - 1 or parts[k + 1][0] != "spectral"
        if is_last:
            fill += epi[0] / bpc + epi[1]
        prev_epi = epi
        body = float(step.sum())
        cycles = int(math.ceil(body + fill))
        comp_total = float(st.compute.sum())
        free_total = float(st.conflict_free.sum())
        mem_stall = float(np.where(mem >= eng, step - st.compute, 0).sum())
        fft_stall = float(np.where(mem < eng, step - st.compute, 0).sum())
        compute_c = int(round(free_total))
        conflict_c = int(round(comp_total)) - compute_c
        mem_c, fft_c = int(round(mem_stall)), int(round(fft_stall))
        fill_c = cycles - compute_c - conflict_c - mem_c - fft_c
        tr = ld.traffic
        macs = model.complex_macs
        # bottleneck: the largest per-resource total
        tot = {"compute": comp_total, "memory": (st.load_bytes.sum() + st.write_bytes.sum()
                                                   - pro[0] - epi[0]) / bpc,
               "fft": float(st.fft.sum() - pro[1]), "ifft": float(st.ifft.sum() - epi[1])}
        which = max(tot, key=tot.get)
        est = int(math.ceil(est_body + fill))  # closed form per run (not per step), plus the fill
        prev_roof_bytes = ld.bound.total_bytes - prefetch
        roof = int(math.ceil(max(macs / config.pe_count, prev_roof_bytes / bpc)))
        out.append(LayerResult(
            ld.layer_name, "spectral", ld.dataflow, tr.blocking.order, tr.blocking.cout_block,
            tr.blocking.cin_block, tr.blocking.tile_block, ld.input_link, ld.output_link, st.totals["steps"],
            cycles, cycles / device.clock_hz, compute_c, conflict_c, mem_c, fft_c, fill_c, macs,
            macs / (config.pe_count * cycles), macs * device.dsp_per_complex_mac / (res.dsp_total * cycles),
            tr.kernels_bits / 8, tr.inputs_bits / 8, tr.outputs_bits / 8, tr.psums_bits / 8, ld.bound.total_bytes,
            tr.forward_ffts, tr.inverse_ffts, est, roof, which, tot["memory"] > tot["compute"],
            bank_load(sch.schedule, config.banks, config.ports) if histograms else {}))
    return NetworkResult(network.name, device.name, design, config, res, tuple(out), method, kernels,
                         device.clock_hz, tuple(notes), time.perf_counter() - t0)


@dataclass(frozen=True)
class Comparison:
    """The FlexSpec design and its baselines on the same hardware and kernels -- the one
    definition every command uses (:func:`simulate_designs`):

    * ``baselines[plan]``: the same design with one fixed dataflow (``plan``) everywhere and
      in-order schedules (what prior spectral accelerators do);
    * ``dataflow_only[plan]``: the same design with that fixed dataflow and FlexSpec's own
      (optimal conflict-free) schedules -- so the total speed-up splits exactly into what the
      dataflow gives (``dataflow_only / flexspec``) and what the scheduler gives
      (``baselines / dataflow_only``);
    * ``spatial``: the accelerators a user would build instead on the same board (dense and
      sparse spatial arrays, :func:`flexspec.accel.spatial.spatial_accelerator`).

    With ``whole_network`` every layer is counted (FC, adds, concats); else the convolutions."""

    flexspec: NetworkResult
    baselines: dict  # plan name -> NetworkResult
    analysis_seconds: float = 0.0
    dataflow_only: dict = field(default_factory=dict)  # plan name -> NetworkResult
    spatial: dict = field(default_factory=dict)  # name -> SpatialAccelerator
    notes: tuple = ()
    whole_network: bool = False

    @property
    def headline(self) -> NetworkResult:
        return self.baselines[HEADLINE_BASELINE]

    def speedup(self, baseline: str = HEADLINE_BASELINE) -> float:
        return self.baselines[baseline].cycles / self.flexspec.cycles

    def dataflow_speedup(self, baseline: str = HEADLINE_BASELINE) -> float:
        """Fixed dataflow -> flexible dataflow, both with optimal schedules."""
        return self.dataflow_only[baseline].cycles / self.flexspec.cycles

    def scheduler_speedup(self, baseline: str = HEADLINE_BASELINE) -> float:
        """In-order -> optimal schedules, both with the fixed dataflow."""
        return self.baselines[baseline].cycles / self.dataflow_only[baseline].cycles

    def traffic_reduction(self, baseline: str = HEADLINE_BASELINE) -> float:
        return 1 - self.flexspec.traffic_bytes / self.baselines[baseline].traffic_bytes

    def speedup_split(self) -> dict:
        """plan -> total / dataflow / scheduler speed-up ratios (:func:`speedup_split`)."""
        return speedup_split(self.flexspec, self.dataflow_only, self.baselines)

    def to_dict(self) -> dict:
        return _plain({
            "format_version": FORMAT_VERSION,
            "whole_network": self.whole_network,
            "flexspec": self.flexspec.to_dict(),
            "baselines": {k: v.to_dict() for k, v in self.baselines.items()},
            "dataflow_only_baselines": {k: v.to_dict() for k, v in self.dataflow_only.items()},
            "spatial_accelerators": {k: v.to_dict() for k, v in self.spatial.items()},
            "headline_baseline": HEADLINE_BASELINE,
            "headline_reason": "prior spectral accelerators keep kernels on chip and stream input tiles "
                               "(one fixed kernel-reuse dataflow) with in-order reads",
            "speedup": {k: self.speedup(k) for k in self.baselines},
            "speedup_split": self.speedup_split(),
            "traffic_reduction": {k: self.traffic_reduction(k) for k in self.baselines},
            "analysis_seconds": self.analysis_seconds,
            "notes": list(self.notes),
        })


def speedup_split(flexspec: NetworkResult, dataflow_only: dict, baselines: dict) -> dict:
    """plan -> {total, dataflow, scheduler} speed-up ratios, total = dataflow x scheduler (see
    :class:`Comparison`), over all layers of the results and over their convolutions only."""
    out = {}
    for name, b in baselines.items():
        d = dataflow_only.get(name)
        if d is None:
            continue
        f_c, d_c, b_c = (conv_only(x)["cycles"] for x in (flexspec, d, b))
        out[name] = {"total_ratio": b.cycles / flexspec.cycles, "dataflow_ratio": d.cycles / flexspec.cycles,
                     "scheduler_ratio": b.cycles / d.cycles, "conv_total_ratio": b_c / max(1, f_c),
                     "conv_dataflow_ratio": d_c / max(1, f_c), "conv_scheduler_ratio": b_c / max(1, d_c)}
    return out


def _setup(network, device, config, kernels, fft_size, density, seed, precision):
    device = load_device(device)
    config = config or AcceleratorConfig(fft_size=fft_size)
    masks, net_k, src = resolve_kernels(network, kernels, fft_size=config.fft_size, density=density, seed=seed)
    res = resources(config, device)
    return device, config, masks, src, res, precision or precision_of(config, net_k)


def layer_models(network: Network, masks: dict, config: AcceleratorConfig, precision: Precision | None = None,
                 stored_kernel_bits: dict | None = None) -> dict:
    """name -> LayerModel of every spectral layer, from its mask (``precision``: default
    :func:`precision_of` the design; ``stored_kernel_bits``: see :func:`analyze`)."""
    from ..dataflow.model import LayerModel

    prec = precision or precision_of(config)
    stored = stored_kernel_bits or {}
    return {lay.name: LayerModel(lay, masks[lay.name], config.fft_size, prec, stored_kernel_bits=stored.get(lay.name))
            for lay in network.spectral_layers}


def simulate_designs(network: Network, masks: dict, config: AcceleratorConfig, device: Device, res: Resources,
                     kernels: KernelSource, *, nd=None, models: dict | None = None, histograms: bool = True,
                     schedules: ScheduleCache | None = None, whole_network: bool = False, fc_density: float = 1.0,
                     accept_fallback: bool = False, stage=None, precision: Precision | None = None,
                     stored_kernel_bits: dict | None = None) -> Comparison:
    """FlexSpec and every baseline of :class:`Comparison` for one design and one set of kernels.

    ``nd``: the design's dataflow analysis (:func:`analyze`; computed when None); ``stage``: an
    optional context-manager factory ``stage(name)`` that times the 'schedules + simulation'
    and 'baselines' parts (the pipeline's progress); ``precision``, ``stored_kernel_bits``: see
    :func:`analyze`."""
    stage = stage or (lambda name: nullcontext())
    schedules = schedules if schedules is not None else ScheduleCache()
    t0 = time.perf_counter()
    nd = nd if nd is not None else analyze(network, masks, config, device, res, precision, stored_kernel_bits)
    ta = time.perf_counter() - t0
    models = models if models is not None else layer_models(network, masks, config, precision, stored_kernel_bits)
    notes = []

    def sim(plan, method, design, why):
        # bank-load histograms only for the FlexSpec design (the report's heat map); baselines skip them
        r = simulate_plan(network, masks, nd.plans[plan], models, config, device, res, method, kernels, design,
                          (why,), histograms and design == "flexspec", schedules)
        if not whole_network:
            return r
        onchip = {ld.layer_name: ld.onchip_bits for ld in nd.plans[plan]}
        return _whole(network, r, config, device, res, onchip, fc_density=fc_density, accept_fallback=accept_fallback)

    with stage("schedules + simulation"):
        flex = sim("flexible", "optimal", "flexspec",
                   "flexible dataflow per layer (flexspec.dataflow), optimal conflict-free schedules")
    base, dataflow_only = {}, {}
    with stage("baselines"):
        for plan in BASELINES:
            if plan not in nd.plans or plan in getattr(nd, "infeasible", {}):
                notes.append(f"baseline '{plan}' does not fit this design's on-chip memory: "
                             f"{getattr(nd, 'infeasible', {}).get(plan, 'no plan')}")
                continue
            dataflow_only[plan] = sim(plan, "optimal", f"baseline-{plan}-optimal",
                                      f"fixed {plan} dataflow everywhere, FlexSpec's optimal schedules")
            base[plan] = sim(plan, "inorder", f"baseline-{plan}",
                             f"fixed {plan} dataflow everywhere, in-order schedules")
        if not base:
            raise UsageError("neither fixed-dataflow baseline fits this design's on-chip memory; "
                             "nothing to compare against")
        density = float(np.mean([m.mean() for m in masks.values()])) if masks else 1.0
        spatial = {"dense-spatial": spatial_accelerator(network, device, int(res.dataflow_bits), 1.0,
                                                        config.data_bits, fc_density=fc_density),
                   "sparse-spatial": spatial_accelerator(network, device, int(res.dataflow_bits), density,
                                                         config.data_bits, fc_density=fc_density)}
    return Comparison(flex, base, ta, dataflow_only, spatial, tuple(notes), whole_network)


def compare(network: Network, device, config: AcceleratorConfig | None = None, kernels=None, *, fft_size: int = 8,
            density: float = 0.25, seed: int = 0, histograms: bool = True,
            schedules: ScheduleCache | None = None, whole_network: bool = False,
            accept_fallback: bool = False, precision: Precision | None = None,
            stored_kernel_bits: dict | None = None) -> Comparison:
    """FlexSpec (flexible dataflow, optimal conflict-free schedules) and the baselines of
    :class:`Comparison` on the same design (:func:`simulate_designs`).  ``schedules``: see
    :func:`simulate_plan`; ``whole_network``: count every layer, not only the convolutions;
    ``precision``: word widths and kernel format (default :func:`precision_of` the design and the
    kernel file); ``stored_kernel_bits``: see :func:`analyze`."""
    device, config, masks, src, res, prec = _setup(network, device, config, kernels, fft_size, density, seed,
                                                   precision)
    return simulate_designs(network, masks, config, device, res, src, histograms=histograms, schedules=schedules,
                            whole_network=whole_network, accept_fallback=accept_fallback, precision=prec,
                            stored_kernel_bits=stored_kernel_bits)


def simulate_network(network: Network, device, config: AcceleratorConfig | None = None, kernels=None, *,
                     design: str = "flexspec", fft_size: int = 8, density: float = 0.25, seed: int = 0,
                     histograms: bool = True, schedules: ScheduleCache | None = None,
                     precision: Precision | None = None, stored_kernel_bits: dict | None = None) -> NetworkResult:
    """Simulate one design: 'flexspec' or 'baseline-kernel-reuse' / 'baseline-activation-reuse'
    (``precision``, ``stored_kernel_bits``: as :func:`compare`)."""

    designs = ("flexspec",) + tuple(f"baseline-{b}" for b in BASELINES)
    if design not in designs:
        raise UsageError(f"unknown design '{design}'; known: {', '.join(designs)}")
    t0 = time.perf_counter()
    device, config, masks, src, res, prec = _setup(network, device, config, kernels, fft_size, density, seed,
                                                   precision)
    nd = analyze(network, masks, config, device, res, prec, stored_kernel_bits)
    models = layer_models(network, masks, config, prec, stored_kernel_bits)
    plan = "flexible" if design == "flexspec" else design[len("baseline-"):]
    r = simulate_plan(network, masks, nd.plans[plan], models, config, device, res,
                      "optimal" if design == "flexspec" else "inorder", src, design, (), histograms, schedules)
    return NetworkResult(**{**r.__dict__, "simulate_seconds": time.perf_counter() - t0})
