"""Layer kind ``thresholding``: elementwise multi-threshold of integers (e.g. pixel binarization).

Per channel ``c``: ``y = out_base + #{i : x ≥ T[c, i]}`` (:class:`~hwnorm.bnn.ThresholdSpec`);
one threshold with ``out_base = 0`` gives bits (bipolar ±1), more give integer levels.
Hardware: ``PE`` channels per beat, two register stages, one beat per clock::

    i.payload  x[PE]   in_type elements (channel g·PE + lane of beat g)
    o.payload  y[PE]   out_base + #{i : x ≥ Tᵢ}  (1 bit for a binarizing threshold)

in one of two forms, whichever takes fewer LUTs (:attr:`ThresholdingBlock.table`):

- **compares**: the input registered, then one comparator per threshold (constants, or a ROM row
  per beat) and a count tree over their bits into the output register;
- **table**: per lane a ROM over (beat, x) holding ``y`` itself, read at the input (its read
  register is the first stage) into the output register — a narrow input with many thresholds
  (FINN CNV's 8-bit pixels, 255 thresholds per channel, 3 lanes: Yosys gives 2,147 7-series LUTs
  as compares, 40 as tables; 1,843 and 46 ECP5 LUT4s)::

      address  [in_bits + ⌈log2 groups⌉ − 1 : in_bits]  beat g  |  [in_bits − 1 : 0]  x (two's complement)
      row      out_base + #{i : x ≥ T[g·PE + lane, i]}  in out_type
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from hwnorm import bnn
from hwnorm.blocks import CARRY_FEATURES, FF_FEATURES, BeatPipeline, CalibrationPoint, Inventory, MemoryUse, check_signal_bits
from hwnorm.bnn import ThresholdSpec
from hwnorm.intmm import RANGE_KERNEL_DTYPES, outside
from hwnorm.datatypes import BIPOLAR, IntType, bit_planes, counter_bits
from hwnorm.estimate.resources import goes_to_block_ram, rom_luts
from hwnorm.estimate.synthesis import TARGETS
from hwnorm.layers.registry import register
from hwnorm.layers.base import Bits, ElementwiseLayer, LayerBlock, as_int_batch, check_spatial, spatial_of
from hwnorm.layers.threshold_stage import compare_bits, constant_rows, count_cuts, count_register_bits, lane_rows
from hwnorm.spec import content_hash

__all__ = ["InputThreshold", "ThresholdingBlock", "TABLE_MAX_ROWS"]

# the deepest per-lane table the table form builds (a 14-bit input, or fewer bits and several
# beats); deeper, the compares stay
TABLE_MAX_ROWS = 1 << 14


@njit(cache=True, parallel=True)
def _threshold_pack(x, thr, lo, hi, out):
    """One threshold per element (``x ≥ T`` → bit 1), packed little-endian per 64 channels;
    returns how many ``x`` lie outside ``[lo, hi]`` (checked in the same pass)."""
    m, c = x.shape
    bad = 0
    for i in prange(m):
        for wo in range(out.shape[1]):
            word = np.uint64(0)
            for jj in range(min(64, c - 64 * wo)):
                j = 64 * wo + jj
                v = np.int64(x[i, j])
                bad += (v < lo) | (v > hi)
                if v >= thr[j]:
                    word |= np.uint64(1) << np.uint64(jj)
            out[i, wo] = word
    return bad


@register
@dataclass(frozen=True, eq=False)
class InputThreshold(ElementwiseLayer):
    """Elementwise multi-threshold of integer inputs of type ``IntType(in_bits, in_signed)``;
    the spec's accumulator range is that type's range."""

    thresholds: ThresholdSpec
    in_bits: int = 8
    in_signed: bool = False
    name: str = "input"
    spatial: tuple = ()

    kind = "thresholding"
    aliases = ("input_threshold",)
    # one threshold per pixel (TFC_1W1A's binary input), and many per channel from a ROM: the 8-bit
    # inputs of FINN's CIFAR CNV (255 thresholds × 3 channels) and of TFC_2W2A (3 thresholds)
    calibration_points = tuple(CalibrationPoint(f"cal_thr_p{pe}", {"model": "TFC_1W1A", "layer": "BipolarQuant_11_input",
                                                                    "pe": pe}) for pe in (7, 16, 28, 112, 392)) + (
        CalibrationPoint("cal_thr_cifar_p1", {"model": "CNV_CIFAR_1W1A", "pe": 1,
                                              "layer": "conv_features_0_act_quant_export_handler_Quant_input"}),
        CalibrationPoint("cal_thr_cifar_p3", {"model": "CNV_CIFAR_1W1A", "pe": 3,
                                              "layer": "conv_features_0_act_quant_export_handler_Quant_input"}),
        CalibrationPoint("cal_thr_2w2a_p16", {"model": "TFC_2W2A", "layer": "Quant_13_input", "pe": 16}))

    def __post_init__(self):
        object.__setattr__(self, "spatial", check_spatial(self.name, self.spatial))
        lo, hi = self.in_type.range
        if (self.thresholds.acc_lo, self.thresholds.acc_hi) != (lo, hi):
            raise ValueError(f"{self.name}: threshold range [{self.thresholds.acc_lo}, {self.thresholds.acc_hi}] "
                             f"must equal the {self.in_type} input range [{lo}, {hi}]")

    # ---- tensors
    @property
    def in_type(self) -> IntType:
        return IntType(self.in_bits, self.in_signed)

    @property
    def out_is_bits(self) -> bool:
        return self.thresholds.n_thresholds == 1 and self.thresholds.out_base == 0

    @property
    def out_type(self):
        return BIPOLAR if self.out_is_bits else self.thresholds.out_type

    @property
    def out_range(self) -> tuple[int, int]:
        return self.thresholds.out_range

    def summary(self) -> dict:
        return {**super().summary(), "in_bits": self.in_bits, "thresholds": self.thresholds.n_thresholds,
                "out_type": str(self.out_type)}

    @property
    def in_shape(self) -> tuple:
        return (*self.spatial, self.thresholds.channels)

    out_shape = in_shape

    # ---- golden model
    def run(self, x):
        x = as_int_batch(self.name, x, self.in_features)
        lo, hi = self.in_range
        message = f"{self.name}: input outside the declared {self.in_type} range [{lo}, {hi}]"
        if not self.out_is_bits:  # the spec's range is the input type's: its check says the same
            try:
                return self.thresholds.apply(x)
            except ValueError:
                raise ValueError(message) from None
        if x.dtype not in RANGE_KERNEL_DTYPES:  # uint64: would not compare exactly in the kernel
            if outside(x, lo, hi):
                raise ValueError(message)
            x = x.astype(np.int64)
        out = np.empty((x.shape[0], bnn.words_for(self.out_features)), np.uint64)
        if _threshold_pack(np.ascontiguousarray(x), np.ascontiguousarray(self.thresholds.thresholds[:, 0]), lo, hi,
                           out):
            raise ValueError(message)
        return Bits(out, self.out_features)

    # ---- JSON
    def spec_fields(self) -> dict:
        return {"in_bits": self.in_bits, "in_signed": self.in_signed, "thresholds": self.thresholds.to_dict()}

    json_fields = {"name": (str,), "in_bits": (int,), "in_signed": (bool,), "thresholds": (dict,)}

    @classmethod
    def from_dict(cls, d: dict) -> "InputThreshold":
        return cls(ThresholdSpec.from_dict(d["thresholds"]), d["in_bits"], d["in_signed"], d["name"], spatial_of(d))

    # ---- hardware
    def block(self, fold: dict) -> "ThresholdingBlock":
        fold = self.parse_fold(fold)
        return ThresholdingBlock(self, fold.get("pe", 1))

    def describe(self, block) -> dict:
        return {"layer": self.name, "pe": block.pe, "spec_hash": content_hash(self.to_dict()),
                "channels": self.in_features}

    # ---- co-simulation: every channel exactly on its first threshold once (acc ≥ T fires)
    def stimulus(self, n: int, rng) -> np.ndarray:
        x = super().stimulus(n, rng)
        if n > 3:
            x[3] = np.clip(self.thresholds.thresholds[:, 0], *self.in_range)
        return x

    # ---- energy
    def energy_actions(self, fold: dict) -> dict:
        t = self.thresholds
        return {"comparator_bits": t.channels * t.channel_bits}

    def stored_bits(self) -> list[np.ndarray]:
        t = self.thresholds
        return [bit_planes(t.thresholds, t.threshold_type.width).reshape(-1)]


class ThresholdingBlock(LayerBlock, BeatPipeline):
    """An :class:`InputThreshold` with ``pe`` channels per beat (module docstring)."""

    kind = InputThreshold.kind
    cost_features = {"thresholding": {"lut": ("blocks", "compare", "popcount", "register", "rom_luts"), "ff": FF_FEATURES,
                                      "carry": (*CARRY_FEATURES, "popcount")}}

    def __init__(self, layer: InputThreshold, pe: int = 1):
        self.fold_channels(layer, pe)
        t = layer.thresholds
        check_signal_bits(layer.name, "threshold ROM row (PE × thresholds × width)",
                          pe * t.channel_bits, "PE")

    # ---- which form (module docstring)
    @property
    def table_rows(self) -> int:
        """Rows of one lane's table: every input value of every beat."""
        return self.groups << self.in_type.width

    @property
    def table(self) -> bool:
        """Whether the lanes read their levels from tables rather than compare: when the tables
        take fewer of the target's LUTs than the comparators and count trees (a comparator
        operand bit about half a LUT on the carry chain, a counted bit one; both forms' other
        parts are the same)."""
        t = self.layer.thresholds
        if self.table_rows > TABLE_MAX_ROWS:
            return False
        k = TARGETS[self.timing.target].rules["lut_inputs"]
        compares = compare_bits(t, self.pe) / 2 + (self.pe * t.n_thresholds if t.n_thresholds > 1 else 0)
        return self.pe * rom_luts(self.out_type.width, self.table_rows, k) < compares

    def level_tables(self) -> list[list[int]]:
        """Per lane, its table's rows (module docstring): the output's bits as unsigned integers."""
        t, pe, w = self.layer.thresholds, self.pe, self.in_type.width
        x = np.arange(1 << w, dtype=np.int64)
        if self.in_type.signed:
            x = np.where(x >= 1 << (w - 1), x - (1 << w), x)  # two's complement address → value
        levels = t.apply(np.repeat(x[:, None], t.channels, axis=1)) & ((1 << self.out_type.width) - 1)
        # lane p's row g·2^w + a is channel g·pe + p at value a
        return [levels[:, p::pe].T.reshape(-1).tolist() for p in range(pe)]

    @property
    def table_ranks(self) -> int:
        """Registers between a table's read data and the output register: one when the table is
        in block RAM and its read data does not fit a stage on its own (that register, without a
        reset, becomes the RAM's output register, :meth:`hwnorm.timing.Timing.memory_ranks`)."""
        in_block_ram = self.timing.on and goes_to_block_ram("rom", self.out_type.width, self.table_rows,
                                                             TARGETS[self.timing.target])
        return self.timing.memory_ranks(in_block_ram, 0.0, block_ram=in_block_ram)

    @property
    def depth(self) -> int:
        """Compares: input register, compare register, plus the target clock's ranks in the compare
        stage. Table: the tables' read register, its ranks, and the output register."""
        if self.table:
            return 2 + self.table_ranks
        return 2 + self.threshold_ranks + len(self.count_cuts)

    @property
    def threshold_ranks(self) -> int:
        """Registers the thresholds ROM's read data (and the input beside it) passes before the
        compares."""
        memory = not constant_rows(self.threshold_rows())
        return self.timing.memory_ranks(memory, self.timing.model.compare(self.in_type.width))

    @property
    def count_cuts(self) -> tuple[int, ...]:
        return count_cuts(self.timing, self.layer.thresholds, self.in_type.width)

    def threshold_rows(self) -> list:
        return lane_rows(self.layer.thresholds, self.pe)

    def pipeline_register_bits(self) -> int:
        """Flip-flops the target clock adds (hwnorm.timing)."""
        if self.table:
            return self.pe * self.out_type.width * self.table_ranks
        t, pe = self.layer.thresholds, self.pe
        operands = pe * (t.channel_bits + self.in_type.width) + 1
        return operands * self.threshold_ranks + count_register_bits(self.count_cuts, t, pe) \
            + len(self.count_cuts)

    def inventory(self) -> Inventory:
        t, pe = self.layer.thresholds, self.pe
        out_bits = pe * self.out_type.width
        if self.table:  # read register and output register; a table's read register is its ROM's
            return Inventory(adder=counter_bits(self.groups),
                             register=2 * out_bits + counter_bits(self.groups) + 2 + self.pipeline_register_bits(),
                             memories=tuple(MemoryUse("rom", self.out_type.width, self.table_rows) for _ in range(pe)))
        # several thresholds per lane: their compare bits are counted by a tree of adders (a popcount)
        count = pe * t.n_thresholds if t.n_thresholds > 1 else 0
        return Inventory(adder=counter_bits(self.groups), compare=compare_bits(t, pe), popcount=count,
                         register=pe * self.in_type.width + out_bits + counter_bits(self.groups) + 2
                         + self.pipeline_register_bits(),
                         memories=() if constant_rows(self.threshold_rows()) else
                         (MemoryUse("rom", pe * t.channel_bits, self.groups),))

    def component(self):
        from hwnorm.hdl.mvu import Thresholding  # Amaranth: loaded when hardware is built
        return Thresholding(self)
