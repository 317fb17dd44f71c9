"""Terminal output of a run: the per-layer table and a short summary (rich)."""

from __future__ import annotations


def _console(console):
    if console is not None:
        return console
    import sys

    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 150)


def layer_table(report):
    from rich.table import Table

    f = report.flexspec
    t = Table(title=f"{report.network.name} on {f.device}: per layer (FlexSpec design vs "
                    f"{report.headline_baseline} baseline)", title_justify="left", header_style="bold")
    for name, just in (("layer", "left"), ("dataflow", "left"), ("latency µs", "right"), ("compute%", "right"),
                       ("conflict%", "right"), ("mem stall%", "right"), ("fft%", "right"), ("fill%", "right"),
                       ("traffic MB", "right"), ("base MB", "right"), ("speed-up", "right"),
                       ("DSP eff", "right"), ("bound", "left")):
        t.add_column(name, justify=just, no_wrap=True)
    for r in report.layer_rows():
        c = max(1, r["cycles"])
        sp = r["speedup_ratio"]
        t.add_row(r["layer"], r["dataflow"], f"{r['latency_seconds'] * 1e6:.1f}",
                  f"{100 * r['compute_cycles'] / c:.0f}", f"{100 * r['bank_conflict_stall_cycles'] / c:.0f}",
                  f"{100 * r['memory_stall_cycles'] / c:.0f}", f"{100 * r['fft_stall_cycles'] / c:.0f}",
                  f"{100 * r['fill_cycles'] / c:.0f}", f"{r['traffic_bytes'] / 1e6:.2f}",
                  "-" if r["baseline_traffic_bytes"] is None else f"{r['baseline_traffic_bytes'] / 1e6:.2f}",
                  "-" if sp is None else f"{sp:.2f}x", f"{r['dsp_efficiency_fraction']:.2f}",
                  ("[red]memory[/red]" if r["memory_bound"] else r["bound"]))
    return t


def summary_lines(report) -> list[str]:
    s = report.summary()
    f = report.flexspec
    acc = f.config
    lines = [
        f"latency {s['latency_seconds'] * 1e3:.3f} ms ({s['cycles']:,} cycles at {s['clock_hz'] / 1e6:.0f} MHz); "
        f"baseline ({s['baseline']}) {s['baseline_latency_seconds'] * 1e3:.3f} ms",
        f"speed-up {s['speedup_ratio']:.2f}x, traffic {s['traffic_bytes'] / 1e6:.1f} MB vs "
        f"{s['baseline_traffic_bytes'] / 1e6:.1f} MB: reduction {100 * s['traffic_reduction_fraction']:.1f}% "
        f"(compulsory bound {s['lower_bound_bytes'] / 1e6:.1f} MB)",
    ]
    for name, b in s["baselines"].items():
        if name != s["baseline"]:
            lines.append(f"vs {name} baseline: speed-up {b['speedup_ratio']:.2f}x, traffic reduction "
                         f"{100 * b['traffic_reduction_fraction']:.1f}%")
    lines += [
        f"DSP efficiency {s['dsp_efficiency_fraction']:.3f} (useful complex MACs / (A*P*cycles)); design "
        f"A={acc.arrays} x P={acc.pes} PEs, B={acc.banks} banks, N={acc.fft_size}, "
        f"{f.resources.dsp_total}/{f.resources.device_dsp} DSPs",
        "memory-bound layers: " + (", ".join(s["memory_bound_layers"]) or "none"),
        f"weights: {s['weights'].upper()} - {s['weights_provenance']}",
    ]
    return lines


def print_report(report, console=None) -> None:
    con = _console(console)
    con.print(layer_table(report))
    con.print("[bold]Summary[/bold]")
    for line in summary_lines(report):
        con.print(f"  {line}", markup=False)
    if report.notes:
        con.print("[bold]Notes[/bold]")
        for n in report.notes:
            con.print(f"  - {n}", markup=False)
