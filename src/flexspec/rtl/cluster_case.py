"""What the shared-pool cluster (``flexspec.rtl.cluster``) is generated for (plain Python, no Amaranth).

The cluster is the network-level structure of ``AcceleratorConfig.array_split = "tiles+groups"``
built with a static split of the arrays: ``A = a_t x a_g`` arrays in ``a_t`` columns of ``a_g``
rows.  Tile ``t`` (row-major over the image) belongs to column ``t mod a_t``; its FFT'd input
channels are **broadcast** to the ``a_g`` arrays of that column; array row ``g`` holds the
accumulators of output-channel slice ``g`` (``ceil(Cout / a_g)`` channels, the last slice the rest)
and runs that slice's kernel groups of every input channel, so no partial sum crosses arrays (no
cross-array adder) and every array reads out only its own slice.  ``F`` FFT engines serve the
columns statically (FFT ``f`` takes the tiles ``t = f (mod F)``, in order; ``F`` divides ``a_t``) and
``E`` IFFT engines serve the (tile, slice) *items* statically: every tile of array row (slice) g goes
to IFFT ``g mod E`` (:func:`flexspec.accel.ifft_assign.ifft_of_slice`), in tile order, so each
slice's overlap-add carries stay in one output tail; a split with a_g < E leaves E - a_g IFFT
engines idle on that layer.  Every decision is a compile-time table; no run-time arbitration.

:func:`cluster_spec` builds it from the simulator's schedule of the layer (``schedule_layer_blocks``
with cout blocks of one slice: one bank map for every array, so the broadcast rows fit every tile
buffer) and :func:`cluster_case` adds one image and the functional model's trace.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..accel.arch import AcceleratorConfig
from ..accel.functional import LayerQuant, LayerTrace, fixed_layer, quantize_input
from ..accel.grouping import LayerSchedules, cout_slices, schedule_layer_blocks, slices_fill
from ..accel.ifft_assign import ifft_of_slice, slices_of_ifft
from ..accel.fixed_point import quantize_complex
from ..accel.layer_events import EngineGeometry
from ..errors import UsageError
from .config import PEArrayConfig
from .engine_case import _bias_int, _check_formats, layer_program
from .program import Program, build_program


@dataclass(frozen=True)
class PoolShape:
    """The static split: ``a_t`` array columns (tiles) x ``a_g`` array rows (output-channel
    slices), ``fft_engines`` F (dividing ``a_t``) and ``ifft_engines`` E."""

    a_t: int
    a_g: int
    fft_engines: int
    ifft_engines: int

    def __post_init__(self):
        for k in ("a_t", "a_g", "fft_engines", "ifft_engines"):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise UsageError(f"pool: {k} must be a positive integer, got {v!r}")
        if self.a_t % self.fft_engines:
            raise UsageError(f"pool: the {self.fft_engines} FFT engines must divide the {self.a_t} array columns "
                             "(FFT f serves columns f, f+F, ...)")

    @property
    def arrays(self) -> int:
        return self.a_t * self.a_g

    def column_of(self, tile: int) -> int:
        return tile % self.a_t

    def fft_of(self, tile: int) -> int:
        return tile % self.fft_engines

    def ifft_of(self, tile: int, row: int) -> int:
        """The IFFT engine of item (tile, array row): the row's (:func:`~flexspec.accel.ifft_assign.ifft_of_slice`)."""
        return ifft_of_slice(row, self.ifft_engines)

    def columns_of_fft(self, f: int) -> list[int]:
        return list(range(f, self.a_t, self.fft_engines))

    def tiles_of_column(self, c: int, tiles: int) -> list[int]:
        return list(range(c, tiles, self.a_t))

    def items_of_ifft(self, e: int, tiles: int) -> list[tuple[int, int]]:
        """(tile, row) items IFFT ``e`` transforms, in its order (tile-major; empty when e >= a_g)."""
        rows = slices_of_ifft(e, self.a_g, self.ifft_engines)
        return [(t, g) for t in range(tiles) for g in rows]


@dataclass(frozen=True, eq=False)
class ClusterSpec:
    """Generation parameters of one layer's cluster: the layer ``geometry`` (whole layer, one
    kernel block), the shape, and per array row its PE-array config, program and output slice."""

    shape: PoolShape
    geometry: EngineGeometry
    quant: LayerQuant
    bank_of: tuple
    row_configs: tuple  # PEArrayConfig per array row
    row_programs: tuple  # Program per array row
    row_channels: tuple  # (first output channel, channels) per array row
    bias_int: tuple = ()  # per output channel, at block_frac (the output tail's bias)
    fifo_memory: str = "bram"  # the output FIFOs' memory (AcceleratorConfig.fifo_memory)

    @property
    def tiles(self) -> int:
        return self.geometry.tiles

    def row_geometry(self, g: int) -> EngineGeometry:
        """The one-array engine geometry of row g's slice (what its pass's timing depends on)."""
        return replace(self.geometry, out_channels=self.row_channels[g][1],
                       program_cycles=self.row_programs[g].length)


def check_shape(shape: PoolShape, out_channels: int, height: int, width: int, fft_size: int,
                kernel_size: int = 3) -> int:
    """Refuse a split that leaves an array row without output channels or an array column without
    tiles (IFFT engines past a_g stay idle: :func:`flexspec.accel.ifft_assign.ifft_of_slice`);
    returns the row slice (output channels per array row).  The output tails serve every split
    (each slice's tiles go through one IFFT)."""
    bo = cout_slices(out_channels, shape.a_g)[0][1]
    if not slices_fill(out_channels, shape.a_g):
        raise UsageError(f"pool: {shape.a_g} array rows leave an empty output-channel slice of {out_channels} "
                         f"channels (slices of {bo})")
    h = fft_size - kernel_size + 1
    tiles = -(-height // h) * -(-width // h)
    if tiles < shape.a_t:
        raise UsageError(f"pool: {tiles} tiles leave an array column idle ({shape.a_t} columns)")
    return bo


def cluster_spec(ssk, quant: LayerQuant, config: AcceleratorConfig, shape: PoolShape, height: int, width: int,
                 padding: int = 1, sched: LayerSchedules | None = None,
                 dsp_per_complex_mac: int = 3, bias=None) -> ClusterSpec:
    """The cluster of one layer (``ssk``, float ``bias`` per output channel or None) on arrays of
    ``config`` (P, B, R, K, widths) split as ``shape``."""
    _check_formats(ssk, quant, config)
    n, cout, cin, f = ssk.fft_size, ssk.out_channels, ssk.in_channels, ssk.num_frequencies
    bo = check_shape(shape, cout, height, width, n, ssk.kernel_size)
    if sched is None:
        sched = schedule_layer_blocks(ssk.mask(), config, bo)
    if sched.cout_block != bo or sched.schedule.num_pes != config.pes:
        raise UsageError(f"pool: the schedule has cout blocks of {sched.cout_block} at P={sched.schedule.num_pes}; "
                         f"the cluster needs {bo} at P={config.pes}")
    w = ssk.dense().reshape(cout, cin, f).astype(np.complex128)
    kr, ki = quantize_complex(w, quant.data_bits, quant.kernel_frac)
    per = sched.cycles.shape[2]
    bank_of = tuple(int(b) for b in sched.schedule.bank_of)
    configs, programs, channels = [], [], []
    for g, (lo, n_ch) in enumerate(cout_slices(cout, shape.a_g)):
        hi = lo + n_ch
        ids = [(g * cin + i) * per + k for i in range(cin) for k in range(per)]
        groups = layer_program(sched, kr, ki, cin, ids, slot_base=lo)
        length = sum(int(grp.table.shape[0]) for grp in groups)
        pe = PEArrayConfig(num_pes=config.pes, num_banks=config.banks, ports=config.ports, fft_size=n,
                           bank_of=bank_of, schedule_depth=max(1, length), in_channels=cin, acc_channels=hi - lo,
                           data_bits=config.data_bits, acc_bits=config.acc_bits,
                           dsp_per_complex_mac=dsp_per_complex_mac, broadcast=config.broadcast,
                           readout_rows=config.readout_rows)
        prog: Program = build_program(pe, groups)
        configs.append(pe)
        programs.append(prog)
        channels.append((lo, hi - lo))
    depth = configs[0].channel_depth
    geom = EngineGeometry(n, ssk.kernel_size, padding, height, width, cin, cout, depth, max(p.length for p in programs),
                          config.pes, configs[0].readout_rows)
    return ClusterSpec(shape, geom, quant, bank_of, tuple(configs), tuple(programs), tuple(channels),
                       _bias_int(bias, quant, cout), fifo_memory=config.fifo_memory)


def tail_items(spec: ClusterSpec, e: int) -> list[tuple]:
    """The items of IFFT ``e``'s output tail (:class:`flexspec.rtl.output_tail.OutputTail`), in its
    order: ``(ty, tx, chan_base, channels, mem_base)`` per (tile, array row) item, ``mem_base`` the
    slice's place in the tail's own carry memories.  The overlap-add carries of an output channel
    pass from tile to tile, so every tile of a slice goes through one IFFT (and its tail): slice g
    to IFFT g mod E; IFFT e's tail holds the carries of slices e, e+E, ... (empty for e >= a_g)."""
    sh, g = spec.shape, spec.geometry
    mine = slices_of_ifft(e, sh.a_g, sh.ifft_engines)
    base = {r: sum(spec.row_channels[x][1] for x in mine[:k]) for k, r in enumerate(mine)}
    return [divmod(t, g.tiles_x) + (spec.row_channels[r][0], spec.row_channels[r][1], base[r])
            for t, r in sh.items_of_ifft(e, g.tiles)]


@dataclass(frozen=True, eq=False)
class ClusterCase:
    """A cluster spec, one image (integers at ``quant.in_frac``) and the functional model's trace."""

    spec: ClusterSpec
    x_int: np.ndarray  # int64 [Cin, H, W]
    trace: LayerTrace

    def input_beats(self) -> list[list[int]]:
        """Per FFT engine f, its host beats: its tiles (t = f mod F) in order, channels 0..Cin-1, rows 0..h-1."""
        g, db, sh = self.spec.geometry, self.spec.quant.data_bits, self.spec.shape
        h = g.tile
        x = np.zeros((g.in_channels, g.tiles_y * h, g.tiles_x * h), dtype=np.int64)
        x[:, :g.height, :g.width] = self.x_int
        mask = (1 << db) - 1
        out = [[] for _ in range(sh.fft_engines)]
        for t in range(g.tiles):
            ty, tx = divmod(t, g.tiles_x)
            for i in range(g.in_channels):
                for r in range(h):
                    row = x[i, ty * h + r, tx * h:(tx + 1) * h]
                    out[sh.fft_of(t)].append(sum((int(v) & mask) << (j * db) for j, v in enumerate(row.tolist())))
        return out

    def expected_output(self, relu: bool = True) -> np.ndarray:
        """int64 [Cout, H', W']: the functional model's spatial output at out_frac (after ReLU by default)."""
        y = np.asarray(self.trace.y_int[0], dtype=np.int64)
        return np.maximum(y, 0) if relu else y

    def expected_blocks(self) -> np.ndarray:
        """int64 [Cout, T, N, N]: the IFFT output blocks of the functional model (``block_frac``)."""
        return np.asarray(self.trace.blocks, dtype=np.int64)


def cluster_case(ssk, x, quant: LayerQuant, config: AcceleratorConfig, shape: PoolShape, bias=None,
                 padding: int = 1, dsp_per_complex_mac: int = 3) -> ClusterCase:
    """Spec + one float image ``x`` [Cin, H, W] + the functional model's trace on the same schedule."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] != ssk.in_channels:
        raise UsageError(f"input must be [{ssk.in_channels}, H, W], got {x.shape}")
    bo = -(-ssk.out_channels // shape.a_g)
    sched = schedule_layer_blocks(ssk.mask(), config, bo)
    spec = cluster_spec(ssk, quant, config, shape, x.shape[1], x.shape[2], padding, sched, dsp_per_complex_mac, bias)
    x_int = quantize_input(x[None], quant)
    trace = fixed_layer(x_int, ssk, quant, config, padding, bias, sched, dsp_per_complex_mac)
    return ClusterCase(spec, x_int[0], trace)
