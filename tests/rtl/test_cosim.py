"""Co-simulation: the Amaranth RTL equals the bit-exact functional model, in the documented cycles."""

from __future__ import annotations

import numpy as np
import pytest

from flexspec.accel.fixed_point import BankConflictError, execute_group
from flexspec.rtl import LATENCY_CYCLES, PEArrayConfig, build_program
from flexspec.rtl.cosim import RTLSimulationError, simulate_groups
from flexspec.schedule import schedule_groups, validate

pytest.importorskip("amaranth")

I16 = (-(2**15), 2**15)


def adversarial_masks(P, F, rng):
    """Groups that stress the arbiter and the accumulators."""
    masks = []
    masks.append(np.ones((P, F), bool))  # fully dense group: every bank busy every cycle
    m = np.zeros((P, F), bool)
    m[0] = True  # one PE holds everything: makespan = F, others idle
    masks.append(m)
    m = np.zeros((P, F), bool)
    m[:, ::4] = True  # all PEs want the same frequencies (one bank under f mod 4)
    masks.append(m)
    masks.append(np.zeros((P, F), bool))  # empty group: makespan 0
    masks.append(rng.random((P, F)) < 0.3)  # random sparse
    return np.stack(masks)


def _run_case(P, B, R, N, dsp, broadcast, method, rng, extreme=False):
    F = N * (N // 2 + 1)
    mask = adversarial_masks(P, F, rng)
    sched = schedule_groups(mask, B, R, broadcast=broadcast, bank_map="mod", method=method)
    validate(sched, mask)
    cfg = PEArrayConfig(P, B, R, N, tuple(sched.bank_of), schedule_depth=max(1, int(sched.cycles.max())),
                        dsp_per_complex_mac=dsp, broadcast=broadcast)
    progs, refs = [], []
    for g in range(mask.shape[0]):
        table = sched.group_table(g)
        if extreme:  # worst-case operands: most negative values everywhere
            tr = np.full(F, I16[0])
            ti = np.full(F, I16[0])
            kr = np.full((P, F), I16[0])
            ki = np.full((P, F), I16[1] - 1)
        else:
            tr, ti = rng.integers(*I16, (2, F))
            kr, ki = rng.integers(*I16, (2, P, F))
        kr, ki = kr * mask[g], ki * mask[g]
        progs.append(build_program(cfg, table, tr, ti, kr, ki))
        refs.append(execute_group(table, sched.bank_of, R, tr, ti, kr, ki, broadcast=broadcast,
                                  dsp_per_complex_mac=dsp))
    results = simulate_groups(cfg, progs)
    for g, (res, (er, ei)) in enumerate(zip(results, refs, strict=True)):
        assert np.array_equal(res.acc_re, er), f"group {g}: real parts differ"
        assert np.array_equal(res.acc_im, ei), f"group {g}: imaginary parts differ"
        assert res.measured_cycles == sched.cycles[g] + LATENCY_CYCLES
        assert res.counter_cycles == res.measured_cycles
        assert not res.conflict
        # every scheduled product landed: nonzero accumulators only where the mask is
        assert not np.any(res.acc_re[~mask[g]]) and not np.any(res.acc_im[~mask[g]])
    return sched


@pytest.mark.parametrize(("P", "B", "R", "N", "dsp"), [(4, 4, 1, 8, 3), (4, 2, 2, 4, 4), (3, 4, 1, 4, 3)])
def test_rtl_matches_functional_model_adversarial(P, B, R, N, dsp):
    _run_case(P, B, R, N, dsp, broadcast=False, method="optimal", rng=np.random.default_rng(P * 100 + B * 10 + R))


def test_rtl_extreme_operands_and_greedy_schedule():
    _run_case(4, 4, 1, 4, 3, broadcast=False, method="greedy", rng=np.random.default_rng(5), extreme=True)


def test_rtl_broadcast_schedule():
    _run_case(4, 2, 1, 4, 3, broadcast=True, method="broadcast", rng=np.random.default_rng(6))


def _conflict_config(broadcast=False):
    # N = 4: F = 12; bank map f mod 2
    return PEArrayConfig(2, 2, 1, 4, tuple(f % 2 for f in range(12)), schedule_depth=4, broadcast=broadcast)


def _operands(cfg, rng):
    tr, ti = rng.integers(*I16, (2, cfg.num_freq))
    kr, ki = rng.integers(*I16, (2, cfg.num_pes, cfg.num_freq))
    return tr, ti, kr, ki


def test_conflicting_schedule_is_detected_in_simulation():
    cfg = _conflict_config()
    # cycle 2: PE0 reads f=2, PE1 reads f=4: both in bank 0, which has one port
    table = np.array([[0, 1], [3, 6], [2, 4], [5, -1]])
    tr, ti, kr, ki = _operands(cfg, np.random.default_rng(0))
    with pytest.raises(BankConflictError):
        execute_group(table, np.array(cfg.bank_of), 1, tr, ti, kr, ki)
    with pytest.raises(BankConflictError) as exc:
        simulate_groups(cfg, [build_program(cfg, table, tr, ti, kr, ki)])
    assert exc.value.cycle == 2


def test_same_frequency_needs_broadcast():
    table = np.array([[0, 0], [1, 2]])  # cycle 0: both PEs read frequency 0
    rng = np.random.default_rng(1)
    cfg = _conflict_config(broadcast=False)
    tr, ti, kr, ki = _operands(cfg, rng)
    with pytest.raises(BankConflictError):
        simulate_groups(cfg, [build_program(cfg, table, tr, ti, kr, ki)])
    cfg_b = _conflict_config(broadcast=True)
    res = simulate_groups(cfg_b, [build_program(cfg_b, table, tr, ti, kr, ki)])[0]
    er, ei = execute_group(table, np.array(cfg_b.bank_of), 1, tr, ti, kr, ki, broadcast=True)
    assert np.array_equal(res.acc_re, er) and np.array_equal(res.acc_im, ei)
    assert res.measured_cycles == 2 + LATENCY_CYCLES


def test_accumulate_over_groups():
    cfg = _conflict_config()
    rng = np.random.default_rng(2)
    t1 = np.array([[0, 1], [2, 3]])
    t2 = np.array([[0, 3], [1, -1]])
    ops1, ops2 = _operands(cfg, rng), _operands(cfg, rng)
    res = simulate_groups(cfg, [build_program(cfg, t1, *ops1), build_program(cfg, t2, *ops2)],
                          accumulate=[False, True])
    bo = np.array(cfg.bank_of)
    r1, i1 = execute_group(t1, bo, 1, *ops1)
    r2, i2 = execute_group(t2, bo, 1, *ops2, acc_re=r1, acc_im=i1)
    assert np.array_equal(res[1].acc_re, r2) and np.array_equal(res[1].acc_im, i2)
    assert not np.array_equal(r2, execute_group(t2, bo, 1, *ops2)[0])  # the test can tell the difference


def test_early_done_is_caught():
    """The done-timing check is not vacuous: a design raising done one cycle early fails."""
    cfg = _conflict_config()
    table = np.array([[0, 1], [2, 3]])
    prog = build_program(cfg, table, *_operands(cfg, np.random.default_rng(3)))
    with pytest.raises(RTLSimulationError):
        simulate_groups(cfg, [prog], _done_latency=LATENCY_CYCLES - 1)
