"""Threshold stages as hardware, shared by the kinds that end in one (``thresholding``, ``mvu``):
how a :class:`~hwnorm.bnn.ThresholdSpec` is laid out per beat, and what its comparators cost."""

from __future__ import annotations

from hwnorm.bnn import ThresholdSpec
from hwnorm.timing import Timing, tree_levels
from hwnorm.blocks import tree_register_bits

__all__ = ["lane_rows", "constant_rows", "compare_bits", "count_cuts", "count_register_bits"]


def check_covers(name: str, t: ThresholdSpec | None, channels: int, acc_range: tuple[int, int]) -> None:
    """Thresholds ``t`` (if any) after a dot product: one row per output channel, spanning every
    value ``acc_range`` the dot product reaches."""
    if t is None:
        return
    if t.channels != channels:
        raise ValueError(f"{name}: {t.channels} threshold channels for {channels} outputs")
    lo, hi = acc_range
    if t.acc_lo > lo or t.acc_hi < hi:
        raise ValueError(f"{name}: thresholds cover [{t.acc_lo}, {t.acc_hi}], the accumulator reaches [{lo}, {hi}]")


def lane_rows(t: ThresholdSpec, lanes: int) -> list:
    """Per beat ``g``: for each lane the thresholds of channel ``g·lanes + lane`` (a ROM row)."""
    thr = t.thresholds.tolist()
    return [[thr[g * lanes + lane] for lane in range(lanes)] for g in range(t.channels // lanes)]


def constant_rows(rows: list) -> bool:
    """A ROM whose rows are all equal is a constant to synthesis (no memory, constant compares)."""
    return all(row == rows[0] for row in rows)


def _trailing_zeros(v: int, width: int) -> int:
    return width if v == 0 else (v & -v).bit_length() - 1


def compare_bits(t: ThresholdSpec, lanes: int) -> int:
    """Comparator operand bits of ``lanes`` channels of a threshold spec. Thresholds read from a
    ROM cost their full width; a constant threshold ``T = m·2^z`` only its top bits
    (``x ≥ T ⇔ x >> z ≥ m``), so a binarizing ``x ≥ 128`` on 8-bit pixels is one wire."""
    width = t.threshold_type.width
    rows = lane_rows(t, lanes)
    if not constant_rows(rows):
        return lanes * t.channel_bits
    low = (1 << width) - 1
    return sum(width - _trailing_zeros(int(v) & low, width) for lane in rows[0] for v in lane)


def count_cuts(timing: Timing, t: ThresholdSpec, value_bits: int) -> tuple[int, ...]:
    """Register ranks of a threshold stage for ``timing``: the chain is one compare of
    ``value_bits`` (cut 0 registers the compare bits), then the count tree over the
    ``n_thresholds`` bits (cut ``l + 1`` after its level ``l``) with the output base added last."""
    m = timing.model
    width = max(value_bits, t.threshold_type.width)
    chain = [m.compare(width)] + [m.adder(level + 2) for level in range(tree_levels(t.n_thresholds))]
    return timing.cuts(chain, tail=m.adder(t.out_type.width) if t.out_base else 0.0)


def count_register_bits(cuts, t: ThresholdSpec, lanes: int) -> int:
    """Flip-flops of a threshold stage's ranks at ``cuts`` (:func:`count_cuts`) for ``lanes``."""
    compares = t.n_thresholds if 0 in cuts else 0
    return lanes * (compares + tree_register_bits(t.n_thresholds, 1, [c - 1 for c in cuts if c]))
