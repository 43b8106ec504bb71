"""Cycle estimates of a design from its spec and folding, read from the blocks' own cycle models
(:mod:`hwnorm.blocks`; FINN-style: each hardware block carries its model next to it).

Per block: beats per vector in and out, clocks per vector at full rate (the initiation interval,
SF·NF for an MVU), and latency — clocks from a vector's first input beat to its last output beat
on an idle pipeline. Per network: the same for every stage, the slowest stage's interval, the
first-result latency, and throughput at a clock frequency.

``full_rate_output_cycles`` predicts the clock of every output beat of a stream of vectors fed at
full rate; the co-simulation tests hold it against the clocks the simulators measure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hwnorm.blocks import timeline

__all__ = ["BlockCycles", "DesignCycles", "block_cycles", "design_cycles", "full_rate_output_cycles"]


@dataclass(frozen=True)
class BlockCycles:
    name: str
    kind: str
    in_beats: int             # input beats per vector
    out_beats: int            # output beats per vector
    cycles_per_vector: int    # initiation interval at full rate
    latency: int              # first input beat → last output beat of one vector, idle pipeline

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StageCycles:
    """One block of a network top: clocks per vector and when the first vector is through it."""
    name: str
    kind: str
    cycles_per_vector: int
    out_beats: int            # beats per vector leaving this stage
    done_at: int              # clock (from the top's first input beat) of the first vector's last beat out

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DesignCycles:
    design: BlockCycles
    stages: tuple[StageCycles, ...]  # a network's blocks in stream order; a block design: itself
    clock_hz: float

    @property
    def bottleneck(self) -> StageCycles:
        return max(self.stages, key=lambda s: s.cycles_per_vector)

    @property
    def vectors_per_second(self) -> float:
        return self.clock_hz / self.design.cycles_per_vector

    @property
    def latency_seconds(self) -> float:
        return self.design.latency / self.clock_hz

    def to_dict(self) -> dict:
        return {"design": self.design.to_dict(), "stages": [s.to_dict() for s in self.stages],
                "clock_hz": self.clock_hz, "bottleneck": self.bottleneck.name,
                "vectors_per_second": self.vectors_per_second, "latency_seconds": self.latency_seconds}


def full_rate_output_cycles(block, vectors: int, first_arrival: int = 0) -> list[int]:
    """Clock of each output beat when input beat ``k`` is offered from clock ``first_arrival + k``
    on (the source never idles) and the output is always ready."""
    arrivals = [first_arrival + k for k in range(vectors * block.in_beats)]
    return list(block.schedule(arrivals))


def block_cycles(block, name: str) -> BlockCycles:
    """The cycle figures of one block (or a whole network)."""
    one_vector = full_rate_output_cycles(block, 1)
    return BlockCycles(name, block.kind, int(block.in_beats), int(block.out_beats),
                       int(block.initiation_interval), int(one_vector[-1]))


def design_cycles(block, name: str, clock_hz: float) -> DesignCycles:
    """Cycle figures of a design's block; a network also lists its stages."""
    if not clock_hz > 0:
        raise ValueError(f"clock must be a positive frequency, got {clock_hz} Hz")
    design = block_cycles(block, name)
    stages = block.stages
    if not stages:
        return DesignCycles(design, (StageCycles(name, design.kind, design.cycles_per_vector, design.out_beats,
                                                 design.latency),), float(clock_hz))
    per_stage, beats = [], list(range(block.in_beats))
    if stages[0].sources:  # a graph: each stage reads the streams its sources name
        outs = timeline(stages, beats)[0]
        for k, stage in enumerate(stages):
            done = outs[(k, 0)]
            per_stage.append(StageCycles(stage.name, stage.block.kind, int(stage.cycles), len(done), int(done[-1])))
        return DesignCycles(design, tuple(per_stage), float(clock_hz))
    for stage in stages:
        beats = stage.block.schedule(beats)
        per_stage.append(StageCycles(stage.name, stage.block.kind, int(stage.cycles), len(beats), int(beats[-1])))
    return DesignCycles(design, tuple(per_stage), float(clock_hz))
