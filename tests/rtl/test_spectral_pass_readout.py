"""Read-out rows per request (``readout_rows`` = K < N): the accumulators packed K memories per PE
(at K = 1 each half its own memory, its one read port shared by the accumulate and the read-out),
the drainer's N/K requests a column and its column assembler.  In Verilator the streamed columns
are bit exact with brute-force sums, the output beats keep SpectralPass's contract (one column of
N a beat, same order, ``o_last`` on a tile's last beat), and the cycles equal the engine's cycle
model to the cycle at every K (drain bound at K = 1, so a model charging one request a column
would be off by thousands of cycles)."""

from __future__ import annotations

import numpy as np
import pytest

from flexspec.accel import engine
from flexspec.errors import UsageError
from flexspec.rtl import GroupSpec, PEArrayConfig, build_program, reference_accumulators
from flexspec.rtl.verilator import verilator_available
from flexspec.schedule import schedule_groups

I16 = (-(2**15), 2**15)
P4, B4, N8, CIN, COUT = 4, 4, 8, 2, 6


def _config(k: int) -> PEArrayConfig:
    return PEArrayConfig(P4, B4, 1, N8, tuple(f % B4 for f in range(40)), schedule_depth=256, in_channels=CIN,
                         acc_channels=COUT, readout_rows=k)


def _program(cfg, rng, groups=4, density=0.3):
    masks = rng.random((groups, P4, cfg.num_freq)) < density
    sched = schedule_groups(masks, B4, 1, bank_map=np.asarray(cfg.bank_of))
    specs = []
    for g in range(groups):
        kr, ki = rng.integers(*I16, (2, P4, cfg.num_freq))
        specs.append(GroupSpec(sched.group_table(g), g % CIN, rng.permutation(COUT)[:P4], kr * masks[g], ki * masks[g]))
    return specs, sched


def test_readout_rows_must_divide_n_as_a_power_of_two():
    assert _config(0).readout_rows == N8 and _config(2).readout_beats_per_column == 4
    assert _config(1).acc_lane_depth == 8 * _config(8).acc_lane_depth  # K memories, N/K times deeper
    assert [_config(k).acc_split_halves for k in (1, 2, 4, 8)] == [True, False, False, False]
    for bad in (3, 16, -1, 6):
        with pytest.raises(UsageError, match="readout_rows"):
            _config(bad)
    assert engine.readout_requests(6, 8, 2) == 6 * 5 * 4 and engine.readout_requests(6, 8) == 6 * 5
    with pytest.raises(UsageError, match="readout_rows"):
        engine.readout_requests(6, 8, 3)


@pytest.mark.skipif(not verilator_available(),
                    reason="verilator (and a C++ compiler) not installed; Debian: apt-get install -y verilator")
@pytest.mark.parametrize("k", [2, 1])
def test_spectral_pass_bit_exact_and_cycle_exact_at_fewer_readout_rows(tmp_path, k):
    pytest.importorskip("amaranth")
    from flexspec.rtl.verilate import verilate_spectral_pass  # amaranth (optional dependency)

    rng = np.random.default_rng(5 + k)
    cfg = _config(k)
    specs, sched = _program(cfg, rng)
    prog = build_program(cfg, specs)
    tiles = [tuple(rng.integers(*I16, (2, CIN, cfg.num_freq))) for _ in range(4)]
    r = verilate_spectral_pass(cfg, prog, tiles, tmp_path)
    for t, tile in enumerate(tiles):
        er, ei = reference_accumulators(cfg, specs, *tile)
        assert np.array_equal(r["acc_re"][t], er) and np.array_equal(r["acc_im"][t], ei)
    shape = engine.pass_shape(sched.cycles, CIN, COUT, cfg.bank_of, B4, P4, N8, readout_rows=k)
    assert r["cycles"] == shape.cycles(len(tiles))
    ev = engine.pass_events(shape.rows_per_tile, shape.program_cycles, shape.outputs_per_tile, len(tiles),
                            shape.readout_cycles)
    # the first output beat of each tile: its drain's first N/K requests, the read-out latency, the FIFO
    lat = cfg.readout_latency_cycles
    g = cfg.readout_beats_per_column
    assert r["first_beat_cycles"] == [int(s) + g + lat + engine.OUTPUT_CYCLES - 1 for s in ev.drain_start]
    full = engine.pass_shape(sched.cycles, CIN, COUT, cfg.bank_of, B4, P4, N8)
    assert shape.interval() > full.interval()  # drain bound here: the model must charge N/K requests a column
    assert not r["conflict"]
