"""Functional simulation: run the schedules on real data in fixed point and check them.

For one spectral layer (:func:`functional_layer`):

1. the input is cut into OaA tiles and transformed (float, as the FFT engines would, exactly
   ``flexspec.spectral.oaa.transform_tiles``);
2. tiles and kernels are quantized to ``data_bits`` (default 16) with one power-of-two scale
   each per layer (``FixedPointFormat.for_values``: the largest scale without saturation);
3. the schedules are replayed: every read of every group's schedule (cycle, PE, frequency)
   is checked against the banks (:func:`schedule_reads` raises ``BankConflictError`` if any
   bank gets more reads in a cycle than it has ports, first cycle named) and counted, giving
   how many times each kernel value (o, i, f) multiplies its tile value; the accumulators are
   then ``sum_i reads(o,i,f) * W(o,i,f) * X(i,t,f)`` over all tiles at once (``engine="matmul"``:
   a complex float64 matrix product per frequency, exact because every integer it forms stays
   below 2^53 -- checked, else the int64 path), wrapped to ``acc_bits``.  ``engine="replay"``
   instead runs ``fixed_point.execute_group_tiles`` group by group (the bit-exact PE model the
   RTL reproduces); the two agree bit for bit (a test);
4. accumulators are dequantized, inverse transformed, overlap-added, cropped; bias, ReLU,
   pooling and the fully connected layers run in float (as in the float reference).

The reference is the floating-point sparse spectral OaA (``flexspec.spectral.sparse.sparse_oaa_conv2d``,
float64) on the same input.  Quantization bound (derived from the bit widths; no fudge factor):
with ``q_x``, ``q_w`` the fractional bits of tiles and kernels, rounding to nearest gives
complex errors ``|dX| <= d_x = sqrt(2) 2^-(q_x+1)``, ``|dW| <= d_w = sqrt(2) 2^-(q_w+1)``; since
``X^W^ - XW = X dW + dX W^`` and the integer arithmetic is exact,

    |dY(o,t,f)| <= E(o,t,f) = sum_i m(o,i,f) (|X(i,t,f)| d_w + |W^(o,i,f)| d_x).

The inverse real FFT of a half-plane spectrum uses each stored value at most twice, so a block
value errs by at most ``(2/N^2) sum_f E(o,t,f)``, and overlap-add sums at most ``ceil(N/h)^2``
blocks per output pixel:

    max |y_fixed - y_float| <= ceil(N/h)^2 (2/N^2) max_{o,t} sum_f E(o,t,f)  +  float64 rounding,

the last term being ``1e-12 (1 + max|y|)`` for the two float64 FFT paths.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import UsageError
from .arch import AcceleratorConfig
from .fixed_point import (
    AccumulatorOverflowError, BankConflictError, FixedPointFormat, dequantize, execute_group_tiles, max_terms,
    wrap_signed,
)

ENGINES = ("matmul", "replay")


@dataclass(frozen=True)
class LayerCheck:
    """Fixed point vs float on one layer."""

    name: str
    data_bits: int
    acc_bits: int
    tile_frac_bits: int
    kernel_frac_bits: int
    max_abs_error: float
    bound: float
    max_abs_output: float
    groups: int
    bank_conflicts: int  # always 0: a conflict raises

    @property
    def within_bound(self) -> bool:
        return self.max_abs_error <= self.bound

    def to_dict(self) -> dict:
        d = asdict(self)
        d["within_bound"] = self.within_bound
        return d


def _tiles(x: np.ndarray, kernel_size: int, n: int):
    from ..spectral.oaa import transform_tiles

    xf = transform_tiles(x.astype(np.float64), kernel_size, n)  # [B, C, Ty, Tx, N, M]
    b, c, ty, tx = xf.shape[:4]
    return xf.reshape(b, c, ty * tx, -1).transpose(1, 0, 2, 3).reshape(c, b * ty * tx, -1), (b, ty, tx)


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


def functional_layer(x, ssk, config: AcceleratorConfig, padding=1, bias=None, sched=None, dsp_per_complex_mac: int = 3,
                     name: str = "layer", engine: str = "matmul", reads=None):
    """Fixed-point output of one spectral layer on input ``x`` [B, Cin, H, W] and its check.

    ``sched``: a :class:`flexspec.accel.sim.LayerSchedules` of this layer's mask (one cout block);
    built with the optimal scheduler when None.  ``engine``: 'matmul' (schedule replayed once by
    :func:`schedule_reads`, then all tiles at once) or 'replay' (group by group through
    ``fixed_point.execute_group_tiles``); bit-identical results.  ``reads``: the
    :func:`schedule_reads` of ``sched`` when already computed.  Returns ``(y_fixed, y_float,
    LayerCheck)``."""
    if engine not in ENGINES:
        raise UsageError(f"unknown functional engine {engine!r}; known: {', '.join(ENGINES)}")
    from ..spectral.oaa import crop_output, overlap_add
    from ..spectral.sparse import sparse_oaa_conv2d
    from .sim import schedule_layer_blocks

    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1] != ssk.in_channels:
        raise UsageError(f"input must be [B, {ssk.in_channels}, H, W], got {x.shape}")
    if ssk.fft_size != config.fft_size:
        raise UsageError(f"kernels have N={ssk.fft_size}, the accelerator N={config.fft_size}")
    n, k = ssk.fft_size, ssk.kernel_size
    h = n - k + 1
    cout, cin, f = ssk.out_channels, ssk.in_channels, ssk.num_frequencies
    if sched is None:
        sched = schedule_layer_blocks(ssk.mask(), config, cout)
    s = sched.schedule
    if s.num_pes != config.pes or s.num_frequencies != f:
        raise UsageError("schedule does not match the layer / accelerator")
    xf, (b, ty, tx) = _tiles(x, k, n)  # [Cin, BT, F]
    w = ssk.dense().reshape(cout, cin, f).astype(np.complex128)
    fmt = FixedPointFormat.for_values(xf, w, config.data_bits, config.acc_bits, dsp_per_complex_mac)
    if cin > max_terms(config.data_bits, config.acc_bits):
        raise AccumulatorOverflowError(f"{name}: {cin} products per accumulator exceed the "
                                       f"{max_terms(config.data_bits, config.acc_bits)} that {config.acc_bits} bits hold")
    xr, xi = fmt.quantize_tile(xf)
    wr, wi = fmt.quantize_kernel(w)
    bt = xr.shape[1]
    acc = None
    if engine == "matmul":
        mult = reads if reads is not None else schedule_reads(sched, config.ports, cout, cin)
        acc = _accumulate_matmul(xr, xi, wr, wi, mult, config.data_bits)
        if acc is None:  # exact int64 path (wide data): same sum, integer arithmetic
            acc = (np.einsum("oif,itf->otf", mult * wr, xr) - np.einsum("oif,itf->otf", mult * wi, xi),
                   np.einsum("oif,itf->otf", mult * wr, xi) + np.einsum("oif,itf->otf", mult * wi, xr))
    acc_re, acc_im = acc if acc is not None else (np.zeros((cout, bt, f), dtype=np.int64),
                                                  np.zeros((cout, bt, f), dtype=np.int64))
    groups = sched.groups
    for g in range(s.num_groups if engine == "replay" else 0):
        ids = groups[g]
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
    yq = fmt.dequantize_acc(wrap_signed(acc_re, config.acc_bits), wrap_signed(acc_im, config.acc_bits))
    yf = yq.reshape(cout, b, ty, tx, n, n // 2 + 1).transpose(1, 0, 2, 3, 4, 5)
    blocks = np.fft.irfft2(yf, s=(n, n))
    y = crop_output(overlap_add(blocks, h), x.shape[2], x.shape[3], k, padding)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)[None, :, None, None]
    y_ref = sparse_oaa_conv2d(x.astype(np.float64), ssk, padding, bias)
    # the bound
    m = ssk.mask().astype(np.float64)  # [Cout, Cin, F]
    d_x = math.sqrt(2) * 2.0 ** -(fmt.tile_frac_bits + 1)
    d_w = math.sqrt(2) * 2.0 ** -(fmt.kernel_frac_bits + 1)
    w_hat = np.abs(dequantize(wr, wi, fmt.kernel_frac_bits))  # |W^|
    ax = np.abs(xf)  # [Cin, BT, F]
    mt = m.transpose(2, 0, 1)  # [F, Cout, Cin]
    e = np.matmul(mt, ax.transpose(2, 0, 1)).sum(axis=0) * d_w  # [Cout, BT]
    e += (m * w_hat).sum(axis=(1, 2))[:, None] * d_x
    parts = -(-n // h)
    bound = parts**2 * 2.0 / n**2 * float(e.max(initial=0.0))
    bound += 1e-12 * (1 + float(np.abs(y_ref).max(initial=0.0)))
    err = float(np.abs(y - y_ref).max(initial=0.0))
    check = LayerCheck(name, config.data_bits, config.acc_bits, fmt.tile_frac_bits, fmt.kernel_frac_bits, err,
                       bound, float(np.abs(y_ref).max(initial=0.0)), s.num_groups, 0)
    return y, y_ref, check


@dataclass(frozen=True)
class FunctionalResult:
    """End-to-end fixed-point run of a real model on a test set."""

    network: str
    images: int
    agreement: float  # fraction of images whose fixed-point prediction equals the float one
    accuracy_fixed: float
    accuracy_float: float
    layers: tuple  # LayerCheck per layer, worst over batches
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


def functional_fmnist(kernels, images, labels, config: AcceleratorConfig | None = None, batch: int = 250,
                      dsp_per_complex_mac: int = 3, engine: str = "matmul") -> FunctionalResult:
    """Run ``fmnist_vgg`` (a SparseNetworkKernels with its fc params) in fixed point on the PE
    array model and in float; compare predictions.  Convolutions: fixed point per
    :func:`functional_layer` (each layer's input is the previous fixed-point layer's output);
    bias, ReLU, 2x2 max-pool, fc1, fc2: float.  The float path is
    ``flexspec.spectral.real_model.numpy_forward``."""
    from ..datasets import to_float
    from ..spectral import real_model as rm
    from .sim import schedule_layer_blocks

    t0 = time.perf_counter()
    config = config or AcceleratorConfig(arrays=1, pes=16, banks=20, ports=2)
    if list(kernels.layers) != list(rm.CONV_NAMES):
        raise UsageError(f"expected the layers {rm.CONV_NAMES} of fmnist_vgg, got {tuple(kernels.layers)}")
    scheds = {nm: schedule_layer_blocks(ssk.mask(), config, ssk.out_channels) for nm, ssk in kernels.layers.items()}
    reads = {nm: schedule_reads(scheds[nm], config.ports, ssk.out_channels, ssk.in_channels)
             for nm, ssk in kernels.layers.items()}
    x_all = to_float(images)
    worst: dict = {}
    pred_fixed, pred_float = [], []
    for start in range(0, len(x_all), batch):
        x = x_all[start:start + batch].astype(np.float64)
        hcur = x
        for block, widths in enumerate(rm.WIDTHS, 1):
            for i in range(1, len(widths) + 1):
                nm = f"conv{block}_{i}"
                y, _, chk = functional_layer(hcur, kernels.layers[nm], config, 1, kernels.biases.get(nm),
                                             scheds[nm], dsp_per_complex_mac, nm, engine, reads[nm])
                if nm not in worst or chk.max_abs_error / max(chk.bound, 1e-300) > \
                        worst[nm].max_abs_error / max(worst[nm].bound, 1e-300):
                    worst[nm] = chk
                hcur = np.maximum(y, 0)
            hcur = _maxpool2(hcur)
        hcur = hcur.reshape(hcur.shape[0], -1)
        hcur = np.maximum(hcur @ kernels.params["fc1.weight"].T + kernels.params["fc1.bias"], 0)
        logits = hcur @ kernels.params["fc2.weight"].T + kernels.params["fc2.bias"]
        pred_fixed.append(logits.argmax(1))
        pred_float.append(rm.numpy_forward(kernels, x_all[start:start + batch]).argmax(1))
    pf, pr = np.concatenate(pred_fixed), np.concatenate(pred_float)
    labels = np.asarray(labels)
    return FunctionalResult("fmnist_vgg", len(pf), float(np.mean(pf == pr)), float(np.mean(pf == labels)),
                            float(np.mean(pr == labels)), tuple(worst[nm] for nm in rm.CONV_NAMES),
                            config.data_bits, config.acc_bits, kernels.provenance, time.perf_counter() - t0)
