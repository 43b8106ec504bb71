"""Clock-by-clock models of the stream blocks, with back-pressure: what a block does when its
consumer is *not* ready — which the composed cycle model (``Block.schedule``, every output taken
as soon as it is valid) leaves out. A plan of stages runs clock by clock (:func:`simulate`), each
block answering three questions per clock, as its RTL does:

* ``valid(in_valid)`` — which output streams hold a beat (registered; a fork passes its input's on);
* ``ready(out_ready, in_valid)`` — which input streams it takes a beat from this clock;
* ``tick(in_fire, out_fire, out_ready)`` — the clock edge.

Most blocks are *stall-all* pipelines (:mod:`hwnorm.hdl.common`): every register moves together
when the output register is free or being read (``advance``), so a stalled output freezes the
whole block and its input. :class:`StallAll` models any of them from its depth and its issue rule
(which input beats an issue takes, which issues make an output); the line buffer, the FIFO, the
lane splitter, the register slice and the fork have models of their own.

What it is for: the least FIFO depths at which a graph keeps its throughput
(:func:`hwnorm.dataflow.minimal_fifos`) — a FIFO whose producer has slack can be far shallower
than one that never fills — and checking that a plan's output clocks equal the composed model's.
"""

from __future__ import annotations

from collections import deque

__all__ = ["StallAll", "Every", "Replay", "Join", "Turns", "LineBufferModel", "FIFOModel", "SplitModel",
           "SliceModel", "ForkModel", "model_of", "models_of", "simulate", "Deadlock"]


class Deadlock(RuntimeError):
    """No stream moved for longer than the plan's slowest stage takes per image."""


# ---------------------------------------------------------------- stall-all pipelines
class StallAll:
    """``depth`` register stages moving on ``advance``; the last is the output register. The
    ``issue`` rule says when the block can issue (``can``), which inputs an issue takes
    (``takes``) and whether it makes an output (``fire``)."""

    outs = 1

    def __init__(self, depth: int, issue, registered_consumer: bool = False):
        self.slots = deque([False] * depth)  # slot −1: the output register
        self.issue, self.registered = issue, registered_consumer

    def valid(self, in_valid):
        return [self.slots[-1]]

    def _advance(self, out_ready) -> bool:
        return out_ready[0] if self.registered else (not self.slots[-1] or out_ready[0])

    def ready(self, out_ready, in_valid):
        if not self._advance(out_ready):
            return [False] * len(in_valid)
        return self.issue.takes(in_valid)

    def tick(self, in_valid, in_fire, out_fire, out_ready):
        if not self._advance(out_ready):
            return
        token = self.issue.fire(in_fire) if self.issue.can(in_fire) else False
        self.slots.pop()
        self.slots.appendleft(token)


class Every:
    """One input beat per issue; issue ``k`` (counted over a ``period``) makes an output when
    ``k mod period`` is in ``emits``."""

    def __init__(self, period: int, emits):
        self.period, self.emits, self.k = period, frozenset(emits), 0

    def takes(self, in_valid):
        return [True]

    def can(self, in_fire):
        return in_fire[0]

    def fire(self, in_fire) -> bool:
        out = self.k in self.emits
        self.k = (self.k + 1) % self.period
        return out


class Join(Every):
    """A beat of every input taken together (an add): ready only when all are valid."""

    def takes(self, in_valid):
        both = all(in_valid)
        return [both] * len(in_valid)

    def can(self, in_fire):
        return all(in_fire)


class Replay:
    """An MVU: ``sf`` beats taken in the first of ``nf`` folds, replayed from its buffer in the
    others; an output at the last beat of each fold."""

    def __init__(self, sf: int, nf: int):
        self.sf_n, self.nf_n, self.sf, self.nf = sf, nf, 0, 0

    def takes(self, in_valid):
        return [self.nf == 0]

    def can(self, in_fire):
        return self.nf != 0 or in_fire[0]

    def fire(self, in_fire) -> bool:
        out = self.sf == self.sf_n - 1
        self.sf = (self.sf + 1) % self.sf_n
        if out:
            self.nf = (self.nf + 1) % self.nf_n
        return out


class Turns:
    """A concat: ``parts[k]`` beats from input ``k``, in input order, each an output."""

    def __init__(self, parts):
        self.parts, self.part, self.beat = tuple(parts), 0, 0

    def takes(self, in_valid):
        return [k == self.part for k in range(len(self.parts))]

    def can(self, in_fire):
        return in_fire[self.part]

    def fire(self, in_fire) -> bool:
        self.beat += 1
        if self.beat == self.parts[self.part]:
            self.beat, self.part = 0, (self.part + 1) % len(self.parts)
        return True


# ---------------------------------------------------------------- the line buffer
class LineBufferModel:
    """The ``window`` / ``maxpool`` / ``avgpool`` line buffer (:mod:`hwnorm.hdl.window`): the
    writer takes a beat whenever its row's slot is free — by the reader's row limit as it was a
    clock before —, whatever the output does; the reader is stall-all with ``stages`` stages after
    its issue."""

    outs = 1

    def __init__(self, g, channel_folds: int, rows: int, taps_inner: bool, registered_consumer: bool,
                 stages: int):
        self.g, self.cf_n, self.rows, self.taps_inner = g, channel_folds, rows, taps_inner
        self.registered = registered_consumer
        self.wrow = self.wcol = self.wcf = 0
        self.oy = self.ox = self.ky = self.kx = self.cf = 0
        self.iy_base, self.ix_base = -g.pads[0], -g.pads[1]
        self.slots = deque([False] * stages)  # the reader's stages after its issue (read_stages)
        self.seen = rows  # the writer's row limit: the reader's, as it was a clock ago

    def valid(self, in_valid):
        return [self.slots[-1]]

    def _advance(self, out_ready) -> bool:
        return out_ready[0] if self.registered else (not self.slots[-1] or out_ready[0])

    def ready(self, out_ready, in_valid):
        return [self.wrow < self.seen]

    def tick(self, in_valid, in_fire, out_fire, out_ready):
        g = self.g
        h, w = g.height, g.width
        kh, kw = g.kernel
        rebase = 0
        limit = (self.iy_base if self.iy_base > 0 else 0) + self.rows  # the writer's, as this clock starts
        if self._advance(out_ready):
            iy, ix = self.iy_base + self.ky, self.ix_base + self.kx
            padded = iy < 0 or iy >= h or ix < 0 or ix >= w
            written = self.wrow > iy or (self.wrow == iy and (self.wcol > ix or (self.wcol == ix and self.wcf > self.cf)))
            token = False
            if padded or written:
                last_tap = self.ky == kh - 1 and self.kx == kw - 1
                token = last_tap if self.taps_inner else True
                rebase = self._next_read(last_tap)
            self.slots.pop()
            self.slots.appendleft(token)
        next_row = 0
        if in_fire[0]:
            if self.wcf < self.cf_n - 1:
                self.wcf += 1
            else:
                self.wcf = 0
                if self.wcol < w - 1:
                    self.wcol += 1
                else:
                    self.wcol, next_row = 0, 1
        self.wrow += next_row - rebase
        self.seen = limit - rebase

    def _next_read(self, last_tap: bool) -> int:
        """Move the reader to its next beat; returns H when it finished an image (the writer's
        rows are then counted from the next one)."""
        g, cf_n = self.g, self.cf_n
        kh, kw = g.kernel
        inner_done = last_tap and self.cf == cf_n - 1
        if self.taps_inner:
            if last_tap:
                self.ky = self.kx = 0
                self.cf = 0 if self.cf == cf_n - 1 else self.cf + 1
            elif self.kx == kw - 1:
                self.kx, self.ky = 0, self.ky + 1
            else:
                self.kx += 1
        elif self.cf < cf_n - 1:
            self.cf += 1
        else:
            self.cf = 0
            if self.kx < kw - 1:
                self.kx += 1
            else:
                self.kx, self.ky = 0, (0 if self.ky == kh - 1 else self.ky + 1)
        if not inner_done:
            return 0
        if self.ox < g.out_width - 1:
            self.ox, self.ix_base = self.ox + 1, self.ix_base + g.stride[1]
            return 0
        self.ox, self.ix_base = 0, -g.pads[1]
        if self.oy < g.out_height - 1:
            self.oy, self.iy_base = self.oy + 1, self.iy_base + g.stride[0]
            return 0
        self.oy, self.iy_base = 0, -g.pads[0]
        return g.height


# ---------------------------------------------------------------- plumbing
class FIFOModel:
    """The stream FIFO of ``depth`` (:class:`hwnorm.hdl.stream.StreamFIFO`): a memory of
    ``depth − 2`` beats read into a read register and on into the output register; each register
    loads when the one after it is free or being read."""

    outs = 1

    def __init__(self, depth: int):
        self.depth, self.level, self.held, self.out = depth, 0, False, False
        self.peak = 0  # the most beats it held

    def valid(self, in_valid):
        return [self.out]

    def ready(self, out_ready, in_valid):
        return [self.level != self.depth - 2]

    def tick(self, in_valid, in_fire, out_fire, out_ready):
        load_out = not self.out or out_ready[0]
        load_held = not self.held or load_out
        read = self.level != 0 and load_held
        self.level += int(in_fire[0]) - int(read)
        if load_out:
            self.out = self.held
        if load_held:
            self.held = read
        self.peak = max(self.peak, self.level + self.held + self.out)


class SplitModel:
    """One wide beat → ``factor`` narrow ones, back to back."""

    outs = 1

    def __init__(self, factor: int):
        self.factor, self.left = factor, 0

    def valid(self, in_valid):
        return [self.left != 0]

    def ready(self, out_ready, in_valid):
        return [self.left == 0 or (self.left == 1 and out_ready[0])]

    def tick(self, in_valid, in_fire, out_fire, out_ready):
        if out_fire[0]:
            self.left -= 1
        if in_fire[0]:
            self.left = self.factor


class SliceModel:
    """The register slice: a skid register and an output register; ``i.ready`` is the skid's
    free flag (a flip-flop)."""

    outs = 1

    def __init__(self):
        self.skid_free, self.out = True, False

    def valid(self, in_valid):
        return [self.out]

    def ready(self, out_ready, in_valid):
        return [self.skid_free]

    def tick(self, in_valid, in_fire, out_fire, out_ready):
        in_valid = in_valid[0]
        if out_ready[0] or not self.out:
            if not self.skid_free:
                self.out, self.skid_free = True, True
            else:
                self.out = in_valid
        elif in_valid and self.skid_free:
            self.skid_free = False


class ForkModel:
    """An eager fork: each output takes the beat on its own; the input is done when all have."""

    def __init__(self, n: int):
        self.outs, self.taken = n, [False] * n

    def valid(self, in_valid):
        return [in_valid[0] and not t for t in self.taken]

    def ready(self, out_ready, in_valid):
        return [all(t or r for t, r in zip(self.taken, out_ready))]

    def tick(self, in_valid, in_fire, out_fire, out_ready):
        if in_fire[0]:
            self.taken = [False] * self.outs
        else:
            self.taken = [t or f for t, f in zip(self.taken, out_fire)]


# ---------------------------------------------------------------- a plan, clock by clock
def model_of(block, registered_consumer: bool = False):
    """The clocked model of a block (``registered_consumer``: its consumer is a register slice,
    so its ``advance`` is that slice's ready alone, as in the RTL)."""
    kind = block.kind
    if kind == "fifo":
        return FIFOModel(block.depth)
    if kind == "split":
        return SplitModel(block.factor)
    if kind == "slice":
        return SliceModel()
    if kind == "fork":
        return ForkModel(block.out_ports)
    if hasattr(block, "geometry") and hasattr(block, "channel_folds"):  # a line buffer
        return LineBufferModel(block.geometry, block.channel_folds, block.rows, block.taps_inner, registered_consumer,
                               block.read_stages)
    if hasattr(block, "emit_issues"):  # one input beat per issue, an output for the issues listed
        return StallAll(block.depth, Every(block.in_beats, block.emit_issues()), registered_consumer)
    if kind == "mvu":
        return StallAll(block.depth, Replay(block.sf, block.nf), registered_consumer)
    if kind == "concat":
        return StallAll(block.depth, Turns(block.part_beats), registered_consumer)
    # one input beat per issue (per input stream, taken together): the outputs come from the
    # block's own cycle model at full rate — issue k at clock k, its output ``depth`` later
    period = block.in_beats
    outs = block.schedule(list(range(period)))
    depth = outs[-1] - (period - 1)
    rule = (Join if block.in_ports > 1 else Every)(period, {o - depth for o in outs})
    return StallAll(depth, rule, registered_consumer)


def models_of(stages: list) -> list:
    """The clocked models of a plan's stages, each producer told whether a register slice reads it."""
    sliced = {src for stage in stages if stage.block.kind == "slice" for src in stage.sources}
    return [model_of(stage.block, (k, 0) in sliced and stage.block.out_ports == 1) for k, stage in enumerate(stages)]


class Late(RuntimeError):
    """An output beat left on another clock than the one it was held to."""


def simulate(stages: list, arrivals: list[int], expected: int, stall_limit: int, models: list | None = None,
             held_to: list[int] | None = None) -> list[int]:
    """Run the plan ``stages`` (each with ``block`` and ``sources``: per input stream, (stage
    index, output port) or (None, 0) for the plan's input) clock by clock on input beats offered
    from ``arrivals``, the last stage's output always taken, until ``expected`` beats have left
    it. Returns their clocks; raises :class:`Deadlock` when nothing moves for ``stall_limit``
    clocks, and :class:`Late` as soon as an output beat misses its clock in ``held_to`` (a
    search for the least FIFO depths learns of a too-shallow FIFO without running on).
    ``models`` (default :func:`models_of`) are left in their final state."""
    models = models_of(stages) if models is None else models
    n = len(stages)
    readers = {src: (k, p) for k, stage in enumerate(stages) for p, src in enumerate(stage.sources)}
    sources = [tuple(stage.sources) for stage in stages]
    out_readers = [[readers.get((k, q)) for q in range(m.outs)] for k, m in enumerate(models)]
    takes_input = [k for k, src in enumerate(sources) if src and src[0][0] is None]
    valid_of, ready_of, tick_of = [m.valid for m in models], [m.ready for m in models], [m.tick for m in models]
    sent, done, t, idle, last = 0, [], 0, 0, n - 1
    in_valid, out_valid, in_ready, out_ready = [None] * n, [None] * n, [None] * n, [None] * n
    order = range(n)
    backwards = range(n - 1, -1, -1)
    while len(done) < expected:
        offering = sent < len(arrivals) and arrivals[sent] <= t
        for k in order:
            iv = [offering if src is None else out_valid[src][port] for src, port in sources[k]]
            in_valid[k] = iv
            out_valid[k] = valid_of[k](iv)
        for k in backwards:
            orr = [True if r is None else in_ready[r[0]][r[1]] for r in out_readers[k]]
            out_ready[k] = orr
            in_ready[k] = ready_of[k](orr, in_valid[k])
        moved = False
        for k in order:
            iv, ir, ov, orr = in_valid[k], in_ready[k], out_valid[k], out_ready[k]
            if len(iv) == 1:
                in_fire = [iv[0] and ir[0]]
            else:
                in_fire = [v and r for v, r in zip(iv, ir)]
            if len(ov) == 1:
                out_fire = [ov[0] and orr[0]]
            else:
                out_fire = [v and r for v, r in zip(ov, orr)]
            if not moved and (True in in_fire or True in out_fire):
                moved = True
            tick_of[k](iv, in_fire, out_fire, orr)
            if k == last and out_fire[0]:
                if held_to is not None and held_to[len(done)] != t:
                    raise Late(f"output beat {len(done)} left at clock {t}, not {held_to[len(done)]}")
                done.append(t)
        for k in takes_input:
            if in_valid[k][0] and in_ready[k][0]:
                sent += 1
        t += 1
        idle = 0 if moved else idle + 1
        if idle > stall_limit:
            raise Deadlock(f"no stream moved for {stall_limit} clocks (clock {t}, {len(done)} of {expected} "
                           "output beats out)")
    return done
