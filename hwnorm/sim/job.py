"""The co-simulation job: what a testbench drives into a block and checks coming out of it.

Built by :mod:`hwnorm.sim.jobs` (one builder per kind of block), read by the runner, the
scoreboard and both testbenches (the stream testbench reads it as JSON inside the simulator;
this module imports nothing but the standard library, so it loads there at once)::

    inputs    packed input beats, lane 0 lowest         in_bits   bits of one input beat
    expected  packed golden output beats                out_lanes × out_width (out_signed) per beat
    vectors   units the beats make (vectors, maps, images), out_beats_per_vector each
    seed, p_valid, p_ready   the random idle cycles and back-pressure, replayable
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

__all__ = ["Job"]


@dataclass(frozen=True)
class Job:
    block: str                 # what the mismatch messages call the block
    seed: int
    p_valid: float             # probability the source offers a beat on a clock
    p_ready: float             # probability the sink takes one
    vectors: int
    inputs: list
    expected: list
    in_bits: int
    out_lanes: int
    out_width: int
    out_signed: bool
    out_beats_per_vector: int
    vector_ids: list           # what each vector is called in messages (an MNIST index for an image)
    vector_label: str = "vector"
    channel_label: str = "channel"
    argmax_output: bool = False  # a network top that outputs the class index
    image_ids: list | None = field(default=None)  # the MNIST test images a network job runs

    def first(self, n: int, **changes) -> "Job":
        """The job cut to its first ``n`` vectors (e.g. a short full-rate timing run)."""
        n = min(n, self.vectors)
        per_in = len(self.inputs) // self.vectors
        per_out = self.out_beats_per_vector
        return replace(self, vectors=n, inputs=self.inputs[:n * per_in], expected=self.expected[:n * per_out],
                       vector_ids=self.vector_ids[:n],
                       image_ids=None if self.image_ids is None else self.image_ids[:n], **changes)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Job":
        return cls(**json.loads(text))
