"""The network IR: a chain of layers (one registered kind each, :mod:`hwnorm.layers`), and the
golden model that executes it.

Activations between layers are integers. A layer whose output is bipolar hands on packed uint64
words (:class:`Bits`, the :mod:`hwnorm.bnn` layout); wider outputs are int64 arrays ``(batch, C)``::

    uint8 pixels ─► thresholding ─► bits ─► mvu ─► bits ─► … ─► mvu (no thresholds) ─► acc ─► qbn ─► scores

Every layer declares its tensors — shape (channels last), element type, value range — and the
network checks each pair of neighbours: the shapes must match and the producer's output range
must fit the consumer's declared input. Importers (:mod:`hwnorm.qonnx`, the Python API) build
networks; the HDL generator, estimators and reports read the same objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hwnorm.layers import layer_from_dict
from hwnorm.bnn import Bits
from hwnorm.layers.mvu import MVULayer
from hwnorm.layers.qbn import QuantBN
from hwnorm.layers.thresholding import InputThreshold
from hwnorm.spec import content_hash
from hwnorm import bnn

__all__ = ["Bits", "InputThreshold", "MVULayer", "QuantBN", "Network", "layer_from_dict", "FORMAT"]

FORMAT = "hwnorm-network/2"
READABLE = ("hwnorm-network/1", FORMAT)  # /1: before tensors and kind names (read through the aliases)


def _describe(layer, side: str) -> str:
    t = layer.out_type if side == "out" else layer.in_type
    lo, hi = layer.out_range if side == "out" else layer.in_range
    shape = layer.out_shape if side == "out" else layer.in_shape
    values = "±1" if t.is_bipolar else f"{t} [{lo}, {hi}]"
    return f"{shape} {values}"


def flattens(prev, nxt) -> bool:
    """``nxt`` reads ``prev``'s feature map as one vector (a dense layer after a convolution): the
    stream is the same, channels last, pixel by pixel."""
    return len(prev.out_shape) > 1 and nxt.in_shape == (math.prod(prev.out_shape),)


def check_link(prev, nxt, where: str = "network") -> None:
    """``nxt`` can consume what ``prev`` produces: same shape (or its flattening), and a value
    range it accepts."""
    if prev.out_shape != nxt.in_shape and not flattens(prev, nxt):
        what = "channels per pixel" if len(prev.out_shape) > 1 else "values"
        raise ValueError(f"{where}: {prev.name} gives shape {prev.out_shape} ({prev.out_features} {what}), "
                         f"{nxt.name} takes {nxt.in_shape}")
    if prev.out_type.is_bipolar != nxt.in_type.is_bipolar:
        kinds = {True: "bits", False: "integers"}
        raise ValueError(f"{where}: {nxt.name} expects {kinds[nxt.in_type.is_bipolar]}, {prev.name} gives "
                         f"{kinds[prev.out_type.is_bipolar]}")
    lo, hi = prev.out_range
    a, b = nxt.in_range
    if not a <= lo <= hi <= b:
        raise ValueError(f"{where}: {prev.name} gives {_describe(prev, 'out')}, outside what {nxt.name} takes: "
                         f"{_describe(nxt, 'in')}")


def _regroup(act, features: int):
    """Activations as rows of ``features`` (a feature map read as one vector, or the reverse)."""
    if isinstance(act, Bits):
        if act.n == features:
            return act
        return Bits(bnn.pack_bits(act.unpack().reshape(-1, features)), features)
    return act if act.shape[1] == features else act.reshape(-1, features)


@dataclass(frozen=True, eq=False)
class Network:
    """A feed-forward chain of layers; ``run`` is the golden model on a batch."""

    layers: tuple
    name: str = "network"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        layers = tuple(self.layers)
        if not layers:
            raise ValueError(f"{self.name}: a network needs at least one layer")
        for prev, nxt in zip(layers, layers[1:]):
            check_link(prev, nxt, self.name)
        seen: set = set()
        for k, layer in enumerate(layers):  # names key foldings, choices, reports and Verilog submodules
            if layer.name in seen:
                raise ValueError(f"{self.name}: layer {k} repeats the name {layer.name!r}; layer names must be unique")
            seen.add(layer.name)
        object.__setattr__(self, "layers", layers)

    @property
    def in_features(self) -> int:
        """Input values per image (a feature map: all of its pixels' channels, channels last)."""
        return math.prod(self.layers[0].in_shape)

    @property
    def out_features(self) -> int:
        return self.layers[-1].out_features

    @property
    def in_range(self) -> tuple[int, int]:
        """The input values (as stored) the first layer accepts."""
        return self.layers[0].in_range

    def run(self, x, upto: int | None = None):
        """Integer outputs of the last layer (or of layer ``upto``) for a batch ``x`` (images, one
        row of stored input values each, channels last: bits 0 / 1 when the first layer takes
        bipolar inputs), one row per image. Inside, each layer takes one row per input vector
        (a pixel of a feature map)."""
        images = len(x.words) // self.layers[0].vectors if isinstance(x, Bits) else len(x)
        act = None
        for k, (_, act) in enumerate(self.trace(x)):
            if k == upto:
                break
        out = act.unpack() if isinstance(act, Bits) else act
        return out.reshape(images, -1)

    def trace(self, x):
        """Each layer with its golden output for a batch ``x`` (as :meth:`run` takes it), in order:
        one row per output vector (a pixel of a feature map), packed bits for a bipolar output."""
        first = self.layers[0]
        if isinstance(x, Bits):
            act = _regroup(x, first.in_features)
        else:
            act = first.golden_input(np.asarray(x).reshape(-1, first.in_features))
        for layer in self.layers:
            act = layer.run(_regroup(act, layer.in_features))
            yield layer, act

    def predict(self, x, batch: int | None = None) -> np.ndarray:
        """Argmax class per row (first index on ties, like numpy / ONNX ArgMax)."""
        return np.argmax(self.scores(x, batch), axis=1) if len(x) else np.zeros(0, np.int64)

    def scores(self, x, batch: int | None = None) -> np.ndarray:
        """:meth:`run` on ``x`` in batches of ``batch`` images (default: as many as keep the largest
        activation of a batch near 32 M values — a convolution's windows are large)."""
        x = np.asarray(x).reshape(len(x), -1)
        batch = batch or self.batch_size()
        return np.concatenate([self.run(x[i:i + batch]) for i in range(0, len(x), batch)])

    def batch_size(self) -> int:
        """Images per golden run: as many as keep the largest activation near 32 M values."""
        widest = max(math.prod(layer.out_shape) for layer in self.layers)
        return max(16, min(65536, (1 << 25) // widest))

    def to_dict(self) -> dict:
        return {"format": FORMAT, "name": self.name, "meta": self.meta,
                "layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, d: dict) -> "Network":
        if not isinstance(d, dict) or d.get("format") not in READABLE:
            found = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"not an hwnorm network (format {found!r}, expected {FORMAT!r})")
        unknown = sorted(set(d) - {"format", "name", "meta", "layers"})
        if unknown:
            raise ValueError(f"unknown field {unknown[0][:64]!r}; a network has: format, name, meta, layers")
        layers, name, meta = d.get("layers"), d.get("name", "network"), d.get("meta", {})
        if "layers" not in d:
            raise ValueError("missing field 'layers' (a list of layer objects)")
        if not isinstance(layers, list):
            raise ValueError(f"field 'layers' must be a list of layer objects, got {type(layers).__name__}")
        if not isinstance(name, str):
            raise ValueError(f"field 'name' must be a string, got {type(name).__name__}")
        if not isinstance(meta, dict):
            raise ValueError(f"field 'meta' must be an object, got {type(meta).__name__}")
        parsed = []
        for k, x in enumerate(layers):
            try:
                parsed.append(layer_from_dict(x))
            except ValueError as e:
                raise ValueError(f"layers[{k}]: {e}") from None
        return cls(tuple(parsed), name, meta)

    @property
    def spec_hash(self) -> str:
        return content_hash(self.to_dict())

    def summary(self) -> list[dict]:
        return [layer.summary() for layer in self.layers]
