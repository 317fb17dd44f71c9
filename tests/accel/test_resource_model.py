"""The synthesis-calibrated resource model, the design search's limits and the one compute rate."""

import json
import shutil
from dataclasses import replace

import pytest

from flexspec.accel import calibrate
from flexspec.accel.arch import AcceleratorConfig, block_usage, resources
from flexspec.accel.layer_events import output_fifo_beats, output_fifo_width_bits
from flexspec.accel.resource_model import (MODEL_PATH, block_cost, fifo_bram18, load_model, output_fifo_cost,
                                           synthesize_output_fifo, transform_cost)
from flexspec.accel.search import DATAFLOW_MEMORY, describe_design, max_arrays, one_more_array, resolve_design
from flexspec.accel.sim import budget_of
from flexspec.dataflow.budget import budget_from_device
from flexspec.devices import RESOURCE_KEYS, load_device
from flexspec.errors import DoesNotFitError

SIX = ("u200", "u250", "vcu118", "zcu102", "vc709", "s10gx2800")
RESULTS = MODEL_PATH.parents[3] / "benchmarks" / "results"


def _rows() -> list:
    """Every stored calibration synthesis (benchmarks/calibrate_resources.py)."""
    return [r for path in sorted(RESULTS.glob("synthesis_rows_*.json")) for r in json.loads(path.read_text())]


def test_stored_model_has_provenance_and_held_out_errors():
    m = load_model()
    assert m["yosys"].startswith("Yosys")
    assert "synth_xilinx -family xcup" in m["provenance"]["commands"]["xcup"]
    fam = m["blocks"]["pe_array"]["families"]["xcup"]
    held = {json.dumps(p, sort_keys=True) for p in calibrate.BLOCKS["pe_array"].held_out("xcup")}
    assert not held & {json.dumps(p, sort_keys=True) for p in fam["fitted_points"]}  # held out means not fitted
    assert fam["held_out"]["lut"], "no held-out points were synthesized"


def test_model_reproduces_the_synthesized_rows():
    """The fitted model against every stored synthesis row of the PE array: sizes held out of the
    fit within 10% on LUT and FF (the issue's target), every row within 15% (LUT) and 20% (FF),
    DSPs exact (3 DSP48 per PE), and block RAM exact (the accumulators deeper than 64 words: two
    RAMB18 copies per 36 bits of every row bank)."""
    rows = _rows()
    assert {r["family"] for r in rows} >= {"xcup", "xc7"}
    block = calibrate.BLOCKS["pe_array"]
    n_held = 0
    for row in rows:
        if row["block"] != "pe_array":
            continue
        pred = block_cost("pe_array", row["family"], row["params"])
        assert row["dsp"] == 3 * row["params"]["pes"] == round(pred["dsp"])
        assert row["bram18"] == round(pred["bram18"]), (row["family"], row["params"], pred["bram18"])
        is_held = row["params"] in [dict(p) for p in block.held_out(row["family"])]
        n_held += is_held
        for res, tol in (("lut", 0.10 if is_held else 0.15), ("ff", 0.10 if is_held else 0.20)):
            assert abs(pred[res] - row[res]) <= tol * row[res], (row["family"], row["params"], res, pred[res], row[res])
    assert n_held >= 1


def test_stored_rows_are_of_the_current_rtl():
    """Every stored synthesis row (PE array, FFT, IFFT) was made from the Verilog the generator emits
    now (a changed block makes the fit stale: recalibrate with benchmarks/calibrate_resources.py)."""
    pytest.importorskip("amaranth")
    digests = {}
    for row in _rows():
        key = (row["block"], json.dumps(row["params"], sort_keys=True))
        if key not in digests:
            digests[key] = calibrate.verilog_digest(calibrate.BLOCKS[row["block"]], row["params"])
        assert row.get("verilog_sha256") == digests[key], (row["block"], row["family"], row["params"])


@pytest.mark.skipif(shutil.which("yosys") is None, reason="Debian 'yosys' not installed")
def test_stored_fit_against_a_fresh_synthesis():
    """Synthesize the smallest calibration point again now: the counts equal the stored row (same
    Yosys, same command) and the model stays within 10% on LUT and FF, exact on DSPs."""
    pytest.importorskip("amaranth")
    block = calibrate.BLOCKS["pe_array"]
    params = min(block.fit_points, key=lambda p: (p["pes"], p["fft_size"], p["banks"]))
    fresh = calibrate.synthesize(block, params, "xcup", timeout_seconds=300, depth=False)
    stored = [r for r in _rows() if r["block"] == "pe_array" and r["family"] == "xcup" and r["params"] == params]
    assert stored and stored[0]["yosys"] == calibrate.yosys_version()
    assert fresh["verilog_sha256"] == stored[0]["verilog_sha256"]  # the same RTL as the stored row
    assert fresh["cells"] == stored[0]["cells"]
    pred = block_cost("pe_array", "xcup", params)
    assert round(pred["dsp"]) == fresh["dsp"] == 3 * params["pes"]
    for res in ("lut", "ff"):
        assert abs(pred[res] - fresh[res]) <= 0.10 * fresh[res], (res, pred[res], fresh[res])


def test_logic_depth_of_a_hand_built_netlist():
    """FF -> LUT -> MUXF7 -> LUT -> FF, and FF -> LUTRAM read -> CARRY -> CARRY -> LUTRAM write."""

    def cell(t, ins, outs, params=None):
        pd = {**{p: "input" for p in ins}, **{p: "output" for p in outs}}
        return {"type": t, "parameters": params or {}, "port_directions": pd, "connections": {**ins, **outs}}

    cells = {
        "ff0": cell("FDRE", {"D": [20]}, {"Q": [1]}),
        "l1": cell("LUT2", {"I0": [1], "I1": [1]}, {"O": [2]}),
        "m": cell("MUXF7", {"I0": [2], "I1": [2], "S": [1]}, {"O": [3]}),
        "l2": cell("LUT1", {"I0": [3]}, {"O": [4]}),
        "ff1": cell("FDRE", {"D": [4]}, {"Q": [5]}),
        "ram": cell("RAM64X1D", {"A0": [5], "DPRA0": [5], "D": [8], "WE": [5]}, {"SPO": [6], "DPO": [9]}),
        "c0": cell("CARRY4", {"DI": [6], "S": [6]}, {"CO": [7]}),
        "c1": cell("CARRY4", {"CI": [7], "S": [6]}, {"O": [8]}),
    }
    d = calibrate.logic_depth({"modules": {"top": {"cells": cells}}}, "top")
    assert d["lut_levels"] == 2  # l1, l2 (the MUXF7 adds no LUT level)
    assert d["longest_carry_cells"] == 2 and d["longest_carry_lut_levels"] == 1  # the LUT-RAM read


def test_classify_counts_lutram_inside_luts():
    got = calibrate.classify({"LUT6": 10, "LUT2": 5, "RAM64X1D": 3, "RAM32M16": 1, "FDRE": 7, "DSP48E2": 2,
                              "RAMB36E2": 1, "CARRY8": 4, "MUXF7": 9})
    assert got == {"lut": 10 + 5 + 3 * 2 + 8, "lutram": 14, "ff": 7, "dsp": 2, "bram18": 2, "uram": 0, "carry": 4}
    with pytest.raises(calibrate.CalibrationError, match="GTYE4"):
        calibrate.classify({"GTYE4_CHANNEL": 1})


def test_fft_and_ifft_engines_are_costed_by_their_synthesis():
    """The FFT/IFFT engines' cost is the fit of their own synthesized rows (Yosys, UltraScale+):
    sizes held out within 10% on LUT and FF, DSPs exact; other families use that fit, marked
    estimated in every design on them."""
    rows = [r for r in _rows() if r["block"] in ("fft2d", "ifft2d")]
    assert {r["block"] for r in rows} == {"fft2d", "ifft2d"}
    held = 0
    for row in rows:
        p = row["params"]
        cost, note = transform_cost(p["n"], p["in_bits"], p["inverse"], row["family"])
        assert note is None
        assert round(cost["dsp"]) == row["dsp"], (p, cost["dsp"], row["dsp"])
        is_held = p in [dict(q) for q in calibrate.BLOCKS[row["block"]].held_out(row["family"])]
        held += is_held
        for res in ("lut", "ff"):
            assert abs(cost[res] - row[res]) <= (0.10 if is_held else 0.15) * row[res], (p, res, cost[res], row[res])
    assert held >= 2
    _, note = transform_cost(8, 16, True, "xc7")
    assert "no xc7 synthesis" in note
    cfg = AcceleratorConfig(arrays=1, pes=8, banks=10, ports=1, fft_engines=8, ifft_engines=8, fft_size=8)
    assert any("ifft2d on xc7" in e for e in resources(cfg, load_device("vc709")).estimated)
    assert not any("fft2d" in e for e in resources(cfg, load_device("u200")).estimated)


@pytest.mark.parametrize("device", SIX)
def test_searched_design_fits_and_one_more_array_does_not(device):
    d = resolve_design(device, 8)
    dev = load_device(device)
    r = resources(d.config, dev)
    for k in RESOURCE_KEYS:
        assert r.used[k] <= dev.available(k)
    bigger = replace(d.config, arrays=d.config.arrays + 1)
    more = one_more_array(d.config, dev)
    if not more:  # one more array fits every resource, but the generated pool cannot build it (F | a_t)
        assert not bigger.buildable
        resources(bigger, dev)
        assert "one more array fits the resources, but not the generated RTL" in "\n".join(describe_design(d, dev))
        return
    with pytest.raises(DoesNotFitError) as exc:
        resources(bigger, dev)
    assert more and more == d.next_array  # one more array is refused: the reason is named
    for k, (need, have) in more.items():
        if k == DATAFLOW_MEMORY:  # every resource would fit, but not the dataflow's minimum of on-chip memory
            assert len(more) == 1 and d.bound_by == DATAFLOW_MEMORY
            assert f"dataflow buffers: {have:,} bits left, at least {need:,} needed" in str(exc.value)
            text = "\n".join(describe_design(d, dev))
            assert "bound by: on-chip memory for the dataflow" in text and "minimum on-chip memory" in text
        else:
            assert f"{k} {need:,}" in str(exc.value) and f"{have:,} are available" in str(exc.value)
            assert d.bound_by in more
    assert max_arrays(d.config, dev) == d.config.arrays


def test_overrides_change_only_their_axis():
    """--arrays does not silently change the FFT engines: each axis says where it came from, a
    requested axis keeps its value, and the lines name every resource."""
    free = resolve_design("u200", 8)
    fixed = resolve_design("u200", 8, arrays=4, fft_engines=2)
    assert fixed.config.arrays == 4 and fixed.config.fft_engines == 2 != free.config.fft_engines
    assert fixed.origin["arrays"] == "requested" and fixed.origin["fft_engines"] == "requested"
    assert fixed.origin["pes"] == "searched"
    text = "\n".join(describe_design(fixed, "u200"))
    for k in RESOURCE_KEYS:
        assert k in text
    assert "A=4 arrays (requested)" in text and "180 MHz" in text
    with pytest.raises(DoesNotFitError, match=r"needs lut [\d,]+ .* are available"):
        resolve_design("u200", 8, arrays=500)


def test_one_compute_rate_for_budget_simulator_and_roofline():
    dev = load_device("u200")
    cfg = resolve_design(dev, 8).config
    res = resources(cfg, dev)
    sim_budget = budget_of(cfg, dev, res)
    # the IFFTs a split lets serve, by hand: slice g on IFFT g mod E, so a_g slices keep
    # a_g / ceil(a_g / E) of the E engines busy (the most over the design's splits)
    serving = max(a_g / -(-a_g // cfg.ifft_engines) for a_g in cfg.group_splits)
    engines = min(cfg.fft_engines, serving)
    flow_budget = budget_from_device(dev, pe_count=cfg.pe_count, fft_engines=engines,
                                     onchip_bytes=res.dataflow_bits // 8)
    assert sim_budget == flow_budget
    assert sim_budget.macs_per_second == cfg.arrays * cfg.pes * 180e6  # A x P x clock, by hand
    assert sim_budget.ffts_per_second == engines * 180e6 / 8


def test_block_usage_is_linear_in_arrays():
    dev = load_device("vc709")
    cfg = AcceleratorConfig(arrays=1, pes=16, banks=20, ports=2, fft_engines=8, ifft_engines=8)
    one, _ = block_usage(cfg, dev)
    five, _ = block_usage(replace(cfg, arrays=5), dev)
    for k in RESOURCE_KEYS:
        assert five["pe_arrays"][k] == pytest.approx(5 * one["pe_arrays"][k])
        assert five["fft_engines"][k] == one["fft_engines"][k]


# ------------------------------------------------------------------- the output FIFOs (issue 12, h12g)
def test_output_fifo_charge_matches_the_stored_synthesis():
    """Every stored Yosys synthesis of the output FIFO (benchmarks/bench_output_fifo.py: the RTL's
    SyncFIFOBuffered at 8-512 channels a row) without -uram maps to exactly the RAMB18s the model
    charges and to no URAM, and the channel counts are the RTL's depth formula's."""
    entry = load_model()["output_fifo"]
    assert "synth_xilinx -family xcup" in entry["command"] and entry["yosys"].startswith("Yosys")
    assert {r["channels"] for r in entry["rows"]} >= {8, 64}
    for r in entry["rows"]:
        assert r["depth"] == output_fifo_beats(r["channels"], 8) and r["width_bits"] == output_fifo_width_bits(8, 16)
        if not r["uram_flag"]:  # the project's flow (no -uram): what resources() charges
            assert r["bram18"] == fifo_bram18(r["depth"], r["width_bits"]), r
            assert r["uram"] == 0
        else:  # -uram: the deep FIFOs go to URAM288 (BENCHMARKS: the what-if), the shallow ones stay in BRAM
            assert (r["uram"] > 0) == (r["depth"] > 640) and (r["bram18"] == 0) == (r["uram"] > 0), r
            if r["uram"]:  # what resources() charges a FIFO placed in URAM (fifo_memory="uram")
                cost, _ = output_fifo_cost(r["channels"], 8, 16, "xcup", "uram")
                assert cost["uram"] == r["uram"] and cost["bram18"] == 0, r


@pytest.mark.skipif(shutil.which("yosys") is None, reason="Debian 'yosys' not installed")
def test_output_fifo_charge_against_a_fresh_synthesis():
    """One small FIFO (8 channels a row: 80 x 257 bits) synthesized now: resources() charges each
    array exactly the block RAM Yosys maps it to."""
    cfg = AcceleratorConfig(arrays=3, pes=8, banks=10, ports=1, fft_engines=1, ifft_engines=1, readout_rows=1,
                            fifo_channels=8)
    row = synthesize_output_fifo(output_fifo_beats(8, 8), output_fifo_width_bits(8, 16), timeout_seconds=300)
    blocks, _ = block_usage(cfg, load_device("u200"))
    assert row["bram18"] > 0 and row["uram"] == 0
    assert blocks["output_fifos"]["bram_bits"] == 3 * row["bram18"] * 18432


@pytest.mark.skipif(shutil.which("yosys") is None, reason="Debian 'yosys' not installed")
def test_output_fifo_in_uram_against_a_fresh_synthesis():
    """The RTL's FIFO marked ram_style="ultra" (fifo_memory="uram"; 256 channels a row: 2,560 x 257
    bits), synthesized now with -uram: resources() charges each array exactly its URAM288s and no
    block RAM."""
    cfg = AcceleratorConfig(arrays=3, pes=8, banks=10, ports=1, fft_engines=1, ifft_engines=1, readout_rows=1,
                            fifo_channels=256, fifo_memory="uram")
    row = synthesize_output_fifo(output_fifo_beats(256, 8), output_fifo_width_bits(8, 16), uram=True,
                                 memory="uram", timeout_seconds=300)
    blocks, _ = block_usage(cfg, load_device("u200"))
    assert row["uram"] > 0 and row["bram18"] == 0
    assert blocks["output_fifos"]["uram_bits"] == 3 * row["uram"] * 294912
    assert blocks["output_fifos"]["bram_bits"] == 0


def test_output_fifos_scale_with_the_arrays_and_bound_the_search():
    """Each array pays its FIFO (both structures), the searched design pays the FIFO of the network's
    largest Cout, and a design that fitted without the FIFOs is refused naming them."""
    dev = load_device("u200")
    cfg = AcceleratorConfig(arrays=2, pes=8, banks=10, ports=1, fft_engines=2, ifft_engines=2, readout_rows=1)
    two, _ = block_usage(cfg, dev)
    four, _ = block_usage(replace(cfg, arrays=4, fft_engines=4, ifft_engines=4, array_split="tiles"), dev)
    assert four["output_fifos"]["bram_bits"] == 2 * two["output_fifos"]["bram_bits"] > 0
    small, _ = block_usage(replace(cfg, fifo_channels=64), dev)
    assert small["output_fifos"]["bram_bits"] < two["output_fifos"]["bram_bits"]
    # the merged main's U200 headline, buildable engine count (70 x 8, 10 x 1, K = 1, 14/14): BRAM
    head = AcceleratorConfig(arrays=70, pes=8, banks=10, ports=1, fft_engines=14, ifft_engines=14, readout_rows=1)
    with pytest.raises(DoesNotFitError, match=r"needs bram_bits [\d,]+ \(.*output fifos [\d,]+"):
        resources(head, dev)
