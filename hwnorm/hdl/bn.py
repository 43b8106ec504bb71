"""``BNRequant``: the Amaranth component of the ``qbn`` layer kind, built from its block
(:mod:`hwnorm.layers.qbn`, where the stages, widths and cycle model are described)::

            ┌── ROM[group] ──┐ (mult, bias[, shift] per lane; the group counter addresses it)
    x ──►  reg  ──►  × mult + bias  ──►  reg  ──►  >> shift, round, saturate/wrap  ──►  reg ──► q
         stage 0           stage 1                         stage 2

    i.payload  x[lanes]   lane l at bits [l·W_in, (l+1)·W_in)     W_in  = in_fmt.width
    o.payload  q[lanes]   lane l at bits [l·W_out, (l+1)·W_out)   W_out = out_fmt.width

With a target clock the block adds registers (``QBNBlock.depth``): after the constants ROM, after
the product (or inside a partial-product tree, when a hard multiplier alone is too slow), after
the rounding and after the saturation compares.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwnorm.fixed import Overflow
from hwnorm.hdl.common import (FromBlock, Retime, advance_signal, at_least, fit_wrap, group_counter, lane_array, rom,
                                round_shift, tree_sum)

__all__ = ["BNRequant"]


class BNRequant(FromBlock, wiring.Component):
    """Pipelined per-channel requantizer (multiply, add bias, rounding shift, saturate)."""

    def __init__(self, block):
        self.block, self.spec, self.lanes, self.groups = block, block.spec, block.pe, block.groups
        super().__init__({"i": In(stream.Signature(lane_array(block.in_type, block.pe))),
                          "o": Out(stream.Signature(lane_array(block.out_type, block.pe)))})

    def _constants(self):
        """ROM layout (one struct per lane) and rows (one per channel group)."""
        fields = {name: t.shape() for name, t in self.block.constant_types().items()}
        return data.ArrayLayout(data.StructLayout(fields), self.lanes), self.block.constant_rows()

    def _product(self, retime, x, mult, name: str):
        """``x · mult`` registered. A hard multiplier's product, or (``lut_multiply``) an adder tree
        of partial products, one per bit of ``x`` (two's complement: the sign bit's is
        subtracted), registered at the block's ``product_cuts`` and at its root."""
        if not self.block.lut_multiply:
            return retime.register(x * mult, name)
        shape = (x * mult).shape()
        terms = []
        for i in range(len(x)):
            weight = mult << i
            if x.shape().signed and i == len(x) - 1:
                weight = -weight
            terms.append(Mux(x[i], weight, 0))
        total = tree_sum(terms, self.block.product_cuts, retime, name)[:shape.width]  # the exact product's bits
        return retime.register(total.as_signed() if shape.signed else total, name)

    def elaborate(self, platform):
        spec, m = self.spec, Module()
        advance = advance_signal(m, self.o, self.registered_consumer)
        m.d.comb += self.i.ready.eq(advance)

        group = group_counter(m, self.i, self.groups)
        layout, rows = self._constants()
        consts = rom(m, "constants", layout, rows, advance, group)

        block, retime = self.block, Retime(m, advance)
        x1 = Signal(self.i.payload.shape(), reset_less=True)  # data: no reset (see common.Retime)
        v1 = Signal()
        acc = [Signal(spec.acc_type.shape(), name=f"acc{lane}", reset_less=True) for lane in range(self.lanes)]
        shift2 = [Signal(self.block.shift_type.shape(), name=f"shift{lane}", reset_less=True)
                  for lane in range(self.lanes)]
        result = Signal(self.o.payload.shape())
        with m.If(advance):
            m.d.sync += [x1.eq(self.i.payload), v1.eq(self.i.valid)]
        ranks = block.constant_ranks  # the ROM's read data registered, the input with it
        consts, x1, v1 = retime.delay(consts, ranks, "consts"), retime.delay(x1, ranks, "x1"), retime.valid(v1, ranks, "v1")
        for lane in range(self.lanes):
            c = consts[lane]
            if block.product_ranks:  # the product in its own register(s), the bias added after
                product = self._product(retime, x1[lane], c.mult, f"product{lane}")
                ranks = block.product_ranks
                bias = retime.delay(c.bias, ranks, f"bias{lane}")
                shift = retime.delay(c.shift, ranks, f"shift{lane}") if spec.shared_shift is None else None
                total = product + bias
            else:
                total, shift = x1[lane] * c.mult + c.bias, c.shift if spec.shared_shift is None else None
            with m.If(advance):
                m.d.sync += acc[lane].eq(total)
                if spec.shared_shift is None:
                    m.d.sync += shift2[lane].eq(shift)
        v2 = retime.valid(v1, block.product_ranks + 1, "v2")
        cuts = block.requant_cuts
        for lane in range(self.lanes):
            shift = spec.shared_shift if spec.shared_shift is not None else shift2[lane]
            r = round_shift(acc[lane], shift, spec.rounding)
            if 0 in cuts:  # the rounded value registered before the saturation compares
                r = retime.register(r, f"rounded{lane}")
            if spec.overflow == Overflow.SATURATE:
                value = r.as_signed()  # compared as at_least does: the carry out, no sign logic after it
                below, above = ~at_least(value, Const(spec.out_lo)), ~at_least(Const(spec.out_hi), value)
                if 1 in cuts:  # the compares registered beside the value, the clamp a stage later
                    r, below, above = (retime.register(v, f"{n}{lane}") for v, n in
                                       ((r, "inrange"), (below, "below"), (above, "above")))
                q = Mux(below, spec.out_lo, Mux(above, spec.out_hi, r.as_signed()))
            else:
                q = fit_wrap(r, self.block.out_type.shape())
            m.d.comb += result[lane].eq(q)
        v2 = retime.valid(v2, len(cuts), "v3")
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(v2), self.o.payload.eq(result)]
        return m
