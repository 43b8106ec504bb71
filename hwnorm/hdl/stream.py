"""Stream plumbing for the network top: lane-count converters, a FIFO, a register slice, a fork
(one stream to several consumers) and a streaming argmax —
the Amaranth components of the blocks in :mod:`hwnorm.blocks` (where their cycle models are).

All carry ``ArrayLayout(element, lanes)`` payloads (lane ``k`` of beat ``g`` is element
``g·lanes + k`` of the vector).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwnorm.hdl.common import (FromBlock, Retime, advance_signal, at_least, lane_array, pairwise_tree,
                               wrapped_increment)

__all__ = ["Gather", "Split", "StreamFIFO", "RegisterSlice", "ArgMax", "Fork"]


def _ports(block) -> dict:
    return {"i": In(stream.Signature(lane_array(block.in_type, block.in_lanes))),
            "o": Out(stream.Signature(lane_array(block.out_type, block.out_lanes)))}


class Gather(FromBlock, wiring.Component):
    """``factor`` beats of ``lanes`` elements → one beat of ``factor · lanes`` (the first beat in
    the low lanes). Output valid one clock after the last beat's handshake."""

    def __init__(self, block):
        self.block, self.factor = block, block.factor
        super().__init__(_ports(block))

    def elaborate(self, platform):
        m, n = Module(), len(self.i.payload.as_value())
        advance = advance_signal(m, self.o, self.registered_consumer)
        m.d.comb += self.i.ready.eq(advance)
        count = Signal(range(self.factor))
        held = Signal(n * (self.factor - 1), reset_less=True)  # the beats before the last one
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


class Split(FromBlock, wiring.Component):
    """One beat of ``factor · lanes`` elements → ``factor`` beats of ``lanes`` (low lanes first).
    The first piece is valid one clock after the handshake; the pieces follow back to back."""

    def __init__(self, block):
        self.block, self.factor = block, block.factor
        super().__init__(_ports(block))

    def elaborate(self, platform):
        m, n = Module(), len(self.o.payload.as_value())
        held = Signal(len(self.i.payload.as_value()), reset_less=True)
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


class StreamFIFO(FromBlock, wiring.Component):
    """A synchronous FIFO of ``depth`` beats between two stages (a ``FIFOBlock``), whose read data
    leaves through two registers::

        i ──► memory (depth − 2) ──read port──► read register ──► output register ──► o
                                   (the block RAM's own)     (its output register, OUTREG)

    Each register loads when the one after it is free or being read (``o.ready``), so a beat written
    at clock t is offered from t + 3 and one beat leaves per clock. Nothing reads a beat written in
    the same clock (a read needs the level that write raises), so the memory has no
    read-during-write bypass (``no_rw_check``); the output register, the only load of the read data,
    with one enable and no reset, is the one :mod:`hwnorm.estimate.netlist` moves into an ECP5
    block RAM — a block RAM read straight into logic was the 110 MHz path of FINN's CIFAR CNV."""

    def __init__(self, block):
        self.block, self.depth = block, block.depth
        super().__init__(_ports(block))

    def elaborate(self, platform):
        m = Module()
        width, inner = len(self.i.payload.as_value()), self.depth - 2
        m.submodules.storage = storage = Memory(shape=width, depth=inner, init=[], attrs={"no_rw_check": 1})
        w_port, r_port = storage.write_port(), storage.read_port(domain="sync")
        level = Signal(range(inner + 1))                        # beats in the memory
        produce, consume = Signal(range(inner)), Signal(range(inner))
        held, out = Signal(), Signal()                          # the read / output register holds a beat
        data = Signal(width, reset_less=True)
        load_out = ~out | self.o.ready
        load_held = ~held | load_out
        write = self.i.valid & self.i.ready
        read = (level != 0) & load_held
        m.d.comb += [self.i.ready.eq(level != inner),
                     w_port.addr.eq(produce), w_port.data.eq(self.i.payload.as_value()), w_port.en.eq(write),
                     r_port.addr.eq(consume), r_port.en.eq(load_held),
                     self.o.valid.eq(out), self.o.payload.eq(data)]
        with m.If(load_out):
            m.d.sync += [data.eq(r_port.data), out.eq(held)]
        with m.If(load_held):
            m.d.sync += held.eq(read)
        with m.If(write):
            m.d.sync += produce.eq(wrapped_increment(produce, inner))
        with m.If(read):
            m.d.sync += consume.eq(wrapped_increment(consume, inner))
        with m.If(write & ~read):
            m.d.sync += level.eq(level + 1)
        with m.Elif(read & ~write):
            m.d.sync += level.eq(level - 1)
        return m


class RegisterSlice(FromBlock, wiring.Component):
    """A full-rate skid buffer (a ``RegisterSliceBlock``)::

        i ──► [skid] ──► [out] ──► o        i.ready = skid free    (a flip-flop)
                                            o.valid = out full     (a flip-flop)

    The output register loads when it is free or being read: from the skid if that holds a beat,
    else from the input. A beat offered while the output is stalled waits in the skid."""

    ready_from_register = True

    def __init__(self, block):
        self.block = block
        super().__init__(_ports(block))

    def elaborate(self, platform):
        m = Module()
        # "free", not "valid": i.ready is then the flip-flop itself, with no inverter between it
        # and the clock enables of the producer (see common.advance_signal)
        skid_free = Signal(init=1)
        skid = Signal.like(self.i.payload, reset_less=True)
        m.d.comb += self.i.ready.eq(skid_free)
        with m.If(self.o.ready | ~self.o.valid):
            with m.If(~skid_free):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1), skid_free.eq(1)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & skid_free):
            m.d.sync += [skid.eq(self.i.payload), skid_free.eq(0)]
        return m


class ArgMax(FromBlock, wiring.Component):
    """Index of the largest of ``channels`` values arriving ``lanes`` per beat (the first index on
    ties, like numpy and ONNX ArgMax). One index per vector::

        beat ──► compare tree over the lanes (registered at the block's tree_cuts)
             ──► running best over the beats of a vector ──► index register
    """

    def __init__(self, block):
        self.block, self.lanes, self.channels, self.groups = block, block.in_lanes, block.channels, block.groups
        super().__init__({"i": In(stream.Signature(lane_array(block.in_type, block.in_lanes))),
                          "o": Out(stream.Signature(block.out_type.shape()))})

    def _beat_best(self, group, retime):
        """(value, index) of the beat's largest lane; a right candidate wins only if strictly
        larger. Registered at the block's tree cuts."""
        index_shape = self.o.payload.shape()
        cands = [(self.i.payload[k], (group * self.lanes + k)[:index_shape.width]) for k in range(self.lanes)]

        def better(a, b):
            right = ~at_least(a[0], b[0])  # b > a, compared as a carry out (no sign logic)
            return Mux(right, b[0], a[0]), Mux(right, b[1], a[1])
        return pairwise_tree(cands, better, self.block.tree_cuts, retime, "best")

    def elaborate(self, platform):
        m = Module()
        advance = advance_signal(m, self.o, self.registered_consumer)
        m.d.comb += self.i.ready.eq(advance)
        group = Signal(range(max(self.groups, 2)))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += group.eq(Mux(group == self.groups - 1, 0, group + 1))
        retime, ranks = Retime(m, advance), len(self.block.tree_cuts)
        value, index = self._beat_best(group, retime)
        valid, beat_group = retime.valid(self.i.valid, ranks, "valid"), retime.delay(group, ranks, "group")
        best_value = Signal.like(self.i.payload[0])
        best_index = Signal(self.o.payload.shape())
        take = (beat_group == 0) | ~at_least(best_value, value)
        new_value, new_index = Mux(take, value, best_value), Mux(take, index, best_index)
        last = beat_group == self.groups - 1
        with m.If(advance & valid):
            m.d.sync += [best_value.eq(new_value), best_index.eq(new_index)]
            with m.If(last):
                m.d.sync += self.o.payload.eq(new_index)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(valid & last)
        return m


class Fork(FromBlock, wiring.Component):
    """One stream to ``n`` (a ``ForkBlock``, whose docstring draws it): each output takes the beat
    on its own; a flag per output remembers it did, until the input lets go of the beat."""

    def __init__(self, block):
        self.block, self.n = block, block.out_ports
        payload = lane_array(block.in_type, block.in_lanes)
        super().__init__({"i": In(stream.Signature(payload)),
                          **{f"o{k}": Out(stream.Signature(payload)) for k in range(self.n)}})

    def outputs(self) -> list:
        return [getattr(self, f"o{k}") for k in range(self.n)]

    def elaborate(self, platform):
        m = Module()
        outs = self.outputs()
        taken = [Signal(name=f"taken{k}") for k in range(self.n)]
        m.d.comb += self.i.ready.eq(Cat(*[t | o.ready for t, o in zip(taken, outs)]).all())
        for t, o in zip(taken, outs):
            m.d.comb += [o.valid.eq(self.i.valid & ~t), o.payload.eq(self.i.payload)]
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += t.eq(0)
            with m.Elif(o.valid & o.ready):
                m.d.sync += t.eq(1)
        return m
