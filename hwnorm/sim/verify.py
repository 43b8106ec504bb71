"""``hwnorm verify``: co-simulate designs against their golden models from the command line.

Stimulus per block: directed corners first (input extremes, all-zero / all-one vectors, pixels
exactly on their thresholds), then constrained-random vectors from ``seed``; the network tops
get the vendored MNIST test images. Every run can be replayed from its seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnorm import data
from hwnorm.sim import jobs

__all__ = ["job_for", "verify", "default_work_dir", "Outcome"]


def default_work_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hwnorm" / "cosim"


def _with_corners(rng, lo: int, hi: int, n: int, width: int) -> np.ndarray:
    x = rng.integers(lo, hi + 1, (n, width))
    corners = [lo, hi] + ([0] if lo <= 0 <= hi else [])
    for k, c in enumerate(corners[:n]):
        x[k] = c
    return x


def job_for(kind: str, component, n: int, seed: int) -> dict:
    """A job of ``n`` vectors (blocks for the STT codecs, images for networks) for one design."""
    rng = np.random.default_rng(seed)
    if kind == "qbn":
        s = component.spec
        return jobs.bn_job(component, _with_corners(rng, s.in_lo, s.in_hi, n, s.channels), seed)
    if kind == "mvu":
        layer = component.layer
        return jobs.mvu_job(component, _with_corners(rng, *layer.in_range, n, layer.in_features), seed)
    if kind == "thresholding":
        layer = component.layer
        lo, hi = layer.in_range
        x = _with_corners(rng, lo, hi, n, layer.in_features)
        if n > 3:  # every channel exactly on its first threshold (acc ≥ T fires)
            x[3] = np.clip(layer.thresholds.thresholds[:, 0], lo, hi)
        return jobs.thresholding_job(component, x, seed)
    if kind in ("stt_encoder", "stt_decoder"):
        spec = component.spec
        words = rng.integers(0, 1 << 16, n * spec.block_words).astype(np.uint16) & np.uint16(0xBFFF)
        if kind == "stt_encoder":
            return jobs.stt_encoder_job(component, words, seed)
        cells = spec.encode(words.view(np.float16))
        hit = rng.random(cells.shape) < 0.05  # soft errors for the decoder to repair or flag
        cells[hit] = rng.integers(0, 4, int(hit.sum()), dtype=np.uint8)
        return jobs.stt_decoder_job(component, cells, seed)
    if kind == "network":
        images, _ = data.mnist_test()
        if component.net.in_features != images[0].size:
            x = _with_corners(rng, *component.net.layers[0].in_range, n, component.net.in_features)
            return jobs.network_job(component, x, seed)
        ids = np.arange(n) % len(images)
        return jobs.network_job(component, images[ids].reshape(n, -1).astype(np.int64), seed, image_ids=ids)
    raise ValueError(f"no stimulus for design kind {kind!r}")


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
    from hwnorm.generate import build
    from hwnorm.sim.runner import cosim, require_simulators, verilog_of

    present = require_simulators()
    if sim not in present:
        raise ValueError(f"simulator {sim!r} is not installed; present: {', '.join(present)}")
    work = Path(work_dir) if work_dir else default_work_dir()
    outcomes = []
    for k, design in enumerate(designs):
        if progress:
            progress(k, len(designs), design.name)
        component, _ = build(design)
        job = job_for(design.kind, component, vectors, seed + k)
        result = cosim(verilog_of(component, design.name), design.name, job, sim, work, mode=mode)
        outcomes.append(Outcome(design.name, result.vectors, result.mismatches, result.cycles, result.message))
    if progress:
        progress(len(designs), len(designs), "")
    return outcomes
