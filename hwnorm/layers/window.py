"""Layer kind ``window``: the sliding-window input generator of a convolution (FINN's
ConvolutionInputGenerator).

It turns an ``H × W × C`` feature map into ``OH · OW`` vectors of ``kh · kw · C`` elements, one per
output pixel, in the window order ``(ky, kx, c)`` (:mod:`hwnorm.layers.spatial`); the ``mvu``
after it computes the convolution as ``OH · OW`` matrix-vector products with the same weights.
Padding reads ``pad_value``, the stored code of the real value 0 (the quantizer's zero point);
bipolar maps have no code for 0, so a padded window over ±1 values is refused by the importer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnorm.blocks import Block, CalibrationPoint
from hwnorm.datatypes import BIPOLAR
from hwnorm.folding import Fold
from hwnorm.layers.registry import register
from hwnorm.layers.base import Bits, Layer, LayerBlock, as_int_batch
from hwnorm.layers.spatial import Geometry, LineBufferBlock, MapLayer, im2col, im2col_bits

__all__ = ["SlidingWindow", "WindowBlock", "map_batch", "rows_of"]


def map_batch(name: str, x, shape: tuple) -> tuple[np.ndarray, bool]:
    """Rows of pixels (B·H·W, C) — integers, or packed bits — as maps (B, H, W, C), or
    (B, H, W, ⌈C/64⌉) words and True for bits."""
    h, w, c = shape
    if isinstance(x, Bits):
        if x.n != c:
            raise ValueError(f"{name}: expects packed bits of {c} channels")
        values, bits = x.words, True
    else:
        values, bits = as_int_batch(name, x, c), False
    if len(values) % (h * w):
        raise ValueError(f"{name}: {len(values)} pixels are not whole {h}×{w} maps")
    return values.reshape(-1, h, w, values.shape[1]), bits


def rows_of(values: np.ndarray, bits: bool, channels: int):
    """Output rows as the next layer takes them: packed words as bits, or integers (of the input's dtype)."""
    return Bits(values, channels) if bits else values


@register
@dataclass(frozen=True, eq=False)
class SlidingWindow(MapLayer, Layer):
    """Windows of ``geometry`` over an ``map_shape = (H, W, C)`` map of ``element`` values in
    ``[lo, hi]`` (bits 0 / 1 when bipolar); padding reads ``pad_value``."""

    map_shape: tuple
    geometry: Geometry
    element: object = BIPOLAR
    lo: int = 0
    hi: int = 1
    pad_value: int = 0
    name: str = "window"

    kind = "window"
    folding_keys = ("simd",)
    channel_label = "window element"
    # bit maps (CNV_MNIST_1W1A) and 2- and 8-bit maps (CNV_MNIST_2W2A), one to 32 channels per beat
    calibration_points = tuple(
        CalibrationPoint(f"cal_window_{tag}_{layer.removeprefix('node_').lower()}_s{simd}",
                         {"model": model, "layer": layer, "simd": simd})
        for model, tag, layers in (
            ("CNV_MNIST_1W1A", "1w1a", {"node_Conv_149_window": [1], "node_Conv_150_window": [1, 4, 16],
                                        "node_Conv_153_window": [2, 32]}),
            ("CNV_MNIST_2W2A", "2w2a", {"node_Conv_149_window": [1], "node_Conv_150_window": [2, 8],
                                        "node_Conv_153_window": [16]}))
        for layer, simds in layers.items() for simd in simds)

    def __post_init__(self):
        self.check_map()
        if self.geometry.padded and self.element.is_bipolar:
            raise ValueError(f"{self.name}: a bipolar (±1) map has no value 0 to pad with")
        if self.geometry.padded and not self.element_range[0] <= self.pad_value <= self.element_range[1]:
            raise ValueError(f"{self.name}: pad value {self.pad_value} is not a {self.element} value")

    @property
    def out_shape(self) -> tuple:
        g = self.geometry
        return (g.out_height, g.out_width, g.taps * self.map_shape[2])

    @property
    def out_range(self) -> tuple[int, int]:
        if not self.geometry.padded:
            return self.lo, self.hi
        return min(self.lo, self.pad_value), max(self.hi, self.pad_value)

    # ---- golden model
    def run(self, x):
        maps, bits = map_batch(self.name, x, self.map_shape)
        if bits:
            return rows_of(im2col_bits(maps, self.map_shape[2], self.geometry), bits, self.out_features)
        from hwnorm.intmm import operand_dtype  # the windows repeat every value kh·kw times: keep them narrow
        maps = maps.astype(operand_dtype(*self.out_range), copy=False)
        return rows_of(im2col(maps, self.geometry, self.pad_value), bits, self.out_features)

    # ---- JSON (the shared fields: MapLayer)
    def spec_fields(self) -> dict:
        return {**super().spec_fields(), "pad_value": self.pad_value}

    json_fields = {**MapLayer.json_fields, "pad_value": (int,)}

    @classmethod
    def from_dict(cls, d: dict) -> "SlidingWindow":
        return cls(**cls.map_fields(d), pad_value=d["pad_value"])

    # ---- energy: every element written into the line buffer once, read once per window it is in
    def energy_actions(self, fold: dict) -> dict:
        return self.block(fold).buffer_actions()


class WindowBlock(LayerBlock, LineBufferBlock, Block):
    """A :class:`SlidingWindow` with ``simd`` channels per beat: one map in, ``OH·OW`` windows of
    ``kh·kw·C/SIMD`` beats out (:mod:`hwnorm.hdl.window`)."""

    kind = SlidingWindow.kind
    cost_features = {SlidingWindow.kind: LineBufferBlock.LINE_BUFFER_FEATURES}

    @property
    def pad_value(self) -> int:
        return self.layer.pad_value

    @property
    def simd(self) -> int:
        return self.lanes

    @property
    def fold(self) -> Fold:
        return Fold(simd=self.simd)

    def component(self):
        from hwnorm.hdl.window import SlidingWindowUnit  # Amaranth: loaded when hardware is built
        return SlidingWindowUnit(self)


SlidingWindow.block_class = WindowBlock
