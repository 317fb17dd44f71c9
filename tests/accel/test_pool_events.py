"""The pool cluster's cycle model (``flexspec.accel.pool_events``) against the one-array engine's
Verilator-checked model, and its own invariants.  (The model against the generated RTL, to the
cycle: ``tests/rtl/test_pool_cluster.py``.)"""

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


# ------------------------------------------------------------------ the glue's resources (h11f)
def test_glue_fit_is_within_ten_percent_of_synthesis():
    """The stored fit of the pool glue (``benchmarks/bench_pool_synth.py``) against the Yosys rows it
    came from, fitted and held-out sizes: LUT and FF within 10%, block RAM exact."""
    import json
    from pathlib import Path

    from flexspec.accel.resource_model import glue_features, load_model, pool_glue_cost

    rows = json.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "results" /
                       "bench_pool_synth.json").read_text())["rows"]
    assert load_model()["blocks"]["pool_glue"]["families"]["xcup"]["held_out"]["lut"]
    for r in rows:
        a_t, a_g, f, e = r["size"]
        feats = glue_features(a_t, a_g, f, e, 8, 16, 8, 64)
        assert {k: feats[k] for k in feats if k != "arbiter_inputs"} == \
            {k: v for k, v in r["features"].items() if k != "arbiter_inputs"}
        cost, note = pool_glue_cost(r["features"], "xcup")
        assert note is None
        for res in ("lut", "ff"):
            assert abs(cost[res] - r[res]) <= 0.10 * r[res], (r["size"], res, cost[res], r[res])
        assert round(cost["bram18"]) == r["bram18"]


def test_resources_charge_the_glue():
    """A shared pool pays its glue once (a bank-writer column per array at worst, the engines'
    feeders and arbiters); one FFT + IFFT per array pays one layer engine's glue per array."""
    from dataclasses import replace

    from flexspec.accel.arch import block_usage
    from flexspec.devices import load_device

    dev = load_device("u200")
    pool = AcceleratorConfig(arrays=12, pes=8, banks=10, ports=2, fft_engines=4, ifft_engines=4)
    blocks, _ = block_usage(pool, dev)
    more, _ = block_usage(replace(pool, arrays=24), dev)
    assert 0 < blocks["pool_glue"]["lut"] < more["pool_glue"]["lut"] < 2.1 * blocks["pool_glue"]["lut"]
    assert "engine_glue" not in blocks
    per = replace(pool, fft_engines=12, ifft_engines=12, array_split="tiles")
    pb, _ = block_usage(per, dev)
    one, _ = block_usage(replace(per, arrays=1, fft_engines=1, ifft_engines=1), dev)
    assert "pool_glue" not in pb
    assert pb["engine_glue"]["lut"] == pytest.approx(12 * one["engine_glue"]["lut"])
