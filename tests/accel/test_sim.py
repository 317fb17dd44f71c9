import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flexspec.accel.arch import AcceleratorConfig, resources
from flexspec.devices import load_device
from flexspec.accel.grouping import stored_stream_bits
from flexspec.accel.kernels import random_masks, resolve_kernels
from flexspec.accel.search import BANK_PORTS, BROADCAST, candidates, search_design
from flexspec.accel.sim import (
    ScheduleCache, analyze, compare, layer_steps, pe_array_candidates, pe_balance, precision_of,
    schedule_layer_blocks, simulate_network,
)
from flexspec.cli import main
from flexspec.dataflow import ORDERS, Blocking, LayerModel, trace_traffic
from flexspec.dataflow.network import LayerDataflow
from flexspec.errors import DoesNotFitError
from flexspec.workload.layers import ConvLayer
from flexspec.spectral.geometry import num_tiles
from flexspec.workload.zoo import get_network

SIX = ("u200", "u250", "vcu118", "zcu102", "vc709", "s10gx2800")
#: The design search restricted to P = 8 (the calibrated sizes), B = 20 x R = 2 (A = as many arrays as fit): the searched
#: design that made every plan empty on small layers before the per-family occupancy rule.
SMALL_GRID = {"pes": (8,), "bank_ports": ((20, 2),), "broadcast": (False,)}

#: A design that fits the U200 under the calibrated resource model (LUT-bound; see flexspec.accel.search).
# output FIFOs for 256 channels a row: 512 (VGG16's largest Cout) leaves too little block RAM at K = N here
U200_CFG = AcceleratorConfig(arrays=8, pes=8, banks=40, ports=2, fft_engines=16, ifft_engines=16, fifo_channels=256)


def bernoulli_masks(net, density: float, seed: int) -> dict:
    """Masks with uneven non-zeros per kernel (each position kept with probability ``density``)."""
    rng = np.random.default_rng(seed)
    return {lay.name: rng.random((lay.out_channels, lay.in_channels, 40)) < density for lay in net.spectral_layers}


@pytest.fixture(scope="module")
def vgg16_cmp():
    net = get_network("vgg16")
    masks = bernoulli_masks(net, 0.25, 0)
    return net, masks, compare(net, "u200", U200_CFG, masks)


def test_simulated_bytes_match_the_trace_counter(vgg16_cmp):
    """Every simulated layer's kernel, input and partial-sum bytes and FFT counts against the
    dataflow's independent trace counter (which walks the blocked loop nest block by block),
    for the blocking, input format and residency the simulator ran, in all three designs; kernels
    stored as the schedule stream of each design's schedules at the cout block it ran."""
    net, masks, c = vgg16_cmp
    prec = precision_of(U200_CFG)
    cache = ScheduleCache()
    for r in (c.flexspec, *c.baselines.values()):
        assert r.kernel_storage == "stream"
        for lay in r.layers:
            assert lay.kind == "spectral"
            # the PE-array rule: a multiple of P output channels, or all of them
            assert lay.cout_block % U200_CFG.pes == 0 or lay.cout_block >= net.layer(lay.name).out_channels
            blk = Blocking(lay.order, lay.cout_block, lay.cin_block, lay.tile_block,
                           "spectral" if lay.input_link == "spectral" else "spatial")
            stream = stored_stream_bits(masks[lay.name], U200_CFG, lay.cout_block, cache, r.method)
            assert lay.stored_kernel_bytes * 8 == int(stream.sum())
            t = trace_traffic(net.layer(lay.name), masks[lay.name].sum(axis=2), 8, blk, prec,
                              input_resident=lay.input_link == "resident",
                              output_resident=lay.output_link == "resident", stored_kernel_bits=stream)
            assert (lay.kernels_bytes, lay.inputs_bytes, lay.psums_bytes) == \
                   (t.kernels_bits / 8, t.inputs_bits / 8, t.psums_bits / 8), (r.design, lay.name)
            assert (lay.forward_ffts, lay.inverse_ffts) == (t.forward_ffts, t.inverse_ffts), (r.design, lay.name)
            if lay.output_link == "resident":
                assert lay.outputs_bytes == 0


def test_step_loads_match_brute_force_loop_nest():
    """Unrolled steps vs an independent brute-force walk of the blocked loop nest."""
    net = get_network("vgg16_cifar")
    layer = net.spectral_layers[3]
    mask = random_masks(net, 8, 0.25, 1)[layer.name]
    cfg = AcceleratorConfig(arrays=4, pes=8, banks=40, ports=2)
    prec = precision_of(cfg)
    m = LayerModel(layer, mask.sum(2), 8, prec)
    for order in ("oit", "tio", "ito", "iot"):
        blk = Blocking(order, 32, 16, 3)
        tr = m.traffic(blk)
        ld = LayerDataflow(layer.name, "spectral", tr, tr.kernels_bits, tr.inputs_bits, tr.outputs_bits,
                           tr.psums_bits, tr.onchip_bits, m.bound(), m.complex_macs, 1.0, 1.0)
        st = layer_steps(ld, m, schedule_layer_blocks(mask, cfg, 32), cfg,
                         lambda a_g: schedule_layer_blocks(mask, cfg, 32, slices=a_g))
        loops = {"o": tr.cout_blocks, "i": tr.cin_blocks, "t": tr.tile_blocks}
        prev, kl = {}, 0
        for a in range(loops[order[0]]):
            for b in range(loops[order[1]]):
                for c in range(loops[order[2]]):
                    cur = dict(zip(order, (a, b, c), strict=True))
                    if prev.get("k") != (cur["o"], cur["i"]):
                        kl += int(m.kbits[cur["o"] * 32:(cur["o"] + 1) * 32, cur["i"] * 16:(cur["i"] + 1) * 16].sum())
                    prev["k"] = (cur["o"], cur["i"])
        assert st.totals["kernels_bits"] == kl == tr.kernels_bits
        assert st.totals["psums_bits"] == tr.psums_bits and st.totals["inputs_bits"] == tr.inputs_bits
        assert st.totals["forward_ffts"] == tr.forward_ffts and st.totals["inverse_ffts"] == tr.inverse_ffts


def test_breakdown_bounds_and_efficiency(vgg16_cmp):
    net, masks, c = vgg16_cmp
    r = c.flexspec
    for lay in r.layers:
        parts = (lay.compute_cycles + lay.bank_conflict_cycles + lay.memory_stall_cycles + lay.fft_stall_cycles
                 + lay.fill_cycles)
        assert parts == lay.cycles
        assert lay.cycles >= lay.roofline_cycles
        assert 0 < lay.dsp_efficiency <= 1
        # the definition: useful MACs x DSP/MAC / (PE DSPs x cycles)
        assert lay.dsp_efficiency == pytest.approx(lay.useful_macs / (U200_CFG.pe_count * lay.cycles))
        # uneven masks: no design beats the PE load balance of the best grouping of its cout blocks
        # (balanced_pe_cycles is the brute-force optimal partition, test_balance.py).  On a
        # compute-bound, MAC-bound layer the busy PE arrays (compute + bank-conflict cycles) reach
        # >= 90% of that ceiling times the arrays' tile occupancy, the whole layer (start-up fill and
        # the engine pass's fill/drain included) >= 80% of it
        ceiling = float(pe_balance(masks[lay.name].sum(axis=2), U200_CFG.pes, [lay.cout_block])[0])
        assert lay.dsp_efficiency <= ceiling + 1e-12, lay.name
        if lay.bound == "compute":
            # the A arrays run A different tiles in lockstep: a layer of T tiles leaves
            # A * ceil(T / A) - T array slots idle in its last round (geometry, not the simulator)
            tiles = num_tiles(net.layer(lay.name), U200_CFG.fft_size)
            occupancy = tiles / (U200_CFG.arrays * math.ceil(tiles / U200_CFG.arrays))
            # a tile's accumulators leave one half-plane column (N values) a beat: Cout x (N/2 + 1)
            # beats a tile; where that exceeds the MAC cycles the pass is read-out bound (conv1_1:
            # 3 input channels) and the PEs wait by design (the RTL's interval, tests/rtl)
            readout_beats = net.layer(lay.name).out_channels * (U200_CFG.fft_size // 2 + 1)
            if readout_beats <= masks[lay.name].sum() / U200_CFG.pes:
                busy = lay.compute_cycles + lay.bank_conflict_cycles
                assert lay.useful_macs / (U200_CFG.pe_count * busy) >= 0.9 * ceiling * occupancy, (lay.name, busy, ceiling)
                assert lay.dsp_efficiency >= 0.8 * ceiling * occupancy, (lay.name, lay.dsp_efficiency, ceiling)
        assert sum(lay.bank_load["reads_per_bank"]) > 0
    # (the VGG16 latency requirement is checked on the searched design that fits: test_resource_model.py)
    assert c.baselines["kernel-reuse"].cycles > r.cycles
    d = json.loads(json.dumps(c.to_dict()))
    assert d["flexspec"]["kernels"]["kind"] == "masks" and len(d["flexspec"]["layers"]) == 13
    lay = d["flexspec"]["layers"][0]
    for key in ("compute_cycles", "memory_stall_cycles", "bank_conflict_cycles", "fill_cycles", "kernels_bytes",
                "inputs_bytes", "outputs_bytes", "psums_bytes", "roofline_cycles", "dsp_efficiency", "memory_bound"):
        assert key in lay


@pytest.fixture(scope="module")
def vgg16_schedules():
    """One ScheduleCache for the VGG16 random-mask simulations of this module (same masks)."""
    return ScheduleCache()


@pytest.mark.parametrize("device", SIX)
def test_per_run_estimate_within_5_percent_of_the_step_timing_every_device(device, vgg16_cmp, vgg16_schedules):
    """The simulator's ``estimate_cycles`` against its own step-by-step timing, every VGG16 layer,
    first fitting design of each device.  Not an independent closed form: both come from the same
    per-step arrays; the estimate sums each resource per kernel-block run and tile-block shape and
    takes the largest, the timing takes the largest per step.  This checks that the per-run
    aggregation (what a fast analytical estimate can compute) loses under 5% (u250 conv4_1 has
    uneven 8, 8, 8, 1 tile blocks: the case the per-shape split exists for)."""
    net, masks, _ = vgg16_cmp
    cfg = candidates(device)[0]
    r = simulate_network(net, device, cfg, masks, histograms=False, schedules=vgg16_schedules)
    bad = [(lay.name, round(lay.estimate_error, 3)) for lay in r.layers if abs(lay.estimate_error) > 0.05]
    assert not bad, (device, bad)


def test_conflict_free_schedule_cycles_brute_force():
    net = get_network("vgg16_cifar")
    mask = random_masks(net, 8, 0.25, 3)["conv5_3"]
    cfg = AcceleratorConfig(arrays=1, pes=8, banks=40, ports=2)
    sch = schedule_layer_blocks(mask, cfg, 512)
    # every group: makespan = max(max PE nnz, ceil(max bank reads / R)) (optimal colouring), one bank per f
    gm = np.zeros((sch.groups.shape[0], cfg.pes, 40), bool)
    live = sch.groups >= 0
    gm[live] = mask.reshape(-1, 40)[sch.groups[live]]
    lb = np.maximum(gm.sum(2).max(1), np.ceil(gm.sum(1) / 2).max(1))
    assert np.array_equal(sch.cycles.ravel(), lb)


def test_design_that_does_not_fit_is_refused():
    with pytest.raises(DoesNotFitError, match=r"needs lut [\d,]+ .* but 266,080 are available"):
        resources(AcceleratorConfig(arrays=200, pes=64), load_device("zcu102"))
    cands = candidates("u200")
    assert {(c.banks, c.ports) for c in cands} == set(BANK_PORTS) and {c.broadcast for c in cands} == set(BROADCAST)


def test_kernel_provenance():
    net = get_network("fmnist_vgg")
    masks, nk, src = resolve_kernels(net, "random", density=0.25)
    assert nk is None and src.kind == "random" and not src.is_real
    assert all(m.sum(2).min() == m.sum(2).max() == 10 for m in masks.values())
    masks, nk, src = resolve_kernels(net, None)  # default: the shipped trained model
    assert src.kind == "trained" and src.is_real and nk.target_density == 0.25
    assert abs(nk.density - 0.25) <= 1e-3  # pruning may stop one conjugate pair short
    masks, nk, src = resolve_kernels(get_network("resnet18"), None)
    assert src.kind == "random" and "no real or synthesized" in src.provenance


def test_cli(capsys, tmp_path):
    assert main(["devices"]) == 0
    assert "vc709" in capsys.readouterr().out
    assert main(["simulate", "fmnist_vgg", "--device", "nosuch"]) == 2
    assert main(["simulate", "fmnist_vgg", "--device", "zcu102", "--weights", str(tmp_path / "no.npz")]) == 2
    assert main(["simulate", "fmnist_vgg", "--device", "zcu102", "--arrays", "2", "--pes", "8", "--random-masks",
                 "--functional"]) == 2  # functional needs real weights
    capsys.readouterr()
    assert main(["simulate", "fmnist_vgg", "--device", "zcu102", "--arrays", "50"]) == 1  # does not fit
    err = capsys.readouterr().err
    assert "needs lut" in err and "are available" in err
    out = tmp_path / "r.json"
    assert main(["simulate", "fmnist_vgg", "--device", "zcu102", "--arrays", "2", "--pes", "8", "--functional",
                 "--images", "16", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "A=2 arrays (requested) x P=8 PEs (requested)" in text and "bound by:" in text
    assert "agreement with float" in text and "kernel-reuse" in text
    data = json.loads(out.read_text())
    assert data["flexspec"]["device"] == "zcu102" and set(data["baselines"]) == {"kernel-reuse", "activation-reuse"}
    assert data["headline_baseline"] == "kernel-reuse"
    assert data["flexspec"]["kernels"]["kind"] == "trained"  # real weights by default
    assert data["functional"]["images"] == 16 and all(c["within_bound"] for c in data["functional"]["layers"])
    assert not list(tmp_path.glob("*.tmp"))


def _check_plans(net, results):
    convs = [lay.name for lay in net.conv_layers]
    for r in results:
        assert [lay.name for lay in r.layers] == convs
        for lay in r.layers:
            if lay.kind == "spectral":
                assert lay.cout_block % r.config.pes == 0 or lay.cout_block >= net.layer(lay.name).out_channels
                if r.design == "baseline-kernel-reuse":
                    assert lay.order == "oit"
                if r.design == "baseline-activation-reuse":
                    assert lay.order == "tio"


def test_fmnist_vgg_searched_design_and_baselines_on_every_device():
    """Regression: the PE-array occupancy filter emptied the baseline plans of small networks."""
    net = get_network("fmnist_vgg")
    masks, nk, src = resolve_kernels(net, None)
    assert src.kind == "trained" and src.is_real
    cache = ScheduleCache()
    for dev in SIX:
        best = search_design(net, dev, 8, nk, schedules=cache, **SMALL_GRID)
        assert best.config.pes == 8
        c = compare(net, dev, best.config, masks, histograms=False, schedules=cache)
        _check_plans(net, (c.flexspec, *c.baselines.values()))
        assert c.flexspec.cycles > 0 and all(b.cycles > 0 for b in c.baselines.values())


@pytest.mark.parametrize("name", ["vgg16_cifar", "resnet18"])
def test_small_networks_plan_and_simulate_on_every_device(name):
    """Searched-grid design (P = 8, most arrays) on all six devices: all three plans exist and the
    flexspec design simulates (baselines are simulated on fmnist_vgg above and VGG16 elsewhere)."""
    net = get_network(name)
    masks, _, _ = resolve_kernels(net, None)
    cache = ScheduleCache()
    for dev in SIX:
        cfg = candidates(dev, **SMALL_GRID)[0]
        d = load_device(dev)
        nd = analyze(net, masks, cfg, d, resources(cfg, d))
        assert not nd.infeasible and set(nd.plans) == {"flexible", "kernel-reuse", "activation-reuse"}
        # kernels as packed entries, as ``analyze`` counts them (the stored stream moves the choice)
        r = simulate_network(net, dev, cfg, masks, histograms=False, schedules=cache, kernel_storage="entries")
        _check_plans(net, [r])
        assert [lay.dataflow for lay in r.layers] == [x.dataflow for x in nd.plans["flexible"]]


@settings(max_examples=30, deadline=None)
@given(cout=st.integers(1, 96), cin=st.integers(1, 48), hw=st.integers(1, 40), pes=st.sampled_from([8, 16, 32, 64]),
       arrays=st.integers(1, 120), onchip_kib=st.integers(4, 4096), bits_per_cycle=st.sampled_from([None, 64.0, 2048.0]),
       seed=st.integers(0, 99))
def test_pe_rule_keeps_a_legal_candidate_for_every_plan(cout, cin, hw, pes, arrays, onchip_kib, bits_per_cycle, seed):
    """The PE-array rule as production calls it (uneven non-zeros, with a DRAM rate as
    :func:`analyze` passes it, and without): every plan keeps at least one candidate, every kept
    candidate holds a multiple of P output channels (or all of them) and belongs to its plan's family,
    and the rule only removes candidates (each survivor is one of the unfiltered blockings)."""
    layer = ConvLayer("c", cin, cout, hw, hw, 3, 1, 1)
    nnz = np.random.default_rng(seed).integers(0, 41, size=(cout, cin))
    m = LayerModel(layer, nnz, 8)
    full = m.candidates()
    c = pe_array_candidates(m, m.candidates(), pes, arrays, onchip_kib * 8192, bits_per_cycle)
    assert np.all((c["cout_block"] % pes == 0) | (c["cout_block"] >= cout))
    key = np.stack([full[k] for k in ("order_index", "format_index", "cout_block", "cin_block", "tile_block")], 1)
    kept = np.stack([c[k] for k in ("order_index", "format_index", "cout_block", "cin_block", "tile_block")], 1)
    assert {tuple(r) for r in kept} <= {tuple(r) for r in key}
    for plan, order in (("flexible", None), ("kernel-reuse", "oit"), ("activation-reuse", "tio")):
        ok = c[f"pe_occupancy_ok_{plan}"]
        assert ok.any(), plan
        if order is not None:
            assert np.all(c["order_index"][ok] == ORDERS.index(order)), plan
