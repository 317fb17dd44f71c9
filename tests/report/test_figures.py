"""The report's figures: integer bank numbers, a traffic chart that never clips, distinct tradeoff colours."""

from __future__ import annotations

import pytest

from flexspec.report import plots


@pytest.fixture
def figure_of(monkeypatch):
    """Call a figure function and return its matplotlib figure instead of PNG bytes."""
    import flexspec.dataflow.plots as dplots

    got = {}
    monkeypatch.setattr(plots, "_png", lambda plt, fig: got.setdefault("fig", fig) and b"")
    monkeypatch.setattr(dplots, "_finish", lambda plt, fig, path: got.setdefault("fig", fig) and b"")

    def draw(fn, report):
        got.clear()
        fn(report)
        return got["fig"]
    return draw


def test_bank_heat_map_numbers_banks_with_integers(tiny_report, figure_of):
    ax = figure_of(plots.bank_load, tiny_report).axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels and all(lab.isdigit() for lab in labels)
    assert [int(v) for v in ax.get_xticks()] == [int(lab) for lab in labels]


def test_traffic_chart_holds_every_bar(tiny_report, figure_of):
    ax = figure_of(plots.traffic, tiny_report).axes[0]
    tops = [p.get_y() + p.get_height() for p in ax.patches]
    assert max(tops) <= ax.get_ylim()[1]
    legend = ax.get_legend()
    assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1  # outside the plotting area


def test_tradeoff_curves_have_distinct_styles(figure_of):
    from types import SimpleNamespace

    from flexspec.accel.arch import AcceleratorConfig
    from flexspec.accel.kernels import random_masks
    from flexspec.pipeline import stage_tradeoff
    from flexspec.workload import get_network

    net = get_network("vgg16_cifar")
    report = SimpleNamespace(tradeoff=stage_tradeoff(net, random_masks(net, 8, 0.25, 0), 8, AcceleratorConfig()))
    ax = figure_of(plots.tradeoff, report).axes[0]
    styles = [(line.get_color(), line.get_linestyle()) for line in ax.get_lines() if line.get_label()[0] != "_"]
    assert len(styles) == len(report.tradeoff) == 13
    assert len(set(styles)) == len(styles)
