"""Verilator co-simulation: the compiled PE array and the spectral pass of real layers are bit
exact with brute-force sums and the functional model, their cycles equal the engine's cycle
model (and the simulator's charge) to the cycle, and injected faults are caught."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from flexspec.accel import engine
from flexspec.accel.fixed_point import execute_group
from flexspec.rtl import LATENCY_CYCLES, GroupSpec, PEArrayConfig, build_program, reference_accumulators
from flexspec.rtl.verilator import DEFAULT_WORKDIR, verilator_available
from flexspec.schedule import schedule_groups

pytest.importorskip("amaranth")
pytestmark = pytest.mark.skipif(not verilator_available(),
                                reason="verilator (and a C++ compiler) not installed; Debian: apt-get install -y verilator")

from flexspec.rtl.source import RTLOptions, layer_case  # noqa: E402
from flexspec.rtl.verilate import verilate_program, verilate_spectral_pass  # noqa: E402

I16 = (-(2**15), 2**15)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("verilator")


#: One PE-array configuration for every program below: the programs are loaded by the script,
#: so they all share one Verilator build.
P4, B4, N8, CIN, COUT, DEPTH = 4, 4, 8, 3, 6, 512
CONFIG = PEArrayConfig(P4, B4, 1, N8, tuple(f % B4 for f in range(40)), schedule_depth=DEPTH, in_channels=CIN,
                       acc_channels=COUT)


def _random_program(rng, groups=9, density=0.4):
    P, F, cin, cout = P4, CONFIG.num_freq, CIN, COUT
    masks = rng.random((groups, P, F)) < density
    masks[0] = True  # one dense group: every port busy
    sched = schedule_groups(masks, B4, 1, bank_map=np.asarray(CONFIG.bank_of))
    cfg = CONFIG
    specs = []
    for g in range(groups):
        kr, ki = rng.integers(*I16, (2, P, F))
        specs.append(GroupSpec(sched.group_table(g), g % cin, rng.permutation(cout)[:P], kr * masks[g], ki * masks[g]))
    return cfg, specs


def test_pe_array_multi_group_tiles_back_to_back(work):
    rng = np.random.default_rng(11)
    cfg, specs = _random_program(rng)
    prog = build_program(cfg, specs)
    tiles = [tuple(rng.integers(*I16, (2, cfg.in_channels, cfg.num_freq))) for _ in range(4)]
    r = verilate_program(cfg, prog, tiles, work)
    for t, tile in enumerate(tiles):
        er, ei = reference_accumulators(cfg, specs, *tile)
        assert np.array_equal(r["acc_re"][t], er) and np.array_equal(r["acc_im"][t], ei)
    L = prog.length
    assert L == sum(int(np.asarray(s.table).shape[0]) for s in specs)  # groups back to back
    acc, done = r["accept_cycles"], r["done_cycles"]
    assert [d - a for a, d in zip(acc, done, strict=True)] == [L + LATENCY_CYCLES] * len(tiles)
    assert acc[1] - acc[0] == L  # tile 1 was loaded during run 0: no gap between the runs
    assert not r["conflict"]


def test_pe_array_per_pe_functional_model(work):
    """With one slot per PE, each output-channel accumulator is the per-PE functional model's
    (execute_group, chained over the groups)."""
    rng = np.random.default_rng(12)
    P, F = P4, CONFIG.num_freq
    masks = rng.random((3, P, F)) < 0.5
    sched = schedule_groups(masks, B4, 1, bank_map=np.asarray(CONFIG.bank_of))
    cfg = CONFIG
    tile = tuple(rng.integers(*I16, (2, 3, F)))
    specs, ar, ai = [], np.zeros((P, F), np.int64), np.zeros((P, F), np.int64)
    for g in range(3):
        kr, ki = rng.integers(*I16, (2, P, F)) * masks[g]
        specs.append(GroupSpec(sched.group_table(g), g, np.arange(P), kr, ki))
        ar, ai = execute_group(sched.group_table(g), sched.bank_of, 1, tile[0][g], tile[1][g], kr, ki,
                               acc_re=ar, acc_im=ai)
    r = verilate_program(cfg, build_program(cfg, specs), [tile], work)
    assert np.array_equal(r["acc_re"][0][:P], ar) and np.array_equal(r["acc_im"][0][:P], ai)


def test_faults_are_caught(work):
    rng = np.random.default_rng(13)
    cfg, specs = _random_program(rng, groups=4)
    prog = build_program(cfg, specs)
    tiles = [tuple(rng.integers(*I16, (2, cfg.in_channels, cfg.num_freq)))]
    er, ei = reference_accumulators(cfg, specs, *tiles[0])
    # one corrupted memory word: a kernel bit of PE 2 in word 3 flips
    words = list(prog.checked_words)
    base = cfg.num_ports * cfg.bank_addr_bits + 2 * cfg.pe_field_bits
    k_lsb = base + 2 + cfg.port_sel_bits + cfg.acc_addr_bits + cfg.row_bits
    w = next(i for i, x in enumerate(words) if (x >> base) & 1)  # a word where PE 2 works
    words[w] ^= 1 << (k_lsb + 3)
    r = verilate_program(cfg, prog, tiles, work, words=words)
    assert not np.array_equal(r["acc_re"][0], er) or not np.array_equal(r["acc_im"][0], ei)
    # a corrupted port address: the checked build flags it
    words = list(prog.checked_words)
    words[0] ^= 1
    assert verilate_program(cfg, prog, tiles, work, words=words)["conflict"]
    # a conflicting schedule (two PEs on one single-port bank in one cycle), compiled anyway
    bad = [replace(specs[1], table=np.array([[0, 4, -1, -1]] + np.asarray(specs[1].table).tolist()))]
    prog_bad = build_program(cfg, bad, allow_conflicts=True)
    assert verilate_program(cfg, prog_bad, tiles, work)["conflict"]
    # done raised one stage early: the cycle count differs from the model's
    r = verilate_program(cfg, prog, tiles, work, _done_stage=4)
    assert r["done_cycles"][0] - r["accept_cycles"][0] != prog.length + LATENCY_CYCLES


@pytest.mark.parametrize("layer", ["conv1_1", "conv1_2"])
def test_real_layer_spectral_pass_bit_exact_and_cycle_exact(work, layer):
    """A whole real layer of the shipped model (every tile, every kernel group): the streamed
    accumulators equal the per-group functional model, and the RTL's cycles equal the engine
    model's and the simulator's (conv1_1 is drain bound, conv1_2 compute bound)."""
    from flexspec.accel.arch import AcceleratorConfig
    from flexspec.accel.sim import engine_layer_cycles

    case = layer_case(layer, RTLOptions())  # the CLI's default design: its --verify test reuses this build
    tiles = [case.tile(t) for t in range(case.num_tiles)]
    r = verilate_spectral_pass(case.pe_config, case.program, tiles, DEFAULT_WORKDIR)
    c = case.pe_config
    bo = np.asarray(c.bank_of)
    for t in (0, case.num_tiles // 2, case.num_tiles - 1):
        acc_re = np.zeros((c.acc_channels, c.num_freq), np.int64)
        acc_im = np.zeros_like(acc_re)
        for g in case.groups:  # per-PE functional model, scattered to the PEs' output channels
            pr, pi = execute_group(g.table, bo, c.ports, tiles[t][0][g.in_channel], tiles[t][1][g.in_channel],
                                   g.kernel_re, g.kernel_im)
            for p, j in enumerate(g.slots):
                if j >= 0:
                    acc_re[j] += pr[p]
                    acc_im[j] += pi[p]
        assert np.array_equal(r["acc_re"][t], acc_re) and np.array_equal(r["acc_im"][t], acc_im)
    shape = engine.pass_shape(case.layer_schedule.schedule.cycles, c.in_channels, c.acc_channels, c.bank_of,
                              c.num_banks, c.num_pes, c.fft_size)
    assert r["cycles"] == shape.cycles(case.num_tiles)
    cfg = AcceleratorConfig(arrays=1, pes=c.num_pes, banks=c.num_banks, ports=c.ports)
    assert r["cycles"] == engine_layer_cycles(case.mask, cfg, case.num_tiles)
    assert not r["conflict"]
