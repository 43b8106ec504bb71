"""Verification: the RTL of a design co-simulated against its golden model (``hwnorm verify``, and
the flow's and the report's verify stage: mismatches, full-rate beat clocks against the cycle
model, and a network's golden and RTL accuracy on the MNIST test images).

Stimulus per design is its block's own (:meth:`hwnorm.blocks.Block.job`): directed corners first
(input extremes, all-zero / all-one vectors, values exactly on thresholds), then constrained-random
vectors from ``seed``; network tops get the vendored MNIST test images. Every run can be replayed
from its seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnorm import data
from hwnorm.estimate.cycles import full_rate_output_cycles
from hwnorm.generate import Plan, Verilog, plan_of
from hwnorm.sim.job import Job
from hwnorm.sim.runner import cosim, require_simulators
from hwnorm.sim.scoreboard import unpack_lanes

__all__ = ["verify", "outcome_lines", "default_work_dir", "Outcome", "golden_accuracy", "rtl_predictions", "cosimulate",
           "rtl_figures"]


def default_work_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hwnorm" / "cosim"


@dataclass
class Outcome:
    design: str
    vectors: int
    mismatches: int
    cycles: int
    message: str


def verify(designs, sim: str, vectors: int, seed: int, work_dir=None, progress=None,
           mode: str = "batch") -> list[Outcome]:
    """Generate each design's Verilog, co-simulate ``vectors`` of its stimulus on ``sim`` in ``mode``
    (``batch`` or ``stream``, see :mod:`hwnorm.sim.runner`)."""
    present = require_simulators()
    if sim not in present:
        raise ValueError(f"simulator {sim!r} is not installed; present: {', '.join(present)}")
    # Absolute: the simulators run in a build folder below it, where a relative path means another place.
    work = (Path(work_dir) if work_dir else default_work_dir()).resolve()
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"work folder {work}: cannot create it ({e.strerror or e})") from None
    outcomes = []
    for k, design in enumerate(designs):
        if progress:
            progress(k, len(designs), design.name)
        plan = plan_of(design)
        job = plan.block.job(vectors, seed + k)
        result = cosim(Verilog.of_plan(plan).text, design.name, job, sim, work, mode=mode)
        outcomes.append(Outcome(design.name, result.vectors, result.mismatches, result.cycles, result.message))
    if progress:
        progress(len(designs), len(designs), "")
    return outcomes


def outcome_lines(outcomes: list[Outcome], sim: str) -> list[str]:
    """What ``hwnorm verify`` prints: one line per design, then the total."""
    lines = [f"{o.design:<20}{o.vectors:>8} vectors {o.cycles:>10} cycles  {o.mismatches:>6} mismatches"
             + ("" if not o.mismatches else f"  — {o.message}") for o in outcomes]
    lines.append(f"verified {sum(o.vectors for o in outcomes)} vectors on {sim}: "
                 f"{sum(o.mismatches for o in outcomes)} mismatches")
    return lines


def golden_accuracy(block, test_images: str = "all") -> dict | None:
    """Golden-model top-1 of a network on the vendored MNIST test images of the set ``test_images``
    (predictions for all 10,000, so co-simulated images can be looked up by index); None for a
    design that is not a network on MNIST."""
    net = block.net
    if net is None or not data.takes_mnist(net):
        return None
    x, y = data.mnist_test()
    pred = net.predict(x.reshape(len(x), -1).astype(np.int64))
    ids = data.mnist_ids(test_images)
    return {"images": int(len(ids)), "test_images": test_images, "top1": float(np.mean(pred[ids] == y[ids])),
            "predictions": pred}


def rtl_predictions(job: Job, values: list) -> np.ndarray | None:
    """The classes a network's RTL gave, from its output beats: the index itself (argmax top) or
    the argmax of the raw scores (first index on ties); None if a beat is missing or undefined."""
    per_vector = job.out_beats_per_vector
    if len(values) < job.vectors * per_vector or any(v is None for v in values):
        return None
    lanes = [unpack_lanes(v, job.out_lanes, job.out_width, job.out_signed) for v in values]
    scores = np.array(lanes[:job.vectors * per_vector]).reshape(job.vectors, -1)
    return scores[:, 0] if job.argmax_output else np.argmax(scores, axis=1)


def cosimulate(plan: Plan, verilog: Verilog, vectors: int, seed: int, sim: str, work_dir,
               test_images: str = "all") -> dict:
    """Co-simulate ``vectors`` with random idle cycles and back-pressure (mismatches), then at full
    rate (every output beat's clock against the cycle estimator)."""
    block, name = plan.block, plan.design.name
    work = Path(work_dir) if work_dir else default_work_dir()
    job = block.job(vectors, seed, test_images) if block.net is not None else block.job(vectors, seed)
    random_rate = cosim(verilog.text, name, job, sim, work, mode="batch")
    full = cosim(verilog.text, name, job.first(job.vectors, p_valid=1.0, p_ready=1.0), sim, work,
                 mode="batch")
    predicted = full_rate_output_cycles(block, full.vectors, full.first_in_cycle)
    measured = full.beat_cycles or []
    per_vector = block.out_beats
    done = measured[per_vector - 1::per_vector]
    out = {"simulator": sim, "vectors": random_rate.vectors, "p_valid": job.p_valid, "p_ready": job.p_ready,
           "mismatches": random_rate.mismatches + full.mismatches, "message": random_rate.message,
           "full_rate": {"vectors": full.vectors, "beats": len(measured),
                         "beats_at_predicted_clock": int(sum(a == b for a, b in zip(measured, predicted))),
                         "latency": measured[per_vector - 1] - full.first_in_cycle if measured else None,
                         "clocks_per_vector": (done[-1] - done[0]) / (len(done) - 1) if len(done) > 1 else None}}
    if job.image_ids is not None:  # a network on MNIST images: what the RTL predicted, for its top-1
        out["image_ids"] = job.image_ids
        out["predictions"] = rtl_predictions(job, random_rate.beat_values or [])
    return out


def rtl_figures(fig: dict, plan: Plan, *, vectors: int, seed: int, sim: str | None, work_dir=None,
                progress=None, verilog: Verilog | None = None, test_images: str = "all") -> dict:
    """``fig`` with the golden model's accuracy (networks on the MNIST images of ``test_images``)
    and, on ``sim``, the RTL (``verilog``, or generated here from the plan) co-simulated against it."""
    say = progress or (lambda what: None)
    acc = golden_accuracy(plan.block, test_images)
    if sim:
        say(f"{plan.design.name}: co-simulating {vectors} vectors on {sim}")
        fig["rtl"] = cosimulate(plan, verilog or Verilog.of_plan(plan), vectors, seed, sim, work_dir, test_images)
    if acc is not None:
        pred = acc.pop("predictions")
        fig["accuracy"] = acc
        rtl = fig.get("rtl")
        if rtl and "image_ids" in rtl:
            ids = np.array(rtl.pop("image_ids"))
            got = rtl.pop("predictions")
            _, y = data.mnist_test()
            fig["accuracy"]["cosimulated_images"] = len(ids)
            fig["accuracy"]["golden_top1_on_cosimulated"] = float(np.mean(pred[ids] == y[ids]))
            # from the classes the RTL itself gave (None if some output beat was missing or undefined)
            fig["accuracy"]["rtl_top1_on_cosimulated"] = None if got is None else float(np.mean(got == y[ids]))
    return fig
