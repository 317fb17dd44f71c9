"""Amaranth simulation of the PE array (quick, small cases): bit-exact with a brute-force sum, in
the documented cycles, with every fault-injection check able to fail."""

from __future__ import annotations

import numpy as np
import pytest

from flexspec.accel.fixed_point import BankConflictError, complex_product, execute_group, wrap_signed
from flexspec.rtl import LATENCY_CYCLES, GroupSpec, PEArrayConfig, build_program, reference_accumulators
from flexspec.schedule import schedule_groups, validate

pytest.importorskip("amaranth")
from flexspec.rtl.cosim import simulate_program  # noqa: E402  (needs amaranth)

I16 = (-(2**15), 2**15)


def adversarial_masks(P, F, rng):
    """Groups that stress the ports and the accumulators."""
    masks = [np.ones((P, F), bool)]  # fully dense group: every bank busy every cycle
    m = np.zeros((P, F), bool)
    m[0] = True  # one PE holds everything: makespan = F, others idle
    masks.append(m)
    m = np.zeros((P, F), bool)
    m[:, ::4] = True  # all PEs want the same frequencies
    masks.append(m)
    masks.append(np.zeros((P, F), bool))  # empty group: makespan 0
    masks.append(rng.random((P, F)) < 0.3)  # random sparse
    return np.stack(masks)


def brute_force(groups, masks, tiles_re, tiles_im, acc_channels, F, acc_bits=48):
    """acc[slot, f] = sum of X[channel, f] * W[p, f] over the masks (no schedule involved)."""
    re = np.zeros((acc_channels, F), np.int64)
    im = np.zeros_like(re)
    for g, m in zip(groups, masks, strict=True):
        for p, s in enumerate(g.slots):
            if s >= 0:
                pr, pi = complex_product(tiles_re[g.in_channel], tiles_im[g.in_channel], g.kernel_re[p], g.kernel_im[p])
                re[s] += np.where(m[p], pr, 0)
                im[s] += np.where(m[p], pi, 0)
    return wrap_signed(re, acc_bits), wrap_signed(im, acc_bits)


def _case(P, B, R, N, dsp, broadcast, method, rng, cin=2, extreme=False):
    F = N * (N // 2 + 1)
    masks = adversarial_masks(P, F, rng)
    sched = schedule_groups(masks, B, R, broadcast=broadcast, bank_map="mod", method=method)
    validate(sched, masks)
    acc_channels = P + 2
    cfg = PEArrayConfig(P, B, R, N, tuple(sched.bank_of), schedule_depth=int(sched.cycles.sum()) + 1,
                        in_channels=cin, acc_channels=acc_channels, dsp_per_complex_mac=dsp, broadcast=broadcast)
    groups = []
    for g in range(masks.shape[0]):
        if extreme:  # worst-case operands
            kr, ki = np.full((P, F), I16[0]), np.full((P, F), I16[1] - 1)
        else:
            kr, ki = rng.integers(*I16, (2, P, F))
        slots = rng.permutation(acc_channels)[:P]  # balanced grouping: any PE may serve any channel
        groups.append(GroupSpec(sched.group_table(g), g % cin, slots, kr * masks[g], ki * masks[g]))
    tiles = []
    for _ in range(2):
        t = np.full((2, cin, F), I16[0]) if extreme else rng.integers(*I16, (2, cin, F))
        tiles.append((t[0], t[1]))
    return cfg, sched, masks, groups, tiles


@pytest.mark.parametrize(("P", "B", "R", "N", "dsp"), [(4, 4, 1, 8, 3), (4, 2, 2, 4, 4), (3, 4, 1, 4, 3)])
def test_program_matches_brute_force_and_cycles(P, B, R, N, dsp):
    rng = np.random.default_rng(P * 100 + B * 10 + R)
    cfg, sched, masks, groups, tiles = _case(P, B, R, N, dsp, False, "optimal", rng)
    prog = build_program(cfg, groups)
    assert prog.length == int(sched.cycles.sum())  # groups back to back: no gap words
    res = simulate_program(cfg, prog, tiles)
    for k, (r, (tr, ti)) in enumerate(zip(res, tiles, strict=True)):
        er, ei = brute_force(groups, masks, tr, ti, cfg.acc_channels, cfg.num_freq)
        assert np.array_equal(r.acc_re, er) and np.array_equal(r.acc_im, ei)
        # runs back to back: done after L + latency, then every L cycles
        assert r.done_cycle == (k + 1) * prog.length + LATENCY_CYCLES
        assert not r.conflict


def test_extreme_operands_greedy_schedule_wrap():
    cfg, sched, masks, groups, tiles = _case(4, 4, 1, 4, 3, False, "greedy", np.random.default_rng(5), extreme=True)
    res = simulate_program(cfg, build_program(cfg, groups), tiles[:1])[0]
    er, ei = brute_force(groups, masks, *tiles[0], cfg.acc_channels, cfg.num_freq)
    assert np.array_equal(res.acc_re, er) and np.array_equal(res.acc_im, ei)


def test_broadcast_schedule_shares_ports():
    cfg, sched, masks, groups, tiles = _case(4, 2, 1, 4, 3, True, "broadcast", np.random.default_rng(6))
    res = simulate_program(cfg, build_program(cfg, groups), tiles[:1])[0]
    er, ei = reference_accumulators(cfg, groups, *tiles[0])
    assert np.array_equal(res.acc_re, er) and np.array_equal(res.acc_im, ei)
    assert not res.conflict


def _small(broadcast=False, acc_channels=2):
    # N = 4: F = 12; bank map f mod 2
    return PEArrayConfig(2, 2, 1, 4, tuple(f % 2 for f in range(12)), schedule_depth=8, acc_channels=acc_channels,
                         broadcast=broadcast)


def _ops(cfg, rng):
    tr, ti = rng.integers(*I16, (2, 1, cfg.num_freq))
    kr, ki = rng.integers(*I16, (2, cfg.num_pes, cfg.num_freq))
    return (tr, ti), kr, ki


def test_functional_model_per_group_agrees():
    """The per-PE functional model (execute_group) and the output-channel accumulators agree
    when each PE keeps its own slot."""
    cfg = _small()
    rng = np.random.default_rng(2)
    (tr, ti), kr, ki = _ops(cfg, rng)
    t1, t2 = np.array([[0, 1], [2, 3]]), np.array([[0, 3], [1, -1]])
    groups = [GroupSpec(t1, 0, np.array([0, 1]), kr, ki), GroupSpec(t2, 0, np.array([0, 1]), kr, ki)]
    res = simulate_program(cfg, build_program(cfg, groups), [(tr, ti)])[0]
    bo = np.array(cfg.bank_of)
    r1, i1 = execute_group(t1, bo, 1, tr[0], ti[0], kr, ki)
    r2, i2 = execute_group(t2, bo, 1, tr[0], ti[0], kr, ki, acc_re=r1, acc_im=i1)
    assert np.array_equal(res.acc_re, r2) and np.array_equal(res.acc_im, i2)


def test_forwarding_is_needed_and_works():
    """Back-to-back groups hit the same accumulator in consecutive cycles: the forwarded sum is
    right, and a design without forwarding gives a different (wrong) answer."""
    cfg = _small()
    rng = np.random.default_rng(4)
    (tr, ti), kr, ki = _ops(cfg, rng)
    # group 0 ends with PE0 on f=5 (slot 0); group 1 starts with PE1 on f=5 (slot 0)
    g0 = GroupSpec(np.array([[0, 1], [5, -1]]), 0, np.array([0, 1]), kr, ki)
    g1 = GroupSpec(np.array([[-1, 5], [2, 3]]), 0, np.array([1, 0]), kr, ki)
    # and PE0 accumulates the same address twice in a row (slot 0, f=5 then slot 0... via group 2)
    g2 = GroupSpec(np.array([[7, -1]]), 0, np.array([0, 1]), kr, ki)
    g3 = GroupSpec(np.array([[7, -1]]), 0, np.array([0, 1]), kr, ki)
    groups = [g0, g1, g2, g3]
    prog = build_program(cfg, groups)
    er, ei = reference_accumulators(cfg, groups, tr, ti)
    good = simulate_program(cfg, prog, [(tr, ti)])[0]
    assert np.array_equal(good.acc_re, er) and np.array_equal(good.acc_im, ei)
    bad = simulate_program(cfg, prog, [(tr, ti)], _forwarding=False)[0]
    assert not (np.array_equal(bad.acc_re, er) and np.array_equal(bad.acc_im, ei))


def test_conflicting_schedule_is_refused_and_caught_in_simulation():
    cfg = _small()
    rng = np.random.default_rng(0)
    (tr, ti), kr, ki = _ops(cfg, rng)
    # cycle 1: PE0 reads f=2, PE1 reads f=4: both in bank 0, which has one port
    g = GroupSpec(np.array([[0, 1], [2, 4]]), 0, np.array([0, 1]), kr, ki)
    with pytest.raises(BankConflictError):
        build_program(cfg, [g])
    prog = build_program(cfg, [g], allow_conflicts=True)
    with pytest.raises(BankConflictError):
        simulate_program(cfg, prog, [(tr, ti)])


def test_same_frequency_needs_broadcast():
    rng = np.random.default_rng(1)
    cfg = _small()
    (tr, ti), kr, ki = _ops(cfg, rng)
    g = GroupSpec(np.array([[0, 0], [1, 2]]), 0, np.array([0, 1]), kr, ki)  # both PEs read f=0
    with pytest.raises(BankConflictError):
        build_program(cfg, [g])
    cfg_b = _small(broadcast=True)
    prog = build_program(cfg_b, [g])
    res = simulate_program(cfg_b, prog, [(tr, ti)])[0]
    er, ei = reference_accumulators(cfg_b, [g], tr, ti)
    assert np.array_equal(res.acc_re, er) and np.array_equal(res.acc_im, ei)
    assert res.done_cycle == 2 + LATENCY_CYCLES


def test_early_done_is_caught():
    """The done-timing check is not vacuous: done one stage early fails the cycle count and,
    read at once, misses the last accumulation."""
    cfg = _small()
    (tr, ti), kr, ki = _ops(cfg, np.random.default_rng(3))
    prog = build_program(cfg, [GroupSpec(np.array([[0, 1], [2, 3]]), 0, np.array([0, 1]), kr, ki)])
    res = simulate_program(cfg, prog, [(tr, ti)], _done_stage=4)[0]
    assert res.done_cycle == prog.length + LATENCY_CYCLES - 1


def test_corrupted_word_is_caught():
    cfg = _small()
    (tr, ti), kr, ki = _ops(cfg, np.random.default_rng(7))
    groups = [GroupSpec(np.array([[0, 1], [2, 3]]), 0, np.array([0, 1]), kr, ki)]
    prog = build_program(cfg, groups)
    # flip one bit of PE1's port address field in word 1: it now reads another frequency
    words = list(prog.checked_words)
    words[1] ^= 1 << (cfg.bank_addr_bits * 1)
    from dataclasses import replace

    with pytest.raises(BankConflictError):
        simulate_program(cfg, replace(prog, checked_words=tuple(words)), [(tr, ti)])
