"""Accelerator architecture and its resource model.

The machine (one configuration = :class:`AcceleratorConfig`):

* ``arrays`` (A) parallel PE arrays, each of ``pes`` (P) PEs.  All A arrays run the *same*
  kernel group (P sparse kernels of one input channel, one per PE) in lockstep, each on a
  different input tile: A tiles are in flight.  A PE holds one sparse kernel and performs one
  complex multiply-accumulate per cycle.
* Each array has a tile buffer of ``banks`` (B) banks with ``ports`` (R) read ports each;
  frequency ``f`` of the current tile lives in bank ``f % B`` (double buffered: the next tile
  is written while the current one is read).
* ``fft_engines`` / ``ifft_engines`` pipelined 2-D (i)FFT engines, each accepting one N x N
  tile every N cycles (one fully parallel N-point row FFT and one column FFT per cycle); the
  inverse transform works at the accumulator width.
* ``array_split``: how the A arrays share a kernel-block run (:data:`ARRAY_SPLITS`):
  ``"tiles+groups"`` (a_t arrays on tiles x a_g on kernel groups, the best split per run: the
  shared-pool structure, where an FFT'd tile can reach several arrays and their partial outputs
  meet before one IFFT) or ``"tiles"`` (a_g = 1: every array runs the layer's whole program on
  its own tiles -- the as-built design, A replicated ``flexspec.rtl.layer_engine`` engines).
* ``onchip_fraction`` of the block memory (BRAM + URAM) the platform and the blocks leave is the
  budget of the dataflow's buffers (kernel block, input-tile block, accumulators, overlap-add
  borders, resident activations); how it is split between them is chosen per layer by
  ``flexspec.dataflow`` (the blocking), which dominates any fixed split.

Resources (:func:`resources`): every resource of the device profile (LUT, LUT-RAM, FF, DSP,
BRAM, URAM) after its platform-shell and DRAM-controller reserves; the PE arrays (tile banks,
schedule ROM, arbiter, MACs, accumulators) are costed by the synthesis-calibrated model of
:mod:`flexspec.accel.resource_model`, the FFT/IFFT engines by theirs (``transform_cost``), the output
tail after each IFFT engine by its own (:func:`tail_params`; its overlap-add carries are LUT-RAM).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..devices import RESOURCE_KEYS, Device
from ..errors import DoesNotFitError, UsageError
from ..kernel_format import DEFAULT_ACC_BITS, KernelFormat
from ..spectral.geometry import num_frequencies  # noqa: F401  (re-exported)
from .resource_model import (  # noqa: F401  (nontrivial_twiddles re-exported)
    block_cost, family_of, glue_features, nontrivial_twiddles, output_fifo_cost, output_tail_cost, pool_glue_cost,
    provenance, scale_note,
    synthesized_max, transform_cost)


#: Values of ``AcceleratorConfig.array_split`` (the first is the default).
ARRAY_SPLITS = ("tiles+groups", "tiles")
#: Values of ``AcceleratorConfig.fifo_memory`` (the first is the default).
FIFO_MEMORIES = ("bram", "uram")


@dataclass(frozen=True)
class AcceleratorConfig:
    arrays: int = 32
    pes: int = 32
    banks: int = 16
    ports: int = 2
    fft_engines: int = 16
    ifft_engines: int = 16
    fft_size: int = 8
    data_bits: int = 16
    acc_bits: int = DEFAULT_ACC_BITS
    onchip_fraction: float = 0.5
    broadcast: bool = False
    pe_pipeline_cycles: int = 8  # multiplier + adder pipeline depth of a PE
    readout_rows: int = 0  # accumulator rows read out per request (0: N, one column a request)
    array_split: str = ARRAY_SPLITS[0]  # how the arrays share a kernel-block run (ARRAY_SPLITS)
    #: output channels an array's output FIFO holds CREDITS tiles of: the RTL sizes it for the largest
    #: row slice it runs (ceil(cout block / a_g) <= Cout: ``layer_events.output_fifo_beats``); the
    #: search sets it to the network's largest Cout; 512 is VGG16's (the zoo's largest)
    fifo_channels: int = 512
    #: memory the output FIFOs are placed in ("bram": RAMB18/36; "uram": URAM288, the RTL marks the
    #: FIFO memory ram_style="ultra"); the search takes "uram" on devices with UltraRAM
    fifo_memory: str = "bram"
    #: what the output tails (``rtl.output_tail``, one per IFFT engine) are sized for (:func:`tail_params`): the
    #: network's largest Cout x tile columns (the overlap-add carries of a tile row, per output channel) and its
    #: largest tile count (the item ROM); the search sets both from the network (``search.network_tail_extent``);
    #: the defaults are VGG16's at N = 8 (conv3/conv4: 256 x 10 = 512 x 5 = 2,560; conv1: 38 x 38 = 1,444 tiles)
    carry_channel_tiles: int = 2560
    tail_tiles: int = 1444

    def __post_init__(self):
        for key in ("arrays", "pes", "banks", "ports", "fft_engines", "ifft_engines", "fft_size", "fifo_channels",
                    "carry_channel_tiles", "tail_tiles"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise UsageError(f"accelerator config: {key} must be a positive integer, got {v!r}")
        if self.banks > num_frequencies(self.fft_size):
            raise UsageError(f"accelerator config: {self.banks} banks exceed the {num_frequencies(self.fft_size)} "
                             f"frequencies of an N={self.fft_size} tile")
        if self.readout_rows == 0:
            object.__setattr__(self, "readout_rows", self.fft_size)
        k = self.readout_rows
        if not isinstance(k, int) or isinstance(k, bool) or k < 1 or self.fft_size % k or k & (k - 1):
            raise UsageError(f"accelerator config: readout_rows must be a power of two dividing fft_size="
                             f"{self.fft_size}, got {k!r}")
        if self.fifo_memory not in FIFO_MEMORIES:
            raise UsageError(f"accelerator config: fifo_memory must be one of {', '.join(FIFO_MEMORIES)}, "
                             f"got {self.fifo_memory!r}")
        if self.array_split not in ARRAY_SPLITS:
            raise UsageError(f"accelerator config: array_split must be one of {', '.join(ARRAY_SPLITS)}, "
                             f"got {self.array_split!r}")
        if not 0.05 <= self.onchip_fraction <= 0.95:
            raise UsageError("accelerator config: onchip_fraction must be in [0.05, 0.95]")
        if self.data_bits < 2 or self.acc_bits < 2 * self.data_bits + 1:
            raise UsageError("accelerator config: need data_bits >= 2 and acc_bits >= 2*data_bits+1")

    @property
    def buildable_splits(self) -> tuple:
        """The a_g (array rows on output-channel slices; a_t = A / a_g columns on tiles) of the splits
        the generated RTL builds: the shared pool (``flexspec.rtl.cluster_case.PoolShape``) needs the
        F FFT engines to divide the a_t columns (FFT f serves columns f, f+F, ...), so a_g divides
        A / F; ``array_split="tiles"`` has a_g = 1 only (a_t = A: F divides A).  The as-built
        per-array structure (F = E = A, ``"tiles"``) is the a_t = F = A case.  Empty when the RTL
        cannot build the design (F divides no a_t, e.g. 16 engines at A = 70)."""
        if self.arrays % self.fft_engines:
            return ()
        if self.array_split == "tiles":
            return (1,)
        cols = self.arrays // self.fft_engines  # a_t = F x m, so a_g = A / a_t divides A / F
        return tuple(d for d in range(1, cols + 1) if cols % d == 0)

    @property
    def buildable(self) -> bool:
        """Whether the generated RTL builds this design (some split of :attr:`buildable_splits`)."""
        return bool(self.buildable_splits)

    def unbuildable_reason(self) -> str | None:
        """Why the generated RTL cannot build this design (None when it can), with the engine
        counts that would build at this A."""
        if self.buildable:
            return None
        ok = [f for f in range(1, self.arrays + 1) if self.arrays % f == 0]
        return (f"not buildable by the generated RTL: the {self.fft_engines} FFT engines divide no array-column "
                f"count a_t of A={self.arrays} (the pool's FFT f serves columns f, f+F, ...; FFT engine counts "
                f"that build at A={self.arrays}: {', '.join(map(str, ok))})")

    @property
    def group_splits(self) -> tuple:
        """The a_g (arrays on kernel groups) a kernel-block run may use: the splits the generated
        RTL builds (:attr:`buildable_splits`).  For a design it cannot build (only reachable by
        constructing the config by hand: the search never returns one and refuses such overrides),
        every divisor of A (``"tiles"``: 1): the idealized pool, a what-if that
        :func:`flexspec.accel.search.describe_design` marks "not buildable"."""
        if self.buildable:
            return self.buildable_splits
        if self.array_split == "tiles":
            return (1,)
        return tuple(d for d in range(1, self.arrays + 1) if self.arrays % d == 0)

    @property
    def num_freq(self) -> int:
        return num_frequencies(self.fft_size)

    @property
    def kernel_format(self) -> KernelFormat:
        """How this design stores kernel entries: data_bits real and imaginary parts, ceil(log2 F) index."""
        return KernelFormat(self.data_bits)

    @property
    def pe_count(self) -> int:
        return self.arrays * self.pes

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Resources:
    """What a design uses of every resource, against what the device leaves for it.

    ``used``/``available``/``capacity``/``reserved``: resource -> amount, for ``lut`` (every LUT,
    LUT-RAM included), ``lutram_luts``, ``ff``, ``dsp``, ``bram_bits``, ``uram_bits``;
    ``available`` = ``capacity`` minus ``reserved`` (platform shell + DRAM controllers, from the
    device profile).  ``by_block``: the same per block kind (all instances).  ``estimated``: parts
    of the figures that are estimates, not synthesis (e.g. the FFT engines, the Intel mapping)."""

    used: dict
    available: dict
    capacity: dict
    reserved: dict
    by_block: dict
    dataflow_bits: int  # budget of the dataflow's kernel / activation / accumulator buffers
    family: str
    estimated: tuple = ()
    model: str = ""  # provenance of the calibrated model

    @property
    def dsp_pe(self) -> int:
        return int(self.by_block["pe_arrays"]["dsp"])

    @property
    def dsp_fft(self) -> int:
        return int(self.by_block["fft_engines"]["dsp"] + self.by_block["ifft_engines"]["dsp"])

    @property
    def dsp_total(self) -> int:
        return int(self.used["dsp"])

    @property
    def device_dsp(self) -> int:
        return int(self.capacity["dsp"])

    @property
    def bram_bits_used(self) -> int:
        return int(self.used["bram_bits"])

    @property
    def uram_bits_used(self) -> int:
        return int(self.used["uram_bits"])

    @property
    def device_bram_bits(self) -> int:
        return int(self.capacity["bram_bits"])

    @property
    def device_uram_bits(self) -> int:
        return int(self.capacity["uram_bits"])

    def utilization(self) -> dict:
        """resource -> used / available (0 where nothing is available and nothing used)."""
        return {k: (self.used[k] / self.available[k]) if self.available[k] else (0.0 if not self.used[k] else math.inf)
                for k in RESOURCE_KEYS}

    @property
    def binding(self) -> str:
        """The resource closest to its limit (the one that bounds the design).  The dataflow
        buffers take a fixed share of what block memory is left, so memories bind only when the
        blocks themselves use them."""
        util = {k: v for k, v in self.utilization().items() if k not in ("bram_bits", "uram_bits")
                or self.by_block_total(k) > 0}
        return max(util, key=util.get)

    def by_block_total(self, resource: str) -> float:
        return sum(b[resource] for b in self.by_block.values())

    def table(self) -> list[dict]:
        """One row per resource: used, available, capacity, reserved, utilization."""
        util = self.utilization()
        return [{"resource": k, "used": int(self.used[k]), "available": int(self.available[k]),
                 "capacity": int(self.capacity[k]), "reserved": int(self.reserved[k]), "utilization": util[k]}
                for k in RESOURCE_KEYS]

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(dsp_total=self.dsp_total, dsp_pe=self.dsp_pe, dsp_fft=self.dsp_fft, device_dsp=self.device_dsp,
                 bram_bits_used=self.bram_bits_used, uram_bits_used=self.uram_bits_used,
                 dataflow_bytes=self.dataflow_bits // 8, binding=self.binding, utilization=self.utilization(),
                 table=self.table())
        return d


def _block_bits(device: Device) -> int:
    return 20480 if device.vendor.lower().startswith(("intel", "altera")) else 18432


def pe_array_params(config: AcceleratorConfig) -> dict:
    """Parameters of one PE array in the calibrated model's terms."""
    return {"pes": config.pes, "banks": config.banks, "ports": config.ports, "fft_size": config.fft_size,
            "data_bits": config.data_bits, "acc_bits": config.acc_bits, "readout_rows": config.readout_rows}


def tail_slices(a_g: int, ifft_engines: int, engine: int = 0) -> int:
    """Output-channel slices IFFT ``engine``'s output tail holds the carries of, at a_g array rows on
    E IFFT engines: slice g goes to IFFT g mod E (every tile of a slice through one tail), so tail e
    holds ceil((a_g - e) / E) of them (a_g / E each under the dealing that needs E | a_g)."""
    return max(0, -(-(a_g - engine) // ifft_engines))


def tail_params(config: AcceleratorConfig) -> list[dict]:
    """One entry per output tail of ``config`` (one per IFFT engine): its size in the calibrated
    ``output_tail`` block's terms, for the worst run it may get.

    Per-array split (F = E = A, ``array_split="tiles"``): each engine's tail carries every output
    channel (C = ``fifo_channels``) of its layer.  Shared pool: tail e carries :func:`tail_slices`
    slices of ceil(C / a_g) channels, the most over the splits a_g the design builds (tail 0 gets the
    whole layer at a_g = 1).  Carry rows: ceil(``carry_channel_tiles`` / C) tile columns per channel
    (the network's largest Cout x tiles_x spread over C channels); item ROM: ``tail_tiles`` tiles per
    slice held; bias table: C channels.  The one place that maps a design to its tails: change the
    dealing here."""
    c = config.fifo_channels
    tiles_x = -(-config.carry_channel_tiles // c)
    tiles_y = -(-config.tail_tiles // tiles_x)
    per_array = config.array_split == "tiles" and config.fft_engines == config.ifft_engines == config.arrays
    held = ([(1, c)] * config.arrays if per_array else
            [max(((tail_slices(a, config.ifft_engines, e), -(-c // a)) for a in config.group_splits),
                 key=lambda sc: sc[0] * sc[1]) for e in range(config.ifft_engines)])
    return [{"n": config.fft_size, "data_bits": config.data_bits, "channels": slices * slice_channels,
             "tiles_x": tiles_x, "tiles_y": tiles_y, "item_channels": slice_channels, "out_channels": c}
            for slices, slice_channels in held if slices]


def block_usage(config: AcceleratorConfig, device: Device) -> tuple[dict, tuple]:
    """Per block kind (all instances): resource -> amount, and the list of estimated parts."""
    family = family_of(device)
    dsp_cmac = device.dsp_per_complex_mac
    pe = block_cost("pe_array", family, pe_array_params(config))
    pe["dsp"] = config.pes * dsp_cmac  # one complex MAC per PE; checked against synthesis (tests)
    # the IFFT takes the accumulators rounded to the data width (the engine's ifft_bits)
    fft, fft_note = transform_cost(config.fft_size, config.data_bits, False, family)
    ifft, ifft_note = transform_cost(config.fft_size, config.data_bits, True, family)
    estimated = [n for n in (fft_note, ifft_note) if n]
    largest = synthesized_max("pe_array", family, "pes")
    if config.pes > largest:
        estimated.append(f"PE array at P={config.pes}: beyond the largest size synthesized for {family} (P={largest}); "
                         "extrapolated")
    if scale_note("pe_array", family):
        estimated.append(scale_note("pe_array", family))
    if config.fft_size != 8:
        estimated.append(f"PE array at N={config.fft_size}: calibrated at N=8 only; its frequency-dependent terms "
                         "are extrapolated")
    if config.broadcast:
        estimated.append("broadcast: its P^2 frequency comparators are not in the calibrated model (calibrated "
                         "with broadcast off): LUTs underestimated")
    if family == "intel":
        estimated.append("Intel: LUT/FF/LUT-RAM from the UltraScale+ fit (1 ALUT = 1 LUT), not synthesized")

    def total(cost, count):
        return {"lut": count * cost["lut"], "lutram_luts": count * cost["lutram"], "ff": count * cost["ff"],
                "dsp": count * cost["dsp"], "bram_bits": count * cost["bram18"] * _block_bits(device),
                "uram_bits": count * cost["uram"] * 294912}

    blocks = {"pe_arrays": total(pe, config.arrays), "fft_engines": total(fft, config.fft_engines),
              "ifft_engines": total(ifft, config.ifft_engines)}
    # the glue around the passes, from its synthesis fit (h11f, rtl.cluster): bank writers, rounding, output-FIFO
    # control, feeders; one layer engine's (a 1 x 1 cluster's) per array when each array has its own FFT and IFFT,
    # else the shared pool's (a bank-writer column per array at worst, broadcast, the static IFFT arbiter).  The
    # output FIFOs' memory is the block "output_fifos" below (row_out_channels 0 here: not charged twice).
    per_array = config.array_split == "tiles" and config.fft_engines == config.ifft_engines == config.arrays
    shape = (1, 1, 1, 1) if per_array else (config.arrays, 1, config.fft_engines, config.ifft_engines)
    glue, note = pool_glue_cost(glue_features(*shape, config.fft_size, config.data_bits, 0,
                                              shape[0] * shape[3]), family)
    blocks["engine_glue" if per_array else "pool_glue"] = total(glue, config.arrays if per_array else 1)
    estimated += [n for n in (note,) if n]
    # each array's output FIFO: its memory (its control logic is in the glue's fit, synthesized with the FIFOs)
    fifo, note = output_fifo_cost(config.fifo_channels, config.fft_size, config.data_bits, family, config.fifo_memory)
    blocks["output_fifos"] = total(fifo, config.arrays)
    estimated += [n for n in (note,) if n]
    # the output tail after each IFFT engine (overlap-add and its carry memories in LUT-RAM, bias, ReLU, item ROM)
    tails = [output_tail_cost(params, family) for params in tail_params(config)]
    blocks["output_tails"] = {k: sum(total(cost, 1)[k] for cost, _ in tails) for k in blocks["pe_arrays"]}
    notes = [n for _, n in tails if n]  # tail 0 carries the most: its note, and how many others are estimated
    estimated += [notes[0] + (f" (and {len(notes) - 1} more of the {len(tails)} tails)" if len(notes) > 1 else "")
                  ] if notes else []
    return blocks, tuple(estimated)


#: Smallest budget the dataflow's buffers may get (below it every layer spills).
MIN_DATAFLOW_BITS = 8 * 1024 * 1024


def _dataflow_left(config: AcceleratorConfig, available: dict, need: dict) -> int:
    mem_left = available["bram_bits"] - need["bram_bits"] + available["uram_bits"] - need["uram_bits"]
    return int(max(0, mem_left) * config.onchip_fraction)


def dataflow_bits_left(config: AcceleratorConfig, device: Device) -> int:
    """Bits of block memory (BRAM + URAM) the blocks of ``config`` leave to the dataflow's buffers."""
    blocks, _ = block_usage(config, device)
    need = {k: int(math.ceil(sum(b[k] for b in blocks.values()) - 1e-9)) for k in ("bram_bits", "uram_bits")}
    return _dataflow_left(config, {k: device.available(k) for k in need}, need)


def resources(config: AcceleratorConfig, device: Device) -> Resources:
    """Every resource ``config`` uses on ``device``; raises DoesNotFitError naming, for each
    resource over its limit, what the design needs (by block) and what is available.

    Logic (LUT, LUT-RAM, FF) and DSPs come from the blocks (:func:`block_usage`: the PE arrays'
    synthesis-calibrated model, the FFT engines' estimate); the dataflow's buffers get
    ``config.onchip_fraction`` of the block memory (BRAM + URAM) the blocks and the platform
    leave, URAM first."""
    blocks, estimated = block_usage(config, device)
    capacity = {k: device.capacity(k) for k in RESOURCE_KEYS}
    reserved = {k: device.reserved(k) for k in RESOURCE_KEYS}
    available = {k: device.available(k) for k in RESOURCE_KEYS}
    need = {k: int(math.ceil(sum(b[k] for b in blocks.values()) - 1e-9)) for k in RESOURCE_KEYS}
    problems = []
    for k in RESOURCE_KEYS:
        if need[k] > available[k]:
            parts = ", ".join(f"{name.replace('_', ' ')} {int(math.ceil(b[k])):,}" for name, b in blocks.items() if b[k])
            problems.append(f"{k} {need[k]:,} ({parts}) but {available[k]:,} are available "
                            f"({capacity[k]:,} on the device - {reserved[k]:,} for the shell and DRAM controllers)")
    left = _dataflow_left(config, available, need)
    if not problems and left < MIN_DATAFLOW_BITS:
        problems.append(f"on-chip memory for the dataflow buffers: {left:,} bits left, at least "
                        f"{MIN_DATAFLOW_BITS:,} needed")
    if problems:
        raise DoesNotFitError(f"design A={config.arrays} P={config.pes} B={config.banks} R={config.ports} "
                              f"FFT/IFFT engines {config.fft_engines}/{config.ifft_engines} does not fit device "
                              f"'{device.name}': needs " + "; needs ".join(problems))
    uram_used = need["uram_bits"] + min(available["uram_bits"] - need["uram_bits"], left)
    bram_used = need["bram_bits"] + (left - (uram_used - need["uram_bits"]))
    used = dict(need, bram_bits=int(bram_used), uram_bits=int(uram_used))
    prov = provenance()
    return Resources(used, available, capacity, reserved, blocks, left, family_of(device), estimated,
                     f"{prov['yosys']}, {prov['date']}")
