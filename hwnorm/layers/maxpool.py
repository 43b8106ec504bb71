"""Layer kind ``maxpool``: the maximum over each window of a channels-last feature map, per channel.

Values are stored codes; a quantizer's codes rise with the real value (positive scale), so the
maximum of the codes is the code of the maximum. Bipolar maps store +1 as bit 1, so max is OR.
Padding is ignored (ONNX pads a max-pool with −∞): every window holds at least one pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwnorm.blocks import Block
from hwnorm.datatypes import BIPOLAR, element_type
from hwnorm.layers import register
from hwnorm.layers.base import MAX_AUTO_LANES, Layer, LayerBlock, divisors, largest_divisor
from hwnorm.layers.spatial import Geometry, LineBufferBlock, maxpool
from hwnorm.spec import content_hash
from hwnorm.layers.window import map_batch, map_shape_of, rows_of

__all__ = ["MaxPool", "MaxPoolBlock"]


@register
@dataclass(frozen=True, eq=False)
class MaxPool(Layer):
    """Max-pool of ``geometry`` over a ``map_shape = (H, W, C)`` map of ``element`` values in ``[lo, hi]``."""

    map_shape: tuple
    geometry: Geometry
    element: object = BIPOLAR
    lo: int = 0
    hi: int = 1
    name: str = "maxpool"

    kind = "maxpool"
    folding_keys = ("pe",)

    def __post_init__(self):
        h, w, _ = self.map_shape
        g = self.geometry
        if (g.height, g.width) != (h, w):
            raise ValueError(f"{self.name}: geometry of a {g.height}×{g.width} map for a {h}×{w} input")
        t_lo, t_hi = (0, 1) if self.element.is_bipolar else self.element.range
        if not t_lo <= self.lo <= self.hi <= t_hi:
            raise ValueError(f"{self.name}: range [{self.lo}, {self.hi}] is not inside {self.element}")

    # ---- tensors
    @property
    def in_shape(self) -> tuple:
        return tuple(self.map_shape)

    @property
    def out_shape(self) -> tuple:
        return (self.geometry.out_height, self.geometry.out_width, self.map_shape[2])

    @property
    def in_features(self) -> int:
        return self.map_shape[2]

    out_features = in_features

    @property
    def unit_vectors(self) -> int:
        return self.map_shape[0] * self.map_shape[1]

    in_type = property(lambda self: self.element)
    out_type = in_type

    @property
    def in_range(self) -> tuple[int, int]:
        return self.lo, self.hi

    out_range = in_range

    # ---- golden model
    def run(self, x):
        maps, bits = map_batch(self.name, x, self.map_shape)
        return rows_of(maxpool(maps, self.geometry), bits, self.out_features)

    # ---- JSON
    def spec_fields(self) -> dict:
        return {**self.geometry.to_dict(), "element": self.element.name, "range": [self.lo, self.hi]}

    json_fields = {"name": (str,), "in_shape": (list,), "kernel": (list,), "stride": (list,), "pads": (list,),
                   "element": (str,), "range": (list,)}

    @classmethod
    def from_dict(cls, d: dict) -> "MaxPool":
        shape = map_shape_of(d)
        lo, hi = d["range"]
        return cls(shape, Geometry.from_dict(d, shape[0], shape[1]), element_type(d["element"]), int(lo), int(hi),
                   d["name"])


    # ---- folding: PE: channels per beat, dividing C
    def foldings(self) -> list[dict]:
        return [{"pe": d} for d in divisors(self.map_shape[2])]

    def auto_fold(self, prev_lanes, next_layer) -> dict:
        """As wide as the producer's beats (no lane converter in front), at most MAX_AUTO_LANES."""
        return {"pe": largest_divisor(self.map_shape[2], prev_lanes or MAX_AUTO_LANES)}

    def block(self, fold: dict) -> "MaxPoolBlock":
        self.check_fold_keys(fold)
        return MaxPoolBlock(self, fold.get("pe", 1))

    def describe(self, block) -> dict:
        return {"layer": self.name, "pe": block.lanes, "spec_hash": content_hash(self.to_dict()),
                "map": list(self.map_shape), **self.geometry.to_dict()}

    # ---- summaries
    def summary(self) -> dict:
        return {**super().summary(), "window": self.geometry.describe(), "map": "×".join(map(str, self.map_shape))}

    # ---- energy: the line buffer's writes and reads, one comparison per window element (OR for bits)
    def energy_actions(self, fold: dict) -> dict:
        oh, ow, c = self.out_shape
        return {**self.block(fold).buffer_actions(), "comparator_bits": oh * ow * c * self.geometry.taps * self.element.width}


class MaxPoolBlock(LayerBlock, LineBufferBlock, Block):
    """A :class:`MaxPool` with ``pe`` channels per beat: one map in, ``OH·OW·C/PE`` beats out
    (:mod:`hwnorm.hdl.window`)."""

    kind = MaxPool.kind
    taps_inner = True
    fold_key = "pe"

    @property
    def pad_value(self) -> int:
        """The least value of the element type: padding never wins the maximum."""
        return 0 if self.in_type.is_bipolar else self.in_type.range[0]

    @property
    def pe(self) -> int:
        return self.lanes

    def component(self):
        from hwnorm.hdl.window import MaxPoolUnit
        return MaxPoolUnit(self)
