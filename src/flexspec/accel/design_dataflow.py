"""The dataflow analysis of one design: its word widths, its budget, and ``flexspec.dataflow``
run with the PE-array rule (:mod:`.pe_rule`).

:func:`analyze` returns every plan (flexible, and the two fixed-dataflow families) of every
layer under the :class:`~flexspec.dataflow.Budget` of the design (:func:`budget_of`: on-chip
bytes left after the tile banks and FFT buffers, sustained DRAM bandwidth, A*P complex MACs per
cycle, FFT engine rate); :func:`layer_models` the spectral layers' LayerModels at the design's
precision (:func:`precision_of`).
"""

from __future__ import annotations

from ..dataflow import PLANS, Precision, analyze_network
from ..dataflow.budget import budget_from_device
from ..dataflow.model import LayerModel
from ..devices import Device
from ..errors import UsageError
from ..kernel_format import KernelFormat, psum_bits
from ..workload.layers import Network
from .arch import AcceleratorConfig, Resources
from .pe_rule import occupancy_key, pe_array_candidates


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
    return budget_from_device(device, pe_count=config.pe_count,
                              fft_engines=min(config.fft_engines, config.ifft_engines), fft_size=config.fft_size,
                              onchip_bytes=int(res.dataflow_bits // 8))


def analyze(network: Network, masks: dict, config: AcceleratorConfig, device: Device, res: Resources,
            precision: Precision | None = None, stored_kernel_bits: dict | None = None):
    """``flexspec.dataflow.analyze_network`` for this design, all three plans, with the PE-array
    rule (:func:`pe_array_candidates`) passed through its ``layer_model`` hook.  ``precision``:
    default :func:`precision_of` the design; ``stored_kernel_bits``: layer -> int [Cout, Cin] bits
    each kernel takes in memory when not the format's entry count (e.g. a schedule stream)."""
    pes, arrays = config.pes, config.arrays
    budget = budget_of(config, device, res)
    bits_per_cycle = budget.bandwidth_bytes_per_s * 8 * config.pe_count / budget.macs_per_second

    class _PEArrayModel(LayerModel):
        def candidates(self, *args, **kwargs):
            return pe_array_candidates(self, super().candidates(*args, **kwargs), pes, arrays,
                                       budget.onchip_bytes * 8, bits_per_cycle)

        def plan_mask(self, cands, plan):
            key = occupancy_key(plan)
            return cands[key] if key in cands else super().plan_mask(cands, plan)

    return analyze_network(network, masks, config.fft_size, budget, precision or precision_of(config), PLANS,
                           layer_model=_PEArrayModel, stored_kernel_bits_by_layer=stored_kernel_bits)


def layer_models(network: Network, masks: dict, config: AcceleratorConfig, precision: Precision | None = None,
                 stored_kernel_bits: dict | None = None) -> dict:
    """name -> LayerModel of every spectral layer, from its mask (``precision``: default
    :func:`precision_of` the design; ``stored_kernel_bits``: see :func:`analyze`)."""
    prec = precision or precision_of(config)
    stored = stored_kernel_bits or {}
    return {lay.name: LayerModel(lay, masks[lay.name], config.fft_size, prec, stored_kernel_bits=stored.get(lay.name))
            for lay in network.spectral_layers}
