"""Terminal output of a run: the per-layer table and a short summary (rich)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table


def _console(console):
    if console is not None:
        return console
    # not a terminal (a pipe, a file): wide enough that no column is ever cut
    return Console(highlight=False, width=None if sys.stdout.isatty() else 1000)


def blocking_text(r: dict) -> str:
    """'oit 64/16/8' (loop order, cout/cin/tile block) for a spectral layer; the spatial mapping otherwise."""
    if r["kind"] == "spectral":
        return f"{r['loop_order']} {r['cout_block_channels']}/{r['cin_block_channels']}/{r['tile_block_tiles']}"
    if r["kind"] in ("spatial", "fc") and r["cout_block_channels"]:
        return f"P-block {r['cout_block_channels']}"
    return "-"


def split_bound(r: dict) -> str:
    """What bounds the layer according to its own time split (the first word of ``bound_reason``)."""
    word = r["bound_reason"].split("-bound")[0].split(" ")[0]
    return "[red]memory[/red]" if word == "memory" else word


def layer_label(r: dict) -> str:
    fused = r.get("fused_layers") or []
    return r["layer"] + (f" +{len(fused)} fused" if fused else "")


def layer_table(report) -> Table:
    f = report.flexspec
    t = Table(title=f"{report.network.name} on {f.device}: every layer (FlexSpec design vs "
                    f"{report.headline_baseline} baseline); ReLU/pooling folded into the layer before them",
              title_justify="left", header_style="bold")
    for name, just in (("layer", "left"), ("mode", "left"), ("dataflow", "left"), ("blocking o/i/t", "left"),
                       ("latency µs", "right"), ("compute%", "right"), ("conflict%", "right"),
                       ("mem stall%", "right"), ("fft%", "right"), ("fill%", "right"), ("traffic MB", "right"),
                       ("base MB", "right"), ("speed-up", "right"), ("DSP eff", "right"), ("bound (time split)", "left")):
        t.add_column(name, justify=just, no_wrap=True)
    for r in report.layer_rows():
        c = max(1, r["cycles"])
        sp = r["speedup_ratio"]
        t.add_row(layer_label(r), r["mode"], r["dataflow"], blocking_text(r), f"{r['latency_seconds'] * 1e6:.1f}",
                  f"{100 * r['compute_cycles'] / c:.0f}", f"{100 * r['bank_conflict_stall_cycles'] / c:.0f}",
                  f"{100 * r['memory_stall_cycles'] / c:.0f}", f"{100 * r['fft_stall_cycles'] / c:.0f}",
                  f"{100 * r['fill_cycles'] / c:.0f}", f"{r['traffic_bytes'] / 1e6:.2f}",
                  "-" if r["baseline_traffic_bytes"] is None else f"{r['baseline_traffic_bytes'] / 1e6:.2f}",
                  "-" if sp is None else f"{sp:.2f}x", f"{r['dsp_efficiency_fraction']:.2f}",
                  split_bound(r))
    return t


def unsupported_table(report) -> Table | None:
    if not report.unsupported_layers:
        return None
    t = Table(title="layers without a cost model (costed by the accepted fallback)", title_justify="left",
              header_style="bold")
    for name in ("layer", "op", "input", "output", "reason"):
        t.add_column(name, no_wrap=name != "reason")
    for u in report.unsupported_layers:
        t.add_row(u["layer"], u["op"], str(tuple(u["input_shape"])), str(tuple(u["output_shape"])), u["reason"])
    return t


def speedup_lines(split: dict) -> list[str]:
    """One line per baseline: the total speed-up and its split (``RunReport.speedup_split``), used
    by 'run' and 'simulate' alike."""
    lines = []
    for name, sp in split.items():
        line = (f"vs {name}: speed-up {sp['total_ratio']:.2f}x end to end = dataflow {sp['dataflow_ratio']:.2f}x"
                f" x scheduler {sp['scheduler_ratio']:.2f}x")
        if "conv_total_ratio" in sp:
            line += (f" (convolutions: {sp['conv_total_ratio']:.2f}x = {sp['conv_dataflow_ratio']:.2f}x x "
                     f"{sp['conv_scheduler_ratio']:.2f}x)")
        lines.append(line)
    return lines


def summary_lines(report) -> list[str]:
    s = report.summary()
    f = report.flexspec
    acc = f.config
    lines = [
        f"end-to-end latency {s['latency_seconds'] * 1e3:.4g} ms = {s['throughput_frames_per_second']:,.1f} "
        f"frames/s at batch 1 ({s['cycles']:,} cycles at {s['clock_hz'] / 1e6:.0f} MHz; {s['latency_scope']}); "
        f"convolutions only {s['conv_latency_seconds'] * 1e3:.4g} ms",
        f"baseline ({s['baseline']}, in-order schedules) {s['baseline_latency_seconds'] * 1e3:.4g} ms end to end, "
        f"{s['baseline_conv_latency_seconds'] * 1e3:.4g} ms convolutions",
    ]
    lines += speedup_lines(s["speedup_split"])
    lines.append(f"traffic {s['traffic_bytes'] / 1e6:.1f} MB vs {s['baseline_traffic_bytes'] / 1e6:.1f} MB: reduction "
                 f"{100 * s['traffic_reduction_fraction']:.1f}% (compulsory bound "
                 f"{s['lower_bound_bytes'] / 1e6:.1f} MB; convolutions {s['conv_traffic_bytes'] / 1e6:.1f} MB)")
    pv = s["pruning_view"]
    if pv:
        lines.append(f"instead, on the same board: dense spatial array {pv['dense_spatial_conv_latency_seconds'] * 1e3:.3f}"
                     f" ms (ideal {pv['ideal_dense_spatial_conv_latency_seconds'] * 1e3:.4g} ms), sparse spatial at the "
                     f"same density {pv['sparse_spatial_conv_latency_seconds'] * 1e3:.4g} ms (ideal "
                     f"{pv['ideal_sparse_spatial_conv_latency_seconds'] * 1e3:.4g} ms), convolutions only")
        lines.append(f"FlexSpec is {pv['speedup_over_ideal_dense_ratio']:.2f}x the ideal dense spatial array; pruning "
                     f"alone gives {pv['pruning_share_ratio']:.2f}x of that (ideal sparse spatial), FlexSpec vs ideal "
                     f"sparse spatial {pv['speedup_over_ideal_sparse_ratio']:.2f}x")
    lines += [
        f"DSP efficiency {s['dsp_efficiency_fraction']:.3f} (useful MACs / (A*P*cycles), all layers); design "
        f"A={acc.arrays} x P={acc.pes} PEs, B={acc.banks} banks, N={acc.fft_size}, "
        f"{f.resources.dsp_total}/{f.resources.device_dsp} DSPs",
        "resources used/available: " + ", ".join(
            f"{r['resource']} {r['used']:,}/{r['available']:,}" for r in s["resources_used_available"])
        + f" (bound by {s['binding_resource']})",
        f"clock {s['clock_hz'] / 1e6:.0f} MHz: {s['clock_source'] or 'no source given'}",
        "memory-bound layers: " + (", ".join(s["memory_bound_layers"]) or "none"),
        f"weights: {report.kernels.label} - {s['weights_provenance']}",
    ]
    if s["unsupported_layers_count"]:
        lines.append(f"{s['unsupported_layers_count']} layer(s) without a cost model, costed by the accepted fallback "
                     f"(listed above)")
    return lines


def print_report(report, console=None, table: bool = True) -> None:
    """The per-layer table (unless ``table`` is False), the summary and the notes."""
    con = _console(console)
    if table:
        con.print(layer_table(report))
    u = unsupported_table(report)
    if u is not None:
        con.print(u)
    con.print("[bold]Summary[/bold]")
    for line in summary_lines(report):
        con.print(f"  {line}", markup=False)
    if report.notes and table:
        con.print("[bold]Notes[/bold]")
        for n in report.notes:
            con.print(f"  - {n}", markup=False)
