"""Layer kind ``add``: the element-wise sum of two quantized streams (a residual block's join).

The two inputs carry codes ``q₀``, ``q₁`` of the same shape whose real values are
``(qᵢ − zᵢ)·sᵢ``. With integer multipliers ``m₀ / m₁ = s₀ / s₁`` (exactly: the importer reduces
the ratio of the float32 scales), per element::

    y = m₀·(q₀ − z₀) + m₁·(q₁ − z₁)        (real value y·s₀/m₀)

is an exact integer; the quantizer after the sum becomes a ``thresholding`` (or ``qbn``) layer
over ``y``, as a quantizer after an accumulator becomes the MVU's thresholds. Hardware: ``PE``
channels per beat of both inputs, one beat per clock, a beat taken only when both inputs hold
one (FINN's AddStreams, with the alignment done by two constant multipliers:
:mod:`hwnorm.hdl.add`)::

    i0.payload  q₀[PE]  ─┐
                         ├─►  m₀·(q₀ − z₀) + m₁·(q₁ − z₁)  ─►  o.payload  y[PE]
    i1.payload  q₁[PE]  ─┘
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnorm.blocks import CARRY_FEATURES, FF_FEATURES, BeatPipeline, CalibrationPoint, Inventory, one_per_clock
from hwnorm.datatypes import IntType, element_type
from hwnorm.layers.base import ElementwiseLayer, InPort, LayerBlock, as_int_batch
from hwnorm.layers.registry import register

__all__ = ["Add", "AddBlock", "MAX_MULTIPLIER_BITS", "narrowest"]

# The exact ratio of two float32 scales in lowest terms: 24-bit mantissas, shifted by the difference
# of their exponents (the narrowest add is usually a few bits). Sums stay far inside int64 for
# codes of up to 16 bits.
MAX_MULTIPLIER_BITS = 40
MAX_PAIRS = 1 << 20       # input pairs a narrower add is proven on (two 10-bit inputs)
MAX_SEARCH_BITS = 10      # the widest multiplier the search for a narrower add tries
SEARCH_WORK = 1 << 28     # pair sums the search may compute in all (candidates × pairs)


def _shape(shape) -> tuple:
    shape = tuple(shape)
    if len(shape) not in (1, 3) or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                                           for v in shape):
        raise ValueError(f"shape must be (C,) or (H, W, C) of whole numbers ≥ 1, got {shape!r}")
    return tuple(int(v) for v in shape)


@register
@dataclass(frozen=True, eq=False)
class Add(ElementwiseLayer):
    """``m₀·(q₀ − z₀) + m₁·(q₁ − z₁)`` of two streams of ``shape`` (module docstring); input ``i``
    holds codes of ``elements[i]`` in ``ranges[i]``."""

    shape: tuple
    elements: tuple
    ranges: tuple
    zeros: tuple = (0, 0)
    multipliers: tuple = (1, 1)
    name: str = "add"

    kind = "add"
    # the vendored ResNet-style model's two joins (16 channels: 4-bit codes, 32: wider sums)
    calibration_points = tuple(
        CalibrationPoint(f"cal_add_{layer.removeprefix('node_')}_p{pe}", {"model": "RESNET_MNIST_W4A4", "layer": layer,
                                                                          "pe": pe})
        for layer, pes in (("node_add", [1, 4, 16]), ("node_add_1", [2, 8, 32])) for pe in pes)

    def __post_init__(self):
        object.__setattr__(self, "shape", _shape(self.shape))
        if len(self.elements) != 2 or len(self.ranges) != 2 or len(self.zeros) != 2 or len(self.multipliers) != 2:
            raise ValueError(f"{self.name}: an add has two inputs: two elements, ranges, zero points and multipliers")
        for k, (element, (lo, hi)) in enumerate(zip(self.elements, self.ranges)):
            if not isinstance(element, IntType):
                raise ValueError(f"{self.name}: input {k} must be integer codes, not {element}")
            if not element.min <= lo <= hi <= element.max:
                raise ValueError(f"{self.name}: input {k}'s range [{lo}, {hi}] is not inside {element}")
        for k, m in enumerate(self.multipliers):
            if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m == 0 \
                    or abs(int(m)).bit_length() > MAX_MULTIPLIER_BITS:
                raise ValueError(f"{self.name}: multiplier {k} must be a non-zero whole number of at most "
                                 f"{MAX_MULTIPLIER_BITS} bits, got {m!r}")
        for k, z in enumerate(self.zeros):
            if isinstance(z, bool) or not isinstance(z, (int, np.integer)) or abs(int(z)) >= 1 << 32:
                raise ValueError(f"{self.name}: zero point {k} must be a whole number, got {z!r}")
        object.__setattr__(self, "ranges", tuple((int(lo), int(hi)) for lo, hi in self.ranges))
        object.__setattr__(self, "zeros", tuple(int(z) for z in self.zeros))
        object.__setattr__(self, "multipliers", tuple(int(m) for m in self.multipliers))

    # ---- tensors
    @property
    def in_shape(self) -> tuple:
        return self.shape

    out_shape = in_shape

    def in_ports(self) -> tuple:
        return tuple(InPort(f"{self.name} (input {k})", self.shape, e, r)
                     for k, (e, r) in enumerate(zip(self.elements, self.ranges)))

    @property
    def in_type(self) -> IntType:
        return self.elements[0]

    @property
    def in_range(self) -> tuple[int, int]:
        return self.ranges[0]

    def term_range(self, k: int) -> tuple[int, int]:
        """The values ``mₖ·(qₖ − zₖ)`` of input ``k``."""
        ends = [self.multipliers[k] * (v - self.zeros[k]) for v in self.ranges[k]]
        return min(ends), max(ends)

    @property
    def out_range(self) -> tuple[int, int]:
        (a, b), (c, d) = self.term_range(0), self.term_range(1)
        return a + c, b + d

    @property
    def out_type(self) -> IntType:
        return IntType.from_range(*self.out_range)

    def tensors(self) -> dict:
        return {"in_shape": list(self.in_shape), "out_shape": list(self.out_shape), "out_type": self.out_type.name}

    # ---- golden model
    def run(self, x0, x1=None):
        if x1 is None:
            raise ValueError(f"{self.name}: an add reads two streams")
        out = None
        for k, x in enumerate((x0, x1)):
            x = as_int_batch(self.name, x, self.in_features)
            lo, hi = self.ranges[k]
            if x.size and (x.min() < lo or x.max() > hi):
                raise ValueError(f"{self.name}: input {k} outside its declared range [{lo}, {hi}]")
            term = self.multipliers[k] * (x.astype(np.int64) - self.zeros[k])
            out = term if out is None else out + term
        return out

    # ---- JSON
    def spec_fields(self) -> dict:
        return {"elements": [e.name for e in self.elements], "ranges": [list(r) for r in self.ranges],
                "zero_points": list(self.zeros), "multipliers": list(self.multipliers)}

    json_fields = {"name": (str,), "in_shape": (list,), "elements": (list,), "ranges": (list,),
                   "zero_points": (list,), "multipliers": (list,)}

    @classmethod
    def from_dict(cls, d: dict) -> "Add":
        elements = tuple(element_type(e) if isinstance(e, str) else e for e in d["elements"])
        ranges = d["ranges"]
        if len(ranges) != 2 or not all(isinstance(r, list) and len(r) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) for v in r) for r in ranges):
            raise ValueError("ranges must be two [lo, hi] pairs of whole numbers")
        return cls(tuple(d["in_shape"]), elements, tuple(tuple(r) for r in ranges), tuple(d["zero_points"]),
                   tuple(d["multipliers"]), d["name"])

    # ---- hardware
    def block(self, fold: dict) -> "AddBlock":
        fold = self.parse_fold(fold)
        return AddBlock(self, fold.get("pe", 1))

    def describe(self, block) -> dict:
        return {"layer": self.name, "pe": block.pe, "channels": self.in_features}

    # ---- energy: per element, the two constant multiplications and the addition
    def energy_actions(self, fold: dict) -> dict:
        width, c = self.out_type.width, self.in_features
        return {f"mult_{width}b": 2 * c, f"add_{width}b": c}

    def summary(self) -> dict:
        return {**super().summary(), "multipliers": list(self.multipliers), "out_type": str(self.out_type)}


def narrowest(layer: Add, spec):
    """The add with the smallest multipliers, and the thresholds after it, that give every
    reachable input pair the output ``spec`` (a :class:`~hwnorm.bnn.ThresholdSpec` over
    ``layer``'s sums) gives it — or None when the exact multipliers are the narrowest tried.

    Exact multipliers are the ratio of two float32 scales, often 20 bits or more; but a quantizer
    after the sum has a few levels, and a much narrower weighted sum usually orders the input
    pairs the same way across every level boundary. Each candidate is proven on all the pairs of
    the two input ranges (at most :data:`MAX_PAIRS`): its thresholds are the least sum of each
    level, and it is kept only if every pair below a level sums lower than every pair at or above
    it, in every channel."""
    (l0, h0), (l1, h1) = layer.ranges
    pairs = (h0 - l0 + 1) * (h1 - l1 + 1)
    if pairs > MAX_PAIRS:
        return None
    tries = SEARCH_WORK // pairs  # wide inputs: fewer candidates, so an import stays within seconds
    d0 = np.arange(l0, h0 + 1, dtype=np.int64) - layer.zeros[0]
    d1 = np.arange(l1, h1 + 1, dtype=np.int64) - layer.zeros[1]
    m0, m1 = layer.multipliers
    exact = (m0 * d0[:, None] + m1 * d1[None, :]).ravel()
    rows, channel_row = np.unique(spec.thresholds, axis=0, return_inverse=True)
    channel_row = channel_row.reshape(-1)
    n = spec.n_thresholds
    # per distinct threshold row: each pair's level (thresholds fired), pairs sorted by level
    levels = []
    for row in rows:
        level = np.searchsorted(row, exact, side="right")
        order = np.argsort(level, kind="stable")
        sorted_level = level[order]
        starts = np.flatnonzero(np.r_[True, np.diff(sorted_level) > 0])
        levels.append((order, starts, sorted_level[starts]))

    def thresholds_for(a0: int, a1: int):
        v = (a0 * d0[:, None] + a1 * d1[None, :]).ravel()
        lo, hi = IntType.from_range(int(v.min()), int(v.max())).range
        out = np.empty((len(rows), n), np.int64)
        for r, (order, starts, present) in enumerate(levels):
            vs = v[order]
            tops, bottoms = np.maximum.reduceat(vs, starts), np.minimum.reduceat(vs, starts)
            below = np.maximum.accumulate(tops)[:-1]            # the largest sum of any lower level
            above = np.minimum.accumulate(bottoms[::-1])[::-1]   # the least sum of this level or higher
            if np.any(below >= above[1:]):
                return None
            for k in range(1, n + 1):  # threshold k fires for the pairs of level ≥ k
                at = np.searchsorted(present, k)
                out[r, k - 1] = above[at] if at < len(present) else hi + 1
        return out[channel_row], lo, hi

    ratio = abs(m0) / abs(m1)
    for b in range(1, 1 << MAX_SEARCH_BITS):
        for a in sorted({max(1, int(np.floor(b * ratio))), max(1, int(np.ceil(b * ratio)))}):
            tries -= 1
            if max(a, b).bit_length() >= max(abs(m0), abs(m1)).bit_length() or tries < 0:
                return None
            a0, a1 = int(np.sign(m0)) * a, int(np.sign(m1)) * b
            found = thresholds_for(a0, a1)
            if found is not None:
                t, lo, hi = found
                narrow = Add(layer.shape, layer.elements, layer.ranges, layer.zeros, (a0, a1), layer.name)
                return narrow, type(spec)(t, lo, hi, spec.out_base, spec.name)
    return None


class AddBlock(LayerBlock, BeatPipeline):
    """An :class:`Add` with ``pe`` channels per beat of each input (module docstring): input
    streams ``i0`` and ``i1`` (the codes' types), a beat of each taken together, the sum
    ``depth`` clocks later (:class:`hwnorm.hdl.add.AddUnit`)."""

    kind = Add.kind
    cost_features = {Add.kind: {"lut": ("blocks", "adder"), "ff": FF_FEATURES, "carry": CARRY_FEATURES}}
    depth = 2  # input register, sum register
    in_ports = 2

    def __init__(self, layer: Add, pe: int = 1):
        self.fold_channels(layer, pe)
        self.port_types = tuple(layer.elements)

    # ---- cycle model: a join — beat k of both inputs, taken together, one per clock
    def schedule_ports(self, arrivals: list[list[int]]) -> list[list[int]]:
        return [[t + self.depth for t in self.accepts_ports(arrivals)[0]]]

    def accepts_ports(self, arrivals: list[list[int]]) -> list[list[int]]:
        both = one_per_clock([max(a, b) for a, b in zip(*arrivals)])
        return [both, list(both)]

    def inventory(self) -> Inventory:
        pe, width = self.pe, self.out_type.width
        in_bits = sum(e.width for e in self.layer.elements)
        # each constant multiplier is as many adders as its multiplier has one-bits beyond the first
        terms = sum(max(bin(abs(m)).count("1") - 1, 0) for m in self.layer.multipliers) + 1
        return Inventory(adder=pe * width * terms, register=pe * (in_bits + width) + 2)

    def component(self):
        from hwnorm.hdl.add import AddUnit  # Amaranth: loaded when hardware is built
        return AddUnit(self)
