"""Bank-capped hardware-aware projection: per-kernel counts, Hermitian pairs, bank loads, and the
scheduler's PE utilization on the real pruned model's spectra."""

from __future__ import annotations

import numpy as np
import pytest

from flexspec.errors import UsageError
from flexspec.schedule import schedule_layer
from flexspec.schedule.bounds import bank_loads
from flexspec.schedule.model import bank_map
from flexspec.spectral import real_model as rm
from flexspec.spectral.prune import bank_balanced_mask, magnitude_mask
from flexspec.spectral.sparse import conjugate_partner, mask_violations
from flexspec.spectral.transform import spectral_kernels


def _groups(mask, pes):
    """[G, P, F] groups as the scheduler forms them from equal-count kernels (input channel, P outputs)."""
    cout, cin = mask.shape[:2]
    flat = mask.reshape(cout, cin, -1)
    return np.stack([flat[g:g + pes, i] for i in range(cin) for g in range(0, cout, pes)])


def test_without_a_binding_cap_it_keeps_the_per_kernel_projection():
    rng = np.random.default_rng(0)
    wf = spectral_kernels(rng.standard_normal((8, 3, 3, 3)), 8)
    # one bank per position and groups of 4 kernels: a bank serves at most 4 <= 10 reads
    got = bank_balanced_mask(wf, 0.25, np.arange(40), 40, pes=4)
    plain = magnitude_mask(wf, 0.25, "kernel")  # stops at 9 entries where the next unit is a pair
    assert np.all(got[plain]) and np.all(got.reshape(24, -1).sum(1) == 10)
    extra = got & ~plain  # the one more entry: the largest single unit left
    scores = np.abs(wf).reshape(24, -1)
    for k in np.nonzero(extra.reshape(24, -1).any(1))[0]:
        e = extra.reshape(24, -1)[k]
        assert e.sum() == 1 and plain.reshape(24, -1)[k].sum() == 9
        left = ~plain.reshape(24, -1)[k] & (conjugate_partner(8) == np.arange(40))  # units of one entry
        assert scores[k][e][0] == scores[k][left].max()


@pytest.mark.parametrize("seed", range(4))
def test_counts_pairs_and_bank_caps(seed):
    rng = np.random.default_rng(seed)
    # low-pass kernels (as trained ones are): every kernel wants the lowest frequencies
    wf = spectral_kernels(rng.standard_normal((32, 4, 3, 3)) + 0.5 * seed, 8)
    plain = magnitude_mask(wf, 0.25, "kernel")
    bank_of = bank_map(plain.reshape(32, 4, -1), 16, "auto")  # the scheduler's map of the plain masks
    mask = bank_balanced_mask(wf, 0.25, bank_of, 16, pes=16)
    assert mask_violations(mask.reshape(32 * 4, -1), 8) == 0
    assert np.all(mask.reshape(32, 4, -1).sum(axis=2) == 10)
    loads = bank_loads(_groups(mask, 16), bank_of, 16)
    plain_loads = bank_loads(_groups(plain, 16), bank_of, 16)
    # the per-kernel projection overloads the low-frequency banks (>= 16 reads for 10 per PE);
    # this one stays within one read of the cap of 10
    assert loads.max() <= 11 and plain_loads.max() >= 16


def test_real_model_masks_reach_the_pe_bound_with_their_bank_map():
    net = rm.load_pruned("admm_hw", 0.25)
    for name in ("conv2_1", "conv3_2"):
        wf = net.layers[name].dense()
        plain = magnitude_mask(wf, 0.25, "kernel")
        bank_of = bank_map(plain.reshape(plain.shape[0], plain.shape[1], -1), 16, "auto")
        mask = bank_balanced_mask(wf, 0.25, bank_of, 16, pes=16)
        flat = mask.reshape(mask.shape[0], mask.shape[1], -1)
        util = schedule_layer(flat, 16, 16, 1, bank_map=bank_of).pe_utilization
        util_plain = schedule_layer(plain.reshape(flat.shape), 16, 16, 1, bank_map=bank_of).pe_utilization
        energy = (np.abs(wf[mask]) ** 2).sum() / (np.abs(wf[plain]) ** 2).sum()
        assert util >= 0.9 > util_plain and energy > 0.97


def test_bad_bank_map_is_refused():
    wf = spectral_kernels(np.ones((2, 2, 3, 3)), 8)
    with pytest.raises(UsageError, match="bank_of"):
        bank_balanced_mask(wf, 0.25, np.arange(39), 16, pes=4)
    with pytest.raises(UsageError, match="bank_of"):
        bank_balanced_mask(wf, 0.25, np.arange(40), 16, pes=4)
    with pytest.raises(UsageError, match="density"):
        bank_balanced_mask(wf, 1.5, np.arange(40) % 16, 16, pes=4)
