"""The shared pool's static IFFT assignment (``flexspec.accel.ifft_assign``: array row g on IFFT
g mod E) against brute force over the generated cluster's item lists, the pool's event model and the
simulator: one formula for the IFFT rate, and the simulator's split sees it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.design_dataflow import precision_of
from flexspec.accel.grouping import ScheduleCache, cout_slices, slices_fill
from flexspec.accel.ifft_assign import (busiest_ifft_channels, ifft_cycles, ifft_engines_serving,
                                        layer_ifft_cycles)
from flexspec.accel.layer_cycles import layer_steps
from flexspec.accel.layer_events import EngineGeometry
from flexspec.accel.pool_events import pool_events, pool_layer_cycles
from flexspec.dataflow.model import Blocking, LayerModel
from flexspec.rtl.cluster_case import PoolShape
from flexspec.workload.layers import ConvLayer


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.integers(1, 12), st.integers(1, 9), st.integers(1, 40), st.integers(1, 70),
       st.sampled_from([4, 8, 16]))
def test_rate_formula_is_the_busiest_engine_of_the_item_lists(a_t, a_g, e, tiles, channels, n):
    """Brute force: enumerate the items each IFFT's ROM holds (``PoolShape.items_of_ifft``, what the
    generated cluster walks), count each engine's channels; every item is on exactly one engine, every
    tile of a slice on the same engine (its tail's carries), and the busiest engine's count is the
    formula's (``ifft_cycles`` = its N x channels)."""
    assume(tiles >= a_t)
    shape = PoolShape(a_t, a_g, 1, e)
    slices = cout_slices(channels, a_g)
    seen, load = [], [0] * e
    for k in range(e):
        items = shape.items_of_ifft(k, tiles)
        seen += items
        load[k] = sum(slices[g][1] for _, g in items)
        assert [t for t, _ in items] == sorted(t for t, _ in items)  # tile order: the tail's carry order
    assert sorted(seen) == [(t, g) for t in range(tiles) for g in range(a_g)]
    for g in range(a_g):
        assert len({k for k in range(e) if (0, g) in shape.items_of_ifft(k, tiles)}) == 1
    cfg = AcceleratorConfig(arrays=a_t * a_g, pes=2, banks=2, ports=1, fft_engines=1, ifft_engines=e, fft_size=n)
    assert busiest_ifft_channels(channels, a_g, e) * tiles == max(load)
    assert ifft_cycles(cfg, channels, tiles, a_g) == n * max(load)
    if channels % a_g == 0:  # even slices: a_g / ceil(a_g / E) engines' worth
        assert ifft_engines_serving(cfg, a_g) == pytest.approx(tiles * channels / max(load))
    assert sum(1 for x in load if x) == min(e, sum(1 for _, c in slices if c))


def test_tiles_split_keeps_every_engine():
    """``array_split = "tiles"`` (every array its own IFFT) deals the items by tile: E engines' worth."""
    cfg = AcceleratorConfig(arrays=6, pes=2, banks=2, ports=1, fft_engines=6, ifft_engines=6, array_split="tiles")
    assert ifft_cycles(cfg, 10, 12, 1) == 12 * 10 * 8 / 6
    assert ifft_engines_serving(cfg, 1) == 6.0
    both = AcceleratorConfig(arrays=6, pes=2, banks=2, ports=1, fft_engines=6, ifft_engines=6)
    assert ifft_cycles(both, 10, 12, 1) == 12 * 10 * 8  # a_g = 1: one slice, one IFFT
    assert layer_ifft_cycles(both, 12, 12, 12, (1, 2, 3, 6)) == 12 * 8 * 2  # a_g = 6: 2 channels a slice
    # 10 channels cut 6 ways leave a slice empty (not a split): a_g = 3 (4, 4, 2 channels) is the best
    assert layer_ifft_cycles(both, 10, 12, 10, (1, 2, 3, 6)) == 12 * 8 * 4
    assert layer_ifft_cycles(both, 24, 12, 12, (1, 6)) == 2 * 12 * 8 * 2  # two cout blocks of 12


geometries = st.builds(
    lambda n, hw, cin, cout, prog: EngineGeometry(n, 3, 1, hw[0], hw[1], cin, cout, 2, prog, 4, 0),
    st.sampled_from([4, 8]), st.tuples(st.integers(3, 20), st.integers(3, 20)), st.integers(1, 4),
    st.integers(1, 12), st.integers(1, 40))


@settings(max_examples=40, deadline=None)
@given(geometries, st.integers(1, 3), st.integers(1, 5), st.integers(1, 6))
def test_pool_model_engines_carry_the_formula(g, a_t, a_g, e):
    """The pool's event model (an independent recurrence, checked against the RTL to the cycle) gives
    each IFFT the work the formula says: the busiest engine's N x channels, idle engines past a_g."""
    assume(g.tiles >= a_t and slices_fill(g.out_channels, a_g))
    chans = [c for _, c in cout_slices(g.out_channels, a_g)]
    ev = pool_events(g, a_t, a_g, 1, e, [g.program_cycles] * a_g, chans)
    cfg = AcceleratorConfig(arrays=a_t * a_g, pes=4, banks=2, ports=1, fft_engines=1, ifft_engines=e,
                            fft_size=g.fft_size)
    assert max(ev.ifft_busy_cycles) == ifft_cycles(cfg, g.out_channels, g.tiles, a_g)
    assert all(ev.ifft_busy_cycles[k] == 0 for k in range(a_g, e))
    assert ev.cycles >= max(ev.ifft_busy_cycles)


def _fixed(cfg: AcceleratorConfig, a_g: int | None) -> AcceleratorConfig:
    """``cfg`` with its array split fixed to a_g (None: the design's own choice)."""
    if a_g is None:
        return cfg
    fixed = type(f"Split{a_g}", (AcceleratorConfig,), {"group_splits": property(lambda self: (a_g,))})
    return fixed(**cfg.to_dict())


def _steps(mask, cfg: AcceleratorConfig, a_g: int | None, height: int, width: int):
    """The simulator's steps (``layer_steps``) of the layer walked as one kernel block."""
    cout, cin, _ = mask.shape
    model = LayerModel(ConvLayer("l", cin, cout, height, width, 3, padding=1), mask, cfg.fft_size,
                       precision_of(cfg))
    tr = model.traffic(Blocking("oit", cout, cin, model.geom.tiles))
    cache = ScheduleCache()
    return layer_steps(SimpleNamespace(traffic=tr), model, cache.get(mask, cfg, cout), _fixed(cfg, a_g),
                       lambda d: cache.sliced(mask, cfg, cout, d))


@settings(max_examples=12, deadline=None)
@given(st.sampled_from([(2, 2, 3), (1, 3, 2), (2, 3, 2), (1, 5, 3), (3, 2, 3), (1, 4, 3)]), st.integers(8, 24),
       st.integers(0, 2**31 - 1))
def test_simulator_ifft_term_is_the_pool_models_ifft_bound(split, cout, seed):
    """On a one-block layer where the IFFTs dominate (one input channel, sparse kernels, 36 tiles), for
    splits with E not dividing a_g: the simulator's IFFT term equals the pool model's busiest IFFT's
    work exactly, and the pool model's whole layer takes at most 12% more (its start-up: the first
    tile's FFT, pass and read-out before the first IFFT, and the last tile's IFFT latency)."""
    a_t, a_g, e = split
    assume(slices_fill(cout, a_g))
    cfg = AcceleratorConfig(arrays=a_t * a_g, pes=4, banks=4, ports=1, fft_engines=1, ifft_engines=e, fft_size=8)
    mask = np.random.default_rng(seed).random((cout, 1, 40)) < 0.1
    st_ = _steps(mask, cfg, a_g, 36, 36)
    chans = [c for _, c in cout_slices(cout, a_g)]
    pool = pool_layer_cycles(mask, cfg, a_g, 36, 36)
    assert float(st_.ifft.sum()) == 36 * 8 * max(sum(chans[g] for g in range(k, a_g, e)) for k in range(min(e, a_g)))
    assert float(st_.ifft.sum()) >= float(st_.compute.sum())  # the IFFTs dominate
    assert float(st_.ifft.sum()) <= pool <= 1.12 * float(st_.ifft.sum())


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 3), st.integers(8, 24), st.floats(0.05, 0.6), st.integers(0, 2**31 - 1))
def test_simulator_split_sees_the_ifft_bound(cin, cout, density, seed):
    """The simulator's choice of a_g (one kernel block, one run) minimizes max(compute, IFFT) over
    the design's splits: never worse than any split fixed by hand, so it does not pick a split that
    starves the IFFTs (6 arrays, 3 IFFTs: a_g = 1 gives one IFFT, a_g = 3 or 6 all three)."""
    cfg = AcceleratorConfig(arrays=6, pes=4, banks=4, ports=1, fft_engines=1, ifft_engines=3, fft_size=8)
    mask = np.random.default_rng(seed).random((cout, cin, 40)) < density
    chosen = _steps(mask, cfg, None, 24, 24)
    best = max(float(chosen.compute.sum()), float(chosen.ifft.sum()))
    for a_g in cfg.group_splits:
        if a_g == 1 or slices_fill(cout, a_g):
            s = _steps(mask, cfg, a_g, 24, 24)
            assert best <= max(float(s.compute.sum()), float(s.ifft.sum())) + 1e-6
