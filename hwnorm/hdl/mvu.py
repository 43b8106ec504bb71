"""``MVU`` (matrix-vector-threshold unit) and ``Thresholding``: the binary layers of the IR in hardware.

``MVU`` runs one :class:`hwnorm.ir.MVTU` spec folded FINN-style: ``PE`` output rows and ``SIMD``
input columns per clock, so one input vector takes ``SF · NF`` clocks (``SF = K / SIMD`` synapse
folds, ``NF = rows / PE`` neuron folds)::

    i.payload  x[SIMD]    element s of beat sf is column sf·SIMD + s   (1 bit: 1 ↔ +1, 0 ↔ −1;
                                                                          or in_bits-wide integers)
    o.payload  y[PE]      element p of beat nf is row nf·PE + p        (threshold count + out_base,
                                                                          or the raw accumulator)

                 ┌────────── weights ROM [nf·SF + sf] : PE × SIMD bits ──────────┐
    x ──► input buffer (SF beats, written during nf = 0, replayed for nf > 0) ──► PE lanes:
          XNOR + popcount tree (binary) or ±x adder tree (integer × binary) ──► accumulate over sf
          ──► (last sf) acc = 2·popcount − K  ──► thresholds ROM [nf] : count of acc ≥ Tᵢ ──► y
       stage 0: issue            stage 1: multiply-accumulate            stage 2: threshold

The input stream is read only during the first neuron fold (``i.ready`` is low while the buffer is
replayed). Accumulators, thresholds and outputs take their widths from the spec. Weights and
thresholds live in ROMs initialized from the spec. Full valid/ready back-pressure (stall-all).

Cycle model, one vector at full rate: ``initiation_interval = SF · NF``; output beat ``nf`` is
valid 3 clocks after the last issue of fold ``nf``; ``latency`` (first input beat accepted → last
output beat valid) is ``SF · NF + 2``.

``Thresholding`` is the elementwise multi-threshold of the network input (:class:`hwnorm.ir.InputThreshold`)
with ``PE`` channels per beat: two stages, ``latency`` 2, one beat per clock.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwnorm import bnn
from hwnorm.bnn import ThresholdSpec
from hwnorm.hdl.common import (BeatPipeline, Inventory, MemoryUse, advance_signal, bits, range_shape, rom, tree_sum,
                               unused_ok)
from hwnorm.ir import MVTU, InputThreshold

__all__ = ["MVU", "Thresholding", "divisors", "check_fold"]


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def check_fold(name: str, what: str, value, n: int, dimension: str) -> int:
    """``value`` must divide ``n``; otherwise a clear error listing the allowed values."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or n % value:
        allowed = divisors(n)
        shown = ", ".join(map(str, allowed)) if len(allowed) <= 24 else \
            ", ".join(map(str, allowed[:12])) + ", …, " + ", ".join(map(str, allowed[-4:]))
        raise ValueError(f"{name}: {what}={value!r} must divide its {n} {dimension}; allowed: {shown}")
    return value


def _element_shape(bits: int, is_signed: bool):
    return signed(bits) if is_signed else unsigned(bits)


def threshold_shapes(t: ThresholdSpec):
    """(threshold element shape, output element shape) of a threshold spec."""
    return range_shape(t.acc_lo, t.acc_hi + 1), range_shape(t.out_base, t.out_base + t.n_thresholds)


def count_at_least(value, thresholds: list, out_base: int):
    """``out_base + #{i : value ≥ thresholds[i]}`` — the spec's compare rule, one comparator each."""
    return out_base + tree_sum([value >= t for t in thresholds])


def compare_bits(t: ThresholdSpec, lanes: int) -> int:
    """Comparator operand bits of ``lanes`` channels of a threshold spec. Thresholds read from a
    ROM cost their full width; a constant threshold ``T = m·2^z`` only its top bits
    (``x ≥ T ⇔ x >> z ≥ m``), so a binarizing ``x ≥ 128`` on 8-bit pixels is one wire."""
    width = Shape.cast(threshold_shapes(t)[0]).width
    rows = _threshold_rows(t, lanes)
    if not constant_rows(rows):
        return lanes * t.n_thresholds * width
    low = (1 << width) - 1
    return sum(width - _trailing_zeros(int(v) & low, width) for lane in rows[0] for v in lane)


def constant_rows(rows: list) -> bool:
    """A ROM whose rows are all equal is a constant to synthesis (no memory, constant compares)."""
    return all(row == rows[0] for row in rows)


def _trailing_zeros(v: int, width: int) -> int:
    return width if v == 0 else (v & -v).bit_length() - 1


def _threshold_rows(t: ThresholdSpec, lanes: int) -> list:
    """Per beat ``g``: for each lane the thresholds of channel ``g·lanes + lane``."""
    thr = t.thresholds.tolist()
    return [[thr[g * lanes + lane] for lane in range(lanes)] for g in range(t.channels // lanes)]


class MVU(wiring.Component):
    """FINN-style folded matrix-vector(-threshold) unit for one MVTU spec (module docstring)."""

    def __init__(self, layer: MVTU, pe: int = 1, simd: int = 1):
        try:
            self.pe = check_fold(layer.name, "PE", pe, layer.out_features, "output rows")
            self.simd = check_fold(layer.name, "SIMD", simd, layer.in_features, "input columns")
        except ValueError:
            unused_ok(self)
            raise
        self.layer = layer
        self.sf, self.nf = layer.in_features // simd, layer.out_features // pe
        self.in_shape = _element_shape(layer.in_bits, layer.in_signed and layer.in_bits > 1)
        t = layer.thresholds
        self.out_shape = signed(layer.acc_bits) if t is None else threshold_shapes(t)[1]
        super().__init__({"i": In(stream.Signature(data.ArrayLayout(self.in_shape, simd))),
                          "o": Out(stream.Signature(data.ArrayLayout(self.out_shape, pe)))})

    # ---- cycle model (read by the network top and the estimators)
    depth = 3  # issue → multiply-accumulate → threshold → output register

    @property
    def initiation_interval(self) -> int:
        return self.sf * self.nf

    @property
    def in_beats(self) -> int:
        return self.sf

    @property
    def out_beats(self) -> int:
        return self.nf

    @property
    def latency(self) -> int:
        return self.sf * self.nf + self.depth - 1

    def schedule(self, arrivals: list[int]) -> list[int]:
        """Output-valid cycles for input beats valid from ``arrivals`` (output always ready)."""
        out, t = [], -1
        for v in range(len(arrivals) // self.sf):
            for nf in range(self.nf):
                for sf in range(self.sf):
                    t = max(t + 1, arrivals[v * self.sf + sf]) if nf == 0 else t + 1
                out.append(t + self.depth)
        return out

    @property
    def raw_shape(self):
        """The running sum over synapse folds: a popcount (0..K) for binary inputs, else the
        signed accumulator."""
        layer = self.layer
        return unsigned(layer.in_features.bit_length()) if layer.in_bits == 1 else signed(layer.acc_bits)

    # ---- resource model (hwnorm.estimate.resources costs it per FPGA target)
    def inventory(self) -> Inventory:
        layer, pe, simd, sf, nf = self.layer, self.pe, self.simd, self.sf, self.nf
        x_bits = simd * layer.in_bits
        binary = layer.in_bits == 1
        raw_bits = self.raw_shape.width
        out_bits = pe * Shape.cast(self.out_shape).width
        t = layer.thresholds
        thr_bits = 0 if t is None else t.n_thresholds * Shape.cast(threshold_shapes(t)[0]).width
        mems = [MemoryUse("rom", pe * simd, sf * nf)] if sf * nf > 1 else []
        if t is not None and not constant_rows(_threshold_rows(t, pe)):
            mems.append(MemoryUse("rom", pe * thr_bits, nf))
        if nf > 1 and sf > 1:
            mems.append(MemoryUse("ram", x_bits, sf))
        counters = bits(sf) + bits(nf) + bits(sf * nf)
        return Inventory(
            popcount=pe * simd if binary else 0,
            adder=pe * (raw_bits + layer.acc_bits) + (0 if binary else pe * simd * (layer.in_bits + 1)) + counters,
            compare=0 if t is None else compare_bits(t, pe),
            mux=x_bits if nf > 1 else 0,
            register=x_bits * (2 if nf > 1 and sf == 1 else 1) + pe * (raw_bits + layer.acc_bits) + out_bits
            + counters + bits(nf) + 6,
            memories=tuple(mems))

    # ---- constants from the spec
    def _weight_rows(self) -> list[int]:
        w = bnn.unpack_bits(self.layer.weights, self.layer.in_features)  # (rows, K) of 0 / 1
        rows = []
        for nf in range(self.nf):
            for sf in range(self.sf):
                block = w[nf * self.pe:(nf + 1) * self.pe, sf * self.simd:(sf + 1) * self.simd]
                rows.append(sum(int(b) << k for k, b in enumerate(block.reshape(-1))))
        return rows

    def elaborate(self, platform):
        layer, m = self.layer, Module()
        pe, simd, sf_n, nf_n = self.pe, self.simd, self.sf, self.nf
        advance = advance_signal(m, self.o)

        # ---- stage 0: issue (fold counters, memory addresses, input buffer write)
        sf = Signal(range(max(sf_n, 2)))
        nf = Signal(range(max(nf_n, 2)))
        waddr = Signal(range(max(sf_n * nf_n, 2)))
        fresh = nf == 0  # first neuron fold: the vector comes from the stream
        fire = Signal()
        m.d.comb += [self.i.ready.eq(advance & fresh), fire.eq(advance & (self.i.valid | ~fresh))]
        with m.If(fire):
            m.d.sync += [sf.eq(0 if sf_n == 1 else (sf + 1) % sf_n),
                         waddr.eq(0 if sf_n * nf_n == 1 else (waddr + 1) % (sf_n * nf_n))]
            with m.If(sf == sf_n - 1):
                m.d.sync += nf.eq(0 if nf_n == 1 else (nf + 1) % nf_n)
        weights = rom(m, "weights", unsigned(pe * simd), self._weight_rows(), advance, waddr)
        x1 = Signal(self.i.payload.shape())
        fresh1 = Signal()
        if nf_n > 1 and sf_n > 1:
            buf = Memory(shape=self.i.payload.shape(), depth=sf_n, init=[])
            m.submodules.input_buffer = buf
            wp, rp = buf.write_port(), buf.read_port(domain="sync")
            m.d.comb += [wp.addr.eq(sf), wp.data.eq(self.i.payload), wp.en.eq(fire & fresh),
                         rp.addr.eq(sf), rp.en.eq(advance)]
            replay = rp.data.as_value()
        elif nf_n > 1:  # one beat per vector: a register is the whole buffer
            held = Signal(self.i.payload.shape())
            with m.If(fire & fresh):
                m.d.sync += held.eq(self.i.payload)
            replay = held.as_value()
        if nf_n > 1:
            x_in = Signal(self.i.payload.shape())
            m.d.comb += x_in.eq(Mux(fresh1, x1.as_value(), replay))
        else:
            x_in = x1
        v1, first1, last1 = Signal(), Signal(), Signal()
        nf1 = Signal.like(nf)
        with m.If(advance):
            m.d.sync += [v1.eq(fire), x1.eq(self.i.payload), fresh1.eq(fresh), first1.eq(sf == 0),
                         last1.eq(sf == sf_n - 1), nf1.eq(nf)]

        # ---- stage 1: multiply-accumulate per PE lane
        binary = layer.in_bits == 1
        k = layer.in_features
        raw_shape = self.raw_shape
        v2 = Signal()
        acc2 = [Signal(signed(layer.acc_bits), name=f"acc{p}") for p in range(pe)]
        for p in range(pe):
            w = weights[p * simd:(p + 1) * simd]
            if binary:
                xnor = ~(x_in.as_value() ^ w)
                partial = tree_sum([xnor[s] for s in range(simd)])
            else:
                partial = tree_sum([_plus_or_minus(w[s], x_in[s]) for s in range(simd)])
            raw = Signal(raw_shape, name=f"raw{p}")
            total = Signal(raw_shape, name=f"total{p}")
            m.d.comb += total.eq(partial + Mux(first1, 0, raw))
            with m.If(advance & v1):
                m.d.sync += raw.eq(total)
            with m.If(advance):
                m.d.sync += acc2[p].eq(2 * total - k if binary else total)
        with m.If(advance):
            m.d.sync += v2.eq(v1 & last1)

        # ---- stage 2: thresholds (or the raw accumulator) into the output register
        result = Signal(self.o.payload.shape())
        t = layer.thresholds
        if t is None:
            for p in range(pe):
                m.d.comb += result[p].eq(acc2[p])
        else:
            thr_shape, _ = threshold_shapes(t)
            layout = data.ArrayLayout(data.ArrayLayout(thr_shape, t.n_thresholds), pe)
            thr = rom(m, "thresholds", layout, _threshold_rows(t, pe), advance, nf1)
            for p in range(pe):
                m.d.comb += result[p].eq(count_at_least(acc2[p], [thr[p][i] for i in range(t.n_thresholds)],
                                                        t.out_base))
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(v2), self.o.payload.eq(result)]
        return m


def _plus_or_minus(bit, x):
    """``x`` for weight bit 1 (+1), ``−x`` for weight bit 0 (−1)."""
    return Mux(bit, x, -x)


class Thresholding(BeatPipeline, wiring.Component):
    """Elementwise multi-threshold of an :class:`~hwnorm.ir.InputThreshold` spec, ``pe`` channels per beat.

    ::

        i.payload  x[PE]   in_bits-wide input elements (channel g·PE + lane of beat g)
        o.payload  y[PE]   out_base + #{i : x ≥ Tᵢ}  (1 bit for a binarizing threshold)
    """

    latency = 2  # per beat; a vector is channels / PE beats at one per clock

    def __init__(self, layer: InputThreshold, pe: int = 1):
        try:
            self.pe = check_fold(layer.name, "PE", pe, layer.in_features, "channels")
        except ValueError:
            unused_ok(self)
            raise
        self.layer = layer
        self.groups = layer.in_features // pe
        self.in_shape = _element_shape(layer.in_bits, layer.in_signed)
        self.out_shape = threshold_shapes(layer.thresholds)[1]
        super().__init__({"i": In(stream.Signature(data.ArrayLayout(self.in_shape, pe))),
                          "o": Out(stream.Signature(data.ArrayLayout(self.out_shape, pe)))})

    def inventory(self) -> Inventory:
        t, pe = self.layer.thresholds, self.pe
        thr_bits = t.n_thresholds * Shape.cast(threshold_shapes(t)[0]).width
        in_bits = pe * Shape.cast(self.in_shape).width
        out_bits = pe * Shape.cast(self.out_shape).width
        return Inventory(adder=bits(self.groups), compare=compare_bits(t, pe),
                         register=in_bits + out_bits + bits(self.groups) + 2,
                         memories=() if constant_rows(_threshold_rows(t, pe)) else
                         (MemoryUse("rom", pe * thr_bits, self.groups),))

    def elaborate(self, platform):
        t, pe, m = self.layer.thresholds, self.pe, Module()
        advance = advance_signal(m, self.o)
        m.d.comb += self.i.ready.eq(advance)
        group = Signal(range(max(self.groups, 2)))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += group.eq(0 if self.groups == 1 else (group + 1) % self.groups)
        thr_shape, _ = threshold_shapes(t)
        layout = data.ArrayLayout(data.ArrayLayout(thr_shape, t.n_thresholds), pe)
        thr = rom(m, "thresholds", layout, _threshold_rows(t, pe), advance, group)
        x1, v1 = Signal(self.i.payload.shape()), Signal()
        result = Signal(self.o.payload.shape())
        for p in range(pe):
            m.d.comb += result[p].eq(count_at_least(x1[p], [thr[p][i] for i in range(t.n_thresholds)], t.out_base))
        with m.If(advance):
            m.d.sync += [x1.eq(self.i.payload), v1.eq(self.i.valid), self.o.valid.eq(v1), self.o.payload.eq(result)]
        return m

