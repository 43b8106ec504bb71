"""``MVU`` and ``Thresholding``: the Amaranth components of the ``mvu`` and ``thresholding``
layer kinds, built from their blocks (:mod:`hwnorm.layers.mvu`, :mod:`hwnorm.layers.thresholding`,
where the payload layouts, the stages and the cycle models are described)::

                 ┌────────── weights ROM [nf·SF + sf] : PE × SIMD bits ──────────┐
    x ──► input buffer (SF beats, written during nf = 0, replayed for nf > 0) ──► PE lanes:
          XNOR + popcount tree (binary) or ±x adder tree (integer × binary) ──► accumulate over sf
          ──► (last sf) acc = 2·popcount − K  ──► thresholds ROM [nf] : count of acc ≥ Tᵢ ──► y
       stage 0: issue            stage 1: multiply-accumulate            stage 2: threshold

Accumulators, thresholds and outputs take their widths from the spec's types. Weights and
thresholds live in ROMs initialized from the spec. Full valid/ready back-pressure (stall-all).
With a target clock the block adds registers (``MVUBlock.depth``): after the memories' read data,
inside the tree, between accumulate and ``2·popcount − K``, and in the threshold stage.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from hwnorm.hdl.common import (FromBlock, Retime, at_least, advance_signal, banked_rom, group_counter, lane_array, rom, stream_ports, tree_sum,
                               wrapped_increment)
from hwnorm.hdl.stt import decode_cells

__all__ = ["MVU", "Thresholding"]


def count_at_least(value, thresholds: list, out_base: int, cuts=(), retime=None, name: str = "count"):
    """``out_base + #{i : value ≥ thresholds[i]}`` — the spec's compare rule, one comparator each.

    ``cuts`` (:func:`hwnorm.layers.threshold_stage.count_cuts`) registers the compare bits (cut 0) and
    the levels of the count tree after them (cut ``l + 1`` after level ``l``)."""
    bits = [at_least(value, t) for t in thresholds]
    if 0 in cuts:
        bits = [retime.register(b, f"{name}_ge{i}") for i, b in enumerate(bits)]
    return out_base + tree_sum(bits, tuple(c - 1 for c in cuts if c), retime, name)


class MVU(FromBlock, wiring.Component):
    """FINN-style folded matrix-vector(-threshold) unit of an ``MVUBlock`` (module docstring)."""

    def __init__(self, block):
        self.block, self.layer = block, block.layer
        self.pe, self.simd, self.sf, self.nf = block.pe, block.simd, block.sf, block.nf
        super().__init__(stream_ports(block))

    def _term(self, x_in, weights, index: int, s: int):
        """One lane of an integer-weight MVU: ``±w`` for a bipolar input bit, else ``x·w`` — a
        lookup table over both operands when they are narrow (the block's ``table_products``),
        else a multiplier."""
        layer = self.layer
        w = _weight(weights, index, layer.weight_type)
        if layer.binary:
            return _plus_or_minus(x_in[s], w)
        x = x_in[s]
        if self.block.table_products:
            return _product_table(x, w)
        return x * w

    def _sliced_weights(self, m: Module, advance, fire):
        """The weight ROM as slices of its row, each read at an address counter of its own
        (``MVUBlock.weight_address_copies``): the same count as ``waddr``, one copy per slice."""
        block, rows_n = self.block, self.sf * self.nf
        width = self.pe * self.simd * self.layer.weight_bits
        step = -(-width // block.weight_address_copies)
        rows, parts = block.weight_rows(), []
        for k, lo in enumerate(range(0, width, step)):
            bits = min(step, width - lo)
            addr = Signal(range(rows_n), name=f"waddr{k}")
            with m.If(fire):
                m.d.sync += addr.eq(wrapped_increment(addr, rows_n))
            parts.append(rom(m, f"weights{k}", unsigned(bits), [(r >> lo) & ((1 << bits) - 1) for r in rows],
                             advance, addr))
        return Cat(*parts)

    def elaborate(self, platform):
        layer, m = self.layer, Module()
        pe, simd, sf_n, nf_n = self.pe, self.simd, self.sf, self.nf
        advance = advance_signal(m, self.o, self.registered_consumer)

        # ---- stage 0: issue (fold counters, memory addresses, input buffer write)
        sf = Signal(range(max(sf_n, 2)))
        nf = Signal(range(max(nf_n, 2)))
        waddr = Signal(range(max(sf_n * nf_n, 2)))
        # first neuron fold (nf = 0): the vector comes from the stream. A flip-flop of its own, set
        # as nf steps, not a compare of nf: i.ready (advance and fresh, both flip-flops) is then one
        # LUT away from them — it enables the FIFO in front's output register, inside a block RAM
        # across the chip (the whole CIFAR top's 128 MHz path went through two LUTs there)
        fresh = Signal(init=1)
        fire = Signal()
        m.d.comb += [self.i.ready.eq(advance & fresh), fire.eq(advance & (self.i.valid | ~fresh))]
        with m.If(fire):
            m.d.sync += [sf.eq(wrapped_increment(sf, sf_n)), waddr.eq(wrapped_increment(waddr, sf_n * nf_n))]
            with m.If(sf == sf_n - 1):
                m.d.sync += [nf.eq(wrapped_increment(nf, nf_n)), fresh.eq(nf == nf_n - 1)]
        stored, block, retime = self.block.stored, self.block, Retime(m, advance)
        banked = block.weight_banks > 1
        if banked:  # its banks' registers are the first operand rank
            weights = banked_rom(m, "weights", unsigned(pe * simd * layer.weight_bits), block.weight_rows(),
                                 block.weight_bank_depth, advance, waddr, block.weight_mux_fan_in,
                                 block.weight_mux_cuts, block.weight_bank_far_ranks)
        elif stored is None and block.weight_address_copies > 1:
            weights = self._sliced_weights(m, advance, fire)
        elif stored is None:
            weights = rom(m, "weights", unsigned(pe * simd * layer.weight_bits), block.weight_rows(), advance, waddr)
        else:  # an STT-RAM image: the cells as stored (faults and all), decoded on read
            cells = rom(m, "weight_cells", unsigned(2 * stored.cells.shape[1]), stored.cell_rows, advance, waddr)
            cells = retime.delay(cells, block.cell_ranks, "weight_cells")
            weights = decode_cells(m, cells, stored.codec, stored.row_bits)
        x1 = Signal(self.i.payload.shape(), reset_less=True)  # data: no reset (see common.Retime)
        fresh1 = Signal()
        if nf_n > 1 and sf_n > 1:
            # the replay is read only while no beat is written (NF > 0): a read and a write of one
            # address in one clock never matter, and Yosys needs no collision bypass after the RAM
            buf = Memory(shape=self.i.payload.shape(), depth=sf_n, init=[], attrs={"no_rw_check": 1})
            m.submodules.input_buffer = buf
            wp, rp = buf.write_port(), buf.read_port(domain="sync")
            m.d.comb += [rp.addr.eq(sf), rp.en.eq(advance)]
            if block.input_written_late:  # from registers (x1 holds the beat); the beat is
                # replayed SF ≥ 2 clocks later at the earliest
                write1, addr1 = Signal(), Signal.like(sf)
                m.d.sync += [write1.eq(fire & fresh), addr1.eq(sf)]
                m.d.comb += [wp.addr.eq(addr1), wp.data.eq(x1), wp.en.eq(write1)]
            else:
                m.d.comb += [wp.addr.eq(sf), wp.data.eq(self.i.payload), wp.en.eq(fire & fresh)]
            replay = rp.data.as_value()
        elif nf_n > 1:  # one beat per vector: a register is the whole buffer
            held = Signal(self.i.payload.shape(), reset_less=True)
            with m.If(fire & fresh):
                m.d.sync += held.eq(self.i.payload)
            replay = held.as_value()
        v1, first1, last1 = Signal(), Signal(), Signal()
        nf1 = Signal.like(nf)
        with m.If(advance):
            m.d.sync += [v1.eq(fire), x1.eq(self.i.payload), fresh1.eq(fresh), first1.eq(sf == 0),
                         last1.eq(sf == sf_n - 1), nf1.eq(nf)]

        # ---- stage 1: multiply-accumulate per PE lane (its tree registered at the block's cuts)
        cuts = block.tree_cuts
        ranks = block.operand_ranks  # memory read data (and a stored row's decoder): registers before the multiply
        if nf_n > 1:
            # the input buffer's RAM data registered before the fresh / replay mux (its block
            # RAM's output register), the first operand rank of both inputs to the mux
            early = int(block.replay_registered)
            x_in = Signal(self.i.payload.shape())
            m.d.comb += x_in.eq(Mux(retime.delay(fresh1, early, "fresh1"), retime.delay(x1.as_value(), early, "x1"),
                                    retime.delay(replay, early, "replay")))
            x_in = retime.delay(x_in, ranks - early, "x_in")
        else:
            x_in = retime.delay(x1, ranks, "x_in")
        weights = retime.delay(weights, ranks - block.cell_ranks - banked * (1 + block.weight_bank_far_ranks
                                                                             + len(block.weight_mux_cuts)), "weights")
        stages1 = len(cuts) + ranks + block.term_ranks  # registers between issue and the accumulator
        v1 = retime.valid(v1, stages1, "v1")
        first1, last1, nf1 = (retime.delay(s, stages1, n) for s, n in
                              ((first1, "first1"), (last1, "last1"), (nf1, "nf1")))
        xnor = block.xnor
        k = layer.in_features
        raw_shape = block.raw_type.shape()
        v2 = Signal()
        acc2 = [Signal(layer.acc_type.shape(), name=f"acc{p}", reset_less=True) for p in range(pe)]
        for p in range(pe):
            if xnor:
                w = weights[p * simd:(p + 1) * simd]
                # a signal, not an expression: Amaranth re-emits an expression for every slice of
                # it (SIMD² nets per PE, minutes at SIMD = 784), a signal once
                bits = Signal(simd, name=f"xnor{p}")
                m.d.comb += bits.eq(~(x_in.as_value() ^ w))
                terms = [bits[s] for s in range(simd)]
            elif layer.bipolar_weights:
                w = weights[p * simd:(p + 1) * simd]
                terms = [_plus_or_minus(w[s], x_in[s]) for s in range(simd)]
            else:
                terms = [self._term(x_in, weights, p * simd + s, s) for s in range(simd)]
            if block.term_ranks:  # each lane's term registered before the tree (MVUBlock.term_ranks)
                terms = [retime.delay(t, block.term_ranks, f"term{p}_{s}") for s, t in enumerate(terms)]
            partial = tree_sum(terms, cuts, retime, f"tree{p}")
            raw = Signal(raw_shape, name=f"raw{p}", reset_less=True)
            total = Signal(raw_shape, name=f"total{p}")
            m.d.comb += total.eq(partial + Mux(first1, 0, raw))
            with m.If(advance & v1):
                m.d.sync += raw.eq(total)
            with m.If(advance):  # split_acc: 2·popcount − K a stage after the accumulate, from raw
                m.d.sync += acc2[p].eq(2 * (raw if block.split_acc else total) - k if xnor else total)
        with m.If(advance):
            m.d.sync += v2.eq(v1 & last1)
        v2, nf1 = retime.valid(v2, int(block.split_acc), "v2"), retime.delay(nf1, int(block.split_acc), "nf2")

        # ---- stage 2: thresholds (or the raw accumulator) into the output register
        result = Signal(self.o.payload.shape())
        t = layer.thresholds
        if t is None:
            for p in range(pe):
                m.d.comb += result[p].eq(_clipped(acc2[p], layer.acc_clip))
        else:
            layout = data.ArrayLayout(lane_array(t.threshold_type, t.n_thresholds), pe)
            thr = rom(m, "thresholds", layout, block.threshold_rows(), advance, nf1)
            ranks = block.threshold_ranks  # the ROM's read data registered, the accumulators with it
            thr, v2 = retime.delay(thr, ranks, "thresholds"), retime.valid(v2, ranks, "v2")
            acc2 = [retime.delay(a, ranks, f"acc{p}") for p, a in enumerate(acc2)]
            for p in range(pe):
                m.d.comb += result[p].eq(count_at_least(acc2[p], [thr[p][i] for i in range(t.n_thresholds)],
                                                        t.out_base, block.count_cuts, retime, f"count{p}"))
            v2 = retime.valid(v2, len(block.count_cuts), "v3")
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(v2), self.o.payload.eq(result)]
        return m


def _clipped(acc, clip):
    """``acc`` saturated to ``clip = (lo, hi)`` (a faulty weight memory's guard), or as it is."""
    if clip is None:
        return acc
    lo, hi = clip
    return Mux(at_least(acc, hi + 1), hi, Mux(at_least(acc, lo), acc, lo))


def _weight(weights, index: int, weight_type):
    """Integer weight ``index`` of a ROM row (two's complement fields of the type's width)."""
    w = weights[index * weight_type.width:(index + 1) * weight_type.width]
    return w.as_signed() if weight_type.signed else w


def _product_table(a, b):
    """``a·b`` read from a constant table indexed by both operands' bits (word ``i`` holds the
    product of the codes in ``i``'s low and high bits): each product bit is one function of the
    operands' few bits, which synthesis maps to a LUT or two — where ``*`` would take a DSP."""
    shape = (a * b).shape()  # the multiplier's own result shape: the adder tree is unchanged
    a_shape, b_shape = a.shape(), b.shape()
    a_bits, b_bits = a_shape.width, b_shape.width

    def value(code, bits, signed):
        return code - (1 << bits) if signed and code >> (bits - 1) else code

    words = [value(i & ((1 << a_bits) - 1), a_bits, a_shape.signed) * value(i >> a_bits, b_bits, b_shape.signed)
             for i in range(1 << (a_bits + b_bits))]
    table = sum((p & ((1 << shape.width) - 1)) << (k * shape.width) for k, p in enumerate(words))
    word = Const(table, shape.width << (a_bits + b_bits)).word_select(Cat(a.as_unsigned(), b.as_unsigned()),
                                                                      shape.width)
    return word.as_signed() if shape.signed else word


def _plus_or_minus(bit, x):
    """``x`` for weight bit 1 (+1), ``−x`` for weight bit 0 (−1)."""
    return Mux(bit, x, -x)


class Thresholding(FromBlock, wiring.Component):
    """Elementwise multi-threshold of a ``ThresholdingBlock``, ``pe`` channels per beat."""

    def __init__(self, block):
        self.block, self.layer, self.pe, self.groups = block, block.layer, block.pe, block.groups
        super().__init__(stream_ports(block))

    def elaborate(self, platform):
        t, pe, m = self.layer.thresholds, self.pe, Module()
        advance = advance_signal(m, self.o, self.registered_consumer)
        m.d.comb += self.i.ready.eq(advance)
        group = group_counter(m, self.i, self.groups)
        if self.block.table:
            return self._tables(m, advance, group)
        layout = data.ArrayLayout(lane_array(t.threshold_type, t.n_thresholds), pe)
        thr = rom(m, "thresholds", layout, self.block.threshold_rows(), advance, group)
        x1, v1 = Signal(self.i.payload.shape(), reset_less=True), Signal()
        retime, cuts = Retime(m, advance), self.block.count_cuts
        ranks = self.block.threshold_ranks  # the ROM's read data registered, the input with it
        thr, x, v = retime.delay(thr, ranks, "thresholds"), retime.delay(x1, ranks, "x1"), retime.valid(v1, ranks, "v1")
        result = Signal(self.o.payload.shape())
        for p in range(pe):
            m.d.comb += result[p].eq(count_at_least(x[p], [thr[p][i] for i in range(t.n_thresholds)], t.out_base,
                                                    cuts, retime, f"count{p}"))
        with m.If(advance):
            m.d.sync += [x1.eq(self.i.payload), v1.eq(self.i.valid)]
        v2 = retime.valid(v, len(cuts), "v2")
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(v2), self.o.payload.eq(result)]
        return m

    def _tables(self, m: Module, advance, group):
        """The table form: each lane's ROM addressed by (beat, x) as the beat is taken; its read
        data (a register in the ROM) goes to the output register, through the block's
        ``table_ranks`` first."""
        retime, ranks = Retime(m, advance), self.block.table_ranks
        width = self.block.out_type.width
        result = Signal(self.o.payload.shape())
        for p, rows in enumerate(self.block.level_tables()):
            address = Cat(Value.cast(self.i.payload[p]), group) if self.groups > 1 else Value.cast(self.i.payload[p])
            level = rom(m, f"levels{p}", unsigned(width), rows, advance, address)
            m.d.comb += result[p].eq(retime.delay(level, ranks, f"levels{p}"))
        v1 = Signal()
        with m.If(advance):
            m.d.sync += v1.eq(self.i.valid)
        v = retime.valid(v1, ranks, "v1")
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(v), self.o.payload.eq(result)]
        return m
