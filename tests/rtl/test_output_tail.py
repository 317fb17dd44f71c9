"""The output tail (``flexspec.rtl.output_tail.OutputTail``: overlap-add, bias, ReLU, write-back)
alone, against the fixed-point functional model: the functional model's own IFFT blocks go in, its
spatial output must come out, with a write-back that is not always ready (the stall path the engine
and the cluster tests never take: their write-back is always ready), for a tail serving one slice
and a tail serving two slices at local carry channels."""

from __future__ import annotations

import numpy as np
import pytest

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.functional import calibrate_layer
from flexspec.rtl.cluster_case import PoolShape, cluster_case, tail_items
from flexspec.spectral.prune import magnitude_mask
from flexspec.spectral.sparse import SparseSpectralKernels
from flexspec.spectral.transform import spectral_kernels

pytest.importorskip("amaranth")
from flexspec.rtl.engine_cosim import _result  # noqa: E402
from flexspec.rtl.output_tail import OutputTail, tail_beats  # noqa: E402


def _case(shape, cout, height, width, seed):
    rng = np.random.default_rng(seed)
    n, cin = 4, 2
    wf = spectral_kernels(rng.normal(size=(cout, cin, 3, 3)), n)
    ssk = SparseSpectralKernels.from_dense(wf, magnitude_mask(wf, 0.5), 3)
    bias = rng.normal(size=cout) * 0.3
    quant = calibrate_layer(rng.normal(size=(4, cin, height, width)), ssk, 1, bias)
    cfg = AcceleratorConfig(arrays=shape.arrays, pes=2, banks=2, ports=1, fft_size=n)
    return cluster_case(ssk, rng.normal(size=(cin, height, width)), quant, cfg, shape, bias)


def run_tail(case, e, ready_every=3, fault=None):
    """Stream IFFT e's blocks (the model's, in the tail's item order) through its tail with the
    write-back ready only one cycle in ``ready_every``; the written pixels and the beats."""
    from amaranth.sim import Simulator  # heavy, only here

    spec = case.spec
    g, q = spec.geometry, spec.quant
    items = tail_items(spec, e)
    dut = OutputTail(g, q, spec.bias_int, items, q.data_bits, _fault=fault)
    blocks = case.expected_blocks()
    bmask = (1 << q.block_bits) - 1
    rows = [sum((int(v) & bmask) << (c * q.block_bits) for c, v in enumerate(blocks[cb + o, ty * g.tiles_x + tx, r]))
            for ty, tx, cb, ch, _ in items for o in range(ch) for r in range(g.fft_size)]
    got, res = [], {}
    ports = (dut.o_data, dut.o_mask, dut.o_chan, dut.o_row, dut.o_col)

    async def bench(ctx):
        nxt = 0
        for edge in range(1, 40 * len(rows) + 100):
            ctx.set(dut.i_valid, int(nxt < len(rows)))
            if nxt < len(rows):
                ctx.set(dut.i_data, rows[nxt])
            ready = int(edge % ready_every == 0)
            ctx.set(dut.o_ready, ready)
            if nxt < len(rows) and ctx.get(dut.i_ready):
                nxt += 1
            if ctx.get(dut.o_valid) and ready:
                got.append((edge, *(ctx.get(p) for p in ports)))
            await ctx.tick()
            if ctx.get(dut.done):
                res["edge"] = edge
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert "edge" in res, "the tail never raised done"
    return _result(g, q.data_bits, got, res["edge"], False), tail_beats(g, items)


@pytest.mark.parametrize("shape,e", [(PoolShape(1, 2, 1, 1), 0), (PoolShape(1, 2, 1, 2), 1)])
def test_tail_under_back_pressure_matches_the_model(shape, e):
    """One tail holding both slices (carries at their own channels); the second of two tails
    (slice 1 = output channels 2.. at local carry channels 0..)."""
    case = _case(shape, 3, 7, 6, seed=5)
    res, beats = run_tail(case, e)
    chans = sorted({c for _, _, cb, ch, _ in tail_items(case.spec, e) for c in range(cb, cb + ch)})
    want = case.expected_output()[chans]
    assert res["beats"] == beats and res["writes"] == want.size
    assert np.array_equal(res["output"][chans], want)
    assert 0 < np.count_nonzero(want) < want.size  # ReLU clipped some values, not all


def test_dropped_carry_is_caught():
    case = _case(PoolShape(1, 1, 1, 1), 3, 7, 6, seed=5)
    res, _ = run_tail(case, 0, ready_every=1, fault="drop_carry")
    assert not np.array_equal(res["output"], case.expected_output())
