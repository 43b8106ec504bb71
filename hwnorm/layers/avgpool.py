"""Layer kind ``avgpool``: the sum over each window of a channels-last map of codes, per channel.

Codes ``q`` stand for ``(q − z)·s``; the average of a window of ``N`` pixels is
``s/N · Σ(q − z)``. The layer outputs the exact integer ``Σ(q − z)``; the division by ``N`` and
the scale fold into the quantizer that follows (QONNX ``Trunc`` or ``Quant``), which becomes a
``thresholding`` (or ``qbn``) layer over the sum — accumulate, then threshold, with no divider.
``GlobalAveragePool`` / ``ReduceMean`` over H and W is the window of the whole map.

Windows are unpadded: ONNX averages a padded window over its pixels alone
(``count_include_pad = 0``), a divisor that changes at the border.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwnorm.blocks import Block, Inventory
from hwnorm.datatypes import IntType
from hwnorm.layers.base import Layer, LayerBlock
from hwnorm.layers.registry import register
from hwnorm.layers.spatial import Geometry, LineBufferBlock, MapLayer
from hwnorm.layers.window import map_batch

__all__ = ["AvgPool", "AvgPoolBlock", "window_sums"]


def window_sums(maps: np.ndarray, g: Geometry) -> np.ndarray:
    """Σ over each (unpadded) window of a batch of maps (B, H, W, C) → (B·OH·OW, C), int64."""
    kh, kw = g.kernel
    sh, sw = g.stride
    view = np.lib.stride_tricks.sliding_window_view(maps, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
    return view.sum(axis=(-2, -1), dtype=np.int64).reshape(-1, maps.shape[3])


@register
@dataclass(frozen=True, eq=False)
class AvgPool(MapLayer, Layer):
    """Window sums ``Σ(q − zero)`` of ``geometry`` over a ``map_shape = (H, W, C)`` map of
    ``element`` codes in ``[lo, hi]`` (module docstring)."""

    map_shape: tuple
    geometry: Geometry
    element: object = IntType(8, False)
    lo: int = 0
    hi: int = 255
    zero: int = 0
    name: str = "avgpool"

    kind = "avgpool"
    folding_keys = ("pe",)

    def __post_init__(self):
        self.check_map()
        if self.element.is_bipolar:
            raise ValueError(f"{self.name}: averages integer codes, not ±1 bits")
        if self.geometry.padded:
            raise ValueError(f"{self.name}: padded windows are not supported (ONNX divides a padded window by its "
                             "pixels alone, a divisor that changes at the border)")
        if isinstance(self.zero, bool) or not isinstance(self.zero, (int, np.integer)):
            raise ValueError(f"{self.name}: zero must be a whole number, got {self.zero!r}")
        object.__setattr__(self, "zero", int(self.zero))

    @property
    def out_shape(self) -> tuple:
        return (self.geometry.out_height, self.geometry.out_width, self.map_shape[2])

    @property
    def out_range(self) -> tuple[int, int]:
        n = self.geometry.taps
        return n * (self.lo - self.zero), n * (self.hi - self.zero)

    @property
    def out_type(self) -> IntType:
        return IntType.from_range(*self.out_range)

    # ---- golden model
    def run(self, x):
        maps, _ = map_batch(self.name, x, self.map_shape)
        if maps.size and (maps.min() < self.lo or maps.max() > self.hi):
            raise ValueError(f"{self.name}: input outside its declared range [{self.lo}, {self.hi}]")
        sums = window_sums(maps, self.geometry)
        return sums - self.geometry.taps * self.zero if self.zero else sums

    # ---- JSON (the shared fields: MapLayer)
    def spec_fields(self) -> dict:
        return {**super().spec_fields(), "zero": self.zero}

    json_fields = {**MapLayer.json_fields, "zero": (int,)}

    @classmethod
    def from_dict(cls, d: dict) -> "AvgPool":
        return cls(**cls.map_fields(d), zero=d["zero"])

    # ---- energy: the line buffer's writes and reads, one addition per window element
    def energy_actions(self, fold: dict) -> dict:
        oh, ow, c = self.out_shape
        return {**self.block(fold).buffer_actions(), f"add_{self.out_type.width}b": oh * ow * c * self.geometry.taps}


class AvgPoolBlock(LayerBlock, LineBufferBlock, Block):
    """An :class:`AvgPool` with ``pe`` channels per beat: the line buffer's cycle model (as a
    max-pool's, one beat per window and channel fold) and a running sum per lane
    (:class:`hwnorm.hdl.window.AvgPoolUnit`)."""

    kind = AvgPool.kind
    taps_inner = True
    cost_features = {AvgPool.kind: LineBufferBlock.LINE_BUFFER_FEATURES}

    def __init__(self, layer: AvgPool, lanes: int):
        super().__init__(layer, lanes)
        self.out_type = layer.out_type

    def inventory(self) -> Inventory:
        bits = self.lanes * self.out_type.width
        inv = super().inventory()
        return replace(inv, adder=inv.adder + bits, register=inv.register + bits)

    @property
    def pe(self) -> int:
        return self.lanes

    @property
    def pad_value(self) -> int:
        return self.layer.zero

    def component(self):
        from hwnorm.hdl.window import AvgPoolUnit  # Amaranth: loaded when hardware is built
        return AvgPoolUnit(self)


AvgPool.block_class = AvgPoolBlock
