"""The fixed-point functional model (FFT, sparse MAC, rounding, IFFT, overlap-add) against the float64
sparse spectral OaA (an independent path: numpy.fft, float products), within its derived per-pixel
bound; the bound is not vacuous; scales are calibrated on other images."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.fixed_point import BankConflictError
from flexspec.accel.functional import (
    LayerQuant, calibrate_fmnist, calibration_images, fixed_layer, functional_fmnist, functional_layer,
    quantize_input, schedule_reads,
)
from flexspec.accel.sim import schedule_layer_blocks
from flexspec.errors import UsageError
from flexspec.spectral.prune import magnitude_mask
from flexspec.spectral.sparse import SparseSpectralKernels
from flexspec.spectral.transform import spectral_kernels


def _layer(cout, cin, seed, density=0.25):
    rng = np.random.default_rng(seed)
    wf = spectral_kernels(rng.normal(size=(cout, cin, 3, 3)), 8)
    return SparseSpectralKernels.from_dense(wf, magnitude_mask(wf, density), 3)


#: Stated tightness of the layer bound (measured: worst pixel at 1/11..1/4 of its own bound; the
#: largest bound 11-46x the largest error, random and real layers, 8..16 bits).
PIXEL_FACTOR = 16
MAX_FACTOR = 64


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_layer_within_derived_bound_and_bound_not_vacuous(bits):
    ssk = _layer(16, 8, bits)
    x = np.random.default_rng(1).normal(size=(2, 8, 13, 11))
    cfg = AcceleratorConfig(arrays=1, pes=8, banks=10, ports=2, data_bits=bits, acc_bits=2 * bits + 8)
    y, ref, chk, trace = functional_layer(x, ssk, cfg, padding=1, bias=np.linspace(-1, 1, 16))
    assert y.shape == ref.shape == (2, 16, 13, 11)
    assert sum(chk.saturated.values()) == 0
    assert chk.pixels_over_bound == 0 and chk.max_error_to_bound <= 1
    # not vacuous, at every width including 16 bits: the worst pixel reaches 1/16 of its own bound,
    # and the largest bound is within 64x of the largest error
    assert chk.max_error_to_bound >= 1 / PIXEL_FACTOR, chk
    assert chk.bound <= MAX_FACTOR * chk.max_abs_error, chk
    # the trace holds the integers the hardware sees, at the stated widths
    assert trace.y_int.dtype == np.int64 and np.abs(trace.y_int).max() < 2 ** (bits - 1)
    assert np.abs(trace.spec_re).max() < 2 ** (bits - 1) and np.abs(trace.ifft_in_im).max() < 2 ** (bits - 1)
    assert trace.blocks.shape == (16, 2 * 3 * 2, 8, 8)  # [Cout, T, N, N], T = B * ceil(13/6) * ceil(11/6)


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 6), st.integers(1, 10), st.integers(5, 17), st.integers(5, 17), st.sampled_from([0.125, 0.5, 1]),
       st.integers(0, 2**16), st.sampled_from([10, 14, 16]), st.floats(0.01, 100))
def test_layer_bound_holds_for_random_layers(cin, cout, hgt, wid, density, seed, bits, scale):
    ssk = _layer(cout, cin, seed, density)
    x = np.random.default_rng(seed).normal(size=(1, cin, hgt, wid)) * scale
    cfg = AcceleratorConfig(arrays=1, pes=4, banks=8, ports=2, data_bits=bits, acc_bits=48)
    _, _, chk, _ = functional_layer(x, ssk, cfg, padding=1, bias=np.full(cout, 0.3 * scale))
    assert sum(chk.saturated.values()) == 0 and chk.pixels_over_bound == 0, chk


def test_bound_scales_with_bits():
    ssk = _layer(8, 4, 5)
    x = np.random.default_rng(2).normal(size=(1, 4, 12, 12))
    b = {bits: functional_layer(x, ssk, AcceleratorConfig(arrays=1, pes=8, banks=10, ports=2, data_bits=bits,
                                                          acc_bits=48))[2].bound for bits in (8, 16)}
    assert 100 < b[8] / b[16] < 1000  # 2^8 = 256 per operand


@pytest.mark.parametrize("engine", ["matmul", "replay"])
def test_bank_conflict_is_detected(engine):
    ssk = _layer(8, 4, 7)
    cfg = AcceleratorConfig(arrays=1, pes=8, banks=10, ports=2)
    sch = schedule_layer_blocks(ssk.mask(), cfg, 8)
    s = sch.schedule
    bad_cycle = s.cycle.copy()
    bad_cycle[:] = 0  # everything in one cycle: banks get more reads than ports
    bad = type(s)(**{**s.__dict__, "cycle": bad_cycle, "cycles": np.ones_like(s.cycles)})
    with pytest.raises(BankConflictError) as exc:
        functional_layer(np.ones((1, 4, 8, 8)), ssk, cfg, sched=type(sch)(**{**sch.__dict__, "schedule": bad}),
                         engine=engine)
    assert exc.value.cycle == 0 and exc.value.reads > 2


@pytest.mark.parametrize("pes,banks,broadcast,bits", [(8, 10, False, 16), (16, 20, True, 12), (32, 40, False, 16),
                                                      (8, 20, True, 24)])
def test_matmul_engine_equals_group_replay_bit_for_bit(pes, banks, broadcast, bits):
    """The vectorized engine (schedule replayed once into read counts, then one matrix product per
    frequency) against the group-by-group PE model (fixed_point.execute_group_tiles)."""
    ssk = _layer(24, 12, pes + banks)
    x = np.random.default_rng(pes).normal(size=(3, 12, 14, 9)) * 4
    cfg = AcceleratorConfig(arrays=1, pes=pes, banks=banks, ports=2, broadcast=broadcast, data_bits=bits,
                            acc_bits=min(63, 2 * bits + 8))
    ya, _, _, ta = functional_layer(x, ssk, cfg, engine="matmul", check=False)
    yb, _, _, tb = functional_layer(x, ssk, cfg, engine="replay", check=False)
    assert np.array_equal(ya, yb) and np.array_equal(ta.acc_re, tb.acc_re) and np.array_equal(ta.acc_im, tb.acc_im)


def test_schedule_reads_count_every_nonzero_once():
    ssk = _layer(20, 6, 11)
    cfg = AcceleratorConfig(arrays=1, pes=8, banks=10, ports=2)
    reads = schedule_reads(schedule_layer_blocks(ssk.mask(), cfg, 20), cfg.ports, 20, 6)
    assert np.array_equal(reads, ssk.mask().reshape(20, 6, -1).astype(np.int64))


def test_quantization_formats_are_checked():
    with pytest.raises(UsageError, match="shift"):
        LayerQuant(8, in_frac=10, spec_frac=12, kernel_frac=14, ifft_in_frac=8, block_frac=12, out_frac=10)
    ssk = _layer(4, 2, 3)
    cfg = AcceleratorConfig(arrays=1, pes=4, banks=8, ports=2)
    q = LayerQuant(8, in_frac=10, spec_frac=8, kernel_frac=14, ifft_in_frac=8, block_frac=12, out_frac=10)
    with pytest.raises(UsageError, match="integers"):
        fixed_layer(np.zeros((1, 2, 8, 8)), ssk, q, cfg)
    with pytest.raises(UsageError, match="16/40"):
        fixed_layer(np.zeros((1, 2, 8, 8), dtype=np.int64), ssk, q,
                    AcceleratorConfig(arrays=1, pes=4, banks=8, ports=2, acc_bits=40))
    assert quantize_input(np.array([0.5, -0.25, 1e9]), q).tolist() == [512, -256, 2**15 - 1]


def test_calibration_images_are_not_the_evaluated_ones(monkeypatch):
    from flexspec import datasets

    monkeypatch.setattr(datasets, "fashion_mnist_available", lambda root=None: False)
    x, _ = datasets.fashion_mnist_subset()
    cal, what = calibration_images(x[:600], count=300)
    seen = {img.tobytes() for img in x[:600]}
    assert len(cal) == 300 and not any(img.tobytes() in seen for img in cal) and "not among" in what
    cal, what = calibration_images(x, count=10)
    assert "evaluation images themselves" in what


def test_shipped_model_64_images():
    """64 shipped test images through the real pruned fmnist_vgg in fixed point end to end, scales
    calibrated on 200 other shipped images: predictions agree with float, every layer within its
    per-pixel bound, nothing saturates.  The 10k test set runs in benchmarks/bench_fixed_point.py."""
    from flexspec import datasets
    from flexspec.accel.kernels import resolve_kernels
    from flexspec.workload.zoo import get_network

    _, k, src = resolve_kernels(get_network("fmnist_vgg"), None)
    assert src.kind == "trained" and src.is_real and k is not None
    x, y = datasets.fashion_mnist_subset()
    quants = calibrate_fmnist(k, x[800:1000])
    r = functional_fmnist(k, x[:64], y[:64], batch=64, quants=quants)
    assert r.images == 64 and r.agreement == 1.0
    assert r.accuracy_float > 0.5  # a trained model, not noise
    assert [c.name for c in r.layers] == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2"]
    for c in r.layers:
        assert 0 < c.max_abs_error and c.within_bound and c.max_error_to_bound >= 1 / PIXEL_FACTOR, c
    assert all(v == 0 for per in r.saturated.values() for v in per.values())
    # chained formats: each layer's input format is the previous layer's output format
    names = list(quants)
    assert all(quants[b].in_frac == quants[a].out_frac for a, b in zip(names, names[1:], strict=False))
