"""Import a QONNX (Brevitas / FINN / QKeras-converted) quantized network into the hwnorm IR.

The importer interprets the graph abstractly instead of pattern-matching it: one walk over the
nodes, in order, where every tensor's value carries what the next op needs. A value is one of

* a **constant** (initializers and anything computed only from them, folded in float32 as the
  reference executor does); a ``Quant`` / ``BipolarQuant`` of constants (a weight quantizer)
  also keeps its integer codes, scale and zero point (:class:`_QuantConst`);
* a **chain**: an exact real map of an integer base (the network input, or the accumulator of a
  MatMul / Gemm) — Mul / Div / Add / Sub by constants, a bias, one BatchNormalization and a final
  ReLU compose into a :class:`hwnorm.bnn.SurdAffine`;
* **quantized**: integer codes ``q`` standing for ``(q − z)·s`` (or ±s for bipolar values), made
  by a ``Quant`` / ``BipolarQuant`` of a chain and backed by the layer that outputs them.

A MatMul (or Gemm) of quantized values by quantized weights makes an *accumulator* — not yet a
layer: what consumes it decides which layer it becomes, and that layer is emitted once, complete.
A Conv is a sliding ``window`` and an accumulator over it (a ``depthwise`` one for group =
channels). Two more integer bases end in a quantizer the same way: the *sum* of two quantized
tensors (``Add`` / ``Sub``: an ``add`` layer, exact multipliers from the ratio of the scales,
narrowed to the smallest ones proven on every input pair) and the window sums of an average
pool (``AveragePool``, ``GlobalAveragePool``, ``ReduceMean`` over H and W, or a ``Trunc`` of
them: an ``avgpool`` layer). Every layer records the layers it reads, so a tensor read twice (a
residual shortcut) makes the network a graph (:mod:`hwnorm.ir`).
A quantizer of a chain becomes, on the code axis ``u = y/s + z`` (:mod:`hwnorm.quantizer`):

* for the network input: an input ``thresholding`` layer;
* for an accumulator: an ``mvu`` ending in multi-thresholds (γ < 0 channels' weights flipped), or
  — the ``requant`` realization — an ``mvu`` handing on its raw accumulator to an exact ``qbn``
  requantizer ``clip(R((A·acc + B) >> k))``. Both are exact and give identical codes.

The chain left at the graph output (the float tail) becomes an ``mvu`` without thresholds and an
exact quantized BN whose integer scores keep the order of the real scores, so argmax is
unchanged; a final Softmax / LogSoftmax / Sigmoid keeps the order too and is dropped. Every
BatchNormalization met on the way is recorded with the exact map from its integer input
(``Imported.bn_sites``: what ``hwnorm qbn`` folds). Anything else stops the import with an error
naming the node and what is allowed.

Exactness: decisions are taken on the exact rational values of the model's float32 constants.
QONNX's executor computes the same graph in float32; the two can differ only where an
activation lies within float32 rounding of a quantizer's decision point (``threshold_margins`` in
the network's meta says how close the nearest input comes, for the sign quantizers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from hwnorm import bnn
from hwnorm.bnn import SurdAffine
from hwnorm.datatypes import BIPOLAR, IntType, finn_datatype
from hwnorm.defaults import COST_LIMITS
from hwnorm.io import read_model_bytes
from hwnorm.fixed import FixedFormat
from hwnorm.inputs import preprocess
from hwnorm.ir import INPUT, MVULayer, InputThreshold, Network, QuantBN
from hwnorm.layers.add import MAX_MULTIPLIER_BITS, Add, narrowest
from hwnorm.layers.avgpool import AvgPool
from hwnorm.layers.concat import Concat
from hwnorm.layers.depthwise import Depthwise
from hwnorm.layers.maxpool import MaxPool
from hwnorm.layers.spatial import Geometry
from hwnorm.layers.window import SlidingWindow
from hwnorm.bnspec import BNSpec, fold_bn
from hwnorm.quantizer import (ROUNDING_MODES, Quantizer, Sign, check_against_executor, executor_codes,
                               quantizer_to_json, requant_spec, threshold_fold)
from hwnorm.hdl.names import sanitize

__all__ = ["import_qonnx", "interpret", "Imported", "BNSite", "ActivationSite", "ImportError_", "NoInputQuantizer",
           "REALIZATIONS"]

REALIZATIONS = ("thresholds", "requant")
_TAIL = ("Softmax", "LogSoftmax", "Sigmoid")  # order-preserving: dropped at the graph output


# Values per image a model's input may declare: a 224×224×3 image is 150,528, so this bounds only
# files that would make the importer allocate gigabytes from a few bytes of header.
MAX_FEATURES = 1 << 22


class ImportError_(ValueError):
    """An ONNX graph hwnorm cannot represent exactly (names the node)."""


class NoInputQuantizer(ImportError_):
    """Float inputs were asked for, but the model reads its input as it is (no input quantizer)."""


@dataclass(eq=False)
class _Accumulator:
    """The integer result of a MatMul, waiting for its consumer to say which layer it is."""
    name: str
    weights: np.ndarray   # packed ±1 rows (bipolar weights) or integers (out, K)
    weight_type: object   # BIPOLAR or IntType
    in_features: int
    in_type: object       # BIPOLAR or the codes' IntType
    in_range: tuple       # the codes that reach it
    emitted: bool = False
    spatial: tuple = ()   # (OH, OW) of a convolution: one input window per output pixel
    source: object = None  # the layer whose output the MVU reads (None: the network input)
    depthwise: bool = False  # weights (C, taps): each channel's own taps of the window (a depthwise conv)

    def layer(self, thresholds=None, flip=None):
        """The MVU (or depthwise layer) of this accumulator: thresholds (and their flipped rows)
        or the raw sum."""
        if self.depthwise:
            w = self.weights if flip is None else np.where(flip[:, None], -self.weights, self.weights)
            wt = IntType.from_range(int(w.min()), int(w.max()), signed=True)
            return Depthwise(w, IntType(max(2, self.in_type.bits), self.in_type.signed), *self.in_range, wt,
                             thresholds, self.spatial, self.name)
        w, wt = self.weights, self.weight_type
        if flip is not None and flip.any():
            if wt.is_bipolar:
                w = bnn.flip_rows(w, self.in_features, flip)
            else:
                w = np.where(flip[:, None], -w, w)
                wt = IntType.from_range(int(w.min()), int(w.max()), signed=True)
        if self.in_type.is_bipolar:
            in_bits, in_signed, lo, hi = 1, False, None, None
        else:  # in_bits 1 means bipolar: a one-bit integer code is declared as two bits, narrowed
            in_bits, in_signed = max(2, self.in_type.bits), self.in_type.signed
            lo, hi = self.in_range
        return MVULayer(w, self.in_features, thresholds, in_bits, in_signed, self.name, 1 if wt.is_bipolar else wt.bits,
                    wt.signed, lo, hi, self.spatial)

    def threshold_range(self) -> tuple:
        """The integers a quantizer of this accumulator is folded over."""
        return self.layer().acc_range


@dataclass(eq=False)
class _Sum:
    """The integer output of an ``add`` or ``avgpool`` layer (``layer``, reading ``sources``),
    waiting, like an accumulator, for the quantizer that ends it."""
    name: str
    layer: object
    sources: tuple
    unit: Fraction         # the real value of a sum of 1
    emitted: bool = False

    def threshold_range(self) -> tuple:
        """A thresholding layer takes the sums as its input type: its thresholds span that type."""
        return IntType.from_range(*self.layer.out_range).range


@dataclass
class _Chain:
    form: SurdAffine
    base: "_Accumulator | _Sum | None"  # None: the network input
    lo: int
    hi: int
    shape: tuple
    relu: bool = False         # a ReLU was applied last (the quantizer's floor)
    ops: tuple = ()            # the network input's float preprocessing, as the executor runs it
    raw: "_Quantized | None" = None  # the network's integer input itself, untouched: usable as codes
    layout: str = ""           # a feature map's axes (NCHW, NHWC …): its form is per channel
    order: object = None       # a flattened map: the ONNX index of each stream element (channels last)
    source: "_Quantized | None" = None  # the network input's codes, which ``ops`` preprocess


@dataclass
class _Quantized:
    """Codes ``q`` standing for ``(q − zero)·scale`` (bipolar codes 0 / 1 for −scale / +scale)."""
    code_type: object
    code_range: tuple
    scale: Fraction
    zero: int
    shape: tuple
    layout: str = ""
    order: object = None
    producer: object = None  # the layer that outputs these codes (None: the network input)
    # a feature map quantized per channel (``scale`` None): channel c's scale. Only a depthwise
    # convolution sums such codes exactly (each channel alone); every other op refuses them.
    channel_scales: tuple | None = None


@dataclass
class _QuantConst:
    """A quantized constant (a weight): the executor's float32 values, and its exact integer codes
    with their (broadcast) scale and zero point."""
    values: np.ndarray
    codes: np.ndarray
    scale: np.ndarray
    zero: np.ndarray
    bipolar: bool

    def map(self, fn) -> "_QuantConst":
        return _QuantConst(fn(self.values), fn(self.codes), fn(self.scale), fn(self.zero), self.bipolar)


@dataclass(frozen=True)
class BNSite:
    """A BatchNormalization of the model: the exact real map from its integer input (the network
    input or an accumulator, in ``[lo, hi]``) to its output, every op before it included."""
    name: str
    form: SurdAffine
    lo: int
    hi: int


@dataclass(frozen=True)
class ActivationSite:
    """A quantizer after an accumulator: the MVU it ends (``layer``) and how it was realized."""
    layer: str
    quantizer: str        # the Quant node's name
    realization: str      # thresholds | requant
    requant_possible: bool


@dataclass(frozen=True)
class Imported:
    network: Network
    bn_sites: tuple
    activation_sites: tuple = field(default=())


def _load(path) -> "onnx.ModelProto":  # noqa: F821
    import onnx

    p = Path(path)
    if not p.is_file():
        raise ImportError_(f"{p}: no such file")
    try:  # (a gzip-compressed model, its name ending .gz, is read as the model it holds)
        raw = read_model_bytes(p)
    except ValueError as e:
        raise ImportError_(str(e)) from None
    except (OSError, EOFError) as e:  # not gzip, or cut short
        raise ImportError_(f"{p}: not a readable gzip file ({type(e).__name__}: {str(e)[:80]})") from None
    try:
        model = onnx.load_from_string(raw)
    except Exception as e:  # protobuf raises DecodeError, RuntimeError, … on truncated or foreign files
        raise ImportError_(f"{p}: not a readable ONNX model ({type(e).__name__}: {str(e)[:80] or 'parse error'})") \
            from None
    if not model.graph.node:
        raise ImportError_(f"{p}: the ONNX graph has no nodes (truncated or not an ONNX model?)")
    _check_opsets(model, p.name)
    _name_nodes(model.graph, p.name)
    return model


class RenamedNodes(UserWarning):
    """Two ONNX nodes had the same name (or one took a reserved layer name): one was renamed."""


# Layer names the importer makes up itself: a node must not take them, nor a name that a node's
# derived layer (its input quantizer's, a convolution's window) would take.
_RESERVED = ("scores",)
_DERIVED = ("_input", "_window")


# Where each op may come from: QONNX's quantizers in the domains its executor knows (current, FINN-era
# and Brevitas' own exports), every other op from standard ONNX only. A MatMul of another domain is
# someone else's operator that merely shares the name.
QONNX_OPS = ("Quant", "BipolarQuant", "Trunc")
QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")
ONNX_DOMAINS = ("", "ai.onnx")


# Operator-set versions whose ops the importer implements: ONNX's from opset 7 to what the pinned
# onnx package knows; QONNX's v1 (FINN-era Trunc) and v2. A newer set may change an op's meaning.
QONNX_OPSETS = (1, 2)


def _onnx_opsets() -> tuple[int, int]:
    import onnx
    return 7, onnx.defs.onnx_opset_version()


def _check_opsets(model, src: str) -> None:
    lo, hi = _onnx_opsets()
    for o in model.opset_import:
        ok = (lo <= o.version <= hi if o.domain in ONNX_DOMAINS else
              o.version in QONNX_OPSETS if o.domain in QONNX_DOMAINS else True)  # other domains: their nodes are refused
        if not ok:
            allowed = f"{lo} … {hi}" if o.domain in ONNX_DOMAINS else ", ".join(map(str, QONNX_OPSETS))
            raise ImportError_(f"{src}: opset {o.version} of domain {o.domain[:60] or 'ai.onnx'!r} is not supported; "
                               f"allowed: {allowed}")


def _check_domain(node, where: str) -> None:
    allowed = QONNX_DOMAINS if node.op_type in QONNX_OPS else ONNX_DOMAINS
    if node.domain not in allowed:
        raise ImportError_(f"{where}: domain {node.domain[:60]!r} is not allowed for {node.op_type}; allowed: "
                           + ", ".join(repr(d) for d in allowed))


def _name_nodes(graph, src: str) -> None:
    """Give every node a unique name that is a legal identifier, in place.

    Node names become layer names, and those reach Verilog, file names, FuseSoC cores, reports and
    the design config's per-layer choices. Exporters often leave them empty (then ``Op_index``, the
    node's position in the graph) or repeat them; names from a file are untrusted, so they are
    reduced to ``[A-Za-z0-9_]``. A collision is renamed (``_2``, ``_3`` …) and said once.
    """
    import warnings


    taken = set(_RESERVED)
    clashes = []
    for index, node in enumerate(graph.node):
        base = sanitize(node.name, node.op_type or "node") if node.name else f"{sanitize(node.op_type, 'node')}_{index}"
        name, k = base, 1
        while name in taken or any(f"{name}{d}" in taken or name.endswith(d) and name[:-len(d)] in taken
                                   for d in _DERIVED):
            k += 1
            name = f"{base}_{k}"
        if node.name and name != base:
            clashes.append(f"{base} → {name}")
        taken.add(name)
        node.name = name
    if clashes:
        warnings.warn(f"{src}: node names repeated, renamed: {', '.join(clashes[:5])}"
                      + (f" and {len(clashes) - 5} more" if len(clashes) > 5 else ""), RenamedNodes, stacklevel=2)


def _attr(node, name, default=None):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _fold_const(node, args: list) -> object:
    """Evaluate a node whose inputs are all constants (float32 like the reference executor); a
    quantizer of constants and the reshapes of one keep their integer codes."""
    op = node.op_type
    if op in ("Quant", "BipolarQuant"):
        return _quantize_const(node, args)
    if op in ("Transpose", "Reshape", "Identity") and args and isinstance(args[0], _QuantConst):
        rest = [a.values if isinstance(a, _QuantConst) else a for a in args[1:]]
        return args[0].map(lambda arr: _fold_array(node, [arr, *rest]))
    return _fold_array(node, [a.values if isinstance(a, _QuantConst) else a for a in args])


# ------------------------------------------------------------------ op handlers
# One handler per ONNX op (or op family), registered with the op names it takes: on constants
# (folded in float32 as the executor does) and on data tensors (the walk). Adding an op is one
# handler; the lists of supported ops in errors come from these registries.
CONSTANT_OPS: dict = {}
DATA_OPS: dict = {}


def _handles(registry: dict, *ops: str):
    def register(fn):
        for op in ops:
            registry[op] = fn
        return fn
    return register


def supported_ops() -> str:
    """The ops the importer takes on data tensors, for error messages."""
    return ", ".join(sorted(DATA_OPS))


def _fold_array(node, args: list[np.ndarray]) -> np.ndarray:
    f32 = lambda a: np.asarray(a, dtype=np.float32) if np.asarray(a).dtype.kind == "f" else np.asarray(a)  # noqa: E731
    handler = CONSTANT_OPS.get(node.op_type)
    if handler is None:
        raise ImportError_(f"node {node.name or node.op_type} ({node.op_type}): unsupported operation on constants; "
                           f"supported: {', '.join(sorted(CONSTANT_OPS))}")
    return handler(node, [f32(x) for x in args])


_ELEMENTWISE = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power}


@_handles(CONSTANT_OPS, *_ELEMENTWISE)
def _const_elementwise(node, a):
    with np.errstate(all="ignore"):
        return _ELEMENTWISE[node.op_type](a[0], a[1]).astype(np.result_type(a[0], a[1]))


@_handles(CONSTANT_OPS, "Sqrt")
def _const_sqrt(node, a):
    return np.sqrt(a[0])


@_handles(CONSTANT_OPS, "Neg")
def _const_neg(node, a):
    return -a[0]


@_handles(CONSTANT_OPS, "Identity")
def _const_identity(node, a):
    return a[0]


@_handles(CONSTANT_OPS, "Cast")
def _const_cast(node, a):
    from onnx import helper
    return a[0].astype(helper.tensor_dtype_to_np_dtype(_attr(node, "to")))


@_handles(CONSTANT_OPS, "Transpose")
def _const_transpose(node, a):
    return np.transpose(a[0], _attr(node, "perm"))


@_handles(CONSTANT_OPS, "Reshape")
def _const_reshape(node, a):
    return np.reshape(a[0], [int(v) for v in a[1]])


@_handles(CONSTANT_OPS, "Gather")
def _const_gather(node, a):
    return np.take(a[0], a[1], axis=_attr(node, "axis", 0))


@_handles(CONSTANT_OPS, "Unsqueeze")
def _const_unsqueeze(node, a):
    axes = _attr(node, "axes") if len(a) == 1 else [int(v) for v in a[1]]
    out = a[0]
    for ax in sorted(axes):
        out = np.expand_dims(out, ax)
    return out


@_handles(CONSTANT_OPS, "Concat")
def _const_concat(node, a):
    return np.concatenate([np.atleast_1d(x) for x in a], axis=_attr(node, "axis", 0))


def _quantizer_of(node, args) -> tuple[Quantizer | Sign, np.ndarray, np.ndarray]:
    """(quantizer, scale, zero point) of a Quant / BipolarQuant node: a :class:`Sign` for a
    BipolarQuant and for a 1-bit signed Quant (which QONNX executes as a sign, zero point kept).
    Every parameter must be a constant; each error names the node and what is allowed."""
    name = f"node {node.name or node.op_type} ({node.op_type})"
    need = 2 if node.op_type == "BipolarQuant" else 4
    if len(args) < need or any(a is None for a in args[:need]):
        raise ImportError_(f"{name}: needs {need} inputs (data, scale" + (")" if need == 2 else ", zero point, bit width)"))
    if any(isinstance(a, (_Chain, _Quantized)) for a in args[1:need]):
        raise ImportError_(f"{name}: scale, zero point and bit width must be constants")
    scale = np.asarray(args[1].values if isinstance(args[1], _QuantConst) else args[1], dtype=np.float64)
    if scale.size == 0 or not np.all(np.isfinite(scale) & (scale > 0)):
        raise ImportError_(f"{name}: scale must be positive and finite, got {scale.reshape(-1)[:4]}")
    if node.op_type == "BipolarQuant":
        return Sign(), scale, np.zeros(1)
    zero = np.asarray(args[2], dtype=np.float64)
    if zero.size == 0 or not np.all(np.isfinite(zero)) or np.any(zero != np.round(zero)):
        raise ImportError_(f"{name}: the zero point must be integers, got {zero.reshape(-1)[:4]}")
    bits = np.asarray(args[3], dtype=np.float64).reshape(-1)
    if bits.size != 1 or not np.isfinite(bits[0]) or bits[0] != round(bits[0]) or not 1 <= bits[0] <= 32:
        raise ImportError_(f"{name}: the bit width must be one whole number in 1 … 32, got {bits[:4]}")
    flags = {}
    for key in ("signed", "narrow"):
        value = _attr(node, key, 1 if key == "signed" else 0)
        if value not in (0, 1):
            raise ImportError_(f"{name}: attribute {key} must be 0 or 1, got {value!r}")
        flags[key] = bool(value)
    mode = _attr(node, "rounding_mode", "ROUND")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode.upper() not in ROUNDING_MODES:
        raise ImportError_(f"{name}: rounding_mode {mode!r} is not allowed; allowed: {', '.join(ROUNDING_MODES)}")
    if int(bits[0]) == 1 and flags["signed"]:  # QONNX executes it as the sign of y/s + z: (±1 − z)·s
        return Sign(divides=True), scale, zero  # its zero point: per element (weights) or set by quantize()
    return Quantizer(int(bits[0]), flags["signed"], flags["narrow"], mode.upper()), scale, zero


def _quantize_const(node, args) -> _QuantConst:
    """A quantizer of a constant (a weight), as the executor computes it in float32 — and its codes."""
    quant, scale, zero = _quantizer_of(node, args)
    x = np.asarray(args[0].values if isinstance(args[0], _QuantConst) else args[0], dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise ImportError_(f"node {node.name or node.op_type} ({node.op_type}): the quantized constant holds "
                           f"non-finite values (NaN or ±inf); weights must be finite numbers")
    try:
        codes = executor_codes(x, scale, zero, quant)
        full_scale = np.broadcast_to(scale, codes.shape).astype(np.float64)
        z = np.broadcast_to(zero, codes.shape).astype(np.float64)
    except ValueError:
        raise ImportError_(f"node {node.name} ({node.op_type}): scale of shape {scale.shape} or zero point of shape "
                           f"{zero.shape} does not broadcast to the data shape {x.shape}") from None
    values = ((codes - z).astype(np.float32) * full_scale.astype(np.float32)).astype(np.float32)  # as the executor
    # ±1 weights pack as bits only when they stand for ±s: a sign with a zero point is (±1 − z)·s, integers.
    bipolar = isinstance(quant, Sign) and not np.any(z)
    return _QuantConst(values, codes, full_scale, z, bipolar)


def _per_element(node, const: np.ndarray, x, channel_axis: int | None = None) -> np.ndarray:
    """Broadcast a constant against data ``x`` (batch 1) → one value per channel of its form: per
    feature of a vector (in stream order), per channel of a feature map (where it must not vary
    from pixel to pixel)."""
    c = np.asarray(const, dtype=np.float64)
    shape = x.shape
    if channel_axis is not None:  # BN parameters: one per channel of axis 1
        c = c.reshape((1, -1) + (1,) * (len(shape) - 2))
    try:
        full = np.broadcast_to(c, shape)
    except ValueError:
        raise ImportError_(f"node {node.name}: constant of shape {np.shape(const)} does not broadcast to the "
                           f"data shape {shape}") from None
    if x.layout:
        per_channel = np.moveaxis(full[0], x.layout.index("C") - 1, 0).reshape(shape[x.layout.index("C")], -1)
        if np.any(per_channel != per_channel[:, :1]):
            raise ImportError_(f"node {node.name} ({node.op_type}): a constant that varies from pixel to pixel of a "
                               "feature map is not supported (one value per channel is)")
        return per_channel[:, 0]
    flat = full.reshape(-1)
    return flat if x.order is None else flat[x.order]


def _map_layout(shape: tuple) -> str:
    """ONNX's layout of a data tensor as it enters the graph (and of Conv / MaxPool): NCHW for a
    2-D map, NCW for a 1-D one (a keyword-spotting model's (channels, length) input)."""
    return {4: "NCHW", 3: "NCW"}.get(len(shape), "")


def _map_dims(x, where: str) -> tuple[int, int, int]:
    """(H, W, C) of a feature map in NCHW layout (what ONNX's Conv and MaxPool take); a 1-D map
    (NCW) is a map of height 1."""
    if x.layout == "NCW":
        return 1, int(x.shape[2]), int(x.shape[1])
    if x.layout != "NCHW":
        got = f"layout {x.layout}" if x.layout else f"shape {tuple(x.shape)}"
        raise ImportError_(f"{where}: takes a feature map (N, C, H, W) or (N, C, L), got {got}")
    return int(x.shape[2]), int(x.shape[3]), int(x.shape[1])


def _map_shape(x, channels: int, g: Geometry) -> tuple:
    """The ONNX shape of a Conv / MaxPool output of geometry ``g`` on map ``x`` (NCHW or NCW)."""
    return (1, channels, g.out_width) if x.layout == "NCW" else (1, channels, g.out_height, g.out_width)


def _spatial(x) -> tuple:
    """(H, W) of a feature map (its layers repeat per pixel), () for a vector."""
    if not x.layout:
        return ()
    height = int(x.shape[x.layout.index("H")]) if "H" in x.layout else 1  # a 1-D map: height 1
    return height, int(x.shape[x.layout.index("W")])


def _features(shape: tuple) -> int:
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


def import_qonnx(path, **options) -> Network:
    """Import a quantized QONNX model into a :class:`Network` (the options are :func:`interpret`'s)."""
    return interpret(path, **options).network


def interpret(path, *, input_bits: int | None = None, input_signed: bool | None = None, input_scale=None,
              score_bits: int | None = None, name: str | None = None, activations="thresholds",
              input_mode: str = "integer") -> Imported:
    """Walk a QONNX model once (module docstring): the network, its BatchNormalization sites and
    how each quantizer after an accumulator was realized.

    The network input is ``input_bits``-wide integers whose real value is ``x·input_scale``. When
    none of the three is given, the input's own datatype annotation decides (``finn_datatype`` in
    the graph's ``quantization_annotation``: BIPOLAR, BINARY, UINTn, INTn, FIXED<w,i> —
    :func:`hwnorm.datatypes.finn_datatype`); without one, 8-bit pixels and torchvision's
    ``ToTensor`` /255. A BIPOLAR input takes bits (1 for +1, 0 for −1). Scores come out as
    ``score_bits``-wide integers of an exact quantized BN (scale in ``meta["score_scale"]``; default:
    the narrowest width from 16 bits up that keeps the order of the real outputs).
    ``activations`` realizes the quantizers after accumulators: ``thresholds`` or ``requant``
    for all, or ``{layer: realization}`` for some (the others: thresholds).

    ``input_mode = "quantized"`` takes float inputs instead: the network starts at the codes of
    the model's first quantizer, and ``meta["input_quant"]`` says how floats become those codes —
    the input's elementwise preprocessing and the quantizer, in float32 exactly as QONNX's executor
    computes them (:func:`hwnorm.inputs.quantize_inputs`).
    """
    if input_mode not in ("integer", "quantized"):
        raise ValueError(f"input_mode must be 'integer' or 'quantized', got {input_mode!r}")
    from onnx import numpy_helper

    model = _load(path)
    g = model.graph
    src = Path(path).name
    if len(g.output) != 1:
        raise ImportError_(f"{src}: the ONNX graph declares {len(g.output)} outputs; hwnorm imports a network with "
                           "exactly one (its scores or class codes)")
    env: dict[str, object] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    data_inputs = [i for i in g.input if i.name not in env]
    if len(data_inputs) != 1:
        raise ImportError_(f"{src}: expected exactly one data input, found {[i.name for i in data_inputs]}")
    dims = [d.dim_value or 1 for d in data_inputs[0].type.tensor_type.shape.dim]
    shape = (1,) + tuple(dims[1:])
    if _features(shape) > MAX_FEATURES:  # checked before anything is allocated per feature
        raise ImportError_(f"{src}: input {data_inputs[0].name[:40]!r} declares {_features(shape):,} values per "
                           f"image; at most {MAX_FEATURES:,} are supported")
    in_type, input_scale, datatype = _input_type(g, data_inputs[0].name, src, input_bits, input_signed, input_scale)
    in_lo, in_hi = (0, 1) if in_type.is_bipolar else in_type.range
    # Integer inputs are codes x standing for x·input_scale: a MatMul may take them as they are (models
    # whose first layer reads fixed-point data, e.g. from QKeras / hls4ml, with no input quantizer).
    layout = _map_layout(shape)  # a feature map's form is per channel; a vector's per feature
    raw = _Quantized(in_type, (in_lo, in_hi), input_scale, 0, shape, layout)
    channels = shape[1] if layout else _features(shape)
    form = SurdAffine.identity(channels, input_scale)
    if in_type.is_bipolar:  # bit b stands for (2b − 1)·scale
        form = SurdAffine.identity(channels, 2 * input_scale).then_add(np.full(channels, -float(input_scale)),
                                                                       f"{src}: the BIPOLAR input")
    env[data_inputs[0].name] = _Chain(form, None, in_lo, in_hi, shape, raw=raw, layout=layout, source=raw)
    walk = _Walk(activations, g.output[0].name, input_mode, {o.domain: o.version for o in model.opset_import})
    consumers: dict[str, int] = {}
    for node in g.node:
        for i in node.input:
            consumers[i] = consumers.get(i, 0) + 1

    def where(node) -> str:
        return f"{src}: node {node.name or '?'} ({node.op_type})"

    for node in g.node:
        _check_domain(node, where(node))
        args = [env.get(i) if i else None for i in node.input]
        missing = [i for i, v in zip(node.input, args) if i and v is None]
        if missing:
            raise ImportError_(f"{where(node)}: input {missing[0]!r} is not produced by any earlier node")
        data = [a for a in args if isinstance(a, (_Chain, _Quantized))]
        try:
            if not data:
                env[node.output[0]] = _fold_const(node, args)
                continue
            env[node.output[0]] = walk.data_op(node, args)
        except ImportError_ as e:
            msg = str(e)
            raise ImportError_(msg if msg.startswith(src) else f"{src}: {msg}") from None
        except (ValueError, TypeError, IndexError, ArithmeticError) as e:  # ArithmeticError: inf / nan constants
            raise ImportError_(f"{where(node)}: {e}") from None

    out = env.get(g.output[0].name)
    if consumers.get(g.output[0].name):
        raise ImportError_(f"{src}: the graph output is also consumed inside the graph")
    if input_mode == "quantized":
        if walk.input_quant is None:
            raise NoInputQuantizer(f"{src}: no quantizer of the input found: give integer inputs instead")
        meta = {"source": src, "input_quant": walk.input_quant}
    else:
        meta = {"source": src, "input": {"bits": in_type.bits, "signed": in_type.signed,
                                         "scale": str(input_scale),
                                         **({"datatype": datatype} if datatype else {}),
                                         **({"bipolar": True} if in_type.is_bipolar else {})}}
    if isinstance(out, _Quantized) and walk.layers:  # the scores are the last quantizer's codes
        meta.update(score_scale=float(out.scale), threshold_margins=walk.margins, argmax_preserved=True)
    elif isinstance(out, _Chain) and isinstance(out.base, _Accumulator) and not out.relu:
        mvu = walk.emit(out.base, f"{src}: the graph output")
        try:
            score = _score_layer(out, mvu, score_bits, src)
        except ArithmeticError as e:  # a non-finite or overflowing constant in the float tail
            raise ImportError_(f"{src}: the float tail after the last MatMul cannot be folded ({e})") from None
        walk.add_layer(QuantBN(score.spec, name=score.spec.name), mvu.name)
        meta.update(score_scale=score.spec_scale, threshold_margins=walk.margins, argmax_preserved=score.order_ok)
    else:
        raise ImportError_(f"{src}: the graph output must be a (float, affine) function of a MatMul's result, or "
                           "the codes of a quantizer after one")
    unknown = sorted(set(walk.requested) - {site.layer for site in walk.sites})
    if unknown:
        raise ImportError_(f"{src}: activations names {unknown[0]!r}, which is not a layer ending in a quantizer; "
                           f"those are: {', '.join(site.layer for site in walk.sites) or 'none'}")
    return Imported(Network(tuple(walk.layers), name or Path(path).stem, meta, tuple(walk.inputs)), tuple(walk.bn_sites),
                    tuple(walk.sites))


def _input_type(g, name: str, src: str, bits, signed, scale) -> tuple:
    """``(element type, scale, FINN datatype name or None)`` of the network input: what the caller
    gives (defaults for the rest), else its ``finn_datatype`` annotation, else 8-bit pixels /255."""
    if bits is not None or signed is not None or scale is not None:
        return (IntType(8 if bits is None else bits, bool(signed)),
                Fraction(1, 255) if scale is None else Fraction(scale), None)
    declared = [p.value for a in g.quantization_annotation if a.tensor_name == name
                for p in a.quant_parameter_tensor_names if p.key == "finn_datatype"]
    if declared:
        try:
            found = finn_datatype(declared[0])
        except ValueError as e:
            raise ImportError_(f"{src}: input {name[:40]!r}: its {e}") from None
        if found is not None:
            return (*found, str(declared[0]).strip())  # (it matched one of finn_datatype's forms: safe text)
    return IntType(8, False), Fraction(1, 255), None


class _Walk:
    """What the ops on data tensors do, and the layers emitted so far (each once, complete)."""

    def __init__(self, activations, graph_output: str, input_mode: str = "integer", opsets: dict | None = None):
        if isinstance(activations, str):
            self.default, self.requested = activations, {}
        else:
            self.default, self.requested = "thresholds", dict(activations or {})
        for layer, how in [("*", self.default), *self.requested.items()]:
            if how not in REALIZATIONS:
                raise ImportError_(f"activations{'' if layer == '*' else f'.{layer}'} = {how!r} is not allowed; "
                                   f"allowed: {', '.join(REALIZATIONS)}")
        self.graph_output = graph_output
        self.input_mode = input_mode
        self.opsets = dict(opsets or {})  # domain → opset version (QONNX's Trunc changed meaning in v2)
        self.input_quant: dict | None = None  # quantized input mode: how floats become the input codes
        self.layers: list = []
        self.inputs: list[tuple] = []  # per layer, the layers it reads (INPUT: the network input)
        self.margins: dict[str, float] = {}
        self.bn_sites: list[BNSite] = []
        self.sites: list[ActivationSite] = []

    def add_layer(self, layer, *sources):
        """Append ``layer``, reading the outputs of ``sources`` (layer names; None: the network input)."""
        self.layers.append(layer)
        self.inputs.append(tuple(INPUT if s is None else s for s in sources))
        return layer

    @property
    def last(self) -> str | None:
        """The name of the layer appended last (None: none yet, the network input)."""
        return self.layers[-1].name if self.layers else None

    def emit(self, acc, where: str, fold=None):
        """The accumulator's layer: with ``fold``'s thresholds (rows of decreasing channels
        flipped), or the raw accumulator for ``fold`` None. A sum's layer (``add``, ``avgpool``)
        always hands on its raw sums: what quantizes them is a layer of its own."""
        if acc.emitted:
            raise ImportError_(f"{where}: the accumulator of {acc.name} is used twice (quantized twice or fanned out)")
        acc.emitted = True
        if isinstance(acc, _Sum):
            return self.add_layer(acc.layer, *acc.sources)
        layer = acc.layer() if fold is None else acc.layer(fold.spec, fold.flip)
        return self.add_layer(layer, acc.source)

    def data_op(self, node, args):
        handler = DATA_OPS.get(node.op_type)
        name = node.name or node.op_type
        if handler is None:
            raise ImportError_(f"node {name} ({node.op_type}): unsupported operation; hwnorm imports {supported_ops()} "
                               f"(Softmax / LogSoftmax / Sigmoid as the last op only)")
        return handler(self, node, name, args)

    def batch_norm(self, node, name: str, x, args) -> _Chain:
        """A BatchNormalization of float data: composed into its chain's exact map, recorded as a site."""
        if not isinstance(x, _Chain) or x.relu:
            raise ImportError_(f"node {name} (BatchNormalization): input must be a float (pre-quantizer, "
                               "pre-ReLU) tensor")
        if x.base is None and self.input_mode == "quantized":
            raise ImportError_(f"node {name} (BatchNormalization): a quantized input's preprocessing must be "
                               "Mul / Div / Add / Sub by constants")
        eps = float(np.float32(_attr(node, "epsilon", 1e-5)))
        if x.layout and x.layout not in ("NCHW", "NCW"):
            raise ImportError_(f"node {name} (BatchNormalization): normalizes axis 1 of an NCHW map; this one is "
                               f"{x.layout}")
        params = [_per_element(node, args[i], x, channel_axis=1) for i in range(1, 5)]
        form = x.form.then_bn(params[0], params[1], params[2], params[3], eps, f"node {name} (BatchNormalization)")
        self.bn_sites.append(BNSite(name, form, x.lo, x.hi))
        return replace(x, form=form, ops=(), raw=None)

    def conv(self, node, name: str, x, args) -> _Chain:
        """A convolution of quantized activations by quantized weights: a sliding ``window`` over
        the codes (padding reads the zero point: the code of 0), then the accumulator of an MVU
        over the ``OH·OW`` windows, weight columns in the window order (ky, kx, c)."""
        where = f"node {name} (Conv)"
        if isinstance(x, _Chain) and x.raw is not None:  # the integer network input, as it is
            x = x.raw
        if not isinstance(x, _Quantized) or len(args) < 2 or not isinstance(args[1], _QuantConst):
            raise ImportError_(f"{where}: only quantized activations (Quant / BipolarQuant) convolved with "
                               "quantized constant weights are supported")
        h, w, c = _map_dims(x, where)
        wq = args[1]
        if x.layout == "NCW" and wq.codes.ndim == 3:  # a 1-D kernel (O, C, k): a 1 × k one
            wq = wq.map(lambda a: np.asarray(a)[:, :, None, :])
        group = _attr(node, "group", 1)
        depthwise = group == c and c > 1
        if group != 1 and not depthwise:
            raise ImportError_(f"{where}: group = {group} (a grouped convolution) is not supported; group = 1 and "
                               f"depthwise convolutions (group = channels = {c}) are")
        if depthwise and (wq.codes.ndim != 4 or wq.codes.shape[:2] != (c, 1)):
            raise ImportError_(f"{where}: a depthwise convolution of {c} channels takes weights ({c}, 1, kh, kw), "
                               f"got {wq.codes.shape} (channel multipliers other than 1 are not supported)")
        if depthwise and (x.code_type is BIPOLAR or wq.bipolar):
            raise ImportError_(f"{where}: a depthwise convolution of ±1 (bipolar) activations or weights is not "
                               "supported; integer codes are")
        if not depthwise and (wq.codes.ndim != 4 or wq.codes.shape[1] != c):
            raise ImportError_(f"{where}: weights of shape {wq.codes.shape} do not match {c} input channels")
        out_c = wq.codes.shape[0]
        declared = _attr(node, "kernel_shape")
        if declared is not None and x.layout == "NCW":
            declared = [1, *declared]
        if declared is not None and tuple(declared) != tuple(wq.codes.shape[2:]):
            raise ImportError_(f"{where}: kernel_shape {list(declared)} contradicts the weights' "
                               f"{list(wq.codes.shape[2:])}")
        g = _geometry(node, where, h, w, tuple(wq.codes.shape[2:]), one_d=x.layout == "NCW")
        col = wq.scale.reshape(out_c, -1)
        if not np.all(col == col[:, :1]):
            raise ImportError_(f"{where}: the weight scale varies inside a filter; per-output-channel (or per-tensor) "
                               "weight scales are supported")
        element, lo, hi = _code_element(x)
        pad = x.zero
        if g.padded and x.code_type is BIPOLAR:
            raise ImportError_(f"{where}: padding ±1 activations with 0 has no ±1 code; pad the input of a binary "
                               "convolution before its BipolarQuant, or use pads = 0")
        if g.padded and not element.range[0] <= pad <= element.range[1]:
            raise ImportError_(f"{where}: the zero point {pad} (the code of 0, read by padding) is not a "
                               f"{element} value")
        if g.pointwise:  # a 1×1 window is the pixel itself: the MVU reads the map's pixel stream
            in_range = (lo, hi)
        else:
            window = SlidingWindow((h, w, c), g, element, lo, hi, pad if g.padded else 0, name=f"{name}_window")
            self.add_layer(window, x.producer)
            in_range = window.out_range
        ints = (wq.codes - wq.zero).astype(np.int64).transpose(0, 2, 3, 1).reshape(out_c, -1)  # (ky, kx, c)
        chain = _accumulator(name, "Conv", x, ints, col[:, 0], wq.bipolar, (g.out_height, g.out_width), in_range,
                             depthwise=depthwise)
        chain.base.source = x.producer if g.pointwise else window.name
        if x.layout == "NCW":
            chain = replace(chain, shape=_map_shape(x, out_c, g), layout="NCW")
        if len(args) > 2 and args[2] is not None:
            bias = args[2].values if isinstance(args[2], _QuantConst) else args[2]
            chain = replace(chain, form=chain.form.then_add(np.asarray(bias, np.float64).reshape(-1), where))
        return chain

    def maxpool(self, node, name: str, x) -> _Quantized:
        """A max-pool of quantized codes: codes rise with the real value, so it pools the codes."""
        where = f"node {name} (MaxPool)"
        if len(node.output) > 1 and node.output[1]:
            raise ImportError_(f"{where}: the Indices output is not supported")
        if not isinstance(x, _Quantized):
            raise ImportError_(f"{where}: supported on quantized activations (after a Quant / BipolarQuant)")
        h, w, c = _map_dims(x, where)
        kernel = tuple(_attr(node, "kernel_shape") or ())
        one_d = x.layout == "NCW"
        g = _geometry(node, where, h, w, (1, *kernel) if one_d else kernel, pool=True, one_d=one_d)
        element, lo, hi = _code_element(x)
        self.add_layer(MaxPool((h, w, c), g, element, lo, hi, name=name), x.producer)
        return replace(x, shape=_map_shape(x, c, g), producer=name)

    def residual(self, node, name: str, args) -> _Chain:
        """The sum (``Add``) or difference (``Sub``) of two quantized tensors of one shape: an
        ``add`` layer's exact integer ``m₀·(q₀ − z₀) ± m₁·(q₁ − z₁)`` (``m₀ / m₁`` the ratio of
        the scales, in lowest terms), whose real value is that integer times ``s₀ / m₀``."""
        where = f"node {name} ({node.op_type})"
        a, b = (x.raw if isinstance(x, _Chain) and x.raw is not None else x for x in args[:2])
        if not isinstance(a, _Quantized) or not isinstance(b, _Quantized):
            raise ImportError_(f"{where}: two data tensors are added only as two quantized tensors (outputs of Quant "
                               "nodes); quantize both operands before the join")
        if a.code_type is BIPOLAR or b.code_type is BIPOLAR:
            raise ImportError_(f"{where}: adding ±1 (bipolar) tensors is not supported; integer codes (Quant) are")
        if a.scale is None or b.scale is None:
            raise ImportError_(f"{where}: an operand has per-channel scales; the sum of two tensors is exact for "
                               "per-tensor scales")
        if tuple(a.shape) != tuple(b.shape) or a.layout != b.layout or not _same_order(a.order, b.order):
            raise ImportError_(f"{where}: the operands' shapes {tuple(a.shape)} and {tuple(b.shape)} differ "
                               "(broadcasting is not supported)")
        ratio = a.scale / b.scale
        m0, m1 = ratio.numerator, ratio.denominator * (-1 if node.op_type == "Sub" else 1)
        if max(abs(m0), abs(m1)).bit_length() > MAX_MULTIPLIER_BITS:
            raise ImportError_(f"{where}: the operands' scales {float(a.scale):g} and {float(b.scale):g} need "
                               f"{max(abs(m0), abs(m1)).bit_length()}-bit multipliers to align exactly; at most "
                               f"{MAX_MULTIPLIER_BITS} are supported")
        shape = _map_dims(a, where) if a.layout else (_features(a.shape),)
        elements = [_code_element(v)[0] for v in (a, b)]
        try:
            layer = Add(shape, tuple(elements), (a.code_range, b.code_range), (a.zero, b.zero), (m0, m1), name=name)
        except ValueError as e:
            raise ImportError_(f"{where}: {e}") from None
        lo, hi = layer.out_range
        form = SurdAffine.identity(shape[-1], a.scale / m0)
        return _Chain(form, _Sum(name, layer, (a.producer, b.producer), a.scale / m0), lo, hi, tuple(a.shape),
                      layout=a.layout, order=a.order)

    def concat(self, node, name: str, args) -> _Quantized:
        """Quantized tensors of one scale and zero point side by side along the channels: a
        ``concat`` layer; the codes mean the same in every input, so they are joined as they are."""
        where = f"node {name} (Concat)"
        xs = [a.raw if isinstance(a, _Chain) and a.raw is not None else a for a in args]
        if not all(isinstance(x, _Quantized) for x in xs):
            raise ImportError_(f"{where}: joins quantized tensors (outputs of Quant nodes) only, or constants alone")
        first = xs[0]
        if any(x.code_type is BIPOLAR for x in xs):
            raise ImportError_(f"{where}: joining ±1 (bipolar) tensors is not supported; integer codes are")
        if any(x.scale is None or x.scale != first.scale or x.zero != first.zero for x in xs):
            raise ImportError_(f"{where}: joins tensors of one per-tensor scale and zero point; these have "
                               f"{[float(x.scale) if x.scale is not None else 'per-channel' for x in xs]} and "
                               f"{[x.zero for x in xs]} (requantize them to one before the join)")
        if any(x.order is not None for x in xs) or len({x.layout for x in xs}) != 1:
            raise ImportError_(f"{where}: joins maps of one layout, or vectors; not flattened maps")
        rank = len(first.shape)
        axis = _attr(node, "axis")
        channel_axis = first.layout.index("C") if first.layout else rank - 1
        if axis is None or int(axis) % rank != channel_axis:
            raise ImportError_(f"{where}: joins along the channel axis ({channel_axis}) only, got axis {axis}")
        others = [tuple(d for k, d in enumerate(x.shape) if k != channel_axis) for x in xs]
        if len(set(others)) != 1:
            raise ImportError_(f"{where}: the inputs' shapes {[tuple(x.shape) for x in xs]} differ outside the channels")
        elements = tuple(_code_element(x)[0] for x in xs)
        channels = tuple(int(x.shape[channel_axis]) for x in xs)
        try:
            layer = Concat(channels, elements, tuple(x.code_range for x in xs), _spatial(first), name=name)
        except ValueError as e:
            raise ImportError_(f"{where}: {e}") from None
        self.add_layer(layer, *(x.producer for x in xs))
        shape = tuple(sum(channels) if k == channel_axis else d for k, d in enumerate(first.shape))
        return _Quantized(layer.out_type, layer.out_range, first.scale, first.zero, shape, first.layout, None, name)

    def average(self, node, name: str, x, args) -> _Chain:
        """An average of quantized codes over windows of a map (``AveragePool``), the whole map
        (``GlobalAveragePool``, ``ReduceMean`` over its spatial axes): an ``avgpool`` layer's
        exact window sums ``Σ(q − z)``, whose real value is the sum times ``s / N``."""
        op, where = node.op_type, f"node {name} ({node.op_type})"
        if isinstance(x, _Chain) and x.raw is not None:
            x = x.raw
        if not isinstance(x, _Quantized) or x.code_type is BIPOLAR or x.scale is None:
            raise ImportError_(f"{where}: averages the integer codes of a per-tensor Quant; quantize the map first")
        h, w, c = _map_dims(x, where)
        one_d = x.layout == "NCW"
        keep = True
        if op == "AveragePool":
            kernel = tuple(_attr(node, "kernel_shape") or ())
            g = _geometry(node, where, h, w, (1, *kernel) if one_d else kernel, pool=True, one_d=one_d)
            if g.padded and not _attr(node, "count_include_pad", 0):
                raise ImportError_(f"{where}: padded windows averaged over their pixels alone (count_include_pad = "
                                   "0) divide by a number that changes at the border; pads = 0 is supported")
            if g.padded:
                raise ImportError_(f"{where}: padded average pooling is not supported; pads = 0 is")
        else:
            if op == "ReduceMean":
                axes = _attr(node, "axes")
                if axes is None and len(args) > 1 and args[1] is not None:
                    axes = [int(v) for v in np.asarray(args[1]).reshape(-1)]
                rank = len(x.shape)
                spatial_axes = set(range(2, rank))
                if axes is None or {int(v) % rank for v in axes} != spatial_axes:
                    raise ImportError_(f"{where}: ReduceMean is supported over the spatial axes "
                                       f"{sorted(spatial_axes)} of an {x.layout} map (a global average pool), "
                                       f"got axes {axes}")
                keep = bool(_attr(node, "keepdims", 1))
            g = Geometry(h, w, (h, w))
        element, lo, hi = _code_element(x)
        try:
            layer = AvgPool((h, w, c), g, element, lo, hi, x.zero, name=name)
        except ValueError as e:
            raise ImportError_(f"{where}: {e}") from None
        s_lo, s_hi = layer.out_range
        form = SurdAffine.identity(c, x.scale / g.taps)
        base = _Sum(name, layer, (x.producer,), x.scale / g.taps)
        if keep:
            return _Chain(form, base, s_lo, s_hi, _map_shape(x, c, g), layout=x.layout)
        return _Chain(form, base, s_lo, s_hi, (1, c))

    def quantize(self, node, name: str, x, args) -> _Quantized:
        """A quantizer of a chain: input thresholds, or the layer of the accumulator it ends."""
        if not isinstance(x, _Chain):
            raise ImportError_(f"node {name} ({node.op_type}): input is already quantized; hwnorm imports a "
                               "quantizer of float data (after a MatMul, a BN or the input)")
        quant, scale, zero = _quantizer_of(node, args)
        channels = x.form.channels
        s = _per_element(node, scale, x)
        z = _per_element(node, zero, x)
        if np.unique(z).size != 1:
            raise ImportError_(f"node {name} ({node.op_type}): a per-channel zero point is not supported for activations")
        if isinstance(quant, Sign):  # code +1 iff u = y/s + z ≥ 0 (y ≥ 0 without a zero point)
            if np.unique(s).size != 1:
                raise ImportError_(f"node {name} ({node.op_type}): a bipolar quantizer needs one scale")
            quant = replace(quant, zero=int(z[0]))
            codes = BIPOLAR
            u = x.form if not quant.zero else \
                x.form.then_div(s, f"node {name} ({node.op_type})").then_add(np.full(channels, float(quant.zero)))
            cuts = [(Fraction(0), False)]
            if x.relu and quant.zero >= 0:  # max(y, 0)/s + z ≥ 0 always: +1 (for z < 0 the ReLU changes nothing)
                cuts = [(_below(u, x.lo, x.hi), False)]
        else:
            quant = Quantizer(quant.bits, quant.signed, quant.narrow, quant.rounding, int(z[0]), x.relu)
            lo, hi = quant.code_range
            if (lo, hi) == (0, 1):  # the IR reads a single 0/1 threshold output as ±1 bits
                raise ImportError_(f"node {name} (Quant): codes 0 and 1 only" + (" (after the ReLU)" if x.relu else "")
                                   + ": one-bit unsigned activations are not supported (use a BipolarQuant, or more "
                                   "bits)")
            if lo == hi:
                raise ImportError_(f"node {name} (Quant): after the ReLU only code {lo} remains (a constant "
                                   "activation); not supported")
            u = x.form.then_div(s, f"node {name} (Quant)").then_add(np.full(channels, float(z[0])))
            codes, cuts = quant.code_type, None  # the quantizer's own cuts, counted before they are computed
        try:
            check_against_executor(quant, s, quant.zero, f"node {name} ({node.op_type})")
        except ValueError as e:
            raise ImportError_(str(e)) from None
        if x.base is None and self.input_mode == "quantized":
            if x.relu or self.input_quant is not None:
                raise ImportError_(f"node {name} ({node.op_type}): a quantized input is one quantizer of the "
                                   "(elementwise, affine) preprocessed input")
            self.input_quant = {"ops": [{"op": op, "data_first": first, "value": _compact(v)} for op, first, v in x.ops],
                                "scale": _compact(s.astype(np.float32)), "quantizer": quantizer_to_json(quant)}
            producer = None  # the network's input is these codes
        else:
            producer = self._activation(node, name, x, u, quant, cuts)
        if isinstance(quant, Sign):
            self.margins[name] = _margin(u, x.lo, x.hi)
        per_tensor = Fraction(float(s[0])) if np.unique(s).size == 1 else None
        per_channel = tuple(Fraction(float(v)) for v in s) if per_tensor is None and x.layout else None
        return _Quantized(codes, (0, 1) if isinstance(quant, Sign) else quant.code_range, per_tensor,
                          quant.zero, x.shape, x.layout, x.order, producer, per_channel)

    def truncate(self, node, name: str, x, args) -> _Quantized:
        """QONNX ``Trunc`` of quantized data: the codes ``c`` divided by a power of two ``t``,
        rounded (FLOOR by default) and — from opset 2 — clipped to an output type: a monotone map
        of the codes, exactly as the executor computes it, realized as a thresholding layer over
        them. Opset 1: ``t = 2^(in_bits − out_bits)``, real value ``(c' − z)·scale``; opset 2:
        ``t = 2^round(log2(out_scale / scale))``, real value ``(c' − z/t)·out_scale``."""
        where = f"node {name} (Trunc)"
        v2 = self.opsets.get(node.domain, 1) >= 2
        need = 6 if v2 else 5
        if isinstance(x, _Chain) and isinstance(x.base, _Sum) and len(args) >= need:
            x = self._sum_codes(x, args, where)
        if not isinstance(x, _Quantized) or x.code_type is BIPOLAR:
            raise ImportError_(f"{where}: Trunc applies to the codes of a multi-bit Quant")
        if len(args) < need or any(a is None for a in args[:need]):
            raise ImportError_(f"{where}: needs {need} inputs (data, scale, zero point, input bit width, "
                               + ("output scale, " if v2 else "") + "output bit width)")
        if any(isinstance(a, (_Chain, _Quantized, _QuantConst)) for a in args[1:need]):
            raise ImportError_(f"{where}: scale, zero point, bit widths and output scale must be constants")
        one = {}
        for k, what in ((1, "scale"), (2, "zero point"), (3, "input bit width"), (need - 1, "output bit width"),
                        *([(4, "output scale")] if v2 else [])):
            v = np.asarray(args[k], dtype=np.float32).reshape(-1)
            if v.size != 1 or not np.isfinite(v[0]):
                raise ImportError_(f"{where}: the {what} must be one finite number, got {v[:4]}")
            one[what] = v[0]
        if x.scale is None or Fraction(float(one["scale"])) != x.scale or float(one["zero point"]) != x.zero:
            raise ImportError_(f"{where}: its scale and zero point must be those of the Quant before it "
                               f"({'per-channel' if x.scale is None else float(x.scale)}, {x.zero})")
        out_bits, in_bits = float(one["output bit width"]), float(one["input bit width"])
        if out_bits != round(out_bits) or not 1 <= out_bits <= 32 or in_bits != round(in_bits):
            raise ImportError_(f"{where}: bit widths must be whole numbers, the output's in 1 … 32")
        mode = _attr(node, "rounding_mode", "FLOOR")
        mode = (mode.decode() if isinstance(mode, bytes) else str(mode)).upper()
        if mode not in ROUNDING_MODES:
            raise ImportError_(f"{where}: rounding_mode {mode!r} is not allowed; allowed: {', '.join(ROUNDING_MODES)}")
        lo, hi = x.code_range
        if v2 and not (one["output scale"] > 0 and one["scale"] > 0):
            raise ImportError_(f"{where}: the scale and output scale must be positive, got {float(one['scale']):g} and "
                               f"{float(one['output scale']):g}")
        if v2:  # the executor: 2 ** np.round(np.log2(output_scale / scale)), in float32
            t = Fraction(float(np.float32(2) ** np.round(np.log2(np.float32(one["output scale"]) / one["scale"]))))
            flags = {key: _attr(node, key, default) for key, default in (("signed", 1), ("narrow", 0))}
            if any(v not in (0, 1) for v in flags.values()):
                raise ImportError_(f"{where}: attributes signed and narrow must be 0 or 1, got {flags}")
            quant = Quantizer(int(out_bits), bool(flags["signed"]), bool(flags["narrow"]), mode)
            zero, scale = Fraction(x.zero) / t, Fraction(float(one["output scale"]))
            if zero.denominator != 1:
                raise ImportError_(f"{where}: the zero point {x.zero} is not a multiple of the truncation {t}")
        else:  # no clip: the type of the reachable codes
            if in_bits < out_bits:
                raise ImportError_(f"{where}: the output bit width {out_bits:g} exceeds the input's {in_bits:g}")
            t = Fraction(2) ** int(in_bits - out_bits)
            probe = Quantizer(1, True, rounding=mode)
            ends = [probe.round(Fraction(c) / t) for c in (lo, hi)]
            out_type = IntType.from_range(*ends)
            quant = Quantizer(out_type.bits, out_type.signed, rounding=mode)
            zero, scale = Fraction(x.zero), x.scale
        channels = x.shape[x.layout.index("C")] if x.layout else _features(x.shape)
        fold = threshold_fold(SurdAffine.identity(channels, Fraction(1) / t), quant, lo, hi, name)
        in_type = IntType.from_range(lo, hi)
        self.add_layer(InputThreshold(fold.spec, in_type.bits, in_type.signed, name=name, spatial=_spatial(x)),
                       x.producer)
        reach = fold.spec.out_range
        return _Quantized(IntType.from_range(*reach), reach, scale, int(zero), x.shape, x.layout, x.order, name)

    def _sum_codes(self, x: _Chain, args, where: str) -> _Quantized:
        """A sum (an average pool's, as Brevitas' ``TruncAvgPool2d`` exports it) read by a
        ``Trunc`` as codes ``round(value / scale + zero)``: the sum itself when the Trunc's scale
        is the sum's unit (to well within half a code over the sum's range) and its zero point 0."""
        acc = x.base
        scale, zero = (np.asarray(args[k], np.float32).reshape(-1) for k in (1, 2))
        lo, hi = acc.layer.out_range
        if x.relu or x.form != SurdAffine.identity(x.form.channels, acc.unit) or scale.size != 1 or zero.size != 1:
            raise ImportError_(f"{where}: truncates the sum of {acc.name} only as it is (no other op between them), "
                               "with one scale and zero point")
        if not scale[0] > 0 or zero[0] != 0:
            raise ImportError_(f"{where}: reads the sum of {acc.name} with zero point {float(zero[0]):g}; 0 is supported")
        drift = abs(acc.unit / Fraction(float(scale[0])) - 1) + Fraction(1, 1 << 20)  # executor float32 rounding
        if drift * max(abs(lo), abs(hi)) >= Fraction(1, 2):
            raise ImportError_(f"{where}: its scale {float(scale[0]):g} is not the unit {float(acc.unit):g} of the sum "
                               f"of {acc.name}: the codes it rounds are not the sums")
        source = self.emit(acc, where).name
        codes = IntType.from_range(lo, hi)  # a layer after it takes the codes' whole type
        return _Quantized(codes, codes.range, Fraction(float(scale[0])), 0, x.shape, x.layout, x.order, source)

    def _activation(self, node, name: str, x: _Chain, u: SurdAffine, quant, cuts) -> str:
        """The layer(s) of a quantizer of a chain, realized as asked: thresholds (the input
        thresholding layer, the thresholds of the accumulator's MVU, or a thresholding layer after
        a sum) or the requantizer (a qbn after the input, the MVU's raw accumulator or the sum).
        Returns the name of the layer that outputs the codes."""
        acc, where = x.base, f"node {name} ({node.op_type})"
        layer = f"{name}_input" if acc is None else acc.name
        how = self.requested.get(layer, self.default)
        lo, hi = (x.lo, x.hi) if acc is None else acc.threshold_range()
        possible = isinstance(quant, Quantizer) and quant.datapath_rounding is not None
        joined = isinstance(acc, _Sum) and isinstance(acc.layer, Add)
        if how == "requant" and joined:  # its thresholds are over the narrowest multipliers' sums
            raise ImportError_(f"{where}: a quantizer after an add is realized by thresholds over the add's narrowest "
                               "exact sums; requant is not offered for it: use thresholds")
        possible = possible and not joined
        if how == "requant":
            if not possible:
                raise ImportError_(f"{where}: requant realizes Quant nodes rounding ROUND, HALF_EVEN, HALF_UP or "
                                   f"FLOOR; this one is {'a sign' if isinstance(quant, Sign) else quant.rounding}: "
                                   "use thresholds")
            spec = requant_spec(u, quant, lo, hi, name=layer if acc is None else name)
            source = None if acc is None else self.emit(acc, where).name
            self.add_layer(QuantBN(spec, name=spec.name, spatial=_spatial(x)), source)
        else:
            fold = bnn.fold_thresholds(u, cuts, acc_lo=lo, acc_hi=hi, name=name) if isinstance(quant, Sign) else \
                threshold_fold(u, quant, lo, hi, name)
            if isinstance(acc, _Sum):
                if fold.flip.any():
                    raise ImportError_(f"{where}: the map from the sum of {acc.name} to this quantizer decreases for "
                                       f"channel {int(np.flatnonzero(fold.flip)[0])}; only increasing maps are supported")
                spec = fold.spec
                if isinstance(acc.layer, Add):  # the narrowest multipliers that decide every input pair alike
                    narrow = narrowest(acc.layer, spec)
                    if narrow is not None:
                        acc.layer, spec = narrow
                        lo, hi = spec.acc_lo, spec.acc_hi
                in_type = IntType.from_range(lo, hi)
                self.add_layer(InputThreshold(spec, in_type.bits, in_type.signed, name=name, spatial=_spatial(x)),
                               self.emit(acc, where).name)
            elif acc is not None:
                self.emit(acc, where, fold)
            elif fold.flip.any():
                raise ImportError_(f"{where}: the input map decreases for feature {int(np.flatnonzero(fold.flip)[0])}; "
                                   "only increasing input scalings are supported")
            else:
                in_type = IntType.from_range(lo, hi)
                self.add_layer(InputThreshold(fold.spec, in_type.bits, in_type.signed, name=layer, spatial=_spatial(x)),
                               None)
        self.sites.append(ActivationSite(layer, name, how, possible))
        return self.last


# ---- the data-op handlers: (walk, node, name, args) → the output's value
@_handles(DATA_OPS, "Reshape", "Flatten")
def _data_flatten(walk, node, name, args):
    return _flatten(node, name, args[0], args)


@_handles(DATA_OPS, "Identity")
def _data_identity(walk, node, name, args):
    return args[0]


@_handles(DATA_OPS, "Shape")
def _data_shape(walk, node, name, args):
    return np.array(args[0].shape, dtype=np.int64)


@_handles(DATA_OPS, "Transpose")
def _data_transpose(walk, node, name, args):
    return _transpose(node, name, args[0])


@_handles(DATA_OPS, "Conv")
def _data_conv(walk, node, name, args):
    return walk.conv(node, name, args[0], args)


@_handles(DATA_OPS, "MaxPool")
def _data_maxpool(walk, node, name, args):
    return walk.maxpool(node, name, args[0])


@_handles(DATA_OPS, *_TAIL)
def _data_tail(walk, node, name, args):
    if node.output[0] != walk.graph_output:
        raise ImportError_(f"node {name} ({node.op_type}): supported only as the last op (it keeps the argmax)")
    return args[0]


@_handles(DATA_OPS, "Mul", "Div", "Add", "Sub")
def _data_arithmetic(walk, node, name, args):
    data = [a for a in args[:2] if isinstance(a, (_Chain, _Quantized))]
    if len(data) == 2 and node.op_type in ("Add", "Sub"):
        return walk.residual(node, name, args)
    return _arithmetic(node, name, args)


@_handles(DATA_OPS, "Concat")
def _data_concat(walk, node, name, args):
    return walk.concat(node, name, args)


@_handles(DATA_OPS, "AveragePool", "GlobalAveragePool", "ReduceMean")
def _data_average(walk, node, name, args):
    return walk.average(node, name, args[0], args)


@_handles(DATA_OPS, "Relu")
def _data_relu(walk, node, name, args):
    x = args[0]
    if not isinstance(x, _Chain) or x.relu:
        raise ImportError_(f"node {name} (Relu): supported on float data before a quantizer")
    return replace(x, relu=True, ops=(), raw=None)


@_handles(DATA_OPS, "BatchNormalization")
def _data_batch_norm(walk, node, name, args):
    return walk.batch_norm(node, name, args[0], args)


@_handles(DATA_OPS, "Quant", "BipolarQuant")
def _data_quantize(walk, node, name, args):
    return walk.quantize(node, name, args[0], args)


@_handles(DATA_OPS, "Trunc")
def _data_truncate(walk, node, name, args):
    return walk.truncate(node, name, args[0], args)


@_handles(DATA_OPS, "MatMul")
def _data_matmul(walk, node, name, args):
    return _matmul(name, args[0], args[1])


@_handles(DATA_OPS, "Gemm")
def _data_gemm(walk, node, name, args):
    return _gemm(node, name, args)


def _same_order(a, b) -> bool:
    """Two flattened maps stream their elements in the same order (or neither is flattened)."""
    if a is None or b is None:
        return a is None and b is None
    return np.array_equal(a, b)


def _below(form: SurdAffine, lo: int, hi: int) -> Fraction:
    """A cut every value of the (monotone, affine) map over ``[lo, hi]`` passes: a decision that always fires."""
    ends = [form.approx(c, np.array([lo, hi])) for c in range(form.channels)]
    return Fraction(math.floor(min(float(np.min(e)) for e in ends)) - 1)


def _code_element(x: "_Quantized") -> tuple:
    """The element type activations ``x`` stream as, and the codes that reach it. An MVU takes a
    one-bit integer code as two bits (``in_bits`` 1 means bipolar): the stream carries the same."""
    if x.code_type is BIPOLAR:
        return BIPOLAR, 0, 1
    return IntType(max(2, x.code_type.bits), x.code_type.signed), *x.code_range


def _geometry(node, where: str, h: int, w: int, kernel: tuple, pool: bool = False, one_d: bool = False) -> Geometry:
    """The window of a Conv / MaxPool node: kernel, strides, pads (or auto_pad); dilations of 1.
    ``one_d``: a 1-D node over a map of height 1 (its kernel already 1 × k), whose attributes name
    the length axis alone."""
    if len(kernel) != 2:
        raise ImportError_(f"{where}: a {'1' if one_d else '2'}-D kernel is supported, got kernel shape "
                           f"{list(kernel[1:] if one_d else kernel)}")
    attr = _attr
    if one_d:  # [s] → [1, s]; pads [begin, end] → [0, begin, 0, end]
        def attr(node, key, default=None):
            value = _attr(node, key, default)
            if key in ("strides", "dilations") and value is not None and len(value) == 1:
                return [1, *value]
            if key == "pads" and value is not None and len(value) == 2:
                return [0, value[0], 0, value[1]]
            return value
    strides = [int(v) for v in (attr(node, "strides") or (1, 1))]
    dilations = [int(v) for v in (attr(node, "dilations") or (1, 1))]
    if dilations != [1, 1]:
        raise ImportError_(f"{where}: dilations {dilations} are not supported; dilations = [1, 1] are")
    if len(strides) != 2 or min(strides) < 1:
        raise ImportError_(f"{where}: strides must be two whole numbers ≥ 1, got {strides}")
    auto = _attr(node, "auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("NOTSET", "VALID"):
        onnx_pads = [int(v) for v in (attr(node, "pads") or (0, 0, 0, 0))] if auto == "NOTSET" else [0] * 4
        if len(onnx_pads) != 4 or min(onnx_pads) < 0:
            raise ImportError_(f"{where}: pads must be four whole numbers ≥ 0, got {onnx_pads}")
        pads = (onnx_pads[0], onnx_pads[1], onnx_pads[2], onnx_pads[3])  # ONNX: y_begin, x_begin, y_end, x_end
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        total = [max((-(-size // s) - 1) * s + k - size, 0) for size, s, k in zip((h, w), strides, kernel)]
        small = [t // 2 for t in total]
        begin = small if auto == "SAME_UPPER" else [t - s for t, s in zip(total, small)]
        pads = (begin[0], begin[1], total[0] - begin[0], total[1] - begin[1])
    else:
        raise ImportError_(f"{where}: auto_pad {auto!r} is not allowed; allowed: NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    try:
        g = Geometry(h, w, kernel, tuple(strides), pads)
    except ValueError as e:
        raise ImportError_(f"{where}: {e}") from None
    if pool and _attr(node, "ceil_mode", 0):
        ceil = [-(-(size + pads[a] + pads[a + 2] - k) // s) + 1 for a, (size, k, s) in
                enumerate(zip((h, w), kernel, strides))]
        if ceil != [g.out_height, g.out_width]:
            raise ImportError_(f"{where}: ceil_mode = 1 gives a {ceil[0]}×{ceil[1]} output here, a partial window; "
                               "only ceil_mode = 0 (or a ceil_mode that changes nothing) is supported")
    return g


def _compact(values: np.ndarray):
    """One number for a constant that is the same everywhere, else the list (float32 values)."""
    v = np.asarray(values, np.float32).reshape(-1)
    return float(v[0]) if np.all(v == v[0]) else v.tolist()


def _flatten(node, name: str, x, args):
    if not isinstance(x, (_Chain, _Quantized)):
        raise ImportError_(f"node {name} ({node.op_type}): the data must be the first input")
    feats = _features(x.shape)
    if node.op_type == "Reshape":
        target = [int(v) for v in np.asarray(args[1]).reshape(-1)]
        if len(target) != 2 or target[1] not in (feats, -1) or target[0] not in (1, -1, 0):
            raise ImportError_(f"node {name} (Reshape): only flattening to (batch, {feats}) is supported, "
                               f"got shape {target}")
    elif _attr(node, "axis", 1) != 1:
        raise ImportError_(f"node {name} (Flatten): only axis=1 is supported")
    if not x.layout:
        return replace(x, shape=(1, feats))
    # A feature map streams channels last: element j of the vector is pixel j // C, channel j % C,
    # and ``order[j]`` is its index in ONNX's flattening of the layout (C·H·W for NCHW).
    axes = [x.layout.index(a) - 1 for a in "HWC" if a in x.layout]
    order = np.arange(feats).reshape(x.shape[1:]).transpose(axes).reshape(-1)
    flat = {"shape": (1, feats), "layout": "", "order": order}
    if isinstance(x, _Quantized):
        return replace(x, **flat)
    channels = x.shape[x.layout.index("C")]
    raw = None if x.raw is None else replace(x.raw, **flat)
    return replace(x, form=x.form.take(np.arange(feats) % channels), raw=raw, ops=(), **flat)


def _transpose(node, name: str, x):
    """A permutation of a feature map's axes (e.g. NCHW ↔ NHWC) changes its layout, not its
    stream; a vector's only transpose is the identity."""
    perm = _attr(node, "perm")
    rank = len(x.shape)
    perm = list(reversed(range(rank))) if perm is None else [int(p) for p in perm]
    if sorted(perm) != list(range(rank)):
        raise ImportError_(f"node {name} (Transpose): perm {perm} is not a permutation of {rank} axes")
    if not x.layout:
        if [x.shape[p] for p in perm if x.shape[p] != 1] != [d for d in x.shape if d != 1]:
            raise ImportError_(f"node {name} (Transpose): only vectors (batch, C) are supported, got {x.shape}")
        return x
    if perm[0] != 0:
        raise ImportError_(f"node {name} (Transpose): the batch axis must stay first, got perm {perm}")
    return replace(x, shape=tuple(x.shape[p] for p in perm), layout="".join(x.layout[p] for p in perm))


def _arithmetic(node, name: str, args):
    op = node.op_type
    d_idx = 0 if isinstance(args[0], (_Chain, _Quantized)) else 1
    d, c = args[d_idx], args[1 - d_idx]
    if isinstance(c, (_Chain, _Quantized)):
        raise ImportError_(f"node {name} ({op}): only data combined with a constant is supported")
    if isinstance(c, _QuantConst):
        c = c.values
    if isinstance(d, _Quantized):  # a rescaled quantized tensor: one positive scalar factor
        k = np.unique(np.asarray(c, dtype=np.float64))
        if op not in ("Mul", "Div") or d_idx != 0 or k.size != 1 or not 0 < k[0] < np.inf or d.scale is None:
            raise ImportError_(f"node {name} ({op}): quantized data can only be multiplied or divided by one "
                               "positive constant (apply other arithmetic before the quantizer)")
        factor = Fraction(float(k[0]))
        return replace(d, scale=d.scale * factor if op == "Mul" else d.scale / factor)
    if d.relu:
        raise ImportError_(f"node {name} ({op}): arithmetic after a ReLU is not supported before the quantizer")
    k = _per_element(node, c, d)
    ops = d.ops + ((op, d_idx == 0, k.astype(np.float32)),) if d.base is None else ()
    what = f"node {name} ({op})"
    if op == "Mul":
        form = d.form.then_mul(k, what)
    elif op == "Add":
        form = d.form.then_add(k, what)
    elif op == "Sub":
        form = d.form.then_add(-k, what) if d_idx == 0 else d.form.then_mul(-1.0, what).then_add(k, what)
    elif d_idx == 0:
        form = d.form.then_div(k, what)
    else:
        raise ImportError_(f"node {name} (Div): dividing a constant by data is not supported")
    return replace(d, form=form, ops=ops, relu=False, raw=None)


def _matmul(name: str, x, w, op: str = "MatMul") -> _Chain:
    """Quantized activations × quantized weights: an accumulator of the integer codes, its real
    value an exact affine map (the scales, and the activation zero point times each row's sum)."""
    offset = None
    if isinstance(x, _Chain) and x.raw is not None:  # the integer network input, as it is
        x = x.raw
    elif isinstance(x, _Chain) and x.base is None and x.ops and x.source is not None and not x.relu:
        x, offset = _preprocessed_input(f"node {name} ({op})", x)
    if not isinstance(x, _Quantized) or isinstance(w, (_Chain, _Quantized)):
        raise ImportError_(f"node {name} ({op}): only quantized activations (Quant / BipolarQuant) × constant "
                           "weights are supported")
    if not isinstance(w, _QuantConst):
        raise ImportError_(f"node {name} ({op}): the weights must be quantized (a Quant or BipolarQuant of the "
                           "weight tensor); plain float weights have no exact integer form")
    k = _features(x.shape)
    if w.codes.ndim != 2 or w.codes.shape[0] != k:
        raise ImportError_(f"node {name} ({op}): weights of shape {w.codes.shape} do not match {k} input features")
    if x.shape[-1] != k:  # ONNX multiplies the last axis only: (1, 1, 28, 28) × (784, n) is no product
        raise ImportError_(f"node {name} ({op}): the input of shape {tuple(x.shape)} must be a vector (batch, {k}) "
                           f"for weights of shape {w.codes.shape}; flatten it first")
    col = w.scale[0]
    if not np.all(w.scale == col):
        raise ImportError_(f"node {name} ({op}): the weight scale varies along the input axis; per-output-channel "
                           "(or per-tensor) weight scales are supported")
    ints = (w.codes - w.zero).astype(np.int64)  # exact: integer codes minus an integer zero point
    if x.order is not None:  # a flattened feature map streams channels last: rows in that order
        ints = ints[x.order]
    return _accumulator(name, op, x, ints.T, col, w.bipolar, offset=offset)


# Codes × features a preprocessed input is enumerated over (beyond: refused by name).
MAX_PREPROCESSED_VALUES = 1 << 22


def _preprocessed_input(where: str, x: _Chain) -> tuple:
    """The network input after its float preprocessing (``Add`` / ``Sub`` / ``Mul`` / ``Div`` by
    constants), as codes of the input's own type: ``(codes, offset)`` with real value
    ``g·scale + offset[feature]`` for the code's value ``g`` (±1 for bipolar codes) — every input
    code run through the ops in float32, as the
    executor runs them, and the result checked to be exactly that affine map with one scale for
    every feature (a MatMul of the codes is then exact). Otherwise refused, naming why."""
    src = x.source
    codes = np.arange(src.code_range[0], src.code_range[1] + 1)
    features = x.form.channels
    if codes.size * features > MAX_PREPROCESSED_VALUES:
        raise ImportError_(f"{where}: the input's float preprocessing ({', '.join(o for o, _, _ in x.ops)}) over "
                           f"{codes.size:,} input codes × {features:,} features is too large to fold exactly")
    grid = BIPOLAR.values(codes) if src.code_type.is_bipolar else codes
    v = np.broadcast_to((grid * float(src.scale)).astype(np.float32)[:, None], (codes.size, features))
    v = preprocess(v, [(op, first, np.asarray(k).reshape(-1)) for op, first, k in x.ops]).astype(np.float64)  # (float32 values: their differences and small multiples are exact here)
    if not np.all(np.isfinite(v)):
        raise ImportError_(f"{where}: the input's float preprocessing gives a non-finite value")
    step = v[1] - v[0] if codes.size > 1 else np.ones(features)
    ops = ", ".join(o for o, _, _ in x.ops)
    if codes.size > 1 and not np.array_equal(v, v[0] + np.arange(codes.size)[:, None] * step):
        raise ImportError_(f"{where}: the input's float preprocessing ({ops}) does not map the input codes to "
                           "equally spaced values (float32 rounding): it cannot be folded into integer codes exactly")
    if np.unique(step).size != 1 or not step[0] > 0:
        raise ImportError_(f"{where}: the input's float preprocessing ({ops}) scales the features differently or "
                           "by a negative factor: fold it into the weights before export")
    spacing = int(grid[1] - grid[0]) if codes.size > 1 else 1  # 2 for bipolar codes (−1 / +1)
    scale = Fraction(float(step[0])) / spacing   # the value the MVU multiplies is the grid's (±1 or the code)
    offset = v[0] - float(scale) * float(grid[0])
    quantized = _Quantized(src.code_type, src.code_range, scale, 0, x.shape, x.layout, x.order)
    return quantized, offset


def _accumulator(name: str, op: str, x: "_Quantized", ints: np.ndarray, col: np.ndarray, bipolar: bool,
                 spatial: tuple = (), in_range: tuple | None = None, offset=None, depthwise: bool = False) -> _Chain:
    """The accumulator of codes ``x`` times integer weights ``ints`` (out, K) whose real scale is
    ``col`` per output, as a chain: the exact real value per output channel. ``depthwise``:
    ``ints`` is (C, taps), each channel's weights over its own taps of a window."""
    n = ints.shape[0]
    if x.scale is not None:
        scales = [x.scale] * n
    elif depthwise and x.channel_scales is not None and len(x.channel_scales) == n:
        scales = list(x.channel_scales)  # each channel sums its own codes: its own scale is exact
    else:
        raise ImportError_(f"node {name} ({op}): activations with per-channel scales cannot be summed exactly "
                           "across channels (a depthwise convolution, which sums each channel alone, takes them)")
    k = ints.shape[1]
    if bipolar:
        weights, wtype = bnn.pack_bits((ints > 0).astype(np.uint8)), BIPOLAR
    else:
        weights = ints.copy()
        wtype = IntType.from_range(int(weights.min()), int(weights.max()), signed=True)
    acc = _Accumulator(name, weights, wtype, k, x.code_type, in_range or x.code_range, spatial=spatial,
                       source=x.producer, depthwise=depthwise)
    p1 = np.array([float(sc * Fraction(float(v))) for sc, v in zip(scales, col)])  # exact: two float32 factors
    form = SurdAffine.identity(n).then_mul(p1, f"node {name} ({op})")
    if offset is not None and np.any(offset):  # a preprocessed input: Σ_k w[n, k]·offset[k], exactly
        if np.unique(offset).size == 1:
            sums = [Fraction(float(offset[0])) * int(r) for r in ints.sum(axis=1)]
        else:
            exact = [Fraction(float(t)) for t in offset]
            sums = [sum((int(c) * t for c, t in zip(row, exact) if c), Fraction(0)) for row in ints]
        form = form.then_add(np.array([float(Fraction(float(v)) * s) for v, s in zip(col, sums)]),
                             f"node {name} ({op})")
    if x.zero:
        row_sums = ints.sum(axis=1)  # padding reads the zero point: the same correction at every pixel
        form = form.then_add(np.array([float(-sc * Fraction(float(v)) * x.zero * int(r))
                                       for sc, v, r in zip(scales, col, row_sums)]), f"node {name} ({op})")
    lo, hi = acc.layer().acc_range
    if spatial:
        return _Chain(form, acc, lo, hi, (1, n, *spatial), layout="NCHW")
    return _Chain(form, acc, lo, hi, (1, n))


def _gemm(node, name: str, args) -> _Chain:
    """``alpha·A·B' + beta·C`` (B' = Bᵀ when ``transB``): a MatMul, then a scale and a bias."""
    if _attr(node, "transA", 0):
        raise ImportError_(f"node {name} (Gemm): transA = 1 is not supported (the data must be A)")
    w = args[1]
    if _attr(node, "transB", 0):
        w = w.map(lambda a: np.transpose(a)) if isinstance(w, _QuantConst) else w
    chain = _matmul(name, args[0], w, "Gemm")
    alpha, beta = float(_attr(node, "alpha", 1.0)), float(_attr(node, "beta", 1.0))
    form = chain.form.then_mul(alpha, f"node {name} (Gemm)") if alpha != 1.0 else chain.form
    if len(args) > 2 and args[2] is not None:
        bias = args[2].values if isinstance(args[2], _QuantConst) else args[2]
        form = form.then_add(beta * _per_element(node, bias, chain), f"node {name} (Gemm)")
    return replace(chain, form=form)

def _margin(form: SurdAffine, lo: int, hi: int) -> float:
    """Smallest |v(x)| over the domain: how far the nearest input is from the sign decision."""
    xs = np.arange(lo, hi + 1)
    return float(min(np.abs(form.approx(c, xs)).min() for c in range(form.channels)))


@dataclass
class _Score:
    spec: object
    spec_scale: float
    order_ok: bool


SCORE_BITS = (16, 32)  # the score widths tried when none is given: the narrowest that keeps the order


def _exact_sqrt(v: Fraction) -> Fraction | None:
    n, d = math.isqrt(v.numerator), math.isqrt(v.denominator)
    return Fraction(n, d) if n * n == v.numerator and d * d == v.denominator else None


def _shared_scale_score(form: SurdAffine, lo: int, hi: int, bits: int | None) -> _Score | None:
    """The scores when every class is one real scale times the accumulator plus a rational
    offset, ``v_c(x) = a·(x + k_c)`` (a per-tensor weight scale, with or without a bias), proven
    without enumerating the accumulator (which a wide last layer makes too long).

    Split ``k_c = i_c + f_c`` (integer part, fraction in [0, 1)). For integers ``x``, ``x + k_c``
    orders first by ``x + i_c``, then by ``f_c``; so ``M·(x + i_c) + r_c``, with ``r_c`` the rank of
    ``f_c`` among the ``M`` distinct fractions, has exactly the reals' order and ties. None when
    the classes do not share their scale or the scores would not fit."""
    roots = {_exact_sqrt(s) for s in form.s}
    if len(set(form.p1)) != 1 or len(set(form.s)) != 1 or form.p1[0] == 0 or None in roots:
        return None
    a, root = form.p1[0], roots.pop()
    sign = 1 if a > 0 else -1   # a negative scale reverses the order: so does the score
    k = [sign * (p0 + q * root) / a for p0, q in zip(form.p0, form.q)]  # v_c = (|a|/√s)·(sign·x + k_c)
    whole = [math.floor(v) for v in k]
    fractions = sorted({v - w for v, w in zip(k, whole)})
    rank = {f: r for r, f in enumerate(fractions)}
    m = len(fractions)
    bias = [m * w + rank[v - w] for v, w in zip(k, whole)]
    ends = [sign * m * x + b for b in bias for x in (lo, hi)]
    width = IntType.from_range(min(ends), max(ends), signed=True).bits
    if width > (bits or SCORE_BITS[1]):
        return None
    fmt = FixedFormat.integer(bits or max(width, SCORE_BITS[0]))
    spec = BNSpec(channels=form.channels, in_fmt=FixedFormat(IntType.from_range(lo, hi, signed=True).bits),
                  out_fmt=fmt, mult=[sign * m] * form.channels, bias=bias, shift=[0] * form.channels,
                  in_lo=lo, in_hi=hi, name="scores")
    return _Score(spec, float(abs(a) / root / m), True)


def _score_layer(out: "_Chain", mvu: MVULayer, bits: int | None, src: str) -> _Score:
    """The float tail → an exact quantized BN whose integer order equals the real order, at
    ``bits`` or (None) the narrowest width in :data:`SCORE_BITS` that keeps it."""
    form = out.form
    lo, hi = mvu.acc_range
    count, limit = (hi - lo + 1) * form.channels, COST_LIMITS["score_values"]
    shared = _shared_scale_score(form, lo, hi, bits) if count > limit else None
    if shared is not None:  # (a narrow accumulator keeps the enumerated fit: its scores are the real ones, scaled)
        return shared
    if count > limit:  # checked before the enumeration allocates it
        raise ImportError_(f"{src}: proving that integer scores keep the order of the float outputs takes "
                           f"{form.channels:,} outputs × {hi - lo + 1:,} accumulator values = {count:,}, more than the "
                           f"{limit:,} hwnorm enumerates (COST_LIMITS in hwnorm/defaults.py)")
    gamma, beta, mean, var = form.as_bn()
    xs = np.arange(lo, hi + 1)
    real = np.stack([form.approx(c, xs) for c in range(form.channels)])  # (classes, values)
    peak = float(np.abs(real).max()) or 1.0
    # Argmax is preserved for every input iff sorting all (class, value) scores by the real value
    # never reverses or merges two integers whose reals differ, nor splits equal reals.
    order = np.argsort(real, axis=None, kind="stable")
    r = real.reshape(-1)[order]
    dr = np.diff(r)

    def attempt(width: int):
        out_fmt = FixedFormat.integer(width)
        fold = fold_bn(gamma, beta, mean, var, 0.0, in_fmt=FixedFormat(mvu.acc_type.bits), in_scale=1.0,
                       in_range=(lo, hi), out_fmt=out_fmt, out_scale=peak / out_fmt.max_int,
                       rounding="half_up", overflow="saturate", name="scores")
        ints = fold.spec.apply(np.broadcast_to(xs[:, None], (xs.size, form.channels))).T.astype(np.int64)
        dn = np.diff(ints.reshape(-1)[order])
        ok = bool(np.all(dn >= 0) and np.all((dr > 0) == (dn > 0)))
        return (_Score(fold.spec, peak / out_fmt.max_int, ok) if ok else None)

    for width in ([bits] if bits is not None else range(SCORE_BITS[0], SCORE_BITS[1] + 1)):
        score = attempt(width)
        if score is not None:
            return score
    gap = float(np.min(dr[dr > 0])) if np.any(dr > 0) else 0.0
    tried = f"{bits}-bit scores" if bits is not None else f"scores of up to {SCORE_BITS[1]} bits"
    raise ImportError_(f"{src}: {tried} cannot keep the order of the float outputs (the closest two differ by "
                       f"{gap:.3g} in a range of ±{peak:.3g})" + ("; raise score_bits" if bits is not None else ""))
