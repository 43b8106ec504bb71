"""The clock-by-clock back-pressure models of :mod:`hwnorm.clocked`, compiled: the same plan, the
same three questions per block per clock, the same answers — as flat integer arrays and one
Numba loop, 60 to 100 times faster than the Python objects (the ResNet-style model: 3 images in
0.02 s, 2 s in Python). The least-FIFO search (:func:`hwnorm.dataflow.minimal_fifos`) runs the
plan a dozen times per FIFO: 0.7 s for that model, where it took a minute.

The Python models stay the definition (readable, one class per block); this module reads its
parameters *from them* (:func:`hwnorm.clocked.models_of`), so which model a block gets and with
which numbers is decided once. ``tests/test_clocked.py`` runs both on every vendored network and
on random FIFO depths and requires the same clocks, deadlocks and late beats.

Layout, per stage ``k`` (``P`` parameters, ``S`` state, one row each)::

    stall-all  P: depth registered rule period|sf|parts nf   S: ring_base k|sf|part nf|beat
    line       P: H W kh kw sy sx py px OH OW cf_n rows taps_inner registered stages
               S: wrow wcol wcf oy ox ky kx cf iy_base ix_base ring_base seen
    fifo       P: depth                                  S: level out held
    split      P: factor                                 S: left
    slice      —                                         S: skid_free out
    fork       P: outs                                   S: (taken flags live in ``flags``)

Ports are flat: stage ``k``'s input ports are ``in_off[k] … in_off[k+1]``, each naming the flat
output port it reads (−1: the plan's input); output ports name their reader's flat input port
(−1: nobody reads it — always ready, as the last stage's output is).
"""

from __future__ import annotations

import hashlib

import numpy as np
from numba import njit

from hwnorm.clocked import (Deadlock, Every, FIFOModel, ForkModel, Join, Late, LineBufferModel, Replay,
                            SliceModel, SplitModel, StallAll, Turns, models_of)

__all__ = ["CompiledPlan"]

STALL, LINE, FIFO, SPLIT, SLICE, FORK = range(6)
EVERY, JOIN, REPLAY, TURNS = range(4)
_PARAMS, _STATE = 16, 16
OK, DEADLOCK, LATE = range(3)


class CompiledPlan:
    """A plan (stages with ``block`` and ``sources``, as :func:`hwnorm.clocked.simulate` takes)
    as arrays, built once; :meth:`run` runs it with any FIFO depths."""

    def __init__(self, stages: list):
        models = models_of(stages)
        n = len(stages)
        self.names = [stage.name for stage in stages]
        self.fifo_index = {stage.name: k for k, (stage, m) in enumerate(zip(stages, models))
                           if isinstance(m, FIFOModel)}
        in_off, out_off = [0], [0]
        for stage, m in zip(stages, models):
            in_off.append(in_off[-1] + len(stage.sources))
            out_off.append(out_off[-1] + m.outs)
        self.in_off, self.out_off = np.array(in_off, np.int64), np.array(out_off, np.int64)
        self.source = np.full(in_off[-1], -1, np.int64)
        self.reader = np.full(out_off[-1], -1, np.int64)
        for k, stage in enumerate(stages):
            for p, (src, port) in enumerate(stage.sources):
                if src is not None:
                    flat_out = out_off[src] + port
                    self.source[in_off[k] + p] = flat_out
                    self.reader[flat_out] = in_off[k] + p
        self.kind = np.zeros(n, np.int64)
        self.params = np.zeros((n, _PARAMS), np.int64)
        self.state0 = np.zeros((n, _STATE), np.int64)
        tables, ring = [], 0
        self.table_off = np.zeros(n + 1, np.int64)  # Every's emit flags, Turns' parts
        self.ring_off = np.zeros(n + 1, np.int64)   # stall-all slots
        for k, m in enumerate(models):
            table, slots = self._encode(k, m)
            tables.extend(table)
            self.table_off[k + 1] = len(tables)
            ring += slots
            self.ring_off[k + 1] = ring
        self.table = np.array(tables, np.int64)

    def digest(self) -> str:
        """What the plan's clocks depend on (its structure and FIFO depths, not its weights), hashed:
        two plans with one digest run alike."""
        h = hashlib.sha256("\0".join(self.names).encode())
        for a in (self.kind, self.params, self.state0, self.in_off, self.out_off, self.source, self.reader,
                  self.table, self.table_off, self.ring_off):
            h.update(np.ascontiguousarray(a).tobytes() + b"|")
        return h.hexdigest()

    def _encode(self, k: int, m) -> tuple[list, int]:
        """Stage ``k``'s kind, parameters and initial state from its Python model; returns its table
        entries and ring slots."""
        p, s = self.params[k], self.state0[k]
        if isinstance(m, StallAll):
            self.kind[k] = STALL
            p[0], p[1] = len(m.slots), m.registered
            rule = m.issue
            if isinstance(rule, Every):  # Join is an Every that waits for all inputs
                p[2], p[3] = (JOIN if isinstance(rule, Join) else EVERY), rule.period
                return [int(i in rule.emits) for i in range(rule.period)], len(m.slots)
            if isinstance(rule, Replay):
                p[2], p[3], p[4] = REPLAY, rule.sf_n, rule.nf_n
                return [], len(m.slots)
            if isinstance(rule, Turns):
                p[2], p[3] = TURNS, len(rule.parts)
                return list(rule.parts), len(m.slots)
            raise TypeError(f"no compiled form of the issue rule {type(rule).__name__}")
        if isinstance(m, LineBufferModel):
            self.kind[k] = LINE
            g = m.g
            p[:15] = (g.height, g.width, *g.kernel, *g.stride, *g.pads[:2], g.out_height, g.out_width,
                      m.cf_n, m.rows, m.taps_inner, m.registered, len(m.slots))
            s[8], s[9], s[11] = -g.pads[0], -g.pads[1], m.rows
            return [], len(m.slots)
        if isinstance(m, FIFOModel):
            self.kind[k], p[0] = FIFO, m.depth
        elif isinstance(m, SplitModel):
            self.kind[k], p[0] = SPLIT, m.factor
        elif isinstance(m, SliceModel):
            self.kind[k], s[0] = SLICE, 1
        elif isinstance(m, ForkModel):
            self.kind[k], p[0] = FORK, m.outs
        else:
            raise TypeError(f"no compiled form of the clocked model {type(m).__name__}")
        return [], 0

    def run(self, arrivals, expected: int, stall_limit: int, held_to=None, depths: dict | None = None) -> list[int]:
        """:func:`hwnorm.clocked.simulate` on this plan, with the FIFOs named in ``depths`` at those
        depths: the clocks of the first ``expected`` output beats; :class:`Deadlock` or
        :class:`Late` as it raises them."""
        params = self.params
        if depths:
            params = params.copy()
            for name, depth in depths.items():
                params[self.fifo_index[name], 0] = depth
        arrivals = np.asarray(arrivals, np.int64)
        held = np.asarray(held_to if held_to is not None else [], np.int64)
        done = np.zeros(expected, np.int64)
        status, t, count = _run(self.kind, params, self.state0.copy(), self.in_off, self.out_off, self.source,
                                self.reader, self.table, self.table_off, self.ring_off, arrivals, expected,
                                stall_limit, held, held_to is not None, done)
        if status == DEADLOCK:
            raise Deadlock(f"no stream moved for {stall_limit} clocks (clock {t}, {count} of {expected} "
                           "output beats out)")
        if status == LATE:
            raise Late(f"output beat {count} left at clock {t}, not {held[count]}")
        return done.tolist()


@njit(cache=True)
def _run(kind, params, state, in_off, out_off, source, reader, table, table_off, ring_off, arrivals, expected,
         stall_limit, held, hold, done):  # pragma: no cover - compiled (its Python twin: hwnorm.clocked.simulate)
    n = kind.shape[0]
    n_in, n_out = in_off[n], out_off[n]
    in_valid = np.zeros(n_in, np.bool_)
    in_ready = np.zeros(n_in, np.bool_)
    out_valid = np.zeros(n_out, np.bool_)
    out_ready = np.zeros(n_out, np.bool_)
    ring = np.zeros(ring_off[n], np.bool_)
    flags = np.zeros(n_out, np.bool_)  # a fork's taken flags, per output port
    # the state at the end of the last clock in which nothing moved (a deadlock is a fixed point)
    last_state, last_ring, last_flags = state.copy(), ring.copy(), flags.copy()
    kept = False
    sent, count, t, idle = 0, 0, 0, 0
    last = n - 1
    while count < expected:
        offering = sent < arrivals.shape[0] and arrivals[sent] <= t
        # ---- valid, forwards
        for k in range(n):
            for i in range(in_off[k], in_off[k + 1]):
                src = source[i]
                in_valid[i] = offering if src < 0 else out_valid[src]
            kd, o = kind[k], out_off[k]
            if kd == STALL:
                d = params[k, 0]
                out_valid[o] = ring[ring_off[k] + (state[k, 0] + d - 1) % d]
            elif kd == LINE:
                d = params[k, 14]
                out_valid[o] = ring[ring_off[k] + (state[k, 10] + d - 1) % d]
            elif kd == FIFO:
                out_valid[o] = state[k, 1] != 0
            elif kd == SPLIT:
                out_valid[o] = state[k, 0] != 0
            elif kd == SLICE:
                out_valid[o] = state[k, 1] != 0
            else:
                for q in range(out_off[k], out_off[k + 1]):
                    out_valid[q] = in_valid[in_off[k]] and not flags[q]
        # ---- ready, backwards
        for k in range(n - 1, -1, -1):
            for q in range(out_off[k], out_off[k + 1]):
                r = reader[q]
                out_ready[q] = True if r < 0 else in_ready[r]
            kd, i0, i1, o = kind[k], in_off[k], in_off[k + 1], out_off[k]
            if kd == STALL or kd == LINE:
                registered = params[k, 1] if kd == STALL else params[k, 13]
                advance = out_ready[o] if registered else (not out_valid[o] or out_ready[o])
                if kd == LINE:
                    in_ready[i0] = state[k, 0] < state[k, 11]
                elif not advance:
                    for i in range(i0, i1):
                        in_ready[i] = False
                else:
                    rule = params[k, 2]
                    if rule == EVERY:
                        in_ready[i0] = True
                    elif rule == JOIN:
                        both = True
                        for i in range(i0, i1):
                            both = both and in_valid[i]
                        for i in range(i0, i1):
                            in_ready[i] = both
                    elif rule == REPLAY:
                        in_ready[i0] = state[k, 2] == 0
                    else:
                        for i in range(i0, i1):
                            in_ready[i] = i - i0 == state[k, 1]
            elif kd == FIFO:
                in_ready[i0] = state[k, 0] != params[k, 0] - 2
            elif kd == SPLIT:
                left = state[k, 0]
                in_ready[i0] = left == 0 or (left == 1 and out_ready[o])
            elif kd == SLICE:
                in_ready[i0] = state[k, 0] != 0
            else:
                all_done = True
                for q in range(out_off[k], out_off[k + 1]):
                    all_done = all_done and (flags[q] or out_ready[q])
                in_ready[i0] = all_done
        # ---- the clock edge
        moved = False
        for k in range(n):
            kd, i0, i1, o = kind[k], in_off[k], in_off[k + 1], out_off[k]
            for i in range(i0, i1):
                if in_valid[i] and in_ready[i]:
                    moved = True
            for q in range(o, out_off[k + 1]):
                if out_valid[q] and out_ready[q]:
                    moved = True
            fire0 = in_valid[i0] and in_ready[i0] if i1 > i0 else False
            if kd == STALL:
                registered = params[k, 1]
                advance = out_ready[o] if registered else (not out_valid[o] or out_ready[o])
                if advance:
                    rule = params[k, 2]
                    token = False
                    if rule == EVERY or rule == JOIN:
                        can = True
                        for i in range(i0, i1):
                            can = can and in_valid[i] and in_ready[i]
                        if can:
                            j = state[k, 1]
                            token = table[table_off[k] + j] != 0
                            state[k, 1] = j + 1 if j + 1 < params[k, 3] else 0
                    elif rule == REPLAY:
                        if state[k, 2] != 0 or fire0:
                            sf = state[k, 1]
                            token = sf == params[k, 3] - 1
                            state[k, 1] = 0 if token else sf + 1
                            if token:
                                nf = state[k, 2] + 1
                                state[k, 2] = 0 if nf == params[k, 4] else nf
                    else:
                        part = state[k, 1]
                        if in_valid[i0 + part] and in_ready[i0 + part]:
                            token = True
                            beat = state[k, 2] + 1
                            if beat == table[table_off[k] + part]:
                                state[k, 2] = 0
                                state[k, 1] = 0 if part + 1 == params[k, 3] else part + 1
                            else:
                                state[k, 2] = beat
                    d = params[k, 0]
                    base = (state[k, 0] + d - 1) % d
                    ring[ring_off[k] + base] = token
                    state[k, 0] = base
            elif kd == LINE:
                _line_tick(params[k], state[k], ring, ring_off[k], fire0, out_valid[o], out_ready[o])
            elif kd == FIFO:
                level, out, in_read_reg = state[k, 0], state[k, 1] != 0, state[k, 2] != 0
                load_out = not out or out_ready[o]
                load_read_reg = not in_read_reg or load_out
                read = level != 0 and load_read_reg
                state[k, 0] = level + (1 if fire0 else 0) - (1 if read else 0)
                if load_out:
                    state[k, 1] = state[k, 2]
                if load_read_reg:
                    state[k, 2] = 1 if read else 0
            elif kd == SPLIT:
                if out_valid[o] and out_ready[o]:
                    state[k, 0] -= 1
                if fire0:
                    state[k, 0] = params[k, 0]
            elif kd == SLICE:
                if out_ready[o] or state[k, 1] == 0:
                    if state[k, 0] == 0:
                        state[k, 1], state[k, 0] = 1, 1
                    else:
                        state[k, 1] = 1 if in_valid[i0] else 0
                elif in_valid[i0] and state[k, 0] != 0:
                    state[k, 0] = 0
            else:
                for q in range(o, out_off[k + 1]):
                    flags[q] = False if fire0 else (flags[q] or (out_valid[q] and out_ready[q]))
            if k == last and out_valid[o] and out_ready[o]:
                if hold and held[count] != t:
                    return LATE, t, count
                done[count] = t
                count += 1
        for k in range(n):
            i0 = in_off[k]
            if in_off[k + 1] > i0 and source[i0] < 0 and in_valid[i0] and in_ready[i0]:
                sent += 1
        t += 1
        if moved:
            idle, kept = 0, False
            continue
        idle += 1
        if idle > stall_limit:
            return DEADLOCK, t, count
        # Nothing moved. If the state is also what it was after the last clock and the input
        # offers what it will offer from now on, every later clock is this one again: a deadlock,
        # reported as the run would have after ``stall_limit`` idle clocks, without running them.
        if kept and (sent >= arrivals.shape[0] or offering) and np.array_equal(state, last_state) \
                and np.array_equal(ring, last_ring) and np.array_equal(flags, last_flags):
            return DEADLOCK, t + stall_limit + 1 - idle, count
        last_state[:], last_ring[:], last_flags[:] = state, ring, flags
        kept = True
    return OK, t, count


@njit(cache=True, inline="always")
def _line_tick(p, s, ring, r0, in_fire, out_valid, out_ready):  # pragma: no cover - compiled
    """:meth:`hwnorm.clocked.LineBufferModel.tick` (the reader then the writer)."""
    h, w, kh, kw, sy, sx, py, px, oh, ow, cf_n, rows, taps_inner, registered = \
        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13]
    rebase = 0
    limit = (s[8] if s[8] > 0 else 0) + rows  # the rows the writer may fill, as the reader starts this clock
    advance = out_ready if registered else (not out_valid or out_ready)
    if advance:
        iy, ix = s[8] + s[5], s[9] + s[6]
        padded = iy < 0 or iy >= h or ix < 0 or ix >= w
        wrow, wcol, wcf, cf = s[0], s[1], s[2], s[7]
        written = wrow > iy or (wrow == iy and (wcol > ix or (wcol == ix and wcf > cf)))
        token = False
        if padded or written:
            last_tap = s[5] == kh - 1 and s[6] == kw - 1
            token = last_tap if taps_inner else True
            # the reader's next beat (LineBufferModel._next_read)
            inner_done = last_tap and cf == cf_n - 1
            if taps_inner:
                if last_tap:
                    s[5], s[6] = 0, 0
                    s[7] = 0 if cf == cf_n - 1 else cf + 1
                elif s[6] == kw - 1:
                    s[6], s[5] = 0, s[5] + 1
                else:
                    s[6] += 1
            elif cf < cf_n - 1:
                s[7] = cf + 1
            else:
                s[7] = 0
                if s[6] < kw - 1:
                    s[6] += 1
                else:
                    s[6], s[5] = 0, (0 if s[5] == kh - 1 else s[5] + 1)
            if inner_done:
                if s[4] < ow - 1:
                    s[4], s[9] = s[4] + 1, s[9] + sx
                else:
                    s[4], s[9] = 0, -px
                    if s[3] < oh - 1:
                        s[3], s[8] = s[3] + 1, s[8] + sy
                    else:
                        s[3], s[8] = 0, -py
                        rebase = h
        d = p[14]
        base = (s[10] + d - 1) % d
        ring[r0 + base] = token
        s[10] = base
    next_row = 0
    if in_fire:
        if s[2] < cf_n - 1:
            s[2] += 1
        else:
            s[2] = 0
            if s[1] < w - 1:
                s[1] += 1
            else:
                s[1], next_row = 0, 1
    s[0] += next_row - rebase
    s[11] = limit - rebase  # the writer sees it a clock later
