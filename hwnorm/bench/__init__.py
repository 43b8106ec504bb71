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

from hwnorm.bench.registry import ON_REQUEST, REGISTRY, benchmark, best_rate, figure
# The benchmarks register themselves on import.
from hwnorm.bench import bn, bnn, cnv_hw, conv, cosim, generate, intmm, net, stt  # noqa: E402,F401,I001

__all__ = ["REGISTRY", "benchmark", "best_rate", "figure", "run"]


def run(names=None, repeat: int = 5, out=sys.stdout) -> list[dict]:
    names = list(names or [name for name in REGISTRY if name not in ON_REQUEST])
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown benchmark {', '.join(unknown)}; available: {', '.join(sorted(REGISTRY))}")
    results = []
    for name in names:
        for fig in REGISTRY[name](repeat=repeat):
            print(json.dumps(fig), file=out, flush=True)
            results.append(fig)
    return results
