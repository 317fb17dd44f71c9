"""The report's figures (matplotlib, Agg backend), each returned as PNG bytes.

The traffic bars and the tradeoff curves reuse :mod:`flexspec.dataflow.plots`' style; the latency
split, roofline, bank-load and kept-frequency heat maps are drawn here from the RunReport alone."""

from __future__ import annotations

import io

import numpy as np

from ..dataflow.plots import plot_tradeoff

_SPLIT = (("compute_cycles", "compute", "#4C72B0"), ("bank_conflict_cycles", "bank-conflict stall", "#DD8452"),
          ("memory_stall_cycles", "memory stall", "#C44E52"), ("fft_stall_cycles", "FFT stall", "#8172B2"),
          ("fill_cycles", "fill / drain", "#937860"))
_TRAFFIC = (("kernels_bytes", "kernels", "#4C72B0"), ("inputs_bytes", "inputs", "#55A868"),
            ("outputs_bytes", "outputs", "#C44E52"), ("psums_bytes", "partial sums", "#8172B2"))
_HATCH = ("", "//", "..", "xx")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(plt, fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def latency_split(report) -> bytes:
    """Stacked per-layer latency (microseconds): compute, bank-conflict stall, memory stall, FFT stall, fill."""
    plt = _plt()
    layers = report.flexspec.layers
    clock = report.flexspec.clock_hz
    fig, ax = plt.subplots(figsize=(max(7.0, 0.5 * len(layers) + 2), 4.2))
    x = np.arange(len(layers))
    bottom = np.zeros(len(layers))
    for key, label, color in _SPLIT:
        v = np.array([max(0, getattr(r, key)) for r in layers], float) / clock * 1e6
        ax.bar(x, v, 0.7, bottom=bottom, color=color, label=label)
        bottom += v
    base = {r.name: r for r in report.baseline.layers}
    bx = [k for k, r in enumerate(layers) if r.name in base]
    ax.scatter(bx, [base[layers[k].name].seconds * 1e6 for k in bx], marker="_", s=260, color="k", zorder=5,
               label=f"baseline ({report.headline_baseline})")
    ax.set_xticks(x)
    ax.set_xticklabels([r.name for r in layers], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("latency (µs)")
    ax.set_title(f"{report.network.name} on {report.flexspec.device}: latency split per layer")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, axis="y", alpha=0.3)
    return _png(plt, fig)


def traffic(report) -> bytes:
    """Per-layer off-chip traffic of FlexSpec and each baseline (stacked by tensor), compulsory bound as ticks."""
    plt = _plt()
    designs = [("flexspec", report.flexspec)] + list(report.baselines.items())
    layers = report.flexspec.layers
    n, m = len(layers), len(designs)
    fig, ax = plt.subplots(figsize=(max(7.5, 0.45 * n * m / 1.5 + 2), 4.6))
    width = 0.8 / m
    x = np.arange(n)
    for j, (_name, res) in enumerate(designs):
        by = {r.name: r for r in res.layers}
        bottom = np.zeros(n)
        pos = x - 0.4 + width * (j + 0.5)
        for key, label, color in _TRAFFIC:
            v = np.array([getattr(by[r.name], key) if r.name in by else 0.0 for r in layers]) / 1e6
            ax.bar(pos, v, width, bottom=bottom, color=color, hatch=_HATCH[j % 4], edgecolor="white", lw=0.3,
                   label=label if j == 0 else None)
            bottom += v
    ax.scatter(x, [r.lower_bound_bytes / 1e6 for r in layers], marker="_", s=300, color="k", zorder=5,
               label="compulsory bound")
    for j, (name, _) in enumerate(designs):
        ax.bar([0], [0], color="lightgray", hatch=_HATCH[j % 4], label=name)
    ax.set_xticks(x)
    ax.set_xticklabels([r.name for r in layers], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("off-chip traffic (MB)")
    ax.set_title("Off-chip traffic per layer: FlexSpec vs fixed-dataflow baselines")
    # never clipped: the axis holds the tallest bar and bound with headroom; the legend sits outside
    top = max([max(sum(getattr(r, k) for k, _, _ in _TRAFFIC) for r in res.layers) for _, res in designs]
              + [r.lower_bound_bytes for r in layers] + [1.0]) / 1e6
    ax.set_ylim(0, top * 1.08)
    ax.legend(fontsize=7, ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, axis="y", alpha=0.3)
    return _png(plt, fig)


def roofline(report) -> bytes:
    """Roofline: attainable complex MAC/s against operational intensity (MAC per off-chip byte);
    one point per layer for FlexSpec and the headline baseline."""
    plt = _plt()
    f = report.flexspec
    clock = f.clock_hz
    peak = f.config.pe_count * clock
    dev = report.configuration.get("device_profile", {})
    bw = float(dev.get("dram_bandwidth_bytes_per_s", 0)) * float(dev.get("burst_efficiency", 1))
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    pts = []
    for name, res, marker in (("flexspec", f, "o"), (report.headline_baseline, report.baseline, "x")):
        oi = np.array([r.useful_macs / max(r.traffic_bytes, 1.0) for r in res.layers])
        perf = np.array([r.useful_macs / max(r.seconds, 1e-12) for r in res.layers])
        ax.scatter(oi, perf, marker=marker, label=name, zorder=4)
        pts.append(oi)
        if name == "flexspec":
            for r, xo, yp in zip(res.layers, oi, perf, strict=True):
                ax.annotate(r.name, (xo, yp), fontsize=6, xytext=(3, 2), textcoords="offset points")
    allx = np.concatenate(pts)
    allx = allx[allx > 0]
    lo = max(allx.min() / 4, 1e-3) if allx.size else 1e-2
    hi = allx.max() * 4 if allx.size else 1e4
    xs = np.geomspace(lo, hi, 200)
    if bw > 0:
        ax.plot(xs, np.minimum(peak, bw * xs), "k-", lw=1.2,
                label=f"roof: {peak / 1e9:.0f} GMAC/s, {bw / 1e9:.1f} GB/s sustained")
        ax.axvline(peak / bw, color="gray", ls=":", lw=0.8)
    else:
        ax.axhline(peak, color="k", lw=1.2, label="compute roof")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (complex MAC per off-chip byte)")
    ax.set_ylabel("achieved complex MAC/s")
    ax.set_title("Roofline (PE arrays vs sustained DRAM bandwidth)")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return _png(plt, fig)


def tradeoff(report) -> bytes:
    """Minimum off-chip traffic over the compulsory bound against on-chip capacity, one step line per
    layer (every blocking of the flexible dataflow)."""
    return plot_tradeoff(report.tradeoff, title="Bandwidth-storage tradeoff per layer (minimum traffic / bound)")


def bank_load(report) -> bytes:
    """Heat map, layers x banks: reads served by each bank over the layer's schedules, relative to the
    mean bank (1.0 = perfectly balanced)."""
    plt = _plt()
    rows = [(r.name, np.asarray(r.bank_load["reads_per_bank"], float)) for r in report.flexspec.layers
            if r.bank_load and r.bank_load.get("reads_per_bank")]
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * max(len(rows), 1) + 1.8))
    if rows:
        mat = np.array([v / max(v.mean(), 1e-12) for _, v in rows])
        im = ax.imshow(mat, aspect="auto", cmap="magma", vmin=0, vmax=max(1.5, float(mat.max())))
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([n for n, _ in rows], fontsize=7)
        banks = mat.shape[1]
        step = max(1, -(-banks // 20))  # integer bank numbers, at most ~20 labels
        ax.set_xticks(range(0, banks, step))
        ax.set_xticklabels([str(b) for b in range(0, banks, step)], fontsize=7)
        ax.set_xlabel("bank")
        fig.colorbar(im, ax=ax, label="reads / mean bank reads")
    else:
        ax.text(0.5, 0.5, "no schedules", ha="center")
    ax.set_title(f"Bank load of the schedules (B={report.flexspec.config.banks}, "
                 f"R={report.flexspec.config.ports} ports)")
    return _png(plt, fig)


def kept_frequencies(report) -> bytes:
    """One heat map per layer: fraction of kernels keeping each frequency (rows fftshifted, DC central)."""
    plt = _plt()
    names = list(report.keep_probability)
    cols = min(len(names), 5) or 1
    nrows = -(-max(len(names), 1) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.2 * cols, 2.4 * nrows + 0.6), squeeze=False)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    im = None
    for ax, name in zip(axes.ravel(), names, strict=False):
        p = np.asarray(report.keep_probability[name])
        n = p.shape[0]
        im = ax.imshow(np.fft.fftshift(p, axes=0), vmin=0, vmax=1, cmap="viridis", origin="lower",
                       extent=(-0.5, p.shape[1] - 0.5, -n // 2 - 0.5, n - n // 2 - 0.5))
        ax.set_title(f"{name}  d={p.mean():.3f}", fontsize=8)
        ax.tick_params(labelsize=6)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="keep probability")
    fig.suptitle(f"Kept frequencies of the kernels ({report.weights} weights), row ky vs column kx", fontsize=9)
    return _png(plt, fig)


FIGURES = (
    ("latency", "Per-layer latency split", latency_split),
    ("traffic", "Traffic against the baselines and the bound", traffic),
    ("roofline", "Roofline", roofline),
    ("tradeoff", "Bandwidth-storage tradeoff curves", tradeoff),
    ("bankload", "Bank-load heat map of the schedules", bank_load),
    ("kept", "Kept-frequency heat map of the kernels", kept_frequencies),
)
