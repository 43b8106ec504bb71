"""Layer kind ``window``: the sliding-window input generator of a convolution (FINN's
ConvolutionInputGenerator).

It turns an ``H × W × C`` feature map into ``OH · OW`` vectors of ``kh · kw · C`` elements, one per
output pixel, in the window order ``(ky, kx, c)`` (:mod:`hwnorm.layers.spatial`); the ``mvu``
after it computes the convolution as ``OH · OW`` matrix-vector products with the same weights.
Padding reads ``pad_value``, the stored code of the real value 0 (the quantizer's zero point);
bipolar maps have no code for 0, so a padded window over ±1 values is refused by the importer.

Two blocks, by the folding's ``simd``:

- ``simd`` dividing ``C`` (:class:`WindowBlock`): a line buffer read one beat of ``simd``
  channels per clock, ``kh·kw·C/simd`` beats per window;
- ``simd = kh·kw·C``, the whole window (:class:`ParallelWindowBlock`, FINN's parallel-window
  mode): one pixel in per clock, and the window it completes out in one beat — a 3-channel first
  layer no longer takes ``kh·kw`` clocks per pixel. Unpadded windows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnorm.blocks import CARRY_FEATURES, FF_FEATURES, Block, CalibrationPoint, Inventory, MemoryUse, one_per_clock
from hwnorm.datatypes import BIPOLAR, counter_bits
from hwnorm.estimate.resources import goes_to_block_ram
from hwnorm.estimate.synthesis import TARGETS
from hwnorm.folding import Fold
from hwnorm.layers.registry import register
from hwnorm.layers.base import Bits, Layer, LayerBlock, as_int_batch
from hwnorm.layers.spatial import Geometry, LineBufferBlock, MapLayer, im2col, im2col_bits

__all__ = ["SlidingWindow", "WindowBlock", "ParallelWindowBlock", "map_batch", "rows_of"]


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
        for layer, simds in layers.items() for simd in simds) + tuple(
        # whole windows per beat: 8-bit pixels of 1 and 3 channels, bit maps of 16 to 256 channels
        CalibrationPoint(f"cal_window_par_{tag}", {"model": model, "layer": layer, "simd": simd})
        for tag, model, layer, simd in (
            ("mnist_c1", "CNV_MNIST_2W2A", "node_Conv_149_window", 9),
            ("mnist_2w2a_c16", "CNV_MNIST_2W2A", "node_Conv_150_window", 144),
            ("mnist_c32", "CNV_MNIST_1W1A", "node_Conv_153_window", 288),
            ("cifar_c3", "CNV_CIFAR_1W1A", "conv_features_1_Conv_window", 27),
            ("cifar_c64", "CNV_CIFAR_1W1A", "conv_features_4_Conv_window", 576),
            ("cifar_c256", "CNV_CIFAR_1W1A", "conv_features_18_Conv_window", 2304)))

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

    # ---- folding: channels per beat (a divisor of C), or the whole window where it can be built
    def foldings(self) -> list[dict]:
        whole = self.geometry.taps * self.map_shape[2]
        return super().foldings() + ([{"simd": whole}] if self.whole_window_refusal() == "" and
                                     self.geometry.taps > 1 else [])

    def whole_window_refusal(self) -> str:
        """Why this window cannot be emitted whole per beat ("" : it can)."""
        if self.geometry.padded:
            return "a padded window (its padding would need beats of its own)"
        if self.map_shape[1] < 3:
            return f"a map {self.map_shape[1]} pixel(s) wide (its column store needs 3)"
        return ""

    def block(self, fold: dict):
        fold = self.parse_fold(fold)
        simd, c = fold.get("simd", 1), self.map_shape[2]
        if simd == self.geometry.taps * c and self.geometry.taps > 1:
            why = self.whole_window_refusal()
            if why:
                raise ValueError(f"{self.name}: SIMD={simd} (the whole {self.geometry.kernel[0]}×"
                                 f"{self.geometry.kernel[1]}×{c} window per beat) cannot be built for {why}; "
                                 f"allowed: a divisor of its {c} channels")
            return ParallelWindowBlock(self)
        return super().block(fold)

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


class ParallelWindowBlock(LayerBlock, Block):
    """A :class:`SlidingWindow` emitting whole windows (:mod:`hwnorm.hdl.window`,
    ``ParallelWindowUnit``): one pixel of ``C`` lanes in per clock, raster order; each pixel
    that completes a window (unpadded: from row ``kh − 1`` and column ``kw − 1`` on, on the
    stride) sends that window out, ``kh·kw·C`` lanes in the window order ``(ky, kx, c)``. A
    stall-all pipeline of :attr:`depth` stages; a column store of ``W`` words holds each
    column's last ``kh − 1`` pixels::

        pixel (y, x) ─┬─► column store[x]: rows y−kh+1 … y−1 ─┐
                      └──────────────────────────────────────┴─► column (kh pixels) ─► window
                        written back to [x]: rows y−kh+2 … y          (shifted left, column at kx = kw−1)

    The window register is the output register; a pixel that completes no window moves it
    without making a beat."""

    kind = SlidingWindow.kind
    cost_key = "window_parallel"
    cost_features = {cost_key: {"lut": ("blocks", "adder", "compare", "ram_bits", "ram_width"), "ff": FF_FEATURES,
                                "carry": CARRY_FEATURES}}

    def __init__(self, layer: SlidingWindow):
        h, w, c = layer.map_shape
        g = layer.geometry
        self.layer, self.name, self.geometry = layer, layer.name, g
        self.in_type = self.out_type = layer.element
        self.in_lanes, self.out_lanes = c, g.taps * c
        self.in_beats, self.out_beats = h * w, g.out_height * g.out_width

    @property
    def simd(self) -> int:
        return self.out_lanes

    lanes = simd

    @property
    def fold(self) -> Fold:
        return Fold(simd=self.simd)

    @property
    def pixel_bits(self) -> int:
        return self.in_lanes * self.in_type.width

    @property
    def store_width(self) -> int:
        """Bits of a column store word: a column's ``kh − 1`` older pixels."""
        return (self.geometry.kernel[0] - 1) * self.pixel_bits

    @property
    def store_ranks(self) -> int:
        """Registers on the column store's read data before it meets the window: one when the
        store is a block RAM whose data and a LUT do not fit a stage (it becomes the RAM's output
        register, :meth:`hwnorm.timing.Timing.memory_ranks`). A column's word is then written
        back two clocks after it is read, which a map at least 3 pixels wide leaves room for."""
        if not self.store_width:
            return 0
        in_block_ram = self.timing.on and goes_to_block_ram("ram", self.store_width, self.geometry.width,
                                                            TARGETS[self.timing.target])
        return self.timing.memory_ranks(in_block_ram, self.timing.model.luts(1))

    @property
    def depth(self) -> int:
        """The pixel's register (and the store's read register), the store's ranks, the window."""
        return 2 + self.store_ranks

    def emit_issues(self) -> list[int]:
        """The pixels of a map (raster index) that complete a window."""
        g = self.geometry
        kh, kw = g.kernel
        sh, sw = g.stride
        return [(kh - 1 + oy * sh) * g.width + kw - 1 + ox * sw for oy in range(g.out_height)
                for ox in range(g.out_width)]

    def schedule(self, arrivals: list[int]) -> list[int]:
        """One pixel taken per clock; a window out ``depth`` clocks after the pixel completing it."""
        out = np.asarray(one_per_clock(arrivals, self.depth), dtype=np.int64)
        per_map = self.in_beats
        emits = np.zeros(per_map, bool)
        emits[self.emit_issues()] = True
        return out[emits[np.arange(out.size) % per_map]].tolist()

    def buffer_actions(self) -> dict:
        """Per image: each pixel read from and written to the column store (its older pixels), the
        window's registers loaded once per pixel."""
        bits = self.store_width
        return {f"ram_access_{bits * self.geometry.width}b": 2 * self.in_beats * bits} if bits else {}

    def inventory(self) -> Inventory:
        g = self.geometry
        counters = counter_bits(g.width) + counter_bits(g.height)
        ranks = self.store_ranks
        return Inventory(adder=counters, compare=counters + 2,
                         register=g.taps * self.pixel_bits + (1 + ranks) * (self.pixel_bits + counter_bits(g.width) + 2)
                         + ranks * self.store_width + counters + 1,
                         memories=(MemoryUse("ram", self.store_width, g.width),) if self.store_width else ())

    def component(self):
        from hwnorm.hdl.window import ParallelWindowUnit  # Amaranth: loaded when hardware is built
        return ParallelWindowUnit(self)


SlidingWindow.block_class = WindowBlock
