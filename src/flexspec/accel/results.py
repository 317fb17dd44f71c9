"""What a simulation returns: per-layer and per-network results, JSON-ready (``to_dict``).

:class:`LayerResult` is one layer's cycles, their split (compute, bank conflicts, memory and FFT
stalls, fill), traffic and bounds; :class:`NetworkResult` one design on one network.  Spatial
layers (:mod:`.spatial`) report in the same shape.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import UsageError
from .arch import AcceleratorConfig, Resources
from .kernels import KernelSource

#: Version of the result dictionaries (``to_dict``).
FORMAT_VERSION = 2


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
    stored_kernel_bytes: float = 0.0  # one copy of the layer's kernels as stored (NetworkResult.kernel_storage)

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
    #: how the spectral layers' kernel bytes are counted: 'stream' (the schedule stream the
    #: generated PE arrays store), 'entries' (packed non-zeros) or 'given' (the caller's bits)
    kernel_storage: str = "entries"

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
    def stored_kernel_bytes(self) -> float:
        """The spectral layers' kernels, one copy each, as stored (``kernel_storage``)."""
        return sum(r.stored_kernel_bytes for r in self.layers if r.kind == "spectral")

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
            "kernels": self.kernels.to_dict(), "kernel_storage": self.kernel_storage,
            "config": self.config.to_dict(), "resources": self.resources.to_dict(),
            "total": {
                "cycles": self.cycles, "seconds": self.seconds, "clock_hz": self.clock_hz,
                "traffic_bytes": self.traffic_bytes, "useful_complex_macs": self.useful_macs,
                "dsp_efficiency": self.dsp_efficiency, "estimate_cycles": self.estimate_cycles,
                "roofline_cycles": self.roofline_cycles,
                "roofline_seconds": self.roofline_cycles / self.clock_hz,
                "achieved_over_roofline": self.cycles / max(1, self.roofline_cycles),
                "simulate_seconds": self.simulate_seconds,
                "stored_kernel_bytes": self.stored_kernel_bytes,
            },
            "layers": [r.to_dict() for r in self.layers],
            "notes": list(self.notes),
        })
