import numpy as np
import pytest

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.fixed_point import BankConflictError
from flexspec.accel.functional import functional_fmnist, functional_layer
from flexspec.accel.sim import schedule_layer_blocks
from flexspec.spectral.prune import magnitude_mask
from flexspec.spectral.sparse import SparseSpectralKernels
from flexspec.spectral.transform import spectral_kernels


def _layer(cout, cin, seed, density=0.25):
    rng = np.random.default_rng(seed)
    wf = spectral_kernels(rng.normal(size=(cout, cin, 3, 3)), 8)
    return SparseSpectralKernels.from_dense(wf, magnitude_mask(wf, density), 3)


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_layer_within_derived_bound(bits):
    ssk = _layer(16, 8, bits)
    x = np.random.default_rng(1).normal(size=(2, 8, 13, 11))
    cfg = AcceleratorConfig(arrays=1, pes=8, banks=10, ports=2, data_bits=bits, acc_bits=2 * bits + 8)
    y, ref, chk = functional_layer(x, ssk, cfg, padding=1)
    assert y.shape == ref.shape == (2, 16, 13, 11)
    assert chk.max_abs_error <= chk.bound
    # the bound is not vacuous: within ~40x of the observed error, and it shrinks with the bit width
    assert chk.bound < 40 * max(chk.max_abs_error, 1e-300) or bits >= 16
    assert chk.bound < 2.0 ** -(bits - 1) * 1e3 * chk.max_abs_output


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
    ya, _, ca = functional_layer(x, ssk, cfg, engine="matmul")
    yb, _, cb = functional_layer(x, ssk, cfg, engine="replay")
    assert np.array_equal(ya, yb) and ca == cb


def test_schedule_reads_count_every_nonzero_once():
    from flexspec.accel.functional import schedule_reads

    ssk = _layer(20, 6, 11)
    cfg = AcceleratorConfig(arrays=1, pes=8, banks=10, ports=2)
    reads = schedule_reads(schedule_layer_blocks(ssk.mask(), cfg, 20), cfg.ports, 20, 6)
    assert np.array_equal(reads, ssk.mask().reshape(20, 6, -1).astype(np.int64))


def test_shipped_model_64_images():
    """64 shipped test images through the real pruned fmnist_vgg (the accelerator's default model):
    predictions agree with float, and every layer stays within its derived quantization bound.
    The 1000-image subset and the 10k test set run in benchmarks/bench_accel.py."""
    from flexspec import datasets
    from flexspec.accel.kernels import resolve_kernels
    from flexspec.workload.zoo import get_network

    _, k, src = resolve_kernels(get_network("fmnist_vgg"), None)
    assert src.kind == "trained" and src.is_real and k is not None
    x, y = datasets.fashion_mnist_subset()
    r = functional_fmnist(k, x[:64], y[:64], batch=64)
    assert r.images == 64 and r.agreement == 1.0
    assert r.accuracy_float > 0.5  # a trained model, not noise
    assert [c.name for c in r.layers] == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2"]
    for c in r.layers:
        assert 0 < c.max_abs_error <= c.bound, c
