"""Fixed-point formats, named rounding modes and explicit overflow handling.

Every integer datapath in hwnorm (quantized BN, thresholds, requantization) goes through
the helpers here, so the rounding rule of a block is a *name* carried by its spec, never an
implied ``+ 0.5`` somewhere in a kernel.

Rounding a right shift by ``s`` works on the remainder bits, not by adding a rounding
constant first, so it can never overflow — not even at ``INT64_MIN``::

    x  = q·2^s + rem          q = x >> s (arithmetic), 0 ≤ rem < 2^s, half = 2^(s-1)

    floor      q
    half_up    q + (rem ≥ half)                         ties towards +inf (TFLite single rounding)
    half_away  q + (rem ≥ half) if x ≥ 0 else q + (rem > half)   (gemmlowp RoundingDivideByPOT)
    half_even  q + (rem > half or (rem == half and q odd))       (ONNX, PyTorch)

Kernels whose operand is known to have headroom (the quantized BN's 63-bit accumulator) may
instead add a rounding constant before shifting — fewer operations per element — through
``lifted_rounding``; the property tests prove that form equal to this one at every shift.

The Numba kernels are the golden model; ``tests/reference.py`` holds a slow big-integer
reference that the property tests compare them with.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from hwnorm.datatypes import IntType

__all__ = [
    "Rounding", "Overflow", "FixedFormat",
    "shift_round", "lifted_rounding", "lifted_shift_round", "fit", "fit_scalar", "requantize",
    "quantize_multiplier", "multiply_by_quantized_multiplier",
    "saturating_rounding_doubling_high_mul", "rounding_divide_by_pot",
    "INT32_MIN", "INT32_MAX", "MAX_SHIFT",
]

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT64_MAX = (1 << 63) - 1
MAX_SHIFT = 63  # right shifts of int64 values: 0 … 63


class _Named(enum.IntEnum):
    """An IntEnum that parses its lower-case name and says what is allowed otherwise."""

    @classmethod
    def parse(cls, value: "str | _Named") -> "_Named":
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        allowed = ", ".join(m.name.lower() for m in cls)
        raise ValueError(f"unknown {cls.__name__.lower()} {value!r}; allowed: {allowed}")

    def __str__(self) -> str:
        return self.name.lower()


class Rounding(_Named):
    """How a value between two integers becomes an integer (see module docstring)."""

    FLOOR = 0
    HALF_UP = 1
    HALF_AWAY = 2
    HALF_EVEN = 3


class Overflow(_Named):
    """What happens to a value outside the format: clamp it, or keep the low bits."""

    SATURATE = 0
    WRAP = 1


@dataclass(frozen=True)
class FixedFormat:
    """A two's-complement (or unsigned) fixed-point format.

    ``int_bits`` counts the sign bit for signed formats (the ``ap_fixed<W, I>``
    convention), so ``width = int_bits + frac_bits`` and a stored integer ``q`` means
    ``q · 2^-frac_bits``. ``FixedFormat(8, 0)`` is int8, ``FixedFormat(1, 7)`` is Q0.7.
    Either part may be negative (a scale above 1 or a purely fractional range), the
    width must lie in 1 … 64.
    """

    int_bits: int
    frac_bits: int = 0
    signed: bool = True

    def __post_init__(self):
        for name in ("int_bits", "frac_bits"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise ValueError(f"FixedFormat.{name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        object.__setattr__(self, "signed", bool(self.signed))
        if not 1 <= self.width <= 64 or (not self.signed and self.width > 63):
            raise ValueError(
                f"FixedFormat width {self.width} (int_bits {self.int_bits} + frac_bits "
                f"{self.frac_bits}) outside 1 … 64 (unsigned: 1 … 63)")

    @classmethod
    def integer(cls, width: int, signed: bool = True) -> "FixedFormat":
        return cls(width, 0, signed)

    @property
    def width(self) -> int:
        return self.int_bits + self.frac_bits

    @property
    def int_type(self) -> IntType:
        """The stored integers' type (the owner of their range)."""
        return IntType(self.width, self.signed)

    @property
    def min_int(self) -> int:
        return self.int_type.min

    @property
    def max_int(self) -> int:
        return self.int_type.max

    @property
    def scale(self) -> float:
        return math.ldexp(1.0, -self.frac_bits)

    def __str__(self) -> str:
        return f"{'s' if self.signed else 'u'}fix<{self.width},{self.int_bits}>"

    def contains(self, q) -> bool:
        q = np.asarray(q)
        return bool(np.all((q >= self.min_int) & (q <= self.max_int)))

    def quantize(self, x, rounding="half_even", overflow="saturate") -> np.ndarray:
        """Float → stored integers ``q = R(x · 2^frac_bits)``, then saturate or wrap.

        Exact: scaling by a power of two loses nothing and the tie test looks at the
        exact fractional part. NaN is an error; ±inf saturates (and is an error when
        wrapping, where it has no meaning).
        """
        rounding, overflow = Rounding.parse(rounding), Overflow.parse(overflow)
        x = np.asarray(x, dtype=np.float64)
        if np.isnan(x).any():
            raise ValueError(f"cannot quantize NaN to {self}")
        scaled = np.ldexp(x, self.frac_bits)
        if overflow == Overflow.WRAP and not np.all(np.abs(scaled) < 2.0**63):
            raise ValueError(f"cannot wrap values beyond ±2^63 (or inf) into {self}; use saturate")
        out = _round_float(scaled.ravel(), x.ravel(), int(rounding))
        return fit(out, self, overflow).reshape(x.shape)

    def dequantize(self, q) -> np.ndarray:
        return np.ldexp(np.asarray(q, dtype=np.float64), -self.frac_bits)


# --------------------------------------------------------------------------- kernels

@njit(cache=True, inline="always")
def _round_shift_half(x, s, half, mode):
    """Round ``x / 2^s`` by ``mode``; ``half`` must be ``2^max(s-1, 0)``.

    ``q << s`` never overflows (INT64_MIN is a multiple of 2^s), so ``rem`` is exact; for
    s = 0, rem = 0 < half = 1: no increment. Bitwise ``|``/``&`` keep the loop branch-free
    and ``half`` comes in precomputed, which lets LLVM vectorize the callers' loops.
    """
    q = x >> s
    rem = x - (q << s)
    if mode == 1:
        inc = rem >= half
    elif mode == 2:
        inc = (rem > half) | ((rem == half) & (x >= 0))
    elif mode == 3:
        inc = (rem > half) | ((rem == half) & ((q & 1) == 1))
    else:
        inc = False
    return q + np.int64(inc)


@njit(cache=True, inline="always")
def _shift_round1(x, s, mode):
    """Round ``x / 2^s`` by ``mode`` (0 ≤ s ≤ 63), int64 in and out, overflow-free."""
    return _round_shift_half(x, s, np.int64(1) << max(s - 1, 0), mode)


# ---- rounding lifted into an addition, for kernels whose operand has headroom
#
# When the value to shift is a sum ``acc = p + bias`` known to stay within signed 63 bits (a
# spec guarantees this for its accumulator), the rounding constant can ride on the bias and the
# remainder never needs computing — fewer vector operations per element than the form above::
#
#     t = acc + lift              lift = 2^(s-1) for the three nearest modes; 0 for floor or s = 0
#     floor, half_up   t >> s
#     half_away        (t − [t < lift]) >> s        t < lift ⟺ acc < 0: a negative tie goes down
#     half_even        r − [t mod 2^s = 0]·(r & 1),  r = t >> s     a tie onto an odd r steps back
#
# |acc| ≤ 2^62 and lift ≤ 2^62 keep t (and t − 1) inside int64. Per shift the kernel is given
# ``away`` = lift, or INT64_MIN for s = 0 (never fires), and ``tie_mask`` = 2^s − 1, or −1 for
# s = 0 (then "t mod 1 = 0" reads t = 0, whose r = 0 is even: no step). tests/test_fixed.py
# proves this equal to the big-integer reference at every shift and mode.

def lifted_rounding(shift, rounding: "Rounding | str") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lift, away, tie_mask)`` int64 arrays, one entry per shift, for ``lifted_shift_round``."""
    s = np.asarray(shift, dtype=np.int64)
    if s.size and (s.min() < 0 or s.max() > MAX_SHIFT):
        raise ValueError(f"shifts must lie in 0 … {MAX_SHIFT}")
    rounding = Rounding.parse(rounding)
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    lift = np.zeros_like(s) if rounding == Rounding.FLOOR else half
    away = np.where(s > 0, half, np.iinfo(np.int64).min)
    low_bits = (np.left_shift(np.uint64(1), s.astype(np.uint64)) - np.uint64(1)).view(np.int64)  # 2^s − 1
    tie_mask = np.where(s > 0, low_bits, -1)
    return lift, away, tie_mask


@njit(cache=True, inline="always")
def lifted_shift_round(t, s, away, tie_mask, mode):
    """Round ``(t − lift) / 2^s`` by ``mode`` given ``t = acc + lift`` (see the block above)."""
    if mode == 2:
        t -= np.int64(t < away)
    r = t >> s
    if mode == 3:
        r -= np.int64((t & tie_mask) == 0) & (r & 1)
    return r


@njit(cache=True, inline="always")
def fit_scalar(v, lo, hi, width, saturate):
    """Saturate ``v`` to [lo, hi] or wrap it to ``width`` bits (two's complement if lo < 0)."""
    if saturate:
        return lo if v < lo else (hi if v > hi else v)
    if width >= 64:
        return v
    bits = np.uint64(v) & ((np.uint64(1) << np.uint64(width)) - np.uint64(1))
    if lo < 0 and bits >= (np.uint64(1) << np.uint64(width - 1)):
        return np.int64(bits) - (np.int64(1) << width)
    return np.int64(bits)


@njit(cache=True)
def _shift_round_kernel(x, shift, mode):
    out = np.empty(x.size, np.int64)
    for i in range(x.size):
        out[i] = _shift_round1(x[i], shift[i], mode)
    return out


@njit(cache=True)
def _fit_kernel(x, lo, hi, width, saturate):
    out = np.empty(x.size, np.int64)
    for i in range(x.size):
        out[i] = fit_scalar(x[i], lo, hi, width, saturate)
    return out


@njit(cache=True)
def _requantize_kernel(a, b, shift, mode, lo, hi, width, saturate):
    out = np.empty(a.size, np.int64)
    for i in range(a.size):
        out[i] = fit_scalar(_shift_round1(a[i] * b[i], shift[i], mode), lo, hi, width, saturate)
    return out


@njit(cache=True)
def _round_float(v, original, mode):
    """Round already-scaled floats to int64 by ``mode``; the caller handles NaN/range."""
    out = np.empty(v.size, np.int64)
    for i in range(v.size):
        x = v[i]
        if x >= 9.223372036854775e18:
            out[i] = 9223372036854775807
            continue
        if x <= -9.223372036854775e18:
            out[i] = -9223372036854775807 - 1
            continue
        if x == 0.0:
            # Scaling may underflow a tiny negative value to -0.0: floor must still give -1.
            out[i] = -1 if (mode == 0 and original[i] < 0.0) else 0
            continue
        fl = np.floor(x)
        d = x - fl  # exact: fl and x share the binade or x is an integer
        q = np.int64(fl)
        if mode == 1:
            inc = d >= 0.5
        elif mode == 2:
            inc = d > 0.5 or (d == 0.5 and x > 0.0)
        elif mode == 3:
            inc = d > 0.5 or (d == 0.5 and (q & 1) == 1)
        else:
            inc = False
        out[i] = q + np.int64(inc)
    return out


def _as_int64(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iub":
        if arr.dtype.kind == "O":
            arr = np.asarray(values, dtype=object)
            if not all(isinstance(v, (int, np.integer)) for v in arr.ravel()):
                raise ValueError(f"{name} must hold integers")
            if arr.size and (min(arr.ravel()) < -(1 << 63) or max(arr.ravel()) >= (1 << 63)):
                raise ValueError(f"{name} must fit int64")
        else:
            raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and arr.max() >= np.uint64(1 << 63):
        raise ValueError(f"{name} must fit int64")
    return arr.astype(np.int64)


def _shifts(shift, shape) -> np.ndarray:
    s = _as_int64("shift", shift)
    if s.size and (s.min() < 0 or s.max() > MAX_SHIFT):
        raise ValueError(f"shift must lie in 0 … {MAX_SHIFT}, got {int(s.min())} … {int(s.max())}")
    return np.broadcast_to(s, shape).ravel()


def shift_round(x, shift, rounding="floor") -> np.ndarray:
    """``R(x / 2^shift)`` for int64 ``x`` and right shifts 0 … 63 (scalar or per element)."""
    mode = Rounding.parse(rounding)
    x = _as_int64("x", x)
    return _shift_round_kernel(x.ravel(), _shifts(shift, x.shape), int(mode)).reshape(x.shape)


def fit(x, fmt: FixedFormat, overflow="saturate") -> np.ndarray:
    """Bring integers into ``fmt``'s range: clamp (saturate) or keep the low bits (wrap)."""
    overflow = Overflow.parse(overflow)
    x = _as_int64("x", x)
    out = _fit_kernel(x.ravel(), fmt.min_int, min(fmt.max_int, INT64_MAX), fmt.width,
                      overflow == Overflow.SATURATE)
    return out.reshape(x.shape)



def requantize(a, b, shift, rounding, out_fmt: FixedFormat, overflow="saturate") -> np.ndarray:
    """``fit(R(a·b / 2^shift), out_fmt)`` — the multiply-round-fit step of every datapath.

    ``a`` and ``b`` are operands of at most 32 bits each (checked), so the product is
    exact in 64 bits.
    """
    mode, overflow = Rounding.parse(rounding), Overflow.parse(overflow)
    a, b = np.broadcast_arrays(_as_int64("a", a), _as_int64("b", b))
    for name, v in (("a", a), ("b", b)):
        if v.size and (v.min() < INT32_MIN or v.max() > (1 << 32) - 1):
            raise ValueError(f"requantize operand {name} must fit 32 bits (signed or unsigned)")
    prod_bits = [(int(v.min()) if v.size else 0, int(v.max()) if v.size else 0) for v in (a, b)]
    extremes = [x * y for x in prod_bits[0] for y in prod_bits[1]]
    if extremes and (min(extremes) < -(1 << 63) or max(extremes) > INT64_MAX):
        raise ValueError("requantize product does not fit 64 bits (two unsigned 32-bit operands)")
    shape = a.shape
    out = _requantize_kernel(np.ascontiguousarray(a).ravel(), np.ascontiguousarray(b).ravel(),
                             _shifts(shift, shape), int(mode), out_fmt.min_int,
                             min(out_fmt.max_int, INT64_MAX), out_fmt.width,
                             overflow == Overflow.SATURATE)
    return out.reshape(shape)


# ------------------------------------------------------------ TFLite / gemmlowp requant

def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: ``real ≈ m · 2^(shift - 31)`` with int32 ``m``.

    frexp, round half away from zero of ``q·2^31``, renormalize when that reaches 2^31;
    a shift below −31 flushes to ``(0, 0)``; a shift above 30 saturates to
    ``(2^31 − 1, 30)`` (what single rounding supports).
    """
    real = float(real)
    if not math.isfinite(real):
        raise ValueError(f"quantize_multiplier: multiplier must be finite, got {real}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    scaled = q * 2.0**31  # exact: a power-of-two scaling
    m = int(math.floor(abs(scaled) + 0.5)) * (1 if scaled > 0 else -1)  # half away from zero
    if m == 1 << 31:
        m //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return INT32_MAX, 30
    return m, shift


@njit(cache=True, inline="always")
def _wrap32_nb(v):
    return ((v + 2147483648) & 4294967295) - 2147483648


@njit(cache=True, inline="always")
def _srdhm1(a, b):
    if a == -2147483648 and b == -2147483648:
        return np.int64(2147483647)
    ab = a * b
    nudge = np.int64(1 << 30) if ab >= 0 else np.int64(1 - (1 << 30))
    v = ab + nudge
    # C++ integer division truncates toward zero; Python's // floors.
    return v // 2147483648 if v >= 0 else -((-v) // 2147483648)


@njit(cache=True, inline="always")
def _rdbpot1(x, e):
    mask = (np.int64(1) << e) - 1
    rem = x & mask
    thr = (mask >> 1) + np.int64(x < 0)
    return (x >> e) + np.int64(rem > thr)


@njit(cache=True)
def _mbqm_kernel(x, m, shift, single):
    out = np.empty(x.size, np.int64)
    for i in range(x.size):
        s = shift[i]
        if single:
            total = 31 - s
            v = (x[i] * m[i] + (np.int64(1) << (total - 1))) >> total
            out[i] = _wrap32_nb(v)  # static_cast<int32_t>
        else:
            left = s if s > 0 else 0
            right = 0 if s > 0 else -s
            shifted = _wrap32_nb(x[i] << left)  # int32 multiply by 1 << left wraps
            out[i] = _rdbpot1(_srdhm1(shifted, m[i]), right)
    return out


def _int32_array(name, v) -> np.ndarray:
    arr = _as_int64(name, v)
    if arr.size and (arr.min() < INT32_MIN or arr.max() > INT32_MAX):
        raise ValueError(f"{name} must fit int32")
    return arr


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 arrays."""
    a, b = np.broadcast_arrays(_int32_array("a", a), _int32_array("b", b))
    zeros = np.zeros(a.size, np.int64)
    return _mbqm_kernel(np.ascontiguousarray(a).ravel(), np.ascontiguousarray(b).ravel(),
                        zeros, False).reshape(a.shape)


def rounding_divide_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2^exponent`` rounded half away from zero."""
    if not 0 <= int(exponent) <= 31:
        raise ValueError(f"rounding_divide_by_pot: exponent must lie in 0 … 31, got {exponent}")
    x = _int32_array("x", x)
    return shift_round(x, int(exponent), Rounding.HALF_AWAY)


def multiply_by_quantized_multiplier(x, m, shift, variant: str = "double") -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier`` on int32 arrays.

    ``variant="double"`` is the default TFLite build, ``RDBPOT(SRDHM(x·2^left, m), right)``;
    ``variant="single"`` is the ``TFLITE_SINGLE_ROUNDING`` build,
    ``(x·m + 2^(30−shift)) >> (31 − shift)``. Results are int32 with the wrap-around that
    the C++ casts give where TFLite only DCHECKs the range.
    """
    if variant not in ("double", "single"):
        raise ValueError(f"unknown variant {variant!r}; allowed: double, single")
    x, m, s = np.broadcast_arrays(_int32_array("x", x), _int32_array("m", m),
                                  _as_int64("shift", shift))
    if s.size and (s.min() < -31 or s.max() > 30):
        raise ValueError("multiply_by_quantized_multiplier: shift must lie in −31 … 30")
    if variant == "single" and m.size and m.min() < 0:
        raise ValueError("single-rounding multiply_by_quantized_multiplier needs m ≥ 0")
    out = _mbqm_kernel(np.ascontiguousarray(x).ravel(), np.ascontiguousarray(m).ravel(),
                       np.ascontiguousarray(s).ravel(), variant == "single")
    return out.reshape(x.shape)
