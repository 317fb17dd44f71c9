"""The pool cluster's cycle model (``flexspec.accel.pool_events``) against the one-array engine's
Verilator-checked model, and its own invariants.  (The model against the generated RTL, to the
cycle: ``tests/rtl/test_pool_cluster.py``.)"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.design_dataflow import precision_of
from flexspec.accel.engine import readout_requests
from flexspec.accel.grouping import ScheduleCache, cout_slices, schedule_layer_blocks, slices_fill
from flexspec.accel.layer_cycles import layer_steps
from flexspec.accel.layer_events import (EngineGeometry, channel_depth, engine_events,
                                         fft_channel_interval_cycles)
from flexspec.accel.pool_events import pool_events, pool_layer_cycles
from flexspec.dataflow.model import Blocking, LayerModel
from flexspec.errors import UsageError
from flexspec.workload.layers import ConvLayer

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


# ------------------------------------------- the simulator's group split against the pool model (h12s)
def _split_config(cfg: AcceleratorConfig, a_g: int) -> AcceleratorConfig:
    """``cfg`` with the array split fixed to a_t = A / a_g columns x a_g rows."""
    fixed = type(f"Split{a_g}", (AcceleratorConfig,), {"group_splits": property(lambda self: (a_g,))})
    return fixed(**cfg.to_dict())


def _simulated_pass(mask, cfg: AcceleratorConfig, a_g: int, height: int, width: int) -> tuple:
    """(cycles of the PE-array pass, engine cycles a tile of the busiest row) that the simulator
    (``layer_cycles.layer_steps``) charges for the layer walked as one kernel block on split a_g."""
    cout, cin, _ = mask.shape
    model = LayerModel(ConvLayer("l", cin, cout, height, width, 3, padding=1), mask, cfg.fft_size,
                       precision_of(cfg))
    tr = model.traffic(Blocking("oit", cout, cin, model.geom.tiles))
    cache = ScheduleCache()
    st = layer_steps(SimpleNamespace(traffic=tr), model, cache.get(mask, cfg, cout), _split_config(cfg, a_g),
                     lambda d: cache.sliced(mask, cfg, cout, d))
    return float(st.compute.sum()) + st.pass_overhead_cycles, float(st.compute.sum())


splits = st.builds(lambda a_t, a_g, fi, e: (a_t, a_g, fi, e), st.integers(1, 3), st.integers(1, 3),
                   st.integers(0, 2), st.integers(1, 9))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(2, 30), st.integers(6, 26), st.integers(6, 26), splits,
       st.sampled_from([2, 4, 8]), st.sampled_from([(4, 1), (8, 2), (10, 1)]), st.sampled_from([1, 2, 8]),
       st.floats(0.1, 0.6), st.integers(0, 2**31 - 1))
def test_simulator_split_bounds_the_pool_model(cin, cout, height, width, split, pes, banks_ports, k, density, seed):
    """The simulator's split (array row g runs its output-channel slice's groups, a column takes a tile
    every max_g of its rows' engine intervals) against the cluster's event model (``pool_events``, an
    independent recurrence checked against the RTL to the cycle): the simulated pass -- its tiles at
    the busiest row's interval, plus the pass's fill and drain -- never exceeds the pool's cycles (the
    pool also waits for its FFTs and IFFTs, which the simulator charges beside the pass)."""
    a_t, a_g, fi, e = split
    f = [d for d in range(1, a_t + 1) if a_t % d == 0][fi % len([d for d in range(1, a_t + 1) if a_t % d == 0])]
    assume(slices_fill(cout, a_g))
    b, r = banks_ports
    cfg = AcceleratorConfig(arrays=a_t * a_g, pes=pes, banks=b, ports=r, fft_engines=f, ifft_engines=e, fft_size=8,
                            readout_rows=k)
    mask = np.random.default_rng(seed).random((cout, cin, 40)) < density
    simulated, _ = _simulated_pass(mask, cfg, a_g, height, width)
    assert simulated <= pool_layer_cycles(mask, cfg, a_g, height, width)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.integers(2, 4), st.integers(12, 40), st.integers(1, 3), st.integers(1, 3), st.sampled_from([2, 4]),
       st.sampled_from([(4, 1), (8, 2), (10, 1)]), st.sampled_from([2, 8]), st.floats(0.4, 0.8),
       st.integers(0, 2**31 - 1))
def test_simulator_split_charges_the_pool_models_tile_rate(cin, cout, a_t, a_g, pes, banks_ports, k, density, seed):
    """Where the engines keep up and the arrays are compute bound (an FFT per array column, an IFFT
    per array, every row's program at least twice its column's FFT feed, the inverse transforms of
    its slice over every column (one IFFT a slice: ``ifft_assign``) and its read-out requests), two
    more tiles per column
    cost the cluster (``pool_events``) what they cost in the simulator, 2 x the busiest row's engine
    interval, or a little more: within 5% (the cluster's FFT writer has two slots, so on short
    programs a tile's load can trail its FFT's pipeline by a few cycles: the one-array engine's own
    gap to the simulator, which charges the FFTs beside the pass).  Layers 6 tiles wide per
    column, 10 and 12 tile rows high."""
    assume(slices_fill(cout, a_g))
    b, r = banks_ports
    cfg = AcceleratorConfig(arrays=a_t * a_g, pes=pes, banks=b, ports=r, fft_engines=a_t, ifft_engines=a_t * a_g,
                            fft_size=8, readout_rows=k)
    mask = np.random.default_rng(seed).random((cout, cin, 40)) < density
    sl = schedule_layer_blocks(mask, cfg, cout, slices=a_g)
    feed = cin * fft_channel_interval_cycles(8, channel_depth(sl.schedule.bank_of, b))
    widest = max(n for _, n in cout_slices(cout, a_g))
    busy = max(feed, a_t * widest * 8, readout_requests(widest, 8, k))  # slice g's tiles of every column: IFFT g
    assume(min(int(sl.cycles[g].sum()) for g in range(a_g)) >= 2 * busy)
    width = 6 * a_t
    d_pool = pool_layer_cycles(mask, cfg, a_g, 6 * 12, width) - pool_layer_cycles(mask, cfg, a_g, 6 * 10, width)
    d_sim = _simulated_pass(mask, cfg, a_g, 6 * 12, width)[1] - _simulated_pass(mask, cfg, a_g, 6 * 10, width)[1]
    assert d_pool >= d_sim - 1.0
    assert d_pool == pytest.approx(d_sim, rel=0.05)
