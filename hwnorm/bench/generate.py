"""``generate``: Verilog generation time and peak memory against the number of parallel lanes
(Σ PE·SIMD) of a network top — the vendored TFC_1W1A, pipelined for 150 MHz on ECP5, from the
default folding to fully parallel (every layer ``pe = rows``, ``simd = K``).

Each point runs in a fresh child process (its peak resident memory is its own). The baseline of
every ratio is the smallest folding's lanes per second, measured in the same run: a ratio ≥ 1
means generation grows no faster than the hardware it writes. ``growth`` is the fitted exponent
of time against lanes between the smallest and the largest point (1 = linear).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

from hwnorm.bench.registry import benchmark, figure
from hwnorm.generate import default_designs, plan_of, verilog_of, Design

CLOCK_MHZ = 150
INPUT, LAYERS = "BipolarQuant_11_input", ("MatMul_16", "MatMul_24", "MatMul_32", "MatMul_40")
SHAPES = {"MatMul_16": (64, 784), "MatMul_24": (64, 64), "MatMul_32": (64, 64), "MatMul_40": (10, 64)}


def foldings() -> list[tuple[str, dict]]:
    """(label, folding) from the default design's to fully parallel."""
    (default,) = [d for d in default_designs() if d.name == "tfc"]
    out = [("default", default.params["folding"])]
    for label, share in (("quarter", 4), ("half", 2), ("parallel", 1)):
        fold = {name: {"pe": rows // (share if rows > 10 else 1), "simd": k // share} for name, (rows, k) in SHAPES.items()}
        fold[INPUT] = {"pe": 784 // share}
        fold["scores"] = {"pe": 10}
        out.append((label, fold))
    return out


def lanes(folding: dict) -> int:
    return sum(math.prod(v.values()) for v in folding.values())


def _child(folding_json: str) -> None:
    """Generate one folding's Verilog; print seconds, bytes and peak RSS (KiB) as JSON."""
    import resource
    import time
    import warnings


    warnings.simplefilter("ignore")
    design = Design("tfc_bench", "network", {"model": "TFC_1W1A", "folding": json.loads(folding_json),
                                             "clock_mhz": CLOCK_MHZ})
    start = time.perf_counter()
    _, text = verilog_of(plan_of(design))
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "bytes": len(text),
                      "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def measure(folding: dict, timeout: float = 900) -> dict:
    code = "import sys; from hwnorm.bench.generate import _child; _child(sys.argv[1])"
    done = subprocess.run([sys.executable, "-c", code, json.dumps(folding)], capture_output=True, text=True,
                          timeout=timeout, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@benchmark("generate")
def bench_generate(repeat: int = 1):
    points = [(label, lanes(fold), measure(fold)) for label, fold in foldings()]
    _, base_lanes, base = points[0]
    base_rate = base_lanes / base["seconds"]
    for label, n, r in points:
        yield figure(f"generate_tfc_{label}_lanes_per_s", n / r["seconds"], "lanes/s",
                     "default folding (same run)", base_rate, lanes=n, seconds=round(r["seconds"], 2),
                     peak_mib=round(r["peak_kib"] / 1024, 1), verilog_mib=round(r["bytes"] / 2**20, 2))
    (_, n0, r0), (_, n1, r1) = points[0], points[-1]
    growth = math.log(r1["seconds"] / r0["seconds"]) / math.log(n1 / n0)
    yield figure("generate_tfc_growth_exponent", 1 / growth, "1/exponent", "linear growth", 1.0,
                 exponent=round(growth, 3), lanes=[n0, n1], seconds=[round(r0["seconds"], 2), round(r1["seconds"], 2)])
