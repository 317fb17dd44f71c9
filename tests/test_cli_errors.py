"""Every bad input to `flexspec run / compare / sweep`: one line naming the problem, the exit code
(2 usage, 1 runtime), no traceback, and nothing written."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from flexspec.cli import main

sys.path.insert(0, str(Path(__file__).parent / "report"))
from report_helpers import TINY, tiny_network, weights_file  # noqa: E402


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A clean working folder (also the cwd) and the tiny network registered as a built-in name."""
    from flexspec.workload import zoo

    monkeypatch.setitem(zoo.NETWORKS, TINY, tiny_network)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _fails(work, capsys, argv, code, *texts):
    before = _listing(work)
    rc = main(argv)
    cap = capsys.readouterr()
    assert rc == code, (rc, cap.err)
    assert "Traceback" not in cap.err
    for t in texts:
        assert t in cap.err, (t, cap.err)
    assert _listing(work) == before, "something was written"
    return cap.err


def test_unknown_model_lists_known(work, capsys):
    err = _fails(work, capsys, ["run", "resnet99", "--out", "o"], 2, "unknown model 'resnet99'", "vgg16",
                 "fmnist_vgg", "resnet18")
    assert err.count("\n") == 1  # one line


def test_unknown_device_lists_known(work, capsys):
    _fails(work, capsys, ["run", TINY, "--device", "u9000", "--out", "o"], 2, "unknown device 'u9000'", "u200",
           "zcu102")
    _fails(work, capsys, ["compare", TINY, "--devices", "u200,nope", "--out", "t.csv"], 2, "unknown device 'nope'")
    _fails(work, capsys, ["sweep", TINY, "--device", "nope", "--out", "s.csv"], 2, "unknown device 'nope'")


def test_malformed_yaml_names_file(work, capsys):
    bad = work / "board.yaml"
    bad.write_text("name: board\ndsp_slices: {value: 10\n")
    _fails(work, capsys, ["run", TINY, "--device", str(bad), "--out", "o"], 2, str(bad), "not valid YAML")


def test_bad_yaml_field_names_file_and_field(work, capsys):
    from flexspec.devices import load_device

    good = Path(load_device("u200").path).read_text()
    bad = work / "board.yaml"
    bad.write_text(good.replace("name: u200", "name: board").replace("dsp_slices:", "dsp_slices_x:"))
    _fails(work, capsys, ["run", TINY, "--device", str(bad), "--out", "o"], 2, str(bad), "dsp_slices")


def test_malformed_npz_names_file(work, capsys):
    bad = work / "k.npz"
    bad.write_bytes(b"this is not a zip file")
    _fails(work, capsys, ["run", TINY, "--weights", str(bad), "--out", "o"], 2, str(bad), "not a readable .npz")
    _fails(work, capsys, ["run", TINY, "--weights", str(work / "missing.npz"), "--out", "o"], 2, "missing.npz",
           "not found")


def test_npz_missing_field_names_file_and_field(work, capsys):
    bad = work / "k.npz"
    np.savez(bad, format_version=np.int64(1), kind=np.array("sparse_network_kernels"))
    _fails(work, capsys, ["run", TINY, "--weights", str(bad), "--out", "o"], 2, str(bad), "field 'layer_names'")


def test_npz_of_another_network_names_field(work, capsys):
    from flexspec.workload.zoo import fmnist_vgg

    (work / "w").mkdir()
    path = weights_file(work / "w", fmnist_vgg())
    _fails(work, capsys, ["run", TINY, "--weights", str(path), "--out", "o"], 2, str(path), "field 'network'",
           "fmnist_vgg")


def test_npz_with_wrong_layer_shapes_names_layer(work, capsys):
    from flexspec.workload.layers import ConvLayer, Network

    other = Network(TINY, (8, 16, 16), (ConvLayer("c1", 8, 8, 16, 16, 3, 1, 1), ConvLayer("c2", 8, 16, 16, 16, 3, 1, 1)))
    (work / "w").mkdir()
    path = weights_file(work / "w", other)
    _fails(work, capsys, ["run", TINY, "--weights", str(path), "--out", "o"], 2, str(path), "field 'c1'", "shape")


@pytest.mark.parametrize("value", ["0", "-0.1", "1.5", "nan"])
def test_density_out_of_range(work, capsys, value):
    _fails(work, capsys, ["run", TINY, "--density", value, "--out", "o"], 2, "--density", "out of range")


@pytest.mark.parametrize("value", ["2", "3", "100"])
def test_fft_size_out_of_range(work, capsys, value):
    _fails(work, capsys, ["run", TINY, "--fft-size", value, "--out", "o"], 2, "--fft-size", "out of range")


def test_size_options_out_of_range(work, capsys):
    _fails(work, capsys, ["run", TINY, "--banks", "41", "--out", "o"], 2, "--banks 41 exceeds the 40")
    _fails(work, capsys, ["run", TINY, "--pes", "0", "--out", "o"], 2, "--pes must be a positive integer")
    _fails(work, capsys, ["sweep", TINY, "--density", "0.25,abc", "--out", "s.csv"], 2, "cannot read 'abc'")
    _fails(work, capsys, ["sweep", TINY, "--density", "0.25,2", "--out", "s.csv"], 2, "out of range")
    _fails(work, capsys, ["sweep", TINY, "--fft-size", "8,1000", "--out", "s.csv"], 2, "--fft-size 1000")
    _fails(work, capsys, ["compare", TINY, "--configs", "pes=16,colour=red"], 2, "cannot read 'colour=red'")


def test_density_and_weights_are_exclusive(work, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", TINY, "--density", "0.25", "--weights", "k.npz"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert _listing(work) == []


def test_unwritable_output_folder_fails_before_computing(work, capsys):
    (work / "afile").write_text("x")
    _fails(work, capsys, ["run", TINY, "--out", "afile"], 1, "is not a folder")
    _fails(work, capsys, ["run", TINY, "--out", "afile/sub"], 1, "is a file, not a folder")
    _fails(work, capsys, ["sweep", TINY, "--out", "afile/s.csv"], 1, "not a folder")
    _fails(work, capsys, ["compare", TINY, "--out", "afile/t.csv"], 1, "not a folder")


def test_design_that_does_not_fit_is_a_runtime_failure(work, capsys):
    _fails(work, capsys, ["run", TINY, "--arrays", "200", "--pes", "64", "--out", "o"], 1, "does not fit",
           "needs lut", "needs dsp", "are available")


def test_layers_not_run_spectrally_are_named_with_what_happens(work, capsys):
    """Not an error: the run goes on, and the layers it does not run spectrally are named."""
    rc = main(["run", TINY, "--out", "o", "--no-html"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "down: spatial convolution (stride 2)" in out
    assert "fc: fully connected: weights streamed from DRAM" in out
    assert _listing(work) == ["o", "o/layers.csv", "o/report.json"]


# -- issue 13, item 6: the rough edges -------------------------------------------------------------
def test_compare_device_option_is_the_devices_option(work, capsys):
    assert main(["compare", TINY, "--device", "zcu102", "--out", "c.csv"]) == 0
    capsys.readouterr()
    rows = (work / "c.csv").read_text().splitlines()
    assert rows[1].startswith("zcu102,")


def test_single_file_outputs_never_create_folders(work, capsys):
    _fails(work, capsys, ["analyze", TINY, "--json", "nodir/a.json"], 2, "folder 'nodir' does not exist")
    _fails(work, capsys, ["compare", TINY, "--out", "nodir/c.csv"], 2, "folder 'nodir' does not exist")
    _fails(work, capsys, ["simulate", TINY, "--device", "u200", "--json", "nodir/s.json"], 2, "does not exist")


def test_analyze_checks_every_destination_before_writing(work, capsys):
    _fails(work, capsys, ["analyze", TINY, "--json", "a.json", "--plots", "nodir"], 2, "--plots: folder nodir")


def test_analyze_density_zero_is_refused(work, capsys):
    _fails(work, capsys, ["analyze", TINY, "--density", "0"], 2, "--density must be in (0, 1]")


def test_unwritable_out_fails_before_the_pipeline(work, capsys):
    err = _fails(work, capsys, ["run", TINY, "--out", "/proc/flexspec-x"], 1, "cannot write in '/proc'")
    assert "[1/7]" not in err


def test_garbage_npz_message_does_not_suggest_unpickling(work, capsys):
    bad = work / "k.npz"
    bad.write_bytes(bytes(range(256)) * 4)
    err = _fails(work, capsys, ["run", TINY, "--weights", str(bad), "--out", "o"], 2, "not a readable .npz",
                 "not a zip archive")
    assert "pickle" not in err


def test_api_out_must_be_a_path(work):
    from flexspec.errors import UsageError
    from flexspec.pipeline import run

    with pytest.raises(UsageError, match="out must be a folder path .*int 123"):
        run(tiny_network(), out=123, progress=False)


def test_banks_default_in_help_is_what_the_run_uses(work, capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "B x R = 20 x 2" in " ".join(capsys.readouterr().out.split())
    assert main(["run", TINY, "--out", "o", "--no-html", "--quiet"]) == 0
    capsys.readouterr()
    import json

    assert json.loads((work / "o" / "report.json").read_text())["design"]["accelerator"]["banks"] == 20


def test_quiet_prints_no_table_and_the_provenance_once(work, capsys):
    assert main(["run", TINY, "--out", "o", "--no-html", "--quiet"]) == 0
    cap = capsys.readouterr()
    assert "every layer" not in cap.out and "[1/7]" not in cap.err
    assert main(["run", TINY, "--out", "o2", "--no-html"]) == 0
    out = capsys.readouterr().out
    assert "every layer" in out
    assert out.count("seeded random masks, exactly round") == 1


def test_columns_are_not_cut_when_output_is_not_a_terminal(work, capsys, monkeypatch):
    from flexspec.workload import zoo
    from flexspec.workload.layers import ConvLayer, Network

    long = "a_convolution_layer_with_a_really_long_descriptive_name"
    monkeypatch.setitem(zoo.NETWORKS, "longnames", lambda: Network("longnames", (8, 16, 16), (
        ConvLayer(long, 8, 16, 16, 16, 3, 1, 1), ConvLayer(long + "_2", 16, 16, 16, 16, 3, 1, 1))))
    assert main(["run", "longnames", "--out", "o", "--no-html"]) == 0
    out = capsys.readouterr().out
    assert long + "_2" in out and "…" not in out


def test_run_and_simulate_print_the_same_speedup_for_the_same_design(work, capsys):
    design = ["--arrays", "4", "--pes", "16", "--banks", "8"]
    assert main(["run", TINY, "--out", "o", "--no-html", "--quiet", *design]) == 0
    run_out = capsys.readouterr().out
    assert main(["simulate", TINY, "--device", "u200", *design]) == 0
    sim_out = capsys.readouterr().out
    lines = [ln.strip() for ln in run_out.splitlines() if ln.strip().startswith("vs kernel-reuse: speed-up")]
    assert len(lines) == 1 and lines[0] in sim_out


def test_model_file_of_unknown_format_fails_before_the_pipeline(work, capsys):
    (work / "model.h5").write_bytes(b"x")
    err = _fails(work, capsys, ["run", "model.h5", "--out", "o"], 2, "unknown model format '.h5'", ".onnx", ".pt2")
    assert "[1/7]" not in err and err.count("\n") == 1
    _fails(work, capsys, ["run", "missing.onnx", "--out", "o"], 2, "missing.onnx: no such file")
