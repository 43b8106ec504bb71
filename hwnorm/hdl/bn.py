"""``BNRequant``: the Amaranth component of the ``qbn`` layer kind, built from its block
(:mod:`hwnorm.layers.qbn`, where the stages, widths and cycle model are described)::

            ┌── ROM[group] ──┐ (mult, bias[, shift] per lane; the group counter addresses it)
    x ──►  reg  ──►  × mult + bias  ──►  reg  ──►  >> shift, round, saturate/wrap  ──►  reg ──► q
         stage 0           stage 1                         stage 2

    i.payload  x[lanes]   lane l at bits [l·W_in, (l+1)·W_in)     W_in  = in_fmt.width
    o.payload  q[lanes]   lane l at bits [l·W_out, (l+1)·W_out)   W_out = out_fmt.width
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwnorm.fixed import Overflow
from hwnorm.hdl.common import FromBlock, advance_signal, group_counter, fit_range, fit_wrap, lanes_of, rom, round_shift

__all__ = ["BNRequant"]


class BNRequant(FromBlock, wiring.Component):
    """Pipelined per-channel requantizer (multiply, add bias, rounding shift, saturate)."""

    def __init__(self, block):
        self.block, self.spec, self.lanes, self.groups = block, block.spec, block.pe, block.groups
        super().__init__({"i": In(stream.Signature(lanes_of(block.in_type, block.pe))),
                          "o": Out(stream.Signature(lanes_of(block.out_type, block.pe)))})

    def _constants(self):
        """ROM layout (one struct per lane) and rows (one per channel group)."""
        fields = {name: t.shape() for name, t in self.block.constant_types().items()}
        return data.ArrayLayout(data.StructLayout(fields), self.lanes), self.block.constant_rows()

    def elaborate(self, platform):
        spec, m = self.spec, Module()
        advance = advance_signal(m, self.o)
        m.d.comb += self.i.ready.eq(advance)

        group = group_counter(m, self.i, self.groups)
        layout, rows = self._constants()
        consts = rom(m, "constants", layout, rows, advance, group)

        x1 = Signal(self.i.payload.shape())
        v1, v2 = Signal(), Signal()
        acc = [Signal(spec.acc_type.shape(), name=f"acc{lane}") for lane in range(self.lanes)]
        shift2 = [Signal(self.block.shift_type.shape(), name=f"shift{lane}") for lane in range(self.lanes)]
        result = Signal(self.o.payload.shape())
        with m.If(advance):
            m.d.sync += [x1.eq(self.i.payload), v1.eq(self.i.valid), v2.eq(v1), self.o.valid.eq(v2),
                         self.o.payload.eq(result)]
            for lane in range(self.lanes):
                c = consts[lane]
                m.d.sync += acc[lane].eq(x1[lane] * c.mult + c.bias)
                if spec.shared_shift is None:
                    m.d.sync += shift2[lane].eq(c.shift)
        for lane in range(self.lanes):
            shift = spec.shared_shift if spec.shared_shift is not None else shift2[lane]
            r = round_shift(acc[lane], shift, spec.rounding)
            if spec.overflow == Overflow.SATURATE:
                q = fit_range(r, spec.out_lo, spec.out_hi)
            else:
                q = fit_wrap(r, self.block.out_type.shape())
            m.d.comb += result[lane].eq(q)
        return m
