"""Tests of the bit-exact fixed-point arithmetic against independent (pure Python) references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flexspec.accel.fixed_point import (
    BankConflictError,
    FixedPointFormat,
    bank_addresses,
    check_bank_conflicts,
    choose_frac_bits,
    complex_product,
    dequantize,
    execute_group,
    execute_group_tiles,
    max_terms,
    quantize_complex,
    required_acc_bits,
    wrap_signed,
)
from flexspec.errors import FlexSpecError, UsageError

i16 = st.integers(-(2**15), 2**15 - 1)


@settings(max_examples=300, deadline=None)
@given(i16, i16, i16, i16)
def test_gauss_three_multiplier_equals_four_multiplier_and_python(xr, xi, wr, wi):
    ref = complex(xr, xi) * complex(wr, wi)
    for dsp in (3, 4):
        re, im = complex_product(xr, xi, wr, wi, dsp)
        assert (int(re), int(im)) == (int(ref.real), int(ref.imag))


def test_complex_product_extremes():
    edge = [-(2**15), -(2**15) + 1, -1, 0, 1, 2**15 - 1]
    vals = np.array(np.meshgrid(edge, edge, edge, edge)).reshape(4, -1)
    r3 = complex_product(*vals, 3)
    r4 = complex_product(*vals, 4)
    assert np.array_equal(r3[0], r4[0]) and np.array_equal(r3[1], r4[1])
    # a single product part never exceeds 2**31 in magnitude (the bound behind max_terms)
    assert np.abs(r4[0]).max() <= 2**31 and np.abs(r4[1]).max() <= 2**31


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**70), 2**70), st.integers(2, 63))
def test_wrap_signed_matches_python_modular(x, bits):
    x64 = int(np.int64(((x + 2**63) % 2**64) - 2**63))  # value as an int64 would hold it
    expect = ((x64 + 2 ** (bits - 1)) % 2**bits) - 2 ** (bits - 1)
    assert int(wrap_signed(np.int64(x64), bits)) == expect


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.integers(2, 20), st.integers(-8, 20))
def test_quantize_round_and_saturate(re, im, bits, frac):
    qr, qi = quantize_complex(np.array([complex(re, im)]), bits, frac)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    for v, q in ((re, qr[0]), (im, qi[0])):
        exact = v * 2.0**frac
        ref = min(max(round(exact), lo), hi)  # Python round: ties to even, like np.rint
        assert int(q) == ref
        if lo <= exact <= hi:
            assert abs(int(q) - exact) <= 0.5


def test_quantize_dequantize_error_bound():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(1000) + 1j * rng.standard_normal(1000)
    frac = choose_frac_bits(np.abs(np.concatenate([x.real, x.imag])).max(), 16)
    r, i = quantize_complex(x, 16, frac)
    err = np.abs(dequantize(r, i, frac) - x)
    assert err.max() <= 2.0 ** (-frac - 1) * np.sqrt(2) + 1e-15
    assert np.abs(r).max() <= 2**15 - 1 and np.abs(r).max() > 2**14  # uses the range


def test_quantize_rejects_nan():
    with pytest.raises(UsageError):
        quantize_complex(np.array([np.nan]), 16, 4)


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-6, 1e9), st.integers(4, 24))
def test_choose_frac_bits_is_largest_without_saturation(m, bits):
    q = choose_frac_bits(m, bits)
    limit = 2 ** (bits - 1) - 1
    assert np.rint(m * 2.0**q) <= limit
    assert np.rint(m * 2.0 ** (q + 1)) > limit


def test_max_terms_and_required_acc_bits():
    assert max_terms(16, 48) == 65535
    assert max_terms(16, 40) == 255
    assert required_acc_bits(65535, 16) == 48
    assert required_acc_bits(65536, 16) == 49
    assert FixedPointFormat().max_terms == 65535


def test_no_overflow_worst_case_at_documented_width():
    """Summing max_terms worst-case products stays in range (no wrap), one more could wrap."""
    fmt = FixedPointFormat()
    n = fmt.max_terms
    worst = 2**31  # |xr*wr - xi*wi| max for 16-bit operands (checked in test_complex_product_extremes)
    assert n * worst <= 2 ** (fmt.acc_bits - 1) - 1
    assert (n + 1) * worst > 2 ** (fmt.acc_bits - 1) - 1
    # the executor accumulating the real worst case over n groups: re = (-2^15)(-2^15) - (-2^15)(2^15-1)
    xr = np.array([-(2**15)])
    xi = np.array([-(2**15)])
    wr = np.array([[-(2**15)]])
    wi = np.array([[2**15 - 1]])
    re, im = complex_product(xr, xi, wr[0], wi[0])
    table = np.zeros((1, 1), dtype=np.int64)
    acc_re, acc_im = execute_group(table, [0], 1, xr, xi, wr, wi)
    total_re = int(acc_re[0, 0]) * n
    assert abs(total_re) < 2 ** (fmt.acc_bits - 1)
    # accumulate n times via acc_in (modular) equals the exact total
    a_re, a_im = np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64)
    for _ in range(3):
        a_re, a_im = execute_group(table, [0], 1, xr, xi, wr, wi, acc_re=a_re, acc_im=a_im)
    assert int(a_re[0, 0]) == 3 * int(re[0]) and int(a_im[0, 0]) == 3 * int(im[0])


def test_wrap_is_twos_complement_in_executor():
    xr, xi = np.array([2**15 - 1]), np.array([0])
    wr, wi = np.array([[2**15 - 1]]), np.array([[0]])
    table = np.zeros((4, 1), dtype=np.int64)  # the same read 4 times
    re, _ = execute_group(table, [0], 1, xr, xi, wr, wi, acc_bits=33)
    expect = 4 * (2**15 - 1) ** 2
    expect = ((expect + 2**32) % 2**33) - 2**32
    assert int(re[0, 0]) == expect


def test_bank_addresses():
    bank_of = np.array([1, 0, 1, 2, 0, 1])
    assert bank_addresses(bank_of).tolist() == [0, 0, 1, 0, 1, 2]


def _reference_execute(table, bank_of, ports, tr, ti, kr, ki, broadcast):
    """Cycle-by-cycle pure-Python replay."""
    P, F = len(kr), len(tr)
    acc = [[0j] * F for _ in range(P)]
    for c, row in enumerate(table):
        used = {}
        seen = set()
        for p, f in enumerate(row):
            if f < 0:
                continue
            if broadcast and f in seen:
                pass
            else:
                used[bank_of[f]] = used.get(bank_of[f], 0) + 1
            seen.add(f)
            acc[p][f] += complex(tr[f], ti[f]) * complex(kr[p][f], ki[p][f])
        for n in used.values():
            if n > ports:
                return ("conflict", c)
    return acc


@st.composite
def schedule_case(draw):
    P = draw(st.integers(1, 4))
    F = draw(st.integers(1, 12))
    B = draw(st.integers(1, 4))
    ports = draw(st.integers(1, 2))
    cycles = draw(st.integers(0, 6))
    table = draw(st.lists(st.lists(st.integers(-1, F - 1), min_size=P, max_size=P),
                          min_size=cycles, max_size=cycles))
    bank_of = draw(st.lists(st.integers(0, B - 1), min_size=F, max_size=F))
    tr = draw(st.lists(i16, min_size=F, max_size=F))
    ti = draw(st.lists(i16, min_size=F, max_size=F))
    kr = draw(st.lists(st.lists(i16, min_size=F, max_size=F), min_size=P, max_size=P))
    ki = draw(st.lists(st.lists(i16, min_size=F, max_size=F), min_size=P, max_size=P))
    return table, bank_of, ports, tr, ti, kr, ki, draw(st.booleans()), P, F


@settings(max_examples=200, deadline=None)
@given(schedule_case())
def test_execute_group_matches_reference(case):
    table, bank_of, ports, tr, ti, kr, ki, broadcast, P, F = case
    ref = _reference_execute(table, bank_of, ports, tr, ti, kr, ki, broadcast)
    t = np.array(table, dtype=np.int64).reshape(len(table), P)
    args = (t, np.array(bank_of), ports, np.array(tr), np.array(ti), np.array(kr), np.array(ki))
    if isinstance(ref, tuple):
        with pytest.raises(BankConflictError) as exc:
            execute_group(*args, broadcast=broadcast)
        assert exc.value.cycle == ref[1]
        assert isinstance(exc.value, FlexSpecError)
        return
    re, im = execute_group(*args, broadcast=broadcast)
    assert re.shape == (P, F)
    for p in range(P):
        for f in range(F):
            assert (int(re[p, f]), int(im[p, f])) == (int(ref[p][f].real), int(ref[p][f].imag))


def test_execute_group_tiles_equals_per_tile_and_dense():
    rng = np.random.default_rng(3)
    P, F, T = 4, 40, 5
    mask = rng.random((P, F)) < 0.3
    # a trivially valid table: one PE active per cycle
    rows = []
    for p, f in zip(*np.nonzero(mask), strict=True):
        row = [-1] * P
        row[p] = f
        rows.append(row)
    table = np.array(rows)
    bank_of = np.arange(F) % 4
    tr, ti = rng.integers(-(2**15), 2**15, (2, T, F))
    kr, ki = rng.integers(-(2**15), 2**15, (2, P, F))
    re, im = execute_group_tiles(table, bank_of, 1, tr, ti, kr, ki)
    assert re.shape == (T, P, F)
    for t in range(T):
        r1, i1 = execute_group(table, bank_of, 1, tr[t], ti[t], kr, ki)
        assert np.array_equal(r1, re[t]) and np.array_equal(i1, im[t])
    dense = (tr + 1j * ti)[:, None, :].astype(complex) * ((kr + 1j * ki) * mask)[None]
    assert np.array_equal(re, dense.real.astype(np.int64)) and np.array_equal(im, dense.imag.astype(np.int64))


def test_conflict_detected_without_broadcast_but_not_with():
    table = np.array([[0, 0]])  # both PEs read frequency 0 in the same cycle
    with pytest.raises(BankConflictError):
        check_bank_conflicts(table, [0, 1], 1, broadcast=False)
    counts = check_bank_conflicts(table, [0, 1], 1, broadcast=True)
    assert counts.tolist() == [[1, 0]]
    check_bank_conflicts(table, [0, 1], 2, broadcast=False)


def test_bad_inputs_are_usage_errors():
    with pytest.raises(UsageError):
        execute_group(np.array([[5]]), [0, 0], 1, [1, 1], [1, 1], [[1, 1]], [[1, 1]])
    with pytest.raises(UsageError):
        FixedPointFormat(dsp_per_complex_mac=2)
    with pytest.raises(UsageError):
        FixedPointFormat(acc_bits=20)


def test_format_for_values():
    tile = np.array([3.0 + 0.5j, -1.0])
    kern = np.array([0.01j])
    fmt = FixedPointFormat.for_values(tile, kern)
    assert fmt.tile_frac_bits == 13 and fmt.kernel_frac_bits == choose_frac_bits(0.01, 16)
    assert fmt.acc_frac_bits == fmt.tile_frac_bits + fmt.kernel_frac_bits


# --------------------------------------------------------------------------- 2-D FFT / IFFT

from fractions import Fraction  # noqa: E402

from hypothesis.extra import numpy as hnp  # noqa: E402

from flexspec.accel.fixed_point import (  # noqa: E402
    FFT_SIZES,
    FFTFormat,
    fft2d_real_checked,
    fft2d_real_fixed,
    ifft2d_real_checked,
    ifft2d_real_fixed,
    round_shift,
)


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**40), 2**40), st.integers(0, 20))
def test_round_shift_is_round_half_away_from_zero(x, s):
    exact = Fraction(x, 2**s)
    mag = abs(exact)
    expect = int(mag) + (1 if mag - int(mag) >= Fraction(1, 2) else 0)
    assert int(round_shift(np.int64(x), s)) == (expect if x >= 0 else -expect)


def _wide(n, in_bits=16, shift=0, inverse=False, tw_bits=18):
    full = FFTFormat(n, in_bits, in_bits, 0, tw_bits, inverse).full_bits
    return FFTFormat(n, in_bits, full, shift, tw_bits, inverse)


def _fft_parts_error(tiles, fmt):
    chk = fft2d_real_checked(tiles, fmt)
    ref = np.fft.rfft2(np.asarray(tiles, dtype=np.float64)) * 2.0**-fmt.out_shift
    err = np.maximum(np.abs(chk.re - ref.real), np.abs(chk.im - ref.imag))
    return chk, err


def _ifft_error(re, im, fmt):
    chk = ifft2d_real_checked(re, im, fmt)
    ref = np.fft.irfft2(re + 1j * np.asarray(im, dtype=np.float64), s=(fmt.n, fmt.n)) * fmt.n**2 * 2.0**-fmt.out_shift
    return chk, np.abs(chk.re - ref)


@st.composite
def _tiles(draw, inverse=False):
    n = draw(st.sampled_from([4, 8, 16]))
    bits = draw(st.integers(6, 20))
    lim = 2 ** (bits - 1)
    shape = (2, n, n // 2 + 1) if inverse else (n, n)
    elems = st.one_of(st.integers(-lim, lim - 1), st.sampled_from([-lim, lim - 1, 0]))
    data = draw(hnp.arrays(np.int64, shape, elements=elems))
    shift = draw(st.integers(0, 2 * (n.bit_length() - 1) + 2))
    tw = draw(st.integers(10, 20))
    return _wide(n, bits, shift, inverse, tw), data


@settings(max_examples=120, deadline=None)
@given(_tiles())
def test_fft2d_within_its_derived_bound_of_numpy(case):
    """Every output part of the fixed-point FFT is within its own derived bound of numpy.fft.rfft2
    (float64, an independent reference) scaled by 2^-out_shift; wide outputs never saturate."""
    fmt, tile = case
    chk, err = _fft_parts_error(tile, fmt)
    assert chk.saturated == 0
    assert np.all(err <= chk.bound_lsb + 1e-9)
    # negation symmetry of round-half-away: FFT(-x) = -FFT(x) exactly
    if tile.min() > -(2 ** (fmt.in_bits - 1)):
        nre, nim = fft2d_real_fixed(-tile, fmt)
        assert np.array_equal(nre, -chk.re) and np.array_equal(nim, -chk.im)


@settings(max_examples=120, deadline=None)
@given(_tiles(inverse=True))
def test_ifft2d_within_its_derived_bound_of_numpy(case):
    """The fixed-point IFFT against N^2 * numpy.fft.irfft2 (which, like the RTL, ignores the
    imaginary parts of row bins 0 and N/2), per output value."""
    fmt, data = case
    chk, err = _ifft_error(data[0], data[1], fmt)
    assert chk.saturated == 0
    assert np.all(err <= chk.bound_lsb + 1e-9)


@pytest.mark.parametrize("n", [8, 16])
@pytest.mark.parametrize("inverse", [False, True])
def test_transform_bound_is_not_vacuous_at_16_bits(n, inverse):
    """At the widths in use (16-bit data, 18-bit twiddles) the worst measured error over 3000 random
    tiles reaches the bound within a factor 5 at every output shift (within 1.5 at the shift that
    fits a 16-bit output, where the output rounding dominates)."""
    rng = np.random.default_rng(n + 10 * inverse)
    stages = n.bit_length() - 1
    for shift in (0, 3, 2 * stages):
        fmt = _wide(n, 16, shift, inverse)
        if inverse:
            re, im = rng.integers(-(2**15), 2**15, size=(2, 3000, n, n // 2 + 1))
            chk, err = _ifft_error(re, im, fmt)
        else:
            chk, err = _fft_parts_error(rng.integers(-(2**15), 2**15, size=(3000, n, n)), fmt)
        worst, bound = float(err.max()), float(chk.bound_lsb.max())
        assert worst <= bound
        assert bound <= (1.5 if shift == 2 * stages else 5.0) * worst, (shift, worst, bound)


@pytest.mark.parametrize("n", FFT_SIZES)
def test_extreme_tiles_never_overflow_inside(n):
    """All-max, all-min and sign patterns (the DFT's worst cases) pass every stage without wrap
    (the model raises FixedPointOverflowError if a stage word overflows)."""
    lim = 2**15
    idx = np.add.outer(np.arange(n), np.arange(n))
    tiles = np.stack([np.full((n, n), -lim), np.full((n, n), lim - 1), np.where(idx % 2, -lim, lim - 1),
                      np.broadcast_to(np.where(np.arange(n)[:, None] % 2, -lim, lim - 1), (n, n))])
    re, im = fft2d_real_fixed(tiles, _wide(n))
    assert re[0, 0, 0] == -lim * n * n and re[1, 0, 0] == (lim - 1) * n * n
    spec = np.stack([np.full((n, n // 2 + 1), v) for v in (-lim, lim - 1)])
    ifft2d_real_fixed(spec, spec[::-1].copy(), _wide(n, inverse=True))


def test_saturation_is_counted_and_exact():
    fmt = FFTFormat(8, 16, 16, 0)  # no shift into 16 bits: the DC of a large tile saturates
    chk = fft2d_real_checked(np.full((1, 8, 8), 1000), fmt)
    assert chk.saturated >= 1 and chk.re[0, 0, 0] == 2**15 - 1


def test_transform_bad_input_is_a_usage_error():
    fmt = FFTFormat(8, 12, 16, 4)
    with pytest.raises(UsageError, match="12-bit"):
        fft2d_real_fixed(np.full((8, 8), 2**11), fmt)
    with pytest.raises(UsageError, match=r"\[\.\.\., 8, 8\]"):
        fft2d_real_fixed(np.zeros((8, 5), dtype=np.int64), fmt)
    with pytest.raises(UsageError, match="forward transform"):
        ifft2d_real_fixed(np.zeros((8, 5), dtype=np.int64), np.zeros((8, 5), dtype=np.int64), fmt)
    for bad in (dict(n=12), dict(in_bits=1), dict(tw_bits=40), dict(out_shift=-1), dict(out_bits=80)):
        with pytest.raises(UsageError):
            FFTFormat(**{"n": 8, "in_bits": 16, "out_bits": 16, "out_shift": 4, **bad})
