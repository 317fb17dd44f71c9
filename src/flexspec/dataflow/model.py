"""Closed-form off-chip traffic and on-chip storage of one spectral convolution layer.

The loop nest
-------------
A spectral layer multiplies, for every input tile ``t`` (``T`` of them per channel), every
output channel ``o`` and input channel ``i``, the sparse spectral kernel ``W[o, i]`` with
the transformed input tile ``X[i, t]`` and accumulates into ``Y[o, t]`` (F complex values,
inverse-transformed and overlap-added once complete).  The general blocked nest tiles the
three loops with block sizes ``(cout_block, cin_block, tile_block)`` and runs the three
block loops in a chosen order (``order``: outermost to innermost, a permutation of
``"o"``, ``"i"``, ``"t"``).  The on-chip memory holds exactly one block of each tensor:

* kernel buffer: the ``cout_block x cin_block`` sparse kernels of the current block
  (their real size: the largest such block of the layer);
* input buffer: ``cin_block x tile_block`` tiles in the frequency domain
  (``F`` complex values of ``2 x activation_bits``) -- inputs stored spatially off chip are
  transformed on load;
* accumulators: ``cout_block x tile_block x F`` complex partial sums of ``psum_bits``;
* overlap-add border line buffer (only when there is more than one tile block): the
  ``K - 1`` pending rows and columns of the output of every channel in flight, at
  ``psum_bits / 2`` bits per real value (``channels x (K-1) x (tiles_x * h + K - 1 + N)``);
  the channels in flight are all ``Cout`` when the tile loop is outside the output-channel
  loop, else ``cout_block``.

A tensor's block stays on chip while consecutive iterations need the same block; it is
(re)loaded whenever its block index changes.  Hence a tensor's block is loaded
``product of the trip counts of the loops from the outermost one down to the innermost loop
it depends on whose trip count exceeds 1`` times, and every block equally often.  When the
input-channel loop runs outside that innermost output loop, every accumulator block is
visited ``r > 1`` times: it is written out as partial sums after each visit but the last and
read back at the start of each visit but the first (``2 (r - 1)`` partial-sum transfers of
the whole ``Cout x T x F`` accumulator array).  Outputs are written once.

Named dataflows (special cases of the general nest):

* ``kernel-reuse`` = order ``"oit"`` with at least two tile blocks (unless the layer has a
  single tile): a kernel block stays while all tiles stream past; kernels are read once,
  inputs once per output-channel block; partial sums when ``cin_block < Cin``.
* ``activation-reuse`` = order ``"tio"`` with at least two kernel blocks (unless the layer
  has a single kernel): a block of input tiles stays while the kernels stream past; inputs
  are read once, kernels once per tile block; with ``cin_block = Cin`` the block holds all
  input channels (no partial sums).
* The fixed-dataflow baselines are those two families.  Any result of the general nest is
  labelled by what it does: ``kernel-reuse`` when kernels are read once and inputs more than
  once, ``activation-reuse`` when inputs are read once and kernels more than once, when both
  are read once ``kernel-reuse`` if tiles stream in two or more blocks else
  ``activation-reuse`` (all tiles on chip), and ``blocked`` when both are re-read.

Accounting (all traffic is counted in bits, exact integers; ``*_bytes`` = bits / 8):

* one sparse kernel: ``nnz * (2 * value_bits + index_bits) + count_bits`` in the default
  format, fewer with each Hermitian twin stored once (:func:`kernel_bits`, the formula of
  :mod:`flexspec.kernel_format`; kernels are packed back to back, no per-kernel padding), or
  the bits the caller says they take (``stored_kernel_bits``, e.g. a schedule stream);
* activations off chip: ``"spatial"`` -- ``H x W`` reals of ``activation_bits`` per channel,
  forward FFT on every load; ``"spectral"`` -- ``T x F`` complex values of
  ``2 x activation_bits`` per channel, transformed once (by the producer);
* outputs: ``Cout x Hout x Wout x activation_bits`` spatial (or the size the network
  analysis passes in: after a fused pooling, or in the consumer's spectral layout);
* partial sums: ``F`` complex values of ``psum_bits`` per tile per output channel (96 by
  default: two 48-bit accumulators, :func:`flexspec.kernel_format.psum_bits`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import CapacityError, UsageError
from ..kernel_format import DEFAULT_ACC_BITS, DEFAULT_FORMAT, KernelFormat, psum_bits
from ..spectral.geometry import check_fft_size, num_frequencies, tile_grid, tile_size
from ..spectral.sparse import twin_once_counts

#: Loop orders (outermost first) the general nest may use.
ORDERS = ("oit", "tio", "oti", "toi", "iot", "ito")
#: Input formats off chip.
INPUT_FORMATS = ("spatial", "spectral")
#: Dataflow labels.
DATAFLOWS = ("kernel-reuse", "activation-reuse", "blocked")
#: Plans the optimizer compares: every blocking, or one of the fixed dataflow families.
PLANS = ("flexible", "kernel-reuse", "activation-reuse")


def dataflow_labels(kernel_passes, input_passes, tile_blocks) -> np.ndarray:
    """Index into DATAFLOWS of each result, by what it re-reads (vectorized)."""
    kp, ip, nt = (np.asarray(x) for x in (kernel_passes, input_passes, tile_blocks))
    both = (kp == 1) & (ip == 1)
    return np.select([(kp == 1) & (ip > 1), (ip == 1) & (kp > 1), both & (nt > 1), both], [0, 1, 0, 1], 2)


def dataflow_name(kernel_passes: int, input_passes: int, tile_blocks: int) -> str:
    return DATAFLOWS[int(dataflow_labels(kernel_passes, input_passes, tile_blocks))]


@dataclass(frozen=True)
class Precision:
    """Word widths.  ``kernel_format``: how sparse kernels are stored
    (:class:`flexspec.kernel_format.KernelFormat`: 16-bit real and imaginary parts, a
    ceil(log2 F)-bit index by default); ``psum_bits`` is one complex partial sum (two 48-bit
    accumulators by default, :func:`flexspec.kernel_format.psum_bits`); ``spatial_weight_bits``
    is one weight of a layer that stays spatial."""

    activation_bits: int = 16
    kernel_format: KernelFormat = DEFAULT_FORMAT
    psum_bits: int = psum_bits(DEFAULT_ACC_BITS)
    spatial_weight_bits: int = 16

    def __post_init__(self):
        for key in ("activation_bits", "psum_bits", "spatial_weight_bits"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise UsageError(f"precision: {key} must be a positive integer, got {v!r}")
        if self.psum_bits % 2:
            raise UsageError(f"precision: psum_bits is one complex value (real + imaginary), must be even, "
                             f"got {self.psum_bits}")
        if not isinstance(self.kernel_format, KernelFormat):
            raise UsageError(f"precision: kernel_format must be a KernelFormat, got {self.kernel_format!r}")

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_PRECISION = Precision()


@dataclass(frozen=True)
class Budget:
    """What a layer may use: on-chip bytes, sustained off-chip bandwidth, compute throughput.

    ``macs_per_second``: complex multiply-accumulates per second of the compute array;
    ``ffts_per_second``: 2-D N x N (inverse) FFTs per second, or None to leave FFT work out of
    the compute time."""

    onchip_bytes: int
    bandwidth_bytes_per_s: float
    macs_per_second: float
    ffts_per_second: float | None = None

    def __post_init__(self):
        if not isinstance(self.onchip_bytes, (int, np.integer)) or self.onchip_bytes < 0:
            raise UsageError(f"budget: onchip_bytes must be an integer >= 0, got {self.onchip_bytes!r}")
        for key in ("bandwidth_bytes_per_s", "macs_per_second"):
            if not getattr(self, key) > 0:
                raise UsageError(f"budget: {key} must be > 0, got {getattr(self, key)!r}")
        if self.ffts_per_second is not None and not self.ffts_per_second > 0:
            raise UsageError(f"budget: ffts_per_second must be > 0 or None, got {self.ffts_per_second!r}")
        object.__setattr__(self, "onchip_bytes", int(self.onchip_bytes))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Blocking:
    """One point of the general nest: loop order (outermost first), block sizes, input format."""

    order: str = "oit"
    cout_block: int = 1
    cin_block: int = 1
    tile_block: int = 1
    input_format: str = "spatial"

    def __post_init__(self):
        if self.order not in ORDERS:
            raise UsageError(f"blocking: order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if self.input_format not in INPUT_FORMATS:
            raise UsageError(f"blocking: input_format must be one of {INPUT_FORMATS}, got {self.input_format!r}")
        for key in ("cout_block", "cin_block", "tile_block"):
            v = getattr(self, key)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise UsageError(f"blocking: {key} must be a positive integer, got {v!r}")
            object.__setattr__(self, key, int(v))

    def to_dict(self) -> dict:
        return asdict(self)


class TrafficTotals:
    """Totals of a result that has ``kernels_bits``, ``inputs_bits``, ``outputs_bits``, ``psums_bits``."""

    @property
    def total_bits(self) -> int:
        return self.kernels_bits + self.inputs_bits + self.outputs_bits + self.psums_bits

    @property
    def total_bytes(self) -> float:
        return self.total_bits / 8


@dataclass(frozen=True)
class LayerTraffic(TrafficTotals):
    """Closed-form traffic (bits) and on-chip storage (bits) of one blocking of one layer."""

    blocking: Blocking
    kernels_bits: int
    inputs_bits: int
    outputs_bits: int
    psums_bits: int
    onchip_bits: int
    kernel_buffer_bits: int
    input_buffer_bits: int
    accumulator_bits: int
    overlap_buffer_bits: int
    resident_bits: int
    kernel_passes: int
    input_passes: int
    psum_round_trips: int
    forward_ffts: int
    inverse_ffts: int
    cout_blocks: int
    cin_blocks: int
    tile_blocks: int
    input_resident: bool = False
    output_resident: bool = False

    @property
    def dataflow(self) -> str:
        return dataflow_name(self.kernel_passes, self.input_passes, self.tile_blocks)

    @property
    def onchip_bytes(self) -> float:
        return self.onchip_bits / 8

    def to_dict(self) -> dict:
        return {
            **self.blocking.to_dict(), "dataflow": self.dataflow,
            "cout_blocks": self.cout_blocks, "cin_blocks": self.cin_blocks, "tile_blocks": self.tile_blocks,
            "kernels_bytes": self.kernels_bits / 8, "inputs_bytes": self.inputs_bits / 8,
            "outputs_bytes": self.outputs_bits / 8, "psums_bytes": self.psums_bits / 8,
            "total_bytes": self.total_bytes, "onchip_bytes": self.onchip_bytes,
            "kernel_buffer_bytes": self.kernel_buffer_bits / 8, "input_buffer_bytes": self.input_buffer_bits / 8,
            "accumulator_bytes": self.accumulator_bits / 8, "overlap_buffer_bytes": self.overlap_buffer_bits / 8,
            "resident_bytes": self.resident_bits / 8,
            "kernel_passes": self.kernel_passes, "input_passes": self.input_passes,
            "psum_round_trips": self.psum_round_trips,
            "forward_ffts": self.forward_ffts, "inverse_ffts": self.inverse_ffts,
            "input_resident": self.input_resident, "output_resident": self.output_resident,
        }


@dataclass(frozen=True)
class TrafficBound:
    """Compulsory traffic: every kernel bit, the input and the output moved once (each unless
    resident on chip), the input in its smallest (spatial) form, no partial sums."""

    kernels_bits: int
    inputs_bits: int
    outputs_bits: int

    @property
    def total_bits(self) -> int:
        return self.kernels_bits + self.inputs_bits + self.outputs_bits

    @property
    def total_bytes(self) -> float:
        return self.total_bits / 8

    def to_dict(self) -> dict:
        return {"kernels_bytes": self.kernels_bits / 8, "inputs_bytes": self.inputs_bits / 8,
                "outputs_bytes": self.outputs_bits / 8, "total_bytes": self.total_bytes}


def kernel_bits(nnz, fft_size: int, precision: Precision = DEFAULT_PRECISION) -> np.ndarray:
    """Bits of each sparse spectral kernel (int64), by the one formula of
    :meth:`flexspec.kernel_format.KernelFormat.kernel_bits`.

    ``nnz``: non-zero counts (any shape), or a bool mask [..., F] of kept positions -- needed by
    the ``twins='once'`` format, which stores one member of each conjugate pair."""
    fmt = precision.kernel_format
    arr = np.asarray(nnz)
    if arr.dtype == bool:
        if fmt.twins == "once":
            stored, real = twin_once_counts(arr, fft_size)
            return fmt.kernel_bits(stored, fft_size, real)
        return fmt.kernel_bits(arr.sum(-1, dtype=np.int64), fft_size)
    if fmt.twins == "once":
        raise UsageError("the 'once' twin layout counts kernel bits from masks, not from non-zero counts")
    return fmt.kernel_bits(arr, fft_size)


def synthetic_nnz(layer, fft_size: int, density: float, seed: int = 0) -> np.ndarray:
    """Non-zero counts [Cout, Cin] of random Bernoulli(density) masks over the F half-plane
    positions of every kernel (drawn as Binomial(F, density), the same distribution)."""
    if not 0.0 <= density <= 1.0:
        raise UsageError(f"density must be in [0, 1], got {density!r}")
    rng = np.random.default_rng(seed)
    return rng.binomial(num_frequencies(fft_size), density,
                        size=(layer.out_channels, layer.in_channels)).astype(np.int64)


@dataclass(frozen=True)
class LayerGeometry:
    """Shape facts of a spectral layer that the model needs."""

    name: str
    cin: int
    cout: int
    height: int
    width: int
    out_height: int
    out_width: int
    kernel_size: int
    fft_size: int
    tile_edge: int
    tiles_y: int
    tiles_x: int
    num_freq: int

    @property
    def tiles(self) -> int:
        return self.tiles_y * self.tiles_x

    @classmethod
    def of(cls, layer, fft_size: int) -> LayerGeometry:
        if not layer.spectral_eligible:
            raise UsageError(f"layer '{layer.name}' is not spectral-eligible ({layer.why_spatial})")
        check_fft_size(fft_size, layer.kernel_size)
        ty, tx = tile_grid(layer.height, layer.width, layer.kernel_size, fft_size)
        return cls(layer.name, layer.in_channels, layer.out_channels, layer.height, layer.width,
                   layer.out_height, layer.out_width, layer.kernel_size, fft_size,
                   tile_size(fft_size, layer.kernel_size), ty, tx, num_frequencies(fft_size))


def _check_nnz(geom: LayerGeometry, nnz) -> np.ndarray:
    nnz = np.asarray(nnz)
    if nnz.dtype == bool and nnz.shape == (geom.cout, geom.cin, geom.num_freq):
        return nnz.sum(axis=2, dtype=np.int64)
    if nnz.shape != (geom.cout, geom.cin):
        raise UsageError(f"layer '{geom.name}': nnz must have shape (Cout, Cin) = ({geom.cout}, {geom.cin}) "
                         f"or be a bool mask (Cout, Cin, F={geom.num_freq}), got {nnz.shape}")
    if nnz.size and (nnz.min() < 0 or nnz.max() > geom.num_freq):
        raise UsageError(f"layer '{geom.name}': non-zero counts must lie in [0, F={geom.num_freq}]")
    return nnz.astype(np.int64)


def _loads(order: str, trips: dict, relevant: str):
    """Block loads of a tensor depending on the loops in ``relevant`` (vectorized over trips)."""
    a, b, c = (np.asarray(trips[x], dtype=np.int64) for x in order)
    prefix = (a, a * b, a * b * c)
    result = np.ones(np.broadcast(a, b, c).shape, dtype=np.int64)
    found = np.zeros(result.shape, dtype=bool)
    for k in (2, 1, 0):
        loop = order[k]
        if loop in relevant:
            hit = ~found & (np.asarray(trips[loop]) > 1)
            result = np.where(hit, prefix[k], result)
            found |= hit
    return result


class LayerModel:
    """A layer with its real kernel sizes, ready to evaluate blockings (vectorized).

    ``nnz``: int [Cout, Cin] non-zero counts, or the bool mask [Cout, Cin, F] (which the
    ``twins='once'`` kernel format needs).  ``stored_kernel_bits``: int [Cout, Cin] bits each
    kernel takes in memory, when they are not the format's entry count (e.g. the schedule stream
    of :func:`flexspec.kernel_format.schedule_stream_bits` shared among the kernels of each group).
    Deterministic; the cache of kernel-block maxima lives in the instance only."""

    def __init__(self, layer, nnz, fft_size: int, precision: Precision = DEFAULT_PRECISION, output_bits: int | None = None,
                 stored_kernel_bits=None):
        self.layer = layer
        self.geom = g = LayerGeometry.of(layer, fft_size)
        self.precision = p = precision
        self.nnz = _check_nnz(g, nnz)
        if stored_kernel_bits is not None:
            self.kbits = np.asarray(stored_kernel_bits, dtype=np.int64)
            if self.kbits.shape != self.nnz.shape or (self.kbits.size and self.kbits.min() < 0):
                raise UsageError(f"layer '{g.name}': stored_kernel_bits must be >= 0 with shape {self.nnz.shape}, "
                                 f"got shape {self.kbits.shape}")
        else:
            self.kbits = kernel_bits(nnz if np.asarray(nnz).dtype == bool else self.nnz, fft_size, p)
        self.kernel_total_bits = int(self.kbits.sum())
        self.complex_macs = int(self.nnz.sum()) * g.tiles
        self.input_bits = {
            "spatial": g.cin * g.height * g.width * p.activation_bits,
            "spectral": g.cin * g.tiles * g.num_freq * 2 * p.activation_bits,
        }
        self.input_spatial_bits = self.input_bits["spatial"]
        self.default_output_bits = g.cout * g.out_height * g.out_width * p.activation_bits
        self.output_bits = self.default_output_bits if output_bits is None else int(output_bits)
        self.psum_array_bits = g.cout * g.tiles * g.num_freq * p.psum_bits
        self._kmax: dict = {}
        self._sat = None

    # -- buffers -------------------------------------------------------------------------
    def kernel_block_max_bits(self, bo: int, bi: int) -> int:
        key = (int(bo), int(bi))
        if key not in self._kmax:
            g = self.geom
            if self._sat is None:  # summed-area table of kernel bits, zero row/column in front
                self._sat = np.zeros((g.cout + 1, g.cin + 1), dtype=np.int64)
                self._sat[1:, 1:] = self.kbits.cumsum(0).cumsum(1)
            r = np.minimum(np.arange(0, g.cout + key[0], key[0]), g.cout)
            c = np.minimum(np.arange(0, g.cin + key[1], key[1]), g.cin)
            r, c = np.unique(r), np.unique(c)
            s = self._sat[np.ix_(r, c)]
            blocks = s[1:, 1:] - s[:-1, 1:] - s[1:, :-1] + s[:-1, :-1]
            self._kmax[key] = int(blocks.max())
        return self._kmax[key]

    def _kernel_buffers(self, bo, bi) -> np.ndarray:
        bo, bi = np.broadcast_arrays(bo, bi)
        pairs, inverse = np.unique(np.stack([bo.ravel(), bi.ravel()], axis=1), axis=0, return_inverse=True)
        vals = np.array([self.kernel_block_max_bits(a, b) for a, b in pairs], dtype=np.int64)
        return vals[inverse.ravel()].reshape(bo.shape)

    def overlap_bits(self, order: str, bo, nt):
        g, p = self.geom, self.precision
        bo = np.asarray(bo)
        nt = np.asarray(nt)
        nO = -(-g.cout // bo)
        in_flight = np.where((order.index("t") < order.index("o")) & (nO > 1), g.cout, np.minimum(bo, g.cout))
        per_channel = (g.kernel_size - 1) * (g.tiles_x * g.tile_edge + g.kernel_size - 1 + g.fft_size)
        return np.where(nt > 1, in_flight * per_channel * (p.psum_bits // 2), 0)

    # -- the closed form -----------------------------------------------------------------
    def evaluate(self, order: str, bo, bi, bt, input_format: str = "spatial", kernel_buffer_bits=None):
        """Traffic and storage of ``order`` for arrays of block sizes (broadcast); dict of int64 arrays.

        Inputs and outputs are counted as not resident (the caller zeroes them)."""
        g, p = self.geom, self.precision
        bo, bi, bt = (np.asarray(x, dtype=np.int64) for x in (bo, bi, bt))
        nO, nI, nT = -(-g.cout // bo), -(-g.cin // bi), -(-g.tiles // bt)
        trips = {"o": nO, "i": nI, "t": nT}
        kpass = _loads(order, trips, "oi") // (nO * nI)
        ipass = _loads(order, trips, "it") // (nI * nT)
        visits = _loads(order, trips, "ot") // (nO * nT)
        bo_, bi_, bt_ = np.minimum(bo, g.cout), np.minimum(bi, g.cin), np.minimum(bt, g.tiles)
        if kernel_buffer_bits is not None:
            kbuf = kernel_buffer_bits
        elif bo_.ndim == 0 and bi_.ndim == 0:
            kbuf = np.int64(self.kernel_block_max_bits(bo_, bi_))
        else:
            kbuf = self._kernel_buffers(bo_, bi_)
        xbuf = bi_ * bt_ * g.num_freq * 2 * p.activation_bits
        abuf = bo_ * bt_ * g.num_freq * p.psum_bits
        obuf = self.overlap_bits(order, bo_, nT)
        fwd_per_pass = g.cin * g.tiles
        return {
            "kernels_bits": kpass * self.kernel_total_bits,
            "inputs_bits": ipass * self.input_bits[input_format],
            "psums_bits": 2 * (visits - 1) * self.psum_array_bits,
            "kernel_buffer_bits": kbuf, "input_buffer_bits": xbuf, "accumulator_bits": abuf,
            "overlap_buffer_bits": obuf, "buffer_bits": kbuf + xbuf + abuf + obuf,
            "kernel_passes": kpass, "input_passes": ipass, "psum_round_trips": visits - 1,
            "cout_blocks": nO, "cin_blocks": nI, "tile_blocks": nT,
            "forward_ffts": fwd_per_pass * (ipass if input_format == "spatial" else 1),
        }

    def traffic(self, blocking: Blocking, *, input_resident: bool = False, output_resident: bool = False,
                resident_bits: int | None = None, output_bits: int | None = None) -> LayerTraffic:
        fmt = "spatial" if input_resident else blocking.input_format
        if input_resident and blocking.input_format != "spatial":
            blocking = Blocking(blocking.order, blocking.cout_block, blocking.cin_block, blocking.tile_block)
        e = self.evaluate(blocking.order, blocking.cout_block, blocking.cin_block, blocking.tile_block, fmt)
        if resident_bits is None:
            resident_bits = (self.input_spatial_bits if input_resident else 0) + \
                            (self.output_bits if output_resident else 0)
        g = self.geom
        return LayerTraffic(
            blocking=blocking,
            kernels_bits=int(e["kernels_bits"]),
            inputs_bits=0 if input_resident else int(e["inputs_bits"]),
            outputs_bits=0 if output_resident else (self.output_bits if output_bits is None else int(output_bits)),
            psums_bits=int(e["psums_bits"]),
            onchip_bits=int(e["buffer_bits"]) + int(resident_bits),
            kernel_buffer_bits=int(e["kernel_buffer_bits"]), input_buffer_bits=int(e["input_buffer_bits"]),
            accumulator_bits=int(e["accumulator_bits"]), overlap_buffer_bits=int(e["overlap_buffer_bits"]),
            resident_bits=int(resident_bits),
            kernel_passes=int(e["kernel_passes"]), input_passes=int(e["input_passes"]),
            psum_round_trips=int(e["psum_round_trips"]),
            forward_ffts=int(e["forward_ffts"]), inverse_ffts=g.cout * g.tiles,
            cout_blocks=int(e["cout_blocks"]), cin_blocks=int(e["cin_blocks"]), tile_blocks=int(e["tile_blocks"]),
            input_resident=bool(input_resident), output_resident=bool(output_resident),
        )

    def bound(self, input_resident: bool = False, output_resident: bool = False) -> TrafficBound:
        return TrafficBound(self.kernel_total_bits, 0 if input_resident else self.input_spatial_bits,
                            0 if output_resident else self.output_bits)

    # -- candidate search ----------------------------------------------------------------
    def candidates(self, orders=ORDERS, formats=INPUT_FORMATS) -> dict:
        """Every candidate blocking (orders x formats x block-size grid), evaluated; dict of arrays."""
        g = self.geom
        bo_c = block_candidates(g.cout)
        bi_c = block_candidates(g.cin)
        bt_c = block_candidates(g.tiles, extra=[g.tiles_x * m for m in (1, 2, 4, 8, 16, 32)])
        BO, BI, BT = (x.ravel() for x in np.meshgrid(bo_c, bi_c, bt_c, indexing="ij"))
        kgrid = np.array([[self.kernel_block_max_bits(a, b) for b in bi_c] for a in bo_c], dtype=np.int64)
        kbuf = np.repeat(kgrid.ravel(), bt_c.size)
        parts = []
        for order in orders:
            for fmt in formats:
                e = self.evaluate(order, BO, BI, BT, fmt, kbuf)
                e["order_index"] = np.full(BO.shape, ORDERS.index(order), dtype=np.int64)
                e["format_index"] = np.full(BO.shape, INPUT_FORMATS.index(fmt), dtype=np.int64)
                e["cout_block"], e["cin_block"], e["tile_block"] = BO, BI, BT
                parts.append(e)
        return {k: np.concatenate([np.broadcast_to(p[k], BO.shape) for p in parts]) for k in parts[0]}

    def plan_mask(self, cands: dict, plan: str) -> np.ndarray:
        """Candidates a plan may use: all ('flexible') or one fixed dataflow family."""
        g = self.geom
        order = cands["order_index"]
        if plan == "flexible":
            return np.ones(order.shape, dtype=bool)
        if plan == "kernel-reuse":
            return (order == ORDERS.index("oit")) & ((cands["tile_blocks"] > 1) | (g.tiles == 1))
        if plan == "activation-reuse":
            return (order == ORDERS.index("tio")) & (
                (cands["cout_blocks"] * cands["cin_blocks"] > 1) | (g.cout * g.cin == 1))
        raise UsageError(f"unknown plan {plan!r}; known: {', '.join(PLANS)}")

    def blocking_at(self, cands: dict, k: int) -> Blocking:
        return Blocking(ORDERS[int(cands["order_index"][k])], int(cands["cout_block"][k]),
                        int(cands["cin_block"][k]), int(cands["tile_block"][k]),
                        INPUT_FORMATS[int(cands["format_index"][k])])

    def min_buffer_bits(self) -> int:
        """Smallest on-chip storage of any blocking (all block sizes 1)."""
        return int(min(self.evaluate(o, 1, 1, 1)["buffer_bits"] for o in ORDERS))


def block_candidates(extent: int, extra=()) -> np.ndarray:
    """Block sizes tried: powers of two below the extent, its divisors, the extent, and extras."""
    sizes = {extent}
    p = 1
    while p < extent:
        sizes.add(p)
        p *= 2
    for d in range(1, math.isqrt(extent) + 1):
        if extent % d == 0:
            sizes.add(d)
            sizes.add(extent // d)
    sizes.update(int(x) for x in extra if 1 <= x <= extent)
    return np.array(sorted(sizes), dtype=np.int64)


# -- public functions ------------------------------------------------------------------------
def layer_traffic(layer, nnz, fft_size: int, blocking: Blocking, precision: Precision = DEFAULT_PRECISION, *,
                  input_resident: bool = False, output_resident: bool = False,
                  output_bits: int | None = None) -> LayerTraffic:
    """Closed-form traffic and on-chip storage of one blocking of one spectral layer."""
    return LayerModel(layer, nnz, fft_size, precision, output_bits).traffic(
        blocking, input_resident=input_resident, output_resident=output_resident)


def lower_bound(layer, nnz, fft_size: int, precision: Precision = DEFAULT_PRECISION, *, input_resident: bool = False,
                output_resident: bool = False, output_bits: int | None = None) -> TrafficBound:
    """Compulsory traffic of one layer: its kernels, input (spatial) and output, each once."""
    return LayerModel(layer, nnz, fft_size, precision, output_bits).bound(input_resident, output_resident)


@dataclass(frozen=True)
class TradeoffCurve:
    """Minimum traffic as a function of on-chip capacity (a non-increasing step function).

    ``capacity_bytes[k]`` is the smallest capacity at which ``traffic_bytes[k]`` is reached;
    below ``capacity_bytes[0]`` no blocking fits.  The last point meets the bound when the
    search reaches it (``bound_met``)."""

    layer_name: str
    capacity_bytes: np.ndarray = field(repr=False)
    traffic_bytes: np.ndarray = field(repr=False)
    dataflows: tuple[str, ...]
    bound_bytes: float
    plan: str = "flexible"
    kernel_storage: str = "entries"  # 'entries' (packed non-zeros), else the label of the caller's stored bits

    @property
    def min_capacity_bytes(self) -> float:
        return float(self.capacity_bytes[0])

    @property
    def bound_capacity_bytes(self) -> float | None:
        hit = np.nonzero(self.traffic_bytes <= self.bound_bytes)[0]
        return float(self.capacity_bytes[hit[0]]) if hit.size else None

    @property
    def bound_met(self) -> bool:
        return self.bound_capacity_bytes is not None

    def traffic_at(self, capacity_bytes) -> np.ndarray:
        """Minimum traffic (bytes) at each capacity; inf where nothing fits."""
        cap = np.asarray(capacity_bytes, dtype=float)
        k = np.searchsorted(self.capacity_bytes, cap, side="right") - 1
        out = np.where(k >= 0, self.traffic_bytes[np.maximum(k, 0)], np.inf)
        return out

    def to_dict(self) -> dict:
        return {"layer": self.layer_name, "plan": self.plan, "kernel_storage": self.kernel_storage,
                "capacity_bytes": self.capacity_bytes.tolist(),
                "traffic_bytes": self.traffic_bytes.tolist(), "dataflows": list(self.dataflows),
                "bound_bytes": self.bound_bytes, "bound_capacity_bytes": self.bound_capacity_bytes}


def _frontier(onchip_bits, total_bits):
    """Indices of the Pareto frontier (increasing capacity, strictly decreasing traffic)."""
    idx = np.lexsort((total_bits, onchip_bits))
    t = total_bits[idx]
    best = np.minimum.accumulate(t)
    keep = np.ones(idx.size, dtype=bool)
    keep[1:] = t[1:] < best[:-1]
    return idx[keep]


def tradeoff_curve(layer, nnz, fft_size: int, precision: Precision = DEFAULT_PRECISION, plan: str = "flexible",
                   formats=INPUT_FORMATS, stored_kernel_bits=None, kernel_storage: str = "given") -> TradeoffCurve:
    """Bandwidth-storage tradeoff of one layer in isolation (input read, output written spatial),
    over every blocking of ``plan`` ('flexible' or one fixed dataflow family).  Kernels count as
    packed entries, or as ``stored_kernel_bits`` (int [Cout, Cin], e.g. a design's schedule
    stream, :class:`LayerModel`), labelled ``kernel_storage`` ('entries' without them)."""
    m = LayerModel(layer, nnz, fft_size, precision, stored_kernel_bits=stored_kernel_bits)
    c = m.candidates(ORDERS, formats)
    mask = m.plan_mask(c, plan)
    c = {k: v[mask] for k, v in c.items()}
    total = c["kernels_bits"] + c["inputs_bits"] + c["psums_bits"] + m.output_bits
    keep = _frontier(c["buffer_bits"], total)
    labels = dataflow_labels(c["kernel_passes"][keep], c["input_passes"][keep], c["tile_blocks"][keep])
    return TradeoffCurve(layer.name, c["buffer_bits"][keep] / 8, total[keep] / 8,
                         tuple(DATAFLOWS[i] for i in labels), m.bound().total_bytes, plan,
                         "entries" if stored_kernel_bits is None else kernel_storage)


def choose(model: LayerModel, cands: dict, budget: Budget, *, input_format: str | None = None,
           input_resident: bool = False, output_resident: bool = False, resident_bits: int = 0,
           output_bits: int | None = None):
    """Index of the best candidate: minimal time max(compute, traffic / bandwidth), then minimal
    traffic, on-chip storage and FFT work; None when nothing fits."""
    c = cands
    mask = c["buffer_bits"] + resident_bits <= budget.onchip_bytes * 8
    if input_resident:
        mask &= c["format_index"] == INPUT_FORMATS.index("spatial")
    elif input_format is not None:
        mask &= c["format_index"] == INPUT_FORMATS.index(input_format)
    idx = np.nonzero(mask)[0]
    if idx.size == 0:
        return None
    total = c["kernels_bits"][idx] + c["psums_bits"][idx]
    if not input_resident:
        total = total + c["inputs_bits"][idx]
    if not output_resident:
        total = total + (model.output_bits if output_bits is None else int(output_bits))
    compute = compute_seconds(model.complex_macs, c["forward_ffts"][idx] + model.geom.cout * model.geom.tiles,
                              budget)
    time = np.maximum(compute, total / 8 / budget.bandwidth_bytes_per_s)
    keep = np.arange(idx.size)
    for key in (time, total, c["buffer_bits"][idx], c["forward_ffts"][idx]):  # lexicographic minimum
        k = key[keep]
        keep = keep[k == k.min()]
    return int(idx[keep[0]])


def compute_seconds(complex_macs, ffts, budget: Budget):
    t = np.asarray(complex_macs, dtype=float) / budget.macs_per_second
    if budget.ffts_per_second is not None:
        t = np.maximum(t, np.asarray(ffts, dtype=float) / budget.ffts_per_second)
    return t


def capacity_error(layer_name: str, need_bits: int, have_bytes: int, what: str = "") -> CapacityError:
    return CapacityError(
        f"layer '{layer_name}': no legal blocking fits in {have_bytes:,} on-chip bytes{what}; "
        f"it needs at least {-(-need_bits // 8):,} bytes; raise --onchip-bytes")


def optimize_layer(layer, nnz, fft_size: int, budget: Budget, precision: Precision = DEFAULT_PRECISION, *,
                   plan: str = "flexible", formats=INPUT_FORMATS) -> LayerTraffic:
    """Best blocking of one layer in isolation (input read and output written, no residency)."""
    m = LayerModel(layer, nnz, fft_size, precision)
    c = m.candidates(ORDERS, formats)
    mask = m.plan_mask(c, plan)
    c = {k: v[mask] for k, v in c.items()}
    k = choose(m, c, budget)
    if k is None:
        raise capacity_error(layer.name, int(c["buffer_bits"].min()), budget.onchip_bytes,
                             "" if plan == "flexible" else f" (plan '{plan}')")
    return m.traffic(m.blocking_at(c, k))
