"""The network IR: a list of frozen layer specs, and the golden model that executes it.

Activations between layers are integers. A layer whose output is one bit per channel hands on
packed uint64 words (:mod:`hwnorm.bnn` layout); wider outputs are int64 arrays ``(batch, C)``::

    uint8 pixels ─► InputThreshold ─► bits ─► MVTU ─► bits ─► … ─► MVTU (no thresholds) ─► acc ─► QuantBN ─► scores
                    (ThresholdSpec)          (weights + ThresholdSpec)                           (BNSpec)

Every layer carries its integer constants only; importers (:mod:`hwnorm.qonnx`, the Python
API) build them; the HDL generator, estimators and reports read the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit, prange

from hwnorm import bnn
from hwnorm.bnn import ThresholdSpec
from hwnorm.exactfit import signed_bits
from hwnorm.qbn import BNSpec
from hwnorm.spec import content_hash

__all__ = ["Bits", "InputThreshold", "MVTU", "QuantBN", "Network", "layer_from_dict"]


@dataclass(frozen=True)
class Bits:
    """A batch of binary activations: ``words`` (batch, ⌈n/64⌉) uint64, ``n`` real channels."""

    words: np.ndarray
    n: int

    def unpack(self) -> np.ndarray:
        return bnn.unpack_bits(self.words, self.n)


def _as_int_batch(name: str, x, channels: int) -> np.ndarray:
    if isinstance(x, Bits):
        raise ValueError(f"{name}: expects integer activations, got packed bits")
    x = np.asarray(x)
    if x.dtype.kind not in "iu" or x.ndim != 2 or x.shape[1] != channels:
        raise ValueError(f"{name}: expects an integer array (batch, {channels}), got {x.dtype} {x.shape}")
    return x


# ------------------------------------------------------------------ InputThreshold
@njit(cache=True, parallel=True)
def _threshold_pack(x, thr, out):
    """One threshold per element (``x ≥ T`` → bit 1), packed little-endian per 64 channels."""
    m, c = x.shape
    for i in prange(m):
        for wo in range(out.shape[1]):
            word = np.uint64(0)
            for jj in range(min(64, c - 64 * wo)):
                j = 64 * wo + jj
                if np.int64(x[i, j]) >= thr[j]:
                    word |= np.uint64(1) << np.uint64(jj)
            out[i, wo] = word


@dataclass(frozen=True, eq=False)
class InputThreshold:
    """Elementwise multi-threshold of the integer network input (e.g. pixel binarization).

    ``in_bits`` / ``in_signed`` declare the input type; the spec's accumulator range is that
    type's range. One threshold per channel gives packed bits, more give int64 levels.
    """

    thresholds: ThresholdSpec
    in_bits: int = 8
    in_signed: bool = False
    name: str = "input"

    def __post_init__(self):
        lo, hi = self.in_range
        if (self.thresholds.acc_lo, self.thresholds.acc_hi) != (lo, hi):
            raise ValueError(f"{self.name}: threshold range [{self.thresholds.acc_lo}, {self.thresholds.acc_hi}] "
                             f"must equal the {self.in_bits}-bit input range [{lo}, {hi}]")

    @property
    def in_range(self) -> tuple[int, int]:
        b = self.in_bits
        return (-(1 << (b - 1)), (1 << (b - 1)) - 1) if self.in_signed else (0, (1 << b) - 1)

    @property
    def in_features(self) -> int:
        return self.thresholds.channels

    @property
    def out_features(self) -> int:
        return self.thresholds.channels

    @property
    def out_is_bits(self) -> bool:
        return self.thresholds.n_thresholds == 1 and self.thresholds.out_base == 0

    def run(self, x):
        x = _as_int_batch(self.name, x, self.in_features)
        lo, hi = self.in_range
        if x.size and (x.min() < lo or x.max() > hi):
            raise ValueError(f"{self.name}: input outside the declared {self.in_bits}-bit range [{lo}, {hi}]")
        if not self.out_is_bits:
            return self.thresholds.apply(x)
        out = np.empty((x.shape[0], bnn.words_for(self.out_features)), np.uint64)
        _threshold_pack(np.ascontiguousarray(x), np.ascontiguousarray(self.thresholds.thresholds[:, 0]), out)
        return Bits(out, self.out_features)

    def to_dict(self) -> dict:
        return {"kind": "input_threshold", "name": self.name, "in_bits": self.in_bits,
                "in_signed": self.in_signed, "thresholds": self.thresholds.to_dict()}


# ------------------------------------------------------------------ MVTU
def _words_to_hex(words: np.ndarray) -> list[str]:
    return [row.astype("<u8").tobytes().hex() for row in words]


def _hex_to_words(rows: list[str], k: int) -> np.ndarray:
    w = np.array([np.frombuffer(bytes.fromhex(r), "<u8") for r in rows], dtype=np.uint64)
    if w.ndim != 2 or w.shape[1] != bnn.words_for(k):
        raise ValueError(f"weights must be rows of {bnn.words_for(k)} hex-encoded uint64 words")
    return w


@dataclass(frozen=True, eq=False)
class MVTU:
    """Matrix-vector(-threshold) unit with ±1 weights (FINN's MVAU, binary weights).

    ``weights`` (out_features, ⌈in_features/64⌉) packed, already flipped for γ < 0 channels.
    Input either binary (``in_bits == 1``: ±1, XNOR/popcount) or ``in_bits``-wide integers
    (bit-serial planes). ``thresholds`` None hands on the raw accumulator.
    """

    weights: np.ndarray
    in_features: int
    thresholds: ThresholdSpec | None = None
    in_bits: int = 1
    in_signed: bool = False
    name: str = "mvtu"

    def __post_init__(self):
        w = np.asarray(self.weights)
        if w.dtype != np.uint64 or w.ndim != 2 or w.shape[1] != bnn.words_for(self.in_features):
            raise ValueError(f"{self.name}: weights must be packed uint64 (out, {bnn.words_for(self.in_features)})")
        pad = bnn.valid_mask(self.in_features)
        if np.any(w & ~pad):
            raise ValueError(f"{self.name}: weight pad bits must be 0 (see hwnorm.bnn padding rule)")
        w = np.array(w)
        w.setflags(write=False)
        object.__setattr__(self, "weights", w)
        t = self.thresholds
        if t is not None:
            if t.channels != self.out_features:
                raise ValueError(f"{self.name}: {t.channels} threshold channels for {self.out_features} outputs")
            lo, hi = self.acc_range
            if t.acc_lo > lo or t.acc_hi < hi:
                raise ValueError(f"{self.name}: thresholds cover [{t.acc_lo}, {t.acc_hi}], the accumulator "
                                 f"reaches [{lo}, {hi}]")

    @property
    def out_features(self) -> int:
        return self.weights.shape[0]

    @property
    def in_range(self) -> tuple[int, int]:
        """Range of one input element: bit 0 / 1 (−1 / +1) for binary input, else the integer type's."""
        b = self.in_bits
        if b == 1:
            return 0, 1
        return (-(1 << (b - 1)), (1 << (b - 1)) - 1) if self.in_signed else (0, (1 << b) - 1)

    @property
    def acc_range(self) -> tuple[int, int]:
        """Exact accumulator range: ±K for binary input, ±K·max|x| for integer input."""
        k = self.in_features
        if self.in_bits == 1:
            return -k, k
        peak = max(-self.in_range[0], self.in_range[1])
        return -k * peak, k * peak

    @property
    def acc_bits(self) -> int:
        return signed_bits(*self.acc_range)

    @property
    def out_is_bits(self) -> bool:
        t = self.thresholds
        return t is not None and t.n_thresholds == 1 and t.out_base == 0

    def accumulate(self, x) -> np.ndarray:
        if self.in_bits == 1:
            if not isinstance(x, Bits) or x.n != self.in_features:
                raise ValueError(f"{self.name}: expects packed bits of {self.in_features} channels")
            return bnn.binary_matmul(x.words, self.weights, self.in_features)
        x = _as_int_batch(self.name, x, self.in_features)
        return bnn.int_binary_matmul(x, self.weights, self.in_features, self.in_bits, self.in_signed)

    def run(self, x):
        if self.out_is_bits and self.in_bits == 1 and isinstance(x, Bits) and x.n == self.in_features:
            words = bnn.binary_dense_threshold(x.words, self.weights, self.in_features, self.thresholds.thresholds[:, 0])
            return Bits(words, self.out_features)
        acc = self.accumulate(x)
        if self.thresholds is None:
            return acc.astype(np.int64, copy=False)
        out = self.thresholds.apply(acc)
        return Bits(bnn.pack_bits(out), self.out_features) if self.out_is_bits else out

    def to_dict(self) -> dict:
        return {"kind": "mvtu", "name": self.name, "in_features": self.in_features, "in_bits": self.in_bits,
                "in_signed": self.in_signed, "weights": _words_to_hex(self.weights),
                "thresholds": None if self.thresholds is None else self.thresholds.to_dict()}


# ------------------------------------------------------------------ QuantBN
@dataclass(frozen=True, eq=False)
class QuantBN:
    """An exact quantized BN (:class:`hwnorm.qbn.BNSpec`) on integer activations."""

    spec: BNSpec
    name: str = "qbn"

    @property
    def in_features(self) -> int:
        return self.spec.channels

    @property
    def out_features(self) -> int:
        return self.spec.channels

    out_is_bits = False

    def run(self, x):
        x = _as_int_batch(self.name, x, self.in_features)
        return self.spec.apply(x).astype(np.int64)

    def to_dict(self) -> dict:
        return {"kind": "qbn", "name": self.name, "spec": self.spec.to_dict()}


def layer_from_dict(d: dict):
    kind = d.get("kind")
    try:
        if kind == "input_threshold":
            return InputThreshold(ThresholdSpec.from_dict(d["thresholds"]), d["in_bits"], d["in_signed"], d["name"])
        if kind == "mvtu":
            thr = None if d["thresholds"] is None else ThresholdSpec.from_dict(d["thresholds"])
            return MVTU(_hex_to_words(d["weights"], d["in_features"]), d["in_features"], thr, d["in_bits"],
                        d["in_signed"], d["name"])
        if kind == "qbn":
            return QuantBN(BNSpec.from_dict(d["spec"]), d["name"])
    except KeyError as e:
        raise ValueError(f"layer {d.get('name', '?')!r}: missing field {e.args[0]!r}") from None
    raise ValueError(f"unknown layer kind {kind!r}; allowed: input_threshold, mvtu, qbn")


# ------------------------------------------------------------------ Network
@dataclass(frozen=True, eq=False)
class Network:
    """A feed-forward chain of layer specs; ``run`` is the golden model on a batch."""

    layers: tuple
    name: str = "network"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        layers = tuple(self.layers)
        if not layers:
            raise ValueError(f"{self.name}: a network needs at least one layer")
        for prev, nxt in zip(layers, layers[1:]):
            if prev.out_features != nxt.in_features:
                raise ValueError(f"{self.name}: {prev.name} gives {prev.out_features} features, "
                                 f"{nxt.name} takes {nxt.in_features}")
            wants_bits = isinstance(nxt, MVTU) and nxt.in_bits == 1
            if wants_bits != prev.out_is_bits:
                raise ValueError(f"{self.name}: {nxt.name} expects {'bits' if wants_bits else 'integers'}, "
                                 f"{prev.name} gives {'bits' if prev.out_is_bits else 'integers'}")
        object.__setattr__(self, "layers", layers)

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def out_features(self) -> int:
        return self.layers[-1].out_features

    def run(self, x, upto: int | None = None):
        """Integer outputs of the last layer (or of layer ``upto``) for a batch ``x``."""
        act = x
        for layer in self.layers[: None if upto is None else upto + 1]:
            act = layer.run(act)
        return act.unpack() if isinstance(act, Bits) else act

    def predict(self, x, batch: int = 65536) -> np.ndarray:
        """Argmax class per row (first index on ties, like numpy / ONNX ArgMax)."""
        x = np.asarray(x).reshape(len(x), -1)
        return np.concatenate([np.argmax(self.run(x[i:i + batch]), axis=1) for i in range(0, len(x), batch)]) \
            if len(x) else np.zeros(0, np.int64)

    def to_dict(self) -> dict:
        return {"format": "hwnorm-network/1", "name": self.name, "meta": self.meta,
                "layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, d: dict) -> "Network":
        if d.get("format") != "hwnorm-network/1":
            raise ValueError(f"not an hwnorm network (format {d.get('format')!r}, expected 'hwnorm-network/1')")
        return cls(tuple(layer_from_dict(x) for x in d["layers"]), d.get("name", "network"), d.get("meta", {}))

    @property
    def spec_hash(self) -> str:
        return content_hash(self.to_dict())

    def summary(self) -> list[dict]:
        rows = []
        for layer in self.layers:
            row = {"name": layer.name, "kind": type(layer).__name__, "in": layer.in_features,
                   "out": layer.out_features}
            if isinstance(layer, MVTU):
                row.update(in_bits=layer.in_bits, acc_bits=layer.acc_bits,
                           thresholds=0 if layer.thresholds is None else layer.thresholds.n_thresholds)
            if isinstance(layer, QuantBN):
                row.update(shift=layer.spec.shared_shift, mult_bits=layer.spec.mult_bits,
                           out_bits=layer.spec.out_fmt.width)
            rows.append(row)
        return rows
