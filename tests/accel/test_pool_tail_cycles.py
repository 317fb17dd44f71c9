"""The cluster's cycle model with its output tails (``pool_events.pool_tail_cycles``) against the
one-array engine's Verilator-checked model: a_t = a_g = F = E = 1 is the one-array engine, tail
included, so the two must give the same ``done`` edge.  (The model against the generated RTL, to the
cycle: ``tests/rtl/test_pool_cluster.py``.)"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_pool_events import geometries  # the same random engine geometries (tests/accel on sys.path)

from flexspec.accel.layer_events import engine_cycles
from flexspec.accel.pool_events import pool_events, pool_tail_cycles


@settings(max_examples=40, deadline=None)
@given(geometries)
def test_one_array_pool_with_its_tail_is_the_engine(g):
    if g.readout_rows and g.fft_size % g.readout_rows:
        return
    assert pool_tail_cycles(g, 1, 1, 1, 1, [g.program_cycles], [g.out_channels]) == engine_cycles(g)


@settings(max_examples=30, deadline=None)
@given(geometries, st.sampled_from([(1, 1, 1), (2, 2, 1), (2, 2, 2), (1, 3, 3), (3, 1, 1)]))
def test_tail_ends_within_one_block_of_the_last_ifft_row(g, split):
    """With tails, done comes after the last emitting row's beat: never later than one cycle after
    the IFFTs' last row (the block-row build's done) and at most N - 1 cycles earlier (rows of the
    last tile row that carry nothing further down)."""
    if g.readout_rows and g.fft_size % g.readout_rows:
        return
    a_t, a_g, e = split
    if a_g > g.out_channels or g.tiles < a_t:
        return
    bo = -(-g.out_channels // a_g)
    rows = -(-g.out_channels // bo)
    chans = [min(bo, g.out_channels - r * bo) for r in range(rows)]
    progs = [g.program_cycles] * rows
    blocks = pool_events(g, a_t, rows, 1, e, progs, chans).cycles
    tail = pool_tail_cycles(g, a_t, rows, 1, e, progs, chans)
    assert blocks - (g.fft_size - 1) <= tail <= blocks + 1
