"""The one module of ``flexspec.explore`` that calls the rest of FlexSpec.

Everything the exploration needs from the pipeline goes through the small functions here, so a
change of the accelerator or pipeline API is one edit in one place:

* :func:`network_of`, :func:`device_of`, :func:`check_fft_size`, :func:`check_density`: the
  pipeline's own resolution and checks (same names, same errors as ``flexspec run``);
* :func:`design_of`: the accelerator configuration of a point (:func:`flexspec.pipeline.fit_design`
  with the point's axes fixed);
* :func:`kernels_of`: the sparse kernels (:func:`flexspec.accel.kernels.resolve_kernels`) cached
  on disk, content-addressed by their inputs;
* :func:`lower_bound`: the closed-form screening score (a proven lower bound on the simulated
  cycles and traffic; see its docstring);
* :func:`simulate`: the exact cycle simulation of the whole network, as ``flexspec run`` computes
  it (flexible dataflow, optimal schedules, every layer incl. FC), with the disk-backed
  :class:`DiskScheduleCache`;
* :func:`accuracy_of`: the measured test accuracy of real (trained) weights;
* :func:`reproduce_command`: the ``flexspec run`` (or ``flexspec simulate``) command line that
  reproduces a point.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass

import numpy as np

from .. import __version__
from ..accel.arch import AcceleratorConfig, resources
from ..accel.engine import readout_requests
from ..accel.fixed_point import FFTFormat
from ..accel.kernels import resolve_kernels
from ..accel.grouping import bank_map_key, slices_are_blocks
from ..accel.ifft_assign import ifft_engines_serving
from ..accel.layer_events import fft_channel_interval_cycles
from ..accel.sim import (
    LayerSchedules,
    ScheduleCache,
    analyze,
    balanced_pe_cycles,
    design_plan,
    precision_of,
    schedule_layer_blocks,
    simulate_plan,
)
from ..accel.spatial import conv_only, other_layer_costs, spatial_conv_cost, whole_network
from ..dataflow import kernel_bits
from ..dataflow.model import LayerGeometry
from ..datasets import fashion_mnist_subset
from ..devices import load_device
from ..pipeline import check_density as _check_density
from ..pipeline import check_fft_size as _check_fft_size
from ..pipeline import fit_design, resolve_network
from ..rtl.config import PEArrayConfig
from ..rtl.fft_contract import latency_cycles as fft_latency_cycles
from ..spectral import real_model
from ..spectral.geometry import num_frequencies
from ..workload.layers import ConvLayer

#: result column -> key of :attr:`flexspec.accel.arch.Resources.used` (the resource objectives)
RESOURCE_COLUMNS = {"lut_used_count": "lut", "ff_used_count": "ff", "lutram_luts_used_count": "lutram_luts",
                    "dsp_used_count": "dsp", "bram_bits_used": "bram_bits", "uram_bits_used": "uram_bits"}


def network_of(model):
    """A Network from a built-in name or a Network object (as ``flexspec run``)."""
    return resolve_network(model)


def device_of(name_or_path):
    return load_device(name_or_path)


def device_label(name_or_path) -> str:
    """What to write on a command line for this device: its name, or its profile path."""
    dev = load_device(name_or_path)
    return dev.path if dev.path and "/devices/" not in dev.path else dev.name


def check_fft_size(n, network) -> int:
    return _check_fft_size(n, network)


def check_density(d) -> float:
    return _check_density(d)


def num_freqs(fft_size: int) -> int:
    return num_frequencies(fft_size)


def digest(obj) -> str:
    """Stable content address of a JSON-able object (sha256, 20 hex digits)."""
    text = json.dumps(obj, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def network_digest(network) -> str:
    return digest(repr(network))


def device_digest(device) -> str:
    return digest(device.to_dict())


# ---------------------------------------------------------------------------------- design --
def design_of(device, fft_size: int, arrays, pes: int, banks: int, ports: int, broadcast: bool, network=None):
    """(AcceleratorConfig, Resources) of one design point: P, B, R and broadcast fixed, ``arrays``
    fixed or 'fit' (the most arrays the device holds), the FFT engine count the largest that fits
    (:func:`flexspec.pipeline.fit_design`); ``network``: the output FIFOs sized for its largest Cout,
    as ``flexspec run`` sizes them (``search.network_fifo_channels``).  Raises UsageError (impossible
    point, e.g. more banks than frequencies) or DoesNotFitError (exceeds the device)."""
    return fit_design(device, fft_size, network=network, arrays=None if arrays == "fit" else int(arrays), pes=pes,
                      banks=banks, ports=ports, broadcast=bool(broadcast))


def resource_figures(res) -> dict:
    """The resource objectives of a design (synthesis-calibrated model): LUTs (LUT-RAM included),
    flip-flops, LUT-RAM LUTs, DSPs, block RAM and UltraRAM bits, and the binding resource."""
    return {**{col: int(res.used[key]) for col, key in RESOURCE_COLUMNS.items()}, "binding_resource": res.binding}


# --------------------------------------------------------------------------------- kernels --
def kernel_key(network, fft_size: int, density: float, seed: int, prune_scope: str, code: str) -> str:
    return digest({"network": network_digest(network), "fft_size": fft_size, "density": density, "seed": seed,
                   "prune_scope": prune_scope, "code": code})


def kernels_of(network, fft_size: int, density: float, seed: int, prune_scope: str, store=None):
    """(masks, kernel source dict, SparseNetworkKernels or None, cache hit) of a point's kernels.

    With a :class:`~flexspec.explore.cache.Store`, the masks are synthesized once per machine
    (the first worker computes them under a file lock, the others read them)."""
    def compute():
        masks, net_k, src = resolve_kernels(network, None, fft_size=fft_size, density=density, seed=seed,
                                            prune_scope=prune_scope)
        return masks, src.to_dict(), net_k

    if store is None:
        masks, src, net_k = compute()
        return masks, src, net_k, False
    key = kernel_key(network, fft_size, density, seed, prune_scope, store.code)
    (masks, src), hit = store.get_or_compute("kernels", key, lambda: compute()[:2], _encode_masks, _decode_masks)
    return masks, src, None, hit


def _encode_masks(value) -> dict:
    masks, src = value
    arrays = {"meta": np.array(json.dumps({"source": src, "layers": {k: list(m.shape) for k, m in masks.items()}}))}
    for k, m in masks.items():
        arrays[f"mask/{k}"] = np.packbits(np.asarray(m, dtype=bool))
    return arrays


def _decode_masks(data) -> tuple:
    meta = json.loads(str(data["meta"][()]))
    masks = {}
    for k, shape in meta["layers"].items():
        n = int(np.prod(shape))
        masks[k] = np.unpackbits(data[f"mask/{k}"], count=n).astype(bool).reshape(shape)
    return masks, meta["source"]


def accuracy_of(network, fft_size: int, density: float, seed: int, prune_scope: str, store=None):
    """Test accuracy (fraction) of the point's kernels when they are real trained weights whose
    forward pass FlexSpec knows (the shipped ``fmnist_vgg``: float forward pass of the pruned
    spectral kernels on the 1,000 shipped Fashion-MNIST test images); None otherwise."""
    if network.name != real_model.NAME:
        return None

    def compute():
        _, net_k, src = resolve_kernels(network, None, fft_size=fft_size, density=density, seed=seed,
                                        prune_scope=prune_scope)
        if net_k is None or not src.is_real:
            return {"accuracy": None}
        x, y = fashion_mnist_subset()
        return {"accuracy": float(real_model.numpy_accuracy(net_k, x, y))}

    if store is None:
        return compute()["accuracy"]
    key = kernel_key(network, fft_size, density, seed, prune_scope, store.code)
    value, _ = store.get_or_compute("accuracy", key, compute, lambda v: {"json": np.array(json.dumps(v))},
                                    lambda d: json.loads(str(d["json"][()])))
    return value["accuracy"]


def has_real_weights(network) -> bool:
    """Whether FlexSpec ships trained weights (and so a measurable accuracy) for this network."""
    return network.name == real_model.NAME


# ------------------------------------------------------------------------------- schedules --
class DiskScheduleCache(ScheduleCache):
    """A :class:`flexspec.accel.sim.ScheduleCache` backed by a content-addressed disk store.

    The key is what a layer's schedules depend on (the mask's bits, P, B, R, broadcast, the
    method, the cout block) and no device figure: a point that differs only in the device reuses
    every schedule whose cout block the dataflow chose again.  What is stored is the part the
    cycle simulation reads (per-group makespans and PE bounds, and the groups' kernels, which the stored
    schedule stream is spread over), so it serves simulations without
    bank-load histograms (``histograms=False``), which is how :func:`simulate` runs."""

    def __init__(self, store=None):
        super().__init__()
        self.store = store
        self.memo: dict = {}
        self.hits = 0
        self.misses = 0

    def get(self, mask, config, cout_block, method="optimal"):
        return self._cached(mask, config, cout_block, 1, method)

    def sliced(self, mask, config, cout_block, rows, method="optimal"):
        """:meth:`ScheduleCache.sliced`, on disk too: the schedules of cout blocks cut into ``rows``
        array rows' output-channel slices depend on no device figure either."""
        mask = np.asarray(mask, dtype=bool)
        if slices_are_blocks(mask.shape[0], cout_block, rows):
            return super().sliced(mask, config, cout_block, rows, method)  # get() at the slice width
        return self._cached(mask, config, cout_block, int(rows), method)

    def _cached(self, mask, config, cout_block, slices: int, method):
        mask = np.asarray(mask, dtype=bool)
        bmap = self.bank_map_for(mask, config.banks)
        fields = {"mask": hashlib.sha256(np.packbits(mask).tobytes()).hexdigest(), "shape": mask.shape,
                  "pes": config.pes, "banks": config.banks, "ports": config.ports,
                  "broadcast": config.broadcast, "method": method,
                  "cout_block": min(int(cout_block), mask.shape[0]), "bank_map": bank_map_key(bmap),
                  "code": self.store.code if self.store is not None else ""}
        if slices > 1:  # the key of an unsliced entry stays as it was
            fields["slices"] = slices
        key = digest(fields)
        if key in self.memo:
            return self.memo[key]

        def compute():
            return schedule_layer_blocks(mask, config, cout_block, method, bank_map=bmap, slices=slices)

        if self.store is None:
            value, hit = _compact(compute()), False
        else:
            value, hit = self.store.get_or_compute("schedules", key, lambda: _compact(compute()), _encode_sched,
                                                   _decode_sched)
        self.hits += hit
        self.misses += not hit
        self.memo[key] = value
        return value


@dataclass(frozen=True)
class _BankMap:
    """What the simulator reads of a cached layer's schedule object: its bank map (the engine
    pass's tile-buffer depth, ``flexspec.accel.engine.pass_shape``); the rest is not stored."""

    bank_of: np.ndarray


def _compact(s: LayerSchedules) -> LayerSchedules:
    return LayerSchedules(_BankMap(np.asarray(s.schedule.bank_of, np.int64)), np.asarray(s.groups, np.int64),
                          np.asarray(s.cycles, np.int64), np.asarray(s.pe_bound, np.int64), int(s.cout_block),
                          int(s.slices))


def _encode_sched(s: LayerSchedules) -> dict:
    return {"cycles": s.cycles, "pe_bound": s.pe_bound, "cout_block": np.array(s.cout_block), "groups": s.groups,
            "bank_of": np.asarray(s.schedule.bank_of, np.int64), "slices": np.array(s.slices)}


def _decode_sched(d) -> LayerSchedules:
    return LayerSchedules(_BankMap(d["bank_of"].copy()), d["groups"].copy(), d["cycles"].copy(), d["pe_bound"].copy(),
                          int(d["cout_block"][()]), int(d["slices"][()]))


# ------------------------------------------------------------------------------- screening --
def lower_bound(network, masks: dict, config: AcceleratorConfig, device) -> dict:
    """Closed-form lower bounds on what :func:`simulate` returns for this design (no dataflow
    search, no schedule): ``cycles`` and ``traffic_bytes`` of the whole network, and
    ``conv_cycles`` of its convolutions.

    * Spectral layer l: every (input channel, kernel group) pair runs on each of its T tiles for at
      least the group's largest PE load (a PE does one complex MAC per cycle), the A arrays share
      that work, and the layer pays at least the FFT + IFFT + PE pipeline depth once
      (as ``flexspec.accel.sim.simulate_plan``), and each tile lasts at least its read-out:
      ``cycles_l >= max(T * max(min_groups sum(max load), readout) / A, FFT, IFFT) + depth`` with
      the read-out ``Cout (N/2 + 1) N/K`` requests a tile (``accel.engine.readout_requests``), the
      forward transforms ``T Cin`` at the RTL's sustained rate over the FFT engines and the inverse
      ones ``T Cout N`` cycles over the IFFT engines.  Their traffic: every kernel bit crosses the
      DRAM link once, as the schedule stream the simulator counts (:func:`min_stream_bits`; the
      activations may stay on chip), within the spectral layers' cycles (the simulator prefetches a
      layer's first kernel block only during the previous spectral layer), so the spectral layers
      together last at least ``max(sum of compute bounds, kernel bytes / bytes per cycle)``.
    * Spatial convolution: :func:`flexspec.accel.spatial.spatial_conv_cost`, the simulator's own
      formula, with its output kept on chip (the dataflow may write it back: more traffic, never less).
    * Every other layer (FC, adds, concatenations): :func:`flexspec.accel.spatial.other_layer_costs`, the
      function :func:`simulate` adds them with, given no buffer use by the spectral layers (a
      residual operand is then resident whenever it can be: the least an add costs).  An FC layer's
      dense weights stream from DRAM: its cost does not depend on the dataflow.

    The whole network's cycles are the sum of its layers', so ``cycles`` adds these parts.  Tests
    check it against the simulator on sampled points; screening with it is exact (a pruned point
    is dominated)."""
    prec = precision_of(config)
    res = resources(config, device)
    bpc = device.bytes_per_cycle
    # the FFT + IFFT pipeline latency the simulator charges once per layer (flexspec.rtl.fft_contract)
    n, bits = config.fft_size, config.data_bits
    depth = fft_latency_cycles(FFTFormat(n, bits, bits, 0)) + fft_latency_cycles(FFTFormat(n, bits, bits, 0, inverse=True))
    spectral = spatial = 0.0
    kernel_bits_total = 0
    spatial_bytes = 0.0
    spectral_names = []
    for layer in network.layers:
        if not isinstance(layer, ConvLayer):
            continue
        if layer.spectral_eligible and layer.name in masks:
            spectral_names.append(layer.name)
            nnz = masks[layer.name].sum(axis=2, dtype=np.int64)
            tiles = LayerGeometry.of(layer, config.fft_size).tiles
            # one block of every output channel: sorted chunking over all of them is the least sum of
            # chunk maxima over every grouping into at most P kernels
            # a tile's pass lasts at least its program and at least its read-out (one column of N
            # accumulators a beat, N/2 + 1 columns per output channel: flexspec.accel.engine)
            cout, cin = nnz.shape
            per_tile = max(balanced_pe_cycles(nnz, config.pes, cout),
                           readout_requests(cout, n, config.readout_rows))
            # the FFT/IFFT engines: every tile's Cin forward transforms at the RTL's sustained rate
            # (least at the shallowest channel depth ceil(F/B)), Cout inverse ones at N cycles each on
            # the IFFTs a split keeps busy (at most the most any split of the design serves: ifft_assign)
            fft_rate = fft_channel_interval_cycles(n, -(-num_frequencies(n) // config.banks))
            serving = max(ifft_engines_serving(config, a_g) for a_g in config.group_splits)
            engines = max(tiles * cin * fft_rate / config.fft_engines, tiles * cout * n / serving)
            spectral += max(tiles * per_tile / config.arrays, engines) + depth
            kernel_bits_total += max(int(kernel_bits(nnz, config.fft_size, prec).sum()),
                                     min_stream_bits(layer, nnz, config))
        else:
            cost = spatial_conv_cost(layer, config.arrays, config.pes, int(res.dataflow_bits), bpc,
                                     config.pe_pipeline_cycles, config.data_bits, config.data_bits, output_bits=0)
            spatial += cost.cycles
            spatial_bytes += cost.traffic_bytes
    others = other_layer_costs(network, config, device, res, dict.fromkeys(spectral_names, 0))
    conv_cycles = max(spectral, kernel_bits_total / 8 / bpc) + spatial
    return {"cycles": conv_cycles + sum(c.cycles for c in others.values()), "conv_cycles": conv_cycles,
            "traffic_bytes": kernel_bits_total / 8 + spatial_bytes + sum(c.traffic_bytes for c in others.values())}


def min_stream_bits(layer, nnz, config: AcceleratorConfig) -> int:
    """A lower bound on the schedule stream the simulator moves for one layer's kernels (each
    group's makespan x the generated word, ``flexspec.accel.grouping.stored_stream_bits``): the
    least sum of group PE-load maxima (:func:`balanced_pe_cycles`, <= the sum of makespans) x the
    narrowest word any of its blockings has (a cout block of at least min(P, Cout) accumulator
    slots, and a bank map spread as evenly as F frequencies allow over B banks)."""
    f = num_frequencies(config.fft_size)
    narrow = PEArrayConfig(config.pes, config.banks, config.ports, config.fft_size,
                           tuple(k % config.banks for k in range(f)), 1, in_channels=layer.in_channels,
                           acc_channels=min(config.pes, layer.out_channels), data_bits=config.data_bits,
                           acc_bits=config.acc_bits, broadcast=config.broadcast)
    return int(balanced_pe_cycles(nnz, config.pes, nnz.shape[0])) * narrow.word_bits()


# ---------------------------------------------------------------------------------- exact --
def simulate(network, device, config: AcceleratorConfig, masks: dict, schedules: DiskScheduleCache):
    """The exact simulation of the FlexSpec design, what ``flexspec run`` reports for it: the
    flexible dataflow's plan (:func:`flexspec.accel.sim.analyze`) simulated with optimal
    conflict-free schedules (:func:`flexspec.accel.sim.simulate_plan`), then every other layer
    (FC, pooling, adds) costed in execution order (:func:`flexspec.accel.spatial.whole_network`,
    dense FC weights), at the design's own precision -- the FlexSpec part of
    :func:`flexspec.accel.sim.simulate_designs` with ``whole_network=True``, without the baselines
    the exploration does not need.  Returns the whole-network NetworkResult."""
    res = resources(config, device)
    prec = precision_of(config)
    memo: dict = {}  # the PE-array rule's run costs, shared by the entries and the stream analyses
    nd = analyze(network, masks, config, device, res, prec, memo=memo)
    # kernels counted as the schedule stream the PE arrays store, as flexspec run counts them
    plan, models, notes = design_plan(network, masks, config, device, res, prec, nd, "flexible", "optimal", schedules,
                                      "stream", memo=memo)
    conv = simulate_plan(network, masks, plan, models, config, device, res, "optimal", None, "flexspec", notes,
                         histograms=False, schedules=schedules, kernel_storage="stream")
    return whole_network(network, conv, config, device, res, {ld.layer_name: ld.onchip_bits for ld in plan})


def exact_figures(result) -> dict:
    """The simulated columns of a point: whole network (what ``flexspec run`` reports) and the
    convolutions only."""
    conv = conv_only(result)
    return {"cycles": int(result.cycles), "latency_seconds": float(result.seconds),
            "traffic_bytes": float(result.traffic_bytes), "conv_cycles": int(conv["cycles"]),
            "conv_latency_seconds": float(conv["latency_seconds"]), "conv_traffic_bytes": float(conv["traffic_bytes"]),
            "dsp_efficiency_fraction": float(result.dsp_efficiency), "roofline_cycles": int(result.roofline_cycles)}


def reproduce_command(model: str, device_label: str, fft_size: int, density: float, seed: int, prune_scope: str,
                      config: AcceleratorConfig, network=None, masks=None, device=None, memo=None) -> str:
    """The command that reproduces one point's design and cycles.

    ``flexspec run --arrays A --pes P --banks B`` when ``run``'s own design resolution gives
    exactly this design from them (it chooses R, broadcast and the FFT engines by its estimate;
    checked here with the same function and the same kernels), else ``flexspec simulate`` with
    every axis fixed.  (With ``network``/``masks``/``device`` omitted: the simulate form.)
    ``memo``: a dict shared by the calls for one network and one kernel set (one screening
    group): the resolution depends on the device and the fixed axes only, so the points that differ
    in R or broadcast resolve once (it costs ~1.4 CPU s a VGG16 point: ``accel.search``'s estimate)."""
    base = [model, "--device", device_label, "--fft-size", str(fft_size), "--density", repr(density), "--seed",
            str(seed), "--arrays", str(config.arrays), "--pes", str(config.pes), "--banks", str(config.banks)]
    fixed = dict(arrays=config.arrays, pes=config.pes, banks=config.banks)
    if network is not None and _resolves(device, fft_size, network, masks, config, fixed, memo):
        parts = ["flexspec", "run", *base, "--prune-scope", prune_scope]
    else:
        # simulate fixes broadcast only on (``--broadcast``); unfixed, it searches
        # flexspec.accel.search.BROADCAST, which holds only off
        parts = ["flexspec", "simulate", *base, "--ports", str(config.ports), "--fft-engines", str(config.fft_engines),
                 "--prune-scope", prune_scope] + (["--broadcast"] if config.broadcast else [])
    return " ".join(shlex.quote(p) for p in parts)


def _resolves(device, fft_size: int, network, masks, config: AcceleratorConfig, fixed: dict, memo=None) -> bool:
    """Whether the design resolution of ``flexspec run`` / ``simulate`` gives ``config`` for these
    fixed axes (:func:`flexspec.accel.search.fit_design`, the function both commands call)."""
    key = (device_digest(device), fft_size, tuple(sorted(fixed.items())))
    memo = {} if memo is None else memo
    if key not in memo:
        memo[key] = fit_design(device, fft_size, network=network, masks=masks, **fixed)[0]
    return memo[key] == config


def version() -> str:
    return __version__
