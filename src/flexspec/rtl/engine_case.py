"""What the layer engine is generated for, and the functional model's view of the same layer
(plain Python: no Amaranth import).

:func:`engine_spec` takes a layer (its pruned spectral kernels, bias, input size), its fixed-point
formats (:class:`flexspec.accel.functional.LayerQuant`) and an array design, schedules the kernel
groups with the simulator's scheduler (one kernel block: every output channel's accumulators on
the array), and builds the program the spectral pass runs per tile.  :func:`engine_case` adds one
input image and the functional model's trace of it (``fixed_layer``): the integers the engine must
produce bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..accel.arch import AcceleratorConfig
from ..accel.functional import LayerQuant, LayerTrace, calibrate_layer, fixed_layer, quantize_input
from ..accel.layer_events import EngineGeometry, engine_events
from ..accel.sim import LayerSchedules, schedule_layer_blocks
from ..accel.fixed_point import quantize_complex, quantize_real
from ..errors import UsageError
from ..spectral.prune import magnitude_mask
from ..spectral.sparse import SparseSpectralKernels
from ..spectral.transform import spectral_kernels
from .config import PEArrayConfig
from .program import GroupSpec, Program, build_program, program_length


@dataclass(frozen=True)
class EngineBlocking:
    """The loop nest the engine walks a layer in (the dataflow's ``LayerDataflow`` blocking):
    ``cout_block`` output channels in the accumulators, ``cin_block`` input channels in the tile
    buffer, ``tile_block`` tiles a step, loop ``order`` over (o, i, t) blocks, outermost first;
    0 = the whole extent."""

    cout_block: int = 0
    cin_block: int = 0
    tile_block: int = 0
    order: str = "oit"


@dataclass(frozen=True, eq=False)
class EngineSpec:
    """Generation parameters of one layer's engine."""

    pe_config: PEArrayConfig
    program: Program
    quant: LayerQuant
    geometry: EngineGeometry
    bias_int: tuple  # per output channel, at the IFFT output's fractional bits (block_frac)
    groups: tuple  # GroupSpec per kernel group, in program order
    block_bases: tuple = (0,)  # schedule address of each kernel block's program (ob * cin_blocks + ib)
    fifo_memory: str = "bram"  # the output FIFO's memory (AcceleratorConfig.fifo_memory)

    def expected_cycles(self) -> int:
        return engine_events(self.geometry).cycles

    @property
    def runs(self) -> tuple:
        """Per run of the walk: (schedule base, program words, tile-buffer rows, read-out columns,
        read-out mask set, starts a chain, ends a chain) -- the spectral pass's run table
        (``SpectralPass.RUN_FIELDS``; chains: ``EngineGeometry.chain_marks``)."""
        g = self.geometry
        out = []
        for (ob, ib, _), (starts, ends) in zip(g.runs.tolist(), g.chain_marks.tolist(), strict=True):
            kb = ob * g.cin_blocks + ib
            out.append((self.block_bases[kb], g.block_program(ob, ib), g.run_in_channels(ib) * g.channel_depth,
                        g.run_out_channels(ob) * g.half, kb, starts, ends))
        return tuple(out)


@dataclass(frozen=True, eq=False)
class EngineCase:
    """A spec, one input image (integers at ``quant.in_frac``) and the functional model's trace."""

    spec: EngineSpec
    x_int: np.ndarray  # int64 [Cin, H, W]
    trace: LayerTrace

    def input_beats(self) -> list[int]:
        """Host beats: per tile (row-major), per input channel, rows 0..h-1 of h samples."""
        g, db = self.spec.geometry, self.spec.pe_config.data_bits
        h = g.tile
        x = np.zeros((g.in_channels, g.tiles_y * h, g.tiles_x * h), dtype=np.int64)
        x[:, :g.height, :g.width] = self.x_int
        mask = (1 << db) - 1
        beats = []
        for _, ib, t in g.runs.tolist():  # the walk: per run, its tile's channels of its cin block
            ty, tx = divmod(t, g.tiles_x)
            for i in range(ib * g.bi, ib * g.bi + g.run_in_channels(ib)):
                for r in range(h):
                    row = x[i, ty * h + r, tx * h:(tx + 1) * h]
                    beats.append(sum((int(v) & mask) << (j * db) for j, v in enumerate(row.tolist())))
        return beats

    def expected_output(self, relu: bool = True) -> np.ndarray:
        """int64 [Cout, H', W']: the functional model's output (after ReLU by default)."""
        y = self.trace.y_int[0]
        return np.maximum(y, 0) if relu else y


def layer_program(sched: LayerSchedules, kernel_re, kernel_im, cin: int, group_ids=None, slot_base: int = 0,
                  channel_base: int = 0) -> tuple:
    """GroupSpec of the kernel groups ``group_ids`` of ``sched`` (default all; slots = output
    channels - ``slot_base``, input channels - ``channel_base``: a kernel block's local view)."""
    s = sched.schedule
    P = s.num_pes
    F = kernel_re.shape[2]
    out = []
    all_ids = np.asarray(sched.groups)
    for g in range(all_ids.shape[0]) if group_ids is None else group_ids:
        ids = all_ids[g]
        live = ids >= 0
        ch = np.unique(ids[live] % cin)
        if ch.size > 1:
            raise UsageError(f"group {g} mixes input channels {ch.tolist()}")
        i = int(ch[0]) if ch.size else channel_base
        slots = np.where(live, ids // cin, -1)
        kr = np.zeros((P, F), dtype=np.int64)
        ki = np.zeros((P, F), dtype=np.int64)
        kr[live] = kernel_re[slots[live], i]
        ki[live] = kernel_im[slots[live], i]
        out.append(GroupSpec(s.group_table(g), i - channel_base, np.where(live, slots - slot_base, -1), kr, ki))
    return tuple(out)


def engine_spec(ssk, quant: LayerQuant, config: AcceleratorConfig, height: int, width: int, bias=None,
                padding: int = 1, sched: LayerSchedules | None = None, dsp_per_complex_mac: int = 3,
                blocking: EngineBlocking | None = None) -> EngineSpec:
    """The engine of one layer (``ssk``: SparseSpectralKernels) on one array of ``config``,
    walking the layer in ``blocking`` (default: one kernel block, all channels, all tiles)."""
    if blocking is not None:
        return _blocked_spec(ssk, quant, config, height, width, bias, padding, sched, dsp_per_complex_mac, blocking)
    _check_formats(ssk, quant, config)
    n = ssk.fft_size
    cout, cin, f = ssk.out_channels, ssk.in_channels, ssk.num_frequencies
    if sched is None:
        sched = schedule_layer_blocks(ssk.mask(), config, cout)
    if sched.schedule.num_pes != config.pes:
        raise UsageError("the schedule was made for another number of PEs")
    w = ssk.dense().reshape(cout, cin, f).astype(np.complex128)
    kr, ki = quantize_complex(w, quant.data_bits, quant.kernel_frac)  # what fixed_layer multiplies by
    groups = layer_program(sched, kr, ki, cin)
    pe = PEArrayConfig(num_pes=config.pes, num_banks=config.banks, ports=config.ports, fft_size=n,
                       bank_of=tuple(int(b) for b in sched.schedule.bank_of),
                       schedule_depth=program_length(sched.schedule.cycles), in_channels=cin, acc_channels=cout,
                       data_bits=config.data_bits, acc_bits=config.acc_bits,
                       dsp_per_complex_mac=dsp_per_complex_mac, broadcast=config.broadcast,
                       readout_rows=config.readout_rows)
    program = build_program(pe, groups)
    geom = EngineGeometry(n, ssk.kernel_size, padding, height, width, cin, cout, pe.channel_depth, program.length,
                          config.pes, pe.readout_rows)
    return EngineSpec(pe, program, quant, geom, _bias_int(bias, quant, cout), groups, fifo_memory=config.fifo_memory)


def _bias_int(bias, quant: LayerQuant, cout: int) -> tuple:
    return tuple(int(v) for v in (quantize_real(np.asarray(bias, dtype=np.float64), 62, quant.block_frac)
                                  if bias is not None else np.zeros(cout, dtype=np.int64)))


def _check_formats(ssk, quant: LayerQuant, config: AcceleratorConfig) -> None:
    n = ssk.fft_size
    if quant.fft_size != n or config.fft_size != n:
        raise UsageError(f"kernels have N={n}, the formats N={quant.fft_size}, the design N={config.fft_size}")
    if quant.data_bits != config.data_bits or quant.acc_bits != config.acc_bits:
        raise UsageError("the formats' data/accumulator widths differ from the design's")


def _blocked_spec(ssk, quant, config, height, width, bias, padding, sched, dsp_per_complex_mac,
                  blocking: EngineBlocking) -> EngineSpec:
    """The engine of a blocked layer: one program per kernel block (cout block ob x cin block ib),
    back to back in the schedule memory, each with its own read-out mask set; accumulators for one
    cout block, a tile buffer of one cin block.  When the walk chains a tile's cin blocks in the
    accumulators (``EngineGeometry.chained``), kernel block (ob, ib)'s program continues the sums
    of blocks (ob, 0..ib-1) (``build_program``'s ``prior``) and its mask set covers them all."""
    _check_formats(ssk, quant, config)
    n, cout, cin, f = ssk.fft_size, ssk.out_channels, ssk.in_channels, ssk.num_frequencies
    probe = EngineGeometry(n, ssk.kernel_size, padding, height, width, cin, cout, 1, 1, config.pes,
                           config.readout_rows, blocking.cout_block, blocking.cin_block, blocking.tile_block,
                           blocking.order)
    bo, bi, n_o, n_i = probe.bo, probe.bi, probe.cout_blocks, probe.cin_blocks
    if sched is None:
        sched = schedule_layer_blocks(ssk.mask(), config, bo)
    if sched.schedule.num_pes != config.pes or sched.cout_block != bo:
        raise UsageError(f"the schedule was made for P={sched.schedule.num_pes}, cout block {sched.cout_block}; "
                         f"the engine has P={config.pes}, cout block {bo}")
    per = sched.cycles.shape[2]
    w = ssk.dense().reshape(cout, cin, f).astype(np.complex128)
    kr, ki = quantize_complex(w, quant.data_bits, quant.kernel_frac)
    blocks = []
    for ob in range(n_o):
        for ib in range(n_i):
            ids = [(ob * cin + i) * per + k for i in range(ib * bi, min(cin, (ib + 1) * bi)) for k in range(per)]
            blocks.append(layer_program(sched, kr, ki, cin, ids, ob * bo, ib * bi))
    lengths = tuple(program_length([grp.table.shape[0] for grp in b]) for b in blocks)
    pe = PEArrayConfig(num_pes=config.pes, num_banks=config.banks, ports=config.ports, fft_size=n,
                       bank_of=tuple(int(b) for b in sched.schedule.bank_of), schedule_depth=int(sum(lengths)),
                       in_channels=bi, acc_channels=bo, data_bits=config.data_bits, acc_bits=config.acc_bits,
                       dsp_per_complex_mac=dsp_per_complex_mac, broadcast=config.broadcast,
                       readout_rows=config.readout_rows, mask_sets=len(blocks))
    words, checked, mask, cycles, bases = [], [], [], [], []
    stride = 1 << pe.acc_addr_bits
    written = None
    for kb, b in enumerate(blocks):
        prog = build_program(pe, b, prior=written if probe.chained and kb % n_i else None)
        written = prog.written
        bases.append(len(words))
        words += prog.words
        checked += prog.checked_words
        mask += list(prog.mask) + [0] * (stride - len(prog.mask))
        cycles += prog.group_cycles
    program = Program(pe, tuple(words), tuple(checked), tuple(mask), tuple(cycles))
    geom = replace(probe, channel_depth=pe.channel_depth, program_cycles=len(words), block_program_cycles=lengths)
    return EngineSpec(pe, program, quant, geom, _bias_int(bias, quant, cout), tuple(g for b in blocks for g in b),
                      tuple(bases), fifo_memory=config.fifo_memory)


def engine_case(ssk, x, quant: LayerQuant, config: AcceleratorConfig, bias=None, padding: int = 1,
                sched: LayerSchedules | None = None, dsp_per_complex_mac: int = 3,
                blocking: EngineBlocking | None = None) -> EngineCase:
    """Spec + one float input image ``x`` [Cin, H, W] (quantized at ``quant.in_frac``) + the
    functional model's trace of it on the same schedule (``blocking``: see :func:`engine_spec`)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] != ssk.in_channels:
        raise UsageError(f"input must be [{ssk.in_channels}, H, W], got {x.shape}")
    if sched is None:
        bo = min(blocking.cout_block or ssk.out_channels, ssk.out_channels) if blocking else ssk.out_channels
        sched = schedule_layer_blocks(ssk.mask(), config, bo)
    spec = engine_spec(ssk, quant, config, x.shape[1], x.shape[2], bias, padding, sched, dsp_per_complex_mac,
                       blocking)
    x_int = quantize_input(x[None], quant)
    trace = fixed_layer(x_int, ssk, quant, config, padding, bias, sched, dsp_per_complex_mac)
    return EngineCase(spec, x_int[0], trace)


def random_engine_case(n: int = 8, cin: int = 2, cout: int = 3, height: int = 10, width: int = 9, pes: int = 4,
                       banks: int = 4, ports: int = 1, density: float = 0.4, seed: int = 1, padding: int = 1,
                       data_bits: int = 16, acc_bits: int = 48, readout_rows: int = 0,
                       blocking: EngineBlocking | None = None):
    """A random pruned 3x3 layer and its engine (tests, synthesis sweeps): Gaussian weights pruned by
    magnitude to ``density``, a Gaussian bias, formats calibrated on four other random inputs, one
    random input image; the array reads out ``readout_rows`` rows a request (0 = N); the engine walks
    the layer in ``blocking`` (default one block).  Returns ``(case, ssk, x, bias)``."""
    rng = np.random.default_rng(seed)
    wf = spectral_kernels(rng.normal(size=(cout, cin, 3, 3)), n)
    ssk = SparseSpectralKernels.from_dense(wf, magnitude_mask(wf, density), 3)
    bias = rng.normal(size=cout) * 0.3
    cfg = AcceleratorConfig(arrays=1, pes=pes, banks=banks, ports=ports, fft_size=n, data_bits=data_bits,
                            acc_bits=acc_bits, readout_rows=readout_rows)
    quant = calibrate_layer(rng.normal(size=(4, cin, height, width)), ssk, padding, bias, data_bits=data_bits,
                            acc_bits=acc_bits)
    x = rng.normal(size=(cin, height, width))
    return engine_case(ssk, x, quant, cfg, bias, padding, blocking=blocking), ssk, x, bias
