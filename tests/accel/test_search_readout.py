"""Read-out rows per request as a design axis: the search trades the accumulators' block RAM
against drain cycles, states K in the resolved design, and one more array names the dataflow's
minimum on-chip memory when that is what refuses it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from flexspec.accel import engine
from flexspec.accel.arch import AcceleratorConfig, block_usage
from flexspec.accel.search import (DATAFLOW_MEMORY, READOUT_ROWS, candidates, describe_design, describe_need, shortlist,
                                   estimate_cycles, readout_axis, resolve_design)
from flexspec.devices import load_device
from flexspec.errors import UsageError
from flexspec.workload.zoo import get_network


def test_axis_keeps_the_rows_that_divide_n():
    assert readout_axis(8) == (1, 2, 4, 8) and readout_axis(4) == (1, 2, 4)
    assert set(READOUT_ROWS) >= {1, 2, 4, 8}
    with pytest.raises(UsageError, match="readout_rows"):
        AcceleratorConfig(arrays=1, pes=8, banks=10, ports=1, fft_size=8, readout_rows=3)
    assert AcceleratorConfig(arrays=1, pes=8, banks=10, ports=1, fft_size=8).readout_rows == 8


def test_fewer_rows_a_request_cost_fewer_block_rams_and_more_drain():
    dev = load_device("u200")
    base = AcceleratorConfig(arrays=1, pes=8, banks=20, ports=2, fft_engines=8, ifft_engines=8, fft_size=8)
    bram = {k: block_usage(replace(base, readout_rows=k), dev)[0]["pe_arrays"]["bram_bits"] for k in (1, 2, 4, 8)}
    # N/K-times deeper memories fill the RAMB18s; at K = 1 each half is its own memory (no read-port copy)
    assert bram[8] == 2 * bram[4] == 4 * bram[2] == 8 * bram[1] > 0
    net = get_network("vgg16")
    masks = {lay.name: np.ones((lay.out_channels, lay.in_channels, 40), bool) for lay in net.spectral_layers}
    # conv1_1 (3 input channels) drains 64 x 5 x 8/K requests a tile against 960 cycles of compute
    cyc = {k: estimate_cycles(net, masks, replace(base, readout_rows=k), dev) for k in (1, 8)}
    assert cyc[1] > cyc[8]
    assert engine.readout_requests(64, 8, 1) == 8 * engine.readout_requests(64, 8, 8) == 64 * 5 * 8


def test_search_chooses_k_and_states_it():
    d = resolve_design("u200", 8)
    text = "\n".join(describe_design(d, "u200"))
    assert f"read-out K={d.config.readout_rows} rows a request (searched)" in text
    assert d.config.readout_rows in readout_axis(8)
    space = candidates("u200", 8)
    ks = {c.readout_rows for c in space}
    assert ks == set(readout_axis(8))
    # at K = N the accumulators' block RAM bounds the array count; fewer rows a request allow more arrays
    most = {k: max(c.arrays for c in space if c.readout_rows == k) for k in ks}
    assert most[2] > most[8]
    fixed = resolve_design("u200", 8, readout_rows=8)
    assert fixed.config.readout_rows == 8 and fixed.origin["readout_rows"] == "requested"
    with pytest.raises(UsageError, match="readout-rows 3"):
        resolve_design("u200", 8, readout_rows=3)


def test_dataflow_memory_is_named_in_words():
    line = describe_need(DATAFLOW_MEMORY, (8_388_608, 7_962_624))
    assert "the dataflow's minimum on-chip memory" in line and "8,388,608" in line and "7,962,624" in line
    assert describe_need("lut", (10, 9)) == "lut 10 of 9"


def test_shortlist_simulates_the_best_of_every_readout_k():
    """The top of the ranking, then the best-ranked design of each read-out K not yet in it, in
    ranking order (brute force over a hand-made ranking)."""
    ks = [1, 1, 1, 1, 1, 2, 1, 4, 2, 8]
    ranked = [AcceleratorConfig(arrays=i + 1, pes=8, banks=10, ports=1, readout_rows=k) for i, k in enumerate(ks)]
    got = shortlist(ranked, 4)
    assert got[:4] == ranked[:4]
    assert [c.readout_rows for c in got[4:]] == [2, 4, 8] and got[4] is ranked[5] and got[5] is ranked[7]
    assert shortlist(ranked, 20) == ranked
