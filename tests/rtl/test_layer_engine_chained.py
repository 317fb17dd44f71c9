"""The layer engine keeping a tile's partial sums in the accumulators across its cin blocks (a
*chained* walk: cin loop innermost, one-tile blocks): no read-out and no psum-FIFO round trip
between the cin blocks of a tile, one read-out after the last.  Bit-exact with the fixed-point
functional model (which never blocks) and cycle-exact with the engine's chain-by-chain cycle model,
in Amaranth's simulator and in Verilator; a read-out inserted between the cin blocks, accumulators
cleared between them (the programs forget the chain) and an early done are caught.  The chain rule
(``layer_events.cin_chained``) is checked against the walk itself, and the simulator's and the
blocking rule's charge of a chained walk against the engine's cycle model."""

from __future__ import annotations

import numpy as np
import pytest

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.grouping import schedule_layer_blocks
from flexspec.accel.layer_events import EngineGeometry, blocked_engine_geometry, cin_chained, engine_cycles
from flexspec.accel.pe_rule import blocking_cycles, kernel_bank_reads
from flexspec.dataflow.model import ORDERS, LayerModel
from flexspec.rtl import engine_case as engine_case_module
from flexspec.rtl.engine_case import EngineBlocking
from flexspec.rtl.engine_case import random_engine_case as small_case
from flexspec.rtl.program import build_program
from flexspec.rtl.verilator import verilator_available
from flexspec.schedule.model import resolve_bank_map
from flexspec.workload.layers import ConvLayer

pytest.importorskip("amaranth")

from flexspec.rtl.engine_cosim import simulate_engine, verilate_engine  # noqa: E402

#: n, cin, cout, height, width, pes, banks, ports, density, seed: 3 input and 5 output channels,
#: 2 x 2 tiles of N = 4
LAYER = (4, 3, 5, 4, 4, 2, 4, 1, 0.4, 1)


def _case(blocking, readout_rows=0):
    return small_case(*LAYER, blocking=blocking, readout_rows=readout_rows)[0]


def _chains_by_walk(g: EngineGeometry) -> bool:
    """Brute force on the walk: every run of a later cin block follows the run of the same tile and
    cout block with the cin block before it."""
    runs = g.runs.tolist()
    return g.cin_blocks > 1 and all(ib == 0 or (k and runs[k - 1] == [ob, ib - 1, t])
                                    for k, (ob, ib, t) in enumerate(runs))


def test_chain_rule_is_the_walk():
    """``cin_chained`` (what the simulator and the blocking rule use) says a walk chains exactly when
    its runs do, over every order and a grid of blockings, with the vectorized form agreeing."""
    rows, flags = [], []
    for order in ORDERS:
        for bo, bi, bt in [(3, 2, 1), (3, 2, 2), (7, 2, 1), (3, 5, 1), (7, 5, 1), (3, 2, 16), (0, 2, 1)]:
            for height in (6, 20):  # one tile, 4 x 4 tiles
                g = EngineGeometry(8, 3, 1, height, height, 5, 7, 1, 1, 4, 0, bo, bi, bt, order)
                n_t = -(-g.tiles // g.bt)
                assert g.chained == _chains_by_walk(g), (order, bo, bi, bt, height)
                rows.append(([order.index(x) for x in "oit"], g.cout_blocks, g.cin_blocks, n_t, g.bt))
                flags.append(g.chained)
    pos = np.array([r[0] for r in rows]).T
    vec = cin_chained(pos, *(np.array([r[k] for r in rows]) for k in range(1, 5)))
    assert vec.tolist() == flags and any(flags) and not all(flags)
    # a tile block of several tiles chains only where the arrays hold them (a tile an array)
    assert not cin_chained("oti", 2, 3, 4, 2) and cin_chained("oti", 2, 3, 4, 2, tiles_at_once=2)


@pytest.mark.parametrize("blocking,k", [(EngineBlocking(2, 1, 1, "toi"), 0), (EngineBlocking(3, 2, 1, "oti"), 1)])
def test_chained_engine_bit_and_cycle_exact(blocking, k):
    case = _case(blocking, k)
    g = case.spec.geometry
    assert g.chained and g.cout_blocks > 1 and g.cin_blocks > 1 and g.psum_beats_in_flight == 0
    res = simulate_engine(case)
    want = case.expected_output()
    assert np.array_equal(res["output"], want) and res["writes"] == want.size
    assert res["cycles"] == engine_cycles(g)
    assert not res["conflict"]
    # later cin blocks continue the sums: their programs set no `first` flag where an earlier cin
    # block of the chain already contributed, and the read-out mask covers the whole chain
    runs = case.spec.runs
    assert [r[5:] for r in runs[:g.cin_blocks]] == [(1, 0)] + [(0, 0)] * (g.cin_blocks - 2) + [(0, 1)]


def test_read_out_between_cin_blocks_cleared_accumulators_and_early_done_are_caught(monkeypatch):
    case = _case(EngineBlocking(2, 1, 1, "toi"))
    want = case.expected_output()
    split = simulate_engine(case, _fault="readout_each_run")  # a read-out after every cin block
    assert not np.array_equal(split["output"], want)
    early = simulate_engine(case, _fault="early_done")
    assert early["cycles"] != engine_cycles(case.spec.geometry)
    # the programs forget the chain: every cin block starts its accumulators from zero
    monkeypatch.setattr(engine_case_module, "build_program", lambda pe, groups, prior=None: build_program(pe, groups))
    cleared = _case(EngineBlocking(2, 1, 1, "toi"))
    res = simulate_engine(cleared)
    assert not np.array_equal(res["output"], want)


@pytest.mark.skipif(not verilator_available(),
                    reason="verilator (and a C++ compiler) not installed; Debian: apt-get install -y verilator")
def test_chained_engine_in_verilator(tmp_path):
    """Two cout blocks x three cin blocks, order 'toi', at K = 1 (one accumulator memory per half)."""
    case = _case(EngineBlocking(3, 1, 1, "toi"), 1)
    g = case.spec.geometry
    assert g.chained and g.cout_blocks > 1 and g.cin_blocks == 3
    r = verilate_engine(case, tmp_path)
    want = case.expected_output()
    assert np.array_equal(r["output"], want) and r["writes"] == want.size
    assert r["cycles"] == engine_cycles(g)
    assert not r["conflict"]


def test_rule_charges_a_chained_walk_as_the_engine_spends_it():
    """A compute-bound layer (64 x 64, K = 1, one array) in cin blocks of 16: the blocking rule's
    PE-array cycles per tile of each walk against the engine cycle model's cycles per tile (its
    layer at 20 x 20 minus at 7 x 7, over the 12 tiles between: the fill and the last read-out
    cancel; the simulator charges those once per layer).  The chained walk ('oti', one-tile
    blocks) reads each tile's 64 accumulators out once instead of four times: measured (2026-11-30)
    5,484 cycles a tile against 10,244 for 'oit', in both, to 0.01%."""
    cin, cout = 64, 64
    mask = np.random.default_rng(0).random((cout, cin, 40)) < 0.25
    cfg = AcceleratorConfig(arrays=1, pes=8, banks=20, ports=2, fft_engines=1, ifft_engines=1, fft_size=8,
                            readout_rows=1)
    bank_of = resolve_bank_map("auto", mask, cfg.banks)
    reads = kernel_bank_reads(mask, bank_of, cfg.banks)
    sch = schedule_layer_blocks(mask, cfg, cout)
    rule, engine = {}, {}
    for order in ("oti", "oit"):
        spent = []
        for h in (7, 20):
            model = LayerModel(ConvLayer("c", cin, cout, h, h, 3, padding=1), mask, 8)
            tiles = model.geom.tiles
            bt = 1 if order == "oti" else tiles
            cands = {"cout_block": np.array([cout]), "cin_block": np.array([16]), "tile_block": np.array([bt]),
                     "cout_blocks": np.array([1]), "cin_blocks": np.array([4]), "tile_blocks": np.array([tiles // bt]),
                     "order_index": np.array([ORDERS.index(order)]), "forward_ffts": np.array([cin * tiles])}
            rule[order] = blocking_cycles(model, cands, cfg, bank_of, reads, stream=False)["compute"][0] / tiles
            geom = blocked_engine_geometry(sch.cycles, sch.schedule.bank_of, cfg.banks, cfg.pes, 8, cin, cout, h, h,
                                           cout, 16, bt, order, readout_rows=1)
            assert geom.chained == (order == "oti")
            spent.append((engine_cycles(geom), tiles))
        engine[order] = (spent[1][0] - spent[0][0]) / (spent[1][1] - spent[0][1])
    assert engine["oti"] < 0.6 * engine["oit"]
    for order in rule:
        assert abs(rule[order] / engine[order] - 1) <= 0.01, (order, rule[order], engine[order])
