"""FFT/IFFT blocks in Amaranth's simulator against the bit-exact numpy model (quick, small cases).

The model itself is checked against numpy.fft in tests/accel/test_fixed_point.py; Verilator runs of
the generated Verilog are in test_fft_verilator.py."""

from __future__ import annotations

import numpy as np
import pytest

from fft_cases import equals_model, random_case

from flexspec.accel.fixed_point import FFTFormat
from flexspec.rtl import fft_contract as fc

pytest.importorskip("amaranth")
from flexspec.rtl.fft import FFT2DReal, IFFT2DReal, simulate_stream  # noqa: E402


def _case(n, inverse, tiles, seed, in_bits=16, out_bits=16, tw_bits=18, out_shift=None):
    stages = n.bit_length() - 1
    shift = (2 * stages if inverse else stages + 2) if out_shift is None else out_shift
    fmt = FFTFormat(n, in_bits, out_bits, shift, tw_bits, inverse)
    return (fmt, *random_case(fmt, tiles, seed))


_equal = equals_model


@pytest.mark.parametrize("n,inverse", [(2, False), (4, False), (4, True), (8, False), (8, True)])
def test_block_equals_model_at_full_rate_with_contract_timing(n, inverse):
    fmt, beats, expected = _case(n, inverse, tiles=4, seed=n + inverse)
    run = simulate_stream(fmt, beats, 4 * fc.beats_out(fmt))
    assert _equal(fmt, run, expected)
    # the first output beat is valid right after edge latency_cycles (taken at the next edge),
    # and at full rate a tile goes out every interval_cycles; tiles go in at that rate once the
    # corner-turn banks are busy (the IFFT takes its second tile early: 2 banks)
    assert run.out_edges[0] - run.in_edges[0] == fc.latency_cycles(fmt) + 1
    starts_out = np.diff(run.out_edges[:: fc.beats_out(fmt)])
    starts_in = np.diff(run.in_edges[:: fc.beats_in(fmt)])
    assert set(starts_out.tolist()) == {fc.interval_cycles(fmt)} == set(starts_in[1:].tolist())
    assert starts_in[0] <= fc.interval_cycles(fmt)
    assert np.all(np.diff(run.out_edges) >= 1)


@pytest.mark.parametrize("n,inverse,seed", [(4, False, 1), (4, True, 2), (8, True, 3)])
def test_block_equals_model_under_random_gaps_and_backpressure(n, inverse, seed):
    fmt, beats, expected = _case(n, inverse, tiles=5, seed=seed)
    run = simulate_stream(fmt, beats, 5 * fc.beats_out(fmt), seed=seed, valid_percent=55, ready_percent=45)
    assert _equal(fmt, run, expected)


def test_narrow_widths_and_saturating_output():
    """6-bit data, 8-bit twiddles, no output shift into a narrow output: saturation in the RTL
    equals the model's."""
    fmt, beats, expected = _case(4, False, tiles=3, seed=9, in_bits=6, out_bits=7, tw_bits=8, out_shift=0)
    assert np.isin(expected[0], [-(2**6), 2**6 - 1]).any()  # at the rails: a 4x4 sum of 6-bit values needs 10 bits
    assert _equal(fmt, simulate_stream(fmt, beats, 3 * fc.beats_out(fmt)), expected)


@pytest.mark.parametrize("fault", ["twiddle", "early_valid"])
def test_injected_faults_are_caught(fault):
    fmt, beats, expected = _case(8, False, tiles=2, seed=5)
    good = simulate_stream(fmt, beats, 2 * fc.beats_out(fmt))
    bad = simulate_stream(fmt, beats, 2 * fc.beats_out(fmt), _fault=fault)
    assert _equal(fmt, good, expected)
    assert not _equal(fmt, bad, expected)
    if fault == "early_valid":
        assert bad.out_edges[0] - bad.in_edges[0] == fc.latency_cycles(fmt)  # one early


def test_blocks_reject_the_wrong_direction():
    with pytest.raises(ValueError):
        FFT2DReal(FFTFormat(8, 16, 16, 5, inverse=True))
    with pytest.raises(ValueError):
        IFFT2DReal(FFTFormat(8, 16, 16, 5))


def test_real_layer_tiles_through_both_blocks():
    """A real layer (conv1_2 of the shipped fmnist_vgg on a real test image, formats calibrated on
    other images): its input tiles through the FFT block give the functional model's tile spectra,
    and its rounded accumulators through the IFFT block give the model's IFFT blocks, bit for bit."""
    from flexspec import datasets
    from flexspec.accel.arch import AcceleratorConfig
    from flexspec.accel.functional import calibrate_fmnist, fixed_layer, quantize_input
    from flexspec.accel.kernels import resolve_kernels
    from flexspec.workload.zoo import get_network

    _, k, _ = resolve_kernels(get_network("fmnist_vgg"), None)
    x, _ = datasets.fashion_mnist_subset()
    quants = calibrate_fmnist(k, x[900:1000])
    cfg = AcceleratorConfig(arrays=1, pes=16, banks=20, ports=2)
    t1 = fixed_layer(quantize_input(datasets.to_float(x[:1]).astype(np.float64), quants["conv1_1"]),
                     k.layers["conv1_1"], quants["conv1_1"], cfg, bias=k.biases["conv1_1"])
    q = quants["conv1_2"]
    tr = fixed_layer(np.maximum(t1.y_int, 0), k.layers["conv1_2"], q, cfg, bias=k.biases["conv1_2"])
    n, half = q.fft_size, q.fft_size // 2 + 1
    sel = [(3, 12), (9, 7), (15, 24)]  # (channel, tile) pairs, nonzero data
    tiles = np.stack([tr.tiles[c, t] for c, t in sel])
    run = simulate_stream(q.fft_format, fc.pack_input(q.fft_format, tiles), len(sel) * half)
    re, im = fc.unpack_output(q.fft_format, list(run.out_words))
    assert np.abs(tiles).max() > 0
    assert np.array_equal(re.reshape(len(sel), -1), np.stack([tr.spec_re[c, t] for c, t in sel]))
    assert np.array_equal(im.reshape(len(sel), -1), np.stack([tr.spec_im[c, t] for c, t in sel]))
    ar = np.stack([tr.ifft_in_re[c, t].reshape(n, half) for c, t in sel])
    ai = np.stack([tr.ifft_in_im[c, t].reshape(n, half) for c, t in sel])
    run = simulate_stream(q.ifft_format, fc.pack_input(q.ifft_format, ar, ai), len(sel) * n)
    got = fc.unpack_output(q.ifft_format, list(run.out_words))
    assert np.array_equal(got, np.stack([tr.blocks[c, t] for c, t in sel]))
