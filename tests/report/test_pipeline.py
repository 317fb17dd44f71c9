"""pipeline.run and RunReport: figures tie to each other and to the simulator, units in every key."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace

import pytest

from flexspec.errors import UsageError
from flexspec.pipeline import STAGES, layer_treatment, run
from flexspec.spectral.sparse import SparseNetworkKernels

from report_helpers import tiny_network, weights_file

UNIT_SUFFIXES = ("_seconds", "_cycles", "_bytes", "_bits", "_hz", "_ratio", "_fraction", "_count", "_channels",
                 "_tiles", "_macs", "cycles", "_per_second")
UNITLESS_OK = {"layer", "kind", "mode", "dataflow", "loop_order", "input_link", "output_link", "bound", "memory_bound",
               "network", "device", "baseline", "memory_bound_layers", "weights", "weights_is_real",
               "weights_provenance", "baselines", "kernel_storage"}


def test_layer_split_adds_up_and_totals_match_rows(tiny_report):
    rows = tiny_report.layer_rows()
    clock = tiny_report.flexspec.clock_hz
    for r in rows:
        parts = (r["compute_cycles"] + r["bank_conflict_stall_cycles"] + r["memory_stall_cycles"]
                 + r["fft_stall_cycles"] + r["fill_cycles"])
        assert parts == r["cycles"], r["layer"]
        assert r["latency_seconds"] == pytest.approx(r["cycles"] / clock)
        assert r["traffic_bytes"] == pytest.approx(r["kernels_bytes"] + r["inputs_bytes"] + r["outputs_bytes"]
                                                   + r["psums_bytes"])
        assert r["traffic_bytes"] >= r["lower_bound_bytes"] - 1e-6
    s = tiny_report.summary()
    assert s["cycles"] == sum(r["cycles"] for r in rows)
    assert s["speedup_ratio"] == pytest.approx(sum(r["baseline_cycles"] for r in rows) / s["cycles"])
    base_traffic = sum(r["baseline_traffic_bytes"] for r in rows)
    assert s["traffic_reduction_fraction"] == pytest.approx(1 - sum(r["traffic_bytes"] for r in rows) / base_traffic)
    assert s["memory_bound_layers"] == [r["layer"] for r in rows if r["memory_bound"]]
    macs = sum(r["useful_complex_macs"] for r in rows)
    acc = tiny_report.flexspec.config
    assert s["dsp_efficiency_fraction"] == pytest.approx(macs / (acc.arrays * acc.pes * s["cycles"]))


def test_pipeline_stages_equal_sim_compare(tiny_report):
    """run() walks the simulator's stages itself (for the progress bars): same figures as accel.sim.compare."""
    from flexspec.accel.kernels import random_masks
    from flexspec.accel.sim import compare

    net = tiny_network()
    c = compare(net, "u200", tiny_report.flexspec.config, random_masks(net, 8, 0.25, 0), whole_network=True)
    assert [r.cycles for r in c.flexspec.layers] == [r.cycles for r in tiny_report.flexspec.layers]
    for name, b in c.baselines.items():
        assert b.cycles == tiny_report.baselines[name].cycles
        assert b.traffic_bytes == tiny_report.baselines[name].traffic_bytes
        assert c.dataflow_only[name].cycles == tiny_report.dataflow_only[name].cycles
    # one definition of the speed-up and its split, whichever command asks
    split = tiny_report.speedup_split()
    for name, sp in c.speedup_split().items():
        assert sp["total_ratio"] == split[name]["total_ratio"] == tiny_report.summary()["baselines"][name][
            "speedup_ratio"]
        assert sp["total_ratio"] == pytest.approx(sp["dataflow_ratio"] * sp["scheduler_ratio"])


def test_kernels_provenance_and_keep_probability(tiny_report):
    assert tiny_report.weights == "random"
    assert tiny_report.summary()["weights_is_real"] is False
    assert any("random masks" in n for n in tiny_report.notes)
    # random masks keep exactly round(0.25 * 40) = 10 of 40 positions per kernel
    for _name, p in tiny_report.keep_probability.items():
        assert p.shape == (8, 5)
        assert p.mean() == pytest.approx(10 / 40)
        assert p.max() <= 1


def test_every_layer_named_with_its_treatment(tiny_report):
    by = {u["name"]: u for u in layer_treatment(tiny_report.network)}
    assert set(by) == {"c1_relu", "down", "pool", "fc"}
    assert "stride 2" in by["down"]["treatment"] and "spatial" in by["down"]["treatment"]
    assert "in the latency" in by["fc"]["treatment"]
    assert [r.kind for r in tiny_report.flexspec.layers] == ["spectral", "spectral", "spatial", "fc"]
    assert tiny_report.unsupported_layers == ()
    assert tiny_report.fused == {"c1": ["c1_relu"], "down": ["pool"]}
    from flexspec.workload.zoo import resnet18

    spatial = {u["name"] for u in layer_treatment(resnet18()) if u["type"] == "conv"}
    assert {"conv1", "layer2_0_conv1", "layer2_0_downsample"} <= spatial
    assert "layer1_0_conv1" not in spatial


def _numeric_keys(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _numeric_keys(v, f"{prefix}{k}.")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield prefix + k, k


def test_units_in_every_figure_key_and_configuration(tiny_report):
    d = json.loads(json.dumps(tiny_report.to_dict()))
    keys = list(_numeric_keys(d["summary"]))
    for row in d["layers"]:
        keys += list(_numeric_keys(row))
    bad = sorted({full for full, k in keys if not k.endswith(UNIT_SUFFIXES) and k not in UNITLESS_OK})
    assert not bad, bad
    cfg = d["configuration"]
    for key in ("flexspec_version", "format_version", "model", "device", "device_profile", "fft_size", "seed",
                "accelerator", "density_used_fraction"):
        assert key in cfg
    assert cfg["device_profile"]["dsp_slices"] > 0 and cfg["accelerator"]["pes"] == tiny_report.flexspec.config.pes
    assert d["format_version"] >= 1 and d["flexspec_version"]


def test_deterministic_given_seed(tiny_report):
    again = run(tiny_network(), "u200", progress=False)
    a, b = tiny_report.to_dict(), again.to_dict()
    a.pop("stage_seconds")
    b.pop("stage_seconds")
    assert a == b


def test_progress_callback_sees_every_stage_in_order():
    events = []
    run(tiny_network(), "u200", progress=lambda stage, event, s: events.append((stage, event)), tradeoff=False)
    starts = [s for s, e in events if e == "start"]
    assert starts == [s for s in STAGES if s != "tradeoff curves"]
    assert [s for s, e in events if e == "done"] == starts


def test_plain_progress_lines_when_not_a_terminal(capsys):
    run(tiny_network(), "u200", progress=True, tradeoff=False)
    err = capsys.readouterr().err
    assert "[1/7] network" in err and "schedules + simulation done in" in err


@pytest.mark.parametrize("kwargs, text", [
    ({"density": 0.0}, "out of range"), ({"density": 1.01}, "out of range"), ({"density": math.nan}, "out of range"),
    ({"fft_size": 3}, "out of range"), ({"fft_size": 64}, "out of range"), ({"fft_size": 8.0}, "integer"),
    ({"density": 0.25, "weights": "x.npz"}, "not both"), ({"pes": 0}, "positive"), ({"banks": 41}, "exceeds"),
    ({"seed": -1}, "seed"),
])
def test_api_rejects_bad_values(kwargs, text):
    with pytest.raises(UsageError, match=text):
        run(tiny_network(), "u200", progress=False, **kwargs)


def test_network_without_spectral_layers_is_refused():
    from flexspec.workload.layers import LinearLayer, Network

    with pytest.raises(UsageError, match="no spectral-eligible"):
        run(Network("mlp", (1, 4, 4), (LinearLayer("fc", 16, 4),)), progress=False)


def test_import_stays_light_and_run_is_exported():
    code = ("import sys, flexspec; f = flexspec.run; r = flexspec.RunReport; "
            "print('torch' in sys.modules, 'matplotlib' in sys.modules, f.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "flexspec.pipeline"]


def test_weights_file_round_trip(tmp_path, tiny_report):
    """A user SparseNetworkKernels file: its masks are what the simulation uses, and it is labelled."""
    npz = weights_file(tmp_path, tiny_network(), density=0.5, is_real=True)
    rep = run(tiny_network(), "u200", weights=npz, progress=False, tradeoff=False)
    assert rep.kernels.kind == "user" and rep.weights == "user file, real"
    for _name, p in rep.keep_probability.items():
        assert p.mean() == pytest.approx(0.5, abs=0.03)
    assert rep.configuration["weights_path"] == str(npz)


def test_kernels_stored_at_other_widths_than_the_design_are_refused(tmp_path, tiny_report):
    """Before: run() counted an 8-bit kernels file at the design's 16-bit values without a word;
    ``flexspec simulate`` counted it at 8 bits.  Now run() refuses it, naming both widths."""
    npz = weights_file(tmp_path, tiny_network(), density=0.5)
    net_k = SparseNetworkKernels.load(npz)
    narrow = replace(net_k, layers={k: replace(v, value_bits=8) for k, v in net_k.layers.items()})
    path = tmp_path / "narrow.npz"
    narrow.save(path)
    with pytest.raises(UsageError, match=r"8-bit values / 6-bit indices.*16-bit values / 6-bit indices"):
        run(tiny_network(), "u200", weights=path, progress=False, tradeoff=False)
    rep = run(tiny_network(), "u200", weights=npz, progress=False, tradeoff=False)  # the design's widths: runs
    assert rep.flexspec.cycles > 0


def test_bound_stated_is_the_largest_part_of_the_time_split(tiny_report):
    parts = {"compute": ("compute_cycles", "bank_conflict_stall_cycles"), "memory": ("memory_stall_cycles",),
             "FFT": ("fft_stall_cycles",), "fill": ("fill_cycles",)}
    for r in tiny_report.layer_rows():
        if r["kind"] != "spectral":
            continue
        split = {k: sum(r[c] for c in cols) for k, cols in parts.items()}
        top = max(split, key=split.get)
        assert r["bound_reason"].startswith(f"{top}-bound: {100 * split[top] / r['cycles']:.0f}%"), r


def test_summary_states_every_resource_and_the_clock_source(tiny_report):
    """Used/available of every resource of the calibrated model (recomputed here from the design's
    resource object), the binding resource is one of them, and the clock names its profile source."""
    from flexspec.accel.arch import resources
    from flexspec.devices import load_device

    s = tiny_report.summary()
    rows = {r["resource"]: r for r in s["resources_used_available"]}
    assert set(rows) == {"lut", "ff", "lutram_luts", "dsp", "bram_bits", "uram_bits"}
    dev = load_device(tiny_report.configuration["device"])
    fresh = resources(tiny_report.flexspec.config, dev)
    for k, r in rows.items():
        assert r["used"] == int(fresh.used[k]) <= r["available"] == int(fresh.available[k]), k
    assert s["binding_resource"] in rows and s["clock_hz"] == dev.clock_hz
    assert s["clock_source"] and s["clock_source"] == dev.sources["clock_hz"]


def test_html_states_every_resource_and_the_clock_source(tiny_report):
    from flexspec.report.html import render_html

    page = render_html(tiny_report)
    s = tiny_report.summary()
    for r in s["resources_used_available"]:
        assert f"<td>{r['resource']}</td><td>{r['used']:,}</td><td>{r['available']:,}</td>" in page
    assert "Clock" in page and "derating" in s["clock_source"]


def test_run_counts_kernels_as_the_stored_schedule_stream(tiny_report):
    """The report's kernel bytes are the schedule stream the generated PE arrays store: per layer,
    one copy = the stream of the grouping at the cout block the run used (counted again here from
    the run's masks and design), the traffic a whole number of copies, the total their sum."""
    from flexspec.accel.arch import AcceleratorConfig
    from flexspec.accel.grouping import ScheduleCache, stored_stream_bits
    from flexspec.accel.kernels import random_masks

    d = json.loads(json.dumps(tiny_report.to_dict()))
    assert d["summary"]["kernel_storage"] == "stream"
    net = tiny_network()
    masks = random_masks(net, 8, 0.25, 0)
    cfg = AcceleratorConfig(**d["configuration"]["accelerator"])
    cache = ScheduleCache()
    total_bits = 0
    spectral = [r for r in d["layers"] if r["kind"] == "spectral"]
    assert len(spectral) == 2  # c1, c2 (the stride-2 "down" runs spatial)
    for r in spectral:
        bits = int(stored_stream_bits(masks[r["layer"]], cfg, r["cout_block_channels"], cache).sum())
        assert r["stored_kernel_bytes"] * 8 == bits, r["layer"]
        passes = r["kernels_bytes"] * 8 / bits
        assert passes >= 1 and passes == int(passes), r["layer"]
        total_bits += bits
    assert d["summary"]["stored_kernel_bytes"] * 8 == total_bits
    assert all(c["kernel_storage"] == "stream" for c in d["tradeoff"].values())
