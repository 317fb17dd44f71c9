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
import platform
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from . import FORMAT_VERSION, __version__
from .errors import InputFileError, UsageError
from .spectral.geometry import MAX_FFT_SIZE

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
    from .workload.layers import Network
    from .workload.zoo import get_network

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
    """Every layer the spectral accelerator does not run as a spectral convolution, and what
    happens to it."""
    from .workload.layers import ActivationLayer, AddLayer, ConvLayer, LinearLayer, PoolLayer

    out = []
    for layer in network.layers:
        if isinstance(layer, ConvLayer):
            if layer.spectral_eligible:
                continue
            out.append({"name": layer.name, "type": "conv", "treatment":
                        f"spatial convolution ({layer.why_spatial}): modelled as dense spatial work on the PE "
                        f"DSPs with its traffic (roofline), included in the latency"})
        elif isinstance(layer, LinearLayer):
            out.append({"name": layer.name, "type": "linear", "treatment":
                        "fully connected: not run by the spectral accelerator, excluded from latency and traffic"})
        elif isinstance(layer, PoolLayer):
            out.append({"name": layer.name, "type": f"{layer.kind}pool", "treatment":
                        "pooling: fused into the producer's output stream (0 cycles); its smaller output is "
                        "what is stored"})
        elif isinstance(layer, (ActivationLayer, AddLayer)):
            kind = "add" if isinstance(layer, AddLayer) else layer.kind
            out.append({"name": layer.name, "type": kind, "treatment":
                        "element-wise: fused into the output stream (0 cycles)"})
        else:  # pragma: no cover - a layer type the workload package adds later
            out.append({"name": getattr(layer, "name", "?"), "type": type(layer).__name__,
                        "treatment": "not modelled: excluded from latency and traffic"})
    return out


def summarize_treatment(rows: list[dict]) -> list[str]:
    """Short lines grouping :func:`layer_treatment` by treatment (for the terminal and notes)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(r["treatment"], []).append(r["name"])
    lines = []
    for treatment, names in groups.items():
        cut = 3 if treatment.startswith("element-wise") else 8
        shown = ", ".join(names[:cut]) + (f" (+{len(names) - cut} more)" if len(names) > cut else "")
        lines.append(f"{shown}: {treatment}")
    return lines


# --------------------------------------------------------------------------------- design --
def fit_design(device, fft_size: int, *, arrays=None, pes=None, banks=None, ports: int = 2):
    """The accelerator configuration for ``device``.

    Unless ``arrays`` is fixed, the first configuration of the design search's space
    (:func:`flexspec.accel.search.candidates`: as many arrays of P PEs as the DSPs allow next to the
    FFT engines, B x R = 20 x 2 banks, no broadcast) with P = ``pes`` (default 32) and, if given,
    ``banks``; it is not simulated against the others (``flexspec simulate`` searches the whole
    space; on VGG16/U200 the two differ by under 1%).  Otherwise, or when nothing in that space
    fits (e.g. N = 4 with fewer than 20 frequencies), P PEs per array, B banks (default min(16, F))
    and exactly ``arrays`` arrays, or the most arrays up to 32 that fit."""
    from .accel.arch import AcceleratorConfig, resources
    from .accel.search import BANK_PORTS, candidates
    from .errors import DoesNotFitError
    from .spectral.geometry import num_frequencies

    f = num_frequencies(fft_size)
    pes = pes or DEFAULT_PES
    if banks is not None and banks > f:
        raise UsageError(f"--banks {banks} exceeds the {f} frequencies of an N={fft_size} tile; use at most {f}")
    if not arrays:
        space = candidates(device, fft_size, pes=(pes,), bank_ports=((banks, ports),) if banks else BANK_PORTS,
                           broadcast=(False,))
        if space:
            return space[0], resources(space[0], device)
    banks = banks or min(DEFAULT_BANKS, f)
    engines = 16
    if arrays:
        cfg = AcceleratorConfig(arrays=arrays, pes=pes, banks=banks, ports=ports, fft_engines=engines,
                                ifft_engines=engines, fft_size=fft_size)
        return cfg, resources(cfg, device)
    last = None
    for e in (16, 8, 4):
        for a in range(MAX_ARRAYS, 0, -1):
            cfg = AcceleratorConfig(arrays=a, pes=pes, banks=banks, ports=ports, fft_engines=e, ifft_engines=e,
                                    fft_size=fft_size)
            try:
                return cfg, resources(cfg, device)
            except DoesNotFitError as exc:
                last = exc
    raise DoesNotFitError(f"no design with P={pes} PEs per array fits device '{device.name}': {last}")


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

    # -- headline figures
    @property
    def baseline(self):
        return self.baselines[self.headline_baseline]

    @property
    def latency_seconds(self) -> float:
        return self.flexspec.seconds

    @property
    def speedup(self) -> float:
        return self.baseline.cycles / max(1, self.flexspec.cycles)

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
        """'real', 'synthesized', 'random' or 'user (real)' / 'user (synthesized)'."""
        k = self.kernels
        if k.kind == "user":
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
                "layer": r.name, "kind": r.kind, "dataflow": r.dataflow, "loop_order": r.order,
                "cout_block_channels": r.cout_block, "cin_block_channels": r.cin_block,
                "tile_block_tiles": r.tile_block, "input_link": r.input_link, "output_link": r.output_link,
                "cycles": r.cycles, "latency_seconds": r.seconds,
                "compute_cycles": r.compute_cycles, "bank_conflict_stall_cycles": r.bank_conflict_cycles,
                "memory_stall_cycles": r.memory_stall_cycles, "fft_stall_cycles": r.fft_stall_cycles,
                "fill_cycles": r.fill_cycles,
                "traffic_bytes": r.traffic_bytes, "kernels_bytes": r.kernels_bytes, "inputs_bytes": r.inputs_bytes,
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
                "kernel_density_fraction": float(kp.mean()) if kp is not None else None,
                "forward_ffts_count": r.forward_ffts, "inverse_ffts_count": r.inverse_ffts,
            })
        return rows

    def summary(self) -> dict:
        f = self.flexspec
        return {
            "network": self.network.name, "device": f.device,
            "latency_seconds": f.seconds, "cycles": f.cycles, "clock_hz": f.clock_hz,
            "baseline": self.headline_baseline,
            "baseline_latency_seconds": self.baseline.seconds,
            "speedup_ratio": self.speedup,
            "traffic_bytes": f.traffic_bytes, "baseline_traffic_bytes": self.baseline.traffic_bytes,
            "traffic_reduction_fraction": self.traffic_reduction,
            "lower_bound_bytes": sum(r.lower_bound_bytes for r in f.layers),
            "dsp_efficiency_fraction": f.dsp_efficiency,
            "roofline_cycles": f.roofline_cycles,
            "memory_bound_layers": self.memory_bound_layers,
            "weights": self.weights, "weights_is_real": bool(self.kernels.is_real),
            "weights_provenance": self.kernels.provenance,
            "kernel_density_fraction": float(self.kernels.density),
            "baselines": {name: {"latency_seconds": b.seconds, "cycles": b.cycles, "traffic_bytes": b.traffic_bytes,
                                 "speedup_ratio": b.cycles / max(1, f.cycles),
                                 "traffic_reduction_fraction": 1 - f.traffic_bytes / b.traffic_bytes
                                 if b.traffic_bytes else 0.0,
                                 "dsp_efficiency_fraction": b.dsp_efficiency}
                          for name, b in self.baselines.items()},
        }

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
                             "bound_bytes": float(c.bound_bytes), "dataflows": list(c.dataflows)}
                         for k, c in self.tradeoff.items()},
            "stage_seconds": dict(self.stage_seconds),
        }


# ------------------------------------------------------------------------------------ run --
def _keep_probability(masks: dict, fft_size: int) -> dict:
    from .spectral.geometry import half_width

    return {name: m.reshape(-1, m.shape[-1]).mean(axis=0).reshape(fft_size, half_width(fft_size))
            for name, m in masks.items()}


def run(model=DEFAULT_MODEL, device=DEFAULT_DEVICE, fft_size: int | None = None, density: float | None = None,
        weights=None, out=None, seed: int = 0, progress=True, *, arrays: int | None = None,
        pes: int | None = None, banks: int | None = None, tradeoff: bool = True, html: bool = True,
        prune_scope: str | None = None) -> RunReport:
    """Run the whole pipeline and return the :class:`RunReport`; with ``out``, also write
    ``report.json``, ``layers.csv`` and (``html=True``) ``report.html`` there.

    ``model``: a built-in network name (``flexspec.workload.zoo.NETWORKS``) or a ``Network``
    (e.g. ``flexspec.workload.from_torch(module, (C, H, W))``).  ``device``: a device name or
    profile YAML path.  ``fft_size``: N (default 8, or the weights file's).  ``density``: the
    fraction of spectral entries kept (default 0.25; for ``fmnist_vgg`` the nearest shipped
    pruning).  ``weights``: a ``SparseNetworkKernels`` .npz (exclusive with ``density``).
    ``arrays``/``pes``/``banks``: fix the design (default: P=32, B=min(16, F), the most arrays
    that fit).  ``progress``: True, False, or a callable ``(stage, event, seconds)``.
    ``prune_scope``: 'layer' or 'kernel', how synthesized kernels are magnitude-pruned (default
    DEFAULT_PRUNE_SCOPE; 'kernel' keeps round(density*F) entries in every kernel: equal PE loads).
    """
    from .accel.devices import load_device

    t_start = time.perf_counter()
    # --- every check that needs no long computation comes first
    if weights is not None and density is not None:
        raise UsageError("give either --density (prune / synthesize at that density) or --weights FILE "
                         "(kernels already pruned), not both")
    if density is not None:
        density = check_density(density)
    from .accel.kernels import PRUNE_SCOPES

    if prune_scope is not None and prune_scope not in PRUNE_SCOPES:
        from .errors import UnknownNameError

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
    if out is not None:
        from .fileio import check_output_folder

        check_output_folder(out)
    dev = load_device(device)
    network = resolve_network(model)

    notes: list[str] = []
    with _Progress(progress) as prog:
        with prog.stage("network"):
            treatment = layer_treatment(network)

        with prog.stage("sparse kernels"):
            from .accel.kernels import resolve_kernels

            if weights is not None:
                from .spectral.sparse import SparseNetworkKernels

                net_k = SparseNetworkKernels.load(weights)
                if net_k.network != network.name:
                    raise InputFileError(weights, f"holds kernels of network '{net_k.network}', not "
                                                  f"'{network.name}'", "network")
                if fft_size is not None and fft_size != net_k.fft_size:
                    raise UsageError(f"--fft-size {fft_size} differs from the N={net_k.fft_size} of the kernels in "
                                     f"{weights}; leave --fft-size out")
                n = check_fft_size(int(net_k.fft_size), network)
                masks, _, src = resolve_kernels(network, weights, fft_size=n)
            else:
                n = check_fft_size(fft_size if fft_size is not None else DEFAULT_FFT_SIZE, network)
                d = density if density is not None else DEFAULT_DENSITY
                if network.name == "fmnist_vgg":
                    from .spectral import real_model as rm

                    shipped = min(rm.SHIPPED_DENSITIES, key=lambda x: abs(x - d))
                    if density is not None and abs(shipped - d) > 1e-9:
                        notes.append(f"fmnist_vgg ships trained kernels pruned to densities "
                                     f"{', '.join(map(str, rm.SHIPPED_DENSITIES))}; asked {d}, used {shipped}")
                masks, _, src = resolve_kernels(network, None, fft_size=n, density=d, seed=seed,
                                                prune_scope=prune_scope or DEFAULT_PRUNE_SCOPE)
            if src.kind == "random":
                notes.append(f"no real or synthesized kernels exist for '{network.name}': seeded random masks "
                             f"(density {src.density}, seed {seed}) stand in for them")
            elif not src.is_real:
                notes.append(f"weights are synthesized, not trained: {src.provenance}")
            keep = _keep_probability(masks, n)

        from .accel import sim
        from .dataflow.model import LayerModel

        with prog.stage("design"):
            config, res = fit_design(dev, n, arrays=arrays, pes=pes, banks=banks)

        with prog.stage("dataflow"):
            nd = sim.analyze(network, masks, config, dev, res)
            prec = sim.precision_of(config)
            models = {lay.name: LayerModel(lay, masks[lay.name].sum(axis=2, dtype=np.int64), n, prec)
                      for lay in network.spectral_layers}

        with prog.stage("schedules + simulation"):
            flex = sim.simulate_plan(network, masks, nd.plans["flexible"], models, config, dev, res, "optimal", src,
                                     "flexspec", ("flexible dataflow per layer (flexspec.dataflow), optimal "
                                                  "conflict-free schedules",))

        with prog.stage("baselines"):
            baselines = {}
            for plan in sim.BASELINES:
                if plan not in nd.plans or plan in getattr(nd, "infeasible", {}):
                    notes.append(f"baseline '{plan}' does not fit this design's on-chip memory: "
                                 f"{getattr(nd, 'infeasible', {}).get(plan, 'no plan')}")
                    continue
                baselines[plan] = sim.simulate_plan(network, masks, nd.plans[plan], models, config, dev, res,
                                                    "inorder", src, f"baseline-{plan}",
                                                    (f"fixed {plan} dataflow everywhere, in-order schedules",),
                                                    False)
            if not baselines:
                raise UsageError("neither fixed-dataflow baseline fits this design's on-chip memory; "
                                 "nothing to compare against")
            headline = sim.HEADLINE_BASELINE if sim.HEADLINE_BASELINE in baselines else next(iter(baselines))

        curves = {}
        if tradeoff:
            with prog.stage("tradeoff curves"):
                from .dataflow import tradeoff_curve

                for lay in network.spectral_layers:
                    curves[lay.name] = tradeoff_curve(lay, masks[lay.name].sum(axis=2, dtype=np.int64), n, prec)

    unsupported = tuple(treatment)
    notes = summarize_treatment(treatment) + notes
    configuration = {
        "flexspec_version": __version__,
        "format_version": FORMAT_VERSION,
        "model": network.name,
        "model_source": "built-in" if isinstance(model, str) else "Network object (Python API)",
        "input_shape": list(network.input_shape),
        "device": dev.name,
        "device_profile": dev.to_dict(),
        "device_profile_path": dev.path,
        "fft_size": n,
        "density_requested": density,
        "density_used_fraction": float(src.density),
        "weights_path": str(weights) if weights is not None else None,
        "seed": int(seed),
        "prune_scope_requested": prune_scope,
        "accelerator": config.to_dict(),
        "arrays_requested": arrays, "pes_requested": pes, "banks_requested": banks,
        "schedule_method": "optimal", "baseline_schedule_method": "inorder",
        "python": platform.python_version(), "numpy": np.__version__,
        "reproduce": _reproduce_command(network.name if isinstance(model, str) else None, dev, n, density, weights,
                                        seed, arrays, pes, banks, prune_scope),
    }
    report = RunReport(configuration, network, src, flex, baselines, headline, unsupported, tuple(notes), keep,
                       curves, {**prog.seconds, "total": time.perf_counter() - t_start})
    if out is not None:
        from .report import write_report

        write_report(report, out, html=html)
    return report


def _reproduce_command(model, dev, n, density, weights, seed, arrays, pes, banks, prune_scope=None) -> str | None:
    if model is None:
        return None
    parts = ["flexspec", "run", model, "--device", dev.path if dev.path and "/devices/" not in dev.path else dev.name,
             "--fft-size", str(n), "--seed", str(seed)]
    if weights is not None:
        parts += ["--weights", str(weights)]
    elif density is not None:
        parts += ["--density", repr(density)]
    for k, v in (("arrays", arrays), ("pes", pes), ("banks", banks), ("prune-scope", prune_scope)):
        if v is not None:
            parts += [f"--{k}", str(v)]
    return " ".join(parts)
