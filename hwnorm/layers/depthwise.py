"""Layer kind ``depthwise``: a depthwise convolution's dot products (FINN's VVAU), then thresholds.

It reads the windows a ``window`` layer makes — one row of ``taps · C`` values per output pixel,
in the order (ky, kx, c) — and gives each channel the dot product of its own taps with its own
``taps`` weights::

    acc[c] = Σ_t w[c, t] · x[t·C + c]        then  out_base + #{i : acc[c] ≥ T[c, i]}  (or acc)

Integer weights and integer inputs (a ±1 weight is the integer ±1). Folding: ``pe`` channels and
``simd`` taps per clock. The block reads the window's stream as the window writes it, in
``(ky, kx, c)`` order — no reordering line buffer between them (FINN's VVAU needs its window in a
depthwise order instead): a beat is ``pe`` channels of one tap (``simd = 1``), or ``simd`` whole
taps (``pe = C``). Each channel group's partial sum waits in a delay line of ``C / PE`` entries
until the group's next tap arrives (:mod:`hwnorm.hdl.depthwise`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnorm.blocks import (FF_FEATURES, Block, CalibrationPoint, Inventory, MemoryUse,
                           check_signal_bits, last_beats_out, table_product)
from hwnorm.bnn import ThresholdSpec
from hwnorm.datatypes import IntType, counter_bits, element_type, int_array, whole
from hwnorm.defaults import COST_LIMITS
from hwnorm.folding import Fold
from hwnorm.layers.base import (MAX_AUTO_LANES, Layer, LayerBlock, as_int_batch, check_fold, check_spatial, divisors,
                                integer_weights, largest_divisor, spatial_of)
from hwnorm.layers.registry import register
from hwnorm.layers.threshold_stage import (check_covers, compare_bits, constant_rows, count_cuts, count_register_bits,
                                           lane_rows)

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
    folding_keys = ("pe", "simd")
    channel_label = "channel"
    # the vendored MobileNet-style model's three depthwise layers (8, 16, 32 channels of 4-bit codes)
    calibration_points = tuple(
        CalibrationPoint(f"cal_depthwise_{layer.removeprefix('node_').lower()}_p{pe}s{simd}",
                         {"model": "MOBILENET_MNIST_W4A4", "layer": layer, "pe": pe, "simd": simd})
        for layer, folds in (("node_Conv_215", [(1, 1), (4, 1), (8, 3)]), ("node_Conv_217", [(1, 1), (4, 1), (16, 1)]),
                             ("node_Conv_219", [(2, 1), (8, 1), (32, 1), (32, 9)]))
        for pe, simd in folds)

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
        """``pe`` channels of one tap, or ``simd`` taps of every channel, per beat: what a beat of
        the window's ``(ky, kx, c)`` stream can hold (:class:`DepthwiseBlock`)."""
        c = self.channels
        pairs = [(pe, 1) for pe in divisors(c)] + [(c, simd) for simd in divisors(self.taps) if simd > 1]
        return [{"pe": pe, "simd": simd} for pe, simd in pairs]

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


class DepthwiseBlock(LayerBlock, Block):
    """A :class:`Depthwise` with ``pe`` channels and ``simd`` taps per beat (module docstring).

    A window is ``taps · C / (PE · SIMD)`` beats in; the output beat of a channel group leaves
    ``depth`` clocks after the group's last tap arrives, so the last tap's beats stream out as they
    come (``C / PE`` beats out per window)::

        beat k ─► weights ROM [k] ─► PE (× SIMD) products ─► + delay line [C/PE] ─► thresholds [k mod C/PE] ─► y
        stage 0: issue           stage 1: multiply-accumulate                  stage 2: threshold (+ ranks)
    """

    kind = Depthwise.kind
    # built from products (tables or multipliers), adders, comparators, registers and its ROMs
    # (its ROMs are as deep as a window's beats or its channel groups: priced by their LUT count)
    cost_features = {Depthwise.kind: {"lut": ("blocks", "adder", "compare", "rom_luts", "mult_bits", "table_bits"),
                                      "ff": FF_FEATURES, "carry": ("blocks", "adder", "compare", "mult_bits")}}

    def __init__(self, layer: Depthwise, pe: int = 1, simd: int = 1):
        self.pe = check_fold(layer.name, "PE", pe, layer.channels, "channels")
        self.simd = check_fold(layer.name, "SIMD", simd, layer.taps, "taps")
        if simd > 1 and pe != layer.channels:
            raise ValueError(f"{layer.name}: SIMD={simd} taps per beat needs PE={layer.channels} (every channel): "
                             "a beat of the window's (ky, kx, c) stream holds whole taps or part of one")
        self.layer, self.name = layer, layer.name
        self.in_type, self.out_type = layer.in_type, layer.out_type
        self.in_lanes, self.out_lanes = pe * simd, pe
        self.groups = layer.channels // pe          # channel groups: entries of the delay line
        self.in_beats = layer.in_features // self.in_lanes
        self.out_beats = self.groups
        t = layer.thresholds
        if t is not None:
            check_signal_bits(layer.name, "threshold ROM row (PE × thresholds × width)", pe * t.channel_bits, "PE")
        check_signal_bits(layer.name, "weight ROM row (PE × SIMD × width)", pe * simd * layer.weight_type.width,
                          "PE or SIMD")

    @property
    def fold(self) -> Fold:
        return Fold(pe=self.pe, simd=self.simd)

    @property
    def initiation_interval(self) -> int:
        return self.in_beats

    @property
    def acc_type(self) -> IntType:
        """The partial sums' type: any subset of a channel's taps (an input range away from 0
        can take a partial sum beyond the whole dot product's range)."""
        layer = self.layer
        w = layer.weights
        lo_terms, hi_terms = np.minimum(w * layer.in_lo, w * layer.in_hi), np.maximum(w * layer.in_lo, w * layer.in_hi)
        lo, hi = np.minimum(lo_terms, 0).sum(axis=1).min(), np.maximum(hi_terms, 0).sum(axis=1).max()
        return IntType.from_range(int(lo), int(hi), signed=True)

    @property
    def table_products(self) -> bool:
        """Whether each lane's product is a lookup table over both operands (narrow), not a multiplier."""
        return table_product(self.layer.in_type.width, self.layer.weight_type.width)

    # ---- the threshold stage's registers for the target clock (as the mvu's)
    @property
    def threshold_ranks(self) -> int:
        t = self.layer.thresholds
        if t is None:
            return 0
        return self.timing.memory_ranks(not constant_rows(self.threshold_rows()),
                                        self.timing.model.compare(self.acc_type.width))

    @property
    def count_cuts(self) -> tuple[int, ...]:
        t = self.layer.thresholds
        return () if t is None else count_cuts(self.timing, t, self.acc_type.width)

    @property
    def depth(self) -> int:
        """Clocks from a group's last tap accepted to its output beat: issue, multiply-accumulate,
        threshold, plus the target clock's ranks in the threshold stage."""
        return 3 + self.threshold_ranks + len(self.count_cuts)

    def schedule(self, arrivals: list[int]) -> list[int]:
        return last_beats_out(arrivals, self.in_beats, self.groups, self.depth)

    # ---- the constants, as the component's ROMs hold them
    def weight_rows(self) -> list[int]:
        """Row ``k`` (a beat): lane ``l`` holds the weight of element ``k·L + l`` of the window
        (tap ``e // C``, channel ``e mod C``), two's complement fields, lane 0 lowest."""
        layer, lanes = self.layer, self.in_lanes
        c, width = layer.channels, layer.weight_type.width
        w = (layer.weights & ((1 << width) - 1)).T.reshape(-1)  # element order (tap, channel)
        return [sum(int(w[k * lanes + l]) << (l * width) for l in range(lanes)) for k in range(self.in_beats)]

    def threshold_rows(self) -> list:
        return lane_rows(self.layer.thresholds, self.pe)

    def inventory(self) -> Inventory:
        layer, pe, simd = self.layer, self.pe, self.simd
        acc = self.acc_type.width
        lanes = ((layer.in_type.width, layer.weight_type.width),) * (pe * simd)
        narrow = self.table_products
        t = layer.thresholds
        mems = [MemoryUse("rom", pe * simd * layer.weight_type.width, self.in_beats)] if self.in_beats > 1 else []
        if t is not None and not constant_rows(self.threshold_rows()):
            mems.append(MemoryUse("rom", pe * t.channel_bits, self.groups))
        pipeline = 0 if t is None else (pe * (t.channel_bits + acc) + 1) * self.threshold_ranks \
            + count_register_bits(self.count_cuts, t, pe) + len(self.count_cuts)
        return Inventory(adder=pe * simd * acc + 2 * counter_bits(self.in_beats),
                         compare=0 if t is None else compare_bits(t, pe),
                         register=pe * simd * layer.in_type.width + self.groups * pe * acc + pe * acc
                         + pe * self.out_type.width + 2 * counter_bits(self.in_beats) + 4 + pipeline,
                         memories=tuple(mems), multipliers=() if narrow else lanes,
                         table_products=lanes if narrow else ())

    def component(self):
        from hwnorm.hdl.depthwise import DepthwiseUnit  # Amaranth: loaded when hardware is built
        return DepthwiseUnit(self)


