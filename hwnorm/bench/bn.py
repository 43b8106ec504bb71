"""``bn``: quantized-BN requantization throughput vs numpy and vs a plain memory copy."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from hwnorm.bench.registry import benchmark, best_rate, figure
from hwnorm.fixed import FixedFormat
from hwnorm.bnspec import BNSpec, fold_bn

ELEMENTS = 10_240_000  # ≥ 10^7 int32 inputs
CHANNELS = 64


def numpy_bn(spec: BNSpec, x: np.ndarray) -> np.ndarray:
    """The same integer math written the straightforward numpy way (half_up, saturate)."""
    v = x.astype(np.int64) * spec.mult + spec.bias
    k = spec.shift
    v = (v + (np.int64(1) << (k - 1))) >> k
    return np.clip(v, spec.out_fmt.min_int, spec.out_fmt.max_int).astype(spec.out_dtype)


@njit(cache=True, parallel=True)
def parallel_copy(src: np.ndarray, dst: np.ndarray) -> None:
    """A flat copy on every core: the kernel runs on every core too, and one core does not
    saturate memory (measured ~2× ``np.copyto`` here)."""
    for i in prange(src.size):
        dst[i] = src[i]


@benchmark("bn")
def bench_bn(repeat: int = 5):
    rng = np.random.default_rng(0)
    fold = fold_bn(rng.uniform(-2, 2, CHANNELS), rng.normal(0, 1, CHANNELS), rng.normal(0, 50, CHANNELS),
                   rng.uniform(10, 1000, CHANNELS), in_fmt=FixedFormat.integer(16),
                   out_fmt=FixedFormat.integer(8), in_scale=0.01, out_scale=0.05,
                   rounding="half_up", overflow="saturate")
    spec = fold.spec
    x = rng.integers(spec.in_lo, spec.in_hi, (ELEMENTS // CHANNELS, CHANNELS), endpoint=True).astype(np.int32)
    assert spec.shared_shift and spec.shared_shift >= 1
    if not np.array_equal(spec.apply(x), numpy_bn(spec, x)):
        raise AssertionError("bn benchmark: golden kernel and numpy baseline disagree")
    dst = np.empty_like(x)
    kernel = best_rate(lambda: spec.apply(x), x.size, repeat)
    numpy_rate = best_rate(lambda: numpy_bn(spec, x), x.size, repeat)
    copies = {"numpy copyto": best_rate(lambda: np.copyto(dst, x), x.size, repeat),
              "2-thread copy": best_rate(lambda: parallel_copy(x.reshape(-1), dst.reshape(-1)), x.size, repeat)}
    fastest = max(copies, key=copies.get)
    yield figure("bn.requant_vs_numpy", kernel, "elements/s", "numpy int64 math", numpy_rate)
    yield figure("bn.requant_vs_memcpy", kernel, "elements/s", f"memcpy of the int32 input ({fastest}, the faster)",
                 copies[fastest], **{f"{name} elements/s": rate for name, rate in copies.items()})
