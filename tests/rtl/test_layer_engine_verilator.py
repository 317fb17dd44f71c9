"""The whole layer engine compiled by Verilator: bit-exact with the fixed-point functional model,
cycles equal to the engine's cycle model, and input faults caught (one build serves all runs)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from flexspec.accel.layer_events import engine_cycles
from flexspec.rtl.verilator import verilator_available

pytest.importorskip("amaranth")
pytestmark = pytest.mark.skipif(not verilator_available(),
                                reason="verilator (and a C++ compiler) not installed; Debian: apt-get install -y verilator")

from flexspec.rtl.engine_case import random_engine_case as small_case  # noqa: E402

from flexspec.rtl.engine_cosim import verilate_engine  # noqa: E402
from flexspec.rtl.export import ToolError  # noqa: E402


@pytest.fixture(scope="module")
def case_and_work(tmp_path_factory):
    # N = 4 keeps the Verilator build short; the real N = 8 layer runs in test_layer_engine_cli.py
    return small_case(4, 2, 3, 6, 7, 2, 4, 1, 0.4, 1)[0], tmp_path_factory.mktemp("engine")


def test_engine_in_verilator_bit_and_cycle_exact(case_and_work):
    case, work = case_and_work
    r = verilate_engine(case, work)
    want = case.expected_output()
    assert np.array_equal(r["output"], want) and r["writes"] == want.size
    assert r["cycles"] == engine_cycles(case.spec.geometry)
    assert not r["conflict"]


def test_input_faults_are_caught_in_verilator(case_and_work):
    case, work = case_and_work
    beats = case.input_beats()
    flipped = list(beats)
    k = next(i for i, b in enumerate(beats) if b)
    flipped[k] ^= 1 << 14  # one corrupted input sample
    r = verilate_engine(case, work, beats=flipped)
    assert not np.array_equal(r["output"], case.expected_output())
    with pytest.raises(ToolError, match="never raised done"):  # one input beat dropped: the engine waits
        verilate_engine(case, work, beats=beats[:-1])


def test_engine_in_verilator_at_one_readout_row(tmp_path):
    """The headline's read-out (K = 1: a column every N cycles) on the small N = 4 layer: bit exact,
    and the cycles are the model's, which differ from the K = N model's."""
    case = small_case(4, 2, 3, 6, 7, 2, 4, 1, 0.4, 1, readout_rows=1)[0]
    r = verilate_engine(case, tmp_path)
    assert np.array_equal(r["output"], case.expected_output())
    assert r["cycles"] == engine_cycles(case.spec.geometry)
    assert r["cycles"] != engine_cycles(replace(case.spec.geometry, readout_rows=0))
    assert not r["conflict"]
