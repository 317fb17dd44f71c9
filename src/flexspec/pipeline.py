"""The main job: one call from a model name to a trusted report.

``run(model="vgg16", device="u200", ...)`` walks the whole pipeline, one way:

1. network            ``flexspec.workload``: a built-in network (or a ``Network`` given in Python)
2. sparse kernels     ``flexspec.accel.kernels.resolve_kernels``: the shipped trained kernels
                      (``fmnist_vgg``, real), the documented deterministic synthesis (``vgg16``,
                      "synthesized"), a user ``SparseNetworkKernels`` .npz (``weights=``), or seeded
                      random masks for a network that has neither (labelled "random")
3. design             the accelerator configuration that fits the device (A arrays x P PEs, B banks)
4. dataflow           ``flexspec.dataflow`` through ``flexspec.accel.sim.analyze`` (per-layer loop
                      order and blocking, the two fixed-dataflow baselines, the compulsory bound)
5. schedules + sim    ``flexspec.accel.sim.simulate_plan``: conflict-free group schedules
                      (``flexspec.schedule``) and the cycle simulation of the FlexSpec design
6. baselines          the same hardware with one fixed dataflow everywhere and in-order schedules
7. tradeoff curves    bandwidth-storage curve of every spectral layer

and returns a frozen :class:`RunReport`.  Writing the files (``report.json``, ``layers.csv``,
``report.html``) is :func:`flexspec.report.write_report`; ``run(out=...)`` does it too, after
checking that the folder can be written *before* the long computation.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import FORMAT_VERSION, __version__
from .accel import search, sim
from .accel.arch import ARRAY_SPLITS
from .accel.grouping import ScheduleCache, stored_stream_bits
from .accel.kernels import PRUNE_SCOPES, KernelSource, resolve_kernels, user_kernels
from .accel.spatial import MODES, check_supported, conv_only, fused_into, unsupported_rows
from .dataflow import Precision, tradeoff_curve
from .devices import load_device
from .errors import InputFileError, UnknownNameError, UsageError
from .fileio import OutputError, check_output_folder
from .report import write_report
from .spectral.geometry import MAX_FFT_SIZE, half_width
from .spectral.prune import parse_schedule
from .spectral.sparse import SparseNetworkKernels
from .workload.importers import check_model_file, is_model_file, load_model
from .workload.layers import ActivationLayer, AddLayer, ConcatLayer, ConvLayer, LinearLayer, Network, PoolLayer
from .workload.zoo import get_network

DEFAULT_MODEL = "vgg16"
DEFAULT_DEVICE = "u200"
DEFAULT_FFT_SIZE = 8
DEFAULT_DENSITY = 0.25
#: Magnitude-pruning scope of the synthesized VGG16 kernels (``flexspec.accel.kernels.PRUNE_SCOPES``).
DEFAULT_PRUNE_SCOPE = "layer"
FFT_SIZES = range(4, MAX_FFT_SIZE + 1)  # supported FFT sizes N (at least K + 1 for every spectral layer)
DEFAULT_PES = 32
DEFAULT_BANKS = 16
MAX_ARRAYS = 32

STAGES = ("network", "sparse kernels", "design", "dataflow", "schedules + simulation", "baselines",
          "tradeoff curves")


# ------------------------------------------------------------------------------ progress --
class _Progress:
    """One line (or one rich progress bar) per stage.

    ``progress``: True (rich bars on a terminal, plain lines on stderr otherwise), False
    (silent), or a callable ``f(stage: str, event: str, seconds: float)`` with event
    'start' | 'done'."""

    def __init__(self, progress):
        self.callback = progress if callable(progress) else None
        self.enabled = bool(progress)
        self.rich = None
        self.seconds = {}
        if self.enabled and self.callback is None and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.rich = Progress(SpinnerColumn(), TextColumn("{task.description:<28}"), BarColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True), transient=False)
        self.total = len(STAGES)

    def __enter__(self):
        if self.rich is not None:
            self.rich.__enter__()
        return self

    def __exit__(self, *exc):
        if self.rich is not None:
            self.rich.__exit__(*exc)
        return False

    def stage(self, name: str):
        return _Stage(self, name)


class _Stage:
    def __init__(self, owner: _Progress, name: str):
        self.owner, self.name = owner, name

    def __enter__(self):
        o = self.owner
        self.t0 = time.perf_counter()
        k = STAGES.index(self.name) + 1 if self.name in STAGES else 0
        if o.callback:
            o.callback(self.name, "start", 0.0)
        elif o.rich is not None:
            self.task = o.rich.add_task(f"[{k}/{o.total}] {self.name}", total=1)
        elif o.enabled:
            print(f"flexspec: [{k}/{o.total}] {self.name} ...", file=sys.stderr, flush=True)
        return self

    def __exit__(self, kind, exc, tb):
        o = self.owner
        dt = time.perf_counter() - self.t0
        o.seconds[self.name] = dt
        if exc is not None:
            return False
        if o.callback:
            o.callback(self.name, "done", dt)
        elif o.rich is not None:
            o.rich.update(self.task, completed=1)
        elif o.enabled:
            print(f"flexspec:       {self.name} done in {dt:.1f} s", file=sys.stderr, flush=True)
        return False


# ------------------------------------------------------------------------------- checking --
def check_fft_size(fft_size, network=None) -> int:
    if isinstance(fft_size, bool) or not isinstance(fft_size, (int, np.integer)):
        raise UsageError(f"--fft-size must be an integer, got {fft_size!r}")
    n = int(fft_size)
    if n not in FFT_SIZES:
        raise UsageError(f"--fft-size {n} is out of range; supported FFT sizes are {FFT_SIZES.start} to "
                         f"{FFT_SIZES.stop - 1} (8 is the paper's choice)")
    if network is not None:
        for layer in network.spectral_layers:
            if n <= layer.kernel_size:
                raise UsageError(f"--fft-size {n} is too small for the {layer.kernel_size}x{layer.kernel_size} "
                                 f"kernel of layer '{layer.name}'; use at least {layer.kernel_size + 1}")
    return n


def check_density(density) -> float:
    if isinstance(density, bool):
        raise UsageError(f"--density must be a number in (0, 1], got {density!r}")
    try:
        d = float(density)
    except (TypeError, ValueError):
        raise UsageError(f"--density must be a number in (0, 1], got {density!r}") from None
    if not (0.0 < d <= 1.0) or math.isnan(d):
        raise UsageError(f"--density {density!r} is out of range: it is the fraction of spectral kernel entries "
                         f"kept, in (0, 1] (e.g. 0.25)")
    return d


def _check_positive(name: str, value, upper: int | None = None):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"--{name} must be a positive integer, got {value!r}")
    if upper is not None and value > upper:
        raise UsageError(f"--{name} {value} is out of range (at most {upper})")
    return int(value)


def resolve_network(model):
    """A Network from a built-in name (or a Network object, as from ``flexspec.workload.from_torch``)."""

    if isinstance(model, Network):
        network = model
    elif isinstance(model, str):
        network = get_network(model)
    else:
        raise UsageError(f"model must be a built-in network name or a flexspec Network, got {type(model).__name__}")
    if not network.spectral_layers:
        raise UsageError(f"network '{network.name}' has no spectral-eligible convolution (3x3 or larger, stride 1, "
                         f"no groups); there is nothing for the spectral accelerator to run")
    return network


def layer_treatment(network) -> list[dict]:
    """Every layer that does not run as a spectral convolution, and how it is costed
    (``flexspec.accel.spatial``): nothing is left out of the latency."""

    out = []
    for layer in network.layers:
        if isinstance(layer, ConvLayer):
            if layer.spectral_eligible:
                continue
            out.append({"name": layer.name, "type": "conv", "treatment":
                        f"spatial convolution ({layer.why_spatial}): spatial mode of the PE arrays, occupancy from "
                        f"its shape, its own traffic; in the latency"})
        elif isinstance(layer, LinearLayer):
            out.append({"name": layer.name, "type": "linear", "treatment":
                        "fully connected: weights streamed from DRAM (memory-bound at batch 1); in the latency"})
        elif isinstance(layer, PoolLayer):
            out.append({"name": layer.name, "type": f"{layer.kind}pool", "treatment":
                        "pooling: fused into the producer's output stage (0 cycles); its smaller output is stored"})
        elif isinstance(layer, ActivationLayer):
            out.append({"name": layer.name, "type": layer.kind, "treatment":
                        "element-wise: fused into the producer's output stage (0 cycles)"})
        elif isinstance(layer, AddLayer):
            out.append({"name": layer.name, "type": "add", "treatment":
                        "residual add: fused into the output stream, skip operand read back from DRAM unless it "
                        "stays on chip; in the latency and traffic"})
        elif isinstance(layer, ConcatLayer):
            out.append({"name": layer.name, "type": "concat", "treatment":
                        "concatenation: producers write their channel slices in place (0 extra bytes)"})
        else:
            out.append({"name": layer.name, "type": getattr(layer, "op", type(layer).__name__), "treatment":
                        "no cost model: fallback cost accepted (--accept-fallback)"})
    return out


def summarize_treatment(rows: list[dict]) -> list[str]:
    """Short lines grouping :func:`layer_treatment` by treatment (for the terminal and notes)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(r["treatment"], []).append(r["name"])
    lines = []
    for treatment, names in groups.items():
        cut = 3 if treatment.startswith(("element-wise", "pooling")) else 8
        shown = ", ".join(names[:cut]) + (f" (+{len(names) - cut} more)" if len(names) > cut else "")
        lines.append(f"{shown}: {treatment}")
    return lines


# --------------------------------------------------------------------------------- design --
def fit_design(device, fft_size: int, **overrides):
    """The accelerator design for ``device``: :func:`flexspec.accel.search.fit_design`."""
    return search.fit_design(device, fft_size, **overrides)


# --------------------------------------------------------------------------------- report --
@dataclass(frozen=True, eq=False)
class RunReport:
    """Everything one run found, and everything needed to reproduce it (``configuration``)."""

    configuration: dict
    network: object  # flexspec.workload.Network
    kernels: object  # flexspec.accel.kernels.KernelSource
    flexspec: object  # flexspec.accel.sim.NetworkResult
    baselines: dict  # plan name -> NetworkResult
    headline_baseline: str
    unsupported_layers: tuple = ()
    notes: tuple = ()
    keep_probability: dict = field(default_factory=dict)  # layer -> float [N, N//2+1]
    tradeoff: dict = field(default_factory=dict)  # layer -> TradeoffCurve
    stage_seconds: dict = field(default_factory=dict)
    dataflow_only: dict = field(default_factory=dict)  # plan -> NetworkResult (fixed dataflow, optimal schedules)
    spatial: dict = field(default_factory=dict)  # name -> flexspec.accel.spatial.SpatialAccelerator
    fused: dict = field(default_factory=dict)  # layer -> names of the ReLU / pool layers fused into it

    # -- headline figures
    @property
    def baseline(self):
        return self.baselines[self.headline_baseline]

    @property
    def latency_seconds(self) -> float:
        return self.flexspec.seconds

    @property
    def throughput_frames_per_second(self) -> float:
        """Frames per second at batch 1, one frame after the other (1 / end-to-end latency)."""
        return 1.0 / self.latency_seconds if self.latency_seconds else 0.0

    @property
    def speedup(self) -> float:
        return self.baseline.cycles / max(1, self.flexspec.cycles)

    def speedup_split(self) -> dict:
        """baseline -> total / dataflow / scheduler speed-up ratios (``flexspec.accel.sim.speedup_split``)."""

        return sim.speedup_split(self.flexspec, self.dataflow_only, self.baselines)

    def conv_only(self) -> dict:

        return conv_only(self.flexspec)

    def pruning_view(self) -> dict:
        """FlexSpec's convolutions against what a user builds instead on the same board: the ideal
        dense spatial array, and the ideal sparse spatial array at the same density (which is
        what pruning alone gives); the ratios show how much of the gain comes from pruning."""
        if "dense-spatial" not in self.spatial:
            return {}
        dense, sparse = self.spatial["dense-spatial"], self.spatial["sparse-spatial"]
        flex = self.conv_only()["latency_seconds"]
        d_ideal = dense.ideal_conv_cycles / dense.clock_hz
        s_ideal = sparse.ideal_conv_cycles / sparse.clock_hz
        return {"flexspec_conv_latency_seconds": flex,
                "dense_spatial_conv_latency_seconds": dense.conv_latency_seconds,
                "ideal_dense_spatial_conv_latency_seconds": d_ideal,
                "sparse_spatial_conv_latency_seconds": sparse.conv_latency_seconds,
                "ideal_sparse_spatial_conv_latency_seconds": s_ideal,
                "speedup_over_ideal_dense_ratio": d_ideal / flex if flex else None,
                "pruning_share_ratio": d_ideal / s_ideal if s_ideal else None,
                "speedup_over_ideal_sparse_ratio": s_ideal / flex if flex else None}

    @property
    def traffic_reduction(self) -> float:
        b = self.baseline.traffic_bytes
        return 1 - self.flexspec.traffic_bytes / b if b else 0.0

    @property
    def dsp_efficiency(self) -> float:
        return self.flexspec.dsp_efficiency

    @property
    def memory_bound_layers(self) -> list[str]:
        return [r.name for r in self.flexspec.layers if r.memory_bound]

    @property
    def weights(self) -> str:
        """'real', 'synthesized', 'random', "user's own (trained)" or 'user file, real' / 'user file, not real'."""
        k = self.kernels
        if k.kind == "user":
            if k.pruning:
                return "user's own (trained)"
            return "user file, " + ("real" if k.is_real else "not real")
        return "real" if k.is_real else k.kind

    def layer_rows(self) -> list[dict]:
        """One dict per simulated layer, units in every key."""

        base = {r.name: r for r in self.baseline.layers}
        rows = []
        for r in self.flexspec.layers:
            b = base.get(r.name)
            kp = self.keep_probability.get(r.name)
            rows.append({
                "layer": r.name, "kind": r.kind, "mode": MODES.get(r.kind, r.kind),
                "fused_layers": list(self.fused.get(r.name, [])), "dataflow": r.dataflow, "loop_order": r.order,
                "cout_block_channels": r.cout_block, "cin_block_channels": r.cin_block,
                "tile_block_tiles": r.tile_block, "input_link": r.input_link, "output_link": r.output_link,
                "cycles": r.cycles, "latency_seconds": r.seconds,
                "compute_cycles": r.compute_cycles, "bank_conflict_stall_cycles": r.bank_conflict_cycles,
                "memory_stall_cycles": r.memory_stall_cycles, "fft_stall_cycles": r.fft_stall_cycles,
                "fill_cycles": r.fill_cycles,
                "traffic_bytes": r.traffic_bytes, "kernels_bytes": r.kernels_bytes,
                "stored_kernel_bytes": r.stored_kernel_bytes, "inputs_bytes": r.inputs_bytes,
                "outputs_bytes": r.outputs_bytes, "psums_bytes": r.psums_bytes,
                "lower_bound_bytes": r.lower_bound_bytes,
                "baseline_cycles": b.cycles if b else None,
                "baseline_latency_seconds": b.seconds if b else None,
                "baseline_traffic_bytes": b.traffic_bytes if b else None,
                "speedup_ratio": (b.cycles / max(1, r.cycles)) if b else None,
                "traffic_reduction_fraction": (1 - r.traffic_bytes / b.traffic_bytes) if b and b.traffic_bytes
                else None,
                "dsp_efficiency_fraction": r.dsp_efficiency,
                "useful_complex_macs": r.useful_macs, "roofline_cycles": r.roofline_cycles,
                "achieved_over_roofline_ratio": r.achieved_over_roofline,
                "estimate_cycles": r.estimate_cycles, "bound": r.bound, "memory_bound": bool(r.memory_bound),
                "bound_reason": bound_reason(r), "cost_note": r.bank_load.get("note") if r.kind != "spectral" else None,
                "kernel_density_fraction": float(kp.mean()) if kp is not None else None,
                "forward_ffts_count": r.forward_ffts, "inverse_ffts_count": r.inverse_ffts,
            })
        return rows

    def summary(self) -> dict:
        f = self.flexspec
        conv = self.conv_only()
        bconv = self.baseline_conv_only()
        return {
            "network": self.network.name, "device": f.device,
            "latency_seconds": f.seconds, "cycles": f.cycles, "clock_hz": f.clock_hz,
            "throughput_frames_per_second": self.throughput_frames_per_second,
            "latency_scope": f"end to end: all {len(f.layers)} costed layers "
                             f"({sum(r.kind in ('spectral', 'spatial') for r in f.layers)} conv, "
                             f"{sum(r.kind == 'fc' for r in f.layers)} fc, "
                             f"{sum(r.kind in ('add', 'concat', 'fallback') for r in f.layers)} other), "
                             f"ReLU/pooling fused",
            "conv_latency_seconds": conv["latency_seconds"], "conv_cycles": conv["cycles"],
            "conv_traffic_bytes": conv["traffic_bytes"],
            "baseline_conv_latency_seconds": bconv["latency_seconds"],
            "conv_speedup_ratio": bconv["cycles"] / max(1, conv["cycles"]),
            "speedup_split": self.speedup_split(),
            "spatial_accelerators": {k: v.to_dict() for k, v in self.spatial.items()},
            "pruning_view": self.pruning_view(),
            "unsupported_layers_count": len(self.unsupported_layers),
            # every resource of the calibrated model: used / available after the shell and DRAM reserve
            "resources_used_available": f.resources.table(),
            "binding_resource": f.resources.binding,
            "clock_source": self.configuration["device_profile"].get("sources", {}).get("clock_hz"),
            "baseline": self.headline_baseline,
            "baseline_latency_seconds": self.baseline.seconds,
            "speedup_ratio": self.speedup,
            "traffic_bytes": f.traffic_bytes, "baseline_traffic_bytes": self.baseline.traffic_bytes,
            "traffic_reduction_fraction": self.traffic_reduction,
            # what the kernel bytes count: 'stream' = the schedule stream the generated PE arrays store
            "kernel_storage": f.kernel_storage, "stored_kernel_bytes": f.stored_kernel_bytes,
            "lower_bound_bytes": sum(r.lower_bound_bytes for r in f.layers),
            "dsp_efficiency_fraction": f.dsp_efficiency,
            "roofline_cycles": f.roofline_cycles,
            "memory_bound_layers": self.memory_bound_layers,
            "weights": self.weights, "weights_is_real": bool(self.kernels.is_real),
            "weights_provenance": self.kernels.provenance,
            "weights_sha256": self.kernels.sha256, "weights_pruning": self.kernels.pruning,
            "kernel_density_fraction": float(self.kernels.density),
            "baselines": {name: {"latency_seconds": b.seconds, "cycles": b.cycles, "traffic_bytes": b.traffic_bytes,
                                 "speedup_ratio": b.cycles / max(1, f.cycles),
                                 "traffic_reduction_fraction": 1 - f.traffic_bytes / b.traffic_bytes
                                 if b.traffic_bytes else 0.0,
                                 "dsp_efficiency_fraction": b.dsp_efficiency}
                          for name, b in self.baselines.items()},
        }

    def baseline_conv_only(self) -> dict:

        return conv_only(self.baseline)

    def to_dict(self) -> dict:
        f = self.flexspec
        return {
            "format_version": FORMAT_VERSION,
            "flexspec_version": __version__,
            "configuration": self.configuration,
            "summary": self.summary(),
            "layers": self.layer_rows(),
            "kernels": self.kernels.to_dict(),
            "design": {"accelerator": f.config.to_dict(), "resources": f.resources.to_dict()},
            "unsupported_layers": list(self.unsupported_layers),
            "notes": list(self.notes),
            "baseline_layers": {name: [{"layer": r.name, "dataflow": r.dataflow, "cycles": r.cycles,
                                        "latency_seconds": r.seconds, "traffic_bytes": r.traffic_bytes,
                                        "compute_cycles": r.compute_cycles,
                                        "bank_conflict_stall_cycles": r.bank_conflict_cycles,
                                        "memory_stall_cycles": r.memory_stall_cycles,
                                        "fft_stall_cycles": r.fft_stall_cycles, "fill_cycles": r.fill_cycles}
                                       for r in b.layers] for name, b in self.baselines.items()},
            "bank_load": {r.name: {"reads_per_bank_count": r.bank_load.get("reads_per_bank", []),
                                   "bank_cycles_by_reads_count": r.bank_load.get("bank_cycles_by_reads", [])}
                          for r in f.layers if r.bank_load},
            "kept_frequency_probability": {k: np.asarray(v).round(6).tolist()
                                           for k, v in self.keep_probability.items()},
            "tradeoff": {k: {"capacity_bytes": np.asarray(c.capacity_bytes).tolist(),
                             "traffic_bytes": np.asarray(c.traffic_bytes).tolist(),
                             "bound_bytes": float(c.bound_bytes), "dataflows": list(c.dataflows),
                             "kernel_storage": c.kernel_storage}
                         for k, c in self.tradeoff.items()},
            "stage_seconds": dict(self.stage_seconds),
        }


def bound_reason(r) -> str:
    """Why a layer takes the time it takes, from its own time split (compute / memory / FFT)."""
    c = max(1, r.cycles)
    if r.kind == "spectral":
        parts = {"compute": r.compute_cycles + r.bank_conflict_cycles, "memory": r.memory_stall_cycles,
                 "FFT": r.fft_stall_cycles, "fill": r.fill_cycles}
        top = max(parts, key=parts.get)
        what = {"compute": "PE arrays busy", "memory": "waiting for DRAM", "FFT": "waiting for the (I)FFT engines",
                "fill": "start-up / drain"}[top]
        return f"{top}-bound: {100 * parts[top] / c:.0f}% of its cycles {what}"
    if r.kind in ("spatial", "fc"):
        if r.memory_bound:
            return f"memory-bound: DRAM traffic {r.traffic_bytes / 1e6:.2f} MB takes longer than its compute"
        return f"compute-bound: PE occupancy {100 * r.dsp_efficiency:.0f}%"
    if r.kind == "add":
        return "memory-bound: skip operand read back" if r.memory_bound else "on-chip: skip operand resident"
    return "memory-bound (fallback cost)" if r.kind == "fallback" else "in-place: no cost"


# ------------------------------------------------------------------------------------ run --
def _keep_probability(masks: dict, fft_size: int) -> dict:

    return {name: m.reshape(-1, m.shape[-1]).mean(axis=0).reshape(fft_size, half_width(fft_size))
            for name, m in masks.items()}


def check_out(out):
    """``out`` must be a folder path that can be created and written: checked by creating and
    removing a probe folder in its nearest existing parent (permission bits alone accept /proc)."""

    if out is None:
        return None
    if not isinstance(out, (str, os.PathLike)) or isinstance(out, bytes):
        raise UsageError(f"out must be a folder path (str or os.PathLike), got {type(out).__name__} {out!r}")
    path = check_output_folder(out)
    base = path
    while not base.exists():
        base = base.parent
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".flexspec-probe-", dir=base))
    except OSError as exc:
        raise OutputError(f"cannot write in '{base}' ({exc.strerror or exc}); choose another --out") from None
    return path


def check_file_out(path, option: str) -> None:
    """A single output file: not a folder, in a folder that exists (no command creates folders
    for a single file, as 'prune' and 'schedule' do not)."""

    if os.path.isdir(path):
        raise UsageError(f"{option} '{path}' is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    check_output_folder(folder)  # a file in the way, or no permission: OutputError (runtime, exit 1)
    if not os.path.isdir(folder):
        raise UsageError(f"{option} '{path}': folder '{os.path.dirname(path) or '.'}' does not exist; create it first")


def check_density_or_schedule(density):
    """A density in (0, 1], or a per-layer schedule (mapping or 'name=0.5,default=0.25')."""

    if isinstance(density, str) and "=" in density:
        density = parse_schedule(density)
    if isinstance(density, Mapping):
        return {str(k): check_density(v) for k, v in density.items()}
    return check_density(density)


def _check_arguments(*, weights, density, prune_scope, fft_size, arrays, pes, banks, seed, out, fc_density):
    """Every check that needs no long computation, before any."""

    if weights is not None and density is not None:
        raise UsageError("give either --density (prune / synthesize at that density) or --weights FILE "
                         "(kernels already pruned), not both")
    if density is not None:
        density = check_density_or_schedule(density)
    if fc_density is not None:
        fc_density = check_density(fc_density)
    if prune_scope is not None and prune_scope not in PRUNE_SCOPES:
        raise UnknownNameError("pruning scope", str(prune_scope), PRUNE_SCOPES)
    if prune_scope is not None and weights is not None:
        raise UsageError("--prune-scope applies to kernels pruned here, not to --weights FILE (already pruned)")
    if fft_size is not None:
        fft_size = check_fft_size(fft_size)
    arrays = _check_positive("arrays", arrays, MAX_ARRAYS * 8)
    pes = _check_positive("pes", pes, 256)
    banks = _check_positive("banks", banks)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {seed!r}")
    check_out(out)
    return density, fft_size, arrays, pes, banks, fc_density


def stage_network(model, accept_fallback: bool = False):
    """network: a built-in name, a Network, or a model file (.onnx, .pt2); unsupported layers
    stop here unless ``accept_fallback``."""

    if isinstance(model, str) and is_model_file(model) or hasattr(model, "__fspath__"):
        model = load_model(model)
    network = resolve_network(model)
    check_supported(network, accept_fallback)
    return network


def stage_kernels(network, *, weights, fft_size, density, seed, prune_scope, notes: list):
    """sparse kernels: (masks, N, KernelSource, SparseNetworkKernels or None) -- a kernels file,
    the user's own weights, the shipped / synthesized ones, or labelled random masks (None)."""

    if isinstance(weights, SparseNetworkKernels) and weights.network == network.name:
        # kernels made in Python for this network (e.g. workload.finetune.admm_finetune): the user's own
        n = check_fft_size(int(weights.fft_size), network)
        if fft_size is not None and fft_size != n:
            raise UsageError(f"fft_size {fft_size} differs from the N={n} of the given kernels; leave it out")
        masks, _, _ = resolve_kernels(network, weights, fft_size=n)
        sha = (network.source or {}).get("sha256")
        src = KernelSource("user", weights.provenance, bool(weights.is_real), float(weights.density), n, None,
                           (network.source or {}).get("path"), sha,
                           f"{weights.method or 'given'} pruning, target density {weights.target_density}")
        return masks, n, src, weights
    if weights is not None:
        net_k = weights if isinstance(weights, SparseNetworkKernels) else SparseNetworkKernels.load(weights)
        where = weights if not isinstance(weights, SparseNetworkKernels) else "the given kernels"
        if net_k.network != network.name:
            raise InputFileError(where, f"holds kernels of network '{net_k.network}', not '{network.name}'", "network")
        if fft_size is not None and fft_size != net_k.fft_size:
            raise UsageError(f"--fft-size {fft_size} differs from the N={net_k.fft_size} of the kernels in "
                             f"{where}; leave --fft-size out")
        n = check_fft_size(int(net_k.fft_size), network)
        masks, _, src = resolve_kernels(network, weights, fft_size=n)
        return masks, n, src, net_k
    n = check_fft_size(fft_size if fft_size is not None else DEFAULT_FFT_SIZE, network)
    d = density if density is not None else DEFAULT_DENSITY
    scope = prune_scope or DEFAULT_PRUNE_SCOPE
    if network.weights and all(lay.name in network.weights for lay in network.spectral_layers):
        net_k, src = user_kernels(network, n, d, scope)
        return {name: ssk.mask() for name, ssk in net_k.layers.items()}, n, src, net_k
    if isinstance(d, Mapping):
        raise UsageError("a per-layer density schedule needs the model's own weights (a model file or "
                         "from_torch); built-in networks take one --density")
    masks, net_k, src = resolve_kernels(network, None, fft_size=n, density=d, seed=seed, prune_scope=scope)
    if src.kind == "random":
        notes.append(f"no real or synthesized kernels exist for '{network.name}': seeded random masks "
                     f"(density {src.density}, seed {seed}) stand in for them")
    return masks, n, src, net_k


def stage_precision(config, net_k, src) -> Precision:
    """The word widths the run counts: the resolved design's (:func:`flexspec.accel.sim.precision_of`).

    Kernels stored at other widths (``value_bits`` / ``index_bits`` of a kernels file) are refused:
    the design's PE arrays hold ``data_bits`` values, so the file's widths would be neither what it
    says nor what the hardware moves."""
    prec = sim.precision_of(config)
    if net_k is None:
        return prec
    design = (prec.kernel_format.value_bits, prec.kernel_format.index_bits_for(config.fft_size))
    stored = sorted({(int(k.value_bits), int(k.index_bits)) for k in net_k.layers.values()})
    if stored != [design]:
        where = src.path or f"the {src.kind} kernels"
        widths = ", ".join(f"{v}-bit values / {i}-bit indices" for v, i in stored)
        raise UsageError(f"the kernels of {where} are stored at {widths}; the design stores kernels at "
                         f"{design[0]}-bit values / {design[1]}-bit indices (data_bits {config.data_bits}, "
                         f"N={config.fft_size}): re-store the kernels at the design's widths")
    return prec


def stage_dataflow(network, masks, config, dev, res, precision: Precision):
    """dataflow: the per-layer plans of the design, kernels counted as packed entries (the start
    of each design's stored-stream analysis, :func:`flexspec.accel.sim.design_plan`)."""

    return sim.analyze(network, masks, config, dev, res, precision)


def stage_tradeoff(network, masks, n, config, precision: Precision | None = None, flexspec=None,
                   schedules: ScheduleCache | None = None) -> dict:
    """tradeoff curves: the bandwidth-storage curve of every spectral layer (``precision``:
    default the design's, :func:`stage_precision`).  With ``flexspec`` (its NetworkResult, kernels
    counted as the stored stream) each layer's kernels count as the schedule stream of the
    grouping at the cout block that result uses (:func:`flexspec.accel.grouping.stored_stream_bits`);
    without it, as packed entries."""

    prec = precision or sim.precision_of(config)
    stored = {}
    if flexspec is not None and flexspec.kernel_storage == "stream":
        cache = schedules if schedules is not None else ScheduleCache()
        stored = {r.name: stored_stream_bits(masks[r.name], config, r.cout_block, cache)
                  for r in flexspec.layers if r.kind == "spectral"}
    return {lay.name: tradeoff_curve(lay, masks[lay.name], n, prec, stored_kernel_bits=stored.get(lay.name),
                                     kernel_storage="stream")
            for lay in network.spectral_layers}


def bank_map_notes(net_k, config, layers_with_maps: int) -> list[str]:
    """What the run does with kernels pruned for a bank map (``SparseNetworkKernels.bank_maps``)."""
    if not layers_with_maps:
        return []
    if config.banks == net_k.bank_map_banks:
        return [f"bank-friendly kernels: {layers_with_maps} layers scheduled with the bank map they were pruned for "
                f"({net_k.bank_map_banks} banks)"]
    return [f"the kernels were pruned for a bank map of {net_k.bank_map_banks} banks; this design has {config.banks}, "
            f"so the scheduler builds its own map (--banks {net_k.bank_map_banks} uses theirs)"]


def run(model=DEFAULT_MODEL, device=DEFAULT_DEVICE, fft_size: int | None = None, density=None,
        weights=None, out=None, seed: int = 0, progress=True, *, arrays: int | None = None,
        pes: int | None = None, banks: int | None = None, tradeoff: bool = True, html: bool = True,
        prune_scope: str | None = None, accept_fallback: bool = False, fc_density: float | None = None,
        array_split: str | None = None) -> RunReport:
    """Run the whole pipeline and return the :class:`RunReport`; with ``out``, also write
    ``report.json``, ``layers.csv`` and (``html=True``) ``report.html`` there.

    ``model``: a built-in network name (``flexspec.workload.zoo.NETWORKS``), a ``Network`` (e.g.
    ``flexspec.workload.from_torch(module, (C, H, W))``, which carries the module's weights), or a
    model file (.onnx, .pt2).  A network with its own weights runs *its* kernels, transformed and
    pruned here (labelled as the user's, with the file's sha256).  ``device``: a device name or
    profile YAML path.  ``fft_size``: N (default 8, or the weights file's).  ``density``: the
    fraction of spectral entries kept (default 0.25), or for a model with weights a per-layer
    schedule (mapping or 'conv1=0.5,default=0.25'); ``fmnist_vgg`` ships 0.5/0.25/0.125 only.
    ``weights``: a ``SparseNetworkKernels`` (.npz path or object; exclusive with ``density``).
    ``arrays``/``pes``/``banks``: fix the design (default: see :func:`fit_design`).  ``progress``:
    True, False, or a callable ``(stage, event, seconds)``.  ``prune_scope``: 'layer' or 'kernel'.
    ``accept_fallback``: cost layers without a model as ``flexspec.accel.spatial.FALLBACK_COST``
    instead of stopping.  ``fc_density``: prune the FC layers' streamed weights to this density.
    ``array_split``: how the arrays share a layer (``flexspec.accel.arch.ARRAY_SPLITS``; default
    tiles and kernel groups).
    """

    t_start = time.perf_counter()
    density, fft_size, arrays, pes, banks, fc_density = _check_arguments(
        weights=weights, density=density, prune_scope=prune_scope, fft_size=fft_size, arrays=arrays, pes=pes,
        banks=banks, seed=seed, out=out, fc_density=fc_density)
    if array_split is not None and array_split not in ARRAY_SPLITS:
        raise UsageError(f"--array-split must be one of {', '.join(ARRAY_SPLITS)}, got {array_split!r}")
    dev = load_device(device)
    if isinstance(model, str) and not is_model_file(model):
        get_network(model)  # an unknown name or file fails before the first progress line
    elif isinstance(model, str) or hasattr(model, "__fspath__"):
        check_model_file(model)
    notes: list[str] = []
    with _Progress(progress) as prog:
        with prog.stage("network"):
            network = stage_network(model, accept_fallback)
            treatment = layer_treatment(network)
        with prog.stage("sparse kernels"):
            masks, n, src, net_k = stage_kernels(network, weights=weights, fft_size=fft_size, density=density, seed=seed,
                                          prune_scope=prune_scope, notes=notes)
            keep = _keep_probability(masks, n)
        with prog.stage("design"):
            config, res = fit_design(dev, n, network=network, masks=masks, arrays=arrays, pes=pes, banks=banks,
                                     array_split=array_split)
            prec = stage_precision(config, net_k, src)

        with prog.stage("dataflow"):
            nd = stage_dataflow(network, masks, config, dev, res, prec)
        schedules = ScheduleCache()
        notes += bank_map_notes(net_k, config, schedules.use_bank_maps(net_k))
        cmp = sim.simulate_designs(network, masks, config, dev, res, src, nd=nd, whole_network=True,
                                   fc_density=fc_density or 1.0, accept_fallback=accept_fallback, stage=prog.stage,
                                   precision=prec, schedules=schedules)
        notes += list(cmp.notes)
        curves = {}
        if tradeoff:
            with prog.stage("tradeoff curves"):
                curves = stage_tradeoff(network, masks, n, config, prec, cmp.flexspec, schedules)

    headline = sim.HEADLINE_BASELINE if sim.HEADLINE_BASELINE in cmp.baselines else next(iter(cmp.baselines))
    notes = summarize_treatment(treatment) + list(network.notes) + notes
    configuration = {
        "flexspec_version": __version__,
        "format_version": FORMAT_VERSION,
        "model": network.name,
        "model_source": ("built-in" if isinstance(model, str) and not network.source else
                         network.source.get("format", "Network object (Python API)")),
        "model_path": network.source.get("path"), "model_sha256": network.source.get("sha256"),
        "input_shape": list(network.input_shape),
        "device": dev.name,
        "device_profile": dev.to_dict(),
        "device_profile_path": dev.path,
        "fft_size": n,
        "density_requested": density,
        "density_used_fraction": float(src.density),
        "fc_density_requested": fc_density,
        "weights_path": str(weights) if weights is not None and not hasattr(weights, "layers") else None,
        "seed": int(seed),
        "prune_scope_requested": prune_scope,
        "accept_fallback": bool(accept_fallback),
        "accelerator": config.to_dict(),
        "arrays_requested": arrays, "pes_requested": pes, "banks_requested": banks,
        "schedule_method": "optimal", "baseline_schedule_method": "inorder",
        "python": platform.python_version(), "numpy": np.__version__,
        "reproduce": _reproduce_command(network.source.get("path") or (network.name if isinstance(model, str)
                                                                       else None),
                                        dev, n, density, weights, seed, arrays, pes, banks, prune_scope,
                                        accept_fallback, fc_density),
    }
    report = RunReport(configuration, network, src, cmp.flexspec, cmp.baselines, headline,
                       tuple(unsupported_rows(network)), tuple(notes), keep, curves,
                       {**prog.seconds, "total": time.perf_counter() - t_start}, cmp.dataflow_only, cmp.spatial,
                       fused_into(network))
    if out is not None:

        write_report(report, out, html=html)
    return report


def _reproduce_command(model, dev, n, density, weights, seed, arrays, pes, banks, prune_scope=None,
                       accept_fallback=False, fc_density=None) -> str | None:
    if model is None or (weights is not None and hasattr(weights, "layers")):
        return None
    if isinstance(density, dict):
        density = ",".join(f"{k}={v:g}" for k, v in density.items())
    parts = ["flexspec", "run", model, "--device", dev.path if dev.path and "/devices/" not in dev.path else dev.name,
             "--fft-size", str(n), "--seed", str(seed)]
    if weights is not None:
        parts += ["--weights", str(weights)]
    elif density is not None:
        parts += ["--density", density if isinstance(density, str) else repr(density)]
    for k, v in (("arrays", arrays), ("pes", pes), ("banks", banks), ("prune-scope", prune_scope),
                 ("fc-density", fc_density)):
        if v is not None:
            parts += [f"--{k}", str(v)]
    if accept_fallback:
        parts.append("--accept-fallback")
    return " ".join(parts)
