"""The dataflow analysis of one design: its word widths, its budget, and ``flexspec.dataflow``
run with the PE-array rule (:mod:`.pe_rule`).

:func:`analyze` returns every plan (flexible, and the two fixed-dataflow families) of every
layer under the :class:`~flexspec.dataflow.Budget` of the design (:func:`budget_of`: on-chip
bytes left after the tile banks and FFT buffers, sustained DRAM bandwidth, A*P complex MACs per
cycle, FFT engine rate); :func:`layer_models` the spectral layers' LayerModels at the design's
precision (:func:`precision_of`).

Kernel storage (:data:`KERNEL_STORAGE`): where a PE-array design is known, its kernels are
counted as what the generated RTL stores, the schedule stream (``"stream"``, the default of
the simulator and ``flexspec run``: :func:`flexspec.accel.grouping.stored_stream_bits`, one
``PEArrayConfig.word_bits`` word per schedule cycle).  The stream depends on the grouping, hence
on the cout block the optimizer picks for each layer: :func:`stream_dataflow` iterates the
analysis of one plan to a fixed point (the blocks the stream run picks = the blocks whose
stream it moves), and pins the blocks when that does not converge, so the bytes moved are
always the stream of the blocking simulated.  ``"entries"`` (packed non-zeros, nnz x (2 x
value_bits + index_bits)) is the count of a pure dataflow analysis without a PE array
(``flexspec dataflow``, ``flexspec.dataflow.analyze_network``) and the opt-out here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dataflow import PLANS, Precision, analyze_network
from ..dataflow.budget import budget_from_device
from ..dataflow.model import LayerModel
from ..devices import Device
from ..errors import CapacityError, UsageError
from ..kernel_format import KernelFormat, psum_bits
from ..workload.layers import Network
from .arch import AcceleratorConfig, Resources
from .grouping import ScheduleCache, stored_stream_bits
from .ifft_assign import ifft_engines_serving
from .pe_rule import occupancy_key, pe_array_candidates

#: How a design's kernels are counted in memory: the generated RTL's schedule stream (default
#: where a PE-array design is known), or the packed non-zero entries (no PE array).
KERNEL_STORAGE = ("stream", "entries")
#: Rounds of :func:`stream_dataflow` before the cout blocks are pinned.
STREAM_ROUNDS = 4


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
    and the compute / FFT rates of ``flexspec.dataflow.budget`` (the one formula); the IFFTs at
    the most engines a split of the design lets serve a layer (:func:`ifft_engines_serving`)."""
    ifft = max(ifft_engines_serving(config, a_g) for a_g in config.group_splits)
    return budget_from_device(device, pe_count=config.pe_count,
                              fft_engines=min(config.fft_engines, ifft), fft_size=config.fft_size,
                              onchip_bytes=int(res.dataflow_bits // 8))


def analyze(network: Network, masks: dict, config: AcceleratorConfig, device: Device, res: Resources,
            precision: Precision | None = None, stored_kernel_bits: dict | None = None, plans=PLANS,
            cout_blocks: dict | None = None, memo: dict | None = None, stream: bool = False):
    """``flexspec.dataflow.analyze_network`` for this design (``plans``: default all three), with
    the PE-array rule (:func:`pe_array_candidates`) passed through its ``layer_model`` hook.
    ``precision``: default :func:`precision_of` the design; ``stored_kernel_bits``: layer -> int
    [Cout, Cin] bits each kernel takes in memory when not the format's entry count (e.g. a
    schedule stream); ``cout_blocks``: layer -> the only cout block that layer may use; ``memo``: a
    caller-owned dict of the PE-array rule's run costs, shared by analyses of the same kernels and
    design (:func:`flexspec.accel.pe_rule.blocking_cycles`; saves time only); ``stream``: the
    stored bits are a schedule stream, so the PE-array rule weighs each blocking with the stream of
    its own cout block (:func:`flexspec.accel.pe_rule.stream_bits`)."""
    pes, arrays = config.pes, config.arrays
    budget = budget_of(config, device, res)
    bits_per_cycle = budget.bandwidth_bytes_per_s * 8 * config.pe_count / budget.macs_per_second
    pinned = cout_blocks or {}

    class _PEArrayModel(LayerModel):
        def candidates(self, *args, **kwargs):
            cands = super().candidates(*args, **kwargs)
            if self.geom.name in pinned:
                keep = cands["cout_block"] == pinned[self.geom.name]
                if not keep.any():
                    raise UsageError(f"layer '{self.geom.name}': cout block {pinned[self.geom.name]} is not "
                                     f"one of its blockings")
                cands = {k: v[keep] for k, v in cands.items()}
            mask = masks.get(self.geom.name) if isinstance(masks, dict) else None
            mask = mask if mask is not None and np.asarray(mask).dtype == bool else None
            return pe_array_candidates(self, cands, pes, arrays, budget.onchip_bytes * 8, bits_per_cycle,
                                       config=config, mask=mask, memo=memo, stream=stream)

        def plan_mask(self, cands, plan):
            key = occupancy_key(plan)
            return cands[key] if key in cands else super().plan_mask(cands, plan)

    return analyze_network(network, masks, config.fft_size, budget, precision or precision_of(config), plans,
                           layer_model=_PEArrayModel, stored_kernel_bits_by_layer=stored_kernel_bits)


def layer_models(network: Network, masks: dict, config: AcceleratorConfig, precision: Precision | None = None,
                 stored_kernel_bits: dict | None = None) -> dict:
    """name -> LayerModel of every spectral layer, from its mask (``precision``: default
    :func:`precision_of` the design; ``stored_kernel_bits``: see :func:`analyze`)."""
    prec = precision or precision_of(config)
    stored = stored_kernel_bits or {}
    return {lay.name: LayerModel(lay, masks[lay.name], config.fft_size, prec, stored_kernel_bits=stored.get(lay.name))
            for lay in network.spectral_layers}


def cout_blocks_of(plan_layers) -> dict:
    """layer -> cout block of every spectral layer of one plan (a tuple of LayerDataflow)."""
    return {ld.layer_name: ld.blocking.cout_block for ld in plan_layers if ld.kind == "spectral"}


@dataclass(frozen=True)
class StreamDataflow:
    """One plan of a design with its kernels counted as the stored schedule stream.

    ``layers``: the plan (tuple of LayerDataflow); ``stored_kernel_bits``: layer -> int
    [Cout, Cin], the stream of each layer's grouping at the cout block it uses (spread over the
    kernels of each group); ``rounds``: analyses run; ``pinned``: the blocks did not settle within
    :data:`STREAM_ROUNDS` rounds, so the last analysis kept each layer at its stream's block."""

    plan: str
    method: str
    layers: tuple
    stored_kernel_bits: dict
    rounds: int
    pinned: bool


def stream_dataflow(network: Network, masks: dict, config: AcceleratorConfig, device: Device, res: Resources,
                    precision: Precision, plan: str, method: str, schedules: ScheduleCache,
                    start_blocks: dict | None = None, memo: dict | None = None) -> StreamDataflow:
    """Plan ``plan`` of this design with every spectral layer's kernels counted as the schedule
    stream (``method``'s schedules) of the grouping of the cout block the plan picks for it.

    Starts from ``start_blocks`` (layer -> cout block; default: the entries analysis' blocks),
    stores each layer's stream at its block, re-analyzes, and repeats while a layer picks another
    block (at most :data:`STREAM_ROUNDS` rounds; then one more analysis pinned to the blocks of
    the stored streams).  The result moves exactly the stream of the blocking it uses.  ``memo``:
    the PE-array rule's memo (:func:`analyze`) of an analysis of the same kernels and design, e.g.
    the entries analysis ``start_blocks`` came from (its run costs do not depend on how the
    kernels are counted); saves time only."""
    blocks = start_blocks
    rounds = 0
    memo = {} if memo is None else memo  # the PE-array rule's run costs: the same in every round
    if blocks is None:
        blocks = cout_blocks_of(_plan_of(analyze(network, masks, config, device, res, precision, plans=(plan,),
                                                 memo=memo, stream=True), plan))
        rounds += 1
    for r in range(STREAM_ROUNDS + 1):
        stored = {name: stored_stream_bits(masks[name], config, b, schedules, method) for name, b in blocks.items()}
        pin = blocks if r == STREAM_ROUNDS else None  # the last round keeps every layer at its stream's block
        layers = _plan_of(analyze(network, masks, config, device, res, precision, stored, (plan,), pin, memo, True),
                          plan)
        rounds += 1
        picked = cout_blocks_of(layers)
        if picked == blocks:
            return StreamDataflow(plan, method, layers, stored, rounds, pin is not None)
        blocks = picked
    raise AssertionError(f"plan '{plan}': the pinned analysis changed a cout block")


def _plan_of(nd, plan: str):
    """One plan of an analysis; CapacityError (the analysis' reason) when it does not fit."""
    if plan not in nd.plans:
        raise CapacityError(nd.infeasible.get(plan, f"plan '{plan}' does not fit"))
    return nd.plans[plan]
