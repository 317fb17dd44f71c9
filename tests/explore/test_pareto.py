"""The front and the screening rule against brute force (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from flexspec.explore.pareto import Front, front_mask, pareto_front

vectors = st.lists(st.lists(st.integers(0, 4), min_size=3, max_size=3), min_size=1, max_size=25)


def _brute(values):
    """Pareto set by the definition: no other point <= everywhere and < somewhere."""
    out = []
    for i, x in enumerate(values):
        out.append(not any(all(q[k] <= x[k] for k in range(3)) and any(q[k] < x[k] for k in range(3))
                           for j, q in enumerate(values) if j != i))
    return out


@settings(max_examples=200, deadline=None)
@given(vectors)
def test_front_mask_is_the_definition(values):
    assert front_mask(np.array(values, dtype=float)).tolist() == _brute(values)


def _rows(values):
    return [{"point_id": str(i), "status": "ok", "latency_seconds": float(v[0]), "dsp_used_count": v[1],
             "accuracy_fraction": 1.0 - v[2] / 10} for i, v in enumerate(values)]


@settings(max_examples=200, deadline=None)
@given(vectors, st.lists(st.integers(0, 4), min_size=3, max_size=3))
def test_running_front_decides_dominance_like_the_whole_set(values, probe):
    """Front (incremental, keeps only non-dominated points) says 'dominated' exactly when some
    point of the whole set dominates the probe; accuracy is maximized (negated)."""
    objectives = ("latency", "dsp", "accuracy")
    f = Front(objectives, {})
    for r in _rows(values):
        f.add(r)
    x = np.array([probe[0], probe[1], -(1.0 - probe[2] / 10)])
    whole = [np.array([v[0], v[1], -(1.0 - v[2] / 10)]) for v in values]
    expect = any(np.all(q <= x) and np.any(q < x) for q in whole)
    assert (f.dominator(x) is not None) == expect
    # the running front holds one vector per distinct non-dominated value
    front_ids = {r["point_id"] for r in pareto_front(_rows(values), objectives)}
    assert set(f.ids) <= front_ids
    assert {tuple(values[int(i)]) for i in f.ids} == {tuple(values[int(i)]) for i in front_ids}


def test_constraints_keep_only_feasible_points():
    rows = _rows([[1, 4, 0], [3, 1, 0], [2, 2, 0]])
    front = pareto_front(rows, ("latency", "dsp"), {"dsp": {"max": 3}})
    assert [r["point_id"] for r in front] == ["1", "2"]
