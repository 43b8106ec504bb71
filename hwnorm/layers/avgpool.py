"""Layer kind ``avgpool``: the sum over each window of a channels-last map of codes, per channel.

Codes ``q`` stand for ``(q − z)·s``; the average of a window of ``N`` pixels is
``s/N · Σ(q − z)``. The layer outputs the exact integer ``Σ(q − z)``; the division by ``N`` and
the scale fold into the quantizer that follows (QONNX ``Trunc`` or ``Quant``), which becomes a
``thresholding`` (or ``qbn``) layer over the sum — accumulate, then threshold, with no divider.
``GlobalAveragePool`` / ``ReduceMean`` over H and W is the window of the whole map.

Windows are unpadded: ONNX averages a padded window over its pixels alone
(``count_include_pad = 0``), a divisor that changes at the border.

Hardware: a window over the whole map (a global pool) needs no line buffer — running sums per
channel over the pixel stream as it comes (:class:`GlobalSumBlock`), never stalling its producer;
a smaller window slides over a line buffer as a max-pool does (:class:`AvgPoolBlock`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwnorm.blocks import CARRY_FEATURES, FF_FEATURES, Block, CalibrationPoint, Inventory, last_beats_out
from hwnorm.datatypes import IntType, counter_bits
from hwnorm.folding import Fold
from hwnorm.layers.base import CALIBRATION_MODEL, Layer, LayerBlock, check_fold
from hwnorm.layers.registry import register
from hwnorm.layers.spatial import Geometry, LineBufferBlock, MapLayer
from hwnorm.layers.window import map_batch

__all__ = ["AvgPool", "AvgPoolBlock", "GlobalSumBlock", "window_sums"]


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
    # the vendored MobileNet-style model's global pool (32 channels of 4-bit codes), and the
    # calibration model's windowed one (2×2 / 2 over a 12×12 map of 16 channels: a line buffer)
    calibration_points = tuple(
        CalibrationPoint(f"cal_avgpool_global_p{pe}", {"model": "MOBILENET_MNIST_W4A4", "layer": "node_mean", "pe": pe})
        for pe in (2, 8, 32)) + tuple(
        CalibrationPoint(f"cal_avgpool_window_p{pe}", {"model": CALIBRATION_MODEL, "layer": "node_avg_pool2d", "pe": pe})
        for pe in (1, 4, 16))

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
    def is_global(self) -> bool:
        """One window covering the whole map (GlobalAveragePool, ReduceMean over H and W)."""
        return self.geometry.kernel == tuple(self.map_shape[:2])

    def block(self, fold: dict):
        if not self.is_global:
            return super().block(fold)
        fold = self.parse_fold(fold)
        return GlobalSumBlock(self, fold.get("pe", 1))

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

    # ---- energy: the line buffer's writes and reads (none for a global pool), one addition per
    # window element
    def energy_actions(self, fold: dict) -> dict:
        oh, ow, c = self.out_shape
        block = self.block(fold)
        buffer = {} if self.is_global else block.buffer_actions()
        return {**buffer, f"add_{self.out_type.width}b": oh * ow * c * self.geometry.taps}


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


class GlobalSumBlock(LayerBlock, Block):
    """A global :class:`AvgPool` with ``pe`` channels per beat: running sums of ``q − z`` per
    channel over the map's pixel stream, in a delay line of ``C / PE`` entries (one per channel
    group, as the depthwise unit keeps its partial sums). It takes a beat every clock, always;
    the last pixel's beats leave as sums, one clock later (:class:`hwnorm.hdl.window.GlobalSumUnit`)::

        pixel beat (group g) ─► + sum[g] (0 at the first pixel) ─► delay line [C/PE] ─┐
                                       ▲───────────────────────────────────────────────┘
                                       └─► last pixel: output register ─► y
    """

    kind = AvgPool.kind
    cost_key = "global_sum"  # built from other logic than the line-buffer pool: its costs are fitted apart
    cost_features = {"global_sum": {"lut": ("blocks", "adder", "register"), "ff": FF_FEATURES,
                                    "carry": CARRY_FEATURES}}
    depth = 1

    def __init__(self, layer: AvgPool, pe: int):
        h, w, c = layer.map_shape
        self.lanes = self.pe = check_fold(layer.name, "PE", pe, c, "channels")
        self.layer, self.name = layer, layer.name
        self.groups = c // pe
        self.in_type, self.out_type = layer.element, layer.out_type
        self.in_lanes = self.out_lanes = pe
        self.in_beats, self.out_beats = h * w * self.groups, self.groups

    @property
    def fold(self) -> Fold:
        return Fold(pe=self.pe)

    @property
    def initiation_interval(self) -> int:
        return self.in_beats

    def schedule(self, arrivals: list[int]) -> list[int]:
        return last_beats_out(arrivals, self.in_beats, self.groups, self.depth)

    def inventory(self) -> Inventory:
        bits = self.pe * self.out_type.width
        return Inventory(adder=bits + counter_bits(self.in_beats),
                         register=self.groups * bits + bits + counter_bits(self.in_beats) + counter_bits(self.groups) + 2)

    def component(self):
        from hwnorm.hdl.window import GlobalSumUnit  # Amaranth: loaded when hardware is built
        return GlobalSumUnit(self)
