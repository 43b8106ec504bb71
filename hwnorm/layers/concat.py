"""Layer kind ``concat``: several streams of one map (or vector) side by side along the channels
(a U-Net's skip connection, an Inception block's join).

Per pixel, the channels of input 0, then those of input 1, … — the codes as they are: the
importer joins only tensors of one scale and zero point, so a code means the same in every input.
Hardware (:class:`hwnorm.hdl.add.ConcatUnit`): per pixel, the beats of input 0, then input 1, …,
each taken as its turn comes (the others wait), into one output register::

    i0.payload  x₀[c₀] ─┐
    i1.payload  x₁[c₁] ─┼─►  o.payload  [x₀ | x₁ | …]   (per pixel)
    …                  ─┘
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnorm.blocks import CARRY_FEATURES, FF_FEATURES, Block, CalibrationPoint, Inventory
from hwnorm.datatypes import IntType, counter_bits, element_type
from hwnorm.layers.base import CALIBRATION_MODEL, InPort, Layer, LayerBlock, as_int_batch, check_fold, check_spatial, divisors, spatial_of
from hwnorm.layers.registry import register

__all__ = ["Concat", "ConcatBlock"]


@register
@dataclass(frozen=True, eq=False)
class Concat(Layer):
    """Input ``k`` has ``channels[k]`` channels of ``elements[k]`` codes in ``ranges[k]``, per
    pixel of ``spatial`` (``()`` for vectors)."""

    channels: tuple
    elements: tuple
    ranges: tuple
    spatial: tuple = ()
    name: str = "concat"

    kind = "concat"
    # the calibration model's skip connection (two 8-channel 4-bit maps, 12×12: a data file of its
    # own, tests/models/make_calibration_models.py; no vendored example has a concat)
    calibration_points = tuple(
        CalibrationPoint(f"cal_concat_p{pe}", {"model": CALIBRATION_MODEL, "layer": "node_cat", "pe": pe})
        for pe in (1, 2, 4, 8))

    def __post_init__(self):
        object.__setattr__(self, "spatial", check_spatial(self.name, self.spatial))
        n = len(self.channels)
        if n < 2 or len(self.elements) != n or len(self.ranges) != n:
            raise ValueError(f"{self.name}: a concat joins two or more inputs, each with channels, element and range")
        for k, (c, e, (lo, hi)) in enumerate(zip(self.channels, self.elements, self.ranges)):
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1:
                raise ValueError(f"{self.name}: input {k} must have a whole number ≥ 1 of channels, got {c!r}")
            if not isinstance(e, IntType) or not e.min <= lo <= hi <= e.max:
                raise ValueError(f"{self.name}: input {k}'s range [{lo}, {hi}] is not inside {e}")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "ranges", tuple((int(lo), int(hi)) for lo, hi in self.ranges))

    # ---- tensors
    @property
    def in_shape(self) -> tuple:
        return (*self.spatial, sum(self.channels))

    out_shape = in_shape

    @property
    def in_features(self) -> int:
        return sum(self.channels)

    out_features = in_features

    def in_ports(self) -> tuple:
        return tuple(InPort(f"{self.name} (input {k})", (*self.spatial, c), e, r)
                     for k, (c, e, r) in enumerate(zip(self.channels, self.elements, self.ranges)))

    @property
    def out_range(self) -> tuple[int, int]:
        return min(lo for lo, _ in self.ranges), max(hi for _, hi in self.ranges)

    @property
    def out_type(self) -> IntType:
        return IntType.from_range(*self.out_range)

    in_type = out_type  # (each input's own: in_ports)

    @property
    def in_range(self) -> tuple[int, int]:
        return self.out_range

    def tensors(self) -> dict:
        return {"in_shape": list(self.in_shape), "out_shape": list(self.out_shape), "out_type": self.out_type.name}

    # ---- golden model
    def run(self, *xs):
        if len(xs) != len(self.channels):
            raise ValueError(f"{self.name}: joins {len(self.channels)} streams, got {len(xs)}")
        parts = []
        for k, (x, c, (lo, hi)) in enumerate(zip(xs, self.channels, self.ranges)):
            x = as_int_batch(self.name, x, c)
            if x.size and (x.min() < lo or x.max() > hi):
                raise ValueError(f"{self.name}: input {k} outside its declared range [{lo}, {hi}]")
            parts.append(x.astype(np.int64, copy=False))
        return np.concatenate(parts, axis=1)

    # ---- JSON
    def spec_fields(self) -> dict:
        return {"channels": list(self.channels), "elements": [e.name for e in self.elements],
                "ranges": [list(r) for r in self.ranges]}

    json_fields = {"name": (str,), "in_shape": (list,), "channels": (list,), "elements": (list,), "ranges": (list,)}

    @classmethod
    def from_dict(cls, d: dict) -> "Concat":
        ranges = d["ranges"]
        if not all(isinstance(r, list) and len(r) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                for v in r) for r in ranges):
            raise ValueError("ranges must be [lo, hi] pairs of whole numbers")
        return cls(tuple(d["channels"]), tuple(element_type(e) for e in d["elements"]),
                   tuple(tuple(r) for r in ranges), spatial_of(d), d["name"])

    # ---- folding: PE channels per beat, dividing every input's channels
    def foldings(self) -> list[dict]:
        return [{"pe": d} for d in divisors(min(self.channels)) if all(c % d == 0 for c in self.channels)]

    def auto_fold(self, prev_lanes, next_layer) -> dict:
        return max(self.foldings(), key=lambda f: f["pe"] if f["pe"] <= (prev_lanes or 64) else 0)

    def block(self, fold: dict) -> "ConcatBlock":
        fold = self.parse_fold(fold)
        return ConcatBlock(self, fold.get("pe", 1))

    def energy_actions(self, fold: dict) -> dict:
        return {"register_toggles": self.in_features * self.out_type.width}


class ConcatBlock(LayerBlock, Block):
    """A :class:`Concat` with ``pe`` channels per beat: per pixel, ``c₀/PE`` beats of input 0,
    then ``c₁/PE`` of input 1, … — one beat per clock into the output register."""

    kind = Concat.kind
    cost_features = {Concat.kind: {"lut": ("blocks", "mux", "adder"), "ff": FF_FEATURES, "carry": CARRY_FEATURES}}
    depth = 1

    def __init__(self, layer: Concat, pe: int = 1):
        for k, c in enumerate(layer.channels):
            check_fold(layer.name, "PE", pe, c, f"channels of input {k}")
        self.pe, self.layer, self.name = pe, layer, layer.name
        self.in_type = self.out_type = layer.out_type
        self.port_types = tuple(layer.elements)
        self.in_ports = len(layer.channels)
        self.in_lanes = self.out_lanes = pe
        self.in_beats = self.out_beats = layer.in_features // pe

    @property
    def part_beats(self) -> tuple:
        """Beats of each input per pixel."""
        return tuple(c // self.pe for c in self.layer.channels)

    def _turns(self, arrivals: list[list[int]]) -> list[list[int]]:
        """The clock each input beat is taken: in turn, one per clock, no earlier than offered."""
        taken, t, parts = [[] for _ in arrivals], -1, self.part_beats
        pixels = min(len(a) // n for a, n in zip(arrivals, parts))
        for p in range(pixels):
            for k, n in enumerate(parts):
                for j in range(n):
                    t = max(t + 1, arrivals[k][p * n + j])
                    taken[k].append(t)
        return taken

    def accepts_ports(self, arrivals: list[list[int]]) -> list[list[int]]:
        return self._turns(arrivals)

    def schedule_ports(self, arrivals: list[list[int]]) -> list[list[int]]:
        return [sorted(t + self.depth for times in self._turns(arrivals) for t in times)]

    def schedule(self, arrivals: list[int]) -> list[int]:
        """Every input's beats offered from ``arrivals`` (each beat of the pixel at its own clock)."""
        parts, out, k = self.part_beats, [], 0
        per_pixel = sum(parts)
        split = [[] for _ in parts]
        for p in range(len(arrivals) // per_pixel):
            for i, n in enumerate(parts):
                split[i] += arrivals[k:k + n]
                k += n
        return self.schedule_ports(split)[0]

    def inventory(self) -> Inventory:
        bits = self.pe * self.out_type.width
        return Inventory(mux=bits * (len(self.layer.channels) - 1), register=bits + 2 * counter_bits(self.in_beats) + 2,
                         adder=2 * counter_bits(self.in_beats))

    def component(self):
        from hwnorm.hdl.add import ConcatUnit  # Amaranth: loaded when hardware is built
        return ConcatUnit(self)
