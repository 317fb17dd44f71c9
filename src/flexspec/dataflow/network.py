"""Whole-network dataflow: per-layer choices, cross-layer residency, fixed baselines, bounds.

Scope: the network's convolution layers in execution order.  ReLU and pooling that directly
follow a convolution are fused into its output stage (the stored output is the pooled
tensor); fully connected layers, residual additions and their extra reads are not modelled.
Convolutions that are not spectral-eligible are modelled simply as dense spatial layers that
move their 16-bit weights, input and output once (kind ``"spatial"``).

Links.  Between a convolution and the next one, when the next one reads exactly the first
one's (fused) output and both are spectral, the link is one of

* ``"spatial"``: the output is written off chip in spatial form and read back;
* ``"spectral"``: the producer writes it already transformed in the consumer's tiling
  (``Cin' x T' x F`` complex values), the consumer reads it without forward FFTs;
* ``"resident"``: it stays on chip (spatial, ``activation_bits`` per value) -- it must fit
  next to the producer's buffers while produced and next to the consumer's buffers while
  consumed, and it is neither written nor read.

Any other link is ``"spatial"``.  A dynamic program over the chain picks the links and every
layer's blocking to minimise the total time (sum over layers of max(compute, traffic /
bandwidth)), then the total traffic.  The fixed baselines run the same program with the
loop order restricted to kernel reuse or activation reuse.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from ..errors import CapacityError, UsageError
from ..workload.layers import ActivationLayer, ConvLayer, PoolLayer
from .model import (
    DEFAULT_PRECISION, PLANS, Blocking, Budget, LayerModel, LayerTraffic, Precision, TrafficBound, TrafficTotals,
    capacity_error, choose, compute_seconds, synthetic_nnz,
)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class LayerDataflow(TrafficTotals):
    """The dataflow chosen for one layer, with its traffic split, bound and timing."""

    layer_name: str
    kind: str  # "spectral" | "spatial"
    traffic: LayerTraffic | None  # None for a spatial layer
    kernels_bits: int
    inputs_bits: int
    outputs_bits: int
    psums_bits: int
    onchip_bits: int
    bound: TrafficBound
    complex_macs: int
    compute_seconds: float
    bandwidth_bytes_per_s: float
    input_link: str = "spatial"
    output_link: str = "spatial"

    @property
    def dataflow(self) -> str:
        return self.traffic.dataflow if self.traffic is not None else "spatial"

    @property
    def blocking(self) -> Blocking | None:
        return self.traffic.blocking if self.traffic is not None else None

    @property
    def memory_seconds(self) -> float:
        return self.total_bytes / self.bandwidth_bytes_per_s

    @property
    def time_seconds(self) -> float:
        return max(self.compute_seconds, self.memory_seconds)

    @property
    def memory_bound(self) -> bool:
        return self.memory_seconds > self.compute_seconds

    @property
    def bound_ratio(self) -> float:
        return self.total_bits / self.bound.total_bits if self.bound.total_bits else 1.0

    def to_dict(self) -> dict:
        b = self.blocking
        d = {
            "layer": self.layer_name, "kind": self.kind, "dataflow": self.dataflow,
            "order": b.order if b else None, "cout_block": b.cout_block if b else None,
            "cin_block": b.cin_block if b else None, "tile_block": b.tile_block if b else None,
            "input_format": (b.input_format if b else "spatial"),
            "input_link": self.input_link, "output_link": self.output_link,
            "kernels_bytes": self.kernels_bits / 8, "inputs_bytes": self.inputs_bits / 8,
            "outputs_bytes": self.outputs_bits / 8, "psums_bytes": self.psums_bits / 8,
            "total_bytes": self.total_bytes, "onchip_bytes": self.onchip_bits / 8,
            "lower_bound_bytes": self.bound.total_bytes, "bound_ratio": self.bound_ratio,
            "complex_macs": self.complex_macs, "compute_seconds": self.compute_seconds,
            "memory_seconds": self.memory_seconds, "time_seconds": self.time_seconds,
            "memory_bound": self.memory_bound,
        }
        if self.traffic is not None:
            t = self.traffic
            d.update(kernel_passes=t.kernel_passes, input_passes=t.input_passes,
                     psum_round_trips=t.psum_round_trips, forward_ffts=t.forward_ffts,
                     inverse_ffts=t.inverse_ffts, kernel_buffer_bytes=t.kernel_buffer_bits / 8,
                     input_buffer_bytes=t.input_buffer_bits / 8, accumulator_bytes=t.accumulator_bits / 8,
                     overlap_buffer_bytes=t.overlap_buffer_bits / 8, resident_bytes=t.resident_bits / 8)
        return d


def _plan_totals(layers) -> dict:
    return {
        "kernels_bytes": sum(x.kernels_bits for x in layers) / 8,
        "inputs_bytes": sum(x.inputs_bits for x in layers) / 8,
        "outputs_bytes": sum(x.outputs_bits for x in layers) / 8,
        "psums_bytes": sum(x.psums_bits for x in layers) / 8,
        "total_bytes": sum(x.total_bits for x in layers) / 8,
        "time_seconds": sum(x.time_seconds for x in layers),
        "memory_bound_layers": [x.layer_name for x in layers if x.memory_bound],
        "resident_links": sum(x.output_link == "resident" for x in layers),
    }


@dataclass(frozen=True)
class NetworkDataflow:
    """Per-layer choices of every plan ('flexible' and the two fixed baselines), and the bound."""

    network_name: str
    fft_size: int
    precision: Precision
    budget: Budget
    plans: dict = field(repr=False)  # plan name -> tuple[LayerDataflow, ...]
    bound: TrafficBound  # network compulsory bound
    analysis_seconds: float = 0.0
    infeasible: dict = field(default_factory=dict)  # baseline plan that fits nowhere -> the reason

    @property
    def layers(self) -> tuple[LayerDataflow, ...]:
        return self.plans["flexible"]

    def totals(self, plan: str = "flexible") -> dict:
        return _plan_totals(self.plans[plan])

    def total_bytes(self, plan: str = "flexible") -> float:
        """Total traffic of a plan; inf for a baseline that does not fit the capacity."""
        if plan in self.infeasible:
            return math.inf
        return sum(x.total_bits for x in self.plans[plan]) / 8

    @property
    def memory_bound_layers(self) -> list[str]:
        return [x.layer_name for x in self.layers if x.memory_bound]

    def reduction(self, baseline: str) -> float:
        """1 - flexible traffic / baseline traffic."""
        return 1.0 - self.total_bytes("flexible") / self.total_bytes(baseline)

    def to_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "network": self.network_name, "fft_size": self.fft_size,
            "precision": self.precision.to_dict(), "budget": self.budget.to_dict(),
            "lower_bound": self.bound.to_dict(),
            "plans": {name: {"layers": [x.to_dict() for x in layers], "totals": _plan_totals(layers)}
                      for name, layers in self.plans.items()},
            **{f"reduction_vs_{b.replace('-', '_')}": self.reduction(b)
               for b in ("kernel-reuse", "activation-reuse") if b in self.plans},
            "infeasible_plans": dict(self.infeasible),
            "bound_ratio": self.total_bytes() / self.bound.total_bytes,
        }


# -- the chain -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Link:
    stored_shape: tuple  # producer's stored (fused) output shape
    direct: bool  # the next conv reads exactly this tensor


def _chain(network):
    """Conv layers in order, each with its stored output shape and whether it feeds the next conv."""
    convs = list(network.conv_layers)
    if not convs:
        raise UsageError(f"network '{network.name}' has no convolution layer to analyze")
    pos = {layer.name: k for k, layer in enumerate(network.layers)}
    links = []
    for j, conv in enumerate(convs):
        shape = conv.out_shape
        k = pos[conv.name] + 1
        while k < len(network.layers) and isinstance(network.layers[k], (ActivationLayer, PoolLayer)):
            if isinstance(network.layers[k], PoolLayer):
                shape = network.layers[k].out_shape
            k += 1
        nxt = convs[j + 1] if j + 1 < len(convs) else None
        direct = (nxt is not None and k < len(network.layers) and network.layers[k] is nxt
                  and (nxt.in_channels, nxt.height, nxt.width) == tuple(shape)
                  and conv.spectral_eligible and nxt.spectral_eligible)
        links.append(_Link(tuple(shape), direct))
    return convs, links


def _spatial_layer(conv: ConvLayer, stored_out_bits: int, precision: Precision, budget: Budget) -> LayerDataflow:
    kb = conv.weight_count * precision.spatial_weight_bits
    ib = conv.input_elements * precision.activation_bits
    bound = TrafficBound(kb, ib, stored_out_bits)
    return LayerDataflow(conv.name, "spatial", None, kb, ib, stored_out_bits, 0, 0, bound, conv.macs,
                         float(conv.macs / budget.macs_per_second), budget.bandwidth_bytes_per_s)


def analyze_network(network, nnz_by_layer: dict, fft_size: int, budget: Budget,
                    precision: Precision = DEFAULT_PRECISION, plans=PLANS, *, residency: bool = True,
                    spectral_links: bool = True, layer_model=None,
                    stored_kernel_bits_by_layer: dict | None = None) -> NetworkDataflow:
    """Choose every spectral layer's dataflow and blocking, and the links, for each plan.

    ``nnz_by_layer``: layer name -> int array [Cout, Cin] of real non-zero counts (or the bool
    mask [Cout, Cin, F]), for every spectral-eligible layer.  ``stored_kernel_bits_by_layer``:
    optional layer name -> int [Cout, Cin] bits each kernel takes in memory (see
    :class:`~flexspec.dataflow.model.LayerModel`).  ``plans``: names from PLANS ('flexible' is always added).
    ``residency`` / ``spectral_links``: allow 'resident' / 'spectral' links.  Raises
    CapacityError naming the first layer for which nothing fits, with the capacity it needs.
    ``layer_model``: a LayerModel subclass whose ``candidates()`` restricts the blockings to
    what a particular hardware can run (the accelerator's PE-array rule); default LayerModel."""
    t0 = time.perf_counter()
    plans = ("flexible",) + tuple(p for p in plans if p != "flexible")
    for plan in plans:
        if plan not in PLANS:
            raise UsageError(f"unknown plan {plan!r}; known: {', '.join(PLANS)}")
    convs, links = _chain(network)
    act = precision.activation_bits
    models, cands = {}, {}
    for conv in convs:
        if conv.spectral_eligible:
            if conv.name not in nnz_by_layer:
                raise UsageError(f"no non-zero counts given for spectral layer '{conv.name}'")
            m = (layer_model or LayerModel)(conv, nnz_by_layer[conv.name], fft_size, precision,
                                            stored_kernel_bits=(stored_kernel_bits_by_layer or {}).get(conv.name))
            models[conv.name] = m
            cands[conv.name] = m.candidates()
    # allowed states of the link after conv j, and the stored bits the producer writes per state
    link_states = []
    for j, link in enumerate(links):
        spatial_bits = math.prod(link.stored_shape) * act
        states = {"spatial": spatial_bits}
        if link.direct:
            nxt = models[convs[j + 1].name]
            if spectral_links:
                states["spectral"] = nxt.input_bits["spectral"]
            if residency:
                states["resident"] = 0
        link_states.append(states)

    out, infeasible = {}, {}
    for plan in plans:
        try:
            out[plan] = _plan(plan, convs, links, link_states, models, cands, budget, precision)
        except CapacityError as exc:
            if plan == "flexible":
                raise
            infeasible[plan] = str(exc)

    first = convs[0]
    kernels = sum(int(models[c.name].kernel_total_bits) if c.spectral_eligible
                  else c.weight_count * precision.spatial_weight_bits for c in convs)
    bound = TrafficBound(kernels, first.input_elements * act, math.prod(links[-1].stored_shape) * act)
    return NetworkDataflow(network.name, fft_size, precision, budget, out, bound, time.perf_counter() - t0,
                           infeasible)


def _plan(plan, convs, links, link_states, models, cands, budget, precision):
    """Dynamic program over the chain for one plan; tuple of LayerDataflow."""
    # dp: state of the link into the current layer -> (time, traffic, [LayerDataflow...])
    dp = {"spatial": (0.0, 0, [])}
    for j, conv in enumerate(convs):
        new = {}
        spatial_out_bits = link_states[j]["spatial"]
        if not conv.spectral_eligible:
            choice = _spatial_layer(conv, spatial_out_bits, precision, budget)
            best = min(dp.values(), key=lambda v: (v[0], v[1]))
            new["spatial"] = (best[0] + choice.time_seconds, best[1] + choice.total_bits, best[2] + [choice])
            dp = new
            continue
        m, c = models[conv.name], cands[conv.name]
        mask = m.plan_mask(c, plan)
        sub = {k: v[mask] for k, v in c.items()}
        for s_in, (t_acc, b_acc, hist) in dp.items():
            in_res = s_in == "resident"
            for s_out, out_bits in link_states[j].items():
                out_res = s_out == "resident"
                resident = (m.input_spatial_bits if in_res else 0) + (spatial_out_bits if out_res else 0)
                k = choose(m, sub, budget, input_format=None if in_res else s_in, input_resident=in_res,
                           output_resident=out_res, resident_bits=resident, output_bits=out_bits)
                if k is None:
                    continue
                tr = m.traffic(m.blocking_at(sub, k), input_resident=in_res, output_resident=out_res,
                               resident_bits=resident, output_bits=out_bits)
                comp = float(compute_seconds(m.complex_macs, tr.forward_ffts + tr.inverse_ffts, budget))
                bound = m.bound(in_res, out_res)
                bound = TrafficBound(bound.kernels_bits, bound.inputs_bits,
                                     0 if out_res else spatial_out_bits)
                lay = LayerDataflow(conv.name, "spectral", tr, tr.kernels_bits, tr.inputs_bits,
                                    tr.outputs_bits, tr.psums_bits, tr.onchip_bits, bound, m.complex_macs,
                                    comp, budget.bandwidth_bytes_per_s, s_in, s_out)
                cand = (t_acc + lay.time_seconds, b_acc + lay.total_bits, hist + [lay])
                if s_out not in new or (cand[0], cand[1]) < (new[s_out][0], new[s_out][1]):
                    new[s_out] = cand
        if not new:
            need = int(sub["buffer_bits"].min())
            raise capacity_error(conv.name, need, budget.onchip_bytes,
                                 f" (plan '{plan}')" if plan != "flexible" else "")
        dp = new
    final = min(dp.values(), key=lambda v: (v[0], v[1]))
    return tuple(final[2])


def synthetic_nnz_by_layer(network, fft_size: int, density: float, seed: int = 0) -> dict:
    """Random-mask non-zero counts for every spectral layer (seed offset by layer position)."""
    return {layer.name: synthetic_nnz(layer, fft_size, density, seed + k)
            for k, layer in enumerate(network.spectral_layers)}
