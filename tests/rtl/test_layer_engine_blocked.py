"""The layer engine walking a blocked layer (several cout blocks x cin blocks x tile blocks, in a
dataflow loop order): bit-exact with the fixed-point functional model (which never blocks: the
partial sums that leave the accumulators and come back must add up to the same wrapped sums),
cycles equal to the engine's run-by-run cycle model, in Amaranth's simulator and in Verilator;
a lost partial sum and a skipped kernel block are caught (a missing host beat hangs the walk as it
hangs the unblocked engine: test_layer_engine_sim.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from flexspec.accel.layer_events import EngineGeometry, engine_cycles, engine_events
from flexspec.errors import UsageError
from flexspec.rtl.engine_case import EngineBlocking
from flexspec.rtl.engine_case import random_engine_case as small_case
from flexspec.rtl.verilator import verilator_available

pytest.importorskip("amaranth")

from flexspec.rtl.engine_cosim import simulate_engine, verilate_engine  # noqa: E402

#: n, cin, cout, height, width, pes, banks, ports, density, seed: 3 input and 5 output channels,
#: 2 x 2 tiles of N = 4
LAYER = (4, 3, 5, 4, 4, 2, 4, 1, 0.4, 1)


def _case(blocking, readout_rows=0):
    return small_case(*LAYER, blocking=blocking, readout_rows=readout_rows)[0]


def test_walk_runs_every_step_of_the_loop_nest_once():
    """The runs are the loop nest's steps in its order, each step its tile block's tiles: against a
    brute-force nest of Python loops, for every order."""
    for order in ("oit", "oti", "iot", "ito", "toi", "tio"):
        g = EngineGeometry(8, 3, 1, 20, 20, 5, 7, 1, 1, 4, 0, 3, 2, 3, order)  # 4 x 4 tiles
        trips = {"o": range(3), "i": range(3), "t": range(6)}  # blocks: 3, 2 + 2 + 1, tiles 3,3,3,3,3,1
        want = []
        for a in trips[order[0]]:
            for b in trips[order[1]]:
                for c in trips[order[2]]:
                    blk = dict(zip(order, (a, b, c), strict=True))
                    want += [(blk["o"], blk["i"], t) for t in range(3 * blk["t"], min(16, 3 * blk["t"] + 3))]
        assert g.runs.tolist() == [list(w) for w in want]
        assert (g.run_out_channels(2), g.run_in_channels(2)) == (1, 1)


def test_one_block_is_the_unblocked_engine():
    g = EngineGeometry(8, 3, 1, 14, 14, 4, 6, 2, 37, 4, 0)
    whole = replace(g, cout_block=6, cin_block=4, tile_block=2, order="tio")
    assert not whole.blocked and engine_events(whole).cycles == engine_cycles(g)
    with pytest.raises(UsageError, match="permutation of 'oit'"):
        replace(g, order="oio")
    with pytest.raises(UsageError, match="one length per kernel block"):
        replace(g, cin_block=2, block_program_cycles=(3,))


@pytest.mark.parametrize("blocking,k", [(EngineBlocking(2, 2, 3, "oit"), 0), (EngineBlocking(2, 1, 1, "tio"), 0),
                                        (EngineBlocking(3, 2, 1, "oit"), 1)])
def test_blocked_engine_bit_and_cycle_exact(blocking, k):
    """Walks whose partial sums leave the accumulators between cin blocks (the chained walks, cin
    innermost: test_layer_engine_chained.py)."""
    case = _case(blocking, k)
    g = case.spec.geometry
    assert g.cout_blocks > 1 and g.cin_blocks > 1 and not g.chained and g.psum_beats_in_flight > 0
    res = simulate_engine(case)
    want = case.expected_output()
    assert np.array_equal(res["output"], want) and res["writes"] == want.size
    assert res["cycles"] == engine_cycles(g)
    assert not res["conflict"]
    # the walk costs what the model says it does: here more than the one-block engine of the same layer
    assert res["cycles"] != engine_cycles(replace(g, cout_block=0, cin_block=0, block_program_cycles=(),
                                                  program_cycles=sum(g.block_program_cycles)))


def test_lost_partial_sum_and_skipped_block_are_caught():
    case = _case(EngineBlocking(2, 2, 2, "oit"))
    lost = simulate_engine(case, _fault="drop_psum")
    assert not np.array_equal(lost["output"], case.expected_output())
    # kernel block 0's words skipped but its first (the controller's table says one word)
    spec = case.spec
    g = spec.geometry
    skipped = replace(spec, geometry=replace(g, block_program_cycles=(1,) + g.block_program_cycles[1:]))
    res = simulate_engine(case, spec=skipped)
    assert not np.array_equal(res["output"], case.expected_output())


@pytest.mark.skipif(not verilator_available(),
                    reason="verilator (and a C++ compiler) not installed; Debian: apt-get install -y verilator")
def test_blocked_engine_in_verilator(tmp_path):
    """Two cout blocks x two cin blocks, order 'oit' (the simulator's VGG16 order), at K = 1."""
    case = _case(EngineBlocking(3, 2, 3, "oit"), 1)
    r = verilate_engine(case, tmp_path)
    want = case.expected_output()
    assert np.array_equal(r["output"], want) and r["writes"] == want.size
    assert r["cycles"] == engine_cycles(case.spec.geometry)
    assert not r["conflict"]
