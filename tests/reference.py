"""Slow, obviously-correct big-integer references. Used only by the tests.

Written from the mathematical definitions (exact rationals, Python ints), deliberately not
from the kernels' remainder tricks, so that agreement means something.
"""

from fractions import Fraction
import math

FLOOR, HALF_UP, HALF_AWAY, HALF_EVEN = "floor", "half_up", "half_away", "half_even"


def round_rational(v: Fraction, mode: str) -> int:
    fl = math.floor(v)
    d = v - fl
    if mode == FLOOR:
        return fl
    if d != Fraction(1, 2):
        return fl + (d > Fraction(1, 2))
    if mode == HALF_UP:
        return fl + 1
    if mode == HALF_AWAY:
        return fl + 1 if v > 0 else fl
    if mode == HALF_EVEN:
        return fl + (fl % 2)
    raise ValueError(mode)


def shift_round(x: int, s: int, mode: str) -> int:
    return round_rational(Fraction(x, 1 << s), mode)


def fit(v: int, width: int, signed: bool, overflow: str) -> int:
    lo = -(1 << (width - 1)) if signed else 0
    hi = (1 << (width - 1)) - 1 if signed else (1 << width) - 1
    if overflow == "saturate":
        return min(max(v, lo), hi)
    v %= 1 << width
    return v - (1 << width) if signed and v > hi else v


def quantize(x: float, frac_bits: int, width: int, signed: bool, mode: str, overflow: str) -> int:
    if math.isinf(x):
        lo = -(1 << (width - 1)) if signed else 0
        hi = (1 << (width - 1)) - 1 if signed else (1 << width) - 1
        return hi if x > 0 else lo
    return fit(round_rational(Fraction(x) * Fraction(2) ** frac_bits, mode), width, signed, overflow)


def wrap32(v: int) -> int:
    return fit(v, 32, True, "wrap")


def srdhm(a: int, b: int) -> int:
    # gemmlowp's nudge + truncating division is exactly round-half-up of a·b / 2^31.
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    return round_rational(Fraction(a * b, 1 << 31), HALF_UP)


def rdbpot(x: int, e: int) -> int:
    return round_rational(Fraction(x, 1 << e), HALF_AWAY)


def mbqm(x: int, m: int, shift: int, variant: str) -> int:
    if variant == "single":
        return wrap32(math.floor(Fraction(x * m, 1 << (31 - shift)) + Fraction(1, 2)))
    left, right = max(shift, 0), max(-shift, 0)
    return rdbpot(srdhm(wrap32(x << left), m), right)
