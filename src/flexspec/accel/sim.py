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
   one input channel.  Each blocking is timed as this simulator charges it
   (:func:`flexspec.accel.pe_rule.blocking_cycles`), so the optimizer trades a larger block (more
   on-chip storage) for fewer, better-filled kernel-block runs.
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
   run; the A arrays split a run as a_t array columns over tiles x a_g array rows (best split of
   ``config.group_splits``), as the generated cluster (``flexspec.rtl.cluster``) does: every tile
   of a column goes to its a_g rows, row g holds a fixed output-channel slice of the cout block
   (``grouping.cout_slices``) and runs that slice's kernel groups (grouped inside the slice)
   back to back, each group taking its schedule's makespan; a column takes a tile every
   ``max_g`` of its rows' engine intervals (``grouping.slice_makespan``).
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

Modules: :mod:`.design_dataflow` (precision, budget, ``analyze``), :mod:`.pe_rule` (the PE-array
rule on the optimizer's blockings), :mod:`.grouping` (groups, schedules, array assignment),
:mod:`.layer_cycles` (one layer's steps and their pipelining), :mod:`.results` (LayerResult,
NetworkResult), :mod:`.comparison` (FlexSpec against its baselines); this module runs them
(:func:`simulate_plan`, :func:`simulate_designs`, :func:`compare`, :func:`simulate_network`).
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import replace

import numpy as np

from ..dataflow import Precision
from ..devices import Device, load_device
from ..errors import CapacityError, UsageError
from ..rtl.fft_contract import latency_cycles as fft_latency_cycles
from ..workload.layers import Network
from .arch import AcceleratorConfig, Resources, resources
from .comparison import BASELINES, HEADLINE_BASELINE, Comparison, speedup_split
from .design_dataflow import (
    KERNEL_STORAGE, analyze, budget_of, cout_blocks_of, layer_models, precision_of, stream_dataflow,
)
from .fixed_point import FFTFormat
from .grouping import LayerSchedules, ScheduleCache, array_makespan, bank_load, schedule_layer_blocks
from .kernels import KernelSource, random_masks, resolve_kernels
from .layer_cycles import engine_layer_cycles, layer_steps, pipeline_steps, spatial_conv_result
from .pe_rule import (
    FAMILY_ORDER, OCCUPANCY_KEEP, balanced_pe_cycles, pe_array_candidates, pe_balance,
)
from .results import FORMAT_VERSION, LayerResult, NetworkResult
from .spatial import spatial_accelerator, whole_network as _whole

#: Names callers import from here (the front of the simulator), wherever they are defined.
__all__ = [
    "BASELINES", "FAMILY_ORDER", "FORMAT_VERSION", "HEADLINE_BASELINE", "KERNEL_STORAGE", "OCCUPANCY_KEEP",
    "Comparison",
    "KernelSource", "LayerResult", "LayerSchedules", "NetworkResult", "ScheduleCache", "analyze",
    "array_makespan", "balanced_pe_cycles", "bank_load", "budget_of", "check_kernel_storage",
    "compare", "design_plan",
    "engine_layer_cycles", "layer_models", "layer_steps", "pe_array_candidates", "pe_balance", "precision_of",
    "random_masks", "resolve_kernels", "schedule_layer_blocks", "simulate_designs", "simulate_network",
    "simulate_plan", "speedup_split",
]


# -------------------------------------------------------------------------------- network --
def simulate_plan(network: Network, masks: dict, plan_layers, models: dict, config: AcceleratorConfig,
                  device: Device, res: Resources, method: str, kernels: KernelSource, design: str,
                  notes=(), histograms: bool = True, schedules: ScheduleCache | None = None,
                  kernel_storage: str = "entries") -> NetworkResult:
    """Simulate one plan (a tuple of ``LayerDataflow``) of ``flexspec.dataflow`` on this design.

    ``schedules``: a :class:`ScheduleCache` to share schedules with other simulations of the
    same kernels (a fresh one when None); ``kernel_storage``: the label of how ``models`` count
    the kernels (:data:`KERNEL_STORAGE`, or 'given')."""
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
        mask, bo = masks[ld.layer_name], ld.blocking.cout_block
        sch = schedules.get(mask, config, bo, method)
        st = layer_steps(ld, model, sch, config,
                         lambda a_g, mask=mask, bo=bo: schedules.sliced(mask, config, bo, a_g, method))
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
            out.append(spatial_conv_result(ld, config, device, res, network.layer(ld.layer_name)))
            prev_epi = None
            prev_spare = 0.0
            continue
        model, sch, st = extra
        step, mem, eng, pro, epi, est_body = pipeline_steps(st, bpc)
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
            bank_load(sch.schedule, config.banks, config.ports) if histograms else {}, model.kernel_total_bits / 8))
    return NetworkResult(network.name, device.name, design, config, res, tuple(out), method, kernels,
                         device.clock_hz, tuple(notes), time.perf_counter() - t0, kernel_storage)


def _setup(network, device, config, kernels, fft_size, density, seed, precision, schedules: ScheduleCache):
    device = load_device(device)
    config = config or AcceleratorConfig(fft_size=fft_size)
    masks, net_k, src = resolve_kernels(network, kernels, fft_size=config.fft_size, density=density, seed=seed)
    schedules.use_bank_maps(net_k)  # bank-friendly kernels: schedule with the map they were pruned for
    res = resources(config, device)
    return device, config, masks, src, res, precision or precision_of(config, net_k)


def check_kernel_storage(kernel_storage: str, stored_kernel_bits: dict | None = None) -> str:
    """The label of how a simulation counts kernel bits: ``kernel_storage`` (one of
    :data:`KERNEL_STORAGE`), or 'given' when the caller passes ``stored_kernel_bits``."""
    if kernel_storage not in KERNEL_STORAGE:
        raise UsageError(f"kernel storage must be one of {', '.join(KERNEL_STORAGE)}, got {kernel_storage!r}")
    return "given" if stored_kernel_bits is not None else kernel_storage


def design_plan(network: Network, masks: dict, config: AcceleratorConfig, device: Device, res: Resources,
                precision: Precision, nd, plan: str, method: str, schedules: ScheduleCache, storage: str,
                stored_kernel_bits: dict | None = None, memo: dict | None = None):
    """(plan layers, layer models, notes) of one design (``plan`` with ``method``'s schedules):
    ``nd``'s plan with the kernels as ``storage`` counts them ('entries' / 'given': as ``nd``
    counts them; 'stream': :func:`stream_dataflow` from ``nd``'s blocks; ``memo``: the PE-array rule's
    memo of ``nd``'s analysis, reused by the stream analyses, which saves time only)."""
    if storage != "stream":
        return nd.plans[plan], layer_models(network, masks, config, precision, stored_kernel_bits), ()
    sd = stream_dataflow(network, masks, config, device, res, precision, plan, method, schedules,
                         cout_blocks_of(nd.plans[plan]), memo)
    notes = (f"kernels counted as the stored schedule stream of the {method} schedules; the cout blocks did not "
             f"settle in {sd.rounds - 1} rounds and were pinned to the blocks of the stored streams",) if sd.pinned else ()
    return sd.layers, layer_models(network, masks, config, precision, sd.stored_kernel_bits), notes


def simulate_designs(network: Network, masks: dict, config: AcceleratorConfig, device: Device, res: Resources,
                     kernels: KernelSource, *, nd=None, histograms: bool = True,
                     schedules: ScheduleCache | None = None, whole_network: bool = False, fc_density: float = 1.0,
                     accept_fallback: bool = False, stage=None, precision: Precision | None = None,
                     stored_kernel_bits: dict | None = None, kernel_storage: str = "stream") -> Comparison:
    """FlexSpec and every baseline of :class:`Comparison` for one design and one set of kernels.

    ``nd``: the design's dataflow analysis (:func:`analyze`, kernels counted as ``precision``'s
    entries or ``stored_kernel_bits``; computed when None); ``stage``: an optional
    context-manager factory ``stage(name)`` that times the 'schedules + simulation' and
    'baselines' parts (the pipeline's progress); ``precision``, ``stored_kernel_bits``: see
    :func:`analyze`; ``kernel_storage``: 'stream' (default: each design's kernels counted as the
    schedule stream its PE arrays store, :func:`stream_dataflow`) or 'entries' (packed non-zeros);
    ignored when ``stored_kernel_bits`` is given."""
    stage = stage or (lambda name: nullcontext())
    storage = check_kernel_storage(kernel_storage, stored_kernel_bits)
    schedules = schedules if schedules is not None else ScheduleCache()
    prec = precision or precision_of(config)
    t0 = time.perf_counter()
    nd = nd if nd is not None else analyze(network, masks, config, device, res, prec, stored_kernel_bits)
    ta = time.perf_counter() - t0
    notes = []

    def sim(plan, method, design, why):
        layers, models, more = design_plan(network, masks, config, device, res, prec, nd, plan, method, schedules,
                                           storage, stored_kernel_bits)
        # bank-load histograms only for the FlexSpec design (the report's heat map); baselines skip them
        r = simulate_plan(network, masks, layers, models, config, device, res, method, kernels, design,
                          (why,) + more, histograms and design == "flexspec", schedules, storage)
        if not whole_network:
            return r
        onchip = {ld.layer_name: ld.onchip_bits for ld in layers}
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
            try:
                dataflow_only[plan] = sim(plan, "optimal", f"baseline-{plan}-optimal",
                                          f"fixed {plan} dataflow everywhere, FlexSpec's optimal schedules")
                base[plan] = sim(plan, "inorder", f"baseline-{plan}",
                                 f"fixed {plan} dataflow everywhere, in-order schedules")
            except CapacityError as exc:  # fits with packed entries, not with its stored schedule stream
                dataflow_only.pop(plan, None)
                notes.append(f"baseline '{plan}' does not fit this design's on-chip memory with its kernels "
                             f"stored as the schedule stream: {exc}")
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
            stored_kernel_bits: dict | None = None, kernel_storage: str = "stream") -> Comparison:
    """FlexSpec (flexible dataflow, optimal conflict-free schedules) and the baselines of
    :class:`Comparison` on the same design (:func:`simulate_designs`).  ``schedules``: see
    :func:`simulate_plan`; ``whole_network``: count every layer, not only the convolutions;
    ``precision``: word widths and kernel format (default :func:`precision_of` the design and the
    kernel file); ``stored_kernel_bits``: see :func:`analyze`; ``kernel_storage``: see
    :func:`simulate_designs`."""
    schedules = schedules if schedules is not None else ScheduleCache()
    device, config, masks, src, res, prec = _setup(network, device, config, kernels, fft_size, density, seed,
                                                   precision, schedules)
    return simulate_designs(network, masks, config, device, res, src, histograms=histograms, schedules=schedules,
                            whole_network=whole_network, accept_fallback=accept_fallback, precision=prec,
                            stored_kernel_bits=stored_kernel_bits, kernel_storage=kernel_storage)


def simulate_network(network: Network, device, config: AcceleratorConfig | None = None, kernels=None, *,
                     design: str = "flexspec", fft_size: int = 8, density: float = 0.25, seed: int = 0,
                     histograms: bool = True, schedules: ScheduleCache | None = None,
                     precision: Precision | None = None, stored_kernel_bits: dict | None = None,
                     kernel_storage: str = "stream") -> NetworkResult:
    """Simulate one design: 'flexspec' or 'baseline-kernel-reuse' / 'baseline-activation-reuse'
    (``precision``, ``stored_kernel_bits``, ``kernel_storage``: as :func:`compare`)."""

    designs = ("flexspec",) + tuple(f"baseline-{b}" for b in BASELINES)
    if design not in designs:
        raise UsageError(f"unknown design '{design}'; known: {', '.join(designs)}")
    storage = check_kernel_storage(kernel_storage, stored_kernel_bits)
    t0 = time.perf_counter()
    schedules = schedules if schedules is not None else ScheduleCache()
    device, config, masks, src, res, prec = _setup(network, device, config, kernels, fft_size, density, seed,
                                                   precision, schedules)
    plan = "flexible" if design == "flexspec" else design[len("baseline-"):]
    method = "optimal" if design == "flexspec" else "inorder"
    nd = analyze(network, masks, config, device, res, prec, stored_kernel_bits, plans=(plan,))
    if plan not in nd.plans:
        raise CapacityError(nd.infeasible.get(plan, f"plan '{plan}' does not fit"))
    layers, models, notes = design_plan(network, masks, config, device, res, prec, nd, plan, method, schedules,
                                        storage, stored_kernel_bits)
    r = simulate_plan(network, masks, layers, models, config, device, res, method, src, design, notes, histograms,
                      schedules, storage)
    return NetworkResult(**{**r.__dict__, "simulate_seconds": time.perf_counter() - t0})
