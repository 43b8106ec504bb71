"""Amaranth-simulator harness for hwnorm's stream components (ports ``i`` / ``o``).

``run_stream`` drives input beats with random idle cycles and reads with random back-pressure
(the cocotbext-axi habit), and returns the output payloads in order. ``full_rate_timing``
drives at full rate with the output always ready and reports the cycle of every handshake, so a
test can hold a component to the ``latency`` / ``initiation_interval`` it declares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator


def _simulate(dut, bench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def run_stream(dut, inputs: list, seed: int, n_out: int | None = None, p_valid=0.7, p_ready=0.7,
               max_cycles: int | None = None) -> list:
    """Push ``inputs`` through ``dut`` with random valid / ready; ``n_out`` outputs (default one per
    input) in order. Payloads are whatever ``ctx.get`` returns (ints or layout constants)."""
    rng = np.random.default_rng(seed)
    n_out = len(inputs) if n_out is None else n_out
    outputs = []
    limit = max_cycles or 40 * (len(inputs) + n_out) + 200

    async def bench(ctx):
        sent = 0
        for _ in range(limit):
            if len(outputs) == n_out:
                return
            offer = sent < len(inputs) and rng.random() < p_valid
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload, inputs[sent])
            take = bool(rng.random() < p_ready)
            ctx.set(dut.o.ready, take)
            accepted = offer and ctx.get(dut.i.ready)
            if take and ctx.get(dut.o.valid):
                outputs.append(ctx.get(dut.o.payload))
            await ctx.tick()
            sent += bool(accepted)
        raise AssertionError(f"stream stalled: {sent} of {len(inputs)} sent, {len(outputs)} of {n_out} received")

    _simulate(dut, bench)
    return outputs


@dataclass
class Timing:
    accepted: list  # cycle of each input handshake
    produced: list  # cycle of each output handshake
    outputs: list


def full_rate_timing(dut, inputs: list, n_out: int) -> Timing:
    """Inputs offered every cycle, output always ready; handshake cycles of both sides."""
    accepted, produced, outputs = [], [], []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        cycle = sent = 0
        while len(outputs) < n_out:
            if cycle > 100 * (len(inputs) + n_out) + 100:
                raise AssertionError("stream stalled at full rate")
            ctx.set(dut.i.valid, sent < len(inputs))
            if sent < len(inputs):
                ctx.set(dut.i.payload, inputs[sent])
            if sent < len(inputs) and ctx.get(dut.i.ready):
                accepted.append(cycle)
                sent += 1
            if ctx.get(dut.o.valid):
                produced.append(cycle)
                outputs.append(ctx.get(dut.o.payload))
            await ctx.tick()
            cycle += 1

    _simulate(dut, bench)
    return Timing(accepted, produced, outputs)


def lanes(value, n: int) -> list[int]:
    """The ``n`` lane values of an ArrayLayout constant as Python ints."""
    return [int(value[k]) for k in range(n)]
