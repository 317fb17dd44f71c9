"""The output tail's resource charge (issue 12, h16t): its Yosys fit against the stored and a fresh
synthesis, its size against what the generated RTL's tails hold, and the design search seeing it."""

import json
import math
import re
import shutil

import numpy as np
import pytest

from flexspec.accel import calibrate
from flexspec.accel.arch import AcceleratorConfig, block_usage, tail_params, tail_slices
from flexspec.accel.layer_events import EngineGeometry
from flexspec.accel.resource_model import MODEL_PATH, block_cost, load_model
from flexspec.accel.search import network_tail_extent
from flexspec.devices import load_device
from flexspec.workload.zoo import get_network

RESULTS = MODEL_PATH.parents[3] / "benchmarks" / "results"
BLOCK = calibrate.BLOCKS["output_tail"]


def _rows(family: str) -> list:
    return [r for path in sorted(RESULTS.glob(f"synthesis_rows_{family}*.json")) for r in json.loads(path.read_text())
            if r["block"] == "output_tail" and r["family"] == family]


def test_held_out_tails_within_ten_percent():
    """Every synthesized tail size held out of the xcup fit: LUT and FF within 10% (the issue's bar),
    DSPs exact (the constant multiplies of at least 9 product bits by a non-power of two), block RAM
    none (the carry memories read asynchronously: distributed RAM); fitted sizes within 15%."""
    rows = _rows("xcup")
    held = [dict(p) for p in BLOCK.held_out("xcup")]
    assert {json.dumps(p, sort_keys=True) for p in held} <= {json.dumps(r["params"], sort_keys=True) for r in rows}
    for row in rows:
        pred = block_cost("output_tail", "xcup", row["params"])
        tol = 0.10 if row["params"] in held else 0.15
        assert row["dsp"] == round(pred["dsp"]) == calibrate.tail_dsp_products(
            row["params"]["n"], row["params"]["channels"], row["params"]["tiles_x"], row["params"]["tiles_y"])
        assert row["bram18"] == row["uram"] == 0 and row["lutram"] > 0
        for res in ("lut", "ff", "lutram"):
            assert abs(pred[res] - row[res]) <= tol * row[res], (row["params"], res, pred[res], row[res])


def test_stored_model_has_the_tail_with_provenance():
    fam = load_model()["blocks"]["output_tail"]["families"]["xcup"]
    fitted = {json.dumps(p, sort_keys=True) for p in fam["fitted_points"]}
    assert not fitted & {json.dumps(p, sort_keys=True) for p in BLOCK.held_out("xcup")}
    assert fam["held_out"]["lut"] and "held-out" in fam["method"]
    assert all(d["lut_levels"] > 0 for d in fam["depth"])


@pytest.mark.skipif(shutil.which("yosys") is None, reason="Debian 'yosys' not installed")
def test_tail_fit_against_a_fresh_synthesis():
    """Synthesize the smallest calibration tail again (about 30 s): the same cells as the stored row
    and the fit within 10% on LUT and FF."""
    pytest.importorskip("amaranth")
    params = min(BLOCK.fit_points, key=lambda p: (p["n"], p["channels"] * p["tiles_x"], p["tiles_y"]))
    fresh = calibrate.synthesize(BLOCK, params, "xcup", timeout_seconds=300, depth=False)
    stored = [r for r in _rows("xcup") if r["params"] == params]
    assert stored and stored[0]["yosys"] == calibrate.yosys_version()
    assert fresh["verilog_sha256"] == stored[0]["verilog_sha256"] and fresh["cells"] == stored[0]["cells"]
    pred = block_cost("output_tail", "xcup", params)
    for res in ("lut", "ff"):
        assert abs(pred[res] - fresh[res]) <= 0.10 * fresh[res], (res, pred[res], fresh[res])


def test_carry_memories_are_what_the_rtl_declares():
    """The features' carry memories against the memories the generated tail's Verilog declares
    (every memory but the item ROM, ``ola_runs``: depth x width)."""
    pytest.importorskip("amaranth")
    params = dict(BLOCK.held_out_points[0])
    source = calibrate.verilog_source(BLOCK, params)
    mems = [(int(d) + 1, int(w) + 1) for w, name, d in re.findall(r"reg \[(\d+):0\] (\w+) \[(\d+):0\];", source)
            if name != "ola_runs"]
    want = calibrate.tail_carry_memories(params["n"], params["data_bits"] + calibrate.IFFT_EXTRA_OUT_BITS,
                                         params["channels"], params["tiles_x"])
    assert sorted(mems) == sorted(want)


@pytest.mark.parametrize("a_g,e", [(2, 1), (4, 2), (6, 3), (3, 2), (1, 2), (5, 3), (10, 7)])
def test_tail_slices_count_the_dealing(a_g, e):
    """Slices per tail under "slice g -> IFFT g mod E", counted by brute force over the slices."""
    for t in range(e):
        assert tail_slices(a_g, e, t) == sum(1 for g in range(a_g) if g % e == t)


def test_pool_tails_carry_what_the_cluster_tails_hold():
    """A shared pool whose split builds today (E divides a_g): the generated cluster's tails hold
    (``rtl.cluster_case.tail_items``: their carry memories' channels) at most what ``tail_params``
    charges each of them, and the largest holds exactly that."""
    pytest.importorskip("amaranth")
    from flexspec.accel.functional import calibrate_layer
    from flexspec.rtl.cluster_case import PoolShape, cluster_case, tail_items
    from flexspec.spectral.prune import magnitude_mask
    from flexspec.spectral.sparse import SparseSpectralKernels
    from flexspec.spectral.transform import spectral_kernels

    rng = np.random.default_rng(3)
    cout, cin, n = 6, 2, 4
    wf = spectral_kernels(rng.normal(size=(cout, cin, 3, 3)), n)
    ssk = SparseSpectralKernels.from_dense(wf, magnitude_mask(wf, 0.5), 3)
    quant = calibrate_layer(rng.normal(size=(4, cin, 7, 6)), ssk, 1, rng.normal(size=cout) * 0.3)
    shape = PoolShape(1, 2, 1, 2)  # a_t = 1, a_g = 2, one FFT, two IFFTs
    cfg = AcceleratorConfig(arrays=2, pes=2, banks=2, ports=1, fft_size=n, fft_engines=1, ifft_engines=2,
                            fifo_channels=cout)
    case = cluster_case(ssk, rng.normal(size=(cin, 7, 6)), quant, cfg, shape, rng.normal(size=cout) * 0.3)
    held = [max(mb + ch for *_, ch, mb in tail_items(case.spec, e)) for e in range(2)]
    assert held == [tail_slices(2, 2, e) * math.ceil(cout / 2) for e in range(2)]
    charged = tail_params(cfg)  # the worst over the splits a_g in {1, 2}: tail 0 gets the whole layer at a_g = 1
    assert [p["channels"] for p in charged] == [cout, math.ceil(cout / 2)]
    assert all(p["channels"] >= h for p, h in zip(charged, held, strict=True))


def test_vgg16_tail_extent_by_hand():
    """The network's tail extents against the layer geometry the engine uses (EngineGeometry)."""
    net = get_network("vgg16")
    ext = network_tail_extent(net, 8)
    geos = [EngineGeometry(fft_size=8, kernel_size=lay.kernel_size, padding=lay.padding, height=lay.height,
                           width=lay.width, in_channels=lay.in_channels, out_channels=lay.out_channels,
                           channel_depth=1, program_cycles=1, num_pes=1) for lay in net.spectral_layers]
    assert ext == {"carry_channel_tiles": max(g.out_channels * g.tiles_x for g in geos),
                   "tail_tiles": max(g.tiles for g in geos)}
    assert ext == {"carry_channel_tiles": AcceleratorConfig.carry_channel_tiles,
                   "tail_tiles": AcceleratorConfig.tail_tiles}  # the defaults are VGG16's at N = 8


def test_one_tail_per_ifft_engine_is_charged():
    """The pool charges E tails (each at its own worst split) and the per-array split A; the tails'
    carry LUT-RAM grows with the carried channel-tiles the design is sized for."""
    dev = load_device("u200")
    cfg = AcceleratorConfig(arrays=70, pes=8, banks=20, ports=1, fft_engines=7, ifft_engines=7, fifo_channels=512)
    blocks, _ = block_usage(cfg, dev)
    tails = tail_params(cfg)  # a_g in (1, 2, 5, 10): tail 0 takes a whole layer (a_g = 1), tail 6 one slice of 10
    assert [p["channels"] for p in tails] == [512, 256, 2 * 52, 103, 103, 52, 52]
    assert blocks["output_tails"]["lut"] > 0
    # at A = 14 (a_g in (1, 2)) IFFT engines 2..6 never get a slice: no tail of theirs holds anything
    assert len(tail_params(AcceleratorConfig(**{**cfg.to_dict(), "arrays": 14}))) == 2
    assert blocks["output_tails"]["lut"] == pytest.approx(sum(block_cost("output_tail", "xcup", p)["lut"]
                                                              for p in tails))
    small, _ = block_usage(AcceleratorConfig(**{**cfg.to_dict(), "carry_channel_tiles": 512}), dev)
    assert small["output_tails"]["lutram_luts"] < blocks["output_tails"]["lutram_luts"]
    per_array = AcceleratorConfig(arrays=4, pes=8, banks=20, ports=2, fft_engines=4, ifft_engines=4,
                                  array_split="tiles")
    assert [p["channels"] for p in tail_params(per_array)] == [per_array.fifo_channels] * 4
