"""Layer kind ``qbn``: the exact quantized batch-norm of a :class:`hwnorm.qbn.BNSpec` on integers.

Per channel ``c``: ``q = fit(R((mult[c]·x + bias[c]) >> shift[c]))``. Hardware: ``PE`` channels
per beat (beat ``g`` carries channels ``g·PE … g·PE + PE − 1``), three register stages, one
beat per clock::

            ┌── ROM[group] ──┐ (mult, bias[, shift] per lane; the group counter addresses it)
    x ──►  reg  ──►  × mult + bias  ──►  reg  ──►  >> shift, round, saturate/wrap  ──►  reg ──► q
         stage 0           stage 1                         stage 2

Widths come from the spec: the product register is ``spec.acc_bits`` wide, which holds every
value the declared input range can reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnorm.blocks import BeatPipeline, Inventory, MemoryUse
from hwnorm.datatypes import IntType, counter_bits
from hwnorm.fixed import Overflow
from hwnorm.layers import register
from hwnorm.layers.base import ElementwiseLayer, LayerBlock, as_int_batch, check_fold, check_spatial, spatial_of
from hwnorm.qbn import BNSpec

__all__ = ["QuantBN", "QBNBlock"]


@register
@dataclass(frozen=True, eq=False)
class QuantBN(ElementwiseLayer):
    """An exact quantized BN (:class:`hwnorm.qbn.BNSpec`) on integer activations."""

    spec: BNSpec
    name: str = "qbn"
    spatial: tuple = ()

    kind = "qbn"

    def __post_init__(self):
        object.__setattr__(self, "spatial", check_spatial(self.name, self.spatial))

    # ---- tensors
    @property
    def in_shape(self) -> tuple:
        return (*self.spatial, self.spec.channels)

    out_shape = in_shape

    @property
    def in_type(self) -> IntType:
        return self.spec.in_fmt.int_type

    @property
    def in_range(self) -> tuple[int, int]:
        return self.spec.in_lo, self.spec.in_hi  # exactness is proven on this range only

    @property
    def out_type(self) -> IntType:
        return self.spec.out_fmt.int_type

    @property
    def out_range(self) -> tuple[int, int]:
        return self.spec.out_range  # saturation may be narrower than the format (narrow or ReLU quantizers)

    # ---- golden model
    def run(self, x):
        x = as_int_batch(self.name, x, self.in_features)
        return self.spec.apply(x).astype(np.int64)

    # ---- JSON
    def spec_fields(self) -> dict:
        return {"spec": self.spec.to_dict()}

    json_fields = {"name": (str,), "spec": (dict,)}

    @classmethod
    def from_dict(cls, d: dict) -> "QuantBN":
        return cls(BNSpec.from_dict(d["spec"]), d["name"], spatial_of(d))

    # ---- hardware
    def block(self, fold: dict) -> "QBNBlock":
        self.check_fold_keys(fold)
        return QBNBlock(self, fold.get("pe", 1))

    def describe(self, block) -> dict:
        s = self.spec
        return {"layer": self.name, "pe": block.pe, "spec_hash": s.spec_hash, "channels": s.channels,
                "rounding": str(s.rounding), "overflow": str(s.overflow), "shift": s.shift.tolist(),
                "acc_bits": s.acc_bits}

    def summary(self) -> dict:
        s = self.spec
        return {**super().summary(), "shift": s.shared_shift, "mult_bits": s.mult_bits, "out_bits": s.out_fmt.width}

    # ---- energy
    def energy_actions(self, fold: dict) -> dict:
        s = self.spec
        return {f"mult_{max(s.mult_bits, s.in_fmt.width)}b": s.channels, f"add_{s.acc_bits}b": s.channels}


class QBNBlock(LayerBlock, BeatPipeline):
    """A :class:`QuantBN` with ``pe`` channels per beat (module docstring)."""

    kind = QuantBN.kind
    depth = 3

    def __init__(self, layer: QuantBN, pe: int = 1):
        self.pe = check_fold(layer.name, "PE", pe, layer.in_features, "channels")
        self.layer, self.spec, self.name = layer, layer.spec, layer.name
        self.groups = layer.in_features // pe
        self.in_type, self.out_type = layer.in_type, layer.out_type
        self.in_lanes = self.out_lanes = pe
        self.in_beats = self.out_beats = self.groups

    def constant_types(self) -> dict:
        """The per-lane ROM fields and their types: multiplier, bias, and the shift when it is
        not shared (a shared shift is wiring)."""
        spec = self.spec
        fields = {"mult": IntType.from_range(int(spec.mult.min()), int(spec.mult.max())),
                  "bias": IntType.from_range(int(spec.bias.min()), int(spec.bias.max()))}
        if spec.shared_shift is None:
            fields["shift"] = self.shift_type
        return fields

    @property
    def shift_type(self) -> IntType:
        return IntType.from_range(0, int(self.spec.shift.max()))

    def constant_rows(self) -> list:
        """ROM rows: one per channel group, one {field: value} per lane."""
        spec, fields = self.spec, self.constant_types()
        return [[{name: int(getattr(spec, name)[g * self.pe + lane]) for name in fields}
                 for lane in range(self.pe)] for g in range(self.groups)]

    def inventory(self) -> Inventory:
        spec, lanes = self.spec, self.pe
        field_bits = {name: t.width for name, t in self.constant_types().items()}
        in_w, out_w = self.in_type.width, self.out_type.width
        shift_w = field_bits.get("shift", 0)
        q_bits = spec.acc_bits - int(spec.shift.min())  # bits left after the shift
        return Inventory(
            adder=lanes * (spec.acc_bits + q_bits) + counter_bits(self.groups),  # bias add, rounding increment
            compare=lanes * 2 * q_bits if spec.overflow == Overflow.SATURATE else 0,
            mux=lanes * (out_w + spec.acc_bits * shift_w),                         # saturation; variable shifter
            register=lanes * (in_w + spec.acc_bits + out_w + shift_w) + counter_bits(self.groups) + 3,
            memories=(MemoryUse("rom", lanes * sum(field_bits.values()), self.groups),) if self.groups > 1 else (),
            multipliers=((in_w, field_bits["mult"]),) * lanes)

    def component(self):
        from hwnorm.hdl.bn import BNRequant
        return BNRequant(self)
