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
until its beat has been written. The read side uses the stall-all idiom (``advance``); the write
side only its own handshake. Built for the clock (150 MHz on ECP5), no decision runs through a
chain of compares:

- the writer counts the beats it has written, for ever (modulo 2^B); the reader keeps the count
  of the beat it wants, moved by a constant per step, so "written yet" is one subtraction's sign;
- ``i.ready`` is a register's sign bit (the room left below the writer's row limit); the limit's
  moves — one constant per output row — reach it a clock late, through a register;
- what enables the reader's registers is ``fire`` and flags that are themselves registers (each
  digit's carry, the window's, output row's and image's last read), set as the reader steps.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from hwnorm.hdl.common import FromBlock, advance_signal, stream_ports, wrapped_increment

__all__ = ["SlidingWindowUnit", "ParallelWindowUnit", "MaxPoolUnit", "AvgPoolUnit", "GlobalSumUnit"]


def _bits(n: int) -> int:
    """Address bits of an index over ``n`` values (0 for one value)."""
    return (n - 1).bit_length()


def _count(m: Module, counter, n: int, on) -> object:
    """Advance ``counter`` over 0 … n − 1 when ``on``; returns "it wraps now"."""
    with m.If(on):
        m.d.sync += counter.eq(wrapped_increment(counter, n))
    return counter == n - 1


def _one_short(digits):
    """A mixed-radix count (``(counter, radix)`` pairs, the fastest first) is one short of its
    last value: its first digit of radix ≥ 2 at radix − 2, every later one at its last."""
    tests, first = [], True
    for counter, radix in digits:
        if radix >= 2:
            tests.append(counter == radix - (2 if first else 1))
            first = False
    return Cat(*tests).all()


class _LineBufferUnit(FromBlock, wiring.Component):
    taps_inner = False  # read order: (ky, kx, fold) for a window; (fold, ky, kx) for a pool

    def __init__(self, block):
        self.block = block
        super().__init__(stream_ports(block))

    def pad_bits(self) -> int:
        """What a padded beat reads, every lane: the block's pad value."""
        width, lanes = self.block.in_type.width, self.block.in_lanes
        return sum((self.block.pad_value & ((1 << width) - 1)) << (k * width) for k in range(lanes))

    def finish(self, m, advance, v1, value1, first1, last1) -> None:
        """Stage 1 onwards: what leaves the unit (each beat read, or a window's maximum)."""
        raise NotImplementedError

    def _steps(self, kh, kw, sh, sw, oh, ow, cf_n) -> list[tuple[int, int, int]]:
        """(dx, dy, dfold) of the reader's step from a beat on which the first of these holds:
        the fastest digit moves, the middle one, the slowest; the window is done (next window),
        its output row (next row), the image (its first window: dy back to −top)."""
        to_left, to_top = -((ow - 1) * sw + kw - 1), -((oh - 1) * sh + kh - 1)
        if self.taps_inner:  # (fold, ky, kx)
            inner = [(1, 0, 0), (1 - kw, 1, 0), (1 - kw, 1 - kh, 1)]
        else:  # (ky, kx, fold)
            inner = [(0, 0, 1), (1, 0, 1 - cf_n), (1 - kw, 1, 1 - cf_n)]
        return inner + [(sw + 1 - kw, 1 - kh, 1 - cf_n), (to_left, sh + 1 - kh, 1 - cf_n),
                        (to_left, to_top, 1 - cf_n)]

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

        # ---- writer: (column, fold) of the next input beat, and how many beats it has written,
        # counted on for ever modulo 2^B (B bits hold any distance between the writer and the
        # reader, either ahead: rows of the buffer and a window's, a pixel = C/L beats)
        per_row, span = w * cf_n, block.beat_bits
        written_n = Signal(span)
        wcol, wcf = Signal(range(max(w, 2)), name="wcol"), Signal(range(max(cf_n, 2)), name="wcf")
        wphys = Signal(max(row_bits, 1))
        # ---- reader: the next beat to read
        oy, ox = Signal(range(max(oh, 2)), name="oy"), Signal(range(max(ow, 2)), name="ox")
        ky, kx = Signal(range(max(kh, 2)), name="ky"), Signal(range(max(kw, 2)), name="kx")
        cf = Signal(range(max(cf_n, 2)), name="cf")
        base_phys = Signal(max(row_bits, 1))                   # buffer row of the image's row 0
        # the input pixel of the next read, (oy·sh − top + ky, ox·sw − left + kx), kept in registers of
        # their own and moved with the counters below (its padding tests and the RAM address)
        iy = Signal(range(-top, h + sh + kh + 1), init=-top)
        ix = Signal(range(-left, w + sw + kw + 1), init=-left)
        # the beat the next read wants, as the writer counts its beats (modulo 2^B): one register
        # moved with the others, so "written yet" is one subtraction's sign, not three compares
        beat = Signal(span, init=(-top * per_row - left * cf_n) % (1 << span))

        # the writer may fill rows below max(oy·sh − top, 0) + R; ``room`` − 1 is that limit less the
        # writer's row, a register whose sign bit is i.ready. It takes the reader's limit a clock
        # late (the cycle models say so too): the change (``credit``, per output row: a constant)
        # passes a register first, so i.ready → the row count → i.ready is an adder and a mux,
        # and fire reaches no writer logic.
        def limit_of(oy_: int) -> int:
            return max(oy_ * sh - top, 0) + rows
        credits = [limit_of(o + 1) - limit_of(o) for o in range(oh - 1)] + [rows + h - limit_of(oh - 1)]
        room_m1 = Signal(range(-2, h + 2 * rows + sh + 2), init=rows - 1)
        # the credit of the output row the reader was on a clock ago, and whether it left it then
        credit = Signal(range(max(credits) + 1))
        credit_m1 = Signal(range(-1, max(credits) + 1))
        row_left = Signal()
        # padding on the sides that have it (a compare that cannot fire would be a lint warning)
        edges = [(top, iy < 0), (left, ix < 0), ((oh - 1) * sh - top + kh > h, iy >= h),
                 ((ow - 1) * sw - left + kw > w, ix >= w)]
        padded = Signal()
        m.d.comb += padded.eq(Cat(*[test for present, test in edges if present]).any() if any(
            present for present, _ in edges) else 0)
        written = (beat - written_n)[span - 1]  # beat < written_n (modulo 2^B)
        fire = Signal()
        m.d.comb += [fire.eq(advance & (padded | written)), self.i.ready.eq(~room_m1[-1])]

        # no read ever wants a beat written in the same clock (a read waits until its beat is
        # written; a padded read's data is dropped), so Yosys need not emulate "read the old data"
        # with a bypass register and a mux after the block RAM — which also kept the RAM's data
        # register from moving into the RAM (hwnorm.estimate.netlist)
        mem = Memory(shape=self.i.payload.shape(), depth=rows << (col_bits + cf_bits), init=[],
                     attrs={"no_rw_check": 1})
        m.submodules.buffer = mem
        wp, rp = mem.write_port(), mem.read_port(domain="sync")
        write = self.i.valid & self.i.ready
        phys = (base_phys + iy.as_unsigned())[:row_bits] if row_bits else Cat()
        m.d.comb += [wp.en.eq(write), wp.data.eq(self.i.payload),
                     wp.addr.eq(Cat(wcf[:cf_bits], wcol[:col_bits], wphys[:row_bits])),
                     rp.en.eq(advance), rp.addr.eq(Cat(cf[:cf_bits], ix.as_unsigned()[:col_bits], phys))]

        # writer counters
        next_row = Signal()
        fold_wrap = _count(m, wcf, cf_n, write)
        col_wrap = _count(m, wcol, w, write & fold_wrap)
        m.d.comb += next_row.eq(write & fold_wrap & col_wrap)
        with m.If(write):
            m.d.sync += written_n.eq(written_n + 1)
        if row_bits:
            with m.If(next_row):
                m.d.sync += wphys.eq(wphys + 1)
        # every sum from registers, chosen after: the row count and the reader's event only select
        m.d.sync += room_m1.eq(Mux(row_left, Mux(next_row, room_m1 + credit_m1, room_m1 + credit),
                                   Mux(next_row, room_m1 - 1, room_m1)))

        # reader counters, in the read order: a mixed-radix count, the fastest digit first. Each
        # digit's carry in ("every faster digit at its last value") and the window's, output row's
        # and image's last read are flags set as the reader steps onto such a beat, so what
        # enables a register is ``fire`` and a flip-flop, not ``fire`` and compares of counters
        digits = ((kx, kw), (ky, kh), (cf, cf_n)) if self.taps_inner else ((cf, cf_n), (kx, kw), (ky, kh))
        at_last = []  # at_last[j]: digits 0 … j all at their last value
        for j, (counter, n) in enumerate(digits):
            if n > 1:
                with m.If(fire & (at_last[j - 1] if j else C(1, 1))):
                    m.d.sync += counter.eq(wrapped_increment(counter, n))
            radices = [r for _, r in digits[:j + 1]]
            flag = Signal(name=f"carry{j}", init=all(r == 1 for r in radices))
            with m.If(fire):
                m.d.sync += flag.eq(_one_short(digits[:j + 1]) if any(r > 1 for r in radices) else 1)
            at_last.append(flag)
        pixel_done = at_last[-1]
        last_tap = (ky == kh - 1) & (kx == kw - 1)
        row_last = Signal(init=pixel_done.init and ow == 1)
        image_last = Signal(init=row_last.init and oh == 1)

        def next_is_last(counter, n: int, wraps):  # the counter's value after this read is n − 1
            return Mux(wraps, C(1, 1) if n == 1 else counter == n - 2, counter == n - 1)
        next_pixel_done = _one_short(digits) if cf_n * kh * kw > 1 else C(1, 1)
        next_row_last = next_pixel_done & next_is_last(ox, ow, pixel_done)
        with m.If(fire):
            m.d.sync += [row_last.eq(next_row_last), image_last.eq(next_row_last & next_is_last(oy, oh, row_last))]
        # the reader leaves an output row (or its image): the writer's limit moves, a clock later
        # (a chain of muxes, one continuous assignment: Icarus never runs the process a case
        # statement becomes until an input changes, and the first row's credit would be X)
        credit_of = C(credits[-1], len(credit))
        for o in range(oh - 2, -1, -1):
            credit_of = Mux(oy == o, credits[o], credit_of)
        m.d.sync += [credit.eq(credit_of), credit_m1.eq(credit_of - 1), row_left.eq(fire & row_last)]
        # the next read: a step chosen by the flags (registers; fire only enables), each step a
        # constant added to a register — (dx, dy, dfold) from the table below, and the beat the
        # writer counts moved by dy·W·C/L + dx·C/L + dfold (an image's end steps on H rows)
        pick = [~flag for flag in at_last] + [~row_last, ~image_last, C(1, 1)]
        steps = self._steps(kh, kw, sh, sw, oh, ow, cf_n)
        image_rows = h  # (the last step's dy in the writer's count: on to the next image's first row)

        def chosen(value, deltas, width=None):
            out = None
            for cond, d in reversed(list(zip(pick, deltas))):
                v = value + d
                v = v[:width] if width else v
                out = v if out is None else Mux(cond, v, out)
            return out
        next_x = chosen(ix, [dx for dx, _, _ in steps])
        next_y = chosen(iy, [dy for _, dy, _ in steps])
        next_beat = chosen(beat, [dy * per_row + dx * cf_n + dc for dx, dy, dc in steps[:-1]]
                           + [(steps[-1][1] + image_rows) * per_row + steps[-1][0] * cf_n + steps[-1][2]], span)
        with m.If(fire):
            m.d.sync += [ix.eq(next_x), iy.eq(next_y), beat.eq(next_beat)]
        with m.If(fire & pixel_done):
            m.d.sync += ox.eq(wrapped_increment(ox, ow))
        with m.If(fire & row_last):
            m.d.sync += oy.eq(wrapped_increment(oy, oh))
        if row_bits:
            with m.If(fire & image_last):
                m.d.sync += base_phys.eq(base_phys + h)

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
        super().__init__(stream_ports(block))

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


class ParallelWindowUnit(FromBlock, wiring.Component):
    """The ``window`` kind emitting whole windows (a ``ParallelWindowBlock``, whose docstring
    draws it): a stall-all pipeline — one pixel taken per clock the output register is free or
    being read — through the pixel's register and the column store's read, into the window.

    ``o.payload`` is the window register itself, ``(ky, kx, c)`` lanes: ``win[ky][kx]`` shifts to
    ``kx − 1`` as each pixel arrives and the pixel's column (``kh`` pixels, oldest first) enters at
    ``kx = kw − 1``; ``o.valid`` says the pixel just in completed a window."""

    def __init__(self, block):
        self.block = block
        super().__init__(stream_ports(block))

    def elaborate(self, platform):
        m, block = Module(), self.block
        g = block.geometry
        h, w = g.height, g.width
        kh, kw = g.kernel
        pixel = block.pixel_bits
        advance = advance_signal(m, self.o, self.registered_consumer)
        fire = Signal()
        m.d.comb += [self.i.ready.eq(advance), fire.eq(advance & self.i.valid)]

        # ---- stage 0: the pixel's place, and whether it completes a window (constant masks of
        # the rows and columns that do, indexed by the counters: a LUT, not compares)
        x, y = Signal(range(max(w, 2)), name="x"), Signal(range(max(h, 2)), name="y")
        emits = set(block.emit_issues())
        rows_mask = sum(1 << r for r in range(h) if any(r * w + c in emits for c in range(w)))
        cols_mask = sum(1 << c for c in range(w) if any(r * w + c in emits for r in range(h)))
        emit = C(rows_mask, h).bit_select(y, 1) & C(cols_mask, w).bit_select(x, 1)
        with m.If(fire):
            m.d.sync += x.eq(wrapped_increment(x, w))
            with m.If(x == w - 1):
                m.d.sync += y.eq(wrapped_increment(y, h))
        ranks = block.store_ranks
        store_bits = block.store_width
        if store_bits:
            # a column's word is read as its pixel is taken and written back when the pixel
            # reaches the window, 1 + ranks clocks later: never the address read then (W ≥ 3)
            store = Memory(shape=store_bits, depth=w, init=[], attrs={"no_rw_check": 1})
            m.submodules.column_store = store
            wp, rp = store.write_port(), store.read_port(domain="sync")
            m.d.comb += [rp.addr.eq(x), rp.en.eq(advance)]

        # ---- stage 1 (… 1 + ranks): the pixel with its place and flag, the store's read data
        stage = [Signal(pixel, name="pixel1", reset_less=True), Signal.like(x, name="x1"), Signal(name="emit1")]
        v = Signal(name="v1")
        with m.If(advance):
            m.d.sync += [stage[0].eq(self.i.payload), stage[1].eq(x), stage[2].eq(emit), v.eq(fire)]
        older = rp.data if store_bits else C(0, 0)
        for k in range(ranks):  # the store's data registered (a block RAM's output register), the rest with it
            later = [Signal.like(s, name=f"{s.name[:-1]}{k + 2}") for s in stage]
            older_r = Signal(store_bits, name=f"older{k + 2}", reset_less=True)
            v_r = Signal(name=f"v{k + 2}")
            with m.If(advance):
                m.d.sync += [a.eq(b) for a, b in zip(later, stage)] + [older_r.eq(older), v_r.eq(v)]
            stage, older, v = later, older_r, v_r
        pixel_in, x_in, emit_in = stage
        column = Cat(older, pixel_in)  # kh pixels, the oldest row first
        if store_bits:
            m.d.comb += [wp.addr.eq(x_in), wp.data.eq(column[pixel:]), wp.en.eq(advance & v)]

        # ---- the window: the output register
        win = [[Signal(pixel, name=f"win{ky}_{kx}", reset_less=True) for kx in range(kw)] for ky in range(kh)]
        with m.If(advance & v):
            for ky in range(kh):
                m.d.sync += [win[ky][kx].eq(win[ky][kx + 1]) for kx in range(kw - 1)]
                m.d.sync += win[ky][kw - 1].eq(column[ky * pixel:(ky + 1) * pixel])
        with m.If(advance):
            m.d.sync += self.o.valid.eq(v & emit_in)
        m.d.comb += self.o.payload.eq(Cat(*[win[ky][kx] for ky in range(kh) for kx in range(kw)]))
        return m
