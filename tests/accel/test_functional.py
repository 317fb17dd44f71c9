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


def test_bank_conflict_is_detected():
    ssk = _layer(8, 4, 7)
    cfg = AcceleratorConfig(arrays=1, pes=8, banks=10, ports=2)
    sch = schedule_layer_blocks(ssk.mask(), cfg, 8)
    s = sch.schedule
    bad_cycle = s.cycle.copy()
    bad_cycle[:] = 0  # everything in one cycle: banks get more reads than ports
    bad = type(s)(**{**s.__dict__, "cycle": bad_cycle, "cycles": np.ones_like(s.cycles)})
    with pytest.raises(BankConflictError):
        functional_layer(np.ones((1, 4, 8, 8)), ssk, cfg, sched=type(sch)(**{**sch.__dict__, "schedule": bad}))


def test_shipped_model_agrees_on_1000_images():
    from flexspec import datasets
    from flexspec.spectral import real_model as rm

    if not rm.pruned_file("magnitude", 0.25).exists():
        pytest.skip("shipped fmnist_vgg model not present (benchmarks/train_fmnist.py writes it)")
    k = rm.load_pruned("magnitude", 0.25)
    x, y = datasets.fashion_mnist_subset()
    r = functional_fmnist(k, x, y, batch=500)
    assert r.images == 1000 and r.agreement >= 0.99
    assert all(c.within_bound for c in r.layers)
