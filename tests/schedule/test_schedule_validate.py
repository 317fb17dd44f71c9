"""The validator accepts valid schedules and catches every kind of broken one."""

import dataclasses

import numpy as np
import pytest

from flexspec.schedule import ScheduleError, schedule_groups, validate


@pytest.fixture(scope="module")
def base():
    mask = np.random.default_rng(2).random((3, 4, 12)) < 0.5
    s = schedule_groups(mask, 3, 1, False, "mod", "optimal")
    validate(s, mask)
    return mask, s


def _with(s, **changes):
    return dataclasses.replace(s, **changes)


def _swap_last_cycles(s):
    cycle = s.cycle.copy()
    cycle[-1], cycle[-2] = cycle[-2], cycle[-1]
    return cycle


def test_broken_schedules_are_caught(base):
    mask, s = base
    n = s.nnz
    keep = np.ones(n, bool)
    keep[5] = False
    dup = np.r_[np.arange(n), n - 1]
    # each broken schedule with the message that must name what is wrong
    broken = {
        "missing read": (_with(s, group=s.group[keep], pe=s.pe[keep], index=s.index[keep], cycle=s.cycle[keep]),
                         r"1 kept non-zeros never read, first: group 0 PE 3 frequency 7"),
        "duplicate read": (_with(s, group=s.group[dup], pe=s.pe[dup], index=s.index[dup], cycle=s.cycle[dup]),
                           r"group 2 PE 1 reads frequency 4 2 times"),
        "not kept": (_with(s, index=np.where(np.arange(n) == 0, np.flatnonzero(~mask[0, s.pe[0]])[0], s.index)),
                     r"read 0: group 0 PE 0 frequency \d+ is not a kept non-zero"),
        "wrong cycles": (_with(s, cycles=s.cycles + np.array([0, 1, 0])),
                         r"group 1: reported (\d+) cycles, true makespan is (?!\1)\d+"),
        "wrong bound": (_with(s, lower_bound=s.lower_bound - 1), r"group 0: reported lower bound \d+, recomputed"),
        "pe out of range": (_with(s, pe=np.where(np.arange(n) == 3, 9, s.pe)), r"read 3: pe 9 outside 0\.\.3"),
        "unsorted": (_with(s, cycle=_swap_last_cycles(s)), r"reads not sorted by \(group, cycle, pe\)"),
        "bank map size": (_with(s, bank_of=s.bank_of[:-1]), r"bank_of must have 12 entries, got shape \(11,\)"),
        "pes": (_with(s, num_pes=5), r"schedule has 5 PEs per group, mask has 4"),
    }
    for bad, message in broken.values():
        with pytest.raises(ScheduleError, match=r"^invalid schedule: " + message):
            validate(bad, mask)


def test_pe_reading_twice_in_a_cycle():
    mask = np.zeros((1, 2, 4), bool)
    mask[0, 0, [0, 1]] = True
    s = schedule_groups(mask, 2, 1, False, "mod", "optimal")
    bad = dataclasses.replace(s, cycle=np.zeros(2, np.int32), cycles=np.array([1]))
    with pytest.raises(ScheduleError, match="reads 2 times"):
        validate(bad, mask)


def test_bank_port_overflow_and_broadcast_rule():
    mask = np.zeros((1, 2, 4), bool)
    mask[0, :, 0] = True  # both PEs read f0 (bank 0)
    s = schedule_groups(mask, 2, 1, False, "mod", "optimal")
    assert s.cycles.tolist() == [2]
    same_cycle = dict(pe=np.array([0, 1], np.int32), index=np.zeros(2, np.int32), cycle=np.zeros(2, np.int32),
                      cycles=np.array([1]))
    with pytest.raises(ScheduleError, match="bank 0 serves 2 reads"):
        validate(dataclasses.replace(s, **same_cycle), mask)
    # with broadcast, the two reads of one address share the port: valid
    b = schedule_groups(mask, 2, 1, True, "mod", "broadcast")
    assert b.cycles.tolist() == [1]
    validate(b, mask)
    # two distinct addresses of one bank in one cycle still overflow with broadcast
    mask2 = np.zeros((1, 2, 4), bool)
    mask2[0, 0, 0] = mask2[0, 1, 2] = True
    b2 = schedule_groups(mask2, 2, 1, True, "mod", "broadcast")
    assert b2.cycles.tolist() == [2]
    with pytest.raises(ScheduleError, match="distinct addresses"):
        validate(dataclasses.replace(b2, pe=np.array([0, 1], np.int32), index=np.array([0, 2], np.int32),
                                     cycle=np.zeros(2, np.int32), cycles=np.array([1])), mask2)


def test_schedule_against_other_mask(base):
    mask, s = base
    with pytest.raises(ScheduleError, match=r"read 0: group 0 PE 0 frequency \d+ is not a kept non-zero"):
        validate(s, ~mask)
