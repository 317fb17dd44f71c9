"""report.json / layers.csv / report.html: content, self-containment, all-or-nothing writes."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re

import pytest

from flexspec import report as rp
from flexspec.fileio import OutputError, check_output_folder, write_files


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_three_files_agree_with_the_report(tmp_path, tiny_report):
    paths = rp.write_report(tiny_report, tmp_path / "out" / "nested")
    assert [p.name for p in paths] == list(rp.REPORT_FILES)
    out = tmp_path / "out" / "nested"
    assert _listing(tmp_path / "out") == ["nested"] + [f"nested/{n}" for n in sorted(rp.REPORT_FILES)]
    d = json.loads((out / "report.json").read_text())
    assert d["summary"]["cycles"] == tiny_report.flexspec.cycles
    assert [r["layer"] for r in d["layers"]] == [r.name for r in tiny_report.flexspec.layers]
    rows = list(csv.DictReader(io.StringIO((out / "layers.csv").read_text())))
    assert [r["layer"] for r in rows] == [r["layer"] for r in d["layers"]]
    assert [int(r["cycles"]) for r in rows] == [r["cycles"] for r in d["layers"]]
    assert oct(os.stat(out / "report.json").st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_html_is_self_contained_with_every_figure(tiny_report):
    page = rp.render_html(tiny_report)
    imgs = re.findall(r"<img alt='([^']*)' src='data:image/png;base64,([^']+)'>", page)
    titles = [t for t, _ in imgs]
    assert len(imgs) == 6, titles
    for _, data in imgs:
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert not re.search(r"(src|href)=['\"]?(https?:|//|file:)", page)
    assert "<script" not in page
    assert "figure not drawn" not in page
    for text in ("latency split", "baselines and the bound", "Roofline", "tradeoff", "Bank-load", "Kept-frequency",
                 "random", "c1", "fully connected"):
        assert text.lower() in page.lower(), text


def test_a_failure_while_rendering_writes_nothing(tmp_path, tiny_report, monkeypatch):
    before = _listing(tmp_path)

    def boom(report):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(rp, "render_html", boom)
    with pytest.raises(RuntimeError):
        rp.write_report(tiny_report, tmp_path / "new")
    assert _listing(tmp_path) == before


def test_a_failure_while_writing_removes_temporaries_and_new_folder(tmp_path, monkeypatch):
    calls = []
    real = os.replace

    def flaky(a, b):
        calls.append(b)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(a, b)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OutputError, match="No space left"):
        write_files(tmp_path / "a" / "b", {"x.txt": "1", "y.txt": "2"})
    # the first file had been renamed already; nothing else (no temporary) is left
    left = _listing(tmp_path)
    assert not [p for p in left if p.endswith(".tmp")]
    assert all(p in ("a", "a/b", "a/b/x.txt") for p in left)


def test_output_folder_checks(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        check_output_folder(f)
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_folder(f / "sub" / "deeper")
    assert check_output_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert _listing(tmp_path) == ["file"]  # checking creates nothing


def test_json_has_no_nan_or_infinity(tiny_report):
    text = rp.render_json(tiny_report)
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text)
