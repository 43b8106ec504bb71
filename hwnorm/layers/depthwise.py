"""Layer kind ``depthwise``: a depthwise convolution's dot products (FINN's VVAU), then thresholds.

It reads the windows a ``window`` layer makes — one row of ``taps · C`` values per output pixel,
in the order (ky, kx, c) — and gives each channel the dot product of its own taps with its own
``taps`` weights::

    acc[c] = Σ_t w[c, t] · x[t·C + c]        then  out_base + #{i : acc[c] ≥ T[c, i]}  (or acc)

Integer weights and integer inputs (a ±1 weight is the integer ±1). Folding: ``pe`` channels and
``simd`` taps per clock; its block's cycle and resource model is below, its Amaranth component is
not built yet (a network with a ``depthwise`` layer has a golden model and ``hwnorm check``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnorm.blocks import Block, Inventory, MemoryUse
from hwnorm.bnn import ThresholdSpec
from hwnorm.datatypes import IntType, counter_bits, element_type, int_array, whole
from hwnorm.defaults import COST_LIMITS
from hwnorm.layers.base import (MAX_AUTO_LANES, Layer, as_int_batch, check_fold, check_spatial, divisors,
                                integer_weights, largest_divisor, spatial_of)
from hwnorm.layers.registry import register
from hwnorm.layers.threshold_stage import check_covers

__all__ = ["Depthwise", "DepthwiseBlock"]


@register
@dataclass(frozen=True, eq=False)
class Depthwise(Layer):
    """``weights`` (C, taps) of ``weight_type``; inputs of ``in_type`` in ``[in_lo, in_hi]``,
    ``taps · C`` per window; ``thresholds`` None hands on the raw dot products."""

    weights: np.ndarray
    in_type: IntType
    in_lo: int
    in_hi: int
    weight_type: IntType
    thresholds: ThresholdSpec | None = None
    spatial: tuple = ()  # (OH, OW): one window per output pixel
    name: str = "depthwise"

    kind = "depthwise"
    has_hardware = False  # no RTL yet: golden model, JSON and estimates
    folding_keys = ("pe", "simd")
    channel_label = "channel"

    def __post_init__(self):
        object.__setattr__(self, "spatial", check_spatial(self.name, self.spatial))
        w = integer_weights(self.name, self.weights, self.weight_type, "(channels, taps)")
        object.__setattr__(self, "weights", w)
        lo, hi = self.weight_type.range
        if not isinstance(self.in_type, IntType) or not self.in_type.min <= self.in_lo <= self.in_hi <= self.in_type.max:
            raise ValueError(f"{self.name}: input range [{self.in_lo}, {self.in_hi}] is not inside {self.in_type}")
        peak = w.shape[1] * max(abs(lo), abs(hi), 1) * max(abs(self.in_lo), abs(self.in_hi), 1)
        if peak.bit_length() > COST_LIMITS["accumulator_bits"]:
            raise ValueError(f"{self.name}: the accumulator can reach ±{peak:.3g}, beyond the golden model's int64")
        check_covers(self.name, self.thresholds, self.channels, self.acc_range)

    # ---- tensors
    @property
    def channels(self) -> int:
        return self.weights.shape[0]

    @property
    def taps(self) -> int:
        return self.weights.shape[1]

    @property
    def in_features(self) -> int:
        return self.taps * self.channels

    @property
    def out_features(self) -> int:
        return self.channels

    @property
    def in_shape(self) -> tuple:
        return (*self.spatial, self.in_features)

    @property
    def out_shape(self) -> tuple:
        return (*self.spatial, self.channels)

    @property
    def in_range(self) -> tuple[int, int]:
        return self.in_lo, self.in_hi

    @property
    def acc_range(self) -> tuple[int, int]:
        """Over every input: the extremes of each channel's dot product, over all channels."""
        w = self.weights
        top = np.maximum(w * self.in_lo, w * self.in_hi).sum(axis=1)
        bottom = np.minimum(w * self.in_lo, w * self.in_hi).sum(axis=1)
        return int(bottom.min()), int(top.max())

    @property
    def out_type(self) -> IntType:
        if self.thresholds is None:
            return IntType.from_range(*self.acc_range, signed=True)
        return self.thresholds.out_type

    @property
    def out_range(self) -> tuple[int, int]:
        return self.acc_range if self.thresholds is None else self.thresholds.out_range

    # ---- golden model
    def run(self, x):
        x = as_int_batch(self.name, x, self.in_features)
        if x.size and (x.min() < self.in_lo or x.max() > self.in_hi):
            raise ValueError(f"{self.name}: input outside the declared range [{self.in_lo}, {self.in_hi}]")
        acc = np.zeros((x.shape[0], self.channels), np.int64)
        for t in range(self.taps):  # one tap at a time: no (batch, taps, C) int64 copy of the windows
            acc += x[:, t * self.channels:(t + 1) * self.channels] * self.weights[:, t]
        return acc if self.thresholds is None else self.thresholds.apply(acc)

    # ---- JSON
    def spec_fields(self) -> dict:
        return {"in_type": self.in_type.name, "in_range": [self.in_lo, self.in_hi],
                "weight_type": self.weight_type.name, "weights": self.weights.tolist(),
                "thresholds": None if self.thresholds is None else self.thresholds.to_dict()}

    def tensors(self) -> dict:
        return {"in_shape": list(self.in_shape), "out_shape": list(self.out_shape), "out_type": self.out_type.name}

    json_fields = {"name": (str,), "in_type": (str,), "in_range": (list,), "weight_type": (str,),
                   "weights": (list,), "thresholds": (dict, type(None))}

    @classmethod
    def from_dict(cls, d: dict) -> "Depthwise":
        wt, it = element_type(d["weight_type"]), element_type(d["in_type"])
        lo, hi = (whole(v, "in_range") for v in d["in_range"])
        thr = None if d["thresholds"] is None else ThresholdSpec.from_dict(d["thresholds"])
        return cls(int_array(d["weights"], "weights", wt), it, lo, hi, wt, thr, spatial_of(d)[:2], d["name"])

    # ---- folding: PE channels, SIMD taps per clock
    def foldings(self) -> list[dict]:
        pairs = [(pe, simd) for pe in divisors(self.channels) for simd in divisors(self.taps)]
        return [{"pe": pe, "simd": simd} for pe, simd in sorted(pairs, key=lambda p: (p[0] * p[1], -p[1]))]

    def auto_fold(self, prev_lanes, next_layer) -> dict:
        return {"pe": largest_divisor(self.channels, prev_lanes or MAX_AUTO_LANES), "simd": 1}

    def block(self, fold: dict) -> "DepthwiseBlock":
        fold = self.parse_fold(fold)
        return DepthwiseBlock(self, fold.get("pe", 1), fold.get("simd", 1))

    # ---- energy: a multiply-accumulate per weight and window, a comparison per threshold
    def energy_actions(self, fold: dict) -> dict:
        width = IntType.from_range(*self.acc_range, signed=True).width
        out = {f"mult_{self.in_type.width + self.weight_type.width}b": self.in_features,
               f"add_{width}b": self.in_features}
        if self.thresholds is not None:
            out["comparator_bits"] = self.channels * self.thresholds.channel_bits
        return out

    def mac_count(self) -> int:
        return self.vectors * self.in_features

    def summary(self) -> dict:
        return {**super().summary(), "taps": self.taps, "thresholds": None if self.thresholds is None
                else self.thresholds.n_thresholds, "out_type": str(self.out_type)}


class DepthwiseBlock(Block):
    """A :class:`Depthwise` with ``pe`` channels and ``simd`` taps per clock: a window takes
    ``(C / PE) · (taps / SIMD)`` clocks (the cycle model); weights in a ROM of ``C/PE · taps/SIMD``
    rows. Its Amaranth component is not built yet."""

    kind = Depthwise.kind
    depth = 3

    def __init__(self, layer: Depthwise, pe: int = 1, simd: int = 1):
        self.pe = check_fold(layer.name, "PE", pe, layer.channels, "channels")
        self.simd = check_fold(layer.name, "SIMD", simd, layer.taps, "taps")
        self.layer, self.name = layer, layer.name
        self.in_type, self.out_type = layer.in_type, layer.out_type
        self.in_lanes, self.out_lanes = pe * simd, pe
        self.folds = (layer.channels // pe) * (layer.taps // simd)
        self.in_beats, self.out_beats = self.folds, layer.channels // pe

    @property
    def initiation_interval(self) -> int:
        return self.folds

    def schedule(self, arrivals: list[int]) -> list[int]:
        out, t, per = [], -1, self.layer.taps // self.simd
        for k, a in enumerate(arrivals):
            t = max(t + 1, a)
            if k % per == per - 1:
                out.append(t + self.depth)
        return out

    def inventory(self) -> Inventory:
        layer, pe, simd = self.layer, self.pe, self.simd
        acc = IntType.from_range(*layer.acc_range, signed=True).width
        rows = self.folds
        return Inventory(adder=pe * simd * acc + counter_bits(rows), register=pe * (simd * layer.in_type.width + acc)
                         + pe * self.out_type.width + 2,
                         memories=(MemoryUse("rom", pe * simd * layer.weight_type.width, rows),))

    def component(self):
        raise ValueError(f"{self.name}: the depthwise kind has no hardware yet (golden model, estimates and hwnorm "
                         "check only)")
