"""In-order scoreboard shared by both co-simulation modes (plain Python, no cocotb import).

The per-cycle testbench feeds it beats as its monitor sees them; the batch runner feeds it the
beats the free-running harness wrote to its output file. Either way a mismatch is described by
block, vector (with its label, e.g. the MNIST image number), channel and expected vs actual.
"""

from __future__ import annotations

from hwnorm.sim.job import Job

__all__ = ["unpack_lanes", "Scoreboard"]


def unpack_lanes(value: int, lanes: int, width: int, signed: bool) -> list[int]:
    """A packed beat → its lane values (lane 0 in the low bits, two's complement when signed)."""
    out = []
    for k in range(lanes):
        v = (value >> (k * width)) & ((1 << width) - 1)
        if signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


class Scoreboard:
    """In-order comparison of output beats with a job's golden beats, lane by lane.

    ``value`` None stands for a beat the simulator could not give a defined value (x / z).
    """

    def __init__(self, job: Job):
        self.job = job
        self.mismatches = 0
        self.first = None

    def check(self, index: int, value: int | None) -> None:
        job = self.job
        expected = job.expected[index]
        if value == expected:
            return
        self.mismatches += 1
        if self.first is not None:
            return
        lanes, width, signed = job.out_lanes, job.out_width, job.out_signed
        want = unpack_lanes(expected, lanes, width, signed)
        got = [None] * lanes if value is None else unpack_lanes(value, lanes, width, signed)
        lane = next(k for k in range(lanes) if got[k] != want[k])
        vector, beat = divmod(index, job.out_beats_per_vector)
        channel = beat * lanes + lane
        actual = "an undefined (x/z) value" if value is None else got[lane]
        self.first = {"vector": vector, "beat": index, "channel": channel, "expected": want[lane],
                      "actual": got[lane], "expected_beat": want, "actual_beat": got,
                      "message": f"{job.block}: vector {vector} ({job.vector_label} "
                                 f"{job.vector_ids[vector]}), {job.channel_label} {channel}: "
                                 f"expected {want[lane]}, got {actual}"}
