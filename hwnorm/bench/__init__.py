"""Benchmark registry and runner behind ``hwnorm bench [NAME...]``.

A benchmark is a function that yields figures; each figure is printed as one JSON line::

    {"name", "value", "unit", "baseline", "baseline_value", "ratio"}

``baseline_value`` is measured in the same run on the same data, and ``ratio`` is always
``value / baseline_value`` with *higher meaning better* (rates, not times). Benchmarks are
not tests: they assert correctness of what they time, never a speed.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Callable, Iterator

REGISTRY: dict[str, Callable[..., Iterator[dict]]] = {}


def benchmark(name: str):
    def register(fn):
        REGISTRY[name] = fn
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


def _load_all():
    from hwnorm.bench import bn, bnn, conv, cosim, generate, intmm, stt  # noqa: F401  (they register themselves)


def run(names=None, repeat: int = 5, out=sys.stdout) -> list[dict]:
    _load_all()
    names = list(names or REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown benchmark {', '.join(unknown)}; available: {', '.join(sorted(REGISTRY))}")
    results = []
    for name in names:
        for fig in REGISTRY[name](repeat=repeat):
            print(json.dumps(fig), file=out, flush=True)
            results.append(fig)
    return results
