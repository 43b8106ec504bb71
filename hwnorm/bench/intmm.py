"""``igemm``: the integer × integer matrix kernel of multi-bit layers against numpy, same data."""

from __future__ import annotations

import numpy as np

from hwnorm.bench.registry import benchmark, best_rate, figure
from hwnorm.datatypes import IntType
from hwnorm.intmm import igemm

M = N = 512
K = 4096


@benchmark("igemm")
def bench_igemm(repeat: int = 5):
    rng = np.random.default_rng(0)
    for bits in (2, 4, 8):
        lo, hi = IntType(bits, signed=True).range
        x = rng.integers(lo, hi + 1, (M, K), dtype=np.int64)
        w = rng.integers(lo, hi + 1, (N, K), dtype=np.int64)
        x32, w32 = x.astype(np.int32), w.astype(np.int32)
        xf, wf = x.astype(np.float64), w.astype(np.float64)  # exact: every sum stays below 2^53
        got = igemm(x, w, (lo, hi), (lo, hi))
        if not np.array_equal(got, x32 @ w32.T) or not np.array_equal(got, (xf @ wf.T).astype(np.int64)):
            raise AssertionError(f"igemm: kernel and numpy disagree at {bits} bits")
        macs = M * N * K
        kernel = best_rate(lambda: igemm(x, w, (lo, hi), (lo, hi)), macs, repeat)
        rates = {"numpy int32 matmul": best_rate(lambda: x32 @ w32.T, macs, max(1, repeat // 2)),
                 "numpy float64 matmul (BLAS)": best_rate(lambda: xf @ wf.T, macs, max(1, repeat // 2))}
        name = max(rates, key=rates.get)  # the faster of the two, measured now
        yield figure(f"igemm.int{bits}_M{M}_N{N}_K{K}", kernel, "MAC/s", name, rates[name],
                     **{k.split(" (")[0].replace(" ", "_") + "_rate": round(v) for k, v in rates.items()})
