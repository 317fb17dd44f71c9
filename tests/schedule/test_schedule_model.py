"""Bank maps, bank addresses, the Schedule structure and its npz file."""

import dataclasses
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flexspec import FORMAT_VERSION
from flexspec.errors import InputFileError, UnknownNameError, UsageError
from flexspec.schedule import BankConfig, Schedule, bank_addresses, bank_loads, bank_map, schedule_groups


def test_mod_map():
    assert bank_map(np.zeros(40, np.int64), 16, "mod").tolist() == [f % 16 for f in range(40)]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=60), st.integers(1, 20))
def test_auto_map_capacity_and_balance(counts, banks):
    counts = np.array(counts, np.int64)
    auto = bank_map(counts, banks, "auto")
    held = np.bincount(auto, minlength=banks)
    assert held.max() <= -(-counts.size // banks)  # bank depth never above that of mod
    load = np.bincount(auto, weights=counts, minlength=banks)
    # LPT guarantee against the best possible makespan's simple bounds (ignoring capacity)
    if counts.size <= banks:
        assert load.max() == counts.max()
    assert load.max() <= max(counts.max(), counts.sum() / banks + counts.max())
    assert np.array_equal(auto, bank_map(counts, banks, "auto"))  # deterministic


def test_auto_map_balances_low_frequency_masks():
    rng = np.random.default_rng(0)
    # pruned kernels keep mostly low frequencies: positions 0..9 are kept far more often
    p = np.full(40, 0.05)
    p[:10] = 0.9
    mask = rng.random((200, 16, 40)) < p
    mod = bank_map(mask, 16, "mod")
    auto = bank_map(mask, 16, "auto")
    assert np.array_equal(auto, bank_map(mask.sum(axis=(0, 1)), 16, "auto"))  # mask == its counts
    assert bank_loads(mask, auto, 16).sum(0).max() < bank_loads(mask, mod, 16).sum(0).max()
    sa = schedule_groups(mask, 16, 1, False, auto)
    sm = schedule_groups(mask, 16, 1, False, mod)
    assert sa.total_cycles < sm.total_cycles


def test_bank_map_errors():
    with pytest.raises(UnknownNameError, match="auto"):
        bank_map(np.zeros(6, np.int64), 2, "random")
    with pytest.raises(UsageError):
        bank_map(np.zeros(6, np.int64), 0)
    with pytest.raises(UsageError):
        bank_map(np.zeros((2, 6), np.float64), 2)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=50))
def test_bank_addresses_are_dense_and_unique(banks_list):
    bank_of = np.array(banks_list)
    addr = bank_addresses(bank_of)
    pairs = set(zip(bank_of.tolist(), addr.tolist(), strict=True))
    assert len(pairs) == bank_of.size
    for b in set(banks_list):
        assert sorted(addr[bank_of == b].tolist()) == list(range(int((bank_of == b).sum())))


def test_bank_config():
    cfg = BankConfig(4, 2, True, np.arange(12) % 4)
    assert cfg.bank_depth == 3 and cfg.num_frequencies == 12
    with pytest.raises(UsageError):
        BankConfig(4, 1, False, np.arange(12))
    with pytest.raises(UsageError):
        BankConfig(0, 1, False, np.zeros(12, np.int64))


@pytest.fixture
def sched():
    mask = np.random.default_rng(1).random((5, 4, 12)) < 0.4
    mask[2] = False
    return mask, schedule_groups(mask, 3, 1, False, "auto", "optimal")


def test_group_table_and_totals(sched):
    mask, s = sched
    assert s.num_groups == 5 and s.fft_size == 4 and s.nnz == mask.sum()
    assert s.pe_utilization == pytest.approx(mask.sum() / (4 * s.cycles.sum()))
    for g in range(5):
        table = s.group_table(g)
        assert table.shape == (s.cycles[g], 4)
        for p in range(4):
            read = table[:, p][table[:, p] >= 0]
            assert sorted(read.tolist()) == np.flatnonzero(mask[g, p]).tolist()
    assert s.group_table(2).shape == (0, 4)
    with pytest.raises(UsageError):
        s.group_table(5)


def test_save_load_roundtrip(tmp_path, sched):
    _, s = sched
    path = s.save(tmp_path / "s.npz")
    assert os.listdir(tmp_path) == ["s.npz"]  # no temp file left behind
    t = Schedule.load(path)
    for f in dataclasses.fields(Schedule):
        a, b = getattr(s, f.name), getattr(t, f.name)
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
    with np.load(path) as data:
        assert int(data["format_version"]) == FORMAT_VERSION
        assert str(data["method"]) == "optimal" and int(data["banks"]) == 3


@pytest.mark.parametrize(
    "field,value",
    [("format_version", np.int64(FORMAT_VERSION + 1)), ("cycle", np.zeros(3, np.float64)), ("pe", None),
     ("method", np.str_("fastest")), ("bank_of", np.zeros(3, np.int64)), ("banks", np.int64(0)),
     ("broadcast", np.int64(1)), ("lower_bound", np.zeros(2, np.int64))],
)
def test_load_rejects_bad_fields(tmp_path, sched, field, value):
    _, s = sched
    arrays = s.to_arrays()
    if value is None:
        del arrays[field]
    else:
        arrays[field] = value
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputFileError, match=field) as info:
        Schedule.load(path)
    assert str(path) in str(info.value)


def test_load_missing_and_garbage(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        Schedule.load(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_text("hello")
    with pytest.raises(InputFileError, match="junk.npz"):
        Schedule.load(tmp_path / "junk.npz")
