"""``flexspec rtl``: the whole layer engine of a real layer of the shipped model, written and (with
Verilator) verified: bit-exact with the functional model, cycles equal to the simulator's model,
and the output within the derived bound of the float OaA convolution of the same pruned kernels."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from flexspec.cli import main
from flexspec.spectral import real_model
from flexspec.spectral.sparse import SparseSpectralKernels, sparse_oaa_conv2d

pytest.importorskip("amaranth")


def test_cli_writes_engine_and_refuses_bad_input(tmp_path, capsys):
    out = tmp_path / "rtl"
    assert main(["rtl", "--layer", "conv1_1", "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"flexspec_layer_engine.v", "README.md", "config.json", "schedule.hex", "readout_mask.hex",
                     "input_stream.hex"}
    readme = (out / "README.md").read_text()
    assert "`flexspec_layer_engine`" in readme and "vendor flow" in readme and "`o_data`" in readme
    verilog = (out / "flexspec_layer_engine.v").read_text()
    assert "module flexspec_layer_engine" in verilog and "flexspec_layer_engine.fft" in verilog and "flexspec_layer_engine.ifft" in verilog
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["geometry"]["tiles"] == 25 and len((out / "input_stream.hex").read_text().split()) == 25 * 1 * 6
    capsys.readouterr()
    bad = tmp_path / "c.yaml"
    for text in ("num_pes: 0\n", "num_pes: 65\n", "ports: 9\n", "data_bits: 40\n", "acc_bits: 20\n",
                 "num_pes: two\n", "num_banks: 41\n", "grouping: first_fit\n", "loop_order: oot\n",
                 "cin_block: -1\n"):
        bad.write_text(text)
        assert main(["rtl", "--config", str(bad), "--layer", "conv1_1", "--out", str(tmp_path / "x")]) == 2, text
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
    assert main(["rtl", "--layer", "conv9", "--out", str(tmp_path / "x")]) == 2
    (tmp_path / "file").write_text("")
    assert main(["rtl", "--layer", "conv1_1", "--out", str(tmp_path / "file" / "sub")]) == 2
    assert not (tmp_path / "x").exists()


def test_cli_missing_verilator_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    from flexspec.rtl import verilator

    monkeypatch.setattr(verilator, "verilator_path", lambda: None)
    assert main(["rtl", "--layer", "conv1_1", "--out", str(tmp_path / "v"), "--verify"]) == 1
    err = capsys.readouterr().err
    assert "verilator not found" in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "v").exists()


@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed (Debian: apt-get install -y verilator)")
def test_cli_verify_real_layer_matches_functional_model_and_float(tmp_path):
    out = tmp_path / "v"
    assert main(["rtl", "--layer", "conv1_1", "--out", str(out), "--verify"]) == 0
    rep = json.loads((out / "verify.json").read_text())
    assert rep["bit_exact"] is True and rep["rtl_cycles"] == rep["simulated_cycles"] > 0
    assert rep["outputs_compared"] == rep["pixels_written"] == 16 * 28 * 28 and rep["conflict"] is False
    x = np.load(out / "input.npy")
    y = np.load(out / "output.npy")
    ssk = SparseSpectralKernels.load(out / "kernels.npz")
    bias = real_model.load_pruned("magnitude", 0.25).biases["conv1_1"]
    want = np.maximum(sparse_oaa_conv2d(x[None].astype(np.float64), ssk, padding=1, bias=bias)[0], 0)
    assert y.shape == want.shape == (16, 28, 28)
    err = np.abs(y - want)
    assert rep["float_pixels_over_bound"] == 0
    assert err.max() <= rep["float_bound_max"] + 1e-6  # float32 output file
    # a real comparison with a bound that is not vacuous: the largest error reaches 1/64 of the largest
    # bound (the functional model's stated tightness), and the bound is a few percent of the output range
    assert rep["float_bound_max"] <= 64 * err.max() and rep["float_bound_max"] < 0.05 * np.abs(want).max()


def test_cli_writes_a_blocked_engine(tmp_path):
    """The engine of conv1_2 (16 -> 16 channels) walking 2 cout blocks x 4 cin blocks x tile blocks of
    5 in the order 'oit': the host stream carries every run's channels (each tile re-streamed per
    cout block), the schedule memory every kernel block's program, the read-out mask one set each."""
    conf = tmp_path / "c.yaml"
    conf.write_text("cout_block: 8\ncin_block: 4\ntile_block: 5\nloop_order: oit\n")
    out = tmp_path / "rtl"
    assert main(["rtl", "--layer", "conv1_2", "--config", str(conf), "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    g = cfg["geometry"]
    assert (g["cout_blocks"], g["cin_blocks"], g["order"]) == (2, 4, "oit")
    assert g["runs"] == 2 * 4 * g["tiles"] and len(g["block_program_cycles"]) == 8
    assert len((out / "input_stream.hex").read_text().split()) == 2 * g["tiles"] * 16 * g["tile"]
    assert len((out / "schedule.hex").read_text().split()) == sum(g["block_program_cycles"])
