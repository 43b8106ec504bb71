"""``DepthwiseUnit``: the Amaranth component of the ``depthwise`` layer kind (FINN's VVAU), built
from its block (:class:`hwnorm.layers.depthwise.DepthwiseBlock`, which owns the cycle model)::

    window beat k (PE channels of one tap, or SIMD taps of all C)
      │        weights ROM [k] : L = PE·SIMD weights
      ▼              ▼
    stage 0: issue ─► stage 1: x·w per lane, Σ over SIMD ─► + partial of the group (or 0 at tap 0)
                                                              │
                       delay line: C/PE entries × PE partials ◄┘ (pushed every beat, popped C/PE later)
                                                              │ last tap of the group
                                                              ▼
                      stage 2: thresholds ROM [group] : count of acc ≥ Tᵢ (or the raw sum) ──► y

The window streams ``(ky, kx, c)`` order, so the beats of one channel group come ``C/PE`` beats
apart: a delay line of that many entries hands each group its partial sum back exactly when its
next tap arrives (one push and one pop per beat), and no reordering buffer is needed.
Full valid/ready back-pressure (stall-all, :mod:`hwnorm.hdl.common`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring

from hwnorm.hdl.common import FromBlock, Retime, advance_signal, lane_array, rom, tree_sum, wrapped_increment
from hwnorm.hdl.common import stream_ports
from hwnorm.hdl.mvu import _product_table, _weight, count_at_least

__all__ = ["DepthwiseUnit"]


class DepthwiseUnit(FromBlock, wiring.Component):
    """Folded depthwise dot products and thresholds of a ``DepthwiseBlock`` (module docstring)."""

    def __init__(self, block):
        self.block, self.layer = block, block.layer
        super().__init__(stream_ports(block))

    def elaborate(self, platform):
        block, layer, m = self.block, self.layer, Module()
        pe, simd, groups, beats = block.pe, block.simd, block.groups, block.in_beats
        advance = advance_signal(m, self.o, self.registered_consumer)
        retime = Retime(m, advance)

        # ---- stage 0: issue (the beat's index in its window addresses the weights)
        k = Signal(range(max(beats, 2)))
        fire = Signal()
        m.d.comb += [self.i.ready.eq(advance), fire.eq(advance & self.i.valid)]
        with m.If(fire):
            m.d.sync += k.eq(wrapped_increment(k, beats))
        weights = rom(m, "weights", unsigned(pe * simd * layer.weight_type.width), block.weight_rows(), advance, k)
        group = Signal(range(max(groups, 2)))  # k mod C/PE, counted beside k
        with m.If(fire):
            m.d.sync += group.eq(wrapped_increment(group, groups))
        x1 = Signal(self.i.payload.shape(), reset_less=True)
        v1, first1, last1, group1 = Signal(), Signal(), Signal(), Signal.like(group)
        with m.If(advance):
            m.d.sync += [v1.eq(fire), x1.eq(self.i.payload), first1.eq(k < groups), last1.eq(k >= beats - groups),
                         group1.eq(group)]

        # ---- stage 1: products, summed over SIMD taps per channel lane, plus the group's partial
        acc_shape = block.acc_type.shape()
        products = []
        for lane in range(pe * simd):
            x, wt = x1[lane], _weight(weights, lane, layer.weight_type)
            products.append(_product_table(x, wt) if block.table_products else x * wt)
        line = [Signal(data.ArrayLayout(acc_shape, pe), name=f"partial{e}", reset_less=True) for e in range(groups)]
        total = Signal(data.ArrayLayout(acc_shape, pe))
        for p in range(pe):
            part = tree_sum([products[s * pe + p] for s in range(simd)])
            m.d.comb += total[p].eq(part + Mux(first1, 0, line[0][p]))
        with m.If(advance & v1):  # push the new partial, pop the group's old one
            m.d.sync += [line[e].eq(line[e + 1]) for e in range(groups - 1)] + [line[-1].eq(total)]
        acc2 = Signal.like(total, reset_less=True)
        v2 = Signal()
        with m.If(advance):
            m.d.sync += [v2.eq(v1 & last1), acc2.eq(total)]

        # ---- stage 2: thresholds (or the raw sum) into the output register
        result = Signal(self.o.payload.shape())
        t = layer.thresholds
        if t is None:
            m.d.comb += [result[p].eq(acc2[p]) for p in range(pe)]
        else:
            layout = data.ArrayLayout(lane_array(t.threshold_type, t.n_thresholds), pe)
            thr = rom(m, "thresholds", layout, block.threshold_rows(), advance, group1)  # read beside acc2
            ranks = block.threshold_ranks  # the ROM's read data registered, the sums with it
            thr, v2 = retime.delay(thr, ranks, "thresholds"), retime.valid(v2, ranks, "v2")
            acc2 = retime.delay(acc2, ranks, "acc2")
            for p in range(pe):
                m.d.comb += result[p].eq(count_at_least(acc2[p], [thr[p][i] for i in range(t.n_thresholds)],
                                                        t.out_base, block.count_cuts, retime, f"count{p}"))
            v2 = retime.valid(v2, len(block.count_cuts), "v3")
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(v2), self.o.payload.eq(result)]
        return m
