"""Curves through published figures: what the energy tables (:mod:`hwnorm.estimate.energy`) and
the memory-array model (:mod:`hwnorm.stt.array`) read between and beyond their points."""

from __future__ import annotations

import math

__all__ = ["piecewise_linear", "power_law"]


def piecewise_linear(points, x: float) -> float:
    """Linear through sorted (x, y) points, extrapolated with the nearest segment's slope."""
    k = 1
    while k < len(points) - 1 and x > points[k][0]:
        k += 1
    (x0, y0), (x1, y1) = points[k - 1], points[k]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def power_law(points, x: float) -> float:
    """Through sorted positive (x, y) points on log-log axes: a power law between neighbours,
    the end segments' exponents beyond them (a memory's energy against its capacity)."""
    logs = [(math.log(px), math.log(py)) for px, py in points]
    return math.exp(piecewise_linear(logs, math.log(x)))
