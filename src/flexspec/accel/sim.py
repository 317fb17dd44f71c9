"""Performance model: per-layer dataflow, simulator driven by the real group schedules,
closed-form estimate and roofline bound.

Unit of work: one scheduled kernel group (P kernels of one input channel) on one block of
``T_b`` tiles takes ``ceil(T_b / A) * cycles_g`` cycles, ``cycles_g`` being the makespan of
that group's conflict-free schedule (``flexspec.schedule``).  Units are gathered into
*steps* (one cout-block x tile-block pair); a step's off-chip transfers, FFTs and inverse
FFTs for the neighbouring steps overlap its compute through double buffering, so a step
lasts ``max(compute, memory, fft, ifft)`` cycles.  Everything is numpy over steps and groups.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import UsageError
from ..spectral.geometry import num_frequencies, num_tiles, tile_size
from ..workload.layers import ConvLayer, Network
from .arch import AcceleratorConfig, Resources, resources
from .devices import Device, load_device

FORMAT_VERSION = 1
DATAFLOWS = ("kernel_reuse", "activation_reuse")


# ----------------------------------------------------------------------------- masks ------
def random_masks(network: Network, fft_size: int = 8, density: float = 0.25, seed: int = 0) -> dict:
    """Seeded sparse spectral masks, exactly round(density*F) non-zeros per kernel (pruning
    that balances kernels, as the PE array wants); bool [Cout, Cin, F] per spectral layer."""
    f = num_frequencies(fft_size)
    k = max(1, min(f, round(density * f)))
    rng = np.random.default_rng(seed)
    masks = {}
    for layer in network.spectral_layers:
        r = rng.random((layer.out_channels, layer.in_channels, f), dtype=np.float32)
        idx = np.argpartition(r, k - 1, axis=-1)[..., :k]
        m = np.zeros(r.shape, dtype=bool)
        np.put_along_axis(m, idx, True, axis=-1)
        masks[layer.name] = m
    return masks


def group_masks(mask: np.ndarray, pes: int) -> np.ndarray:
    """[Cout, Cin, F] -> [G, P, F] with group g = cout_block * Cin + cin (zero-padded PEs)."""
    cout, cin, f = mask.shape
    nb = -(-cout // pes)
    padded = np.zeros((nb * pes, cin, f), dtype=bool)
    padded[:cout] = mask
    return padded.reshape(nb, pes, cin, f).transpose(0, 2, 1, 3).reshape(nb * cin, pes, f)


def group_cycles(mask: np.ndarray, config: AcceleratorConfig, method: str = "optimal"):
    """(cycles [G], conflict-free bound [G] = max non-zeros of one PE, nnz [G]) of every kernel group of one layer, from the
    real schedules of ``flexspec.schedule``."""
    from ..schedule.schedulers import schedule_groups

    gm = group_masks(mask, config.pes)
    sched = schedule_groups(gm, config.banks, config.ports, broadcast=config.broadcast, method=method)
    nnz = gm.sum(axis=(1, 2), dtype=np.int64)
    pe_bound = gm.sum(axis=2, dtype=np.int64).max(axis=1)  # cycles with no bank conflicts at all
    return np.asarray(sched.cycles, np.int64), pe_bound, nnz


def _array_mapping(num_tiles_: int, cin: int, arrays: int) -> tuple[int, int]:
    """(arrays on tiles, arrays on groups), a_t * a_g = A, least padded work first."""
    best = None
    for a_g in range(1, arrays + 1):
        if arrays % a_g:
            continue
        a_t = arrays // a_g
        waste = (-(-num_tiles_ // a_t) * a_t) * (-(-cin // a_g) * a_g)
        key = (waste, a_g)
        if best is None or key < best[0]:
            best = (key, (a_t, a_g))
    return best[1]


# -------------------------------------------------------------------------- dataflow ------
@dataclass(frozen=True)
class LayerPlan:
    """Blocking and traffic of one layer under one dataflow."""

    dataflow: str
    tile_block: int
    cout_block: int  # multiple of P
    input_passes: int
    kernel_passes: int
    input_bytes: int
    kernel_bytes: int
    output_bytes: int

    @property
    def traffic_bytes(self) -> int:
        return self.input_bytes * self.input_passes + self.kernel_bytes * self.kernel_passes + self.output_bytes


def _sizes(layer: ConvLayer, config: AcceleratorConfig, nnz: int):
    d = config.data_bits // 8 if config.data_bits % 8 == 0 else config.data_bits / 8
    input_bytes = math.ceil(layer.in_channels * layer.height * layer.width * d)
    output_bytes = math.ceil(layer.out_channels * layer.out_height * layer.out_width * d)
    kernel_bytes = math.ceil(nnz * config.kernel_value_bits / 8)
    spec_tile_bytes = config.num_freq * 2 * config.data_bits / 8  # one spectral tile-channel
    acc_bytes = config.num_freq * 2 * config.acc_bits / 8  # one tile x output-channel accumulator
    return input_bytes, output_bytes, kernel_bytes, spec_tile_bytes, acc_bytes


def plan_layer(layer: ConvLayer, nnz: int, config: AcceleratorConfig, res: Resources, dataflow: str) -> LayerPlan:
    """Largest blocks that fit the (double-buffered) kernel and activation buffers."""
    if dataflow not in DATAFLOWS:
        raise UsageError(f"unknown dataflow '{dataflow}'; known: {', '.join(DATAFLOWS)}")
    t = num_tiles(layer, config.fft_size)
    cin, cout, p = layer.in_channels, layer.out_channels, config.pes
    ib, ob, kb, stb, accb = _sizes(layer, config, nnz)
    kbuf, abuf = res.kernel_buffer_bytes / 2, res.activation_buffer_bytes / 2  # double buffering
    per_kernel = kb / max(1, cout * cin) * cin  # bytes of one output channel's kernels
    ncb = -(-cout // p)
    if dataflow == "kernel_reuse":
        # kernel slab (cout_block x Cin) stays; tiles stream in blocks, inputs re-read per slab
        cb_blocks = max(1, min(ncb, int(kbuf // max(per_kernel * p, 1))))
        cb = cb_blocks * p
        tb = int(abuf // (cin * stb + cb * accb))
        tb = max(1, min(t, tb))
        n_slabs = -(-cout // cb)
        input_fits = t * cin * stb + tb * cb * accb <= abuf  # whole spectral input kept on chip
        return LayerPlan(dataflow, tb, cb, 1 if input_fits or n_slabs == 1 else n_slabs, 1, ib, kb, ob)
    # activation reuse: a block of tiles (all Cin) stays; kernels stream per tile block
    cb = p
    tb = int(abuf // (cin * stb + cb * accb))
    tb = max(1, min(t, tb))
    n_tb = -(-t // tb)
    kernels_fit = kb <= kbuf
    return LayerPlan(dataflow, tb, cb, 1, 1 if kernels_fit or n_tb == 1 else n_tb, ib, kb, ob)


# ------------------------------------------------------------------------- simulation -----
@dataclass(frozen=True)
class LayerResult:
    name: str
    dataflow: str
    tile_block: int
    cout_block: int
    cycles: int
    seconds: float
    compute_cycles: int  # steps where the PE array is the bottleneck (conflict-free part)
    bank_conflict_cycles: int  # schedule cycles above the conflict-free bound, when compute-bound
    memory_stall_cycles: int
    fft_stall_cycles: int
    fill_cycles: int
    useful_macs: int
    dsp_efficiency: float
    dsp_efficiency_steady: float  # excluding the layer's fill/drain
    traffic_bytes: int
    input_bytes: int
    kernel_bytes: int
    output_bytes: int
    estimate_cycles: int
    roofline_cycles: int
    bound: str  # what limits the layer: compute | memory | fft | ifft

    @property
    def achieved_over_bound(self) -> float:
        return self.cycles / max(1, self.roofline_cycles)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["achieved_over_roofline"] = self.achieved_over_bound
        return d


def _engine_cycles(count, engines, fft_size):
    return np.ceil(np.asarray(count, dtype=np.float64) * fft_size / engines)


def simulate_layer(layer: ConvLayer, mask: np.ndarray, config: AcceleratorConfig, device: Device, res: Resources,
                   dataflow: str, method: str = "optimal", sched=None) -> LayerResult:
    cycles_g, lb_g, nnz_g = sched if sched is not None else group_cycles(mask, config, method)
    nnz = int(nnz_g.sum())
    plan = plan_layer(layer, nnz, config, res, dataflow)
    t, cin, cout = num_tiles(layer, config.fft_size), layer.in_channels, layer.out_channels
    p, a, n = config.pes, config.arrays, config.fft_size
    ncb_p = -(-cout // p)
    # array mapping: a_t arrays on different tiles x a_g arrays on different groups (same tile);
    # a batch of a_g groups (consecutive input channels of one cout block) runs in lockstep
    a_t, a_g = _array_mapping(t, cin, a)
    cyc = cycles_g.reshape(ncb_p, cin)
    lbc = lb_g.reshape(ncb_p, cin)
    padc = -(-cin // a_g) * a_g - cin
    cyc = np.pad(cyc, ((0, 0), (0, padc))).reshape(ncb_p, -1, a_g).max(axis=2)
    lbc = np.pad(lbc, ((0, 0), (0, padc))).reshape(ncb_p, -1, a_g).max(axis=2)
    blk_cycles = cyc.sum(axis=1)
    blk_lb = np.minimum(lbc, cyc).sum(axis=1)
    a = a_t
    slab = plan.cout_block // p
    n_slab = -(-ncb_p // slab)
    pad = n_slab * slab - ncb_p
    slab_cycles = np.concatenate([blk_cycles, np.zeros(pad, np.int64)]).reshape(n_slab, slab).sum(axis=1)
    slab_lb = np.concatenate([blk_lb, np.zeros(pad, np.int64)]).reshape(n_slab, slab).sum(axis=1)
    slab_ch = np.minimum(plan.cout_block, cout - np.arange(n_slab) * plan.cout_block)
    tb_sizes = np.full(-(-t // plan.tile_block), plan.tile_block, np.int64)
    tb_sizes[-1] = t - plan.tile_block * (tb_sizes.size - 1)
    n_tb = tb_sizes.size
    waves = -(-tb_sizes // a)
    bpc = device.bytes_per_cycle
    in_per_tile = plan.input_bytes / t
    out_per_tile_ch = plan.output_bytes / (t * cout)
    k_per_slab = plan.kernel_bytes * slab_ch / cout
    # steps in execution order
    if dataflow == "kernel_reuse":
        s_idx = np.repeat(np.arange(n_slab), n_tb)
        t_idx = np.tile(np.arange(n_tb), n_slab)
        new_tiles = plan.input_passes > 1 or True  # tiles enter on their first slab (or every slab if re-read)
        first_use = (s_idx == 0) | (plan.input_passes > 1)
        in_bytes = np.where(first_use, tb_sizes[t_idx] * in_per_tile, 0.0)
        fft_count = np.where(first_use, tb_sizes[t_idx] * cin, 0)
        k_bytes = np.where(t_idx == 0, k_per_slab[s_idx], 0.0)
        # the slab is prefetched across the previous slab's steps
        k_bytes = k_bytes / 1.0
        del new_tiles
    else:
        t_idx = np.repeat(np.arange(n_tb), n_slab)
        s_idx = np.tile(np.arange(n_slab), n_tb)
        in_bytes = np.where(s_idx == 0, tb_sizes[t_idx] * in_per_tile, 0.0)
        fft_count = np.where(s_idx == 0, tb_sizes[t_idx] * cin, 0)
        k_bytes = np.where((plan.kernel_passes > 1) | (t_idx == 0), k_per_slab[s_idx], 0.0)
    compute = waves[t_idx] * slab_cycles[s_idx] + config.pe_pipeline_cycles
    conflict_free = waves[t_idx] * slab_lb[s_idx] + config.pe_pipeline_cycles
    out_bytes = tb_sizes[t_idx] * slab_ch[s_idx] * out_per_tile_ch
    ifft_count = tb_sizes[t_idx] * slab_ch[s_idx]
    # prefetch for step s+1 and write-back of step s-1 overlap step s
    nsteps = compute.size
    load = (in_bytes + k_bytes)
    if dataflow == "kernel_reuse" and n_slab > 1:
        # spread each slab's kernel load evenly over the previous slab's steps
        spread = np.repeat(k_per_slab / n_tb, n_tb)
        load = in_bytes + np.concatenate([np.zeros(n_tb), spread[n_tb:]]) + np.where(s_idx == 0, k_bytes, 0)
        load_next = np.zeros(nsteps)
        load_next[:-1] = in_bytes[1:] + np.where(s_idx[1:] == 0, k_bytes[1:], 0)
        load_next[:-n_tb] += spread[n_tb:]
        first_load = in_bytes[0] + k_bytes[0]
    else:
        load_next = np.zeros(nsteps)
        load_next[:-1] = load[1:]
        first_load = load[0]
    write_prev = np.zeros(nsteps)
    write_prev[1:] = out_bytes[:-1]
    mem = np.ceil((load_next + write_prev) / bpc)
    fft_next = np.zeros(nsteps)
    fft_next[:-1] = _engine_cycles(fft_count[1:], config.fft_engines, n)
    ifft_prev = np.zeros(nsteps)
    ifft_prev[1:] = _engine_cycles(ifft_count[:-1], config.ifft_engines, n)
    step = np.maximum.reduce([compute, mem, fft_next, ifft_prev])
    fill_load = math.ceil(first_load / bpc)
    fill_fft = int(_engine_cycles(fft_count[0], config.fft_engines, n))
    fill_ifft = int(_engine_cycles(ifft_count[-1], config.ifft_engines, n))
    fill_write = math.ceil(out_bytes[-1] / bpc)
    fill = fill_load + fill_fft + fill_ifft + fill_write + 2 * n  # + FFT and IFFT pipeline depth
    total = int(step.sum()) + fill
    comp_bound = compute >= np.maximum.reduce([mem, fft_next, ifft_prev])
    compute_c = int(np.where(comp_bound, conflict_free, 0).sum())
    conflict_c = int(np.where(comp_bound, compute - conflict_free, 0).sum())
    mem_stall = int(np.where(~comp_bound & (mem >= np.maximum(fft_next, ifft_prev)), step - compute, 0).sum())
    fft_stall = int(step.sum()) - compute_c - conflict_c - mem_stall
    macs = nnz * t
    eff = macs / (config.arrays * p * total)
    eff_steady = macs / (config.arrays * p * max(1, total - fill))
    # closed-form estimate: totals of each resource, the bottleneck plus fill
    tot_compute = float(waves.sum() * slab_cycles.sum())
    traffic = plan.traffic_bytes
    tot_mem = traffic / bpc
    tot_fft = t * cin * plan.input_passes * n / config.fft_engines
    tot_ifft = t * cout * n / config.ifft_engines
    # the first load/FFT and the last IFFT/write are the fill; the rest overlaps
    est = int(max(tot_compute + nsteps * config.pe_pipeline_cycles, tot_mem - fill_load - fill_write,
                  tot_fft - fill_fft, tot_ifft - fill_ifft) + fill)
    # roofline: useful MACs at the full allocated PE rate; compulsory traffic at sustained bandwidth
    compulsory = plan.input_bytes + plan.kernel_bytes + plan.output_bytes
    roof_compute = macs / (config.arrays * p)
    roof_mem = compulsory / bpc
    roof = int(math.ceil(max(roof_compute, roof_mem)))
    which = ["compute", "memory", "fft", "ifft"][int(np.argmax([tot_compute, tot_mem, tot_fft, tot_ifft]))]
    return LayerResult(layer.name, dataflow, plan.tile_block, plan.cout_block, total, total / device.clock_hz,
                       compute_c, conflict_c, mem_stall, fft_stall, fill, macs, eff, eff_steady, traffic,
                       plan.input_bytes * plan.input_passes, plan.kernel_bytes * plan.kernel_passes,
                       plan.output_bytes, est, roof, which)


# ---------------------------------------------------------------------------- network -----
@dataclass(frozen=True)
class NetworkResult:
    network: str
    device: str
    design: str  # "flexspec" | "baseline"
    config: AcceleratorConfig
    resources: Resources
    layers: tuple[LayerResult, ...]
    method: str
    notes: tuple[str, ...] = field(default=())

    @property
    def cycles(self) -> int:
        return sum(r.cycles for r in self.layers)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.layers)

    @property
    def traffic_bytes(self) -> int:
        return sum(r.traffic_bytes for r in self.layers)

    @property
    def roofline_cycles(self) -> int:
        return sum(r.roofline_cycles for r in self.layers)

    @property
    def estimate_cycles(self) -> int:
        return sum(r.estimate_cycles for r in self.layers)

    @property
    def useful_macs(self) -> int:
        return sum(r.useful_macs for r in self.layers)

    @property
    def dsp_efficiency(self) -> float:
        return self.useful_macs / max(1, self.config.pe_count * self.cycles)

    def to_dict(self) -> dict:
        clock = self.cycles / max(self.seconds, 1e-30)
        return {
            "format_version": FORMAT_VERSION,
            "network": self.network, "device": self.device, "design": self.design, "schedule_method": self.method,
            "config": self.config.to_dict(), "resources": self.resources.to_dict(),
            "total": {
                "cycles": self.cycles, "seconds": self.seconds, "clock_hz": clock,
                "traffic_bytes": self.traffic_bytes, "useful_complex_macs": self.useful_macs,
                "dsp_efficiency": self.dsp_efficiency, "estimate_cycles": self.estimate_cycles,
                "roofline_cycles": self.roofline_cycles,
                "achieved_over_roofline": self.cycles / max(1, self.roofline_cycles),
            },
            "layers": [r.to_dict() for r in self.layers],
            "notes": list(self.notes),
        }


def simulate_network(network: Network, device, config: AcceleratorConfig | None = None, masks: dict | None = None,
                     design: str = "flexspec", fft_size: int = 8, density: float = 0.25, seed: int = 0,
                     fixed_dataflow: str | None = None) -> NetworkResult:
    """Simulate every spectral layer.  ``design='flexspec'``: per-layer dataflow choice (least
    latency, then least traffic) and optimal conflict-free schedules; ``design='baseline'``:
    one fixed dataflow everywhere (``fixed_dataflow``, default the one with less total
    traffic) and in-order scheduling."""
    device = load_device(device)
    config = config or AcceleratorConfig(fft_size=fft_size)
    res = resources(config, device)
    if masks is None:
        masks = random_masks(network, config.fft_size, density, seed)
    layers = network.spectral_layers
    for layer in layers:
        if layer.name not in masks:
            raise UsageError(f"no sparse mask for spectral layer '{layer.name}'")
        tile_size(config.fft_size, layer.kernel_size)
    method = "optimal" if design == "flexspec" else "inorder"
    scheds = {lay.name: group_cycles(masks[lay.name], config, method) for lay in layers}
    if design == "flexspec":
        out = []
        for lay in layers:
            cands = [simulate_layer(lay, masks[lay.name], config, device, res, df, method, scheds[lay.name])
                     for df in DATAFLOWS]
            out.append(min(cands, key=lambda r: (r.cycles, r.traffic_bytes)))
        return NetworkResult(network.name, device.name, design, config, res, tuple(out), method)
    if design != "baseline":
        raise UsageError(f"unknown design '{design}'; known: flexspec, baseline")
    options = [fixed_dataflow] if fixed_dataflow else list(DATAFLOWS)
    best = None
    for df in options:
        out = tuple(simulate_layer(lay, masks[lay.name], config, device, res, df, method, scheds[lay.name])
                    for lay in layers)
        r = NetworkResult(network.name, device.name, "baseline", config, res, out, method,
                          (f"fixed dataflow {df} everywhere, in-order schedules",))
        if best is None or r.traffic_bytes < best.traffic_bytes:
            best = r
    return best
