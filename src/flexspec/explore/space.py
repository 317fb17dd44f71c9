"""The design space of an exploration: ``SPACE.yaml``, validated on load.

A space names the axes and their values, the objectives and the constraints::

    models: [fmnist_vgg]            # built-in names (Python API: Network objects too)
    devices: [u200, zcu102]         # device names or profile YAML paths
    fft_size: [8]                   # default [8]
    density: [0.125, 0.25]          # fraction of spectral entries kept, default [0.25]
    prune_scope: [layer]            # layer | kernel (synthesized kernels), default [layer]
    seed: 0                         # seed of synthesized kernels / random masks, default 0
    design:
      arrays: [fit]                 # 'fit' (the most that fit, as `flexspec run`) or integers
      pes: [16, 32]                 # PEs per array, default [32]
      banks: [20]                   # tile-buffer banks, default [20]
      ports: [2]                    # read ports per bank, default [2]
      broadcast: [false, true]      # broadcast reads, default [false]
    objectives: [latency, dsp, bram]
    constraints:
      latency: {max: 0.005}         # seconds
      dsp: {max: 6000}

A single value may stand for a one-value list.  Every error names the file and the field
(:class:`flexspec.errors.InputFileError`, exit code 2).  The points are the product of the axes,
in a fixed order; each has a stable id (a digest of what it is: the network's layers, the device
profile's figures, the axis values and the FlexSpec version), so a resumed or extended
exploration recognizes the points it already has.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import FlexSpecError, InputFileError
from . import adapter

#: objective name -> (result column, sense 'min' | 'max', label with unit)
METRICS = {
    "latency": ("latency_seconds", "min", "latency (s, whole network)"),
    "conv_latency": ("conv_latency_seconds", "min", "convolutions' latency (s)"),
    "throughput": ("throughput_per_second", "max", "throughput (inferences/s, batch 1)"),
    "dsp": ("dsp_used_count", "min", "DSP slices used"),
    "bram": ("bram_bits_used", "min", "block RAM bits used"),
    "uram": ("uram_bits_used", "min", "UltraRAM bits used"),
    "lut": ("lut_used_count", "min", "LUTs used"),
    "ff": ("ff_used_count", "min", "flip-flops used"),
    "lutram": ("lutram_luts_used_count", "min", "LUT-RAM LUTs used"),
    "traffic": ("traffic_bytes", "min", "off-chip traffic (bytes)"),
    "accuracy": ("accuracy_fraction", "max", "test accuracy (fraction)"),
}
#: Metrics the closed-form screen only bounds (the simulator gives their exact value).
SIMULATED_METRICS = ("latency", "conv_latency", "throughput", "traffic")

_TOP = ("models", "devices", "fft_size", "density", "prune_scope", "seed", "design", "objectives", "constraints")
_DESIGN = {"arrays": ["fit"], "pes": [32], "banks": [20], "ports": [2], "broadcast": [False]}
_DEFAULTS = {"fft_size": [8], "density": [0.25], "prune_scope": ["layer"], "seed": 0,
             "objectives": ["latency", "dsp", "bram"], "constraints": {}}
PRUNE_SCOPES = ("layer", "kernel")
#: Columns that identify a point, in order.
AXES = ("model", "device", "fft_size", "density", "prune_scope", "seed", "arrays", "pes", "banks", "ports",
        "broadcast")


@dataclass(frozen=True)
class Point:
    """One point of the space (a design of one model on one device)."""

    model: str
    device: str
    fft_size: int
    density: float
    prune_scope: str
    seed: int
    arrays: object  # "fit" or int
    pes: int
    banks: int
    ports: int
    broadcast: bool
    point_id: str = field(default="", compare=False)

    def axes(self) -> dict:
        return {k: getattr(self, k) for k in AXES}

    @property
    def kernel_axes(self) -> tuple:
        return (self.model, self.fft_size, self.density, self.seed, self.prune_scope)

    def label(self) -> str:
        return (f"{self.model} on {self.device} N={self.fft_size} d={self.density:g} A={self.arrays} P={self.pes} "
                f"B={self.banks} R={self.ports}{' bc' if self.broadcast else ''}")


@dataclass(frozen=True, eq=False)
class Space:
    path: str
    networks: dict  # model name -> Network
    devices: dict  # device as written -> Device
    fft_size: tuple
    density: tuple
    prune_scope: tuple
    seed: int
    design: dict  # axis -> tuple of values
    objectives: tuple  # metric names
    constraints: dict  # metric -> {"min": x, "max": y}
    invalid: tuple = ()  # (Point, reason) of combinations that cannot be built (e.g. banks > F)

    def points(self) -> list[Point]:
        """Every buildable point, in the axes' order (impossible combinations are in ``invalid``)."""
        bad = {q.point_id for q, _ in self.invalid}
        return [p for p in self._all() if p.point_id not in bad]

    def _all(self) -> list[Point]:
        out = []
        d = self.design
        nd = {m: adapter.network_digest(net) for m, net in self.networks.items()}
        dd = {k: adapter.device_digest(dev) for k, dev in self.devices.items()}
        version = adapter.version()
        for model, dev, n, dens, scope, a, p, b, r, bc in itertools.product(
                self.networks, self.devices, self.fft_size, self.density, self.prune_scope, d["arrays"], d["pes"],
                d["banks"], d["ports"], d["broadcast"]):
            pid = adapter.digest({"network": nd[model], "device": dd[dev], "fft_size": n, "density": dens,
                                  "prune_scope": scope, "seed": self.seed, "arrays": a, "pes": p, "banks": b,
                                  "ports": r, "broadcast": bc, "version": version})
            out.append(Point(model, dev, n, dens, scope, self.seed, a, p, b, r, bc, pid))
        return out

    def objective_columns(self) -> list[tuple[str, str]]:
        return [(METRICS[m][0], METRICS[m][1]) for m in self.objectives]

    def signature(self) -> str:
        """Digest of the objectives and constraints (a pruning decision holds only under them)."""
        return adapter.digest({"objectives": list(self.objectives), "constraints": self.constraints})

    def to_dict(self) -> dict:
        return {"path": self.path, "models": list(self.networks), "devices": list(self.devices),
                "fft_size": list(self.fft_size), "density": list(self.density),
                "prune_scope": list(self.prune_scope), "seed": self.seed,
                "design": {k: list(v) for k, v in self.design.items()}, "objectives": list(self.objectives),
                "constraints": self.constraints}


# ------------------------------------------------------------------------------ validation --
def _list(path, field_name, value) -> list:
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    if not items:
        raise InputFileError(path, "is empty: give at least one value (an empty axis makes an empty space)",
                             field_name)
    return items


def _ints(path, field_name, values, lo=1, hi=None, allow=()) -> tuple:
    out = []
    for k, v in enumerate(_list(path, field_name, values)):
        if v in allow and not isinstance(v, bool):
            out.append(v)
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
            rng = f"an integer >= {lo}" + (f" and <= {hi}" if hi is not None else "")
            extra = f" or {', '.join(map(repr, allow))}" if allow else ""
            raise InputFileError(path, f"must be {rng}{extra}, got {v!r}", f"{field_name}[{k}]")
        out.append(int(v))
    return tuple(dict.fromkeys(out))


def _wrap(path, field_name, fn, *args):
    """Call a pipeline check, turning its error into one naming the file and the field."""
    try:
        return fn(*args)
    except FlexSpecError as exc:
        raise InputFileError(path, str(exc), field_name) from None


def load_space(source, *, networks: dict | None = None) -> Space:
    """A :class:`Space` from a YAML path or a dict (Python API).  ``networks``: extra model
    name -> Network objects the ``models`` list may name (e.g. from ``flexspec.workload.from_torch``)."""
    if isinstance(source, dict):
        path, data = "<space>", dict(source)
    else:
        path = str(source)
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise InputFileError(path, "no such file") from None
        except OSError as exc:
            raise InputFileError(path, f"cannot read ({exc.strerror or exc})") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise InputFileError(path, f"not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict) or not data:
        raise InputFileError(path, "empty space: give at least 'models' and 'devices' (see flexspec explore --help)")
    unknown = [k for k in data if k not in _TOP]
    if unknown:
        raise InputFileError(path, f"unknown axis '{unknown[0]}'; known: {', '.join(_TOP)}", str(unknown[0]))
    for req in ("models", "devices"):
        if req not in data:
            raise InputFileError(path, "missing: every space names at least one", req)
    data = {**_DEFAULTS, **data}

    nets = {}
    for k, m in enumerate(_list(path, "models", data["models"])):
        field_name = f"models[{k}]"
        if networks and isinstance(m, str) and m in networks:
            nets[m] = _wrap(path, field_name, adapter.network_of, networks[m])
        elif isinstance(m, str):
            nets[m] = _wrap(path, field_name, adapter.network_of, m)
        elif hasattr(m, "spectral_layers"):
            nets[m.name] = _wrap(path, field_name, adapter.network_of, m)
        else:
            raise InputFileError(path, f"must be a model name, got {m!r}", field_name)
    devs = {}
    for k, d in enumerate(_list(path, "devices", data["devices"])):
        if not isinstance(d, str):
            raise InputFileError(path, f"must be a device name or profile path, got {d!r}", f"devices[{k}]")
        devs[d] = _wrap(path, f"devices[{k}]", adapter.device_of, d)

    sizes = _ints(path, "fft_size", data["fft_size"], 1)
    for k, n in enumerate(sizes):
        for net in nets.values():
            _wrap(path, f"fft_size[{k}]", adapter.check_fft_size, n, net)
    dens = []
    for k, v in enumerate(_list(path, "density", data["density"])):
        if isinstance(v, str):
            raise InputFileError(path, f"must be a number in (0, 1], got {v!r}", f"density[{k}]")
        dens.append(_wrap(path, f"density[{k}]", adapter.check_density, v))
    scopes = []
    for k, s in enumerate(_list(path, "prune_scope", data["prune_scope"])):
        if s not in PRUNE_SCOPES:
            raise InputFileError(path, f"unknown value {s!r}; known: {', '.join(PRUNE_SCOPES)}", f"prune_scope[{k}]")
        scopes.append(s)
    seed = data["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputFileError(path, f"must be a non-negative integer, got {seed!r}", "seed")

    design_in = data.get("design") or {}
    if not isinstance(design_in, dict):
        raise InputFileError(path, "must be a mapping of design axes (arrays, pes, banks, ports, broadcast)", "design")
    bad = [k for k in design_in if k not in _DESIGN]
    if bad:
        raise InputFileError(path, f"unknown axis '{bad[0]}'; known: {', '.join(_DESIGN)}", f"design.{bad[0]}")
    design_in = {**_DESIGN, **design_in}
    design = {"arrays": _ints(path, "design.arrays", design_in["arrays"], 1, 1024, allow=("fit",)),
              "pes": _ints(path, "design.pes", design_in["pes"], 1, 256),
              "banks": _ints(path, "design.banks", design_in["banks"], 1),
              "ports": _ints(path, "design.ports", design_in["ports"], 1, 16)}
    bcs = []
    for k, v in enumerate(_list(path, "design.broadcast", design_in["broadcast"])):
        if not isinstance(v, bool):
            raise InputFileError(path, f"must be true or false, got {v!r}", f"design.broadcast[{k}]")
        bcs.append(v)
    design["broadcast"] = tuple(dict.fromkeys(bcs))

    objectives = []
    for k, o in enumerate(_list(path, "objectives", data["objectives"])):
        if o not in METRICS:
            raise InputFileError(path, f"unknown objective {o!r}; known: {', '.join(METRICS)}", f"objectives[{k}]")
        objectives.append(o)
    objectives = tuple(dict.fromkeys(objectives))
    constraints = {}
    cons = data["constraints"] or {}
    if not isinstance(cons, dict):
        raise InputFileError(path, "must be a mapping metric -> {max: X} or {min: X}", "constraints")
    for name, lim in cons.items():
        if name not in METRICS:
            raise InputFileError(path, f"unknown metric {name!r}; known: {', '.join(METRICS)}", f"constraints.{name}")
        if not isinstance(lim, dict) or not lim or any(k not in ("min", "max") for k in lim):
            raise InputFileError(path, "must be {max: X}, {min: X} or both", f"constraints.{name}")
        for k, v in lim.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
                raise InputFileError(path, f"must be a number, got {v!r}", f"constraints.{name}.{k}")
        constraints[name] = {k: float(v) for k, v in lim.items()}
    for name in set(objectives) | set(constraints):
        what = "objectives" if name in objectives else f"constraints.{name}"
        if name == "accuracy":
            lacking = [m for m, net in nets.items() if not adapter.has_real_weights(net)]
            if lacking:
                raise InputFileError(path, f"accuracy is known only for real trained weights; model '{lacking[0]}' "
                                           f"has none (drop the model or the metric)", what)

    space = Space(path, nets, devs, sizes, tuple(dict.fromkeys(dens)), tuple(dict.fromkeys(scopes)), int(seed),
                  design, objectives, constraints)
    invalid = []
    for p in space._all():
        f = adapter.num_freqs(p.fft_size)
        if p.banks > f:
            invalid.append((p, f"{p.banks} banks exceed the {f} frequencies of an N={p.fft_size} tile"))
    space = Space(path, nets, devs, sizes, space.density, space.prune_scope, int(seed), design, objectives,
                  constraints, tuple(invalid))
    if not space.points():
        raise InputFileError(path, f"empty space: none of its {len(invalid)} combinations can be built "
                                   f"(first: {invalid[0][1]})" if invalid else "empty space")
    return space
