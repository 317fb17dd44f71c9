"""What an exploration leaves in DIR besides ``points.csv``: ``front.csv``, ``summary.json``,
``front.html`` (one self-contained page: inline CSS, the figures as PNG data URIs), and the
front and best designs printed as tables."""

from __future__ import annotations

import base64
import html
import io
import json
import sys

from .. import FORMAT_VERSION
from ..fileio import write_files
from .journal import render_rows
from .space import METRICS

FILES = ("front.csv", "summary.json", "front.html")


def _ms(v) -> str:
    return "" if v is None else f"{v * 1e3:.4g}"


def _mbit(v) -> str:
    return "" if v is None else f"{v / 2**20:.1f}"


def _count(v) -> str:
    return "" if v is None else f"{v:,}"


#: front table: (header, row -> text)
_COLS = (
    ("device", lambda r: r["device"]), ("model", lambda r: r["model"]), ("N", lambda r: str(r["fft_size"])),
    ("density", lambda r: f"{r['density_requested_fraction']:g}"), ("scope", lambda r: r["prune_scope"]),
    ("A", lambda r: str(r["arrays"])), ("P", lambda r: str(r["pes"])), ("B", lambda r: str(r["banks"])),
    ("R", lambda r: str(r["ports"])), ("bcast", lambda r: "yes" if r["broadcast"] else ""),
    ("latency ms", lambda r: _ms(r["latency_seconds"])), ("conv ms", lambda r: _ms(r.get("conv_latency_seconds"))),
    ("bound ms", lambda r: _ms(r["latency_lower_bound_seconds"])),
    ("LUT", lambda r: _count(r.get("lut_used_count"))), ("DSP", lambda r: f"{r['dsp_used_count']:,}"),
    ("BRAM Mbit", lambda r: _mbit(r["bram_bits_used"])), ("binds", lambda r: r.get("binding_resource") or ""),
    ("traffic MB", lambda r: f"{r['traffic_bytes'] / 1e6:.2f}" if r.get("traffic_bytes") is not None else ""),
    ("accuracy", lambda r: f"{100 * r['accuracy_fraction']:.1f}%" if r.get("accuracy_fraction") is not None else ""),
)


def _counts_line(res) -> str:
    c = res.counts
    return (f"{c['points']} points: {c['ok']} simulated, {c['pruned']} pruned by screening, {c['failed']} failed, "
            f"{c['does-not-fit']} do not fit, {c['invalid']} impossible; {c['reused']} taken from an earlier run, "
            f"{c['computed_now']} computed now" + (f"; {c['lost']} lost to cluster failures (rerun to retry; "
                                                  f"first: {res.lost_reason})" if c["lost"] else ""))


def print_result(res, console=None) -> None:
    """The front and the best design of each device, on the terminal."""
    from rich.console import Console
    from rich.table import Table

    con = console or Console(highlight=False, width=None if sys.stdout.isatty() else 180)
    objectives = ", ".join(METRICS[m][2] for m in res.space.objectives)
    t = Table(title=f"Pareto front ({len(res.front)} designs; objectives: {objectives})", title_justify="left",
              header_style="bold")
    present = [(h, f) for h, f in _COLS if h != "accuracy" or any(r.get("accuracy_fraction") is not None
                                                                  for r in res.front)]
    for h, _ in present:
        t.add_column(h, no_wrap=True)
    for r in sorted(res.front, key=lambda r: (r["device"], r["latency_seconds"])):
        t.add_row(*[f(r) for _, f in present])
    con.print(t)
    con.print(_counts_line(res))
    for dev, r in res.best.items():
        con.print(f"best on {dev}: {_ms(r['latency_seconds'])} ms, {r['dsp_used_count']:,} DSPs -- {r['reproduce']}")


def _summary(res) -> dict:
    return {"format_version": FORMAT_VERSION, "space": res.space.to_dict(), "counts": res.counts,
            "seconds": res.seconds, "run_id": res.run_id, "lost_point_ids": res.lost,
            "front_point_ids": [r["point_id"] for r in res.front],
            "best_per_device": {d: {"point_id": r["point_id"], "latency_seconds": r["latency_seconds"],
                                    "dsp_used_count": r["dsp_used_count"], "reproduce": r["reproduce"]}
                                for d, r in res.best.items()}}


# ------------------------------------------------------------------------------------ html --
def _figure(res, resource: str) -> bytes:
    import matplotlib  # heavy: only when the page is written

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    col, _, label = METRICS[resource]
    devices = list(res.space.devices)
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    front_ids = {r["point_id"] for r in res.front}
    for k, dev in enumerate(devices):
        colour = cmap(k % 10)
        ok = [r for r in res.rows if r["device"] == dev and r["status"] == "ok" and r.get(col) is not None]
        pruned = [r for r in res.rows if r["device"] == dev and r["status"] == "pruned" and r.get(col) is not None]
        fr = sorted([r for r in ok if r["point_id"] in front_ids], key=lambda r: r[col])
        if ok:
            ax.scatter([r[col] for r in ok], [r["latency_seconds"] * 1e3 for r in ok], s=14, color=colour, alpha=0.35)
        if pruned:
            ax.scatter([r[col] for r in pruned], [r["latency_lower_bound_seconds"] * 1e3 for r in pruned], s=14,
                       facecolors="none", edgecolors=colour, alpha=0.5, marker="v")
        if fr:
            ax.scatter([r[col] for r in fr], [r["latency_seconds"] * 1e3 for r in fr], s=46, color=colour,
                       edgecolors="black", linewidths=0.7, label=f"{dev} (front: {len(fr)})", zorder=3)
        elif ok:
            ax.scatter([], [], color=colour, label=f"{dev} (not on the front)")
    ax.set_xlabel(label)
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.set_title(f"latency vs {label}: front (outlined), simulated (faint), pruned at their bound (v)")
    ax.legend(fontsize=8, loc="best")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


_STYLE = ("body{font-family:system-ui,sans-serif;max-width:1180px;margin:20px auto;padding:0 14px;color:#222}"
          "h1{font-size:1.4em}h2{font-size:1.1em;border-bottom:1px solid #ccc;margin-top:26px}"
          "table{border-collapse:collapse;font-size:.8em}td,th{border:1px solid #ccc;padding:2px 6px;"
          "text-align:right}th{background:#eee}td.l{text-align:left}code{font-size:.85em;background:#f4f4f4}"
          "img{max-width:100%}pre{background:#f4f4f4;padding:8px;font-size:.78em;overflow:auto}")


#: resource metrics a front page may plot latency against
RESOURCE_METRICS = ("lut", "dsp", "bram", "uram", "ff", "lutram")


def _plotted_resources(res) -> list[str]:
    """Latency is plotted against LUTs (what binds the designs on the AMD boards; on the Stratix 10
    profile LUT-RAM does, see the ``binding_resource`` column) where the rows have them, then
    against each other resource objective."""
    has_lut = any(r.get("lut_used_count") is not None for r in res.rows if r["status"] in ("ok", "pruned"))
    first = ["lut"] if has_lut else ["dsp"]
    return list(dict.fromkeys(first + [m for m in RESOURCE_METRICS if m in res.space.objectives
                                       and (m != "lut" or has_lut)]))


def render_html(res) -> str:
    e = html.escape
    resources = _plotted_resources(res)
    figs = "".join(f"<figure><img alt='latency vs {e(m)}' src='data:image/png;base64,"
                   f"{base64.b64encode(_figure(res, m)).decode()}'></figure>" for m in resources)
    head = "".join(f"<th>{e(h)}</th>" for h, _ in _COLS)
    body = "".join("<tr>" + "".join(f"<td{' class=l' if h in ('device', 'model', 'scope') else ''}>{e(f(r))}</td>"
                                    for h, f in _COLS) + "</tr>"
                   for r in sorted(res.front, key=lambda r: (r["device"], r["latency_seconds"])))
    best = "".join(f"<tr><td class=l>{e(d)}</td><td>{e(_ms(r['latency_seconds']))}</td>"
                   f"<td>{r['dsp_used_count']:,}</td><td class=l><code>{e(r['reproduce'])}</code></td></tr>"
                   for d, r in res.best.items())
    objectives = ", ".join(METRICS[m][2] for m in res.space.objectives)
    cons = ", ".join(f"{m} {k} {v:g}" for m, lim in res.space.constraints.items() for k, v in lim.items()) or "none"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>FlexSpec exploration</title>"
            f"<style>{_STYLE}</style></head><body><h1>FlexSpec design-space exploration</h1>"
            f"<p>{e(_counts_line(res))}.</p><p>Objectives: {e(objectives)}. Constraints: {e(cons)}.</p>"
            f"<h2>Front</h2>{figs}<table><tr>{head}</tr>{body}</table>"
            f"<h2>Best design of each device (fastest that meets the constraints)</h2><table><tr><th>device</th>"
            f"<th>latency ms</th><th>DSP</th><th>reproduce</th></tr>{best}</table>"
            f"<h2>Space</h2><pre>{e(json.dumps(res.space.to_dict(), indent=1))}</pre></body></html>")


def write_outputs(res) -> None:
    """front.csv, summary.json and front.html into the result's folder, all-or-nothing."""
    write_files(res.folder, {"front.csv": render_rows(res.front),
                             "summary.json": json.dumps(_summary(res), indent=1, default=str),
                             "front.html": render_html(res)})
