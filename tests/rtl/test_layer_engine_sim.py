"""The whole layer engine in Amaranth's simulator (quick small cases): bit-exact with the fixed-point
functional model (FFT, MAC, rounding, IFFT, overlap-add, bias, ReLU), cycles equal to the engine's
cycle model, every output pixel written once, within the derived bound of the float OaA, and
injected faults caught."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flexspec.accel.functional import layer_error_bound
from flexspec.accel.layer_events import (EngineGeometry, engine_cycles, engine_events, engine_geometry,
                                        fft_channel_interval_cycles)
from flexspec.errors import UsageError
from flexspec.rtl.program import build_program
from flexspec.spectral.sparse import sparse_oaa_conv2d

pytest.importorskip("amaranth")

from flexspec.rtl.engine_cosim import simulate_engine  # noqa: E402
from flexspec.rtl.export import ToolError  # noqa: E402

from flexspec.rtl.engine_case import random_engine_case as small_case  # noqa: E402

CASES = {  # n, cin, cout, height, width, pes, banks, ports, density, seed
    "n8_pass_bound": (8, 2, 3, 10, 9, 4, 4, 1, 0.4, 1),
    "n8_cin1_ifft_bound": (8, 1, 4, 14, 14, 4, 8, 1, 0.25, 2),
    "n8_r2": (8, 3, 2, 7, 13, 2, 4, 2, 0.5, 3),
    "n16": (16, 2, 2, 11, 11, 4, 8, 1, 0.2, 7),
}


@pytest.fixture(scope="module")
def base():
    return small_case(*CASES["n8_pass_bound"])


@pytest.mark.parametrize("name", list(CASES))
def test_engine_bit_exact_and_cycle_exact(name):
    n, cin, cout, hh, ww, p, b, r, dens, seed = CASES[name]
    case, *_ = small_case(n, cin, cout, hh, ww, p, b, r, dens, seed)
    res = simulate_engine(case)
    want = case.expected_output()
    assert np.array_equal(res["output"], want)
    assert res["writes"] == want.size  # every pixel once (none left at -1: ReLU outputs are >= 0)
    assert res["cycles"] == engine_cycles(case.spec.geometry)
    assert not res["conflict"]
    assert sum(case.trace.saturated.values()) == 0


@pytest.mark.parametrize("k", [2, 1])
def test_engine_bit_and_cycle_exact_at_fewer_readout_rows(k):
    """Read-out rows K < N (the headline's K = 1): a column leaves the pass every N/K cycles; the
    engine stays bit exact and its cycles are the model's, which charges N/K requests a column
    (here the read-out bounds the pass: charging one request a column would be hundreds of
    cycles short)."""
    n, cin, cout, hh, ww, p, b, r, dens, seed = CASES["n8_pass_bound"]
    case, *_ = small_case(n, cin, cout, hh, ww, p, b, r, dens, seed, readout_rows=k)
    assert case.spec.pe_config.readout_rows == case.spec.geometry.readout_rows == k
    res = simulate_engine(case)
    assert np.array_equal(res["output"], case.expected_output())
    assert res["cycles"] == engine_cycles(case.spec.geometry)
    full = engine_cycles(replace(case.spec.geometry, readout_rows=0))
    assert res["cycles"] > full + 80  # K = 2: 449 vs 357, K = 1: 641 vs 357
    assert not res["conflict"]


@settings(max_examples=4, deadline=None, derandomize=True)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(3, 9), st.integers(3, 9), st.integers(1, 4),
       st.integers(2, 6), st.integers(1, 2), st.sampled_from([0.2, 0.5, 1.0]), st.integers(0, 2**16))
def test_random_small_layers_bit_and_cycle_exact(cin, cout, hgt, wid, pes, banks, ports, density, seed):
    """Random N = 4 layers and designs: the RTL equals the functional model and the cycle model."""
    case, *_ = small_case(4, cin, cout, hgt, wid, pes, banks, ports, density, seed)
    res = simulate_engine(case)
    assert np.array_equal(res["output"], case.expected_output())
    assert res["cycles"] == engine_cycles(case.spec.geometry)


def test_fft_bound_engine_takes_a_channel_every_interval_not_every_n():
    """An FFT-bound layer (4 input channels, 1 output channel, short program) in the RTL: each
    extra tile costs Cin x fft_channel_interval_cycles (the bank writer's two slots), more than the
    N cycles a channel a simulator charging one channel per N cycles would."""
    runs = []
    for width in (6, 10):
        case, *_ = small_case(4, 4, 1, 4, width, 4, 4, 1, 0.2, 1)
        runs.append((case.spec.geometry, simulate_engine(case)["cycles"]))
    (g0, c0), (g1, c1) = runs
    per_channel = (c1 - c0) / ((g1.tiles - g0.tiles) * g0.in_channels)
    assert per_channel == fft_channel_interval_cycles(4, g0.channel_depth) > 4


def test_engine_output_within_bound_of_float_oaa(base):
    case, ssk, x, bias = base
    q = case.spec.quant
    y = np.ldexp(simulate_engine(case)["output"].astype(np.float64), -q.out_frac)
    ref = np.maximum(sparse_oaa_conv2d(x[None], ssk, 1, bias)[0], 0)
    bound = layer_error_bound(case.trace, x[None], ssk, 1, bias)[0] + 1e-9
    err = np.abs(y - ref)
    assert np.all(err <= bound)
    assert err.max() > 0 and bound.max() < 1e-2 * np.abs(ref).max()  # a real comparison, a tight-ish bound


def test_corrupted_schedule_word_is_caught(base):
    case = base[0]
    spec = case.spec
    prog = spec.program
    c = spec.pe_config
    # flip the top bit of PE 0's kernel (im) field in the first word where PE 0 is valid
    base_bit = c.num_ports * c.bank_addr_bits
    k = next(i for i, w in enumerate(prog.checked_words) if w >> base_bit & 1)
    bit = base_bit + c.pe_field_bits - 1
    words = list(prog.checked_words)
    words[k] ^= 1 << bit
    bad = replace(spec, program=replace(prog, checked_words=tuple(words)))
    res = simulate_engine(case, spec=bad)
    assert not np.array_equal(res["output"], case.expected_output())
    assert res["cycles"] == engine_cycles(spec.geometry)  # the timing is unchanged: only the data catch it


def test_conflicting_schedule_raises_the_conflict_flag(base):
    case = base[0]
    spec = case.spec
    c = spec.pe_config
    bank_of = np.asarray(c.bank_of)
    groups = list(spec.groups)
    g = next(i for i, gs in enumerate(groups) if (np.asarray(gs.slots) >= 0).sum() >= 2 and len(gs.table))
    table = np.array(groups[g].table)
    live = np.nonzero(np.asarray(groups[g].slots) >= 0)[0]
    p0, p1 = live[:2]
    f0 = table[0, p0] if table[0, p0] >= 0 else 0
    table[0, p0] = f0
    table[0, p1] = next(f for f in range(c.num_freq) if bank_of[f] == bank_of[f0] and f != f0)  # same bank, R=1
    groups[g] = replace(groups[g], table=table)
    prog = build_program(c, groups, allow_conflicts=True)
    res = simulate_engine(case, spec=replace(spec, program=prog))
    assert res["conflict"]


def test_done_raised_early_is_caught(base):
    case = base[0]
    res = simulate_engine(case, _fault="early_done")
    assert res["cycles"] < engine_cycles(case.spec.geometry)


def test_dropped_write_back_beat_is_caught(base):
    case = base[0]  # done counts the beats: one lost beat and done never rises
    with pytest.raises(ToolError, match="never raised done"):
        simulate_engine(case, _fault="drop_beat", max_cycles=2 * engine_cycles(case.spec.geometry))


def test_dropped_input_beat_hangs_and_is_reported(base):
    case = base[0]
    with pytest.raises(ToolError, match="never raised done"):
        simulate_engine(case, beats=case.input_beats()[:-1], max_cycles=2 * engine_cycles(case.spec.geometry))


# --------------------------------------------------------------------------- the cycle model alone


def _geom(program_cycles, h=18, w=18, cin=4, cout=4, depth=10):
    return EngineGeometry(8, 3, 1, h, w, cin, cout, depth, program_cycles, 4)


def test_compute_bound_engine_costs_one_program_per_tile():
    # with long programs every extra word costs exactly one cycle per tile (9 tiles here)
    a, b = engine_cycles(_geom(1000)), engine_cycles(_geom(2000))
    assert b - a == 9 * 1000
    ev = engine_events(_geom(1000))
    assert np.all(np.diff(ev.accept) == 1000)  # back-to-back issue of the programs


def test_engine_geometry_from_a_schedule_and_bad_geometry():
    g = engine_geometry([3, 4, 0], [f % 4 for f in range(40)], 4, 4, 8, 2, 3, 10, 9)
    assert (g.channel_depth, g.program_cycles, g.tiles, g.out_height, g.out_width) == (10, 7, 4, 10, 9)
    with pytest.raises(UsageError, match="padding"):
        EngineGeometry(8, 3, 3, 10, 10, 1, 1, 1, 1, 4)
    with pytest.raises(UsageError, match="N in"):
        EngineGeometry(6, 3, 1, 10, 10, 1, 1, 1, 1, 4)
    for bad in (3, 16, -2):
        with pytest.raises(UsageError, match="readout_rows"):
            EngineGeometry(8, 3, 1, 10, 10, 1, 1, 1, 1, 4, bad)


def test_readout_rows_charge_the_drain_of_every_tile():
    # short program, many output channels: once periodic a tile costs the slower of the IFFT (N
    # rows per output channel) and the drain (Cout x (N/2+1) x N/K requests, + 1 between drains)
    g = EngineGeometry(8, 3, 1, 30, 30, 1, 8, 2, 4, 4)
    for k in (8, 2, 1):
        ev = engine_events(replace(g, readout_rows=k))
        assert int(np.diff(ev.drain_end)[-1]) == max(8 * 8, 8 * 5 * (8 // k) + 1)
