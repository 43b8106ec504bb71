"""``BNRequant``: the quantized batch-norm datapath of a :class:`hwnorm.qbn.BNSpec` in hardware.

Per channel ``c``: ``q = fit(R((mult[c]·x + bias[c]) >> shift[c]))``, ``lanes`` channels per beat,
channels in stream order (beat ``g`` carries channels ``g·lanes … g·lanes + lanes − 1``)::

    i.payload  x[lanes]   lane l at bits [l·W_in, (l+1)·W_in)     W_in  = in_fmt.width
    o.payload  q[lanes]   lane l at bits [l·W_out, (l+1)·W_out)   W_out = out_fmt.width

            ┌── ROM[group] ──┐ (mult, bias[, shift] per lane; the group counter addresses it)
    x ──►  reg  ──►  × mult + bias  ──►  reg  ──►  >> shift, round, saturate/wrap  ──►  reg ──► q
         stage 0           stage 1                         stage 2

Latency 3, initiation interval 1 (one beat per clock). Widths come from the spec: the product
register is ``spec.acc_bits`` wide, which holds every value the declared input range can reach
(inputs outside ``[in_lo, in_hi]`` are outside the spec's proof and give unspecified results).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwnorm.fixed import Overflow
from hwnorm.hdl.common import (BeatPipeline, Inventory, MemoryUse, advance_signal, bits, fit_range, fit_wrap,
                               range_shape, rom, round_shift, unused_ok)
from hwnorm.qbn import BNSpec

__all__ = ["BNRequant"]


def _fmt_shape(fmt):
    return signed(fmt.width) if fmt.signed else unsigned(fmt.width)


class BNRequant(BeatPipeline, wiring.Component):
    """Pipelined per-channel requantizer (multiply, add bias, rounding shift, saturate)."""

    latency = 3  # per beat; a vector is channels / lanes beats at one per clock

    def __init__(self, spec: BNSpec, lanes: int = 1):
        if not isinstance(lanes, int) or lanes < 1 or spec.channels % lanes:
            unused_ok(self)
            raise ValueError(f"{spec.name}: lanes must be a positive divisor of its {spec.channels} channels, "
                             f"got {lanes!r}")
        self.spec, self.lanes = spec, lanes
        self.in_shape, self.out_shape = _fmt_shape(spec.in_fmt), _fmt_shape(spec.out_fmt)
        super().__init__({"i": In(stream.Signature(data.ArrayLayout(self.in_shape, lanes))),
                          "o": Out(stream.Signature(data.ArrayLayout(self.out_shape, lanes)))})

    @property
    def groups(self) -> int:
        return self.spec.channels // self.lanes

    def _constants(self):
        """ROM layout and rows: one row per channel group, one struct per lane."""
        spec = self.spec
        fields = {"mult": range_shape(int(spec.mult.min()), int(spec.mult.max())),
                  "bias": range_shape(int(spec.bias.min()), int(spec.bias.max()))}
        if spec.shared_shift is None:
            fields["shift"] = range_shape(0, int(spec.shift.max()))
        layout = data.ArrayLayout(data.StructLayout(fields), self.lanes)
        rows = [[{name: int(getattr(spec, name)[g * self.lanes + lane]) for name in fields}
                 for lane in range(self.lanes)] for g in range(self.groups)]
        return layout, rows

    def inventory(self) -> Inventory:
        spec, lanes = self.spec, self.lanes
        layout, _ = self._constants()
        field_bits = {name: f.width for name, f in layout.elem_shape}
        in_w, out_w = self.in_shape.width, self.out_shape.width
        shift_w = field_bits.get("shift", 0)
        q_bits = spec.acc_bits - int(spec.shift.min())  # bits left after the shift
        return Inventory(
            adder=lanes * (spec.acc_bits + q_bits) + bits(self.groups),  # bias add, rounding increment
            compare=lanes * 2 * q_bits if spec.overflow == Overflow.SATURATE else 0,
            mux=lanes * (out_w + spec.acc_bits * shift_w),                 # saturation; variable shifter
            register=lanes * (in_w + spec.acc_bits + out_w + shift_w) + bits(self.groups) + 3,
            memories=(MemoryUse("rom", lanes * sum(field_bits.values()), self.groups),) if self.groups > 1 else (),
            multipliers=((in_w, field_bits["mult"]),) * lanes)

    def elaborate(self, platform):
        spec, m = self.spec, Module()
        advance = advance_signal(m, self.o)
        m.d.comb += self.i.ready.eq(advance)

        group = Signal(range(max(self.groups, 2)))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += group.eq(0 if self.groups == 1 else (group + 1) % self.groups)
        layout, rows = self._constants()
        consts = rom(m, "constants", layout, rows, advance, group)

        x1 = Signal(self.i.payload.shape())
        v1, v2 = Signal(), Signal()
        acc = [Signal(signed(spec.acc_bits), name=f"acc{lane}") for lane in range(self.lanes)]
        shift2 = [Signal(range_shape(0, int(spec.shift.max())), name=f"shift{lane}") for lane in range(self.lanes)]
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
                q = fit_range(r, spec.out_fmt.min_int, spec.out_fmt.max_int)
            else:
                q = fit_wrap(r, self.out_shape)
            m.d.comb += result[lane].eq(q)
        return m
