"""``cosim``: verified vectors per second of the co-simulation, batch mode against per-cycle
driving — same design, same simulator, same stimulus, same run — and the wall time of the TFC
RTL over all 10,000 MNIST images.

Both modes run at full rate (valid and ready always high) so they simulate the same clocks.
A rate counts everything a user waits for once the simulator binary exists: writing the job,
simulating, reading and scoring the outputs. Builds are made by a warm-up run first and timed
separately (``build_s``). Every timed run must end with 0 mismatches.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np

from hwnorm import data
from hwnorm.bench import benchmark, figure

MVU_VECTORS = 20_000
TFC_IMAGES = 10_000


def _timed(verilog: str, top: str, job: dict, sim: str, work: str, mode: str) -> float:
    from hwnorm.sim.runner import cosim

    start = time.perf_counter()
    result = cosim(verilog, top, job, sim, work, waves_on_failure=False, mode=mode)
    seconds = time.perf_counter() - start
    if result.mismatches or result.vectors != job["vectors"]:
        raise AssertionError(f"cosim benchmark: {result.message}")
    return seconds


def _compare(label: str, verilog: str, top: str, job: dict, warm_up: dict, sim: str, work: str, unit: str):
    """Figures of one design on one simulator: batch rate vs per-cycle rate on the same job."""
    builds = {}
    for mode in ("stream", "batch"):
        builds[mode] = _timed(verilog, top, warm_up, sim, work, mode)
    seconds = {mode: _timed(verilog, top, job, sim, work, mode) for mode in ("stream", "batch")}
    n = job["vectors"]
    return figure(f"cosim.{label}_{sim}_batch_vs_per_cycle", n / seconds["batch"], unit,
                  f"per-cycle cocotb driving ({sim})", n / seconds["stream"], vectors=n,
                  batch_s=round(seconds["batch"], 3), per_cycle_s=round(seconds["stream"], 3),
                  build_s=round(builds["batch"], 3))


@benchmark("cosim")
def bench_cosim(repeat: int = 5):
    from hwnorm.generate import default_designs, model_of, verilog_text
    from hwnorm.sim.jobs import layer_job, network_job
    from hwnorm.sim.runner import available_simulators, require_simulators

    require_simulators()
    designs = {d.name: d for d in default_designs()}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="hwnorm-bench-cosim-") as work:
        mvu = model_of(designs["tfc_mvu"])[0]
        mvu_verilog = verilog_text(mvu.component(), "tfc_mvu")
        x = rng.integers(0, 2, (MVU_VECTORS, mvu.layer.in_features))
        full_rate = {"p_valid": 1.0, "p_ready": 1.0}
        for sim in available_simulators():
            n = MVU_VECTORS if sim == "verilator" else MVU_VECTORS // 10  # Icarus: ~5k clocks/s here
            yield _compare("mvu", mvu_verilog, "tfc_mvu", layer_job(mvu, x[:n], 0, **full_rate),
                           layer_job(mvu, x[:4], 0, **full_rate), sim, work, "vectors/s")
        if "verilator" in available_simulators():
            tfc = model_of(designs["tfc"])[0]
            images, _ = data.mnist_test()
            x = images[:TFC_IMAGES].reshape(TFC_IMAGES, -1).astype(np.int64)
            tfc_verilog = verilog_text(tfc.component(), "tfc")
            yield _compare("tfc", tfc_verilog, "tfc", network_job(tfc, x, 0, **full_rate),
                           network_job(tfc, x[:2], 0, **full_rate), "verilator", work, "images/s")
