"""The fast dataflow choice against the straightforward one it replaced (issue 15, h15f).

``pe_rule.blocking_cycles`` now gathers every run's tile counts before it costs them (one
``array_makespan`` call per run and set of array splits), memoizes the engine's interval per
program length, and shares its memo between the entries and the stream analyses of a design;
``_lpt.lpt_span`` deals runs of equal groups in batches.  The references here are the code as it
was: :func:`_reference_blocking_cycles` (main 37d2a35's per-pair loop, verbatim but for the
interval's memo) and :func:`_reference_lpt_span` (one group at a time onto the least-loaded
array).  Everything must be equal, not close: the chosen dataflow of VGG16 on every device, the
cycles of random layers and designs, the LPT makespans.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from numba import njit

from flexspec.accel import grouping, pe_rule
from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.design_dataflow import analyze, precision_of
from flexspec.accel.grouping import array_makespan
from flexspec.accel.layer_events import chain_splits, channel_depth, cin_chained, fft_channel_interval_cycles
from flexspec.accel.engine import pass_shape
from flexspec.accel.pe_rule import blocking_cycles, group_makespans, kernel_bank_reads, stream_bits
from flexspec.accel._lpt import lpt_span
from flexspec.dataflow import ORDERS, LayerModel
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


def _reference_blocking_cycles(model, cands: dict, config: AcceleratorConfig, bank_of, bank_reads: np.ndarray | None = None,
                    memo: dict | None = None, stream: bool = True) -> dict:
    """``blocking_cycles`` as it was (main 37d2a35): every (cout block, cin block) pair and run
    costed on its own, one ``array_makespan`` call per run and new tile counts."""
    g = model.geom
    nnz = model.nnz
    a = config.arrays
    divisors = list(config.group_splits)
    bo = np.minimum(cands["cout_block"], g.cout)
    bi = np.minimum(cands["cin_block"], g.cin)
    bt = np.minimum(cands["tile_block"], g.tiles)
    n_o, n_i = cands["cout_blocks"], cands["cin_blocks"]
    orders = np.array([[o.index(x) for x in "oit"] for o in ORDERS])[cands["order_index"]]
    kernel_inner = np.maximum(np.where(n_o > 1, orders[:, 0], -1), np.where(n_i > 1, orders[:, 1], -1))
    all_tiles = orders[:, 2] > kernel_inner
    full = np.where(all_tiles, g.tiles, bt)
    n_full = np.where(all_tiles, 1, g.tiles // bt)
    rem = np.where(all_tiles, 0, g.tiles - n_full * bt)
    compute = np.zeros(bo.size)
    bits = np.zeros(bo.size)
    memo = (memo if memo is not None else {}).setdefault((g.name, config, bank_of.tobytes()), {})
    groups = memo.setdefault("groups", {})

    def groups_of(o_blk: int, every_block: bool = False) -> np.ndarray:
        key = (o_blk, every_block)
        if key not in groups:
            groups[key] = group_makespans(nnz, bank_reads, config.pes, config.ports, o_blk,
                                          None if every_block else 1)
        return groups[key]

    def block_cost(o_blk: int, lo: int, hi: int, drains: bool, tiles: np.ndarray, chain: bool = False) -> np.ndarray:
        """Cycles of one run of input channels lo..hi of a cout block over each count of ``tiles``;
        ``chain``: a chained walk's accumulator visit (every cin block, a tile an array)."""
        key = (o_blk, lo, hi, drains, chain)
        if key not in memo:
            memo[key] = {}
        need = [t for t in np.unique(tiles) if t > 0 and t not in memo[key]]
        if need:
            cyc = groups_of(o_blk, stream)[0][:, lo:hi].T.ravel()  # channel-major, as the schedules hold them
            outs = min(o_blk, g.cout) if drains else 0

            def interval(words):  # the engine's cycles per tile for a program of `words`, as the simulator
                return pass_shape([words], hi - lo, outs, bank_of, config.banks, config.pes,
                                            config.fft_size, config.readout_rows).interval()

            if chain:
                spans = [array_makespan(cyc, int(t), a, chain_splits(divisors, a, int(t)), interval) for t in need]
            else:
                spans = np.atleast_1d(array_makespan(cyc, np.array(need, dtype=np.int64), a, divisors,
                                                     interval)).tolist()
            memo[key].update(zip(need, spans, strict=True))
        return np.array([memo[key][t] if t > 0 else 0 for t in tiles], dtype=float)

    chained = cin_chained(orders.T, n_o, n_i, cands["tile_blocks"], bt, a // min(divisors))
    for o_blk, i_blk in {(int(x), int(y)) for x, y in zip(bo, bi, strict=True)}:
        sel = np.nonzero((bo == o_blk) & (bi == i_blk))[0]
        last_lo = (int(n_i[sel[0]]) - 1) * i_blk
        per_block = np.zeros(sel.size)
        for lo, hi, drains, weight in ((0, i_blk, True, n_i[sel] - 1), (last_lo, g.cin, True, 1)):
            runs = n_full[sel] * block_cost(o_blk, lo, hi, drains, full[sel]) + block_cost(o_blk, lo, hi, drains,
                                                                                         rem[sel])
            per_block += np.where(weight > 0, weight * runs, 0.0)
        ch = chained[sel]
        if ch.any():  # walks that may chain: one run per accumulator visit, read out once, when faster
            c_sel = sel[ch]
            visits = n_full[c_sel] * block_cost(o_blk, 0, g.cin, True, full[c_sel], True) \
                + block_cost(o_blk, 0, g.cin, True, rem[c_sel], True)
            per_block[ch] = np.minimum(per_block[ch], visits)
        compute[sel] = n_o[sel] * per_block
        if stream and ("stream", o_blk) not in memo:
            memo[("stream", o_blk)] = stream_bits(g.cin, g.cout, groups_of(o_blk, True), config, bank_of, o_blk)
        bits[sel] = memo.get(("stream", o_blk), 0) if stream else 0
    n = config.fft_size
    fft = cands["forward_ffts"] * fft_channel_interval_cycles(n, channel_depth(bank_of, config.banks)) \
        / config.fft_engines
    ifft = np.full(bo.size, g.cout * g.tiles * n / config.ifft_engines)
    return {"compute": compute, "fft": fft, "ifft": ifft, "stream_bits": bits}


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
def test_blocking_cycles_equals_the_reference_on_random_layers(case):
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
        ref = _reference_blocking_cycles(m, cands, cfg, bank_of, reads, None, s)
        _check_equal(blocking_cycles(m, cands, cfg, bank_of, reads, memo, s), ref, (cfg, s))
    _check_equal(blocking_cycles(m, cands, cfg, bank_of, None, None, stream),
                 _reference_blocking_cycles(m, cands, cfg, bank_of, None, None, stream), "PE bound")


def _plans(nd) -> dict:
    return {plan: [repr(ld) for ld in layers] for plan, layers in nd.plans.items()}


@pytest.mark.parametrize("device", list_devices())
def test_vgg16_dataflow_choice_equals_the_reference_on_every_device(device, monkeypatch):
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
    monkeypatch.setattr(pe_rule, "blocking_cycles", recorded(_reference_blocking_cycles, runs["reference"]))
    monkeypatch.setattr(grouping, "lpt_span", _reference_lpt_span)
    assert _plans(analyze(net, masks, cfg, dev, res, prec)) == fast
    assert len(runs["fast"]) == len(runs["reference"]) == len(net.spectral_layers)
    for f, r in zip(runs["fast"], runs["reference"], strict=True):
        _check_equal(f, r, device)
