"""``hwnorm verify``: co-simulate designs against their golden models from the command line.

Stimulus per design is its block's own (:meth:`hwnorm.blocks.Block.job`): directed corners first
(input extremes, all-zero / all-one vectors, values exactly on thresholds), then constrained-random
vectors from ``seed``; network tops get the vendored MNIST test images. Every run can be replayed
from its seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["verify", "default_work_dir", "Outcome"]


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
    from hwnorm.generate import model_of, verilog_text
    from hwnorm.sim.runner import cosim, require_simulators

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
        block, _ = model_of(design)
        job = block.job(vectors, seed + k)
        result = cosim(verilog_text(block.component(), design.name), design.name, job, sim, work, mode=mode)
        outcomes.append(Outcome(design.name, result.vectors, result.mismatches, result.cycles, result.message))
    if progress:
        progress(len(designs), len(designs), "")
    return outcomes
