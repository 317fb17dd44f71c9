"""Pareto dominance, the front, constraints, and the screening rule.

All objectives are turned into minimization (a 'max' objective is negated).  A point x is
dominated when some point q is no worse in every objective and better in at least one; the front
is the set of feasible points no feasible point dominates (equal points are all kept).

Screening: before simulating, a point's *optimistic* vector uses the closed-form lower bounds of
the simulated metrics (latency, conv_latency, throughput, traffic) and the exact closed-form ones (resources,
accuracy).  Its exact vector can only be worse, so when a simulated feasible point dominates the
optimistic vector, it dominates the exact one too: the point cannot be on the front and is
pruned.  It is enough to compare with the current front (whoever dominates x, some front point
does too).  The exploration keeps one running front per device (:mod:`.run`), so each device's
front and best design stay exact as well.
"""

from __future__ import annotations

import math

import numpy as np

from .space import METRICS

#: metric -> its lower-bound column (simulated metrics only); throughput's bound is 1 / latency's.
BOUND_COLUMNS = {"latency": "latency_lower_bound_seconds", "conv_latency": "conv_latency_lower_bound_seconds",
                 "traffic": "traffic_lower_bound_bytes"}


def _num(v) -> float:
    return float("nan") if v is None or v == "" else float(v)


def vector(row: dict, objectives, optimistic: bool = False) -> np.ndarray:
    """The objectives of a result row as a minimization vector (NaN where unknown)."""
    out = []
    for m in objectives:
        col, sense, _ = METRICS[m]
        if optimistic and m in BOUND_COLUMNS:
            v = _num(row.get(BOUND_COLUMNS[m]))
        elif optimistic and m == "throughput":
            lb = _num(row.get(BOUND_COLUMNS["latency"]))
            v = 1.0 / lb if lb > 0 else math.inf
        else:
            v = _num(row.get(col))
        out.append(-v if sense == "max" else v)
    return np.array(out, dtype=float)


def metric_value(row: dict, metric: str) -> float:
    return _num(row.get(METRICS[metric][0]))


def feasible(row: dict, constraints: dict) -> bool:
    """Whether an exact result meets every constraint."""
    for m, lim in constraints.items():
        v = metric_value(row, m)
        if math.isnan(v) or ("max" in lim and v > lim["max"]) or ("min" in lim and v < lim["min"]):
            return False
    return True


def violated_for_sure(row: dict, constraints: dict) -> str | None:
    """Name of a constraint that the point breaks whatever the simulation finds, from its screening
    row (exact resources, lower bounds of the simulated metrics), or None."""
    for m, lim in constraints.items():
        if m in BOUND_COLUMNS:
            lb = _num(row.get(BOUND_COLUMNS[m]))
            if "max" in lim and lb > lim["max"]:
                return f"{m} >= {lb:.6g} > max {lim['max']:g}"
        elif m == "throughput":
            lb = _num(row.get(BOUND_COLUMNS["latency"]))
            ub = 1.0 / lb if lb > 0 else math.inf
            if "min" in lim and ub < lim["min"]:
                return f"throughput <= {ub:.6g} < min {lim['min']:g}"
        else:
            v = metric_value(row, m)
            if ("max" in lim and v > lim["max"]) or ("min" in lim and v < lim["min"]):
                return f"{m} = {v:.6g} outside {lim}"
    return None


def dominates(q: np.ndarray, x: np.ndarray) -> bool:
    return bool(np.all(q <= x) and np.any(q < x))


def front_mask(values: np.ndarray) -> np.ndarray:
    """Non-dominated rows of a (points x objectives) minimization array (equal rows all kept)."""
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        le = np.all(values <= values[i], axis=1)
        lt = np.any(values < values[i], axis=1)
        if np.any(le & lt):
            keep[i] = False
    return keep


def pareto_front(rows: list[dict], objectives, constraints: dict | None = None) -> list[dict]:
    """The feasible, simulated rows (status 'ok') that no other one dominates, in input order."""
    ok = [r for r in rows if r.get("status") == "ok" and feasible(r, constraints or {})]
    ok = [r for r in ok if not np.any(np.isnan(vector(r, objectives)))]
    if not ok:
        return []
    mask = front_mask(np.array([vector(r, objectives) for r in ok]))
    return [r for r, k in zip(ok, mask, strict=True) if k]


class Front:
    """The running front of the exact results, for the screening decisions."""

    def __init__(self, objectives, constraints: dict):
        self.objectives = tuple(objectives)
        self.constraints = constraints
        self.ids: list[str] = []
        self.values = np.zeros((0, len(self.objectives)))

    def add(self, row: dict) -> None:
        if row.get("status") != "ok" or not feasible(row, self.constraints):
            return
        v = vector(row, self.objectives)
        if np.any(np.isnan(v)):
            return
        if self.values.shape[0] and self.dominator(v) is not None:
            return
        keep = ~(np.all(v <= self.values, axis=1) & np.any(v < self.values, axis=1))
        self.values = np.vstack([self.values[keep], v])
        self.ids = [i for i, k in zip(self.ids, keep, strict=True) if k] + [row["point_id"]]

    def dominator(self, x: np.ndarray) -> str | None:
        """Id of a front point that dominates the vector x, or None."""
        if not self.values.shape[0] or np.any(np.isnan(x)):
            return None
        hit = np.all(self.values <= x, axis=1) & np.any(self.values < x, axis=1)
        k = np.flatnonzero(hit)
        return self.ids[int(k[0])] if k.size else None
