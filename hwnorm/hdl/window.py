"""``SlidingWindowUnit``, ``MaxPoolUnit`` and ``AvgPoolUnit``: the Amaranth components of the
``window``, ``maxpool`` and ``avgpool`` layer kinds, one line buffer under all three (their cycle model is
:func:`hwnorm.layers.spatial.line_buffer_schedule`)::

    pixels ──► write: (row, column, channel fold) ──► RAM: R rows × W pixels × C/L beats of L lanes
    (C/L beats each, raster order)                        │ address = row mod R │ column │ fold
                                                          ▼
    read: a window's beats (ky, kx, fold) — or, pooled, (fold, ky, kx) ──► padding mux ──► y
          (waits until its beat is written; a padded beat reads nothing)   (pooled: running max / sum)
    stage 0: issue               stage 1: RAM data, pad, (max)            output register
                                 (pipelined for a clock: the RAM's data registered first, one stage more)

The writer and the reader run independently: a write waits only while its row's slot still
holds a row the current output row reads (``R`` = the power of two ≥ kh + sh rows), a read only
until its beat has been written. The reader's row numbers are relative to its image; when it
finishes one, the writer's row count drops by ``H``, so it may already be filling the next image.
The read side uses the stall-all idiom (``advance``); the write side only its own handshake.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwnorm.hdl.common import FromBlock, advance_signal, lane_array, wrapped_increment

__all__ = ["SlidingWindowUnit", "MaxPoolUnit", "AvgPoolUnit", "GlobalSumUnit"]


def _bits(n: int) -> int:
    """Address bits of an index over ``n`` values (0 for one value)."""
    return (n - 1).bit_length()


def _count(m: Module, counter, n: int, on) -> object:
    """Advance ``counter`` over 0 … n − 1 when ``on``; returns "it wraps now"."""
    with m.If(on):
        m.d.sync += counter.eq(wrapped_increment(counter, n))
    return counter == n - 1


class _LineBufferUnit(FromBlock, wiring.Component):
    taps_inner = False  # read order: (ky, kx, fold) for a window; (fold, ky, kx) for a pool

    def __init__(self, block):
        self.block = block
        payload = lane_array(block.in_type, block.in_lanes)
        out = lane_array(block.out_type, block.out_lanes)
        super().__init__({"i": In(stream.Signature(payload)), "o": Out(stream.Signature(out))})

    def pad_bits(self) -> int:
        """What a padded beat reads, every lane: the block's pad value."""
        width, lanes = self.block.in_type.width, self.block.in_lanes
        return sum((self.block.pad_value & ((1 << width) - 1)) << (k * width) for k in range(lanes))

    def finish(self, m, advance, v1, value1, first1, last1) -> None:
        """Stage 1 onwards: what leaves the unit (each beat read, or a window's maximum)."""
        raise NotImplementedError

    def elaborate(self, platform):
        m, block = Module(), self.block
        g = block.geometry
        h, w, cf_n = g.height, g.width, block.channel_folds
        kh, kw = g.kernel
        sh, sw = g.stride
        top, left = g.pads[0], g.pads[1]
        oh, ow, rows = g.out_height, g.out_width, block.rows
        cf_bits, col_bits, row_bits = _bits(cf_n), _bits(w), _bits(rows)
        advance = advance_signal(m, self.o, self.registered_consumer)

        # ---- writer: (row relative to the reader's image, column, fold) of the next input beat
        wrow = Signal(range(-sh - 1, h + rows + 1))
        wcol, wcf = Signal(range(max(w, 2))), Signal(range(max(cf_n, 2)))
        wphys = Signal(max(row_bits, 1))
        # ---- reader: the next beat to read
        oy, ox = Signal(range(max(oh, 2))), Signal(range(max(ow, 2)))
        ky, kx, cf = Signal(range(max(kh, 2))), Signal(range(max(kw, 2))), Signal(range(max(cf_n, 2)))
        iy_base = Signal(range(-top, h + sh + 1), init=-top)   # oy·sh − top
        ix_base = Signal(range(-left, w + sw + 1), init=-left)  # ox·sw − left
        base_phys = Signal(max(row_bits, 1))                   # buffer row of the image's row 0
        # the input pixel of the next read, iy_base + ky and ix_base + kx, kept in registers of
        # their own and moved with the counters below: a sum here would put a carry chain in
        # front of the written-yet compares, whose answer (``fire``) enables every reader register
        iy = Signal(range(-top, h + sh + kh + 1), init=-top)
        ix = Signal(range(-left, w + sw + kw + 1), init=-left)

        # the writer may fill rows below ``limit`` = max(iy_base, 0) + R: a register moved with
        # iy_base (a sum and a compare in front of i.ready would run on into the row count)
        limit = Signal(range(rows, h + sh + rows + 1), init=rows)
        # padding on the sides that have it (a compare that cannot fire would be a lint warning)
        edges = [(top, iy < 0), (left, ix < 0), ((oh - 1) * sh - top + kh > h, iy >= h),
                 ((ow - 1) * sw - left + kw > w, ix >= w)]
        padded = Signal()
        m.d.comb += padded.eq(Cat(*[test for present, test in edges if present]).any() if any(
            present for present, _ in edges) else 0)
        written = (wrow > iy) | ((wrow == iy) & ((wcol > ix) | ((wcol == ix) & (wcf > cf))))
        fire = Signal()
        m.d.comb += [fire.eq(advance & (padded | written)), self.i.ready.eq(wrow < limit)]

        mem = Memory(shape=self.i.payload.shape(), depth=rows << (col_bits + cf_bits), init=[])
        m.submodules.buffer = mem
        wp, rp = mem.write_port(), mem.read_port(domain="sync")
        write = self.i.valid & self.i.ready
        phys = (base_phys + iy.as_unsigned())[:row_bits] if row_bits else Cat()
        m.d.comb += [wp.en.eq(write), wp.data.eq(self.i.payload),
                     wp.addr.eq(Cat(wcf[:cf_bits], wcol[:col_bits], wphys[:row_bits])),
                     rp.en.eq(advance), rp.addr.eq(Cat(cf[:cf_bits], ix.as_unsigned()[:col_bits], phys))]

        # writer counters; the row count drops by H when the reader finishes an image
        next_row = Signal()
        fold_wrap = _count(m, wcf, cf_n, write)
        col_wrap = _count(m, wcol, w, write & fold_wrap)
        m.d.comb += next_row.eq(write & fold_wrap & col_wrap)  # continuous: see ``rebase`` below
        if row_bits:
            with m.If(next_row):
                m.d.sync += wphys.eq(wphys + 1)
        rebase = Signal()
        # both sums from the register, chosen after: the rebase (a reader event) only selects
        step = Mux(next_row, wrow + 1, wrow)
        m.d.sync += wrow.eq(Mux(rebase, Mux(next_row, wrow + 1 - h, wrow - h), step))

        # reader counters, in the read order
        last_tap = (ky == kh - 1) & (kx == kw - 1)
        x_moves = C(1, 1) if self.taps_inner else (cf == cf_n - 1)  # kx moves on this read
        x_wraps, y_wraps = kx == kw - 1, ky == kh - 1
        if self.taps_inner:
            with m.If(fire):
                with m.If(last_tap):
                    m.d.sync += [ky.eq(0), kx.eq(0)]
                with m.Elif(kx == kw - 1):
                    m.d.sync += [kx.eq(0), ky.eq(ky + 1)]
                with m.Else():
                    m.d.sync += kx.eq(kx + 1)
            pixel_done = _count(m, cf, cf_n, fire & last_tap) & last_tap
        else:
            fold_wrap = _count(m, cf, cf_n, fire)
            kx_wrap = _count(m, kx, kw, fire & fold_wrap)
            _count(m, ky, kh, fire & fold_wrap & kx_wrap)
            pixel_done = fold_wrap & last_tap
        # one continuous expression, not a flag set inside the branches below: a map of one output
        # pixel never changes ox and oy, and Icarus never evaluates a process none of whose inputs
        # change (the flag, and the writer's row count from it, would stay X)
        m.d.comb += rebase.eq(fire & pixel_done & (ox == ow - 1) & (oy == oh - 1))
        # the next read's pixel: each candidate a constant step from the register, chosen by the
        # counters' own wrap flags (fire only enables)
        ox_wraps, oy_wraps = ox == ow - 1, oy == oh - 1
        next_x = Mux(~x_moves, ix, Mux(~x_wraps, ix + 1, Mux(~pixel_done, ix - (kw - 1),
                                                                Mux(~ox_wraps, ix - (kw - 1) + sw, -left))))
        y_moves = x_moves & x_wraps
        next_y = Mux(~y_moves, iy, Mux(~y_wraps, iy + 1, Mux(~pixel_done | ~ox_wraps, iy - (kh - 1),
                                                             Mux(~oy_wraps, iy - (kh - 1) + sh, -top))))
        with m.If(fire):
            m.d.sync += [ix.eq(next_x), iy.eq(next_y)]
        with m.If(fire & pixel_done):
            with m.If(ox == ow - 1):
                m.d.sync += [ox.eq(0), ix_base.eq(-left)]
                with m.If(oy == oh - 1):
                    m.d.sync += [oy.eq(0), iy_base.eq(-top), limit.eq(rows)]
                    if row_bits:
                        m.d.sync += base_phys.eq(base_phys + h)
                with m.Else():
                    above = iy_base + sh  # the next output row's first input row
                    m.d.sync += [oy.eq(oy + 1), iy_base.eq(above),
                                 limit.eq(Mux(above > 0, above, 0) + rows if top else above + rows)]
            with m.Else():
                m.d.sync += [ox.eq(ox + 1), ix_base.eq(ix_base + sw)]

        # ---- stage 1: the RAM's data (or the pad value)
        v1, pad1, first1, last1 = Signal(), Signal(), Signal(), Signal()
        with m.If(advance):
            m.d.sync += [v1.eq(fire), pad1.eq(padded), first1.eq((ky == 0) & (kx == 0)), last1.eq(last_tap)]
        data = rp.data.as_value()
        if block.read_stages > 2:  # pipelined: the RAM's data registered before any logic (module notes)
            data_r = Signal(len(data), reset_less=True)  # (no reset: a block RAM output register has none)
            v2, pad2, first2, last2 = Signal(), Signal(), Signal(), Signal()
            with m.If(advance):
                m.d.sync += [data_r.eq(data), v2.eq(v1), pad2.eq(pad1), first2.eq(first1), last2.eq(last1)]
            data, v1, pad1, first1, last1 = data_r, v2, pad2, first2, last2
        value1 = Signal(self.i.payload.shape())
        m.d.comb += value1.eq(Mux(pad1, self.pad_bits(), data))
        self.finish(m, advance, v1, value1, first1, last1)
        return m


class SlidingWindowUnit(_LineBufferUnit):
    """The ``window`` kind: every window's beats, (ky, kx, channel fold) order, padding read as
    the block's pad value (the code of 0). Output two clocks after each read's issue."""

    def finish(self, m, advance, v1, value1, first1, last1) -> None:
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(v1), self.o.payload.eq(value1)]


class MaxPoolUnit(_LineBufferUnit):
    """The ``maxpool`` kind: per window and channel fold, the lane-wise maximum of its taps
    (padding reads the element type's least value, so it never wins: ONNX pads with −∞)."""

    taps_inner = True

    def finish(self, m, advance, v1, value1, first1, last1) -> None:
        best = Signal(self.i.payload.shape())
        running = Signal(self.i.payload.shape())
        for k in range(self.block.in_lanes):
            a, b = best[k], value1[k]
            m.d.comb += running[k].eq(Mux(first1 | (b > a), b, a))
        with m.If(advance & v1):
            m.d.sync += best.eq(running)
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(v1 & last1), self.o.payload.eq(running)]


class AvgPoolUnit(_LineBufferUnit):
    """The ``avgpool`` kind: per window and channel fold, the lane-wise sum of its taps' ``q − z``
    (windows are unpadded; the division is the next layer's thresholds)."""

    taps_inner = True

    def finish(self, m, advance, v1, value1, first1, last1) -> None:
        zero = self.block.layer.zero
        total = Signal(self.o.payload.shape())
        running = Signal(self.o.payload.shape())
        for k in range(self.block.in_lanes):
            m.d.comb += running[k].eq(Mux(first1, 0, total[k]) + value1[k] - zero)
        with m.If(advance & v1):
            m.d.sync += total.eq(running)
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(v1 & last1), self.o.payload.eq(running)]


class GlobalSumUnit(FromBlock, wiring.Component):
    """A global pool's running sums (a ``GlobalSumBlock``, whose docstring draws it): no line
    buffer, a beat taken every clock the output register is free or being read."""

    def __init__(self, block):
        self.block = block
        super().__init__({"i": In(stream.Signature(lane_array(block.in_type, block.in_lanes))),
                          "o": Out(stream.Signature(lane_array(block.out_type, block.out_lanes)))})

    def elaborate(self, platform):
        m, block = Module(), self.block
        groups, beats, zero = block.groups, block.in_beats, block.layer.zero
        advance = advance_signal(m, self.o, self.registered_consumer)
        fire = Signal()
        m.d.comb += [self.i.ready.eq(advance), fire.eq(advance & self.i.valid)]
        k = Signal(range(max(beats, 2)))
        _count(m, k, beats, fire)
        line = [Signal(self.o.payload.shape(), name=f"sum{e}", reset_less=True) for e in range(groups)]
        total = Signal(self.o.payload.shape())
        first = k < groups  # the map's first pixel: its sums start from 0
        for lane in range(block.in_lanes):
            m.d.comb += total[lane].eq(Mux(first, 0, line[0][lane]) + self.i.payload[lane] - zero)
        with m.If(fire):  # push the group's new sum, pop its old one
            m.d.sync += [line[e].eq(line[e + 1]) for e in range(groups - 1)] + [line[-1].eq(total)]
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(fire & (k >= beats - groups)), self.o.payload.eq(total)]
        return m
