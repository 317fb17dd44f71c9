"""The engine's pass recurrence: the properties the simulator relies on (the cycle equality with
the RTL itself is tested in tests/rtl/test_verilator.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flexspec.accel import engine
from flexspec.errors import UsageError
from flexspec.rtl.config import LATENCY_CYCLES

sizes = st.integers(1, 400)


@settings(max_examples=200, deadline=None)
@given(D=sizes, L=sizes, Q=st.integers(0, 400), lat=st.integers(2, 8))
def test_period_is_at_most_two_tiles_from_the_periodic_tile_on(D, L, Q, lat):
    c = [engine.pass_cycles(D, L, Q, t, lat) for t in range(engine.PERIODIC_TILES - 2, engine.PERIODIC_TILES + 7)]
    steps2 = {c[k + 2] - c[k] for k in range(len(c) - 2)}
    assert len(steps2) == 1  # periodic with period two tiles (or one)
    per_tile = engine.tile_interval_cycles(D, L, Q, lat)
    assert per_tile >= max(L, D, Q + 1 if Q else 0)  # never faster than any one resource
    shape = engine.PassShape(D, L, Q, lat)
    assert shape.cycles(20) == shape.overhead() + 20 * per_tile


@given(D=sizes, L=sizes, Q=sizes, lat=st.integers(2, 8))
def test_compute_bound_closed_form(D, L, Q, lat):
    """When the program is longer than a load and a drain, the pass is T x L plus one fill and one drain."""
    if L >= max(D + engine.TILE_RELEASE_CYCLES, Q + LATENCY_CYCLES + engine.DRAIN_START_CYCLES + 1):
        for T in (1, 2, 5):
            fill = D + 1
            drain = LATENCY_CYCLES + engine.DRAIN_START_CYCLES + Q + lat + engine.OUTPUT_CYCLES
            assert engine.pass_cycles(D, L, Q, T, lat) == fill + T * L + drain


def test_events_are_ordered():
    ev = engine.pass_events(80, 300, 640, 6, 4)
    assert (ev.load_end < ev.accept).all() and (ev.accept[1:] - ev.accept[:-1] >= 300).all()
    assert (ev.drain_start > ev.accept + 300).all() and (ev.drain_end[:-2] < ev.accept[2:]).all()


def test_bad_sizes():
    with pytest.raises(UsageError, match="pass sizes"):
        engine.pass_cycles(0, 5, 5, 1, 2)
