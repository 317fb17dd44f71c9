"""Functional simulation: one spectral layer, and a whole real model, in fixed point end to end.

What the hardware does, bit for bit (:func:`fixed_layer`; every integer array kept in a
:class:`LayerTrace`):

1. the spatial input arrives as ``data_bits`` integers (``in_frac`` fractional bits); it is cut into
   h x h tiles (h = N - K + 1), zero-padded to N x N;
2. fixed-point 2-D FFT of each tile (``fixed_point.fft2d_real_fixed``, the FFT engine's model):
   half-plane at ``data_bits`` (``spec_frac``), what the tile buffer holds;
3. the sparse MAC: kernels quantized to ``data_bits`` (``kernel_frac``, round to nearest even),
   the schedules replayed (every read of every group checked against the bank ports:
   :func:`schedule_reads` raises ``BankConflictError``), exact products summed in ``acc_bits``
   two's complement (wrapping; ``engine="matmul"`` one exact matrix product per frequency,
   ``engine="replay"`` group by group through ``fixed_point.execute_group_tiles``: bit-identical);
4. accumulators rounded to the IFFT input width: ``saturate(round_shift(acc, acc_shift), ifft_bits)``;
5. fixed-point 2-D IFFT (``fixed_point.ifft2d_real_fixed``) to ``block_bits`` (``block_frac``);
6. overlap-add of the blocks and crop (exact integer sums; hardware width ``block_bits + 2`` for
   the up to ``ceil(N/h)^2 = 4`` overlapping blocks at K = 3), plus the bias quantized to
   ``block_frac``;
7. output: ``saturate(round_shift(sum, out_shift), data_bits)`` at ``out_frac`` (before ReLU);
   ReLU is ``max(y, 0)`` on the integers.  The next layer takes these integers as they are
   (its ``in_frac`` is this layer's ``out_frac``); 2x2 max-pooling on integers is exact.
   The fully connected layers of fmnist_vgg run in float on the dequantized features.

Rounding inside the datapath is round half away from zero (``fixed_point.round_shift``); host-side
conversions of floats (input image, kernels, bias) round to nearest even.  Every saturation is
counted.  Scales (:class:`LayerQuant`) come from :func:`calibrate_fmnist` / :func:`calibrate_layer`:
the largest fractional-bit counts at which the calibration data's maxima, times ``2^headroom_bits``,
fit each width, taken on images that are *not* the evaluation images (Fashion-MNIST training
images by default).

Error bound (:func:`functional_layer`, per output pixel, derived, no fudge factor), against the
float64 sparse spectral OaA of the same float input and pruned kernels
(``flexspec.spectral.sparse.sparse_oaa_conv2d``).  With ``|.|`` complex magnitudes:

* tile spectra: ``e_X`` = the FFT's propagated bound (``fixed_point.fft2d_real_checked``) started
  from each pixel's actual input rounding error (0 for pixels that are exact, e.g. the previous
  layer's integers);
* kernels: ``d_W = |W_q - W|`` (actual, the kernels are constants);
* accumulators (exact integer MAC): ``e_Y = sum_i m (|X_q| d_W + |W| e_X)`` plus ``sqrt(2)/2``
  IFFT-input LSB for the rounding to ``ifft_bits``;
* IFFT: the bound propagated through the IFFT network from ``e_Y`` (``ifft2d_real_checked``),
  plus 1/2 output LSB of rounding;
* overlap-add sums the blocks' bounds; the bias adds its rounding error; the output rounding adds
  1/2 LSB of ``out_frac``; plus ``1e-9 (1 + max|y|)`` for the float64 reference's own rounding.

The bound holds where nothing saturated (the check reports the saturation count).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import datasets
from ..datasets import to_float
from ..errors import UsageError
from ..spectral import real_model as rm
from ..spectral.oaa import crop_output, input_tiles, overlap_add, transform_tiles
from ..spectral.sparse import sparse_oaa_conv2d
from .arch import AcceleratorConfig
from .grouping import schedule_layer_blocks
from .fixed_point import (
    AccumulatorOverflowError, BankConflictError, FFTFormat, choose_frac_bits, execute_group_tiles,
    fft2d_real_checked, ifft2d_real_checked, max_terms, quantize_complex,
    quantize_real, round_shift, saturate, wrap_signed,
)

ENGINES = ("matmul", "replay")
#: Default twiddle width of the FFT/IFFT engines (a DSP48 B port).
TWIDDLE_BITS = 18
#: Default extra output bits of the IFFT over the data width (fraction kept into the overlap-add).
BLOCK_EXTRA_BITS = 4


@dataclass(frozen=True)
class LayerQuant:
    """Fixed-point formats of one spectral layer: widths and the fractional bits at every rounding
    point (value = integer * 2^-frac).  The shifts between consecutive points are derived and
    must be >= 0 (a right shift with rounding); :func:`quant_from_maxima` guarantees it."""

    fft_size: int
    in_frac: int
    spec_frac: int
    kernel_frac: int
    ifft_in_frac: int
    block_frac: int
    out_frac: int
    data_bits: int = 16
    acc_bits: int = 48
    ifft_bits: int = 16
    block_bits: int = 16 + BLOCK_EXTRA_BITS
    tw_bits: int = TWIDDLE_BITS

    def __post_init__(self):
        for name, v in (("fft shift", self.fft_shift), ("accumulator shift", self.acc_shift),
                        ("IFFT shift", self.ifft_shift), ("output shift", self.out_shift)):
            if v < 0:
                raise UsageError(f"layer quantization: the {name} is {v} < 0 (fractional bits must not grow "
                                 f"along the datapath); derive formats with quant_from_maxima")
        if not 2 * self.data_bits + 1 <= self.acc_bits <= 63:
            raise UsageError(f"acc_bits must be {2 * self.data_bits + 1}..63, got {self.acc_bits}")
        self.fft_format  # noqa: B018  (validates widths)
        self.ifft_format  # noqa: B018

    @property
    def stages(self) -> int:
        return self.fft_size.bit_length() - 1

    @property
    def fft_shift(self) -> int:
        return self.in_frac - self.spec_frac

    @property
    def acc_frac(self) -> int:
        return self.spec_frac + self.kernel_frac

    @property
    def acc_shift(self) -> int:
        return self.acc_frac - self.ifft_in_frac

    @property
    def ifft_shift(self) -> int:
        return self.ifft_in_frac + 2 * self.stages - self.block_frac

    @property
    def out_shift(self) -> int:
        return self.block_frac - self.out_frac

    @property
    def fft_format(self) -> FFTFormat:
        return FFTFormat(self.fft_size, self.data_bits, self.data_bits, self.fft_shift, self.tw_bits)

    @property
    def ifft_format(self) -> FFTFormat:
        return FFTFormat(self.fft_size, self.ifft_bits, self.block_bits, self.ifft_shift, self.tw_bits, inverse=True)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(fft_shift=self.fft_shift, acc_shift=self.acc_shift, ifft_shift=self.ifft_shift,
                 out_shift=self.out_shift)
        return d


@dataclass(frozen=True)
class LayerMaxima:
    """Largest magnitudes of one layer's quantities on calibration data (float pipeline): input,
    tile-spectrum parts, accumulator parts, IFFT block values, output (with bias, before ReLU)."""

    input: float
    spectrum: float
    accumulator: float
    block: float
    output: float

    def merge(self, other: LayerMaxima) -> LayerMaxima:
        return LayerMaxima(*(max(a, b) for a, b in zip(astuple_(self), astuple_(other), strict=True)))


def astuple_(m: LayerMaxima) -> tuple:
    return (m.input, m.spectrum, m.accumulator, m.block, m.output)


def _max_part(z) -> float:
    z = np.asarray(z)
    if z.size == 0:
        return 0.0
    return float(max(np.abs(z.real).max(), np.abs(z.imag).max() if np.iscomplexobj(z) else 0.0))


def quant_from_maxima(mx: LayerMaxima, kernel_max: float, fft_size: int, in_frac: int | None = None,
                      data_bits: int = 16, acc_bits: int = 48, ifft_bits: int | None = None,
                      block_bits: int | None = None, tw_bits: int = TWIDDLE_BITS,
                      headroom_bits: int = 1) -> LayerQuant:
    """Formats from calibration maxima: at each rounding point the largest fractional-bit count at
    which ``maximum * 2^headroom_bits`` fits the width (``fixed_point.choose_frac_bits``), capped so
    that no shift is negative.  ``in_frac``: the input format when fixed by the previous layer."""
    ifft_bits = data_bits if ifft_bits is None else ifft_bits
    block_bits = data_bits + BLOCK_EXTRA_BITS if block_bits is None else block_bits
    h = 2.0**headroom_bits
    stages = fft_size.bit_length() - 1
    if in_frac is None:
        in_frac = choose_frac_bits(mx.input * h, data_bits)
    spec = min(choose_frac_bits(mx.spectrum * h, data_bits), in_frac)
    kern = choose_frac_bits(kernel_max, data_bits)
    ifft_in = min(choose_frac_bits(mx.accumulator * h, ifft_bits), spec + kern)
    block = min(choose_frac_bits(mx.block * h, block_bits), ifft_in + 2 * stages)
    out = min(choose_frac_bits(mx.output * h, data_bits), block)
    return LayerQuant(fft_size, in_frac, spec, kern, ifft_in, block, out, data_bits, acc_bits, ifft_bits,
                      block_bits, tw_bits)


def layer_maxima(x, ssk, padding=1, bias=None) -> tuple[LayerMaxima, np.ndarray]:
    """Calibration statistics of one layer on float input ``x`` [B, Cin, H, W] (float64 OaA
    pipeline); also returns the layer's float output (with bias, before ReLU)."""
    x = np.asarray(x, dtype=np.float64)
    n, k = ssk.fft_size, ssk.kernel_size
    xf = transform_tiles(x, k, n)  # [B, Cin, Ty, Tx, N, M]
    b, cin, ty, tx = xf.shape[:4]
    w = ssk.dense().reshape(ssk.out_channels, cin, -1).astype(np.complex128)
    xm = xf.reshape(b, cin, ty * tx, -1).transpose(3, 1, 0, 2).reshape(-1, cin, b * ty * tx)  # [F, Cin, BT]
    acc = np.matmul(w.transpose(2, 0, 1), xm)  # [F, Cout, BT]
    yf = acc.reshape(n, n // 2 + 1, ssk.out_channels, b, ty, tx).transpose(3, 2, 4, 5, 0, 1)
    blocks = np.fft.irfft2(yf, s=(n, n))
    y = crop_output(overlap_add(blocks, n - k + 1), x.shape[2], x.shape[3], k, padding)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return LayerMaxima(float(np.abs(x).max(initial=0.0)), _max_part(xf), _max_part(acc),
                       float(np.abs(blocks).max(initial=0.0)), float(np.abs(y).max(initial=0.0))), y


def calibrate_layer(x, ssk, padding=1, bias=None, in_frac: int | None = None, **widths) -> LayerQuant:
    """Formats of one layer from calibration input ``x`` (float) -- see :func:`quant_from_maxima`."""
    mx, _ = layer_maxima(x, ssk, padding, bias)
    return quant_from_maxima(mx, _max_part(ssk.dense()), ssk.fft_size, in_frac, **widths)


@dataclass
class LayerTrace:
    """Every integer array of one layer's fixed-point run (see the module doc for the order).

    Tile index t runs over (batch, tile row, tile column) row-major; frequency index f over the
    half-plane row-major (f = r*(N/2+1) + c)."""

    quant: LayerQuant
    x_int: np.ndarray  # [B, Cin, H, W] at in_frac
    tiles: np.ndarray  # [Cin, T, N, N] zero-padded input tiles
    spec_re: np.ndarray  # [Cin, T, F] FFT output at spec_frac (the tile buffer)
    spec_im: np.ndarray
    kernel_re: np.ndarray  # [Cout, Cin, F] at kernel_frac
    kernel_im: np.ndarray
    acc_re: np.ndarray  # [Cout, T, F] wrapped to acc_bits, at acc_frac
    acc_im: np.ndarray
    ifft_in_re: np.ndarray  # [Cout, T, F] at ifft_in_frac
    ifft_in_im: np.ndarray
    blocks: np.ndarray  # [Cout, T, N, N] IFFT output at block_frac
    bias_int: np.ndarray | None  # [Cout] at block_frac
    y_int: np.ndarray  # [B, Cout, H', W'] at out_frac, before ReLU
    saturated: dict = field(default_factory=dict)  # rounding point -> saturated values

    @property
    def y_float(self) -> np.ndarray:
        """The layer output dequantized (before ReLU)."""
        return np.ldexp(self.y_int.astype(np.float64), -self.quant.out_frac)


def schedule_reads(sched, ports: int, cout: int, cin: int) -> np.ndarray:
    """Replay a layer's schedules once: int64 [Cout, Cin, F], how many times each kernel value
    (o, i, f) is read and multiplied.  Raises BankConflictError (group, cycle, bank) when a bank
    serves more reads in one cycle than ``ports`` (distinct frequencies per cycle when the
    schedule broadcasts), and UsageError when a group mixes input channels."""
    s = sched.schedule
    f, banks = s.num_frequencies, int(s.bank_of.max()) + 1 if s.bank_of.size else 1
    groups = np.asarray(sched.groups)
    start = np.zeros(s.num_groups + 1, dtype=np.int64)
    np.cumsum(s.cycles, out=start[1:])
    slot = start[s.group] + s.cycle
    sl, ix = slot, s.index
    if s.broadcast:
        key = np.unique(slot * f + s.index)
        sl, ix = np.divmod(key, f)
    key = sl * banks + s.bank_of[ix]
    counts = np.bincount(key, minlength=1)
    bad = np.nonzero(counts > ports)[0]
    if bad.size:
        slot0, bank = divmod(int(bad[0]), banks)
        g = int(np.searchsorted(start, slot0, side="right") - 1)
        raise BankConflictError(slot0 - int(start[g]), bank, int(counts[bad[0]]), ports, g)
    live = groups >= 0
    ch = np.where(live, groups % cin, -1)
    first = np.where(live.any(1), ch.max(1), -1)
    if np.any(live & (ch != first[:, None])):
        g = int(np.nonzero((live & (ch != first[:, None])).any(1))[0][0])
        raise UsageError(f"group {g} mixes input channels")
    kid = groups[s.group, s.pe]
    ok = kid >= 0
    mult = np.zeros(cout * cin * f, dtype=np.int64)
    np.add.at(mult, kid[ok] * f + s.index[ok], 1)
    return mult.reshape(cout, cin, f)


def _accumulate_matmul(xr, xi, wr, wi, mult, data_bits: int):
    """acc[o, t, f] = sum_i mult(o,i,f) W(o,i,f) X(i,t,f), exact (None when it might not be)."""
    cin = xr.shape[0]
    big = max(int(np.abs(xr).max(initial=0)), int(np.abs(xi).max(initial=0)), 1)
    wmr, wmi = mult * wr, mult * wi
    wbig = max(int(np.abs(wmr).max(initial=0)), int(np.abs(wmi).max(initial=0)), 1)
    if 4 * cin * big * wbig >= 2**52:  # a partial sum could leave the exact float64 integers
        return None
    w = (wmr + 1j * wmi.astype(np.float64)).transpose(2, 0, 1)  # [F, Cout, Cin]
    x = (xr + 1j * xi.astype(np.float64)).transpose(2, 0, 1)  # [F, Cin, BT]
    y = np.matmul(w, x).transpose(1, 2, 0)  # [Cout, BT, F]
    return np.rint(y.real).astype(np.int64), np.rint(y.imag).astype(np.int64)


def _mac(xr, xi, wr, wi, sched, config: AcceleratorConfig, engine: str, reads, dsp_per_complex_mac: int):
    """The PE array's accumulators [Cout, T, F] (int64, wrapped to acc_bits)."""
    cout, cin, f = wr.shape
    bt = xr.shape[1]
    s = sched.schedule
    if engine == "matmul":
        mult = reads if reads is not None else schedule_reads(sched, config.ports, cout, cin)
        acc = _accumulate_matmul(xr, xi, wr, wi, mult, config.data_bits)
        if acc is None:  # exact int64 path (wide data): same sum, integer arithmetic
            acc = (np.einsum("oif,itf->otf", mult * wr, xr) - np.einsum("oif,itf->otf", mult * wi, xi),
                   np.einsum("oif,itf->otf", mult * wr, xi) + np.einsum("oif,itf->otf", mult * wi, xr))
        acc_re, acc_im = acc
    else:
        acc_re = np.zeros((cout, bt, f), dtype=np.int64)
        acc_im = np.zeros((cout, bt, f), dtype=np.int64)
        for g in range(s.num_groups):
            ids = sched.groups[g]
            live = ids >= 0
            if not live.any():
                continue
            j, i = np.divmod(ids[live], cin)
            if np.any(i != i[0]):
                raise UsageError(f"group {g} mixes input channels")
            i = int(i[0])
            kre = np.zeros((config.pes, f), dtype=np.int64)
            kim = np.zeros((config.pes, f), dtype=np.int64)
            kre[live], kim[live] = wr[j, i], wi[j, i]
            re, im = execute_group_tiles(s.group_table(g), s.bank_of, config.ports, xr[i], xi[i], kre, kim,
                                         broadcast=s.broadcast, acc_bits=config.acc_bits,
                                         dsp_per_complex_mac=dsp_per_complex_mac, group=g)
            acc_re[j] += re[:, live].transpose(1, 0, 2)
            acc_im[j] += im[:, live].transpose(1, 0, 2)
    # modular accumulation: wrapping once equals wrapping after every addition
    return wrap_signed(acc_re, config.acc_bits), wrap_signed(acc_im, config.acc_bits)


def _round_sat(x, shift: int, bits: int):
    r = round_shift(x, shift)
    s = saturate(r, bits)
    return s, int(np.count_nonzero(s != r))


def _check_layer_args(ssk, config: AcceleratorConfig, quant: LayerQuant, engine: str):
    if engine not in ENGINES:
        raise UsageError(f"unknown functional engine {engine!r}; known: {', '.join(ENGINES)}")
    if ssk.fft_size != config.fft_size or quant.fft_size != config.fft_size:
        raise UsageError(f"kernels have N={ssk.fft_size}, the quantization N={quant.fft_size}, "
                         f"the accelerator N={config.fft_size}")
    if quant.data_bits != config.data_bits or quant.acc_bits != config.acc_bits:
        raise UsageError(f"layer quantization has {quant.data_bits}/{quant.acc_bits}-bit data/accumulators, "
                         f"the accelerator {config.data_bits}/{config.acc_bits}")
    if ssk.in_channels > max_terms(config.data_bits, config.acc_bits):
        raise AccumulatorOverflowError(f"{ssk.in_channels} products per accumulator exceed the "
                                       f"{max_terms(config.data_bits, config.acc_bits)} that {config.acc_bits} "
                                       f"bits hold")


def fixed_layer(x_int, ssk, quant: LayerQuant, config: AcceleratorConfig, padding=1, bias=None, sched=None,
                dsp_per_complex_mac: int = 3, engine: str = "matmul", reads=None) -> LayerTrace:
    """One spectral layer in fixed point end to end, what the engine computes bit for bit.

    ``x_int``: integer input [B, Cin, H, W] at ``quant.in_frac`` (``data_bits`` wide).  ``sched``:
    the layer's :class:`flexspec.accel.sim.LayerSchedules` (one cout block; the optimal scheduler's
    when None).  Returns the :class:`LayerTrace` with every intermediate integer array."""

    _check_layer_args(ssk, config, quant, engine)
    x_int = np.asarray(x_int)
    if x_int.ndim != 4 or x_int.shape[1] != ssk.in_channels or not np.issubdtype(x_int.dtype, np.integer):
        raise UsageError(f"fixed-point input must be integers [B, {ssk.in_channels}, H, W], got "
                         f"{x_int.dtype} {x_int.shape}")
    n, k = ssk.fft_size, ssk.kernel_size
    h = n - k + 1
    cout, cin, f = ssk.out_channels, ssk.in_channels, ssk.num_frequencies
    if sched is None:
        sched = schedule_layer_blocks(ssk.mask(), config, cout)
    if sched.schedule.num_pes != config.pes or sched.schedule.num_frequencies != f:
        raise UsageError("schedule does not match the layer / accelerator")
    b = x_int.shape[0]
    t6 = input_tiles(x_int.astype(np.int64), h)  # [B, Cin, Ty, Tx, h, h]
    ty, tx = t6.shape[2:4]
    tiles = np.zeros((cin, b * ty * tx, n, n), dtype=np.int64)
    tiles[:, :, :h, :h] = t6.transpose(1, 0, 2, 3, 4, 5).reshape(cin, b * ty * tx, h, h)
    spec = fft2d_real_checked(tiles, quant.fft_format, in_err=None)
    sat = {"fft": spec.saturated}
    sr, si = spec.re.reshape(cin, -1, f), spec.im.reshape(cin, -1, f)
    w = ssk.dense().reshape(cout, cin, f).astype(np.complex128)
    wr, wi = quantize_complex(w, quant.data_bits, quant.kernel_frac)
    acc_re, acc_im = _mac(sr, si, wr, wi, sched, config, engine, reads, dsp_per_complex_mac)
    (ir, s1), (ii, s2) = _round_sat(acc_re, quant.acc_shift, quant.ifft_bits), _round_sat(acc_im, quant.acc_shift,
                                                                                          quant.ifft_bits)
    sat["ifft_in"] = s1 + s2
    inv = ifft2d_real_checked(ir.reshape(cout, -1, n, n // 2 + 1), ii.reshape(cout, -1, n, n // 2 + 1),
                              quant.ifft_format, in_err=None)
    blocks = inv.re
    sat["ifft_out"] = inv.saturated
    full = overlap_add(blocks.reshape(cout, b, ty, tx, n, n).transpose(1, 0, 2, 3, 4, 5), h)
    y = crop_output(full, x_int.shape[2], x_int.shape[3], k, padding)
    bias_int = None
    if bias is not None:
        bias_int = quantize_real(np.asarray(bias, dtype=np.float64), 62, quant.block_frac)
        y = y + bias_int[None, :, None, None]
    y_int, sat["output"] = _round_sat(y, quant.out_shift, quant.data_bits)
    return LayerTrace(quant, x_int, tiles, sr, si, wr, wi, acc_re, acc_im, ir, ii, blocks, bias_int, y_int, sat)


def quantize_input(x, quant: LayerQuant) -> np.ndarray:
    """Float spatial input -> the layer's input integers (round to nearest even, saturate)."""
    return quantize_real(x, quant.data_bits, quant.in_frac)


@dataclass(frozen=True)
class LayerCheck:
    """Fixed point vs float on one layer: errors, the derived bound, saturations."""

    name: str
    quant: dict
    max_abs_error: float
    bound: float  # largest per-pixel bound
    max_error_to_bound: float  # max over pixels of error / that pixel's bound (<= 1 when within)
    max_abs_output: float
    pixels_over_bound: int
    saturated: dict
    groups: int
    bank_conflicts: int = 0  # always 0: a conflict raises

    @property
    def within_bound(self) -> bool:
        return self.pixels_over_bound == 0

    @property
    def bound_to_max_error(self) -> float:
        """How far the largest bound sits above the largest measured error (tightness)."""
        return self.bound / self.max_abs_error if self.max_abs_error > 0 else math.inf

    def to_dict(self) -> dict:
        d = asdict(self)
        d["within_bound"] = self.within_bound
        d["bound_to_max_error"] = self.bound_to_max_error
        return d


def layer_error_bound(trace: LayerTrace, x, ssk, padding=1, bias=None) -> np.ndarray:
    """Per output pixel [B, Cout, H', W'], a bound on ``|y_fixed - y_float|`` (module doc), where
    ``y_float`` is the float64 OaA of the float input ``x`` with the same pruned kernels."""
    q = trace.quant
    x = np.asarray(x, dtype=np.float64)
    n, k = ssk.fft_size, ssk.kernel_size
    h, half = n - k + 1, n // 2 + 1
    cout, cin, f = ssk.out_channels, ssk.in_channels, ssk.num_frequencies
    e6 = input_tiles(np.abs(np.ldexp(x, q.in_frac) - trace.x_int), h)  # input rounding error, LSBs
    b, _, ty, tx = e6.shape[:4]
    e_in = np.zeros(trace.tiles.shape)
    e_in[:, :, :h, :h] = e6.transpose(1, 0, 2, 3, 4, 5).reshape(cin, -1, h, h)
    spec = fft2d_real_checked(trace.tiles, q.fft_format, e_in)
    e_x = np.ldexp(spec.bound_abs_lsb.reshape(cin, -1, f), -q.spec_frac)  # [Cin, T, F]
    w = ssk.dense().reshape(cout, cin, f).astype(np.complex128)
    m = ssk.mask().reshape(cout, cin, f).astype(np.float64)
    d_w = np.abs((trace.kernel_re + 1j * trace.kernel_im.astype(np.float64)) * 2.0**-q.kernel_frac - w)
    x_abs = np.ldexp(np.abs(trace.spec_re + 1j * trace.spec_im.astype(np.float64)), -q.spec_frac)
    e_y = (np.matmul((m * d_w).transpose(2, 0, 1), x_abs.transpose(2, 0, 1))
           + np.matmul((m * np.abs(w)).transpose(2, 0, 1), e_x.transpose(2, 0, 1)))  # [F, Cout, T]
    e_y = np.ldexp(e_y.transpose(1, 2, 0), q.ifft_in_frac) + (math.sqrt(0.5) if q.acc_shift > 0 else 0.0)
    inv = ifft2d_real_checked(trace.ifft_in_re.reshape(cout, -1, n, half), trace.ifft_in_im.reshape(cout, -1, n, half),
                              q.ifft_format, e_y.reshape(cout, -1, n, half))
    e_b = np.ldexp(inv.bound_lsb, -q.block_frac).reshape(cout, b, ty, tx, n, n).transpose(1, 0, 2, 3, 4, 5)
    e_o = crop_output(overlap_add(e_b, h), x.shape[2], x.shape[3], k, padding)
    if bias is not None:
        e_o = e_o + np.abs(np.ldexp(trace.bias_int.astype(np.float64), -q.block_frac)
                           - np.asarray(bias, dtype=np.float64))[None, :, None, None]
    return e_o + (np.ldexp(0.5, -q.out_frac) if q.out_shift > 0 else 0.0)


def functional_layer(x, ssk, config: AcceleratorConfig, padding=1, bias=None, sched=None, dsp_per_complex_mac: int = 3,
                     name: str = "layer", engine: str = "matmul", reads=None, quant: LayerQuant | None = None,
                     check: bool = True):
    """Fixed-point output of one spectral layer on float input ``x`` [B, Cin, H, W] and its check
    against the float64 sparse spectral OaA.

    ``quant``: the layer's formats (calibrated elsewhere: :func:`calibrate_fmnist`); None calibrates
    on ``x`` itself (unit tests only).  ``check=False`` skips the float reference and the bound.
    Returns ``(y_fixed, y_float_reference, LayerCheck, LayerTrace)`` (y before ReLU; the reference
    and check are None without ``check``)."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1] != ssk.in_channels:
        raise UsageError(f"input must be [B, {ssk.in_channels}, H, W], got {x.shape}")
    if quant is None:
        quant = calibrate_layer(x, ssk, padding, bias, data_bits=config.data_bits, acc_bits=config.acc_bits)
    trace = fixed_layer(quantize_input(x, quant), ssk, quant, config, padding, bias, sched, dsp_per_complex_mac,
                        engine, reads)
    y = trace.y_float
    if not check:
        return y, None, None, trace
    y_ref = sparse_oaa_conv2d(x.astype(np.float64), ssk, padding, bias)
    bound = layer_error_bound(trace, x, ssk, padding, bias) + 1e-9 * (1 + float(np.abs(y_ref).max(initial=0.0)))
    err = np.abs(y - y_ref)
    sched_groups = -1 if sched is None else sched.schedule.num_groups
    chk = LayerCheck(name, quant.to_dict(), float(err.max(initial=0.0)), float(bound.max(initial=0.0)),
                     float((err / bound).max(initial=0.0)), float(np.abs(y_ref).max(initial=0.0)),
                     int(np.count_nonzero(err > bound)), dict(trace.saturated), sched_groups)
    return y, y_ref, chk, trace


# --------------------------------------------------------------------------- the shipped model


def calibrate_fmnist(kernels, images, batch: int = 250, headroom_bits: int = 1, **widths) -> dict:
    """Per-layer :class:`LayerQuant` of ``fmnist_vgg`` from calibration ``images`` (uint8
    [n, 28, 28]; not the evaluation images): maxima of the float pipeline, layer by layer; each
    layer's input format is the previous layer's output format (integers pass through ReLU and
    max-pooling unchanged)."""
    _check_fmnist(kernels)
    x_all = to_float(images)
    maxima: dict = {}
    for start in range(0, len(x_all), batch):
        hcur = x_all[start:start + batch].astype(np.float64)
        for blk, ws in enumerate(rm.WIDTHS, 1):
            for i in range(1, len(ws) + 1):
                nm = f"conv{blk}_{i}"
                mx, y = layer_maxima(hcur, kernels.layers[nm], 1, kernels.biases.get(nm))
                maxima[nm] = mx if nm not in maxima else maxima[nm].merge(mx)
                hcur = np.maximum(y, 0)
            hcur = _maxpool2(hcur)
    quants, in_frac = {}, None
    for nm in rm.CONV_NAMES:
        ssk = kernels.layers[nm]
        quants[nm] = quant_from_maxima(maxima[nm], _max_part(ssk.dense()), ssk.fft_size, in_frac,
                                       headroom_bits=headroom_bits, **widths)
        in_frac = quants[nm].out_frac
    return quants


def calibration_images(eval_images, count: int = 1000):
    """Calibration images that are not ``eval_images``: the first ``count`` Fashion-MNIST training
    images when the full set is installed, else the shipped test subset's images that are not among
    ``eval_images``; if none is left, the evaluation images themselves (said so in the returned
    description)."""
    if datasets.fashion_mnist_available():
        return datasets.fashion_mnist("train")[0][:count], f"Fashion-MNIST training images 0..{count - 1}"
    sub = datasets.fashion_mnist_subset()[0]
    seen = {img.tobytes() for img in np.asarray(eval_images)}
    held = np.array([img for img in sub if img.tobytes() not in seen][:count])
    if len(held):
        return held, f"{len(held)} shipped test-subset images not among the evaluated ones"
    return np.asarray(eval_images), "the evaluation images themselves (no held-out images available)"


@dataclass(frozen=True)
class FunctionalResult:
    """End-to-end fixed-point run of a real model on a test set."""

    network: str
    images: int
    agreement: float  # fraction of images whose fixed-point prediction equals the float one
    accuracy_fixed: float
    accuracy_float: float
    layers: tuple  # LayerCheck per layer, on the checked batches (worst error-to-bound ratio)
    saturated: dict  # layer -> rounding point -> values saturated over all images
    quant: dict  # layer -> LayerQuant.to_dict()
    calibration: str
    data_bits: int
    acc_bits: int
    provenance: str
    seconds: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = [c.to_dict() for c in self.layers]
        return d


def _maxpool2(x):
    b, c, h, w = x.shape
    return x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(b, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def _check_fmnist(kernels):
    if list(kernels.layers) != list(rm.CONV_NAMES):
        raise UsageError(f"expected the layers {rm.CONV_NAMES} of fmnist_vgg, got {tuple(kernels.layers)}")


def functional_fmnist(kernels, images, labels, config: AcceleratorConfig | None = None, batch: int = 250,
                      dsp_per_complex_mac: int = 3, engine: str = "matmul", quants: dict | None = None,
                      calib_images=None, check_batches: int = 1) -> FunctionalResult:
    """Run ``fmnist_vgg`` (a SparseNetworkKernels with its fc params) in fixed point end to end and
    in float; compare predictions.  Convolutions: :func:`fixed_layer` chained on integers (ReLU and
    2x2 max-pool on integers); fc1, fc2 in float on the dequantized features.  Float path:
    ``flexspec.spectral.real_model.numpy_forward``.  ``quants``: per-layer formats; else calibrated
    by :func:`calibrate_fmnist` on ``calib_images`` (default :func:`calibration_images`).  The
    first ``check_batches`` batches also check every layer against its float OaA and bound."""

    t0 = time.perf_counter()
    config = config or AcceleratorConfig(arrays=1, pes=16, banks=20, ports=2)
    _check_fmnist(kernels)
    if quants is None:
        if calib_images is None:
            calib_images, calibration = calibration_images(images)
        else:
            calibration = f"{len(calib_images)} caller-given images"
        quants = calibrate_fmnist(kernels, calib_images, data_bits=config.data_bits, acc_bits=config.acc_bits)
    else:
        calibration = "caller-given formats"
    scheds = {nm: schedule_layer_blocks(ssk.mask(), config, ssk.out_channels, bank_map=kernels.bank_map(nm, config.banks))
              for nm, ssk in kernels.layers.items()}
    reads = {nm: schedule_reads(scheds[nm], config.ports, ssk.out_channels, ssk.in_channels)
             for nm, ssk in kernels.layers.items()}
    x_all = to_float(images)
    worst: dict = {}
    saturated = {nm: {} for nm in rm.CONV_NAMES}
    pred_fixed, pred_float = [], []
    for bi, start in enumerate(range(0, len(x_all), batch)):
        x = x_all[start:start + batch].astype(np.float64)
        hq = quantize_input(x, quants[rm.CONV_NAMES[0]])
        for blk, ws in enumerate(rm.WIDTHS, 1):
            for i in range(1, len(ws) + 1):
                nm = f"conv{blk}_{i}"
                q, ssk, bias = quants[nm], kernels.layers[nm], kernels.biases.get(nm)
                if bi < check_batches:
                    xin = np.ldexp(hq.astype(np.float64), -q.in_frac)
                    _, _, chk, tr = functional_layer(xin, ssk, config, 1, bias, scheds[nm], dsp_per_complex_mac, nm,
                                                     engine, reads[nm], q)
                    if nm not in worst or chk.max_error_to_bound > worst[nm].max_error_to_bound:
                        worst[nm] = chk
                else:
                    tr = fixed_layer(hq, ssk, q, config, 1, bias, scheds[nm], dsp_per_complex_mac, engine, reads[nm])
                for point, count in tr.saturated.items():
                    saturated[nm][point] = saturated[nm].get(point, 0) + count
                hq = np.maximum(tr.y_int, 0)
            hq = _maxpool2(hq)
        feat = np.ldexp(hq.reshape(hq.shape[0], -1).astype(np.float64), -quants[rm.CONV_NAMES[-1]].out_frac)
        feat = np.maximum(feat @ kernels.params["fc1.weight"].T + kernels.params["fc1.bias"], 0)
        logits = feat @ kernels.params["fc2.weight"].T + kernels.params["fc2.bias"]
        pred_fixed.append(logits.argmax(1))
        pred_float.append(rm.numpy_forward(kernels, x_all[start:start + batch]).argmax(1))
    pf, pr = np.concatenate(pred_fixed), np.concatenate(pred_float)
    labels = np.asarray(labels)
    return FunctionalResult("fmnist_vgg", len(pf), float(np.mean(pf == pr)), float(np.mean(pf == labels)),
                            float(np.mean(pr == labels)), tuple(worst[nm] for nm in rm.CONV_NAMES if nm in worst),
                            saturated, {nm: q.to_dict() for nm, q in quants.items()}, calibration,
                            config.data_bits, config.acc_bits, kernels.provenance, time.perf_counter() - t0)
