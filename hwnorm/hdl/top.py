"""``NetworkTop``: the streaming dataflow top of a :class:`hwnorm.dataflow.NetworkBlock` — one
component per stage of the plan (layers, lane converters, FIFOs, forks, argmax), joined by
streams as the plan's stage sources say (a chain: each stage reads the one before).
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
        # per stage, per input stream: (producer stage, its output port) — a chain's stages read
        # the one before
        self.sources = [stage.sources or ((k - 1 if k else None, 0),) for k, stage in enumerate(block.stages)]
        for (_, consumer), sources in zip(self.stages, self.sources):
            for src, port in sources:
                producer = None if src is None else self.stages[src][1]
                if producer is not None and len(_outputs(producer)) == 1:
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
        for consumer, sources in zip(parts, self.sources):
            for stream_in, (src, port) in zip(_inputs(consumer), sources):
                _join(m, self.i if src is None else _outputs(parts[src])[port], stream_in)
        _join(m, parts[-1].o, self.o)
        return m


def _inputs(component) -> list:
    """A component's input streams: ``i``, or several (``inputs()``: an add's ``i0``, ``i1``)."""
    return component.inputs() if hasattr(component, "inputs") else [component.i]


def _outputs(component) -> list:
    """A component's output streams: ``o``, or several (``outputs()``: a fork's ``o0`` …)."""
    return component.outputs() if hasattr(component, "outputs") else [component.o]


def _join(m: Module, src, dst) -> None:
    """Connect two streams whose payloads have the same lane count (elements may differ in width:
    each lane is assigned, which sign- or zero-extends it like the value it carries)."""
    m.d.comb += [dst.valid.eq(src.valid), src.ready.eq(dst.ready)]
    s_shape = src.payload.shape()
    if isinstance(s_shape, data.ArrayLayout) and s_shape != dst.payload.shape():
        m.d.comb += [dst.payload[k].eq(src.payload[k]) for k in range(s_shape.length)]
    else:
        m.d.comb += dst.payload.eq(src.payload)

