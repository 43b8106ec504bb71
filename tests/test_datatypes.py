"""Element types: the one owner of integer ranges and widths."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from hwnorm.datatypes import BIPOLAR, IntType, bit_planes, counter_bits, element_type
from hwnorm.fixed import FixedFormat


def test_ranges_and_names():
    assert IntType(8, signed=True).range == (-128, 127) and IntType(8).range == (0, 255)
    assert IntType(1).range == (0, 1) and IntType(1, signed=True).range == (-1, 0)
    assert str(IntType(4, signed=True)) == "int4" and IntType(12).name == "uint12"
    assert element_type("int9") == IntType(9, True) and element_type("bipolar") is BIPOLAR
    assert IntType(70, signed=True).max == (1 << 69) - 1  # a mathematical type: no machine-word cap
    for bad in ("int0", "float8", "uint", 3):
        with pytest.raises(ValueError, match="unknown element type"):
            element_type(bad)
    with pytest.raises(ValueError, match="bits ≥ 1"):
        IntType(0)


@pytest.mark.parametrize("lo, hi, want", [
    (-128, 127, IntType(8, True)),   # the bug a second width rule once had: 9 bits here
    (0, 255, IntType(8)), (0, 256, IntType(9)), (0, 0, IntType(1)), (-1, 0, IntType(1, True)),
    (-129, 0, IntType(9, True)), (-784, 784, IntType(11, True)), (5, 5, IntType(3)),
])
def test_from_range_is_the_narrowest(lo, hi, want):
    assert IntType.from_range(lo, hi) == want


@given(st.integers(-(1 << 70), 1 << 70), st.integers(0, 1 << 70), st.booleans())
def test_from_range_holds_both_ends_and_one_bit_less_does_not(lo, span, signed):
    hi = lo + span
    if lo < 0:
        signed = True
    t = IntType.from_range(lo, hi, signed=signed)
    assert t.contains(lo, hi) and t.signed == signed
    if t.bits > 1:
        assert not IntType(t.bits - 1, signed).contains(lo, hi)


def test_bipolar_is_its_own_type():
    assert BIPOLAR.is_bipolar and not IntType(1).is_bipolar
    assert BIPOLAR.width == 1 and BIPOLAR.range == (-1, 1) and BIPOLAR.contains(-1, 1)
    assert not BIPOLAR.contains(0)


def test_fixed_formats_read_their_range_from_the_integer_type():
    assert FixedFormat.integer(8).int_type == IntType(8, True)
    assert (FixedFormat(4, 4, signed=False).min_int, FixedFormat(4, 4, signed=False).max_int) == (0, 255)


def test_helpers():
    assert [counter_bits(n) for n in (0, 1, 2, 3, 4, 5, 16, 17)] == [1, 1, 1, 2, 2, 3, 4, 5]
    assert bit_planes(np.array([-2, 5]), 3).tolist() == [[0, 1, 1], [1, 0, 1]]
