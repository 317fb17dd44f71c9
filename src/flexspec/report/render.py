"""Text renderings of a RunReport: JSON and CSV (pure functions, no I/O)."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np


def _clean(x):
    """JSON-safe: numpy scalars to Python, NaN/inf to None (strict JSON has neither)."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def render_json(report) -> str:
    return json.dumps(_clean(report.to_dict()), indent=1, allow_nan=False) + "\n"


def rows_csv(rows: list[dict], columns=None) -> str:
    buf = io.StringIO()
    columns = list(columns or (rows[0].keys() if rows else []))
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue()


def render_csv(report) -> str:
    return rows_csv(report.layer_rows())


def sweep_csv(rows: list[dict]) -> str:
    cols = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return rows_csv(rows, cols)
