"""Integer × integer matrix products: the golden kernel of multi-bit layers (n-bit weights, m-bit
activations, 1 ≤ n, m ≤ 8 — and wider, at a lower speed).

``igemm(x, w)`` computes ``out[i, j] = Σ_k x[i, k]·w[j, k]`` exactly. The operands are narrowed
to the smallest machine type holding their declared range (int8 for ≤ 8-bit values, else
int16 / int32) and the accumulator is int32 whenever ``K · max|x| · max|w|`` fits it — which
is always the case for 8-bit operands up to K = 2^17 — else int64: overflow is impossible by
construction. Rows are spread over the cores; within a row, each output is an int32 dot product
over a contiguous K that LLVM vectorizes (widening multiply-adds).

Binary fast paths stay in :mod:`hwnorm.bnn` (XNOR/popcount): this kernel is for the rest.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from hwnorm.datatypes import IntType

__all__ = ["igemm", "operand_dtype"]

_INT32_MAX = (1 << 31) - 1


def operand_dtype(lo: int, hi: int) -> np.dtype:
    """The narrowest numpy integer type that holds every value of ``[lo, hi]``."""
    t = IntType.from_range(lo, hi, signed=True)
    for bits in (8, 16, 32, 64):
        if t.bits <= bits:
            return np.dtype(f"int{bits}")
    raise ValueError(f"values in [{lo}, {hi}] need {t.bits} bits; at most 64 are supported")


@njit(cache=True, parallel=True)
def _igemm32(x, w, out):
    m, k = x.shape
    n = w.shape[0]
    for i in prange(m):
        for j in range(n):
            acc = np.int32(0)
            for t in range(k):
                acc += np.int32(x[i, t]) * np.int32(w[j, t])
            out[i, j] = acc


@njit(cache=True, parallel=True)
def _igemm64(x, w, out):
    m, k = x.shape
    n = w.shape[0]
    for i in prange(m):
        for j in range(n):
            acc = np.int64(0)
            for t in range(k):
                acc += np.int64(x[i, t]) * np.int64(w[j, t])
            out[i, j] = acc


def igemm(x, w, x_range: tuple[int, int] | None = None, w_range: tuple[int, int] | None = None) -> np.ndarray:
    """``x @ w.T`` for integer ``x`` (M, K) and ``w`` (N, K) → int64 (M, N), exactly.

    ``x_range`` / ``w_range`` are the declared value ranges (default: the data's own), which fix the
    operand and accumulator types; values outside them are an error."""
    x, w = np.asarray(x), np.asarray(w)
    if x.dtype.kind not in "iu" or w.dtype.kind not in "iu" or x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"igemm needs integer (M, K) and (N, K) arrays, got {x.dtype} {x.shape} and "
                         f"{w.dtype} {w.shape}")
    ranges = []
    for name, a, declared in (("activations", x, x_range), ("weights", w, w_range)):
        seen = (int(a.min()), int(a.max())) if a.size else (0, 0)
        lo, hi = declared if declared is not None else seen
        if seen[0] < lo or seen[1] > hi:
            raise ValueError(f"igemm: {name} outside their declared range [{lo}, {hi}]")
        ranges.append((lo, hi))
    (xl, xh), (wl, wh) = ranges
    peak = x.shape[1] * max(abs(xl), abs(xh)) * max(abs(wl), abs(wh))
    xs = np.ascontiguousarray(x, dtype=operand_dtype(xl, xh))
    ws = np.ascontiguousarray(w, dtype=operand_dtype(wl, wh))
    out = np.empty((x.shape[0], w.shape[0]), np.int32 if peak <= _INT32_MAX else np.int64)
    if out.size:
        (_igemm32 if out.dtype == np.int32 else _igemm64)(xs, ws, out)
    return out.astype(np.int64, copy=False)
