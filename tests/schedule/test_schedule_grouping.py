"""Kernel grouping (hardware rule: one input channel per group) and whole-layer scheduling."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flexspec.errors import UnknownNameError, UsageError
from flexspec.schedule import group_kernels, lower_bounds, schedule_layer, validate


@st.composite
def layers(draw):
    cout = draw(st.integers(1, 20))
    cin = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    density = rng.random((cout, cin, 1))  # kernels of very different density
    return rng.random((cout, cin, 12)) < density, draw(st.integers(1, 8))


@settings(max_examples=40, deadline=None)
@given(layers(), st.sampled_from(["fixed", "balanced", "bank_aware"]))
def test_groups_cover_each_kernel_once_one_input_channel(layer, method):
    mask, pes = layer
    cout, cin, _ = mask.shape
    groups, grouped = group_kernels(mask, pes, method, bank_of=np.arange(12) % 5, banks=5)
    per_channel = -(-cout // pes)
    assert groups.shape == (cin * per_channel, pes) and grouped.shape == (cin * per_channel, pes, 12)
    live = groups[groups >= 0]
    assert sorted(live.tolist()) == list(range(cout * cin))
    for g, row in enumerate(groups):
        ids = row[row >= 0]
        assert len({int(k) % cin for k in ids}) <= 1  # one input channel per group
        assert (ids % cin == g // per_channel).all()  # groups listed channel by channel
        for p, k in enumerate(row):
            expect = mask[k // cin, k % cin] if k >= 0 else np.zeros(12, bool)
            assert np.array_equal(grouped[g, p], expect)
    if method == "fixed":
        for g, row in enumerate(groups):
            k = g % per_channel
            j = np.arange(pes) + pes * k
            assert np.array_equal(row, np.where(j < cout, j * cin + g // per_channel, -1))


@settings(max_examples=40, deadline=None)
@given(layers())
def test_balanced_never_worse_than_fixed_on_pe_bound(layer):
    mask, pes = layer
    _, fixed = group_kernels(mask, pes, "fixed")
    _, bal = group_kernels(mask, pes, "balanced")
    assert bal.sum(2).max(1).sum() <= fixed.sum(2).max(1).sum()


@settings(max_examples=30, deadline=None)
@given(layers(), st.integers(1, 6), st.integers(1, 2))
def test_bank_aware_never_raises_the_bound(layer, banks, ports):
    mask, pes = layer
    bank_of = np.random.default_rng(banks).integers(0, banks, 12)
    _, bal = group_kernels(mask, pes, "balanced")
    _, aware = group_kernels(mask, pes, "bank_aware", bank_of=bank_of, banks=banks, ports=ports)
    assert lower_bounds(aware, bank_of, banks, ports).sum() <= lower_bounds(bal, bank_of, banks, ports).sum()


def test_bank_aware_helps_on_random_masks():
    mask = np.random.default_rng(6).random((128, 4, 40)) < 0.25
    bank_of = np.arange(40) % 16
    _, bal = group_kernels(mask, 16, "balanced")
    _, aware = group_kernels(mask, 16, "bank_aware", bank_of=bank_of, banks=16)
    before, after = lower_bounds(bal, bank_of, 16, 1).sum(), lower_bounds(aware, bank_of, 16, 1).sum()
    assert after < 0.95 * before
    ls = schedule_layer(mask, 16, 16, 1, False, bank_of, "optimal", "bank_aware")
    assert ls.cycles == after


def test_balanced_sorts_by_count():
    mask = np.zeros((4, 1, 6), bool)
    for j, n in enumerate([1, 4, 2, 3]):
        mask[j, 0, :n] = True
    groups, _ = group_kernels(mask, 2, "balanced")
    assert groups.tolist() == [[1, 3], [2, 0]]


def test_group_kernels_errors():
    with pytest.raises(UsageError):
        group_kernels(np.zeros((2, 6), bool), 2)
    with pytest.raises(UsageError):
        group_kernels(np.zeros((2, 2, 6), bool), 0)
    with pytest.raises(UnknownNameError):
        group_kernels(np.zeros((2, 2, 6), bool), 2, "random")
    with pytest.raises(UsageError, match="bank map"):
        group_kernels(np.zeros((2, 2, 6), bool), 2, "bank_aware")


def test_schedule_layer_totals():
    mask = np.random.default_rng(5).random((40, 3, 40)) < 0.25
    ls = schedule_layer(mask, 16, 16, 1, False, "auto", "optimal", "balanced")
    _, grouped = group_kernels(mask, 16, "balanced")
    validate(ls.schedule, grouped)
    assert ls.nnz == mask.sum() and ls.cycles == ls.lower_bound == ls.schedule.cycles.sum()
    assert ls.pe_utilization == pytest.approx(mask.sum() / (16 * ls.cycles))
    assert ls.groups.shape == (9, 16) and (ls.out_channels, ls.in_channels) == (40, 3)
