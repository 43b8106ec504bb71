"""The cocotb testbench of every hwnorm stream block (runs inside the simulator).

Block-specific knowledge — stimulus, golden outputs, how an output beat maps to a vector, layer
and channel — is computed outside by :mod:`hwnorm.sim.jobs` and handed over as a JSON *job*
(``HWNORM_JOB``). The bench is built from small parts, in the cocotbext-axi manner:

    StreamSource   drives ``i__valid`` / ``i__payload``, idle cycles at random
    StreamSink     drives ``o__ready`` (random back-pressure) and monitors ``o__valid`` / ``o__payload``
    Scoreboard     in-order compare against the golden beats (:mod:`hwnorm.sim.scoreboard`)

Ports are Amaranth's (``clk``, ``rst``, ``i__*``, ``o__*``). The result (mismatch count, first
mismatch, cycles) is written to ``HWNORM_RESULT`` for the runner to read.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hwnorm.sim.job import Job
from hwnorm.sim.scoreboard import Scoreboard


class StreamSource:
    """Offers the beats in order; each cycle it stays idle with probability ``1 − p_valid``."""

    def __init__(self, dut, beats: list[int], p_valid: float, rng: random.Random):
        self.dut, self.beats, self.p_valid, self.rng = dut, beats, p_valid, rng
        self.sent = 0

    async def run(self):
        dut = self.dut
        while self.sent < len(self.beats):
            await FallingEdge(dut.clk)
            offer = self.rng.random() < self.p_valid
            dut.i__valid.value = int(offer)
            if offer:
                dut.i__payload.value = self.beats[self.sent]
            await ReadOnly()
            accepted = offer and int(dut.i__ready.value) == 1
            await RisingEdge(dut.clk)
            self.sent += accepted
        await FallingEdge(dut.clk)
        dut.i__valid.value = 0


class StreamSink:
    """Reads output beats; each cycle it refuses with probability ``1 − p_ready``."""

    def __init__(self, dut, expected_count: int, p_ready: float, rng: random.Random, on_beat):
        self.dut, self.count, self.p_ready, self.rng, self.on_beat = dut, expected_count, p_ready, rng, on_beat
        self.received = 0
        self.cycle = 0

    async def run(self):
        dut = self.dut
        while self.received < self.count:
            await FallingEdge(dut.clk)
            take = self.rng.random() < self.p_ready
            dut.o__ready.value = int(take)
            await ReadOnly()
            if take and int(dut.o__valid.value) == 1:
                self.on_beat(self.received, dut.o__payload.value.to_unsigned())
                self.received += 1
            await RisingEdge(dut.clk)
            self.cycle += 1


@cocotb.test()
async def stream_block_matches_golden(dut):
    job = Job.from_json(open(os.environ["HWNORM_JOB"]).read())
    rng = random.Random(job.seed)
    board = Scoreboard(job)
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    dut.rst.value = 1
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for _ in range(2):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    source = StreamSource(dut, job.inputs, job.p_valid, rng)
    sink = StreamSink(dut, len(job.expected), job.p_ready, random.Random(job.seed + 1), board.check)
    cocotb.start_soon(source.run())
    await sink.run()
    result = {"vectors": job.vectors, "beats": sink.received, "mismatches": board.mismatches,
              "first": board.first, "cycles": sink.cycle}
    with open(os.environ["HWNORM_RESULT"], "w") as fh:
        json.dump(result, fh)
    assert board.mismatches == 0, board.first["message"]
