"""The pool cluster's cycle model (``flexspec.accel.pool_events``) against the one-array engine's
Verilator-checked model, and its own invariants.  (The model against the generated RTL, to the
cycle: ``tests/rtl/test_cluster.py``.)"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.layer_events import EngineGeometry, engine_events
from flexspec.accel.pool_events import pool_events, pool_layer_cycles
from flexspec.errors import UsageError

geometries = st.builds(
    lambda n, hw, cin, cout, depth, prog, pes, k: EngineGeometry(n, 3, 1, hw[0], hw[1], cin, cout, depth, prog, pes, k),
    st.sampled_from([4, 8]), st.tuples(st.integers(3, 20), st.integers(3, 20)), st.integers(1, 6),
    st.integers(1, 6), st.integers(1, 4), st.integers(1, 80), st.sampled_from([2, 4, 8]), st.sampled_from([0, 1, 2]))


@settings(max_examples=40, deadline=None)
@given(geometries)
def test_one_array_pool_is_the_engine(g):
    """a_t = a_g = F = E = 1 is the one-array engine: the same accepts and drain ends as
    ``layer_events.engine_events`` (checked against ``rtl.layer_engine`` in Verilator)."""
    if g.readout_rows and g.fft_size % g.readout_rows:
        return
    e = engine_events(g)
    p = pool_events(g, 1, 1, 1, 1, [g.program_cycles], [g.out_channels])
    assert np.array_equal(e.accept, p.accept[0, 0])
    assert np.array_equal(e.drain_end, p.drain_end[0, 0])


@settings(max_examples=30, deadline=None)
@given(geometries, st.sampled_from([(1, 1), (2, 1), (2, 2), (4, 1), (4, 2), (3, 3)]), st.integers(1, 4),
       st.data())
def test_work_and_bounds(g, split, e, data):
    """Every channel goes through one FFT and one IFFT; each array runs its program once per tile of
    its column; the layer takes at least the busiest engine's and the busiest array's work."""
    a_t, f = split
    a_g = data.draw(st.integers(1, max(1, min(3, g.out_channels))))
    bo = -(-g.out_channels // a_g)
    rows = -(-g.out_channels // bo)
    chans = [min(bo, g.out_channels - r * bo) for r in range(rows)]
    progs = [data.draw(st.integers(1, 60)) for _ in range(rows)]
    p = pool_events(g, a_t, rows, f, e, progs, chans)
    n = g.fft_size
    assert sum(p.fft_busy_cycles) == n * g.tiles * g.in_channels
    assert sum(p.ifft_busy_cycles) == n * g.tiles * g.out_channels
    assert p.cycles >= max(p.fft_busy_cycles) and p.cycles >= max(p.ifft_busy_cycles)
    for (c, r), acc in p.accept.items():
        assert acc.size == len(range(c, g.tiles, a_t))
        if acc.size:
            assert p.cycles > int(acc[-1]) + progs[r]
            assert np.all(np.diff(acc) >= progs[r])  # back-to-back issue at best


def test_more_arrays_on_tiles_help_a_compute_bound_layer():
    g = EngineGeometry(8, 3, 1, 30, 30, 2, 4, 2, 200, 4)
    one = pool_events(g, 1, 1, 1, 1, [200], [4]).cycles
    four = pool_events(g, 4, 1, 2, 2, [200], [4]).cycles
    assert 3.0 < one / four <= 25 / 7 + 1e-9  # 25 tiles: at most 7 on a column, plus one fill


def test_layer_cycles_refuses_unbuildable_splits():
    mask = np.ones((4, 2, 40), dtype=bool)
    cfg = AcceleratorConfig(arrays=6, pes=4, banks=4, ports=1, fft_engines=4, ifft_engines=2)
    with pytest.raises(UsageError, match="FFT engines must divide"):
        pool_layer_cycles(mask, cfg, 2, 12, 12)
    with pytest.raises(UsageError, match="does not divide"):
        pool_layer_cycles(mask, cfg, 4, 12, 12)
