"""Dataflow: bandwidth-storage model, compulsory bounds, tradeoff curves and the per-layer optimizer.

See :mod:`flexspec.dataflow.model` for the loop nest and the accounting conventions.
"""

from .budget import ONCHIP_FRACTION, budget_from_device, complex_macs_per_second, fft_tiles_per_second
from .model import (
    DATAFLOWS, INPUT_FORMATS, ORDERS, PLANS, Blocking, Budget, LayerModel,
    LayerTraffic, Precision, TradeoffCurve, TrafficBound, block_candidates, dataflow_labels, dataflow_name, kernel_bits,
    layer_traffic, lower_bound, optimize_layer, synthetic_nnz, tradeoff_curve,
)
from .network import LayerDataflow, NetworkDataflow, analyze_network, synthetic_nnz_by_layer
from .trace import TraceCount, trace_traffic

__all__ = [
    "DATAFLOWS", "INPUT_FORMATS", "ORDERS", "PLANS",
    "ONCHIP_FRACTION", "Blocking", "Budget", "LayerDataflow", "LayerModel", "LayerTraffic", "NetworkDataflow",
    "Precision", "TraceCount", "TradeoffCurve", "TrafficBound", "analyze_network", "block_candidates",
    "budget_from_device", "complex_macs_per_second", "dataflow_labels", "fft_tiles_per_second", "dataflow_name", "kernel_bits", "layer_traffic", "lower_bound", "optimize_layer",
    "synthetic_nnz", "synthetic_nnz_by_layer", "trace_traffic", "tradeoff_curve",
]
