"""``report.html``: a single self-contained page (inline CSS, PNG figures as data URIs, no scripts,
no external resources)."""

from __future__ import annotations

import base64
import html
import json

from .plots import FIGURES
from .render import _clean

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;
color:#222;padding:0 16px}
h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.15em;margin-top:28px;border-bottom:1px solid #ddd}
.sub{color:#666;margin-top:0}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:150px;background:#fafafa}
.card .v{font-size:1.3em;font-weight:600}.card .k{color:#666;font-size:.85em}
.warn{background:#fff6e0;border:1px solid #f0c36d;border-radius:6px;padding:8px 12px}
table{border-collapse:collapse;font-size:.82em;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right}th{background:#f0f0f0}
td.l,th.l{text-align:left}tr.mb td{background:#fdecea}
figure{margin:10px 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.85em}
pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:.78em;max-height:420px}
"""


def _e(x) -> str:
    return html.escape(str(x))


def _fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _layer_table(report) -> str:
    cols = (("layer", "layer"), ("dataflow", "dataflow"), ("latency_seconds", "latency µs"),
            ("compute_cycles", "compute cyc"), ("bank_conflict_stall_cycles", "conflict cyc"),
            ("memory_stall_cycles", "mem stall cyc"), ("fft_stall_cycles", "FFT stall cyc"),
            ("fill_cycles", "fill cyc"), ("traffic_bytes", "traffic MB"), ("baseline_traffic_bytes", "baseline MB"),
            ("lower_bound_bytes", "bound MB"), ("speedup_ratio", "speed-up"),
            ("dsp_efficiency_fraction", "DSP eff."), ("kernel_density_fraction", "density"), ("bound", "bound by"))
    head = "".join(f"<th class='l'>{_e(h)}</th>" if k in ("layer", "dataflow", "bound") else f"<th>{_e(h)}</th>"
                   for k, h in cols)
    body = []
    for r in report.layer_rows():
        cells = []
        for k, _ in cols:
            v = r.get(k)
            if k == "latency_seconds":
                v = v * 1e6
            elif k.endswith("_bytes") and v is not None:
                v = v / 1e6
            cls = " class='l'" if k in ("layer", "dataflow", "bound") else ""
            cells.append(f"<td{cls}>{_e(_fmt(v))}</td>")
        body.append(f"<tr{' class=mb' if r['memory_bound'] else ''}>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _baseline_table(report) -> str:
    s = report.summary()
    rows = [("flexspec", s["latency_seconds"], s["traffic_bytes"], 1.0, 0.0, s["dsp_efficiency_fraction"])]
    for name, b in s["baselines"].items():
        rows.append((f"baseline: {name}", b["latency_seconds"], b["traffic_bytes"], b["speedup_ratio"],
                     b["traffic_reduction_fraction"], b["dsp_efficiency_fraction"]))
    body = "".join(f"<tr><td class='l'>{_e(n)}</td><td>{lat * 1e3:.3f}</td><td>{t / 1e6:.2f}</td>"
                   f"<td>{sp:.2f}x</td><td>{100 * red:.1f}%</td><td>{eff:.3f}</td></tr>"
                   for n, lat, t, sp, red, eff in rows)
    return ("<table><tr><th class='l'>design</th><th>latency ms</th><th>traffic MB</th>"
            "<th>FlexSpec speed-up over it</th><th>FlexSpec traffic reduction</th><th>DSP eff.</th></tr>"
            f"{body}</table>")


def render_html(report) -> str:
    s = report.summary()
    cfg = report.configuration
    acc = report.flexspec.config
    res = report.flexspec.resources
    cards = [
        ("latency", f"{s['latency_seconds'] * 1e3:.3f} ms"),
        (f"speed-up vs {s['baseline']}", f"{s['speedup_ratio']:.2f}x"),
        ("traffic reduction", f"{100 * s['traffic_reduction_fraction']:.1f}%"),
        ("off-chip traffic", f"{s['traffic_bytes'] / 1e6:.3g} MB"),
        ("DSP efficiency", f"{s['dsp_efficiency_fraction']:.3f}"),
        ("memory-bound layers", str(len(s["memory_bound_layers"]))),
        ("weights", s["weights"]),
    ]
    card_html = "".join(f"<div class='card'><div class='v'>{_e(v)}</div><div class='k'>{_e(k)}</div></div>"
                        for k, v in cards)
    weights_note = ("" if s["weights_is_real"] else
                    f"<p class='warn'><b>Weights are {_e(s['weights'])}, not trained.</b> "
                    f"{_e(s['weights_provenance'])}</p>")
    figs = []
    for key, title, fn in FIGURES:
        if key == "tradeoff" and not report.tradeoff:
            continue
        try:
            png = fn(report)
        except Exception as exc:  # noqa: BLE001 - a figure that cannot be drawn is named, the page still renders
            figs.append(f"<h2 id='{key}'>{_e(title)}</h2><p class='warn'>figure not drawn: {_e(exc)}</p>")
            continue
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        figs.append(f"<h2 id='{key}'>{_e(title)}</h2><figure><img alt='{_e(title)}' src='{uri}'>"
                    f"<figcaption>{_e(' '.join((fn.__doc__ or title).split()))}</figcaption></figure>")
    unsupported = "".join(f"<tr><td class='l'>{_e(u['name'])}</td><td class='l'>{_e(u['type'])}</td>"
                          f"<td class='l'>{_e(u['treatment'])}</td></tr>" for u in report.unsupported_layers)
    notes = "".join(f"<li>{_e(n)}</li>" for n in report.notes)
    config_json = json.dumps(_clean(cfg), indent=1)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>FlexSpec report: {_e(s['network'])} on {_e(s['device'])}</title>
<style>{_CSS}</style></head>
<body>
<h1>FlexSpec: {_e(s['network'])} on {_e(s['device'])}</h1>
<p class="sub">N={acc.fft_size}, A={acc.arrays} arrays x P={acc.pes} PEs, B={acc.banks} banks x R={acc.ports} ports,
{acc.fft_engines}/{acc.ifft_engines} FFT/IFFT engines, {res.dsp_total} of {res.device_dsp} DSPs,
clock {s['clock_hz'] / 1e6:.0f} MHz; flexspec {_e(cfg['flexspec_version'])}; simulator figures.</p>
<div class="cards">{card_html}</div>
{weights_note}
<p>Memory-bound layers: {_e(', '.join(s['memory_bound_layers']) or 'none')}.
Compulsory traffic bound: {s['lower_bound_bytes'] / 1e6:.1f} MB.</p>
<h2 id="designs">FlexSpec against the baselines</h2>{_baseline_table(report)}
<h2 id="layers">Per layer</h2>{_layer_table(report)}
<p class="sub">Rows shaded red are memory-bound. Traffic in MB (10<sup>6</sup> bytes).</p>
{''.join(figs)}
<h2 id="unsupported">Layers not run as spectral convolutions</h2>
<table><tr><th class='l'>layer</th><th class='l'>type</th><th class='l'>what happens to it</th></tr>{unsupported}</table>
<h2 id="notes">Notes</h2><ul>{notes}</ul>
<h2 id="config">Configuration (reproduce with: <code>{_e(cfg.get('reproduce') or 'the Python API')}</code>)</h2>
<pre>{_e(config_json)}</pre>
</body></html>
"""
