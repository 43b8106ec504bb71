"""Stream plumbing for the network top: lane-count converters, a FIFO, and a streaming argmax.

All carry ``ArrayLayout(element, lanes)`` payloads (lane ``k`` of beat ``g`` is element
``g·lanes + k`` of the vector) and state their cycle model like every other component:
``latency`` and ``schedule(arrivals) → output-valid cycles`` with the output always ready.
"""

from __future__ import annotations

import math

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hwnorm.hdl.common import Inventory, MemoryUse, advance_signal, bits, unused_ok

__all__ = ["Gather", "Split", "StreamFIFO", "ArgMax", "width_converter"]


def _lanes_signature(element, n_in: int, n_out: int) -> dict:
    return {"i": In(stream.Signature(data.ArrayLayout(element, n_in))),
            "o": Out(stream.Signature(data.ArrayLayout(element, n_out)))}


def _every_nth_plus_one(arrivals: list[int], n: int) -> list[int]:
    """One beat accepted per clock; an output one clock after every ``n``-th beat."""
    out, t = [], -1
    for k, a in enumerate(arrivals):
        t = max(t + 1, a)
        if k % n == n - 1:
            out.append(t + 1)
    return out


class Gather(wiring.Component):
    """``factor`` beats of ``lanes`` elements → one beat of ``factor · lanes`` (the first beat in
    the low lanes). Output valid one clock after the last beat's handshake."""

    latency = 1

    def __init__(self, element, lanes: int, factor: int):
        self.element, self.factor = element, factor
        super().__init__(_lanes_signature(element, lanes, lanes * factor))

    def schedule(self, arrivals: list[int]) -> list[int]:
        return _every_nth_plus_one(arrivals, self.factor)

    def inventory(self) -> Inventory:
        n = len(self.i.payload.as_value())
        return Inventory(adder=bits(self.factor), logic=self.factor,
                         register=n * (2 * self.factor - 1) + bits(self.factor) + 1)

    def elaborate(self, platform):
        m, n = Module(), len(self.i.payload.as_value())
        advance = advance_signal(m, self.o)
        m.d.comb += self.i.ready.eq(advance)
        count = Signal(range(self.factor))
        held = Signal(n * (self.factor - 1))  # the beats before the last one
        with m.If(self.i.valid & self.i.ready):
            last = count == self.factor - 1
            m.d.sync += count.eq(Mux(last, 0, count + 1))
            for k in range(self.factor - 1):
                with m.If(count == k):
                    m.d.sync += held[k * n:(k + 1) * n].eq(self.i.payload.as_value())
            with m.If(last):
                m.d.sync += self.o.payload.eq(Cat(held, self.i.payload.as_value()))
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.i.valid & (count == self.factor - 1))
        return m


class Split(wiring.Component):
    """One beat of ``factor · lanes`` elements → ``factor`` beats of ``lanes`` (low lanes first).
    The first piece is valid one clock after the handshake; the pieces follow back to back."""

    latency = 1

    def __init__(self, element, lanes: int, factor: int):
        self.element, self.factor = element, factor
        super().__init__(_lanes_signature(element, lanes * factor, lanes))

    def schedule(self, arrivals: list[int]) -> list[int]:
        out, accept = [], None
        for a in arrivals:
            accept = a if accept is None else max(a, accept + self.factor)
            out += [accept + 1 + k for k in range(self.factor)]
        return out

    def inventory(self) -> Inventory:
        n = len(self.o.payload.as_value())
        return Inventory(adder=2 * bits(self.factor + 1), mux=n * (self.factor - 1),
                         register=n * self.factor + 2 * bits(self.factor + 1))

    def elaborate(self, platform):
        m, n = Module(), len(self.o.payload.as_value())
        held = Signal(len(self.i.payload.as_value()))
        left = Signal(range(self.factor + 1))  # pieces still to send
        piece = Signal(range(self.factor))
        m.d.comb += [self.o.valid.eq(left != 0),
                     self.o.payload.eq(held.word_select(piece, n)),
                     self.i.ready.eq((left == 0) | ((left == 1) & self.o.ready))]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [left.eq(left - 1), piece.eq(piece + 1)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(self.i.payload.as_value()), left.eq(self.factor), piece.eq(0)]
        return m


def width_converter(element, n_in: int, n_out: int) -> list:
    """The converters from ``n_in`` to ``n_out`` lanes: none, a gather, a split, or a split to
    ``gcd(n_in, n_out)`` lanes followed by a gather."""
    if n_in == n_out:
        return []
    if n_out % n_in == 0:
        return [Gather(element, n_in, n_out // n_in)]
    if n_in % n_out == 0:
        return [Split(element, n_out, n_in // n_out)]
    g = math.gcd(n_in, n_out)
    return [Split(element, g, n_in // g), Gather(element, g, n_out // g)]


class StreamFIFO(wiring.Component):
    """A synchronous FIFO (block-RAM friendly) between two stages, so a producer can run ahead of
    a consumer that reads its input only part of the time (an MVU replaying its buffer)."""

    latency = 2  # SyncFIFOBuffered: written at t, readable at t + 2

    def __init__(self, payload_shape, depth: int):
        if depth < 3:  # SyncFIFOBuffered keeps depth − 1 entries in memory: 1 would be a 0-bit address
            unused_ok(self)
            raise ValueError(f"StreamFIFO depth must be at least 3, got {depth}")
        self.depth = depth
        super().__init__({"i": In(stream.Signature(payload_shape)), "o": Out(stream.Signature(payload_shape))})

    def schedule(self, arrivals: list[int]) -> list[int]:
        out, t = [], -1
        for a in arrivals:
            t = max(t + 1, a + self.latency)
            out.append(t)
        return out

    def inventory(self) -> Inventory:
        width, depth = len(self.i.payload.as_value()), self.depth - 1  # SyncFIFOBuffered: memory + output register
        return Inventory(adder=3 * bits(depth + 1), register=width + 3 * bits(depth + 1) + 2,
                         memories=(MemoryUse("ram", width, depth),))

    def elaborate(self, platform):
        m = Module()
        width = len(self.i.payload.as_value())
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=width, depth=self.depth)
        m.d.comb += [fifo.w_data.eq(self.i.payload.as_value()), fifo.w_en.eq(self.i.valid),
                     self.i.ready.eq(fifo.w_rdy),
                     self.o.payload.eq(fifo.r_data), self.o.valid.eq(fifo.r_rdy), fifo.r_en.eq(self.o.ready)]
        return m


class ArgMax(wiring.Component):
    """Index of the largest of ``channels`` values arriving ``lanes`` per beat (the first index on
    ties, like numpy and ONNX ArgMax). One index per vector, valid one clock after its last beat."""

    latency = 1

    def __init__(self, element, lanes: int, channels: int):
        self.lanes, self.channels, self.groups = lanes, channels, channels // lanes
        super().__init__({"i": In(stream.Signature(data.ArrayLayout(element, lanes))),
                          "o": Out(stream.Signature(unsigned(max(1, (channels - 1).bit_length()))))})

    def schedule(self, arrivals: list[int]) -> list[int]:
        return _every_nth_plus_one(arrivals, self.groups)

    def inventory(self) -> Inventory:
        width, index = len(self.i.payload.as_value()) // self.lanes, len(self.o.payload)
        return Inventory(adder=bits(self.groups), compare=self.lanes * width,
                         mux=self.lanes * (width + index),
                         register=width + 2 * index + bits(self.groups) + 1)

    def _beat_best(self, group):
        """(value, index) of the beat's largest lane; a right candidate wins only if strictly larger."""
        cands = [(self.i.payload[k], group * self.lanes + k) for k in range(self.lanes)]
        while len(cands) > 1:
            merged = []
            for (va, ia), (vb, ib) in zip(cands[0::2], cands[1::2]):
                right = vb > va
                merged.append((Mux(right, vb, va), Mux(right, ib, ia)))
            cands = merged + ([cands[-1]] if len(cands) % 2 else [])
        return cands[0]

    def elaborate(self, platform):
        m = Module()
        advance = advance_signal(m, self.o)
        m.d.comb += self.i.ready.eq(advance)
        group = Signal(range(max(self.groups, 2)))
        best_value = Signal.like(self.i.payload[0])
        best_index = Signal(self.o.payload.shape())
        value, index = self._beat_best(group)
        take = (group == 0) | (value > best_value)
        new_value, new_index = Mux(take, value, best_value), Mux(take, index, best_index)
        last = group == self.groups - 1
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [best_value.eq(new_value), best_index.eq(new_index),
                         group.eq(Mux(last, 0, group + 1))]
            with m.If(last):
                m.d.sync += self.o.payload.eq(new_index)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.i.valid & last)
        return m
