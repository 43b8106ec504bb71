"""Threshold stages as hardware, shared by the kinds that end in one (``thresholding``, ``mvu``):
how a :class:`~hwnorm.bnn.ThresholdSpec` is laid out per beat, and what its comparators cost."""

from __future__ import annotations

from hwnorm.bnn import ThresholdSpec

__all__ = ["lane_rows", "constant_rows", "compare_bits"]


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
        return lanes * t.n_thresholds * width
    low = (1 << width) - 1
    return sum(width - _trailing_zeros(int(v) & low, width) for lane in rows[0] for v in lane)
