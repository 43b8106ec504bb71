"""Layer kind ``maxpool``: the maximum over each window of a channels-last feature map, per channel.

Values are stored codes; a quantizer's codes rise with the real value (positive scale), so the
maximum of the codes is the code of the maximum. Bipolar maps store +1 as bit 1, so max is OR.
Padding is ignored (ONNX pads a max-pool with −∞): every window holds at least one pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hwnorm.blocks import Block, CalibrationPoint, Inventory
from hwnorm.datatypes import BIPOLAR
from hwnorm.layers.registry import register
from hwnorm.layers.base import Layer, LayerBlock
from hwnorm.layers.spatial import Geometry, LineBufferBlock, MapLayer, maxpool, maxpool_bits
from hwnorm.layers.window import map_batch, rows_of

__all__ = ["MaxPool", "MaxPoolBlock"]


@register
@dataclass(frozen=True, eq=False)
class MaxPool(MapLayer, Layer):
    """Max-pool of ``geometry`` over a ``map_shape = (H, W, C)`` map of ``element`` values in ``[lo, hi]``."""

    map_shape: tuple
    geometry: Geometry
    element: object = BIPOLAR
    lo: int = 0
    hi: int = 1
    name: str = "maxpool"

    kind = "maxpool"
    folding_keys = ("pe",)
    # bit maps (CNV_MNIST_1W1A: the maximum is an OR) and 2-bit maps (CNV_MNIST_2W2A: comparators)
    calibration_points = tuple(
        CalibrationPoint(f"cal_maxpool_{tag}_{layer.removeprefix('node_').lower()}_p{pe}",
                         {"model": model, "layer": layer, "pe": pe})
        for model, tag, layers in (
            ("CNV_MNIST_1W1A", "1w1a", {"node_max_pool2d": [1, 4, 16], "node_max_pool2d_1": [2, 32]}),
            ("CNV_MNIST_2W2A", "2w2a", {"node_max_pool2d": [2, 8], "node_max_pool2d_1": [4, 32]}))
        for layer, pes in layers.items() for pe in pes)

    def __post_init__(self):
        self.check_map()

    @property
    def out_shape(self) -> tuple:
        return (self.geometry.out_height, self.geometry.out_width, self.map_shape[2])

    out_range = MapLayer.in_range

    # ---- golden model
    def run(self, x):
        maps, bits = map_batch(self.name, x, self.map_shape)
        return rows_of((maxpool_bits if bits else maxpool)(maps, self.geometry), bits, self.out_features)

    @classmethod
    def from_dict(cls, d: dict) -> "MaxPool":
        return cls(**cls.map_fields(d))

    # ---- energy: the line buffer's writes and reads, one comparison per window element (OR for bits)
    def energy_actions(self, fold: dict) -> dict:
        oh, ow, c = self.out_shape
        compares = oh * ow * c * self.geometry.taps * self.element.width
        return {**self.block(fold).buffer_actions(), "comparator_bits": compares}


class MaxPoolBlock(LayerBlock, LineBufferBlock, Block):
    """A :class:`MaxPool` with ``pe`` channels per beat: one map in, ``OH·OW·C/PE`` beats out
    (:mod:`hwnorm.hdl.window`)."""

    kind = MaxPool.kind
    taps_inner = True
    cost_features = {MaxPool.kind: LineBufferBlock.LINE_BUFFER_FEATURES}

    def inventory(self) -> Inventory:
        """The line buffer's, and a running maximum per lane: a comparator, a multiplexer and a
        register of the element's width."""
        bits = self.lanes * self.in_type.width
        inv = super().inventory()
        return replace(inv, compare=inv.compare + bits, mux=inv.mux + bits, register=inv.register + bits)

    @property
    def pad_value(self) -> int:
        """The least value of the element type: padding never wins the maximum."""
        return 0 if self.in_type.is_bipolar else self.in_type.range[0]

    @property
    def pe(self) -> int:
        return self.lanes

    def component(self):
        from hwnorm.hdl.window import MaxPoolUnit  # Amaranth: loaded when hardware is built
        return MaxPoolUnit(self)


MaxPool.block_class = MaxPoolBlock
