"""flexspec run / compare / sweep succeed end to end (on the tiny network)."""

from __future__ import annotations

import csv
import json

from flexspec.accel.search import BANK_PORTS
from flexspec.cli import main


def test_run_prints_table_summary_and_writes_three_files(tiny_zoo, tmp_path, capsys):
    rc = main(["run", tiny_zoo, "--out", str(tmp_path / "o"), "--seed", "3"])
    cap = capsys.readouterr()
    assert rc == 0
    for text in ("c1", "c2", "speed-up", "traffic", "DSP efficiency", "memory-bound layers", "weights: RANDOM",
                 "wrote"):
        assert text in cap.out, text
    assert "[1/7] network" in cap.err  # plain progress lines when stderr is not a terminal
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["layers.csv", "report.html", "report.json"]
    d = json.loads((tmp_path / "o" / "report.json").read_text())
    assert d["configuration"]["seed"] == 3
    assert d["configuration"]["reproduce"].startswith(f"flexspec run {tiny_zoo} --device u200 --fft-size 8 --seed 3")


def test_compare_one_table_over_devices_and_configs(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "cmp.csv"
    rc = main(["compare", tiny_zoo, "--devices", "u200,zcu102", "--configs", "pes=4;pes=4,banks=8", "--quiet",
               "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    rows = list(csv.DictReader(out.open()))
    # banks not given: searched (flexspec.accel.search.BANK_PORTS); given: kept
    searched = {str(b) for b, _ in BANK_PORTS}
    assert [(r["device"], r["pes"]) for r in rows] == [("u200", "4"), ("u200", "4"), ("zcu102", "4"), ("zcu102", "4")]
    assert [r["banks"] in searched for r in rows] == [True, False, True, False]
    assert [r["banks"] for r in rows][1::2] == ["8", "8"]
    assert all(r["status"] == "ok" for r in rows)
    assert "zcu102" in cap.out and "speed-up" in cap.out


def test_sweep_writes_one_row_per_point(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "sweep.csv"
    rc = main(["sweep", tiny_zoo, "--density", "0.125,0.5", "--fft-size", "4,8", "--pes", "4", "--banks", "8,16",
               "--out", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 8
    points = {(float(r["density_requested_fraction"]), int(r["fft_size"]), int(r["banks"])): r for r in rows}
    # N=4 has F=12 frequencies: 16 banks is an invalid point, reported as such
    assert points[(0.5, 4, 16)]["status"].startswith("invalid")
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 6
    # denser kernels move more kernel bytes at the same N, P, B
    assert float(points[(0.5, 8, 8)]["traffic_bytes"]) >= float(points[(0.125, 8, 8)]["traffic_bytes"])
    assert {r["density_used_fraction"] for r in ok if r["density_requested_fraction"] == "0.125"}
