"""Element types: the one owner of integer ranges and widths (like qonnx ``DataType`` and
Amaranth ``Shape``: width and signedness travel together).

Every view asks these for a range or a width — the golden kernels, the HDL shapes, the
importer, the energy and resource models — instead of deriving ``2^(b−1) − 1`` again::

    IntType(8, signed=True)        int8:  [−128, 127]          width 8
    IntType(4)                     uint4: [0, 15]              width 4
    IntType.from_range(-3, 200)    the narrowest type holding both ends: int9
    BIPOLAR                        ±1 stored as one bit: bit 1 ↔ +1, bit 0 ↔ −1 (FINN / QONNX)

An ``IntType`` is a mathematical type: any width ≥ 1 (Python integers are unbounded); a kernel
that needs a machine word checks the width it needs itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = ["IntType", "Bipolar", "BIPOLAR", "element_type", "counter_bits", "bit_planes"]


@dataclass(frozen=True)
class IntType:
    """A two's-complement (``signed``) or unsigned integer of ``bits`` bits."""

    bits: int
    signed: bool = False

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or self.bits < 1:
            raise ValueError(f"an integer type needs a whole number of bits ≥ 1, got {self.bits!r}")
        if not isinstance(self.signed, bool):
            raise ValueError(f"IntType.signed must be true or false, got {self.signed!r}")

    is_bipolar = False

    @property
    def width(self) -> int:
        """Bits one element takes in a register or a stream lane."""
        return self.bits

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def range(self) -> tuple[int, int]:
        return self.min, self.max

    def contains(self, lo: int, hi: int | None = None) -> bool:
        """Every integer of ``[lo, hi]`` (one value if ``hi`` is None) is representable."""
        hi = lo if hi is None else hi
        return self.min <= int(lo) and int(hi) <= self.max

    @classmethod
    def from_range(cls, lo: int, hi: int, signed: bool | None = None) -> "IntType":
        """The narrowest type holding every integer of ``[lo, hi]``: unsigned when ``lo ≥ 0``
        unless ``signed`` asks for a two's-complement register (an accumulator)."""
        lo, hi = int(lo), int(hi)
        if lo > hi:
            raise ValueError(f"empty integer range [{lo}, {hi}]")
        signed = lo < 0 if signed is None else bool(signed)
        if not signed:
            if lo < 0:
                raise ValueError(f"[{lo}, {hi}] has negative values: it needs a signed type")
            return cls(max(1, hi.bit_length()), False)
        # v needs v.bit_length() + 1 bits when v ≥ 0, (−v − 1).bit_length() + 1 when v < 0
        magnitude = max(v.bit_length() if v >= 0 else (-v - 1).bit_length() for v in (lo, hi))
        return cls(magnitude + 1, True)

    @property
    def name(self) -> str:
        return f"{'int' if self.signed else 'uint'}{self.bits}"

    def __str__(self) -> str:
        return self.name

    def shape(self):
        """The Amaranth shape of one element (imported only when hardware is built)."""
        from amaranth.hdl import signed, unsigned
        return signed(self.bits) if self.signed else unsigned(self.bits)

    def to_dict(self) -> str:
        return self.name


@dataclass(frozen=True)
class Bipolar:
    """±1 values stored as one bit (bit 1 ↔ +1, bit 0 ↔ −1, sign(0) = +1): binary activations
    and weights. Its own type, not a 1-bit integer: a dot product of two ±1 vectors of length K
    is ``K − 2·popcount(a ⊕ w)``, not a sum of the stored bits."""

    is_bipolar = True
    bits = 1
    width = 1
    signed = False
    min = -1
    max = 1
    range = (-1, 1)
    name = "bipolar"

    def contains(self, lo: int, hi: int | None = None) -> bool:
        hi = lo if hi is None else hi
        return lo in (-1, 1) and hi in (-1, 1)

    @staticmethod
    def values(bits):
        """The ±1 values stored bits stand for (1 ↔ +1, 0 ↔ −1)."""
        return 2 * bits - 1

    def shape(self):
        from amaranth.hdl import unsigned
        return unsigned(1)

    def __str__(self) -> str:
        return self.name

    def to_dict(self) -> str:
        return self.name


BIPOLAR = Bipolar()


def element_type(name: str) -> "IntType | Bipolar":
    """An element type from its name (``bipolar``, ``int8``, ``uint4`` …), as IR JSON writes it."""
    if name == BIPOLAR.name:
        return BIPOLAR
    for prefix, signed in (("uint", False), ("int", True)):
        digits = str(name)[len(prefix):] if str(name).startswith(prefix) else ""
        if digits.isdigit() and int(digits) >= 1:
            return IntType(int(digits), signed)
    raise ValueError(f"unknown element type {name!r}; allowed: bipolar, intN, uintN (N ≥ 1)")


def int_array(value, what: str, int_type: "IntType" = None) -> np.ndarray:
    """A (nested, rectangular) list of whole numbers from a data file as an int64 array — never a
    coercion: 0.5, "1" or true are refused, as is a value outside ``int_type`` (default int64),
    with ``what`` named."""
    int_type = int_type or IntType(64, True)
    try:
        arr = np.array(value, dtype=object)
    except ValueError:  # ragged rows
        raise ValueError(f"{what}: rows of different lengths") from None
    flat = arr.reshape(-1)
    bad = next((v for v in flat if type(v) is not int), None)  # bool and numpy scalars are not JSON integers
    if bad is not None or arr.ndim == 0:
        shown = repr(bad if bad is not None else value)[:40]
        raise ValueError(f"{what}: must be (lists of) whole numbers, got {shown}")
    lo, hi = int_type.range
    if flat.size and (min(flat) < lo or max(flat) > hi):
        raise ValueError(f"{what}: values must lie in {int_type} [{lo}, {hi}]")
    return arr.astype(np.int64)


def whole(value, what: str, optional: bool = False):
    """A whole number from a data file as it is (None too when ``optional``) — 0.5, "1" or true
    are refused with ``what`` named, never truncated."""
    if type(value) is int or optional and value is None:
        return value
    raise ValueError(f"{what}: must be a whole number, got {repr(value)[:40]}")


def counter_bits(states: int) -> int:
    """Width of a counter (or an index) over ``states`` values 0 … states − 1."""
    return IntType.from_range(0, max(states, 1) - 1).bits


def bit_planes(values, width: int) -> np.ndarray:
    """Two's-complement bits ``(…, width)`` of integer values, least significant first (what a
    ``width``-bit register or memory word holds)."""
    v = np.asarray(values, np.int64) & ((1 << width) - 1)
    return ((v[..., None] >> np.arange(width)) & 1).astype(np.uint8)


# The FINN / QONNX datatype names an input annotation may carry (``finn_datatype`` in the graph's
# ``quantization_annotation``, as qonnx's ``ModelWrapper.get_tensor_datatype`` reads it).
FINN_FLOAT_TYPES = ("FLOAT32", "FLOAT16", "BFLOAT16")


def finn_datatype(name: str) -> "tuple[IntType | Bipolar, Fraction] | None":
    """The element type and scale of a FINN datatype name: ``BIPOLAR`` (±1), ``BINARY`` (0 / 1),
    ``UINTn`` / ``INTn`` (integers, scale 1), ``FIXED<w,i>`` (``w``-bit two's complement, ``i``
    integer bits: scale 2^(i−w)); ``None`` for a float type (no grid to read). Anything else — e.g.
    ``TERNARY`` or ``SCALEDINT<8>`` — is refused by name."""
    text = str(name).strip()
    if text in FINN_FLOAT_TYPES:
        return None
    if text == "BIPOLAR":
        return BIPOLAR, Fraction(1)
    if text == "BINARY":
        return IntType(1, False), Fraction(1)
    match = re.fullmatch(r"(U?)INT(\d{1,2})", text)
    if match and 1 <= int(match[2]) <= 32:
        return IntType(int(match[2]), not match[1]), Fraction(1)
    match = re.fullmatch(r"FIXED<(\d{1,2}),\s*(-?\d{1,2})>", text)
    if match and 1 <= int(match[1]) <= 32 and int(match[2]) <= int(match[1]):
        return IntType(int(match[1]), True), Fraction(2) ** (int(match[2]) - int(match[1]))
    raise ValueError(f"datatype {text[:40]!r} is not one hwnorm reads exactly; allowed: BIPOLAR, BINARY, UINTn, "
                     f"INTn (n ≤ 32), FIXED<w,i>, or a float type ({', '.join(FINN_FLOAT_TYPES)})")

