"""The benchmark registry: each benchmark module registers its functions here (below the modules,
so a module imports it without importing the package that imports every module)."""

from __future__ import annotations

import time
from typing import Callable, Iterator

__all__ = ["REGISTRY", "ON_REQUEST", "benchmark", "figure", "best_rate"]

REGISTRY: dict[str, Callable[..., Iterator[dict]]] = {}
ON_REQUEST: set[str] = set()  # run only when named (hours of synthesis): not in the default set


def benchmark(name: str, default: bool = True):
    def register(fn):
        REGISTRY[name] = fn
        if not default:
            ON_REQUEST.add(name)
        return fn
    return register


def figure(name: str, value: float, unit: str, baseline: str, baseline_value: float, **context) -> dict:
    """One figure; ``context`` adds informative fields (e.g. a wall time) after the six fixed ones."""
    return {"name": name, "value": float(value), "unit": unit, "baseline": baseline,
            "baseline_value": float(baseline_value), "ratio": float(value) / float(baseline_value), **context}


def best_rate(fn, items: int, repeat: int) -> float:
    """Items per second of the fastest of ``repeat`` runs (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return items / best
