"""``Layer``: the interface every layer kind implements (see :mod:`hwnorm.layers`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwnorm import bnn, data
from hwnorm.bnn import Bits
from hwnorm.folding import Fold
from hwnorm.sim.jobs import layer_job

# A model built for the calibration points of the layer kinds no vendored example has (a channel
# concat, a windowed average pool): tests/models/make_calibration_models.py
CALIBRATION_MODEL = str(data.path("models/calibration/skip_concat_pool.onnx"))

__all__ = ["Layer", "InPort", "ElementwiseLayer", "LayerBlock", "Bits", "divisors", "largest_divisor", "check_fold",
           "integer_weights",
           "with_corners", "as_int_batch", "spatial_of", "check_spatial"]

MAX_AUTO_LANES = 64  # widest input a default folding gives a layer that has no neighbour to match


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def largest_divisor(n: int, limit: int) -> int:
    return max(d for d in divisors(n) if d <= limit)


def check_fold(name: str, what: str, value, n: int, dimension: str) -> int:
    """``value`` must divide ``n``; otherwise a clear error listing the allowed values."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or n % value:
        allowed = divisors(n)
        shown = ", ".join(map(str, allowed)) if len(allowed) <= 24 else \
            ", ".join(map(str, allowed[:12])) + ", …, " + ", ".join(map(str, allowed[-4:]))
        raise ValueError(f"{name}: {what}={value!r} must divide its {n} {dimension}; allowed: {shown}")
    return value


def spatial_of(d: dict) -> tuple:
    """The pixel dimensions ``(H, W)`` a per-vector layer repeats over, from its IR JSON
    ``in_shape`` (``()`` for a dense layer, or when the shape is not declared)."""
    shape = d.get("in_shape")
    if shape is None:
        return ()
    if not isinstance(shape, list) or len(shape) not in (1, 3) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape):
        raise ValueError(f"in_shape must be [C] or [H, W, C] of whole numbers ≥ 1, got {str(shape)[:60]}")
    return tuple(shape[:-1])


def check_spatial(name: str, spatial) -> tuple:
    spatial = tuple(spatial)
    if len(spatial) not in (0, 2) or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in spatial):
        raise ValueError(f"{name}: spatial must be () or (H, W) of whole numbers ≥ 1, got {spatial!r}")
    return tuple(int(v) for v in spatial)


def with_corners(rng, lo: int, hi: int, n: int, width: int) -> np.ndarray:
    """``n`` random vectors of ``[lo, hi]``; the first ones all-low, all-high and all-zero."""
    x = rng.integers(lo, hi + 1, (n, width))
    corners = [lo, hi] + ([0] if lo <= 0 <= hi else [])
    for k, c in enumerate(corners[:n]):
        x[k] = c
    return x


def integer_weights(name: str, w, weight_type, shape: str, columns: int | None = None) -> np.ndarray:
    """A layer's integer weight matrix, checked (2-D, ``columns`` wide if given, inside
    ``weight_type``) and frozen as int64; ``shape`` names its axes in the error."""
    w = np.asarray(w)
    if w.dtype.kind not in "iu" or w.ndim != 2 or (columns is not None and w.shape[1] != columns) or not w.size:
        raise ValueError(f"{name}: integer weights must be an integer array {shape}")
    lo, hi = weight_type.range
    if w.min() < lo or w.max() > hi:
        raise ValueError(f"{name}: weights outside their {weight_type} range [{lo}, {hi}]")
    w = np.array(w, dtype=np.int64)
    w.setflags(write=False)
    return w


def as_int_batch(name: str, x, channels: int) -> np.ndarray:
    if isinstance(x, Bits):
        raise ValueError(f"{name}: expects integer activations, got packed bits")
    x = np.asarray(x)
    if x.dtype.kind not in "iu" or x.ndim != 2 or x.shape[1] != channels:
        raise ValueError(f"{name}: expects an integer array (batch, {channels}), got {x.dtype} {x.shape}")
    return x


@dataclass(frozen=True)
class InPort:
    """One input stream of a layer that reads several (an ``add``): what the network checks the
    producer of that stream against, as it checks a one-input layer itself."""
    name: str
    in_shape: tuple
    in_type: object
    in_range: tuple

    @property
    def in_features(self) -> int:
        return self.in_shape[-1]


class Layer:
    """One layer of the IR and every view of it. Subclasses are frozen dataclasses with a
    ``name`` field; they set the class attributes and implement the methods marked below."""

    kind: str = ""                      # the one name (registry, JSON, designs, manifest, costs)
    aliases: tuple = ()                 # older names still read from IR JSON
    folding_keys: tuple = ("pe",)       # what a folding of this layer sets
    channel_label = "channel"           # what one output lane is called in mismatch messages
    name: str

    # ---- tensors (subclasses: in_shape, out_shape, in_type, out_type, and in_features /
    # out_features, the elements of one input / output vector: the last axis of the shapes)
    @property
    def vectors(self) -> int:
        """Input vectors of ``in_features`` elements per image (a dense layer: 1)."""
        return math.prod(self.in_shape[:-1])

    @property
    def unit_vectors(self) -> int:
        """Input vectors that make one unit of the block's cycle model and stimulus: 1 for a layer
        that treats each vector alone (a convolution's MVU: each window), a whole map for a
        layer that slides a window over it."""
        return 1

    @property
    def units_per_image(self) -> int:
        """What this layer's block's cycle model counts, per image: vectors, or whole maps for a
        kind that slides a window (a convolution's MVU: one window per output pixel)."""
        return self.vectors // self.unit_vectors

    @property
    def in_range(self) -> tuple[int, int]:
        """Input values the layer accepts, as stored (bits 0 / 1 for bipolar inputs)."""
        return (0, 1) if self.in_type.is_bipolar else self.in_type.range

    @property
    def out_range(self) -> tuple[int, int]:
        """Output values the layer can produce, as stored."""
        return (0, 1) if self.out_type.is_bipolar else self.out_type.range

    def tensors(self) -> dict:
        """The declared tensors, as the IR JSON writes them."""
        return {"in_shape": list(self.in_shape), "out_shape": list(self.out_shape),
                "in_type": self.in_type.name, "out_type": self.out_type.name}

    def check_declared(self, d: dict) -> None:
        """A JSON object's declared tensors (optional) must be the ones its spec gives."""
        for key, value in self.tensors().items():
            if key in d and d[key] != value:
                raise ValueError(f"layer {self.name!r}: {key} is declared as {d[key]!r}, its spec gives {value!r}")

    # ---- graph: the streams a layer reads (a network checks each producer against its port)
    def in_ports(self) -> tuple:
        """One port per input stream, in the order :meth:`run` takes them (most kinds: the layer
        itself, as its one input)."""
        return (self,)

    # ---- golden model
    def run(self, x):
        """The outputs for a batch (one argument per input stream: :meth:`in_ports`)."""
        raise NotImplementedError

    def golden_input(self, x):
        """What :meth:`run` takes for integer stimulus ``x`` (packed bits for a bipolar input)."""
        return Bits(bnn.pack_bits(x), self.in_features) if self.in_type.is_bipolar else x

    # ---- JSON
    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, **self.tensors(), **self.spec_fields()}

    def spec_fields(self) -> dict:
        raise NotImplementedError

    # The JSON fields ``from_dict`` reads and their types (checked first, so a wrong one is named).
    json_fields = {"name": (str,)}

    @classmethod
    def from_dict(cls, d: dict) -> "Layer":
        raise NotImplementedError

    # ---- folding
    def foldings(self) -> list[dict]:
        """Every legal folding, cheapest hardware first."""
        raise NotImplementedError

    def block(self, fold: dict):
        """The hardware block of this layer at ``fold`` (an :class:`hwnorm.blocks.Block`)."""
        raise NotImplementedError

    def auto_fold(self, prev_lanes: int | None, next_layer: "Layer | None") -> dict:
        raise NotImplementedError

    def clocks_per_image(self, fold: dict) -> int:
        """Clocks per image of this layer's block at ``fold``, at full rate."""
        return self._folding_fact("clocks", fold, lambda: self.block(fold).initiation_interval
                                  * self.units_per_image)

    def out_lanes_at(self, fold: dict) -> int:
        """Output lanes of this layer's block at ``fold`` (what the next layer's folding matches)."""
        return self._folding_fact("out_lanes", fold, lambda: self.block(fold).out_lanes)

    def can_fold(self, fold: dict) -> bool:
        """Whether the hardware can take ``fold`` (its block builds: divisibility, signal widths)."""
        def builds() -> bool:
            try:
                self.block(fold)
            except ValueError:
                return False
            return True
        return self._folding_fact("can", fold, builds)

    def _folding_fact(self, what: str, fold: dict, compute):
        """A fact of this layer at ``fold`` (whether it builds, its clocks per image), computed once:
        the folding search, the automatic folding and the network's check all ask the same ones, and
        each answer costs a block. Blocks themselves are not kept (a design sets their timing)."""
        try:
            key = (what, tuple(sorted(fold.items())))
            hash(key)
        except (AttributeError, TypeError):  # not a folding at all: the block says why
            return compute()
        facts = self.__dict__.setdefault("_folding_facts", {})  # frozen dataclass: the cache is not a field
        if key not in facts:
            facts[key] = compute()
        return facts[key]

    def preferred_in_lanes(self) -> int | None:
        """Input lanes this layer's default folding takes (None: it adapts to its producer)."""
        return None

    def parse_fold(self, fold) -> Fold:
        """``fold`` as this kind's folding: a table of its keys, each a whole number ≥ 1 (the
        values are the block's to check)."""
        return Fold.parse(fold, layer=self.name, allowed=self.folding_keys)

    # ---- co-simulation
    def stimulus(self, n: int, rng) -> np.ndarray:
        """``n`` units of input vectors (stored values; ``n · unit_vectors`` rows), corners first."""
        return with_corners(rng, *self.in_range, n * self.unit_vectors, self.in_features)

    # ---- energy
    def energy_actions(self, fold: dict) -> dict:
        """Data-independent actions per unit — one input vector, or one map for a kind whose unit
        is a map (:attr:`unit_vectors`) — as action → count (see hwnorm.estimate.energy, which
        multiplies them by the units per image)."""
        raise NotImplementedError

    def stored_bits(self) -> list[np.ndarray]:
        """The constants the weight buffer holds, as arrays of bits in stream order."""
        return []

    # Whether the kind's block reads its weights from a memory, which hwnorm.stt.store can hold
    # as MLC STT-RAM cells (the block then has ``weight_rows()`` and a ``stored`` field).
    has_weight_memory = False

    # Whether the kind's block builds RTL (``component()``); a kind without (yet) has its golden
    # model, JSON and estimates, and its block's ``component()`` refuses by name.
    has_hardware = True

    # The one-layer designs this kind's resource costs are fitted on (hwnorm.blocks.CalibrationPoint;
    # hwnorm.estimate.calibration gathers them): layers of the vendored models at foldings other
    # than the default designs'. A kind without any is priced by the generic fit, and says so.
    calibration_points: tuple = ()

    def mac_count(self) -> int:
        """Multiply-accumulates per image (0: a kind that does none)."""
        return 0

    # ---- manifest and summaries
    def describe(self, block) -> dict:
        """Manifest parameters of a one-layer top of this layer."""
        return {}

    def summary(self) -> dict:
        return {"name": self.name, "kind": self.kind, "in": self.in_features, "out": self.out_features}


class ElementwiseLayer(Layer):
    """A per-channel layer folded only by ``pe`` (channels per beat): it adapts to its neighbour."""

    @property
    def in_features(self) -> int:
        return self.in_shape[-1]

    @property
    def out_features(self) -> int:
        return self.out_shape[-1]

    def foldings(self) -> list[dict]:
        return [f for d in divisors(self.in_features) if self.can_fold(f := {"pe": d})]

    def auto_fold(self, prev_lanes, next_layer) -> dict:
        """As wide as the producer's output (no lane converter); a first layer as wide as its
        consumer's preferred input — or the widest below that the hardware can take."""
        want = prev_lanes
        if want is None:
            want = (next_layer.preferred_in_lanes() if next_layer is not None else None) or MAX_AUTO_LANES
        for pe in sorted(divisors(self.in_features), reverse=True):
            if pe <= want and self.can_fold({"pe": pe}):
                return {"pe": pe}
        return {"pe": 1}


class LayerBlock:
    """Mixin of a layer kind's :class:`~hwnorm.blocks.Block` (which has ``layer``): its
    co-simulation job is the layer's stimulus and the golden output of :meth:`Layer.run`."""

    layer: Layer

    def fold_channels(self, layer: Layer, pe: int) -> None:
        """An elementwise block's shape: ``pe`` channels per beat, in and out, one beat per
        channel group (the layer's element types at either end)."""
        self.pe = check_fold(layer.name, "PE", pe, layer.in_features, "channels")
        self.layer, self.name = layer, layer.name
        self.groups = layer.in_features // pe
        self.in_type, self.out_type = layer.in_type, layer.out_type
        self.in_lanes = self.out_lanes = pe
        self.in_beats = self.out_beats = self.groups

    @property
    def fold(self) -> Fold:
        """The folding this block was built at (``pe`` here; a kind with other keys says so)."""
        return Fold(pe=self.pe)

    def job(self, n: int, seed: int) -> dict:
        return layer_job(self, self.layer.stimulus(n, np.random.default_rng(seed)), seed)
