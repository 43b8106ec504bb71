"""Quantizers on the code axis: every QONNX rounding mode's cut, checked against the mode's own
definition on exact rationals (ties included), and the code ranges QONNX computes."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from hwnorm.quantizer import ROUNDING_MODES, Quantizer, code_range


def _round(mode: str, u: Fraction) -> int:
    """The mode as QONNX's executor defines it (numpy functions), on an exact rational."""
    sign = 1 if u >= 0 else -1
    if mode in ("ROUND", "HALF_EVEN"):
        f = math.floor(u)
        return f + (1 if u - f > Fraction(1, 2) or (u - f == Fraction(1, 2) and f % 2) else 0)
    if mode == "HALF_UP":          # sign(u)·floor(|u| + ½)
        return sign * math.floor(abs(u) + Fraction(1, 2))
    if mode == "HALF_DOWN":        # sign(u)·ceil(|u| − ½)
        return sign * math.ceil(abs(u) - Fraction(1, 2))
    if mode == "FLOOR":
        return math.floor(u)
    if mode == "CEIL":
        return math.ceil(u)
    if mode in ("DOWN", "ROUND_TO_ZERO"):
        return sign * math.floor(abs(u))
    return sign * math.ceil(abs(u))  # UP


@pytest.mark.parametrize("mode", ROUNDING_MODES)
@given(num=st.integers(-4000, 4000), den=st.sampled_from([1, 2, 4, 3, 7, 1000]), level=st.integers(-9, 9))
def test_the_cut_of_every_level_is_the_mode_exactly(mode, num, den, level):
    u = Fraction(num, den)  # halves and integers are common: the ties
    cut, strict = Quantizer(4, True, rounding=mode).cut(level)
    assert (_round(mode, u) >= level) == (u > cut if strict else u >= cut)


def test_code_ranges_are_qonnx_min_int_and_max_int():
    assert code_range(8, True, False) == (-128, 127) and code_range(8, True, True) == (-127, 127)
    assert code_range(8, False, False) == (0, 255) and code_range(8, False, True) == (0, 254)
    assert code_range(2, True, True) == (-1, 1)  # ternary
    q = Quantizer(4, False, zero=3, relu=True)
    assert q.code_range == (3, 15) and q.levels()[0] == 3 and len(q.levels()[1]) == 12


def test_bad_quantizers_say_what_is_allowed():
    with pytest.raises(ValueError, match="allowed: ROUND, HALF_EVEN"):
        Quantizer(4, True, rounding="STOCHASTIC")
    with pytest.raises(ValueError, match="bit width"):
        Quantizer(0, True)


# ---------------------------------------------------------------- the two realizations after an accumulator
def _bn_chain(rng, channels: int, scale: float, zero: int):
    """A BN map of the accumulator, on the code axis of a quantizer with ``scale`` and ``zero``."""
    from hwnorm.bnn import SurdAffine
    g = rng.normal(0, 1, channels)
    g[0] = -abs(g[0])  # a decreasing channel: flipped by the thresholds
    form = SurdAffine.from_bn(g, rng.normal(0, 1, channels), rng.normal(0, 8, channels),
                              rng.uniform(20, 400, channels), 1e-5)
    return form.then_div(np.full(channels, scale)).then_add(np.full(channels, float(zero)))


@pytest.mark.parametrize("mode", ["ROUND", "HALF_UP", "FLOOR", "CEIL", "DOWN", "UP", "HALF_DOWN"])
@pytest.mark.parametrize("bits, signed, narrow, zero, relu", [(2, True, True, 0, False), (3, False, False, 2, True),
                                                            (4, True, False, 0, False), (1, False, False, 0, True)])
def test_thresholds_and_requantizer_are_the_quantizer_on_every_accumulator(mode, bits, signed, narrow, zero, relu):
    from hwnorm.quantizer import requant_spec, threshold_fold
    rng = np.random.default_rng(bits * 7 + zero)
    k = 96
    quant = Quantizer(bits, signed, narrow, mode, zero, relu)
    form = _bn_chain(rng, 5, 0.37, zero)
    acc = np.arange(-k, k + 1)
    fold = threshold_fold(form, quant, -k, k)
    grid = np.repeat(acc[:, None], 5, axis=1)
    got = fold.spec.apply(np.where(fold.flip, -grid, grid))
    lo, hi = quant.code_range
    for c in range(5):  # reference: the rounding mode on u(acc), to 2^-200, then the clip
        for x, q in zip(acc[::7], got[::7, c]):
            u = form.dyadic(c, precision=200).value(int(x))
            assert q == min(max(_round(mode, u), lo), hi), (c, x)
    if quant.datapath_rounding is None:
        with pytest.raises(ValueError, match="realize it with thresholds"):
            requant_spec(form, quant, -k, k)
    else:
        spec = requant_spec(form, quant, -k, k)
        np.testing.assert_array_equal(spec.apply(grid), got)
        assert spec.out_range == quant.code_range
