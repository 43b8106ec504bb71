"""``AddUnit`` and ``ConcatUnit``: the Amaranth components of the joins — the ``add`` layer kind (a
residual join) and the ``concat`` kind — built from their blocks (:class:`hwnorm.layers.add.AddBlock`,
:class:`hwnorm.layers.concat.ConcatBlock`, which own the cycle models)::

    i0 ─ q₀[PE] ─┐  taken together       stage 1                    output register
                 ├─ (both valid) ─► [q₀ | q₁] ─► m₀·(q₀ − z₀) + m₁·(q₁ − z₁) ─► y[PE]
    i1 ─ q₁[PE] ─┘

The multipliers are constants (a few shifted adds each). Full valid/ready back-pressure
(stall-all, :mod:`hwnorm.hdl.common`); both inputs are taken on the same clock, as FINN's
AddStreams does, so each input waits for the other.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwnorm.hdl.common import FromBlock, advance_signal, lane_array, wrapped_increment

__all__ = ["AddUnit", "ConcatUnit"]


class AddUnit(FromBlock, wiring.Component):
    """The sum of two code streams of an ``AddBlock`` (module docstring)."""

    def __init__(self, block):
        self.block = block
        lanes = block.in_lanes
        super().__init__({"i0": In(stream.Signature(lane_array(block.port_types[0], lanes))),
                          "i1": In(stream.Signature(lane_array(block.port_types[1], lanes))),
                          "o": Out(stream.Signature(lane_array(block.out_type, block.out_lanes)))})

    def inputs(self) -> list:
        return [self.i0, self.i1]

    def elaborate(self, platform):
        m, layer = Module(), self.block.layer
        advance = advance_signal(m, self.o, self.registered_consumer)
        fire = Signal()
        m.d.comb += [fire.eq(advance & self.i0.valid & self.i1.valid), self.i0.ready.eq(fire),
                     self.i1.ready.eq(fire)]
        x0 = Signal(self.i0.payload.shape(), reset_less=True)
        x1 = Signal(self.i1.payload.shape(), reset_less=True)
        v1 = Signal()
        with m.If(advance):
            m.d.sync += [x0.eq(self.i0.payload), x1.eq(self.i1.payload), v1.eq(fire)]
        (m0, m1), (z0, z1) = layer.multipliers, layer.zeros
        result = Signal(self.o.payload.shape())
        for p in range(self.block.in_lanes):
            m.d.comb += result[p].eq(m0 * (x0[p] - z0) + m1 * (x1[p] - z1))
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(v1), self.o.payload.eq(result)]
        return m


class ConcatUnit(FromBlock, wiring.Component):
    """Channels side by side (a ``ConcatBlock``): per pixel, ``c_k / PE`` beats from input ``k``,
    in input order, each into the output register (stall-all)."""

    def __init__(self, block):
        self.block = block
        lanes, self.n = block.in_lanes, block.in_ports
        super().__init__({**{f"i{k}": In(stream.Signature(lane_array(t, lanes))) for k, t in enumerate(block.port_types)},
                          "o": Out(stream.Signature(lane_array(block.out_type, block.out_lanes)))})

    def inputs(self) -> list:
        return [getattr(self, f"i{k}") for k in range(self.n)]

    def elaborate(self, platform):
        m, parts = Module(), self.block.part_beats
        advance = advance_signal(m, self.o, self.registered_consumer)
        part = Signal(range(max(self.n, 2)))
        beat = Signal(range(max(max(parts), 2)))
        fire, last = Signal(), Signal()
        ins = self.inputs()
        m.d.comb += fire.eq(advance & Cat(*[i.valid for i in ins]).bit_select(part, 1))
        for k, i in enumerate(ins):
            mine = part == k
            m.d.comb += i.ready.eq(advance & mine)
            with m.If(mine):
                m.d.comb += last.eq(beat == parts[k] - 1)
                with m.If(advance):
                    m.d.sync += [self.o.payload[p].eq(i.payload[p]) for p in range(self.block.in_lanes)]
        with m.If(fire):
            m.d.sync += beat.eq(Mux(last, 0, beat + 1))
            with m.If(last):
                m.d.sync += part.eq(wrapped_increment(part, self.n))
        with m.If(advance):
            m.d.sync += self.o.valid.eq(fire)
        return m
