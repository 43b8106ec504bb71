"""``NetworkTop``: the streaming dataflow top of a :class:`hwnorm.dataflow.NetworkBlock` — one
component per stage of the plan (layers, lane converters, FIFOs, argmax), joined by streams.
The plan, its folding and its composed cycle model are described in :mod:`hwnorm.dataflow`.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwnorm.hdl.common import FromBlock

__all__ = ["NetworkTop"]


class NetworkTop(FromBlock, wiring.Component):
    """The whole network as one stream component."""

    def __init__(self, block):
        self.block, self.net, self.output, self.folding = block, block.net, block.output, block.folding
        self.stages = [(stage.name, stage.block.component()) for stage in block.stages]
        for (_, producer), (_, consumer) in zip(self.stages, self.stages[1:]):
            producer.registered_consumer = getattr(consumer, "ready_from_register", False)
        first, last = self.stages[0][1], self.stages[-1][1]
        super().__init__({"i": In(stream.Signature(first.i.payload.shape())),
                          "o": Out(stream.Signature(last.o.payload.shape()))})

    def components(self) -> list:
        return [component for _, component in self.stages]

    def elaborate(self, platform):
        m = Module()
        for name, component in self.stages:
            m.submodules[name] = component
        parts = self.components()
        _join(m, self.i, parts[0].i)
        for a, b in zip(parts, parts[1:]):
            _join(m, a.o, b.i)
        _join(m, parts[-1].o, self.o)
        return m


def _join(m: Module, src, dst) -> None:
    """Connect two streams whose payloads have the same lane count (elements may differ in width:
    each lane is assigned, which sign- or zero-extends it like the value it carries)."""
    m.d.comb += [dst.valid.eq(src.valid), src.ready.eq(dst.ready)]
    s_shape = src.payload.shape()
    if isinstance(s_shape, data.ArrayLayout) and s_shape != dst.payload.shape():
        m.d.comb += [dst.payload[k].eq(src.payload[k]) for k in range(s_shape.length)]
    else:
        m.d.comb += dst.payload.eq(src.payload)

