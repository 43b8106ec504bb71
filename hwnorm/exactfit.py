"""Exact integer fits of a rational affine map — the certificate behind every folded spec.

Problem: given ``f(x) = (N·x + C) / M`` (``M = 2^P``; every float64 affine map ``a·x + b``
is exactly of this form), a rounding mode ``R`` and an input range ``[x0, x1]``, find the
smallest shift ``k`` and integers ``A, B`` with

    R((A·x + B) / 2^k) == R(f(x))      for every integer x in [x0, x1]

(with optional saturation to ``[qlo, qhi]``, where only the saturated side must agree).

Why it is exact for *any* input width, without enumerating the range
--------------------------------------------------------------------
For fixed ``(k, A)``, ``R(V / 2^k) = n`` holds iff ``V`` lies in an integer *cell*
``[lo(n), hi(n)]``, so the admissible ``B`` form the interval

    max_x (lo(n_x) − A·x)  ≤  B  ≤  min_x (hi(n_x) − A·x).

Inside a region where the cell offsets do not depend on ``n`` (see ``_Kind``), write
``n_x = (N'x + C' − r_x) / M`` with ``r_x = (N'x + C') mod M``: both bounds are *linear in
(x, r_x)*, so their extremes over the region are attained at vertices of the convex hull of
the points ``(x, r_x)``. A hull vertex has no lower (resp. higher) point on at least one
side, so it is a strict prefix or suffix minimum (maximum) of ``r``. Those records are
enumerated with ``first_hit`` — the least ``t ≥ 0`` with ``(a·t + c) mod m`` in a window,
a Euclid-like recursion in O(log m) — and runs of collinear records are skipped in one
step, so a region of 2^32 inputs costs a few hundred big-integer operations.

Regions: saturated input ranges need only one-sided checks at their two ends (V is linear);
``half_away`` splits into n > 0, n = 0 and n < 0 (each with fixed cell offsets);
``half_even`` uses the strict cell on non-tie points plus exact checks on the tie points,
which form an arithmetic progression (the ends of each parity class suffice). The strict
cell is sufficient but not necessary, so for ``half_even`` the reported ``k`` is the
smallest this certificate proves, which may exceed the true minimum by a bit; for
``floor``, ``half_up`` and ``half_away`` it is the true minimum over the candidate
multipliers ``A`` nearest ``N·2^k/M``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from hwnorm.datatypes import IntType
from hwnorm.fixed import Rounding

__all__ = ["Dyadic", "AffineFit", "first_hit", "round_exact", "cell", "fit_affine"]


@dataclass(frozen=True)
class Dyadic:
    """The affine map ``x ↦ (N·x + C) / M`` with ``M = 2^P`` (P ≥ 1)."""

    N: int
    C: int
    M: int

    @classmethod
    def from_floats(cls, a: float, b: float) -> "Dyadic":
        (na, da), (nb, db) = float(a).as_integer_ratio(), float(b).as_integer_ratio()
        M = max(da, db, 2)
        return cls(na * (M // da), nb * (M // db), M)

    def value(self, x: int) -> Fraction:
        return Fraction(self.N * x + self.C, self.M)


def round_exact(f: Dyadic, x: int, mode: Rounding) -> int:
    """``R(f(x))`` with integers only."""
    v, M = f.N * x + f.C, f.M
    if mode == Rounding.FLOOR:
        return v // M
    if mode == Rounding.HALF_UP:
        return (v + M // 2) // M
    if mode == Rounding.HALF_AWAY:
        return (v + M // 2) // M if v >= 0 else -((-v + M // 2) // M)
    q, r = divmod(v, M)
    return q + (2 * r > M or (2 * r == M and q % 2 == 1))


def cell(mode: Rounding, n: int, k: int) -> tuple[int, int]:
    """The integers V with ``R(V / 2^k) == n``, as an inclusive range."""
    T = 1 << k
    if k == 0:
        return n * T, n * T
    h = T >> 1
    if mode == Rounding.FLOOR:
        return n * T, n * T + T - 1
    if mode == Rounding.HALF_UP:
        return n * T - h, n * T + h - 1
    if mode == Rounding.HALF_AWAY:
        if n > 0:
            return n * T - h, n * T + h - 1
        if n < 0:
            return n * T - h + 1, n * T + h
        return -h + 1, h - 1
    if n % 2 == 0:
        return n * T - h, n * T + h
    return n * T - h + 1, n * T + h - 1


# Cell offsets (lo, hi) relative to n·2^k that do not depend on n — what makes a region
# linear in (x, r). "exact" means: use the mode's true cell of n (checked points only).
_KIND_OFFSETS = {
    "floor": lambda T, h: (0, T - 1),
    "up": lambda T, h: (-h, h - 1),
    "down": lambda T, h: (-h + 1, h),
    "strict": lambda T, h: (-h + 1, h - 1),
}


# ----------------------------------------------------------------- modular search

def _min_multiple_in(a: int, m: int, lo: int, hi: int):
    """Least x ≥ 0 with lo ≤ (a·x) mod m ≤ hi (0 ≤ lo ≤ hi < m), or None.

    Iterative form of the classic recursion: if no multiple of ``a`` lies in [lo, hi],
    the least x corresponds to the least y ≥ 1 with ``(m mod a)·y mod a`` in
    ``[(−hi) mod a, (−lo) mod a]``, and then ``x = ceil((lo + m·y) / a)``.
    """
    stack = []
    while True:
        if lo == 0:
            x = 0
            break
        a %= m
        if a == 0:
            return None
        x = -(-lo // a)
        if a * x <= hi:
            break
        stack.append((a, m, lo))
        a, m, lo, hi = m % a, a, (-hi) % a, (-lo) % a
    while stack:
        a, m, lo = stack.pop()
        x = -(-(lo + m * x) // a)
    return x


def first_hit(a: int, c: int, m: int, lo: int, hi: int):
    """Least t ≥ 0 with lo ≤ (a·t + c) mod m ≤ hi (0 ≤ lo ≤ hi < m), or None."""
    a, c = a % m, c % m
    L, R = (lo - c) % m, (hi - c) % m
    if L <= R:
        return _min_multiple_in(a, m, L, R)
    return 0  # the cyclic window [L, R] wraps through 0: t = 0 is a hit


def _prefix_minima(N: int, C: int, M: int, x0: int, x1: int, rmin: int) -> list[int]:
    """Run ends of the strict prefix minima of r(x) = (N·x + C) mod M over x in [x0, x1],
    among points with r ≥ rmin. Interior points of collinear runs are skipped."""
    if x0 > x1:
        return []
    t = first_hit(N, N * x0 + C, M, rmin, M - 1)
    if t is None or x0 + t > x1:
        return []
    x = x0 + t
    r = (N * x + C) % M
    out = [x]
    while r > rmin:
        t = first_hit(N, N * (x + 1) + C, M, rmin, r - 1)
        if t is None or x + 1 + t > x1:
            break
        y = x + 1 + t
        d, delta = y - x, r - (N * y + C) % M
        # From y on, the next record is again d further, down by delta, while r stays ≥ rmin.
        j = min((r - rmin) // delta, (x1 - x) // d)
        out.append(y)
        x, r = x + j * d, r - j * delta
        out.append(x)
    return out


def hull_candidates(N: int, C: int, M: int, x0: int, x1: int, rmin: int = 0) -> set[int]:
    """Every x whose (x, r_x) can be a vertex of the hull of {(x, r_x)}, r_x ≥ rmin."""
    if x0 > x1:
        return set()
    pts = set(_prefix_minima(N, C, M, x0, x1, rmin))
    pts.update(-x for x in _prefix_minima(-N, C, M, -x1, -x0, rmin))
    # maxima of r are minima of M−1−r = (−N·x + M−1−C) mod M; r ≥ rmin never excludes them
    # unless rmin > 0 and r = 0, which is a minimum, never a maximum.
    pts.update(_prefix_minima(-N, M - 1 - C, M, x0, x1, 0))
    pts.update(-x for x in _prefix_minima(N, M - 1 - C, M, -x1, -x0, 0))
    if rmin:
        pts = {x for x in pts if (N * x + C) % M >= rmin}
    return pts


# ----------------------------------------------------------------- constraints

@dataclass
class _Constraints:
    """Points (x, n, kind) bounding B from below and from above."""

    lower: list
    upper: list

    def bounds(self, mode: Rounding, k: int, A: int):
        """The admissible interval of B at shift k for multiplier A (may be empty)."""
        lo_b = max((self._cell(mode, k, n, kind)[0] - A * x for x, n, kind in self.lower),
                   default=-math.inf)
        hi_b = min((self._cell(mode, k, n, kind)[1] - A * x for x, n, kind in self.upper),
                   default=math.inf)
        return lo_b, hi_b

    @staticmethod
    def _cell(mode: Rounding, k: int, n: int, kind: str) -> tuple[int, int]:
        if kind == "exact" or k == 0:
            return cell(mode, n, k)
        T = 1 << k
        lo, hi = _KIND_OFFSETS[kind](T, T >> 1)
        return n * T + lo, n * T + hi


def _first_at_least(f: Dyadic, mode: Rounding, q: int, lo: int, hi: int) -> int:
    """First x in [lo, hi] with R(f(x)) ≥ q (f non-decreasing), else hi + 1."""
    while lo <= hi:
        mid = (lo + hi) // 2
        if round_exact(f, mid, mode) >= q:
            hi = mid - 1
        else:
            lo = mid + 1
    return lo


def _uniform(cons: _Constraints, N: int, C: int, M: int, u0: int, u1: int, kind: str,
             target, rmin: int = 0):
    for x in hull_candidates(N, C, M, u0, u1, rmin):
        item = (x, target(x), kind)
        cons.lower.append(item)
        cons.upper.append(item)


def _exact_points(cons: _Constraints, f: Dyadic, mode: Rounding, xs, lower=True, upper=True, n=None):
    for x in xs:
        item = (x, round_exact(f, x, mode) if n is None else n, "exact")
        if lower:
            cons.lower.append(item)
        if upper:
            cons.upper.append(item)


def _constraints(f: Dyadic, mode: Rounding, x0: int, x1: int, qlo, qhi) -> _Constraints:
    """All constraint points for f with N ≥ 0 (so R(f(x)) is non-decreasing)."""
    cons = _Constraints([], [])
    N, C, M = f.N, f.C, f.M
    half = M // 2
    # Saturated regions: R(V/T) ≤ qlo (resp. ≥ qhi) is one-sided and V is linear in x.
    xa = x0 if qlo is None else _first_at_least(f, mode, qlo, x0, x1)
    xb = x1 if qhi is None else _first_at_least(f, mode, qhi + 1, x0, x1) - 1
    if xa > x0:
        _exact_points(cons, f, mode, {x0, xa - 1}, lower=False, n=qlo)
    if xb < x1:
        _exact_points(cons, f, mode, {xb + 1, x1}, upper=False, n=qhi)
    if xa > xb:
        return cons
    floor_of = lambda N_, C_: (lambda x: (N_ * x + C_) // M)  # noqa: E731
    if mode == Rounding.FLOOR:
        _uniform(cons, N, C, M, xa, xb, "floor", floor_of(N, C))
    elif mode == Rounding.HALF_UP:
        _uniform(cons, N, C + half, M, xa, xb, "up", floor_of(N, C + half))
    elif mode == Rounding.HALF_AWAY:
        pos = _first_at_least(f, mode, 1, xa, xb)       # n ≥ 1 from here
        nonneg = _first_at_least(f, mode, 0, xa, xb)    # n ≥ 0 from here
        if nonneg <= pos - 1:                            # n = 0: cell fixed, check the ends
            _exact_points(cons, f, mode, {nonneg, pos - 1})
        _uniform(cons, N, C + half, M, pos, xb, "up", floor_of(N, C + half))
        # n ≤ −1: n = −floor((−N·x − C + M/2) / M), a floor in the mirrored remainder.
        _uniform(cons, -N, -C + half, M, xa, nonneg - 1, "down",
                 lambda x: -((-N * x - C + half) // M))
    else:  # HALF_EVEN: strict cells on non-ties, exact checks on the tie progression
        _uniform(cons, N, C + half, M, xa, xb, "strict", floor_of(N, C + half), rmin=1)
        t = first_hit(N, N * xa + C + half, M, 0, 0)
        if t is not None and xa + t <= xb:
            g = math.gcd(N, M)
            period = M // g
            step = 1 if (N // g) % 2 == 0 else 2  # f advances N/g per period: parity flips if odd
            for s in range(step):
                first = xa + t + s * period
                if first > xb:
                    continue
                stride = step * period
                last = first + (xb - first) // stride * stride
                _exact_points(cons, f, mode, {first, last})
    return cons


@dataclass(frozen=True)
class AffineFit:
    shift: int
    mult: int
    bias: int


def _try_shift(cons: _Constraints, f: Dyadic, mode: Rounding, k: int, x0: int, x1: int,
               max_acc_bits: int):
    """The best (A, B) at shift k, or None. Candidates A: the integers nearest N·2^k/M."""
    T = 1 << k
    ideal = Fraction(f.N * T, f.M)
    base = math.floor(ideal)
    cands = sorted({base - 1, base, base + 1, base + 2}, key=lambda A: (abs(A - ideal), A))
    for A in cands:
        lo_b, hi_b = cons.bounds(mode, k, A)
        if lo_b > hi_b:
            continue
        lo_b = -(1 << 62) if lo_b == -math.inf else lo_b
        hi_b = (1 << 62) if hi_b == math.inf else hi_b
        B = (lo_b + hi_b) // 2  # the middle of the admissible interval: the largest margin
        if IntType.from_range(min(A * x0, A * x1) + B, max(A * x0, A * x1) + B, signed=True).bits <= max_acc_bits:
            return A, B
    return None


def fit_affine(f: Dyadic, mode: Rounding, x0: int, x1: int, qlo=None, qhi=None, *,
               max_acc_bits: int = 63, max_shift: int = 63, min_shift: int = 0):
    """Smallest-shift exact integer fit of ``f`` over ``[x0, x1]`` (see the module docstring).

    ``qlo``/``qhi`` (either may be None) are the output saturation limits: where the exact
    value lies outside them, only the saturated output has to agree. Returns an
    ``AffineFit`` or raises ``ValueError``.
    """
    if x0 > x1:
        raise ValueError(f"empty input range [{x0}, {x1}]")
    mirrored = f.N < 0
    g = Dyadic(-f.N, f.C, f.M) if mirrored else f
    lo, hi = (-x1, -x0) if mirrored else (x0, x1)
    cons = _constraints(g, mode, lo, hi, qlo, qhi)
    for k in range(min_shift, max_shift + 1):
        found = _try_shift(cons, g, mode, k, lo, hi, max_acc_bits)
        if found is not None:
            A, B = found
            return AffineFit(k, -A if mirrored else A, B)
        peak = abs(math.floor(Fraction(g.N << k, g.M))) * max(abs(x0), abs(x1))
        if IntType.from_range(0, peak, signed=True).bits > max_acc_bits:
            break
    raise ValueError(f"no exact integer fit within a {max_acc_bits}-bit accumulator "
                     f"(input range [{x0}, {x1}], shift ≤ {k})")


def fit_at_shift(f: Dyadic, mode: Rounding, k: int, x0: int, x1: int, qlo=None, qhi=None,
                 *, max_acc_bits: int = 63):
    """An exact fit at a given shift ``k`` (used to share one shift across channels)."""
    mirrored = f.N < 0
    g = Dyadic(-f.N, f.C, f.M) if mirrored else f
    lo, hi = (-x1, -x0) if mirrored else (x0, x1)
    found = _try_shift(_constraints(g, mode, lo, hi, qlo, qhi), g, mode, k, lo, hi, max_acc_bits)
    if found is None:
        return None
    A, B = found
    return AffineFit(k, -A if mirrored else A, B)
