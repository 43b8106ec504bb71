"""``cosim``: verified vectors per second of the co-simulation, batch mode against per-cycle
driving — same design, same simulator, same stimulus, same run — and the wall time of the TFC
RTL over all 10,000 MNIST images. On a conv network (the vendored CNV 1W1A, 2,000 images of
~6,100 clocks): batch mode's clocks per second against the ceiling — the same harness binary's
own simulation time — and against the same harness under cocotb with ``--timing``.

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
from hwnorm.bench.registry import benchmark, figure
from hwnorm.generate import default_designs, design_for_model, model_of
from hwnorm.hdl.verilog import verilog_text
from hwnorm.sim.job import Job
from hwnorm.sim.jobs import layer_job, network_job
from hwnorm.sim.runner import available_simulators, cosim, require_simulators

MVU_VECTORS = 20_000
TFC_IMAGES = 10_000
CNV_IMAGES = 2_000


def _timed(verilog: str, top: str, job: Job, sim: str, work: str, mode: str) -> float:
    start = time.perf_counter()
    result = cosim(verilog, top, job, sim, work, waves_on_failure=False, mode=mode)
    seconds = time.perf_counter() - start
    if result.mismatches or result.vectors != job.vectors:
        raise AssertionError(f"cosim benchmark: {result.message}")
    return seconds


def _compare(label: str, verilog: str, top: str, job: Job, warm_up: dict, sim: str, work: str, unit: str):
    """Figures of one design on one simulator: batch rate vs per-cycle rate on the same job."""
    builds = {}
    for mode in ("stream", "batch"):
        builds[mode] = _timed(verilog, top, warm_up, sim, work, mode)
    seconds = {mode: _timed(verilog, top, job, sim, work, mode) for mode in ("stream", "batch")}
    n = job.vectors
    return figure(f"cosim.{label}_{sim}_batch_vs_per_cycle", n / seconds["batch"], unit,
                  f"per-cycle cocotb driving ({sim})", n / seconds["stream"], vectors=n,
                  batch_s=round(seconds["batch"], 3), per_cycle_s=round(seconds["stream"], 3),
                  build_s=round(builds["batch"], 3))


@benchmark("cosim")
def bench_cosim(repeat: int = 5):
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
            yield from _conv_rows(work)


def _conv_rows(work: str):
    """Clocks per second of the CNV top in batch mode (all a user waits for: job file, simulation,
    reading and scoring) against the ceiling (the harness binary's own run, measured inside the
    same call) and against the same job under cocotb (``--timing`` harness clock)."""
    top = model_of(design_for_model("CNV_MNIST_1W1A", "cnv"))[0]
    images, _ = data.mnist_test()
    ids = data.mnist_ids("held-out")[:CNV_IMAGES]
    job = network_job(top, images[ids].reshape(len(ids), -1).astype(np.int64), 0, image_ids=ids,
                      p_valid=1.0, p_ready=1.0)
    verilog = verilog_text(top.component(), "cnv")
    runs = {}
    for engine in ("native", "cocotb"):
        cocotb_batch = engine == "cocotb"
        start = time.perf_counter()
        cosim(verilog, "cnv", job.first(2), "verilator", work, mode="batch", cocotb_batch=cocotb_batch)
        build = time.perf_counter() - start
        start = time.perf_counter()
        result = cosim(verilog, "cnv", job, "verilator", work, waves_on_failure=False, mode="batch",
                       cocotb_batch=cocotb_batch)
        runs[engine] = (result, time.perf_counter() - start, build)
        if result.mismatches or result.vectors != len(ids):
            raise AssertionError(f"cosim benchmark: {result.message}")
    (native, wall, build), (cocotb, cocotb_wall, cocotb_build) = runs["native"], runs["cocotb"]
    clocks = native.cycles
    context = {"clocks": clocks, "images": len(ids), "batch_s": round(wall, 3), "build_s": round(build, 3)}
    yield figure("cosim.cnv_verilator_batch_vs_ceiling", clocks / wall, "clocks/s",
                 "the harness binary alone (plain Verilator C++ main)", clocks / native.seconds,
                 simulate_s=round(native.seconds, 3), **context)
    yield figure("cosim.cnv_verilator_batch_vs_cocotb_timing", clocks / wall, "clocks/s",
                 "the same harness under cocotb with --timing", cocotb.cycles / cocotb_wall,
                 cocotb_s=round(cocotb_wall, 3), cocotb_build_s=round(cocotb_build, 3), **context)
