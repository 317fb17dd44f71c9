"""Cost models of every layer that does not run as a spectral convolution, and of the spatial
accelerators a user would build instead.

Spatial mode of the PE arrays (convolutions that stay spatial: 1x1, strided, dilated,
asymmetric, grouped, depthwise).  Nothing is added to the hardware: a PE's complex MAC fed with
a *real* weight ``w`` and two activations packed as ``x1 + j x2`` computes ``w x1 + j w x2``, so
each PE does :data:`SPATIAL_MACS_PER_PE` = 2 real MACs per cycle on two neighbouring output
pixels.  As in spectral mode, the P PEs of an array hold P output channels *of one group* and
share one broadcast input stream, so an array's work unit is (group, block of P output channels
of that group); the A arrays take units in rounds, and split a unit's output pixels when there
are fewer units than arrays.  Occupancy losses are therefore derived from the shape: a
depthwise layer fills 1 PE of P; a 1x1 layer with 8 units on 6 arrays runs 2 rounds at 67%.
Traffic: the weights once, the input once per block of output channels whose weights fit half
the dataflow buffer, the output once (accumulators of a band of output rows stay on chip).

Fully connected layers: the weights stream from DRAM (batch 1: every weight is used once, so
the layer is memory-bound); the input vector is broadcast and each PE computes one output
neuron at 1 real MAC per cycle.  Optionally pruned: kept values + a ceil(log2(in))-bit index.

Residual additions: fused into the stream of the later operand's producer; the other operand
is read back from DRAM, unless it stays on chip (it fits in the dataflow buffer next to the
largest buffer any layer between its producer and the add uses).  Concatenations cost nothing:
each producer writes straight into its channel slice of the concatenated tensor, and the
consumer's input read (already counted) reads the whole.  ReLU and pooling are fused into the
output stage of the layer before them (0 cycles; the stored tensor is the pooled one).

Any other operation (:class:`~flexspec.workload.layers.UnsupportedLayer`) stops the run,
unless the user accepts the stated fallback cost :data:`FALLBACK_COST`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..errors import UsageError
from ..workload.layers import (
    ActivationLayer, AddLayer, ConcatLayer, ConvLayer, LinearLayer, PoolLayer, UnsupportedLayer,
)
from .results import LayerResult

#: Real MACs per PE per cycle in spatial mode (real weight, two activations packed in one complex word).
SPATIAL_MACS_PER_PE = 2
#: Real MACs per PE per cycle of a fully connected layer at batch 1 (one activation per weight).
FC_MACS_PER_PE = 1
FALLBACK_COST = ("one read of its input and one write of its output through DRAM at the sustained "
                 "bandwidth, no compute")
MODES = {"spectral": "spectral", "spatial": "spatial (PE arrays)", "fc": "FC (weights streamed)",
         "add": "residual add", "concat": "concat (in place)", "fallback": "fallback (accepted)"}


# ------------------------------------------------------------------------------ cost parts --
@dataclass(frozen=True)
class LayerCost:
    """The cost of one layer outside the spectral simulator (all traffic in bytes)."""

    name: str
    kind: str  # spatial | fc | add | concat | fallback
    compute_cycles: int
    memory_cycles: int
    fill_cycles: int
    real_macs: int
    pe_cycle_capacity: int  # real MACs the allocated PEs could have done in compute_cycles
    kernels_bytes: float
    inputs_bytes: float
    outputs_bytes: float
    lower_bound_bytes: float
    blocking: tuple = ()  # (cout block, pixel split, rounds) for spatial convs
    note: str = ""

    @property
    def cycles(self) -> int:
        return max(self.compute_cycles, self.memory_cycles) + self.fill_cycles

    @property
    def bound(self) -> str:
        return "memory" if self.memory_cycles > self.compute_cycles else "compute"

    @property
    def traffic_bytes(self) -> float:
        return self.kernels_bytes + self.inputs_bytes + self.outputs_bytes


def spatial_conv_cost(conv: ConvLayer, arrays: int, pes: int, budget_bits: int, bytes_per_cycle: float,
                      pipeline_cycles: int = 8, act_bits: int = 16, weight_bits: int = 16,
                      macs_per_pe: int = SPATIAL_MACS_PER_PE, output_bits: int | None = None) -> LayerCost:
    """A convolution on the spatial mode of A arrays x P PEs (module docstring)."""
    cout_g = conv.out_channels // conv.groups
    cin_g = conv.in_channels // conv.groups
    units = conv.groups * -(-cout_g // pes)
    pixels = conv.out_height * conv.out_width
    per_pixel = cin_g * conv.kernel_size * conv.kw  # MACs of one output value
    split = max(1, arrays // units)  # arrays sharing one unit's output pixels
    rounds = -(-units * split // arrays)
    compute = rounds * -(-pixels // (macs_per_pe * split)) * per_pixel + pipeline_cycles * rounds
    w_bits = conv.weight_count * weight_bits
    in_bits = conv.input_elements * act_bits
    out_bits = conv.output_elements * act_bits if output_bits is None else output_bits
    blocks = max(1, math.ceil(w_bits / max(1, budget_bits // 2)))
    traffic_bits = w_bits + in_bits * blocks + out_bits
    memory = math.ceil(traffic_bits / 8 / bytes_per_cycle)
    return LayerCost(conv.name, "spatial", int(compute), memory, pipeline_cycles, conv.macs,
                     int(compute) * arrays * pes * macs_per_pe, w_bits / 8, in_bits * blocks / 8, out_bits / 8,
                     (w_bits + in_bits + out_bits) / 8, (min(cout_g, pes), split, rounds),
                     f"{units} units of P output channels on {arrays} arrays: {rounds} rounds"
                     + (f", pixels split {split} ways" if split > 1 else "")
                     + (f"; weights in {blocks} blocks (input read {blocks}x)" if blocks > 1 else ""))


def fc_cost(fc: LinearLayer, arrays: int, pes: int, bytes_per_cycle: float, pipeline_cycles: int = 8,
            act_bits: int = 16, weight_bits: int = 16, density: float = 1.0) -> LayerCost:
    """A fully connected layer at batch 1, weights streamed from DRAM (optionally pruned)."""
    lanes = arrays * pes
    kept = fc.in_features * fc.out_features if density >= 1 else math.ceil(density * fc.in_features * fc.out_features)
    index_bits = 0 if density >= 1 else max(1, math.ceil(math.log2(fc.in_features)))
    w_bits = kept * (weight_bits + index_bits) + (fc.out_features * weight_bits if fc.bias else 0)
    in_bits, out_bits = fc.in_features * act_bits, fc.out_features * act_bits
    rounds = -(-fc.out_features // lanes)
    compute = math.ceil(rounds * fc.in_features * min(1.0, density) / FC_MACS_PER_PE) + pipeline_cycles
    memory = math.ceil((w_bits + in_bits + out_bits) / 8 / bytes_per_cycle)
    return LayerCost(fc.name, "fc", compute, memory, pipeline_cycles, kept, compute * lanes * FC_MACS_PER_PE,
                     w_bits / 8, in_bits / 8, out_bits / 8, (w_bits + in_bits + out_bits) / 8, (min(fc.out_features, lanes),),
                     "weights streamed from DRAM" + (f", pruned to density {density:g}" if density < 1 else ""))


def add_cost(add: AddLayer, resident: bool, lanes: int, bytes_per_cycle: float, act_bits: int = 16) -> LayerCost:
    """A residual addition fused into the later operand's output stream: the other operand(s)
    read back from DRAM unless resident on chip."""
    reads = 0 if resident else (max(1, len(add.operands)) - 1 or 1) * add.elements * act_bits / 8
    compute = -(-add.elements // lanes)
    memory = math.ceil(reads / bytes_per_cycle)
    return LayerCost(add.name, "add", compute, memory, 0, 0, 0, 0.0, reads, 0.0, reads, (),
                     "skip operand resident on chip" if resident else "skip operand read back from DRAM")


def concat_cost(cat: ConcatLayer) -> LayerCost:
    return LayerCost(cat.name, "concat", 0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, (),
                     "producers write their channel slices in place; the consumer's read is counted there")


def fallback_cost(layer: UnsupportedLayer, bytes_per_cycle: float, act_bits: int = 16) -> LayerCost:
    in_b = math.prod(layer.in_shape or layer.shape) * act_bits / 8
    out_b = math.prod(layer.shape) * act_bits / 8
    return LayerCost(layer.name, "fallback", 0, math.ceil((in_b + out_b) / bytes_per_cycle), 0, 0, 0, 0.0, in_b,
                     out_b, in_b + out_b, (), f"{layer.op}: {layer.reason}; costed as {FALLBACK_COST}")


# ---------------------------------------------------------------------------- unsupported --
def unsupported_rows(network) -> list[dict]:
    """Every layer no cost model covers, with its reason (for the CLI, report.json and report.html)."""
    return [{"layer": lay.name, "op": lay.op, "input_shape": list(lay.in_shape), "output_shape": list(lay.shape),
             "reason": lay.reason} for lay in network.unsupported_layers]


def check_supported(network, accept_fallback: bool) -> None:
    rows = unsupported_rows(network)
    if rows and not accept_fallback:
        listed = "; ".join(f"{r['layer']} ({r['op']}: {r['reason']})" for r in rows[:6])
        more = f" and {len(rows) - 6} more" if len(rows) > 6 else ""
        raise UsageError(f"{len(rows)} layer(s) of '{network.name}' have no cost model: {listed}{more}. Rerun with "
                         f"--accept-fallback (Python: accept_fallback=True) to cost each as {FALLBACK_COST}")


# ------------------------------------------------------------------------- whole network --
def fused_into(network) -> dict:
    """layer name -> the names of the ReLU / pooling / element-wise layers fused into its output stage."""
    out, owner = {}, None
    for lay in network.layers:
        if isinstance(lay, (ActivationLayer, PoolLayer)) and owner is not None:
            out.setdefault(owner, []).append(lay.name)
        elif not isinstance(lay, (ActivationLayer, PoolLayer)):
            owner = lay.name
    return out


def _stored_bits(network, act_bits: int) -> dict:
    """layer name -> bits of the tensor it stores (after its fused pooling)."""
    out, owner = {}, None
    for lay in network.layers:
        if isinstance(lay, (ActivationLayer, PoolLayer)) and owner is not None:
            out[owner] = math.prod(lay.out_shape) * act_bits
        else:
            owner = lay.name
            out[owner] = math.prod(lay.out_shape) * act_bits
    return out


def _spatial_onchip_bits(conv: ConvLayer, budget: int, act_bits: int) -> int:
    """On-chip bits of a spatial conv: its weight block and its input/output bands (each <= budget/2)."""
    return (min(conv.weight_count * act_bits, budget // 2)
            + min((conv.input_elements + conv.output_elements) * act_bits, budget // 2))


def other_layer_costs(network, config, device, res, onchip_bits: dict | None = None, *,
                      fc_density: float = 1.0, accept_fallback: bool = False) -> dict:
    """name -> LayerCost of every FC, add, concat and (accepted) unsupported layer of ``network``.

    ``onchip_bits``: spectral conv name -> dataflow buffer bits its blocking uses
    (``LayerDataflow.onchip_bits``; one not given is taken to use the whole buffer); a spatial conv
    uses its weight block and its input/output bands (each at most half the buffer, as in
    :func:`spatial_conv_cost`).  A residual operand stays on chip only if it fits next to the
    largest of them between its producer and the add."""
    check_supported(network, accept_fallback)
    bpc = device.bytes_per_cycle
    act = config.data_bits
    budget = int(res.dataflow_bits)
    stored = _stored_bits(network, act)
    order = {lay.name: k for k, lay in enumerate(network.layers)}
    onchip_use = {lay.name: (_spatial_onchip_bits(lay, budget, act) if isinstance(lay, ConvLayer)
                             and not lay.spectral_eligible else budget if isinstance(lay, ConvLayer) else 0)
                  for lay in network.layers}
    onchip_use.update({k: int(v) for k, v in (onchip_bits or {}).items() if k in onchip_use
                       and network.layer(k).spectral_eligible})
    costs = {}
    for lay in network.layers:
        if isinstance(lay, LinearLayer):
            costs[lay.name] = fc_cost(lay, config.arrays, config.pes, bpc, config.pe_pipeline_cycles, act,
                                      config.data_bits, fc_density)
        elif isinstance(lay, AddLayer):
            skip = [o for o in lay.operands[:-1] if o in order] if lay.operands else []
            between = [onchip_use[n.name] for n in network.layers[min([order[o] for o in skip] or [order[lay.name]]) + 1:
                                                                  order[lay.name]]]
            skip_bits = sum(stored.get(o, lay.elements * act) for o in skip) if skip else lay.elements * act
            resident = bool(skip) and skip_bits + max(between, default=0) <= budget
            costs[lay.name] = add_cost(lay, resident, config.pe_count, bpc, act)
        elif isinstance(lay, ConcatLayer):
            costs[lay.name] = concat_cost(lay)
        elif isinstance(lay, UnsupportedLayer):
            costs[lay.name] = fallback_cost(lay, bpc, act)
    return costs


def layer_result(cost: LayerCost, config, device, res):
    """The LayerResult of a LayerCost (same fields as a simulated layer; see accel.sim)."""
    cyc = cost.cycles
    pe_equiv = math.ceil(cost.real_macs / SPATIAL_MACS_PER_PE) if cost.kind == "spatial" else cost.real_macs
    eff = cost.real_macs / max(1, cost.pe_cycle_capacity) * cost.compute_cycles / max(1, cyc) \
        if cost.pe_cycle_capacity else 0.0
    bo = cost.blocking[0] if cost.blocking else 0
    return LayerResult(cost.name, cost.kind, cost.kind, "", bo, 0, 0, "spatial", "spatial", 1,
                       cyc, cyc / device.clock_hz, cost.compute_cycles, 0,
                       max(0, max(cost.compute_cycles, cost.memory_cycles) - cost.compute_cycles), 0,
                       cost.fill_cycles, pe_equiv, eff, eff * config.pe_count * device.dsp_per_complex_mac
                       / max(1, res.dsp_total), cost.kernels_bytes, cost.inputs_bytes, cost.outputs_bytes, 0.0,
                       cost.lower_bound_bytes, 0, 0, cyc,
                       max(math.ceil(pe_equiv / config.pe_count), math.ceil(cost.lower_bound_bytes
                                                                            / device.bytes_per_cycle)),
                       cost.bound, cost.bound == "memory", {"note": cost.note} if cost.note else {})


def whole_network(network, result, config, device, res, onchip_bits: dict | None = None, *,
                  fc_density: float = 1.0, accept_fallback: bool = False):
    """``result`` (convolutions only, from the simulator) with every other layer's cost added in
    execution order: the end-to-end NetworkResult (``onchip_bits``: see :func:`other_layer_costs`)."""
    costs = other_layer_costs(network, config, device, res, onchip_bits, fc_density=fc_density,
                              accept_fallback=accept_fallback)
    conv = {r.name: r for r in result.layers}
    layers = []
    for lay in network.layers:
        if lay.name in conv:
            layers.append(conv[lay.name])
        elif lay.name in costs:
            layers.append(layer_result(costs[lay.name], config, device, res))
    return replace(result, layers=tuple(layers))


CONV_KINDS = ("spectral", "spatial")


def conv_only(result):
    """The convolutions' part of a whole-network result (cycles, seconds, traffic)."""
    layers = [r for r in result.layers if r.kind in CONV_KINDS]
    cycles = sum(r.cycles for r in layers)
    return {"cycles": cycles, "latency_seconds": cycles / result.clock_hz,
            "traffic_bytes": sum(r.traffic_bytes for r in layers), "layers_count": len(layers)}


# ---------------------------------------------------------------- what a user builds instead --
#: Output-channel columns of the modelled spatial accelerators (rows = DSPs // columns output pixels).
SPATIAL_ARRAY_COLUMNS = 64


@dataclass(frozen=True)
class SpatialAccelerator:
    """A dense (``density`` 1) or sparse spatial accelerator on the same board: every DSP one 16-bit
    real MAC per cycle, arranged as ``rows`` output pixels x ``columns`` output channels
    (weight-stationary), the same DRAM bandwidth, clock and dataflow buffer as the FlexSpec
    design.  Sparse: only kept weights are multiplied (ideal zero skipping at no load imbalance)
    and stored with a ceil(log2(Cin*Kh*Kw))-bit index.  ``ideal_*``: MACs / DSPs, no occupancy
    loss, no memory stall (the roofline's compute side)."""

    name: str
    density: float
    rows: int
    columns: int
    cycles: int
    conv_cycles: int
    ideal_cycles: int
    ideal_conv_cycles: int
    traffic_bytes: float
    conv_traffic_bytes: float
    clock_hz: float

    @property
    def latency_seconds(self) -> float:
        return self.cycles / self.clock_hz

    @property
    def conv_latency_seconds(self) -> float:
        return self.conv_cycles / self.clock_hz

    def to_dict(self) -> dict:
        return {"name": self.name, "density_fraction": self.density, "array_rows_count": self.rows,
                "array_columns_count": self.columns, "cycles": self.cycles, "latency_seconds": self.latency_seconds,
                "conv_cycles": self.conv_cycles, "conv_latency_seconds": self.conv_latency_seconds,
                "ideal_latency_seconds": self.ideal_cycles / self.clock_hz,
                "ideal_conv_latency_seconds": self.ideal_conv_cycles / self.clock_hz,
                "traffic_bytes": self.traffic_bytes, "conv_traffic_bytes": self.conv_traffic_bytes}


def spatial_accelerator(network, device, budget_bits: int, density: float = 1.0, act_bits: int = 16,
                        dsps: int | None = None, fc_density: float = 1.0) -> SpatialAccelerator:
    """Model the spatial accelerator (see :class:`SpatialAccelerator`) on ``network``; its convolutions
    at ``density``, its FC layers at ``fc_density`` (as the FlexSpec design's, for a fair end-to-end
    comparison)."""
    dsps = int(dsps or device.dsp_slices)
    cols = min(SPATIAL_ARRAY_COLUMNS, dsps)
    rows = dsps // cols
    bpc = device.bytes_per_cycle
    cyc = conv_cyc = ideal = ideal_conv = 0
    traffic = conv_traffic = 0.0
    for lay in network.layers:
        if isinstance(lay, ConvLayer):
            cout_g, cin_g = lay.out_channels // lay.groups, lay.in_channels // lay.groups
            pixels = lay.out_height * lay.out_width
            per_out = cin_g * lay.kernel_size * lay.kw
            compute = lay.groups * -(-cout_g // cols) * -(-pixels // rows) * math.ceil(per_out * density)
            idx = 0 if density >= 1 else max(1, math.ceil(math.log2(per_out)))
            w_bits = math.ceil(lay.weight_count * density) * (16 + idx)
            blocks = max(1, math.ceil(w_bits / max(1, budget_bits // 2)))
            t_bytes = (w_bits + lay.input_elements * act_bits * blocks + lay.output_elements * act_bits) / 8
            c = max(compute, math.ceil(t_bytes / bpc))
            i = math.ceil(lay.macs * density / dsps)
            conv_cyc += c
            ideal_conv += i
            conv_traffic += t_bytes
        elif isinstance(lay, LinearLayer):
            kept = math.ceil(lay.in_features * lay.out_features * fc_density)
            idx = 0 if fc_density >= 1 else max(1, math.ceil(math.log2(lay.in_features)))
            t_bytes = (kept * (16 + idx) + (lay.in_features + lay.out_features) * act_bits) / 8
            c = max(math.ceil(kept / dsps), math.ceil(t_bytes / bpc))
            i = math.ceil(kept / dsps)
        else:
            continue
        cyc += c
        ideal += i
        traffic += t_bytes
    name = "dense spatial" if density >= 1 else f"sparse spatial ({density:g})"
    return SpatialAccelerator(name, float(density), rows, cols, cyc, conv_cyc, ideal, ideal_conv, traffic,
                              conv_traffic, device.clock_hz)
