"""Shared stimulus and comparison for the FFT/IFFT block tests (Amaranth, Verilator, cocotb)."""

from __future__ import annotations

import numpy as np

from flexspec.accel.fixed_point import FFTFormat, fft2d_real_fixed, ifft2d_real_fixed
from flexspec.rtl import fft_contract as fc


def random_case(fmt: FFTFormat, tiles: int, seed: int):
    """Random full-range input tiles (FFT) or half-planes (IFFT): (input beats, model output)."""
    rng = np.random.default_rng(seed)
    lo, hi = -(2 ** (fmt.in_bits - 1)), 2 ** (fmt.in_bits - 1)
    if fmt.inverse:
        re, im = (rng.integers(lo, hi, size=(tiles, fmt.n, fmt.half)) for _ in range(2))
        return fc.pack_input(fmt, re, im), ifft2d_real_fixed(re, im, fmt)
    t = rng.integers(lo, hi, size=(tiles, fmt.n, fmt.n))
    return fc.pack_input(fmt, t), fft2d_real_fixed(t, fmt)


def equals_model(fmt: FFTFormat, run, expected) -> bool:
    """Whether a StreamRun's output beats are the model's output, bit for bit."""
    got = fc.unpack_output(fmt, list(run.out_words))
    if fmt.inverse:
        return np.array_equal(got, expected)
    return got[0].shape == expected[0].shape and np.array_equal(got[0], expected[0]) and \
        np.array_equal(got[1], expected[1])
