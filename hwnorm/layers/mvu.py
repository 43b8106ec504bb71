"""Layer kind ``mvu``: matrix-vector(-threshold) unit (FINN's MVAU): ±1 or integer weights, binary
or integer inputs. One concept, one name: the kind ``mvu`` (``mvtu`` in older IR files), its spec
:class:`MVULayer`, its hardware model :class:`MVUBlock`, its Amaranth :class:`hwnorm.hdl.mvu.MVU`.

Golden model: binary input and ±1 weights → XNOR/popcount, ``acc = K − 2·popcount(a ⊕ w)``;
integer inputs or weights → an integer GEMM (:mod:`hwnorm.intmm`); then the thresholds (:class:`~hwnorm.bnn.ThresholdSpec`),
or the raw accumulator when there are none.

Hardware, folded FINN-style: ``PE`` output rows and ``SIMD`` input columns per clock, so one
input vector takes ``SF · NF`` clocks (``SF = K / SIMD`` synapse folds, ``NF = rows / PE``
neuron folds)::

    i.payload  x[SIMD]    element s of beat sf is column sf·SIMD + s
    o.payload  y[PE]      element p of beat nf is row nf·PE + p   (threshold count, or the accumulator)

    stage 0: issue (fold counters, ROM addresses, input buffer)   stage 1: multiply-accumulate
    stage 2: thresholds into the output register

The input is read only during the first neuron fold and replayed from a buffer for the others,
so a FIFO of one input vector sits in front of it in a network (``input_fifo_depth``). Cycle
model at full rate: ``initiation_interval = SF · NF``; output beat ``nf`` is valid 3 clocks after
the last issue of fold ``nf`` (more with a target clock: ``MVUBlock.depth``);
``latency = SF · NF + depth − 1``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from hwnorm import bnn
from hwnorm.blocks import (CARRY_FEATURES, FF_FEATURES, FIFO_MIN_DEPTH, Block, CalibrationPoint, Inventory, MemoryUse, check_signal_bits, table_product,
                           tree_register_bits)
from hwnorm.bnn import ThresholdSpec
from hwnorm.defaults import COST_LIMITS
from hwnorm.estimate.resources import block_ram_bank_depth, goes_to_block_ram, mux_fan_in, mux_levels
from hwnorm.estimate.synthesis import TARGETS
from hwnorm.datatypes import BIPOLAR, IntType, bit_planes, counter_bits, element_type, int_array, whole
from hwnorm.folding import Fold
from hwnorm.intmm import igemm, igemm_threshold
from hwnorm.layers.registry import register
from hwnorm.layers.base import (MAX_AUTO_LANES, Bits, Layer, LayerBlock, as_int_batch, check_fold, check_spatial,
                                 divisors, integer_weights, largest_divisor, spatial_of)
from hwnorm.layers.threshold_stage import check_covers, compare_bits, constant_rows, count_cuts, count_register_bits, lane_rows
from hwnorm.spec import content_hash
from hwnorm.timing import tree_levels
from hwnorm.stt.intcodec import rows_to_bits

__all__ = ["MVULayer", "MVUBlock"]

MAX_AUTO_PE = 16  # default folding: the largest PE ≤ 16 and SIMD ≤ 64 that divide the matrix
# with a target clock, the output bits of a weight ROM in logic one copy of its address register
# drives (MVUBlock.weight_address_copies)
ROM_ADDRESS_FANOUT = 64


def _words_to_hex(words: np.ndarray) -> list[str]:
    return [row.astype("<u8").tobytes().hex() for row in words]


def _hex_to_words(rows: list[str], k: int) -> np.ndarray:
    if not all(isinstance(r, str) for r in rows):
        raise ValueError("bipolar weights must be rows of hex-encoded uint64 words (strings)")
    w = np.array([np.frombuffer(bytes.fromhex(r), "<u8") for r in rows], dtype=np.uint64)
    if w.ndim != 2 or w.shape[1] != bnn.words_for(k):
        raise ValueError(f"weights must be rows of {bnn.words_for(k)} hex-encoded uint64 words")
    return w


# Below this K, igemm's dot products (vectorized over K) leave most of a 512-bit vector of int8
# lanes empty: the fused kernel (vectorized over the outputs) runs the layer instead.
FUSED_MAX_K = 64


@register
@dataclass(frozen=True, eq=False)
class MVULayer(Layer):
    """Matrix-vector(-threshold) unit: ``acc[j] = Σ_k x[k]·w[j, k]``, then thresholds or the raw sum.

    Weights are bipolar (``weight_bits == 1``: ±1, ``weights`` packed uint64 rows
    (out_features, ⌈in_features/64⌉), already flipped for γ < 0 channels) or integers of
    ``IntType(weight_bits, weight_signed)`` (``weights`` an (out_features, in_features) array).
    The input is bipolar (``in_bits == 1``) or ``in_bits``-wide integers, optionally declared to
    a narrower range ``[in_lo, in_hi]`` (e.g. the codes of a narrow-range quantizer), which
    tightens the accumulator. ``thresholds`` None hands on the raw accumulator.
    """

    weights: np.ndarray
    in_features: int
    thresholds: ThresholdSpec | None = None
    in_bits: int = 1
    in_signed: bool = False
    name: str = "mvu"
    weight_bits: int = 1
    weight_signed: bool = True
    in_lo: int | None = None
    in_hi: int | None = None
    spatial: tuple = ()  # (OH, OW) of a convolution: one input vector (a window) per output pixel
    acc_clip: tuple | None = None  # raw output saturated to [lo, hi] (a weight memory with faults)

    kind = "mvu"
    aliases = ("mvtu",)
    folding_keys = ("pe", "simd")
    channel_label = "output row"
    # binary weights (TFC_1W1A), ternary weights and activations with multi-thresholds (TFC_2W2A),
    # and multiplier lanes (4-bit codes × 4-bit weights, the 8-bit-pixel stems) with 15 thresholds
    # per channel (the 4-bit MobileNet- and ResNet-style models): without these the mvu_mac fit
    # had only 2-bit table-product lanes to learn from, and priced a compare bit at 5 LUTs
    calibration_points = tuple(
        CalibrationPoint(f"cal_{prefix}{layer.lower()}_p{pe}_s{simd}",
                         {"model": model, "layer": layer, "pe": pe, "simd": simd})
        for model, prefix, layers in (
            ("TFC_1W1A", "", {"MatMul_16": [(4, 49), (8, 16), (2, 112), (16, 8), (2, 7)],
                              "MatMul_24": [(4, 16), (16, 64), (2, 8), (64, 4), (32, 32), (8, 8)],
                              "MatMul_32": [(4, 64), (16, 4), (1, 64), (16, 32)],
                              "MatMul_40": [(5, 16), (2, 64), (10, 8), (1, 4)]}),
            ("TFC_2W2A", "2w2a_", {"MatMul_20": [(4, 49), (8, 16), (16, 28)], "MatMul_32": [(4, 16), (8, 8), (16, 64)],
                                   "MatMul_56": [(5, 16), (2, 8)]}),
            ("MOBILENET_MNIST_W4A4", "mobilenet_", {"node_Conv_214": [(8, 9), (2, 3), (4, 1)],
                                                    "node_Conv_218": [(8, 4), (32, 16), (4, 16)],
                                                    "node_linear": [(10, 32), (5, 8)]}),
            ("RESNET_MNIST_W4A4", "resnet_", {"node_Conv_190": [(8, 16), (4, 48)]}),
            # wide popcounts (SIMD 128 to 576: their adder trees' carry chains), as the CIFAR CNV's
            # fastest ECP5-85F foldings use them
            ("CNV_CIFAR_1W1A", "cifar_", {"conv_features_8_Conv": [(4, 576)], "conv_features_4_Conv": [(32, 192)],
                                          "conv_features_11_Conv": [(16, 128)]}))
        for layer, folds in layers.items() for pe, simd in folds)

    def __post_init__(self):
        object.__setattr__(self, "spatial", check_spatial(self.name, self.spatial))
        widest = COST_LIMITS["operand_bits"]
        for what, bits in (("weights", self.weight_bits), ("inputs", self.in_bits)):
            if isinstance(bits, int) and bits > widest:
                raise ValueError(f"{self.name}: {bits}-bit {what}; an MVU takes at most {widest}-bit operands")
        w = np.asarray(self.weights)
        if self.bipolar_weights:
            if w.dtype != np.uint64 or w.ndim != 2 or w.shape[1] != bnn.words_for(self.in_features):
                raise ValueError(f"{self.name}: weights must be packed uint64 (out, {bnn.words_for(self.in_features)})")
            pad = bnn.valid_mask(self.in_features)
            if np.any(w & ~pad):
                raise ValueError(f"{self.name}: weight pad bits must be 0 (see hwnorm.bnn padding rule)")
            w = np.array(w)
        else:
            w = integer_weights(self.name, w, self.weight_type, f"(out, {self.in_features})", self.in_features)
        w.setflags(write=False)
        object.__setattr__(self, "weights", w)
        if not self.binary:
            t_lo, t_hi = IntType(self.in_bits, self.in_signed).range
            lo = t_lo if self.in_lo is None else int(self.in_lo)
            hi = t_hi if self.in_hi is None else int(self.in_hi)
            if not t_lo <= lo <= hi <= t_hi:
                raise ValueError(f"{self.name}: input range [{lo}, {hi}] is not inside {self.in_type}")
            object.__setattr__(self, "in_lo", lo)
            object.__setattr__(self, "in_hi", hi)
        if self.acc_clip is not None:
            lo, hi = (int(v) for v in self.acc_clip)
            if self.thresholds is not None or lo > hi:
                raise ValueError(f"{self.name}: acc_clip [lo, hi] applies to a raw accumulator output (no thresholds), "
                                 f"got {self.acc_clip!r}")
            object.__setattr__(self, "acc_clip", (lo, hi))
        w_peak = 1 if self.bipolar_weights else max(abs(int(w.min())), abs(int(w.max())), 1)
        peak = self.in_features * w_peak * \
            (1 if self.binary else max(abs(self.in_lo), abs(self.in_hi), 1))
        if peak.bit_length() > COST_LIMITS["accumulator_bits"]:
            raise ValueError(f"{self.name}: the accumulator can reach ±{peak:.3g}, beyond the golden model's int64 "
                             f"(at most ±2^{COST_LIMITS['accumulator_bits']})")
        check_covers(self.name, self.thresholds, self.out_features, self.acc_range)

    # ---- tensors
    @property
    def in_shape(self) -> tuple:
        return (*self.spatial, self.in_features)

    @property
    def out_shape(self) -> tuple:
        return (*self.spatial, self.weights.shape[0])

    @property
    def out_features(self) -> int:
        return self.weights.shape[0]

    @property
    def binary(self) -> bool:
        """Bipolar input (XNOR/popcount with bipolar weights)."""
        return self.in_bits == 1

    @property
    def bipolar_weights(self) -> bool:
        return self.weight_bits == 1

    @property
    def in_type(self):
        return BIPOLAR if self.binary else IntType(self.in_bits, self.in_signed)

    @property
    def in_range(self) -> tuple[int, int]:
        return (0, 1) if self.binary else (self.in_lo, self.in_hi)

    @property
    def weight_type(self):
        return BIPOLAR if self.bipolar_weights else IntType(self.weight_bits, self.weight_signed)

    def weight_matrix(self) -> np.ndarray:
        """The weights as integers (out_features, in_features): ±1 for bipolar weights."""
        if self.bipolar_weights:
            return bnn.unpack_bits(self.weights, self.in_features).astype(np.int64) * 2 - 1
        return self.weights

    @property
    def acc_range(self) -> tuple[int, int]:
        """The accumulator's range over every input: ±K for binary input and bipolar weights,
        ±K·max|x| for integer input and bipolar weights; exact per output row for integer
        weights (the extremes of Σ_k w·x over the input range), over all rows."""
        k = self.in_features
        if self.bipolar_weights:
            if self.binary:
                return -k, k
            peak = max(-self.in_lo, self.in_hi)
            return -k * peak, k * peak
        lo, hi = (-1, 1) if self.binary else (self.in_lo, self.in_hi)
        w = self.weights
        row_hi = np.maximum(w * lo, w * hi).sum(axis=1)
        row_lo = np.minimum(w * lo, w * hi).sum(axis=1)
        return int(row_lo.min()), int(row_hi.max())

    @property
    def acc_type(self) -> IntType:
        return IntType.from_range(*self.acc_range, signed=True)

    @property
    def acc_bits(self) -> int:
        return self.acc_type.bits

    @property
    def out_is_bits(self) -> bool:
        t = self.thresholds
        return t is not None and t.n_thresholds == 1 and t.out_base == 0

    @property
    def out_type(self):
        if self.thresholds is None:
            return self.acc_type if self.acc_clip is None else IntType.from_range(*self.acc_clip, signed=True)
        return BIPOLAR if self.out_is_bits else self.thresholds.out_type

    @property
    def out_range(self) -> tuple[int, int]:
        if self.thresholds is None:
            return self.acc_range if self.acc_clip is None else self.acc_clip
        return self.thresholds.out_range

    # ---- golden model
    def accumulate(self, x) -> np.ndarray:
        if self.binary:
            if not isinstance(x, Bits) or x.n != self.in_features:
                raise ValueError(f"{self.name}: expects packed bits of {self.in_features} channels")
            if self.bipolar_weights:
                return bnn.binary_matmul(x.words, self.weights, self.in_features)
            return igemm(x.unpack().astype(np.int8) * 2 - 1, self.weights, (-1, 1), self.weight_type.range)
        x = as_int_batch(self.name, x, self.in_features)
        lo, hi = self.in_range  # checked by igemm, in its one pass over x
        if self.bipolar_weights:  # ±1 as integers: igemm ran 10–20× faster than bit-serial planes here
            return igemm(x, self._signs, (lo, hi), (-1, 1), what=self.name)
        return igemm(x, self.weights, (lo, hi), self.weight_type.range, what=self.name)

    @functools.cached_property
    def _signs(self) -> np.ndarray:
        """Bipolar weights as int8 ±1 (out_features, in_features), for integer inputs."""
        return self.weight_matrix().astype(np.int8)

    def run(self, x):
        if self.out_is_bits and self.binary and self.bipolar_weights and isinstance(x, Bits) \
                and x.n == self.in_features:
            words = bnn.binary_dense_threshold(x.words, self.weights, self.in_features, self.thresholds.thresholds[:, 0])
            return Bits(words, self.out_features)
        if self.thresholds is not None and not self.binary and not isinstance(x, Bits) \
                and self.in_features < FUSED_MAX_K:
            # integer inputs, a dot product shorter than one vector of int8 lanes (a first layer's
            # 3×3 window): products, thresholds and packing fused, vectorized over the outputs
            x = as_int_batch(self.name, x, self.in_features)
            w = self._signs if self.bipolar_weights else self.weights
            t = self.thresholds
            out = igemm_threshold(x, w, t.thresholds, t.out_base, self.in_range,
                                  (-1, 1) if self.bipolar_weights else self.weight_type.range, bits=self.out_is_bits,
                                  what=self.name)
            return Bits(out, self.out_features) if self.out_is_bits else out
        acc = self.accumulate(x)
        if self.thresholds is None:
            if self.acc_clip is not None:
                acc = np.clip(acc, *self.acc_clip)
            return acc.astype(np.int64, copy=False)
        out = self.thresholds.apply(acc)
        return Bits(bnn.pack_bits(out), self.out_features) if self.out_is_bits else out

    # ---- JSON
    def spec_fields(self) -> dict:
        narrowed = not self.binary and (self.in_lo, self.in_hi) != self.in_type.range
        return {"in_features": self.in_features, "in_bits": self.in_bits, "in_signed": self.in_signed,
                **({"in_range": [self.in_lo, self.in_hi]} if narrowed else {}),
                **({} if self.bipolar_weights else {"weight_type": self.weight_type.name}),
                "weights": _words_to_hex(self.weights) if self.bipolar_weights else self.weights.tolist(),
                "thresholds": None if self.thresholds is None else self.thresholds.to_dict(),
                **({} if self.acc_clip is None else {"acc_clip": list(self.acc_clip)})}

    json_fields = {"name": (str,), "in_features": (int,), "in_bits": (int,), "in_signed": (bool,),
                   "weights": (list,), "thresholds": (dict, type(None))}

    @classmethod
    def from_dict(cls, d: dict) -> "MVULayer":
        thr = None if d["thresholds"] is None else ThresholdSpec.from_dict(d["thresholds"])
        wt = element_type(d.get("weight_type", "bipolar"))
        if wt.is_bipolar:
            weights = _hex_to_words(d["weights"], d["in_features"])
        else:
            weights = int_array(d["weights"], "weights", wt)
        lo, hi = (whole(v, "in_range", optional=True) for v in d.get("in_range", [None, None]))
        clip = d.get("acc_clip")
        if clip is not None and (not isinstance(clip, list) or len(clip) != 2
                                 or not all(isinstance(v, int) and not isinstance(v, bool) for v in clip)):
            raise ValueError(f"layer {d.get('name', '?')!r}: acc_clip must be [lo, hi] integers, got {clip!r}"[:200])
        return cls(weights, d["in_features"], thr, d["in_bits"], d["in_signed"], d["name"], wt.bits, wt.signed,
                   lo, hi, spatial_of(d), None if clip is None else tuple(clip))

    # ---- folding
    def foldings(self) -> list[dict]:
        """Every (PE, SIMD) pair the hardware can take, fewest PE·SIMD first (ties: more SIMD, the
        wider datapath shares more logic)."""
        pairs = [(pe, simd) for pe in divisors(self.out_features) for simd in divisors(self.in_features)]
        folds = [{"pe": pe, "simd": simd} for pe, simd in sorted(pairs, key=lambda p: (p[0] * p[1], -p[1]))]
        return [f for f in folds if self.can_fold(f)]

    def preferred_in_lanes(self) -> int:
        return largest_divisor(self.in_features, MAX_AUTO_LANES)

    def auto_fold(self, prev_lanes, next_layer) -> dict:
        """The largest PE ≤ 16 the hardware can take, at the preferred SIMD — or, in a
        convolution, as wide as the window's beats (then it reads a window as fast as it comes)."""
        simd = prev_lanes if self.spatial and prev_lanes and self.in_features % prev_lanes == 0 \
            else self.preferred_in_lanes()
        for pe in sorted(divisors(self.out_features), reverse=True):
            if pe <= MAX_AUTO_PE and self.can_fold({"pe": pe, "simd": simd}):
                return {"pe": pe, "simd": simd}
        return {"pe": 1, "simd": simd}  # too wide even so: the block says why when it is built

    # ---- hardware
    def block(self, fold: dict) -> "MVUBlock":
        fold = self.parse_fold(fold)
        return MVUBlock(self, fold.get("pe", 1), fold.get("simd", 1))

    def describe(self, block) -> dict:
        return {"layer": self.name, "pe": block.pe, "simd": block.simd, "spec_hash": content_hash(self.to_dict()),
                "in_features": self.in_features, "out_features": self.out_features, "in_bits": self.in_bits,
                "acc_bits": self.acc_bits}

    def summary(self) -> dict:
        return {**super().summary(), "in_bits": self.in_bits,
                **({} if self.bipolar_weights else {"weight_bits": self.weight_bits}), "acc_bits": self.acc_bits,
                "thresholds": 0 if self.thresholds is None else self.thresholds.n_thresholds}

    # ---- energy
    def energy_actions(self, fold: dict) -> dict:
        """Per MAC: XNOR + popcount input bit (both bipolar), an add of ±x or ±w (one side
        bipolar), or a multiply and a product add (both integer); then one accumulate per output
        row per input fold, and the threshold compares."""
        k, n = self.in_features, self.out_features
        counts: dict = {}
        if self.binary and self.bipolar_weights:
            counts["xnor_bits"] = counts["popcount_input_bits"] = k * n
        elif self.binary or self.bipolar_weights:
            other = self.weight_bits if self.binary else self.in_bits
            counts[f"add_{other + 1}b"] = k * n
        else:
            counts[f"mult_{max(self.in_bits, self.weight_bits)}b"] = k * n
            counts[f"add_{self.in_bits + self.weight_bits}b"] = k * n
        key = f"add_{self.acc_bits}b"
        counts[key] = counts.get(key, 0) + n * (k // fold["simd"])  # one accumulate per PE per input fold
        t = self.thresholds
        if t is not None:
            counts["comparator_bits"] = n * t.channel_bits
        return counts

    has_weight_memory = True

    def mac_count(self) -> int:
        return self.vectors * self.in_features * self.out_features

    def stored_bits(self) -> list[np.ndarray]:
        if self.bipolar_weights:
            out = [bnn.unpack_bits(self.weights, self.in_features).reshape(-1).astype(np.uint8)]
        else:
            out = [bit_planes(self.weights, self.weight_type.width).reshape(-1)]
        t = self.thresholds
        if t is not None:
            out.append(bit_planes(t.thresholds, t.threshold_type.width).reshape(-1))
        return out


class MVUBlock(LayerBlock, Block):
    """An :class:`MVULayer` folded ``pe`` × ``simd`` (module docstring)."""

    kind = MVULayer.kind
    # rom_width: on 4-input LUTs a weight bit read from a 16-row ROM leaves no input for its XNOR
    cost_features = {
        "mvu": {"lut": ("blocks", "popcount", "adder", "compare", "mux", "rom_luts", "rom_width", "ram_bits",
                        "ram_width"), "ff": FF_FEATURES, "carry": (*CARRY_FEATURES, "popcount")},
        "mvu_mac": {"lut": ("blocks", "adder", "compare", "mux", "rom_luts", "rom_width", "ram_bits", "ram_width",
                            "mult_bits", "table_bits"),
                    "ff": FF_FEATURES, "carry": ("blocks", "adder", "compare", "mult_bits")}}
    stored = None  # StoredWeights (hwnorm.stt.store): the weight ROM holds MLC cells, decoded on read

    @property
    def table_products(self) -> bool:
        """Whether each lane's product is a lookup table over both operands (narrow), not a multiplier."""
        return table_product(self.layer.in_bits, self.layer.weight_bits)

    @property
    def decoder_levels(self) -> int:
        """LUT levels of the stored weight row's decoder (0: plain wiring or no STT-RAM store)."""
        return 0 if self.stored is None else self.stored.codec.decoder_levels()

    @property
    def cell_ranks(self) -> int:
        """Registers a stored row's cells pass between the memory and the decoder (of the
        operand ranks): the memory's read data and the decoder do not fit one stage."""
        levels = self.decoder_levels
        return self.timing.memory_ranks(self.sf * self.nf > 1, self.timing.model.luts(levels)) if levels else 0

    @property
    def depth(self) -> int:
        """Clocks from the last issue of a fold to its output: issue → multiply-accumulate →
        threshold → output register, plus the ranks the target clock adds (tree, accumulator,
        threshold stage)."""
        return (3 + self.operand_ranks + self.term_ranks + len(self.tree_cuts) + int(self.split_acc) + self.threshold_ranks
                + len(self.count_cuts))

    @property
    def weight_bank_depth(self) -> int:
        """Rows per bank of the weight ROM, split by depth (0: one memory). With a target clock, a
        ROM deeper than one column of block RAM tiles is banked: each bank's read data is registered
        (that register becomes the block RAM's output register on ECP5) before a mux picks the
        bank — Yosys' own depth cascade puts its mux between the RAM and the register, where the
        RAM's clock-to-out (5.8 ns on ECP5) and the mux share one clock."""
        if not self.timing.on or self.stored is not None or self.sf * self.nf <= 1:
            return 0
        return block_ram_bank_depth(self.pe * self.simd * self.layer.weight_bits, self.sf * self.nf,
                                    TARGETS[self.timing.target])

    @property
    def weight_banks(self) -> int:
        """Banks of the weight ROM (1: not banked)."""
        depth = self.weight_bank_depth
        return -(-self.sf * self.nf // depth) if depth else 1

    @property
    def weight_address_copies(self) -> int:
        """Copies of the weight ROM's address counter, each addressing a slice of at most
        :data:`ROM_ADDRESS_FANOUT` of its output bits. A ROM left in logic is its address register
        and a LUT tree per output bit: one register driving every bit of a 1,024-bit row is a
        net of thousands of loads across the die (6.5 of 7.7 ns on the whole CIFAR top). The
        copies count on their own (each its own feedback), so synthesis cannot merge them."""
        rows, width = self.sf * self.nf, self.pe * self.simd * self.layer.weight_bits
        if not self.timing.on or self.stored is not None or rows <= 1 or self.weight_banks > 1 \
                or self._in_block_ram(width, rows):
            return 1
        return -(-width // ROM_ADDRESS_FANOUT)

    @property
    def weight_mux_cuts(self) -> tuple[int, ...]:
        """The levels of a banked weight ROM's mux tree (:func:`hwnorm.hdl.common.banked_rom`, one
        of :func:`mux_fan_in` banks per level) after which a register goes: its first level starts
        at the banks' registers, the block RAMs' output registers far from the logic that gathers
        them; after the last level come the multiply's LUT and adder."""
        if self.weight_banks <= 1:
            return ()
        m = self.timing.model
        levels = [m.luts(1)] * mux_levels(self.weight_banks, TARGETS[self.timing.target])
        if not self.weight_bank_far_ranks:
            levels[0] += m.block_ram_register_out
        return self.timing.cuts(levels, tail=self.operand_delay)

    @property
    def weight_bank_far_ranks(self) -> int:
        """Fabric registers after each bank's block RAM output register, before the bank mux: one
        when the route out of the block RAM row and a mux level do not fit one stage — a level
        over banks far apart is two routed LUT levels (the LUT and the slice's wide mux fed from
        several places): the whole CIFAR top's 132 MHz path, 6.0 of its 7.6 ns routing, from a
        DP16KD output register into conv_features_18's 9-bank mux."""
        if self.weight_banks <= 1:
            return 0
        m = self.timing.model
        return int(not self.timing.fits(m.block_ram_register_out, m.luts(1), m.luts(1)))

    @property
    def weight_mux_fan_in(self) -> int:
        """Banks one level of the bank mux picks from."""
        return mux_fan_in(TARGETS[self.timing.target])

    @property
    def weight_mux_register_rows(self) -> int:
        """Weight rows held in registers by a banked ROM: one per bank, and one per mux output of
        each registered level."""
        if self.weight_banks <= 1:
            return 0
        fan_in, outputs = self.weight_mux_fan_in, self.weight_banks
        rows = self.weight_banks * (1 + self.weight_bank_far_ranks)
        for level in range(max(self.weight_mux_cuts, default=-1) + 1):
            outputs = -(-outputs // fan_in)
            rows += outputs if level in self.weight_mux_cuts else 0
        return rows

    @property
    def input_written_late(self) -> bool:
        """Whether the input buffer (a RAM: SF > 1 and NF > 1) is written a clock late, from
        registers (:mod:`hwnorm.hdl.mvu`): with a target clock, so ``fire`` drives one flip-flop,
        not the write enables of a wide RAM."""
        return self.timing.on and self.sf > 1 and self.nf > 1

    @property
    def replay_registered(self) -> bool:
        """Whether the input buffer's read data (a RAM: SF > 1 and NF > 1) is registered before the
        mux that picks the stream's beat or the replayed one: the first operand rank moved ahead
        of the mux, so a block RAM's output register takes it. Not for a buffer one LUT-RAM cell
        deep (its read is fast): there the mux would sit after the registers, in every lane's
        XNOR or product LUTs (tfc_mvu on 7-series: +111 LUTs)."""
        lutram_depth = TARGETS[self.timing.target].rules["lutram"][0]
        return self.operand_ranks > 0 and self.nf > 1 and self.sf > max(lutram_depth, 1)

    @property
    def operand_ranks(self) -> int:
        """The weights and the replayed input come from memories: registers their read data passes
        before the multiply (:meth:`hwnorm.timing.Timing.memory_ranks`). A banked weight ROM has
        its banks' registers first, then its bank mux, then one more rank if the mux and the
        multiply do not fit one stage."""
        memory = self.sf * self.nf > 1  # (the input buffer exists only then too)
        m = self.timing.model
        levels = self.decoder_levels
        if self.weight_banks > 1:
            return 1 + self.weight_bank_far_ranks + len(self.weight_mux_cuts)
        if not levels:
            return self.timing.memory_ranks(memory, self.operand_delay)
        # a stored row: memory → (cell ranks) → decoder → (one more rank if it does not fit) → multiply
        before = (m.memory_out(),) if memory and not self.cell_ranks else ()
        late = self.timing.on and not self.timing.fits(*before, m.luts(levels), self.operand_delay)
        return self.cell_ranks + int(late)

    @property
    def threshold_ranks(self) -> int:
        """Registers the thresholds ROM's read data (and the accumulators beside it) passes before
        the compares."""
        t = self.layer.thresholds
        memory = t is not None and not constant_rows(self.threshold_rows())
        return self.timing.memory_ranks(memory, self.timing.model.compare(self.layer.acc_bits),
                                        block_ram=memory and self._in_block_ram(self.pe * t.channel_bits, self.nf))

    def _in_block_ram(self, width: int, depth: int) -> bool:
        """Whether a ROM of this shape goes to block RAM on the timing's target."""
        return self.timing.on and goes_to_block_ram("rom", width, depth, TARGETS[self.timing.target])

    @property
    def tree_cuts(self) -> tuple[int, ...]:
        """Levels of the SIMD adder (popcount) tree followed by a register rank; the accumulate
        adder closes the tree's last stage."""
        bits, m = 1 if self.xnor else self.term_bits, self.timing.model
        levels = [m.adder(bits + level + 1) for level in range(tree_levels(self.simd))]
        if levels and not self.term_ranks:  # the terms are computed in the first level's stage
            levels[0] += self.term_delay
        return self.timing.cuts(levels, tail=m.adder(self.raw_type.width))

    @property
    def operand_delay(self) -> float:
        """The logic a weight or input read meets before anything is registered (ns): a LUT (an
        XNOR, the ``±`` mux, a product table) and an adder of the term's width (the popcount's
        first level, or the negation of ``±x``)."""
        m = self.timing.model
        return m.luts(1) + m.adder(self.term_bits)

    @property
    def term_delay(self) -> float:
        """Each lane's term before the adder tree (ns): ``±x`` / ``±w`` is a negation (a carry
        chain) and a mux, a narrow product a table LUT, a wide one a multiplier; an XNOR is part of
        the popcount's first level."""
        m, layer = self.timing.model, self.layer
        if self.xnor or not self.timing.on:
            return 0.0
        if self.table_products:
            return m.luts(1)
        if layer.binary or layer.bipolar_weights:
            return self.operand_delay
        return m.multiply(layer.in_bits, layer.weight_bits)

    @property
    def term_ranks(self) -> int:
        """A register after each lane's term, before the adder tree, when the term and the tree's
        first adder (the accumulate adder for SIMD 1) do not fit one stage (the CIFAR CNV's first
        layer, 8-bit pixels × ±1: its negation, mux and first adder in one stage set the whole
        top's clock at 120 MHz on ECP5)."""
        m = self.timing.model
        first = m.adder(self.term_bits + 1) if self.simd > 1 else m.adder(self.raw_type.width)
        return int(self.term_delay > 0 and not self.timing.fits(self.term_delay, first))

    @property
    def split_acc(self) -> bool:
        """XNOR lanes: ``2·popcount − K`` gets a stage of its own (read from the running sum's
        register) when it does not fit after the accumulate adder."""
        m = self.timing.model
        return self.xnor and not self.timing.fits(m.adder(self.raw_type.width), m.adder(self.layer.acc_bits))

    @property
    def count_cuts(self) -> tuple[int, ...]:
        t = self.layer.thresholds
        return () if t is None else count_cuts(self.timing, t, self.layer.acc_bits)

    @property
    def fold(self) -> Fold:
        return Fold(pe=self.pe, simd=self.simd)

    def __init__(self, layer: MVULayer, pe: int = 1, simd: int = 1):
        self.pe = check_fold(layer.name, "PE", pe, layer.out_features, "output rows")
        self.simd = check_fold(layer.name, "SIMD", simd, layer.in_features, "input columns")
        self.layer, self.name = layer, layer.name
        self.sf, self.nf = layer.in_features // simd, layer.out_features // pe
        self.in_type, self.out_type = layer.in_type, layer.out_type
        self.in_lanes, self.out_lanes = simd, pe
        self.in_beats, self.out_beats = self.sf, self.nf
        # replaying the buffer for NF > 1 stalls the input: a FIFO of one vector lets the producer run ahead
        self.input_fifo_depth = max(FIFO_MIN_DEPTH, self.sf + 1) if self.nf > 1 else 0
        check_signal_bits(layer.name, "weight ROM row (PE × SIMD × weight bits)", pe * simd * layer.weight_bits,
                          "PE or SIMD")
        t = layer.thresholds
        if t is not None:
            check_signal_bits(layer.name, "threshold ROM row (PE × thresholds × width)",
                              pe * t.channel_bits, "PE")

    @property
    def initiation_interval(self) -> int:
        return self.sf * self.nf

    def schedule(self, arrivals: list[int]) -> list[int]:
        """Output-valid cycles for input beats valid from ``arrivals`` (output always ready)."""
        return self._issue(arrivals)[1]

    def accepts(self, arrivals: list[int]) -> list[int]:
        """Input beats are taken in the first neuron fold's issues (the others replay them)."""
        return self._issue(arrivals)[0]

    def _issue(self, arrivals: list[int]) -> tuple[list[int], list[int]]:
        """(take clocks, output clocks). Beat ``j`` of the first neuron fold issues at
        ``t_j = max(t_{j-1} + 1, a_j)``, the other folds' ``(NF − 1)·SF`` replays between vectors.
        With ``g(j)`` the clocks a stall-free run has spent by beat ``j``, ``t_j − g(j)`` is the
        running maximum of ``a_j − g(j)`` (and of 0, the start): one vectorized pass, not a loop
        over every clock — a slow folding runs millions of them per image."""
        sf, nf = self.sf, self.nf
        vectors = len(arrivals) // sf
        a = np.asarray(arrivals[:vectors * sf], dtype=np.int64)
        j = np.arange(a.size, dtype=np.int64)
        g = j + (nf - 1) * sf * (j // sf)
        taken = g + np.maximum(np.maximum.accumulate(a - g), 0) if a.size else a
        ends = taken[sf - 1::sf]  # each vector's first fold ends here; fold k ends k·SF clocks later
        out = (ends[:, None] + sf * np.arange(nf, dtype=np.int64)[None, :] + self.depth).reshape(-1)
        return taken.tolist(), out.tolist()

    @property
    def cost_key(self) -> str:
        """``mvu`` for XNOR / ±x adder lanes (a bipolar operand), ``mvu_mac`` for multiplier lanes:
        the two are built from different logic, so their costs are fitted apart."""
        return "mvu" if self.layer.binary or self.layer.bipolar_weights else "mvu_mac"

    @property
    def xnor(self) -> bool:
        """Both operands bipolar: XNOR + popcount lanes."""
        return self.layer.binary and self.layer.bipolar_weights

    @property
    def raw_type(self) -> IntType:
        """The running sum over synapse folds: a popcount (0..K) for the XNOR datapath, else the
        signed accumulator."""
        layer = self.layer
        return IntType.from_range(0, layer.in_features) if self.xnor else layer.acc_type

    @property
    def term_bits(self) -> int:
        """Width of one lane's term before the adder tree: ±x or ±w (one side bipolar), x·w."""
        layer = self.layer
        if layer.binary or layer.bipolar_weights:
            return (layer.weight_bits if layer.binary else layer.in_bits) + 1
        return layer.in_bits + layer.weight_bits

    def threshold_rows(self) -> list:
        return lane_rows(self.layer.thresholds, self.pe)

    def weight_rows(self) -> list[int]:
        """The weight ROM: row ``nf·SF + sf`` holds the PE × SIMD weights of that fold, lane-major
        (element ``p·SIMD + s`` at bits ``[(p·SIMD + s)·W, …)``, W = 1 for bipolar weights: bit 1 ↔ +1)."""
        layer = self.layer
        if layer.bipolar_weights:
            w, width = bnn.unpack_bits(layer.weights, layer.in_features), 1  # (rows, K) of 0 / 1
        else:
            width = layer.weight_type.width
            w = layer.weights & ((1 << width) - 1)  # two's complement fields
        rows = []
        for nf in range(self.nf):
            for sf in range(self.sf):
                block = w[nf * self.pe:(nf + 1) * self.pe, sf * self.simd:(sf + 1) * self.simd]
                rows.append(sum(int(b) << (k * width) for k, b in enumerate(block.reshape(-1))))
        return rows

    @property
    def element_bits(self) -> int:
        """Bits of one weight in a ROM row (1 for bipolar weights)."""
        return 1 if self.layer.bipolar_weights else self.layer.weight_type.width

    def weights_from_rows(self, rows: list[int]) -> np.ndarray:
        """The inverse of :meth:`weight_rows`: the layer's ``weights`` (in the layer's own format)
        that a ROM holding ``rows`` multiplies by — e.g. a weight memory read back with faults."""
        layer, width = self.layer, self.element_bits
        if len(rows) != self.nf * self.sf:
            raise ValueError(f"{layer.name}: {len(rows)} weight rows, expected {self.nf * self.sf}")

        bits = rows_to_bits(rows, self.pe * self.simd * width).reshape(self.nf, self.sf, self.pe, self.simd, width)
        fields = (bits.astype(np.int64) << np.arange(width)).sum(axis=-1)  # (nf, sf, pe, simd)
        w = fields.transpose(0, 2, 1, 3).reshape(layer.out_features, layer.in_features)
        if layer.bipolar_weights:
            return bnn.pack_bits(w.astype(np.uint8))
        if layer.weight_type.signed:
            w = np.where(w >= 1 << (width - 1), w - (1 << width), w)
        return w

    def pipeline_register_bits(self) -> int:
        """Flip-flops the target clock adds (hwnorm.timing): the operand registers, the tree's
        ranks per PE, the thresholds' registers and ranks, and the flags that travel along."""
        layer, pe, simd = self.layer, self.pe, self.simd
        bits = 1 if self.xnor else self.term_bits
        out = pe * tree_register_bits(simd, bits, self.tree_cuts)
        ranks = len(self.tree_cuts) + self.operand_ranks + self.term_ranks
        out += self.term_ranks * pe * simd * self.term_bits
        cells = 0 if self.stored is None else 2 * self.stored.cells.shape[1]
        out += (self.operand_ranks + self.replay_registered) * simd * layer.in_bits + self.cell_ranks * cells \
            + (self.weight_mux_register_rows if self.weight_banks > 1 else self.operand_ranks - self.cell_ranks) \
            * pe * simd * layer.weight_bits
        t = layer.thresholds
        if t is not None:
            out += self.threshold_ranks * (pe * (t.channel_bits + layer.acc_bits) + 1)
            out += count_register_bits(self.count_cuts, t, pe) + len(self.count_cuts)
        late_write = (1 + counter_bits(self.sf)) if self.input_written_late else 0
        return out + ranks * (3 + counter_bits(self.nf)) + int(self.split_acc) * (1 + counter_bits(self.nf)) \
            + late_write  # the input buffer's write enable and address, a clock late (hwnorm.hdl.mvu)

    def inventory(self) -> Inventory:
        layer, pe, simd, sf, nf = self.layer, self.pe, self.simd, self.sf, self.nf
        x_bits = simd * layer.in_bits
        raw_bits = self.raw_type.width
        out_bits = pe * self.out_type.width
        t = layer.thresholds
        thr_bits = 0 if t is None else t.channel_bits
        stored = self.stored
        row_bits = pe * simd * layer.weight_bits if stored is None else 2 * stored.cells.shape[1]
        banks, bank_depth = self.weight_banks, self.weight_bank_depth
        if banks > 1:
            mems = [MemoryUse("rom", row_bits, min(bank_depth, sf * nf - b * bank_depth)) for b in range(banks)]
        else:
            mems = [MemoryUse("rom", row_bits, sf * nf)] if sf * nf > 1 else []
        decoder = 0 if stored is None else stored.codec.decoder_luts(stored.cells.shape[1])
        if t is not None and not constant_rows(self.threshold_rows()):
            mems.append(MemoryUse("rom", pe * thr_bits, nf))
        if nf > 1 and sf > 1:
            mems.append(MemoryUse("ram", x_bits, sf))
        counters = counter_bits(sf) + counter_bits(nf) + self.weight_address_copies * counter_bits(sf * nf)
        products = not (layer.binary or layer.bipolar_weights)
        narrow = self.table_products
        lanes = ((layer.in_bits, layer.weight_bits),) * (pe * simd) if products else ()
        return Inventory(
            popcount=pe * simd if self.xnor else 0,
            adder=pe * (raw_bits + layer.acc_bits) + (0 if self.xnor else pe * simd * self.term_bits) + counters,
            compare=(0 if t is None else compare_bits(t, pe)) + (2 * pe * layer.acc_bits if layer.acc_clip else 0),
            mux=(x_bits if nf > 1 else 0) + (banks - 1) * row_bits, luts=decoder,
            register=x_bits * (2 if nf > 1 and sf == 1 else 1) + pe * (raw_bits + layer.acc_bits) + out_bits
            + counters + counter_bits(nf) + 6 + self.pipeline_register_bits(),
            memories=tuple(mems),
            multipliers=() if narrow else lanes, table_products=lanes if narrow else ())

    def component(self):
        from hwnorm.hdl.mvu import MVU  # Amaranth: loaded when hardware is built
        return MVU(self)
