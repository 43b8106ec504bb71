"""The network IR: a graph of layers (one registered kind each, :mod:`hwnorm.layers`) in
topological order, and the golden model that executes it.

Activations between layers are integers. A layer whose output is bipolar hands on packed uint64
words (:class:`Bits`, the :mod:`hwnorm.bnn` layout); wider outputs are int64 arrays ``(batch, C)``::

    uint8 pixels ─► thresholding ─► bits ─► mvu ─► bits ─► … ─► mvu (no thresholds) ─► acc ─► qbn ─► scores

Most networks are chains: each layer reads the one before it. A network may also be a DAG —
``inputs`` names, per layer, the producers of the streams it reads (:data:`INPUT` for the
network's own input). A producer read by several layers fans out (a residual block's shortcut);
a layer that reads several streams (``add``) declares one port per stream. The last layer is the
output, and every other layer feeds at least one.

Every layer declares its tensors — shape (channels last), element type, value range — and the
network checks each edge: the shapes must match and the producer's output range must fit the
consumer's declared input. Importers (:mod:`hwnorm.qonnx`, the Python API) build networks; the
HDL generator, estimators and reports read the same objects.
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

__all__ = ["Bits", "InputThreshold", "MVULayer", "QuantBN", "Network", "layer_from_dict", "FORMAT", "INPUT"]

FORMAT = "hwnorm-network/3"       # a graph: ``inputs`` names each layer's producers
CHAIN_FORMAT = "hwnorm-network/2"  # a chain is written as before (no ``inputs``): its files do not change
READABLE = ("hwnorm-network/1", CHAIN_FORMAT, FORMAT)  # /1: before tensors and kind names (read through aliases)
INPUT = ""  # in ``Network.inputs``: the network's own input (no layer has an empty name)


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


def _chain_inputs(layers) -> tuple:
    return tuple((INPUT if k == 0 else layers[k - 1].name,) for k in range(len(layers)))


@dataclass(frozen=True, eq=False)
class Network:
    """Layers in topological order, each reading the producers ``inputs`` names (module
    docstring; None: a chain); ``run`` is the golden model on a batch."""

    layers: tuple
    name: str = "network"
    meta: dict = field(default_factory=dict)
    inputs: tuple | None = None

    def __post_init__(self):
        layers = tuple(self.layers)
        if not layers:
            raise ValueError(f"{self.name}: a network needs at least one layer")
        seen: set = set()
        for k, layer in enumerate(layers):  # names key foldings, choices, reports and Verilog submodules
            if layer.name in seen:
                raise ValueError(f"{self.name}: layer {k} repeats the name {layer.name!r}; layer names must be unique")
            if layer.name == INPUT:
                raise ValueError(f"{self.name}: layer {k} has an empty name")
            seen.add(layer.name)
        inputs = _chain_inputs(layers) if self.inputs is None else self._checked_inputs(layers, self.inputs)
        by_name = {layer.name: layer for layer in layers}
        first_input = None
        for layer, sources in zip(layers, inputs):
            for source, port in zip(sources, layer.in_ports()):
                if source != INPUT:
                    check_link(by_name[source], port, self.name)
                elif first_input is None:
                    first_input = port
                elif (port.in_shape, port.in_type, port.in_range) != \
                        (first_input.in_shape, first_input.in_type, first_input.in_range):
                    raise ValueError(f"{self.name}: {port.name} reads the network input as {_describe(port, 'in')}, "
                                     f"{first_input.name} as {_describe(first_input, 'in')}; they must agree")
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "inputs", inputs)

    def _checked_inputs(self, layers, inputs) -> tuple:
        """``inputs`` as a tuple of tuples, checked: one producer per port of each layer, each an
        earlier layer or the network input, and every layer but the last read by another."""
        if not isinstance(inputs, (list, tuple)) or len(inputs) != len(layers):
            raise ValueError(f"{self.name}: inputs must list the producers of each of the {len(layers)} layers")
        out, earlier, read = [], {INPUT}, set()
        for k, (layer, sources) in enumerate(zip(layers, inputs)):
            ports = layer.in_ports()
            if not isinstance(sources, (list, tuple)) or not all(isinstance(x, str) for x in sources):
                raise ValueError(f"{self.name}: inputs[{k}] ({layer.name}) must be a list of layer names")
            if len(sources) != len(ports):
                raise ValueError(f"{self.name}: {layer.name} reads {len(ports)} stream(s), inputs[{k}] names "
                                 f"{len(sources)}")
            for source in sources:
                if source not in earlier:
                    raise ValueError(f"{self.name}: {layer.name} reads {source[:64]!r}, which is not an earlier "
                                     "layer (layers are listed in topological order; \"\" is the network input)")
            if k == 0 and set(sources) != {INPUT}:
                raise ValueError(f"{self.name}: the first layer, {layer.name}, must read the network input")
            read.update(sources)
            earlier.add(layer.name)
            out.append(tuple(sources))
        dangling = [layer.name for layer in layers[:-1] if layer.name not in read]
        if dangling:
            raise ValueError(f"{self.name}: the output of {dangling[0]} is not read by any layer; only the last "
                             "layer is the network's output")
        return tuple(out)

    @property
    def is_chain(self) -> bool:
        """Each layer reads the one before it (the first, the network input)."""
        return self.inputs == _chain_inputs(self.layers)

    def consumers(self, name: str) -> list[str]:
        """The layers that read ``name``'s output (:data:`INPUT`: the network input), in order."""
        return [layer.name for layer, sources in zip(self.layers, self.inputs) for s in sources if s == name]

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
        one row per output vector (a pixel of a feature map), packed bits for a bipolar output.
        An output is kept only until its last consumer has read it."""
        first = self.layers[0]
        if isinstance(x, Bits):
            act = _regroup(x, first.in_features)
        else:
            act = first.golden_input(np.asarray(x).reshape(-1, first.in_features))
        if self.is_chain:
            for layer in self.layers:
                act = layer.run(_regroup(act, layer.in_features))
                yield layer, act
            return
        live, left = {INPUT: act}, {}
        for sources in self.inputs:
            for s in sources:
                left[s] = left.get(s, 0) + 1
        for layer, sources in zip(self.layers, self.inputs):
            args = [_regroup(live[s], port.in_features) for s, port in zip(sources, layer.in_ports())]
            for s in sources:
                left[s] -= 1
                if not left[s]:
                    del live[s]
            live[layer.name] = out = layer.run(*args)
            yield layer, out

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
        if self.is_chain:
            return {"format": CHAIN_FORMAT, "name": self.name, "meta": self.meta,
                    "layers": [layer.to_dict() for layer in self.layers]}
        return {"format": FORMAT, "name": self.name, "meta": self.meta,
                "layers": [layer.to_dict() for layer in self.layers], "inputs": [list(s) for s in self.inputs]}

    @classmethod
    def from_dict(cls, d: dict) -> "Network":
        if not isinstance(d, dict) or d.get("format") not in READABLE:
            found = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"not an hwnorm network (format {found!r}, expected {FORMAT!r})")
        fields = ["format", "name", "meta", "layers"] + (["inputs"] if d.get("format") == FORMAT else [])
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError(f"unknown field {unknown[0][:64]!r}; a network has: {', '.join(fields)}")
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
        inputs = d.get("inputs")
        if inputs is not None and not (isinstance(inputs, list) and all(isinstance(x, list) for x in inputs)):
            raise ValueError("field 'inputs' must be a list (one per layer) of lists of layer names")
        return cls(tuple(parsed), name, meta, None if inputs is None else tuple(tuple(x) for x in inputs))

    @property
    def spec_hash(self) -> str:
        return content_hash(self.to_dict())

    def summary(self) -> list[dict]:
        return [layer.summary() for layer in self.layers]
