"""The faster dataflow choice against the straightforward code (issue 15, h15f).

``_lpt.lpt_span`` deals runs of equal groups in batches: it must equal :func:`_reference_lpt_span`
(one group at a time onto the least-loaded array) exactly, alone and as VGG16's dataflow choice on
every device.  ``pe_rule.blocking_cycles``' memo is shared between the entries and the stream
analyses of a design (``explore.adapter.simulate``): a shared memo must change no cost.  (h15f's
rewrite of ``blocking_cycles`` itself was not merged: main's rule is h12s's output-channel-sliced
one, merged at the same time.)
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from numba import njit

from flexspec.accel import grouping, pe_rule
from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.design_dataflow import analyze, precision_of
from flexspec.accel.pe_rule import blocking_cycles, kernel_bank_reads
from flexspec.accel._lpt import lpt_span
from flexspec.dataflow import LayerModel
from flexspec.devices import list_devices, load_device
from flexspec.pipeline import fit_design
from flexspec.schedule.model import resolve_bank_map
from flexspec.workload.layers import ConvLayer
from flexspec.workload.zoo import get_network


def _reference_lpt_span_py(cyc_desc, bins):
    """LPT one group at a time: each to the least-loaded array, lowest index on ties."""
    load = np.zeros(bins, dtype=np.int64)
    for x in cyc_desc:
        k = 0
        for b in range(1, bins):
            if load[b] < load[k]:
                k = b
        load[k] += x
    return load.max() if bins > 0 else 0


_reference_lpt_span = njit(cache=False)(_reference_lpt_span_py)  # the same loop, compiled for VGG16's layers


# ------------------------------------------------------------------------------------------- LPT --
@st.composite
def _runs_of_groups(draw):
    """Group makespans as the PE arrays see them: a few distinct small values, many repeats (and
    zeros: idle groups), sorted decreasing; up to a few hundred arrays."""
    values = draw(st.lists(st.integers(0, 60), min_size=1, max_size=12, unique=True))
    counts = draw(st.lists(st.integers(1, 250), min_size=len(values), max_size=len(values)))
    cyc = np.sort(np.repeat(np.array(values, dtype=np.int64), counts))[::-1].copy()
    return cyc, draw(st.integers(1, 300))


@settings(max_examples=150, deadline=None)
@given(case=_runs_of_groups())
def test_lpt_span_equals_the_group_by_group_loop(case):
    cyc, bins = case
    assert int(lpt_span(cyc, bins)) == int(_reference_lpt_span_py(cyc, bins))


@settings(max_examples=200, deadline=None)
@given(cyc=st.lists(st.integers(0, 10**6), min_size=0, max_size=300), bins=st.integers(1, 40))
def test_lpt_span_equals_the_loop_on_arbitrary_makespans(cyc, bins):
    desc = np.sort(np.array(cyc, dtype=np.int64))[::-1].copy()
    assert int(lpt_span(desc, bins)) == int(_reference_lpt_span_py(desc, bins))


def test_lpt_span_batches_large_runs_exactly():
    """Runs long enough to be dealt in batches (65,536 groups of 1-39 cycles onto 182 arrays, the
    U250's A), and loads left uneven between runs (a run shorter than the arrays)."""
    rng = np.random.default_rng(7)
    for bins, n in ((182, 65536), (91, 8192), (14, 65536), (7, 300)):
        cyc = np.sort(rng.integers(1, 40, n))[::-1].copy()
        cyc[n // 3: n // 3 + bins // 2] = cyc[n // 3]  # keep sorted: a uneven run boundary
        cyc = np.sort(cyc)[::-1].copy()
        assert int(lpt_span(cyc, bins)) == int(_reference_lpt_span(cyc, bins))


# ------------------------------------------------------------------------------ blocking_cycles --
@st.composite
def _layer_and_design(draw):
    cout, cin = draw(st.integers(1, 40)), draw(st.integers(1, 12))
    size = draw(st.sampled_from([4, 6, 9, 14]))
    lay = ConvLayer("c", cin, cout, size, size, 3, 1, 1)
    density = draw(st.sampled_from([0.05, 0.2, 0.5]))
    mask = np.random.default_rng(draw(st.integers(0, 2**16))).random((cout, cin, 40)) < density
    cfg = AcceleratorConfig(arrays=draw(st.integers(1, 24)), pes=draw(st.sampled_from([2, 4, 8])),
                            banks=draw(st.sampled_from([4, 10, 20])), ports=draw(st.sampled_from([1, 2])),
                            readout_rows=draw(st.sampled_from([0, 1, 2, 8])),
                            array_split=draw(st.sampled_from(["tiles+groups", "tiles"])))
    return lay, mask, cfg, draw(st.booleans())


def _check_equal(fast: dict, ref: dict, what=""):
    for k in ("compute", "fft", "ifft", "stream_bits"):
        assert np.array_equal(fast[k], ref[k]), (what, k, fast[k], ref[k])


@settings(max_examples=60, deadline=None)
@given(case=_layer_and_design())
def test_a_shared_memo_changes_no_blocking_cost(case):
    """Every candidate blocking of a random layer (every loop order and input format), random
    design (arrays, P, B, R, read-out rows, array splits), with and without the stream; twice with
    one memo (the second call: the other stream setting, as the entries and stream analyses of a
    design share it)."""
    lay, mask, cfg, stream = case
    m = LayerModel(lay, mask, 8)
    cands = m.candidates()
    ok = (cands["cout_block"] % cfg.pes == 0) | (cands["cout_block"] >= lay.out_channels)
    cands = {k: v[ok] for k, v in cands.items()}
    bank_of = resolve_bank_map("auto", mask, cfg.banks)
    reads = kernel_bank_reads(mask, bank_of, cfg.banks)
    memo: dict = {}
    for s in (stream, not stream):
        ref = blocking_cycles(m, cands, cfg, bank_of, reads, None, s)  # a fresh memo
        _check_equal(blocking_cycles(m, cands, cfg, bank_of, reads, memo, s), ref, (cfg, s))


def _plans(nd) -> dict:
    return {plan: [repr(ld) for ld in layers] for plan, layers in nd.plans.items()}


@pytest.mark.parametrize("device", list_devices())
def test_vgg16_dataflow_choice_equals_the_reference_lpt_on_every_device(device, monkeypatch):
    """VGG16 (224 x 224, random 15% masks) at the design the exploration runs (A = fit, P 8, B 20,
    R 2), the analysis of every plan: every layer's chosen dataflow (blocking, traffic, time), and the cycles of every candidate blocking, from the
    fast code and from the reference (the old blocking_cycles and LPT patched in), are equal."""
    net = get_network("vgg16")
    rng = np.random.default_rng(3)
    masks = {lay.name: rng.random((lay.out_channels, lay.in_channels, 40)) < 0.15 for lay in net.spectral_layers}
    dev = load_device(device)
    cfg, res = fit_design(dev, 8, arrays=None, pes=8, banks=20, ports=2, broadcast=False)
    prec = precision_of(cfg)
    runs = {"fast": [], "reference": []}

    def recorded(fn, into):
        def run(*args, **kwargs):
            out = fn(*args, **kwargs)
            into.append(out)
            return out
        return run

    monkeypatch.setattr(pe_rule, "blocking_cycles", recorded(blocking_cycles, runs["fast"]))
    fast = _plans(analyze(net, masks, cfg, dev, res, prec))
    monkeypatch.setattr(pe_rule, "blocking_cycles", recorded(blocking_cycles, runs["reference"]))
    monkeypatch.setattr(grouping, "lpt_span", _reference_lpt_span)
    assert _plans(analyze(net, masks, cfg, dev, res, prec)) == fast
    assert len(runs["fast"]) == len(runs["reference"]) == len(net.spectral_layers)
    for f, r in zip(runs["fast"], runs["reference"], strict=True):
        _check_equal(f, r, device)
