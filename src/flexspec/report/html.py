"""``report.html``: a single self-contained page (inline CSS, PNG figures as data URIs, no scripts,
no external resources)."""

from __future__ import annotations

import base64
import html
import json

from ..accel.spatial import conv_only
from .plots import FIGURES
from .render import _clean
from .table import blocking_text, layer_label

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


_LEFT = ("layer", "mode", "dataflow", "blocking", "bound", "bound_reason")


def _layer_table(report) -> str:
    cols = (("layer", "layer"), ("mode", "mode"), ("dataflow", "dataflow"), ("blocking", "blocking o/i/t"),
            ("latency_seconds", "latency µs"),
            ("compute_cycles", "compute cyc"), ("bank_conflict_stall_cycles", "conflict cyc"),
            ("memory_stall_cycles", "mem stall cyc"), ("fft_stall_cycles", "FFT stall cyc"),
            ("fill_cycles", "fill cyc"), ("traffic_bytes", "traffic MB"), ("baseline_traffic_bytes", "baseline MB"),
            ("lower_bound_bytes", "bound MB"), ("speedup_ratio", "speed-up"),
            ("dsp_efficiency_fraction", "DSP eff."), ("kernel_density_fraction", "density"), ("bound", "largest resource total"),
            ("bound_reason", "bound by (time split)"))
    head = "".join(f"<th class='l'>{_e(h)}</th>" if k in _LEFT else f"<th>{_e(h)}</th>" for k, h in cols)
    body = []
    for r in report.layer_rows():
        cells = []
        for k, _ in cols:
            v = r.get(k)
            if k == "layer":
                v = layer_label(r)
            elif k == "blocking":
                v = blocking_text(r)
            elif k == "latency_seconds":
                v = v * 1e6
            elif k.endswith("_bytes") and v is not None:
                v = v / 1e6
            cls = " class='l'" if k in _LEFT else ""
            title = f" title='fused: {_e(', '.join(r['fused_layers']))}'" if k == "layer" and r["fused_layers"] else ""
            cells.append(f"<td{cls}{title}>{_e(_fmt(v))}</td>")
        body.append(f"<tr{' class=mb' if r['memory_bound'] else ''}>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _baseline_table(report) -> str:
    """Every design on the same board, end to end and convolutions only."""
    f = report.flexspec
    fc = conv_only(f)
    rows = [("FlexSpec (flexible dataflow, optimal schedules)", f.seconds, fc["latency_seconds"], f.traffic_bytes)]
    for name, b in report.dataflow_only.items():
        rows.append((f"fixed {name} dataflow, optimal schedules", b.seconds, conv_only(b)["latency_seconds"],
                     b.traffic_bytes))
    for name, b in report.baselines.items():
        rows.append((f"fixed {name} dataflow, in-order schedules", b.seconds, conv_only(b)["latency_seconds"],
                     b.traffic_bytes))
    for acc in report.spatial.values():
        rows.append((f"{acc.name} array {acc.rows}x{acc.columns} (modelled)", acc.latency_seconds,
                     acc.conv_latency_seconds, acc.traffic_bytes))
        rows.append((f"{acc.name}, ideal (MACs / DSPs)", acc.ideal_cycles / acc.clock_hz,
                     acc.ideal_conv_cycles / acc.clock_hz, None))
    body = "".join(f"<tr><td class='l'>{_e(n)}</td><td>{lat * 1e3:.4g}</td><td>{conv * 1e3:.4g}</td>"
                   f"<td>{lat / f.seconds:.2f}x</td><td>{conv / fc['latency_seconds']:.2f}x</td>"
                   f"<td>{'-' if t is None else f'{t / 1e6:.2f}'}</td></tr>" for n, lat, conv, t in rows)
    return ("<table><tr><th class='l'>design on the same board</th><th>end-to-end ms</th><th>convolutions ms</th>"
            "<th>FlexSpec speed-up (end to end)</th><th>FlexSpec speed-up (conv)</th><th>traffic MB</th></tr>"
            f"{body}</table>")


def render_html(report) -> str:
    s = report.summary()
    cfg = report.configuration
    acc = report.flexspec.config
    res = report.flexspec.resources
    cards = [
        ("end-to-end latency", f"{s['latency_seconds'] * 1e3:.4g} ms"),
        ("throughput (batch 1)", f"{s['throughput_frames_per_second']:,.1f} frames/s"),
        ("convolutions only", f"{s['conv_latency_seconds'] * 1e3:.4g} ms"),
        (f"speed-up vs {s['baseline']}", f"{s['speedup_ratio']:.2f}x"),
        ("traffic reduction", f"{100 * s['traffic_reduction_fraction']:.1f}%"),
        ("off-chip traffic", f"{s['traffic_bytes'] / 1e6:.3g} MB"),
        ("DSP efficiency", f"{s['dsp_efficiency_fraction']:.3f}"),
        ("memory-bound layers", str(len(s["memory_bound_layers"]))),
        ("weights", report.kernels.label),
    ]
    card_html = "".join(f"<div class='card'><div class='v'>{_e(v)}</div><div class='k'>{_e(k)}</div></div>"
                        for k, v in cards)
    weights_note = (f"<p><b>Weights: {_e(report.kernels.label)}.</b> {_e(s['weights_provenance'])}</p>"
                    if s["weights_is_real"] else
                    f"<p class='warn'><b>Weights are {_e(s['weights'])}, not trained.</b> "
                    f"{_e(s['weights_provenance'])}</p>")
    pv = s["pruning_view"]
    pruning_note = "" if not pv else (
        f"<p>Convolutions only: FlexSpec is {pv['speedup_over_ideal_dense_ratio']:.2f}x the ideal dense spatial array "
        f"on the same DSPs; pruning alone gives {pv['pruning_share_ratio']:.2f}x of that (the ideal sparse spatial "
        f"array at the same density), and FlexSpec against that ideal sparse array is "
        f"{pv['speedup_over_ideal_sparse_ratio']:.2f}x.</p>")
    resource_rows = "".join(
        f"<tr><td>{_e(r['resource'])}</td><td>{r['used']:,}</td><td>{r['available']:,}</td>"
        f"<td>{100 * r['utilization']:.1f}%</td></tr>" for r in s["resources_used_available"])
    resource_note = (f"<p>Resources of the design (synthesis-calibrated model; available = device less the shell and "
                     f"DRAM controllers), bound by <b>{_e(s['binding_resource'])}</b>:</p>"
                     f"<table><tr><th>resource</th><th>used</th><th>available</th><th>utilization</th></tr>"
                     f"{resource_rows}</table><p>Clock {s['clock_hz'] / 1e6:.0f} MHz: "
                     f"{_e(s['clock_source'] or 'no source given')}</p>")
    split = "".join(f"<li>vs {_e(k)}: {v['total_ratio']:.2f}x end to end = dataflow {v['dataflow_ratio']:.2f}x x "
                    f"scheduler {v['scheduler_ratio']:.2f}x (convolutions {v['conv_total_ratio']:.2f}x)</li>"
                    for k, v in s["speedup_split"].items())
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
    unsupported = "".join(f"<tr><td class='l'>{_e(u['layer'])}</td><td class='l'>{_e(u['op'])}</td>"
                          f"<td class='l'>{_e(tuple(u['input_shape']))} -> {_e(tuple(u['output_shape']))}</td>"
                          f"<td class='l'>{_e(u['reason'])}</td></tr>" for u in report.unsupported_layers)
    unsupported_html = ("<p>None: every layer has a cost model.</p>" if not unsupported else
                        "<p class='warn'>These layers have no cost model; the run accepted the fallback cost "
                        "(one DRAM read of the input and one write of the output).</p><table><tr><th class='l'>layer"
                        "</th><th class='l'>op</th><th class='l'>shape</th><th class='l'>reason</th></tr>"
                        f"{unsupported}</table>")
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
{resource_note}
<p>Latency scope: {_e(s['latency_scope'])}.
Memory-bound layers: {_e(', '.join(s['memory_bound_layers']) or 'none')}.
Compulsory traffic bound: {s['lower_bound_bytes'] / 1e6:.1f} MB.</p>
<h2 id="designs">FlexSpec against the baselines</h2>{_baseline_table(report)}
<ul>{split}</ul>{pruning_note}
<h2 id="layers">Per layer</h2>{_layer_table(report)}
<p class="sub">Rows shaded red are memory-bound. Traffic in MB (10<sup>6</sup> bytes). ReLU and pooling
layers are folded into the layer before them (hover a layer name for the list).</p>
{''.join(figs)}
<h2 id="unsupported">Layers without a cost model</h2>{unsupported_html}
<h2 id="notes">Notes</h2><ul>{notes}</ul>
<h2 id="config">Configuration (reproduce with: <code>{_e(cfg.get('reproduce') or 'the Python API')}</code>)</h2>
<pre>{_e(config_json)}</pre>
</body></html>
"""
