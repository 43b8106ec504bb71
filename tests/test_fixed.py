"""Fixed-point kernels == big-integer reference, for every mode, width, tie and extreme."""

import itertools
import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hwnorm import fixed
from hwnorm.fixed import FixedFormat, Overflow, Rounding
from tests import reference as ref

MODES = [m.name.lower() for m in Rounding]
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def range_of(width, signed):
    return (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)


@st.composite
def int_in(draw, lo, hi):
    """Integers in [lo, hi] with the ends, zero and ±1 drawn often."""
    edges = [v for v in (lo, hi, lo + 1, hi - 1, 0, 1, -1) if lo <= v <= hi]
    return draw(st.one_of(st.sampled_from(edges), st.integers(lo, hi)))


@st.composite
def tie_heavy(draw, s):
    """int64 values near multiples of 2^(s-1): exact ties and their neighbours."""
    if s == 0:
        return draw(int_in(INT64_MIN, INT64_MAX))
    q = draw(st.integers(INT64_MIN >> s, INT64_MAX >> s))
    half = 1 << (s - 1)
    off = draw(st.sampled_from([0, half - 1, half, half + 1, (1 << s) - 1]))
    v = (q << s) + min(off, (1 << s) - 1)
    return min(max(v, INT64_MIN), INT64_MAX)


def test_exhaustive_small_widths():
    """Every 8-bit signed value, every shift 0 … 9, every mode."""
    x = np.arange(-128, 128)
    for s, mode in itertools.product(range(10), MODES):
        got = fixed.shift_round(x, s, mode)
        want = [ref.shift_round(int(v), s, mode) for v in x]
        assert got.tolist() == want, (s, mode)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), s=st.integers(0, 63), mode=st.sampled_from(MODES))
def test_shift_round_matches_reference(data, s, mode):
    xs = data.draw(st.lists(st.one_of(tie_heavy(s), int_in(INT64_MIN, INT64_MAX)),
                            min_size=1, max_size=40))
    got = fixed.shift_round(np.array(xs, dtype=np.int64), s, mode).tolist()
    assert got == [ref.shift_round(x, s, mode) for x in xs]


@numba.njit
def _lifted_kernel(acc, s, lift, away, tie_mask, mode):
    out = np.empty_like(acc)
    for i in range(acc.size):
        out[i] = fixed.lifted_shift_round(acc[i] + lift, s, away, tie_mask, mode)
    return out


ACC63_MIN, ACC63_MAX = -(1 << 62), (1 << 62) - 1  # a signed 63-bit accumulator: the headroom it needs


def test_lifted_rounding_exhaustive_small_values():
    x = np.arange(-300, 301, dtype=np.int64)
    for s, mode in itertools.product(range(12), Rounding):
        lift, away, tie_mask = (int(v[0]) for v in fixed.lifted_rounding([s], mode))
        got = _lifted_kernel(x, s, lift, away, tie_mask, int(mode)).tolist()
        assert got == [ref.shift_round(int(v), s, str(mode)) for v in x], (s, mode)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), s=st.integers(0, 63), mode=st.sampled_from(list(Rounding)))
def test_lifted_rounding_matches_reference_on_63_bit_accumulators(data, s, mode):
    """The lifted form (``t = acc + lift``) at every shift, ties and the 63-bit extremes included."""
    clip = lambda v: min(max(v, ACC63_MIN), ACC63_MAX)  # noqa: E731
    xs = data.draw(st.lists(st.one_of(tie_heavy(s).map(clip), int_in(ACC63_MIN, ACC63_MAX)),
                            min_size=1, max_size=40))
    lift, away, tie_mask = (int(v[0]) for v in fixed.lifted_rounding([s], mode))
    got = _lifted_kernel(np.array(xs, dtype=np.int64), s, lift, away, tie_mask, int(mode)).tolist()
    assert got == [ref.shift_round(x, s, str(mode)) for x in xs]


@settings(max_examples=400, deadline=None)
@given(data=st.data(), wa=st.integers(1, 32), wb=st.integers(1, 32),
       sa=st.booleans(), sb=st.booleans(), s=st.integers(0, 63),
       mode=st.sampled_from(MODES), wout=st.integers(1, 64), sout=st.booleans(),
       overflow=st.sampled_from(["saturate", "wrap"]))
def test_requantize_matches_reference(data, wa, wb, sa, sb, s, mode, wout, sout, overflow):
    """32-bit operands, 64-bit products, every rounding, both overflow behaviours."""
    if not sout and wout > 63:
        wout = 63
    if not sa and not sb and wa == wb == 32:
        sb = True  # two unsigned 32-bit operands overflow int64 — rejected, tested below
    la, ha = range_of(wa, sa)
    lb, hb = range_of(wb, sb)
    n = data.draw(st.integers(1, 30))
    a = data.draw(st.lists(int_in(la, ha), min_size=n, max_size=n))
    b = data.draw(st.lists(int_in(lb, hb), min_size=n, max_size=n))
    fmt = FixedFormat.integer(wout, sout)
    got = fixed.requantize(np.array(a), np.array(b), s, mode, fmt, overflow).tolist()
    want = [ref.fit(ref.shift_round(x * y, s, mode), wout, sout, overflow) for x, y in zip(a, b)]
    assert got == want


def test_requantize_most_negative_product():
    """INT32_MIN · INT32_MIN = 2^62 and INT32_MIN · INT32_MAX: the 64-bit extremes."""
    a = np.array([fixed.INT32_MIN, fixed.INT32_MIN, fixed.INT32_MAX])
    b = np.array([fixed.INT32_MIN, fixed.INT32_MAX, fixed.INT32_MAX])
    for s, mode in itertools.product([0, 1, 31, 62, 63], MODES):
        got = fixed.requantize(a, b, s, mode, FixedFormat.integer(64)).tolist()
        assert got == [ref.shift_round(int(x) * int(y), s, mode) for x, y in zip(a, b)]


def test_requantize_rejects_wide_operands():
    with pytest.raises(ValueError, match="32 bits"):
        fixed.requantize([1 << 33], [1], 0, "floor", FixedFormat.integer(8))
    with pytest.raises(ValueError, match="64 bits"):
        fixed.requantize([(1 << 32) - 1], [(1 << 32) - 1], 0, "floor", FixedFormat.integer(8))
    with pytest.raises(ValueError, match="shift"):
        fixed.shift_round([1], 64)
    with pytest.raises(ValueError, match="allowed: floor, half_up, half_away, half_even"):
        fixed.shift_round([1], 1, "nearest")


@settings(max_examples=200, deadline=None)
@given(data=st.data(), width=st.integers(1, 64), signed=st.booleans(),
       overflow=st.sampled_from(["saturate", "wrap"]))
def test_fit_matches_reference(data, width, signed, overflow):
    if not signed and width > 63:
        width = 63
    xs = data.draw(st.lists(int_in(INT64_MIN, INT64_MAX), min_size=1, max_size=30))
    got = fixed.fit(np.array(xs, dtype=np.int64), FixedFormat.integer(width, signed), overflow)
    assert got.tolist() == [ref.fit(x, width, signed, overflow) for x in xs]


@st.composite
def float_ties(draw, frac_bits):
    """Floats that land exactly on or next to a rounding tie after scaling."""
    k = draw(st.integers(-(1 << 40), 1 << 40))
    v = math.ldexp(k + 0.5, -frac_bits)
    return draw(st.sampled_from([v, math.nextafter(v, math.inf), math.nextafter(v, -math.inf)]))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), int_bits=st.integers(-8, 40), frac_bits=st.integers(-8, 40),
       signed=st.booleans(), mode=st.sampled_from(MODES),
       overflow=st.sampled_from(["saturate", "wrap"]))
def test_quantize_matches_reference(data, int_bits, frac_bits, signed, mode, overflow):
    width = int_bits + frac_bits
    if not 1 <= width <= 63:
        return
    fmt = FixedFormat(int_bits, frac_bits, signed)
    finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
    extra = st.sampled_from([0.0, -0.0, 5e-324, -5e-324, math.inf, -math.inf])
    xs = data.draw(st.lists(st.one_of(finite, float_ties(frac_bits), extra), min_size=1, max_size=30))
    if overflow == "wrap":
        xs = [x for x in xs if abs(math.ldexp(x, frac_bits)) < 2.0**63] or [0.0]
    got = fmt.quantize(np.array(xs), mode, overflow).tolist()
    assert got == [ref.quantize(x, frac_bits, width, signed, mode, overflow) for x in xs]


def test_quantize_dequantize_roundtrip_and_errors():
    fmt = FixedFormat(4, 4)  # sfix<8,4>: -8 … 7.9375 in steps of 1/16
    assert str(fmt) == "sfix<8,4>" and fmt.min_int == -128 and fmt.max_int == 127
    q = np.arange(fmt.min_int, fmt.max_int + 1)
    assert np.array_equal(fmt.quantize(fmt.dequantize(q)), q)
    with pytest.raises(ValueError, match="NaN"):
        fmt.quantize([np.nan])
    with pytest.raises(ValueError, match="wrap"):
        fmt.quantize([np.inf], overflow="wrap")
    with pytest.raises(ValueError, match="width"):
        FixedFormat(40, 40)
    assert Overflow.parse("WRAP") is Overflow.WRAP


# ---------------------------------------------------------------- TFLite / gemmlowp

@pytest.mark.parametrize("x, m, shift, double, single", [
    (3, 1 << 30, -2, 1, 0),   # REFERENCES.md §1 golden vectors
    (5, 1 << 30, -1, 2, 1),
])
def test_golden_vectors(x, m, shift, double, single):
    assert fixed.multiply_by_quantized_multiplier([x], [m], [shift], "double").tolist() == [double]
    assert fixed.multiply_by_quantized_multiplier([x], [m], [shift], "single").tolist() == [single]


def test_srdhm_and_rdbpot_specials():
    mn, mx = fixed.INT32_MIN, fixed.INT32_MAX
    assert fixed.saturating_rounding_doubling_high_mul([mn], [mn]).tolist() == [mx]
    # ties: positive away from zero, negative towards zero (the nudge is round-half-up)
    assert fixed.saturating_rounding_doubling_high_mul([1 << 30, -(1 << 30)], [1, 1]).tolist() == [1, 0]
    assert fixed.rounding_divide_by_pot([5, -5, 6, -6], 1).tolist() == [3, -3, 3, -3]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), variant=st.sampled_from(["double", "single"]))
def test_multiply_by_quantized_multiplier_matches_reference(data, variant):
    n = data.draw(st.integers(1, 30))
    i32 = int_in(fixed.INT32_MIN, fixed.INT32_MAX)
    m_lo = 0 if variant == "single" else fixed.INT32_MIN
    xs = data.draw(st.lists(i32, min_size=n, max_size=n))
    ms = data.draw(st.lists(int_in(m_lo, fixed.INT32_MAX), min_size=n, max_size=n))
    ss = data.draw(st.lists(st.integers(-31, 30), min_size=n, max_size=n))
    got = fixed.multiply_by_quantized_multiplier(np.array(xs), np.array(ms), np.array(ss), variant)
    assert got.tolist() == [ref.mbqm(x, m, s, variant) for x, m, s in zip(xs, ms, ss)]


def test_variants_disagree_on_a_few_percent():
    """REFERENCES.md: the two builds disagree on ~3.8% of random inputs (by ±1)."""
    rng = np.random.default_rng(1)
    x = rng.integers(-(1 << 20), 1 << 20, 200_000)
    m = rng.integers(1 << 30, (1 << 31) - 1, x.size)
    s = rng.integers(-12, 1, x.size)
    d = fixed.multiply_by_quantized_multiplier(x, m, s, "double")
    g = fixed.multiply_by_quantized_multiplier(x, m, s, "single")
    frac = np.mean(d != g)
    assert 0.005 < frac < 0.10 and np.abs(d - g).max() == 1


@settings(max_examples=500, deadline=None)
@given(real=st.one_of(st.floats(min_value=1e-12, max_value=1e12), st.floats(min_value=-1e12, max_value=-1e-12)))
def test_quantize_multiplier(real):
    m, shift = fixed.quantize_multiplier(real)
    assert fixed.INT32_MIN <= m <= fixed.INT32_MAX and -31 <= shift <= 30
    if shift == 0 and m == 0:
        assert abs(real) < 2.0**-31
    elif (m, shift) == (fixed.INT32_MAX, 30):
        assert abs(real) >= 2.0**30 * (1 - 2.0**-31)
    else:
        assert (1 << 30) <= abs(m) <= fixed.INT32_MAX
        # round half away from zero of the Q0.31 significand: error ≤ half an LSB
        assert abs(m * 2.0 ** (shift - 31) - real) <= 2.0 ** (shift - 32) * (1 + 1e-12)


def test_quantize_multiplier_edges():
    assert fixed.quantize_multiplier(0.0) == (0, 0)
    assert fixed.quantize_multiplier(0.5) == (1 << 30, 0)
    assert fixed.quantize_multiplier(1.0) == (1 << 30, 1)
    assert fixed.quantize_multiplier(1 - 2.0**-33) == (1 << 30, 1)  # rounds to 2^31: renormalized
    assert fixed.quantize_multiplier(2.0**-40) == (0, 0)
    with pytest.raises(ValueError, match="finite"):
        fixed.quantize_multiplier(float("nan"))
