"""Plots of the dataflow analysis (matplotlib, Agg backend): each returns the PNG bytes and,
given ``path``, also writes them there (atomically), so an HTML report can embed them."""

from __future__ import annotations

import io

import numpy as np

from ..fileio import write_file

_PARTS = (("kernels_bits", "kernels", "#4C72B0"), ("inputs_bits", "inputs", "#55A868"),
          ("outputs_bits", "outputs", "#C44E52"), ("psums_bits", "partial sums", "#8172B2"))
_HATCH = {"flexible": "", "kernel-reuse": "//", "activation-reuse": ".."}


def _figure(**kw):
    # matplotlib is heavy (~0.5 s) and only the plots need it: imported on first use
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt, plt.figure(**kw)


def _finish(plt, fig, path) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = buf.getvalue()
    if path is not None:
        write_file(path, data)
    return data


def plot_tradeoff(curves, path=None, title: str | None = None) -> bytes:
    """Minimum traffic / compulsory bound against on-chip capacity, one step line per layer.

    ``curves``: TradeoffCurve objects (an iterable, or a dict name -> curve)."""
    curves = list(curves.values()) if isinstance(curves, dict) else list(curves)
    plt, fig = _figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot(111)
    cmap = plt.get_cmap("tab10")  # distinct hues (a sequential map makes neighbouring layers look alike)
    hi = max(float(c.capacity_bytes[-1]) for c in curves) * 2 if curves else 1.0
    for k, c in enumerate(curves):
        x = np.append(c.capacity_bytes, hi)
        y = np.append(c.traffic_bytes, c.traffic_bytes[-1]) / c.bound_bytes
        ax.step(x, y, where="post", color=cmap(k % 10), ls=("-", "--", ":")[k // 10 % 3], label=c.layer_name, lw=1.4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xlabel("on-chip capacity (bytes)")
    ax.set_ylabel("minimum off-chip traffic / compulsory bound")
    ax.set_title(title or "Bandwidth-storage tradeoff per layer")
    ax.grid(True, which="both", alpha=0.3)
    if curves:
        ax.legend(fontsize=7, ncol=2)
    return _finish(plt, fig, path)


def plot_traffic_bars(result, path=None, plans=None, title: str | None = None) -> bytes:
    """Per-layer stacked traffic (kernels / inputs / outputs / partial sums) of each plan of a
    NetworkDataflow side by side, with the per-layer compulsory bound as a black tick."""
    plans = list(plans or result.plans)
    layers = result.plans[plans[0]]
    n, m = len(layers), len(plans)
    plt, fig = _figure(figsize=(max(7.0, 0.55 * n * m / 1.5), 4.8))
    ax = fig.add_subplot(111)
    width = 0.8 / m
    x = np.arange(n)
    for j, plan in enumerate(plans):
        rows = result.plans[plan]
        bottom = np.zeros(n)
        pos = x - 0.4 + width * (j + 0.5)
        for key, label, color in _PARTS:
            vals = np.array([getattr(r, key) / 8e6 for r in rows])
            ax.bar(pos, vals, width, bottom=bottom, color=color, hatch=_HATCH.get(plan, ""), edgecolor="white",
                   lw=0.3, label=label if j == 0 else None)
            bottom += vals
    bounds = np.array([r.bound.total_bits / 8e6 for r in result.plans[plans[0]]])
    ax.scatter(x, bounds, marker="_", s=300, color="k", label="compulsory bound", zorder=5)
    for plan in plans:
        ax.bar([0], [0], color="lightgray", hatch=_HATCH.get(plan, ""), label=plan)
    ax.set_xticks(x)
    ax.set_xticklabels([r.layer_name for r in layers], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("off-chip traffic (MB)")
    ax.set_title(title or f"{result.network_name}: traffic per layer, {', '.join(plans)}")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, axis="y", alpha=0.3)
    return _finish(plt, fig, path)
