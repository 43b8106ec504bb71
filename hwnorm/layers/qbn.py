"""Layer kind ``qbn``: the exact quantized batch-norm of a :class:`hwnorm.bnspec.BNSpec` on integers.

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

from hwnorm.blocks import FF_FEATURES, BeatPipeline, CalibrationPoint, Inventory, MemoryUse, tree_register_bits
from hwnorm.datatypes import IntType, counter_bits
from hwnorm.fixed import Overflow
from hwnorm.layers.registry import register
from hwnorm.layers.base import ElementwiseLayer, LayerBlock, as_int_batch, check_fold, check_spatial, spatial_of
from hwnorm.bnspec import BNSpec

__all__ = ["QuantBN", "QBNBlock"]


@register
@dataclass(frozen=True, eq=False)
class QuantBN(ElementwiseLayer):
    """An exact quantized BN (:class:`hwnorm.bnspec.BNSpec`) on integer activations."""

    spec: BNSpec
    name: str = "qbn"
    spatial: tuple = ()

    kind = "qbn"
    # score BNs (wide multipliers, few channels); the narrow requantizers of 64 channels are
    # measured but not fitted: one linear model cannot share their logic with the score BNs
    calibration_points = (
        *(CalibrationPoint(f"cal_qbn_p{pe}", {"model": "TFC_1W1A", "layer": "scores", "pe": pe}) for pe in (1, 5, 10)),
        *(CalibrationPoint(f"cal_2w2a_requant_p{pe}", {"model": "TFC_2W2A", "layer": "Quant_25", "pe": pe,
                                                       "activations": "requant"},
                           held_out="a 2-bit requantizer: logic the score BNs' fit cannot share")
          for pe in (1, 4, 16)))

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
        fold = self.parse_fold(fold)
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
    cost_features = {"qbn": {"lut": ("blocks", "mult_bits", "adder", "compare", "mux", "rom_luts"), "ff": FF_FEATURES,
                             "carry": ("blocks", "adder", "compare", "mult_bits")}}

    @property
    def depth(self) -> int:
        """Input register, multiply-add, round-saturate, plus the target clock's ranks."""
        return 3 + self.constant_ranks + self.product_ranks + len(self.requant_cuts)

    @property
    def constant_ranks(self) -> int:
        """Registers the constants ROM's read data (and the input beside it) passes before the
        multiply."""
        return self.timing.memory_ranks(self.groups > 1, self.timing.model.multiply(*self.product_operands))

    @property
    def product_operands(self) -> tuple[int, int]:
        """(input bits, multiplier bits) of a lane's product."""
        return self.in_type.width, self.constant_types()["mult"].width

    @property
    def lut_multiply(self) -> bool:
        """The product is an adder tree of partial products (one per bit of the input), pipelined
        at :attr:`product_cuts`, when even a hard multiplier alone does not fit one stage (ECP5's
        MULT18X18D without its registers, which Yosys does not infer, at 150 MHz)."""
        return self.timing.on and not self.timing.fits(self.timing.model.multiply(*self.product_operands))

    @property
    def product_cuts(self) -> tuple[int, ...]:
        """Register ranks inside the partial-product tree (:attr:`lut_multiply`); its root is
        registered as the product."""
        if not self.lut_multiply:
            return ()
        a, b = self.product_operands
        return self.timing.adder_tree_cuts(a, b)

    @property
    def product_ranks(self) -> int:
        """Registers between the multiply and the bias add: none (one stage, or no target clock),
        one after a hard multiplier, or the partial-product tree's ranks and its root."""
        m, spec = self.timing.model, self.spec
        if self.lut_multiply:
            return len(self.product_cuts) + 1
        return int(not self.timing.fits(m.multiply(*self.product_operands), m.adder(spec.acc_bits)))

    @property
    def requant_cuts(self) -> tuple[int, ...]:
        """Register ranks of the requantize stage for the target clock: the chain is the rounding
        add (cut 0 registers the rounded value), then with saturation the two range compares
        (cut 1 registers them beside the value) and the clamping mux."""
        m, spec = self.timing.model, self.spec
        q_bits = spec.acc_bits - int(spec.shift.min())
        chain = [m.adder(q_bits) + m.luts(1)]
        if spec.overflow == Overflow.SATURATE:
            chain += [m.compare(q_bits), m.luts(1)]
        return self.timing.cuts(chain)

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

    def pipeline_register_bits(self) -> int:
        """Flip-flops the target clock adds (hwnorm.timing), per lane: the registered constants and
        input, the product with the bias and shift beside it (or the partial-product tree's ranks),
        the rounded value and compares; and the valid bit of each rank."""
        spec, types = self.spec, self.constant_types()
        field_bits = sum(t.width for t in types.values())
        a, b = self.product_operands
        per_lane = ((field_bits + a) * self.constant_ranks
                    + (a + field_bits) * self.product_ranks  # the product (or the tree's root), bias, shift
                    + tree_register_bits(a, b, self.product_cuts)
                    + (spec.acc_bits - int(spec.shift.min()) + 2) * len(self.requant_cuts))
        return self.pe * per_lane + self.depth - 3

    def inventory(self) -> Inventory:
        spec, lanes = self.spec, self.pe
        field_bits = {name: t.width for name, t in self.constant_types().items()}
        in_w, out_w = self.in_type.width, self.out_type.width
        shift_w = field_bits.get("shift", 0)
        q_bits = spec.acc_bits - int(spec.shift.min())  # bits left after the shift
        a, b = self.product_operands
        tree = lanes * a * (a + b) if self.lut_multiply else 0   # partial products: an and-gate row and an adder each
        return Inventory(
            adder=lanes * (spec.acc_bits + q_bits) + counter_bits(self.groups) + tree,  # bias add, rounding increment
            compare=lanes * 2 * q_bits if spec.overflow == Overflow.SATURATE else 0,
            mux=lanes * (out_w + spec.acc_bits * shift_w) + tree,                  # saturation; variable shifter
            register=lanes * (in_w + spec.acc_bits + out_w + shift_w) + counter_bits(self.groups) + 3
            + self.pipeline_register_bits(),
            memories=(MemoryUse("rom", lanes * sum(field_bits.values()), self.groups),) if self.groups > 1 else (),
            multipliers=() if self.lut_multiply else ((in_w, field_bits["mult"]),) * lanes)

    def component(self):
        from hwnorm.hdl.bn import BNRequant  # Amaranth: loaded when hardware is built
        return BNRequant(self)
