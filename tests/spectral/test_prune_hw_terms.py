"""benchmarks/bench_prune_hw.py's binding terms (what binds each layer of the shipped hardware-aware model)
against the engine's own event recurrence and the useful MACs: the terms are per-tile sums, the
recurrence (``accel.engine.pass_events``) steps the pass edge by edge."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.sim import engine_layer_cycles, simulate_network
from flexspec.spectral import real_model as rm
from flexspec.workload.zoo import get_network

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_prune_hw.py"


@pytest.fixture(scope="module")
def measured():
    spec = importlib.util.spec_from_file_location("bench_prune_hw", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    net = get_network("fmnist_vgg")
    kernels = rm.load_pruned("admm_hw", 0.25)
    # 32 FFT/IFFT engines dealt tile by tile ("tiles"), so that the engines never bind this one array: a
    # shared pool's one array row would keep one IFFT busy (flexspec.accel.ifft_assign)
    cfg = AcceleratorConfig(arrays=1, pes=16, banks=16, ports=2, fft_engines=32, ifft_engines=32, readout_rows=8,
                            array_split="tiles")
    result = simulate_network(net, "u200", cfg, kernels)
    return bench, net, kernels, cfg, result, bench.binding_terms(net, kernels, result)


def test_pe_array_term_is_at_least_the_useful_macs_per_pe(measured):
    _, _, _, cfg, result, terms = measured
    for lay in result.layers:
        t = terms[lay.name]
        assert t["pe_array"] >= lay.useful_macs / cfg.pes - 1e-9
        assert t["engine_cycles"] >= t["pe_array"]  # the array never issues faster than its program
        assert t["bound"] == max(("pe_array", "readout", "tile_load", "fft", "ifft", "memory", "fill"),
                                 key=lambda k: t[k]) and t["compute_bound"] == (t["bound"] == "pe_array")
    # equal non-zeros per kernel, two ports: conflict-free and balanced, so exactly the PE bound
    for name in ("conv3_1", "conv3_2"):
        assert terms[name]["pe_array"] == result.layer(name).useful_macs / cfg.pes


@pytest.mark.parametrize("name, bound", [("conv1_1", "readout"), ("conv2_1", "pe_array")])
def test_the_binding_term_is_what_the_whole_layer_pass_takes(measured, name, bound):
    """conv1_1 (one input channel: 10 MAC cycles a tile against 16 x 5 read-out requests) and conv2_1
    (one kernel block, 16 input channels) run as one pass of the whole layer: the engine's recurrence
    over all its tiles takes the binding term plus a fill and drain shorter than two tiles of it."""
    _, _, kernels, cfg, result, terms = measured
    t = terms[name]
    assert t["bound"] == bound
    mask = kernels.layers[name].mask()
    mask = mask.reshape(mask.shape[0], mask.shape[1], -1)
    tiles = int(round(result.layer(name).useful_macs / mask.sum()))
    cycles = engine_layer_cycles(mask, cfg, tiles, bank_of=kernels.bank_map(name, cfg.banks))
    assert 0 <= cycles - t[bound] <= 2 * t[bound] / tiles  # measured: 27 (conv1_1) and 223 (conv2_1) cycles
    assert np.isclose(t["engine_cycles"], t[bound], rtol=0.02)


def test_a_design_of_several_arrays_is_refused(measured):
    bench, net, kernels, cfg, _, _ = measured
    from flexspec.errors import UsageError

    two = simulate_network(net, "u200", AcceleratorConfig(arrays=2, pes=16, banks=16, ports=2), kernels)
    with pytest.raises(UsageError, match="one array"):
        bench.binding_terms(net, kernels, two)
