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

__all__ = ["igemm", "igemm_threshold", "operand_dtype", "outside", "RANGE_KERNEL_DTYPES"]

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


RANGE_KERNEL_DTYPES = frozenset(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                                      np.uint32))
_RANGE_KERNEL_MIN = 1 << 16  # elements: below this, numpy's two passes cost less than a parallel launch


@njit(cache=True, parallel=True)
def _count_outside(flat, lo, hi):
    n = 0
    for i in prange(flat.size):
        v = np.int64(flat[i])
        n += (v < lo) | (v > hi)
    return n


def outside(x: np.ndarray, lo: int, hi: int) -> bool:
    """Whether any element of integer ``x`` lies outside ``[lo, hi]``: one parallel pass over a
    large batch (the activations every layer checks), where ``x.min()`` and ``x.max()`` take two."""
    if not x.size:
        return False
    if x.size < _RANGE_KERNEL_MIN or x.dtype not in RANGE_KERNEL_DTYPES or not x.flags.c_contiguous:
        return bool(x.min() < lo or x.max() > hi)  # (uint64 would not compare exactly in the kernel)
    return _count_outside(x.reshape(-1), np.int64(lo), np.int64(hi)) > 0


def igemm(x, w, x_range: tuple[int, int] | None = None, w_range: tuple[int, int] | None = None,
          what: str | None = None) -> np.ndarray:
    """``x @ w.T`` for integer ``x`` (M, K) and ``w`` (N, K) → int64 (M, N), exactly.

    ``x_range`` / ``w_range`` are the declared value ranges (default: the data's own), which fix the
    operand and accumulator types; values outside them are an error (named after ``what``, a
    layer, when given: the range check of its input is this one, not a second pass)."""
    x, w = np.asarray(x), np.asarray(w)
    if x.dtype.kind not in "iu" or w.dtype.kind not in "iu" or x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"igemm needs integer (M, K) and (N, K) arrays, got {x.dtype} {x.shape} and "
                         f"{w.dtype} {w.shape}")
    ranges = []
    for name, a, declared in (("activations", x, x_range), ("weights", w, w_range)):
        if declared is None:
            declared = (int(a.min()), int(a.max())) if a.size else (0, 0)
        elif outside(a, *declared):
            where = f"{what}: input outside its declared range" if what and name == "activations" else \
                f"igemm: {name} outside their declared range"
            raise ValueError(f"{where} [{declared[0]}, {declared[1]}]")
        ranges.append(declared)
    (xl, xh), (wl, wh) = ranges
    peak = x.shape[1] * max(abs(xl), abs(xh)) * max(abs(wl), abs(wh))
    xs = np.ascontiguousarray(x, dtype=operand_dtype(xl, xh))
    ws = np.ascontiguousarray(w, dtype=operand_dtype(wl, wh))
    out = np.empty((x.shape[0], w.shape[0]), np.int32 if peak <= _INT32_MAX else np.int64)
    if out.size:
        (_igemm32 if out.dtype == np.int32 else _igemm64)(xs, ws, out)
    return out.astype(np.int64, copy=False)


# Rows per task of the fused kernel: one accumulator row is reused across them.
_BLOCK = 256


@njit(cache=True, parallel=True)
def _igemm_threshold(x, wt, thr, base, acc_proto, bits, out):
    """Per row: the accumulators ``x[i] @ wt`` (``wt`` is (K, N): the inner loop runs over the
    outputs, which vectorizes for any K), then each output's count of thresholds reached (plus
    ``base``) — or, with ``bits``, bit ``j`` of the row's words set when output ``j`` reaches its
    one threshold. Nothing of size M × N but the result is written."""
    m, k = x.shape
    n = wt.shape[1]
    for b in prange((m + _BLOCK - 1) // _BLOCK):
        acc = np.empty(n, acc_proto.dtype)
        for i in range(b * _BLOCK, min(m, (b + 1) * _BLOCK)):
            acc[:] = 0
            for t in range(k):
                xv = x[i, t]
                if xv != 0:
                    for j in range(n):
                        acc[j] += xv * wt[t, j]
            if bits:
                for q in range(out.shape[1]):
                    out[i, q] = 0
                for j in range(n):
                    if acc[j] >= thr[j, 0]:
                        out[i, j >> 6] |= np.uint64(1) << np.uint64(j & 63)
            else:
                for j in range(n):
                    cnt = 0
                    for q in range(thr.shape[1]):
                        cnt += acc[j] >= thr[j, q]
                    out[i, j] = base + cnt


def igemm_threshold(x, w, thresholds, base: int, x_range: tuple[int, int], w_range: tuple[int, int],
                    bits: bool = False, what: str = "igemm_threshold") -> np.ndarray:
    """``multithreshold(x @ w.T)`` in one pass, exactly as :func:`igemm` then the thresholds
    (``thresholds`` (N, T), counts of ``acc ≥ t`` plus ``base``): int64 (M, N) counts, or with
    ``bits`` (one threshold, base 0) the outputs packed as :func:`hwnorm.bnn.pack_bits` packs
    them. The accumulator matrix is never formed: for the first layers of the CNVs (K = 9, 8-bit
    pixels) it cost three times the products."""
    x, w = np.asarray(x), np.asarray(w)
    (xl, xh), (wl, wh) = x_range, w_range
    if x.size and (int(x.min()) < xl or int(x.max()) > xh):
        raise ValueError(f"{what}: input outside its declared range [{xl}, {xh}]")
    peak = x.shape[1] * max(abs(xl), abs(xh)) * max(abs(wl), abs(wh))
    acc_type = np.int32 if peak <= _INT32_MAX else np.int64
    xs = np.ascontiguousarray(x, dtype=operand_dtype(xl, xh))
    wt = np.ascontiguousarray(np.asarray(w).T, dtype=acc_type)  # (K, N); widened once: N·K values
    thr = np.ascontiguousarray(thresholds, dtype=np.int64)
    if bits:
        out = np.empty((x.shape[0], (w.shape[0] + 63) // 64), np.uint64)
    else:
        out = np.empty((x.shape[0], w.shape[0]), np.int64)
    if out.size:
        _igemm_threshold(xs, wt, thr, int(base), np.zeros(1, acc_type), bool(bits), out)
    return out

