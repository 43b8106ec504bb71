"""Uniform integer quantizers as QONNX ``Quant`` defines them, decided exactly.

A quantizer maps a real ``y`` to the integer code ``q = clip(R(y/s + z), qmin, qmax)`` (the value it
stands for is ``(q − z)·s``). hwnorm folds everything before it into an exact real map of an
integer accumulator (:class:`hwnorm.bnn.SurdAffine`), divides that map by ``s`` and adds ``z`` —
so the quantizer itself works on the *code axis*: ``u = y/s + z`` and ``q = clip(R(u))``. On that
axis ``q ≥ L`` is a comparison of ``u`` with a cut that depends only on ``L`` and the rounding
mode, which is what a threshold layer stores::

    mode (QONNX name)            R(u)                         q ≥ L  ⇔
    ROUND, HALF_EVEN             nearest, ties to even        u ≥ L − ½  (L even)   u > L − ½  (L odd)
    HALF_UP                      nearest, ties away from 0    u ≥ L − ½  (L > 0)    u > L − ½  (L ≤ 0)
    HALF_DOWN                    nearest, ties toward 0       u > L − ½  (L > 0)    u ≥ L − ½  (L ≤ 0)
    FLOOR                        ⌊u⌋                          u ≥ L
    CEIL                         ⌈u⌉                          u > L − 1
    DOWN, ROUND_TO_ZERO          toward 0                     u ≥ L  (L > 0)        u > L − 1  (L ≤ 0)
    UP                           away from 0                  u > L − 1  (L > 0)    u ≥ L  (L ≤ 0)

(QONNX's executor spells HALF_UP as ``sign(u)·⌊|u| + ½⌋``, i.e. ties away from zero; ROUND is
numpy's ``round``, ties to even.) ``clip`` bounds come from the bit width, signedness and
``narrow``; a ReLU before the quantizer raises the lower bound to the code of zero, ``R(z) = z``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from hwnorm.datatypes import IntType
from hwnorm.defaults import COST_LIMITS
from hwnorm.fixed import FixedFormat, Rounding
from hwnorm.bnn import fold_thresholds, ThresholdFold, ThresholdSpec
from hwnorm.bnspec import fold_dyadics

__all__ = ["Quantizer", "Sign", "ROUNDING_MODES", "FLOAT_ROUNDING", "code_range", "threshold_fold", "requant_spec",
           "executor_codes", "check_against_executor", "quantizer_to_json", "quantizer_from_json"]

ROUNDING_MODES = ("ROUND", "HALF_EVEN", "HALF_UP", "HALF_DOWN", "FLOOR", "CEIL", "DOWN", "ROUND_TO_ZERO", "UP")
# Each mode on float arrays, in the array's own precision, as QONNX's executor rounds: the codes of
# constant weights (importer) and of float inputs (hwnorm.inputs) are computed with these.
FLOAT_ROUNDING = {
    "ROUND": np.round, "HALF_EVEN": np.round, "CEIL": np.ceil, "FLOOR": np.floor, "DOWN": np.fix, "ROUND_TO_ZERO": np.fix,
    "UP": lambda v: np.sign(v) * np.ceil(np.abs(v)),
    "HALF_UP": lambda v: np.sign(v) * np.floor(np.abs(v) + v.dtype.type(0.5)),
    "HALF_DOWN": lambda v: np.sign(v) * np.ceil(np.abs(v) - v.dtype.type(0.5)),
}
# The requantizer datapath (hwnorm.bnspec) rounds by these; the other modes are realized by thresholds.
_DATAPATH_ROUNDING = {"ROUND": Rounding.HALF_EVEN, "HALF_EVEN": Rounding.HALF_EVEN, "HALF_UP": Rounding.HALF_AWAY,
                      "FLOOR": Rounding.FLOOR}


def code_range(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    """``(qmin, qmax)`` of a quantizer: the integer type's range, one code fewer when ``narrow``
    (the most negative for signed, the largest for unsigned — as QONNX)."""
    lo, hi = IntType(bits, signed).range
    if narrow:
        lo, hi = (lo + 1, hi) if signed else (lo, hi - 1)
    return lo, hi


@dataclass(frozen=True)
class Quantizer:
    """``q = clip(R(u), low, qmax)`` on the code axis ``u = y/s + z`` (module docstring)."""

    bits: int
    signed: bool
    narrow: bool = False
    rounding: str = "ROUND"
    zero: int = 0            # z: the code of the real value 0
    relu: bool = False       # a ReLU before the quantizer: codes below R(z) = z never occur

    def __post_init__(self):
        mode = str(self.rounding).upper()
        if mode not in ROUNDING_MODES:
            raise ValueError(f"unknown rounding_mode {self.rounding!r}; allowed: {', '.join(ROUNDING_MODES)}")
        object.__setattr__(self, "rounding", mode)
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or self.bits < 1:
            raise ValueError(f"bit width must be a whole number ≥ 1, got {self.bits!r}")

    @property
    def code_range(self) -> tuple[int, int]:
        """Codes the quantizer can output (after the ReLU floor)."""
        lo, hi = code_range(self.bits, self.signed, self.narrow)
        if self.relu:
            lo = min(max(lo, self.zero), hi)
        return lo, hi

    @property
    def code_type(self) -> IntType:
        return IntType.from_range(*self.code_range)

    def cut(self, level: int) -> tuple[Fraction, bool]:
        """``(c, strict)`` with ``R(u) ≥ level ⇔ u ≥ c`` (``u > c`` when strict)."""
        half, mode, L = Fraction(level) - Fraction(1, 2), self.rounding, level
        if mode in ("ROUND", "HALF_EVEN"):
            return half, L % 2 == 1
        if mode == "HALF_UP":
            return half, L <= 0
        if mode == "HALF_DOWN":
            return half, L > 0
        if mode == "FLOOR":
            return Fraction(L), False
        if mode == "CEIL":
            return Fraction(L - 1), True
        if mode in ("DOWN", "ROUND_TO_ZERO"):
            return (Fraction(L), False) if L > 0 else (Fraction(L - 1), True)
        return (Fraction(L - 1), True) if L > 0 else (Fraction(L), False)  # UP

    def round(self, u: Fraction) -> int:
        """``R(u)`` exactly (no clip): the rounding mode on a rational, by the same cuts."""
        below = math.floor(u)
        if u == below:
            return below
        cut, strict = self.cut(below + 1)
        return below + 1 if (u > cut if strict else u >= cut) else below

    def levels(self) -> tuple[int, list[tuple[Fraction, bool]]]:
        """``(base, cuts)``: ``q = base + #{i : u passes cut i}`` for the levels above the lowest code."""
        lo, hi = self.code_range
        return lo, [self.cut(level) for level in range(lo + 1, hi + 1)]

    @property
    def datapath_rounding(self) -> Rounding | None:
        """The requantizer's rounding mode for this quantizer, None when only thresholds realize it."""
        return _DATAPATH_ROUNDING.get(self.rounding)


@dataclass(frozen=True)
class Sign:
    """A one-bit sign quantizer: code +1 iff ``u = y/s + z ≥ 0``, else −1, standing for ``(±1 − z)·s``.

    QONNX's ``BipolarQuant`` is the case ``z = 0`` (it compares ``y`` itself with 0, no division);
    its executor runs a 1-bit *signed* ``Quant`` this way too, zero point included — dropping ``z``
    there would move the decision and the values (``divides``: the executor's ``y/s + z``)."""

    zero: int = 0
    divides: bool = False    # a 1-bit signed Quant (y/s + z ≥ 0); False: a BipolarQuant (y ≥ 0)

    def code(self, u: Fraction) -> int:
        return 1 if u >= 0 else -1


def quantizer_to_json(quant: "Quantizer | Sign") -> dict | None:
    """A network's input quantizer as its meta records it: None for a BipolarQuant, a 1-bit
    signed one for the sign of a Quant (:func:`quantizer_from_json` reads it back)."""
    if isinstance(quant, Sign):
        return None if not quant.divides else {"bits": 1, "signed": True, "narrow": False, "rounding": "ROUND",
                                               "zero": quant.zero}
    return {"bits": quant.bits, "signed": quant.signed, "narrow": quant.narrow, "rounding": quant.rounding,
            "zero": quant.zero}


def quantizer_from_json(q: dict | None) -> "Quantizer | Sign":
    if q is None:
        return Sign()
    if q["bits"] == 1 and q["signed"]:
        return Sign(q["zero"], divides=True)
    return Quantizer(q["bits"], q["signed"], q["narrow"], q["rounding"], q["zero"])


# Probes of the exactness guard: the code axis stays within what float32 resolves to well under
# the ¼ margin kept from every cut, and a wide quantizer is probed near its ends and zero point.
_PROBE_LIMIT = 1 << 20
_PROBE_LEVELS = 64


def executor_codes(x, scale, zero, quant: "Quantizer | Sign") -> np.ndarray:
    """The integer codes QONNX's executor computes for float inputs ``x``, in float32 as it does:
    ``clip(R(x/s + z))``, or the sign of ``x/s + z`` (``x`` itself for a BipolarQuant)."""
    x32 = np.asarray(x, dtype=np.float32)
    if isinstance(quant, Sign) and not quant.divides:
        return np.where(x32 >= 0, 1, -1).astype(np.int64)
    with np.errstate(all="ignore"):
        y = x32 / np.asarray(scale, dtype=np.float32) + np.asarray(zero, dtype=np.float32)
        if isinstance(quant, Sign):
            return np.where(y >= 0, 1, -1).astype(np.int64)
        lo, hi = code_range(quant.bits, quant.signed, quant.narrow)
        y = np.clip(y, np.float32(lo), np.float32(hi))
        return FLOAT_ROUNDING[quant.rounding](y).astype(np.int64)


def _probes(quant: "Quantizer | Sign") -> list[Fraction]:
    """Code-axis points a quarter away from every decision (or the ones near the ends and the
    zero point of a wide quantizer), and beyond both ends."""
    if isinstance(quant, Sign):
        return [Fraction(v, 4) for v in (-9, -4, -1, 1, 4, 9)]
    lo, hi = code_range(quant.bits, quant.signed, quant.narrow)
    levels = range(lo + 1, hi + 1)
    if len(levels) > 3 * _PROBE_LEVELS:
        near = {*range(lo + 1, lo + 1 + _PROBE_LEVELS), *range(hi + 1 - _PROBE_LEVELS, hi + 1),
                *range(quant.zero - _PROBE_LEVELS // 2, quant.zero + _PROBE_LEVELS // 2)}
        levels = sorted(v for v in near if lo < v <= hi)
    out = [Fraction(lo - 3), Fraction(hi + 3)]
    for level in levels:
        cut, _ = quant.cut(level)
        out += [cut - Fraction(1, 4), cut + Fraction(1, 4)]
    return [u for u in out if abs(u) < _PROBE_LIMIT]


def check_against_executor(quant: "Quantizer | Sign", scales, zero: int, where: str) -> None:
    """The exactness guard: the quantizer as the importer represents it (its zero point, its clip
    and rounding, or a sign) gives the executor's code at probe inputs a quarter of a code away
    from every decision — for each of its (per-channel) scales, the first 16 of them (they differ
    only in float rounding). A form that disagrees is refused by name rather than approximated
    (ValueError)."""
    for s in np.unique(np.asarray(scales, dtype=np.float32).reshape(-1))[:16]:
        s_exact = Fraction(float(s))
        us = _probes(quant)
        ys = np.array([float((u - zero) * s_exact) for u in us], dtype=np.float32)
        got = executor_codes(ys, s, zero, quant)
        for y, theirs in zip(ys, got):
            if not np.isfinite(y):
                continue
            # hwnorm's code axis, with the zero point of its own form (the executor had the node's)
            u = Fraction(float(y)) / s_exact + quant.zero if not (isinstance(quant, Sign) and not quant.divides) \
                else Fraction(float(y))
            if isinstance(quant, Sign):
                ours = quant.code(u)
            else:  # the clip of the quantizer itself (a ReLU's floor belongs to the data before it)
                lo, hi = code_range(quant.bits, quant.signed, quant.narrow)
                ours = min(max(quant.round(u), lo), hi)
            if ours != int(theirs):
                raise ValueError(f"{where}: hwnorm's form of this quantizer ({quant}) gives code {ours} where QONNX's "
                                 f"executor gives {int(theirs)} (input {float(y):.6g}, scale {float(s):.6g}, zero point "
                                 f"{zero}); refused rather than approximated")


# ------------------------------------------------------------------ the two realizations
def _check_threshold_cost(channels: int, quant: Quantizer, name: str) -> None:
    """Refuse, with the figure, a quantizer whose thresholds are too many to compute — before a
    single cut is (each is exact rational arithmetic; the requantizer is checked against them).
    ``channels``: the distinct channel maps (equal ones share their thresholds)."""
    lo, hi = quant.code_range
    count, limit = channels * (hi - lo), COST_LIMITS["thresholds"]
    if count > limit:
        raise ValueError(f"{name}: a {quant.bits}-bit quantizer of {channels:,} distinct channels needs {channels:,} × "
                         f"{hi - lo:,} = {count:,} exact thresholds, more than the {limit:,} hwnorm computes "
                         "(COST_LIMITS in hwnorm/defaults.py); use a narrower quantizer")


def threshold_fold(form, quant: Quantizer, acc_lo: int, acc_hi: int, name: str = "thr"):
    """Multi-thresholds (FINN style) for ``q = quant(u(acc))``, ``form`` the exact code-axis map
    ``u`` of the integer ``acc`` in ``[acc_lo, acc_hi]``: ``q = base + #{i : acc' ≥ T_i}`` with the
    channels whose map decreases flipped (``acc' = −acc``: their weights are to be negated)."""
    _check_threshold_cost(len(form.distinct()[0]), quant, name)
    base, cuts = quant.levels()
    if not cuts:  # a single code (a ReLU floor at the top): one threshold that never fires
        spec = ThresholdSpec(np.full((form.channels, 1), acc_hi + 1), acc_lo, acc_hi, out_base=base, name=name)
        return ThresholdFold(spec, np.zeros(form.channels, bool))
    return fold_thresholds(form, cuts, acc_lo=acc_lo, acc_hi=acc_hi, out_base=base, name=name)


def requant_spec(form, quant: Quantizer, acc_lo: int, acc_hi: int, name: str = "requant"):
    """The exact requantizer ``clip(R((A·acc + B) >> k))`` (:class:`hwnorm.bnspec.BNSpec`) for the same
    quantizer — or a ValueError saying why only thresholds realize it.

    The fit is to a dyadic map within ``2^-160`` of ``u`` (exact when ``u`` is dyadic); the
    result is then compared with the thresholds, which decide exactly: both are monotone step
    functions of ``acc``, so equal values at every threshold, one below it, and both ends of the
    range prove them equal on the whole range."""
    if quant.datapath_rounding is None:
        raise ValueError(f"{name}: rounding_mode {quant.rounding} has no requantizer datapath (it rounds "
                         f"{', '.join(_DATAPATH_ROUNDING)}); realize it with thresholds")
    _check_threshold_cost(len(form.distinct()[0]), quant, name)
    code = quant.code_type
    spec = fold_dyadics([form.dyadic(c) for c in range(form.channels)], in_range=(acc_lo, acc_hi),
                        out_fmt=FixedFormat(code.bits, 0, code.signed), out_range=quant.code_range,
                        rounding=quant.datapath_rounding, name=name)
    fold = threshold_fold(form, quant, acc_lo, acc_hi, name)
    t = fold.spec.thresholds.reshape(-1)  # a jump at T, or (flipped channel) between −T and −T + 1
    points = np.unique(np.clip(np.concatenate([t - 1, t, -t, 1 - t, [acc_lo, acc_hi]]), acc_lo, acc_hi))
    acc = np.repeat(points[:, None], form.channels, axis=1)
    via_thresholds = fold.spec.apply(np.where(fold.flip, -acc, acc))
    bad = np.argwhere(spec.apply(acc) != via_thresholds)
    if bad.size:
        i, c = bad[0]
        raise ValueError(f"{name}: channel {c}: the requantizer and the exact thresholds differ at "
                         f"accumulator {int(acc[i, c])}; realize it with thresholds")
    return spec
