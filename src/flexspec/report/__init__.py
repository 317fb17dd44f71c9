"""Reports of a run: ``report.json``, ``layers.csv``, ``report.html`` (one self-contained page) and the
terminal table.  Every writer is atomic; :func:`write_report` writes the three files all-or-nothing."""

from __future__ import annotations

from ..fileio import OutputError, check_output_folder, write_file, write_files
from .render import render_csv, render_json, sweep_csv
from .html import render_html
from .table import print_report

REPORT_FILES = ("report.json", "layers.csv", "report.html")


def write_json(report, path):
    """``report.json``: every figure (per layer and total, units in the names), the configuration."""
    return write_file(path, render_json(report))


def write_csv(report, path):
    """``layers.csv``: one row per simulated layer."""
    return write_file(path, render_csv(report))


def write_html(report, path):
    """``report.html``: one self-contained page, plots embedded as PNG data URIs."""
    return write_file(path, render_html(report))


def write_report(report, folder, html: bool = True):
    """The three files into ``folder``, all rendered first, then renamed into place together."""
    files = {"report.json": render_json(report), "layers.csv": render_csv(report)}
    if html:
        files["report.html"] = render_html(report)
    return write_files(folder, files)


__all__ = ["OutputError", "REPORT_FILES", "check_output_folder", "print_report", "render_csv", "render_html",
           "render_json", "sweep_csv", "write_csv", "write_file", "write_files", "write_html", "write_json",
           "write_report"]
