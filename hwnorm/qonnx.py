"""Import a QONNX (Brevitas / FINN) binarized network into the hwnorm IR.

The importer interprets the graph abstractly instead of pattern-matching it: one walk over the
nodes, in order, where every tensor's value carries what the next op needs. A value is one of

* a **constant** (initializers and anything computed only from them — weight quantizers,
  transposes, ``Pow(var + eps, 0.5)`` … are folded in float32, as the reference executor does);
* a **chain**: an exact real map of an integer base (the network input, or the accumulator of
  a binary MatMul) — Mul / Div / Add / Sub by constants and one BatchNormalization compose into
  a :class:`hwnorm.bnn.SurdAffine`;
* **binary**: ``±scale`` values produced by a BipolarQuant, backed by a layer that outputs bits.

A MatMul of binary values by ±1 weights makes an *accumulator* — not yet a layer: what consumes
it decides which layer it becomes, and that layer is emitted once, complete. A BipolarQuant of a
chain becomes thresholds (of the input layer, or of the ``mvu`` that made the accumulator, with
γ < 0 channels' weights flipped); the chain left at the graph output (the float affine tail)
becomes an ``mvu`` without thresholds and an exact quantized BN whose integer scores keep the order
of the real scores, so argmax is unchanged. Every BatchNormalization met on the way is recorded
with the exact map from its integer input (``Imported.bn_sites``: what ``hwnorm qbn`` folds).
Anything else stops the import with an error naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from hwnorm import bnn
from hwnorm.bnn import SurdAffine
from hwnorm.datatypes import IntType
from hwnorm.fixed import FixedFormat
from hwnorm.ir import MVTU, InputThreshold, Network, QuantBN
from hwnorm.qbn import fold_bn

__all__ = ["import_qonnx", "interpret", "Imported", "BNSite", "ImportError_"]


class ImportError_(ValueError):
    """An ONNX graph hwnorm cannot represent exactly (names the node)."""


@dataclass(eq=False)
class _Accumulator:
    """The integer result of a binary MatMul, waiting for its consumer to say which layer it is."""
    name: str
    weights: np.ndarray   # packed ±1 rows (out, ⌈K/64⌉)
    in_features: int
    emitted: bool = False


@dataclass
class _Chain:
    form: SurdAffine
    base: _Accumulator | None  # None: the network input
    lo: int
    hi: int
    shape: tuple


@dataclass
class _Binary:
    scale: Fraction
    shape: tuple


@dataclass(frozen=True)
class BNSite:
    """A BatchNormalization of the model: the exact real map from its integer input (the network
    input or an accumulator, in ``[lo, hi]``) to its output, every op before it included."""
    name: str
    form: SurdAffine
    lo: int
    hi: int


@dataclass(frozen=True)
class Imported:
    network: Network
    bn_sites: tuple


def _load(path) -> "onnx.ModelProto":  # noqa: F821
    import onnx

    p = Path(path)
    if not p.is_file():
        raise ImportError_(f"{p}: no such file")
    try:
        model = onnx.load(str(p))
    except Exception as e:  # protobuf raises DecodeError, RuntimeError, … on truncated or foreign files
        raise ImportError_(f"{p}: not a readable ONNX model ({type(e).__name__}: {str(e)[:80] or 'parse error'})") \
            from None
    if not model.graph.node:
        raise ImportError_(f"{p}: the ONNX graph has no nodes (truncated or not an ONNX model?)")
    return model


def _attr(node, name, default=None):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _fold_const(node, args: list[np.ndarray]) -> np.ndarray:
    """Evaluate a node whose inputs are all constants (float32 like the reference executor)."""
    op = node.op_type
    f32 = lambda a: np.asarray(a, dtype=np.float32) if np.asarray(a).dtype.kind == "f" else np.asarray(a)  # noqa: E731
    a = [f32(x) for x in args]
    if op in ("Add", "Sub", "Mul", "Div", "Pow"):
        fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power}[op]
        with np.errstate(all="ignore"):
            return fn(a[0], a[1]).astype(np.result_type(a[0], a[1]))
    if op == "Sqrt":
        return np.sqrt(a[0])
    if op == "Neg":
        return -a[0]
    if op == "Identity":
        return a[0]
    if op == "Cast":
        from onnx import helper
        return a[0].astype(helper.tensor_dtype_to_np_dtype(_attr(node, "to")))
    if op == "Transpose":
        perm = _attr(node, "perm")
        return np.transpose(a[0], perm)
    if op == "Reshape":
        return np.reshape(a[0], [int(v) for v in a[1]])
    if op == "Gather":
        return np.take(a[0], a[1], axis=_attr(node, "axis", 0))
    if op == "Unsqueeze":
        axes = _attr(node, "axes") if len(a) == 1 else [int(v) for v in a[1]]
        out = a[0]
        for ax in sorted(axes):
            out = np.expand_dims(out, ax)
        return out
    if op == "Concat":
        return np.concatenate([np.atleast_1d(x) for x in a], axis=_attr(node, "axis", 0))
    if op == "BipolarQuant":
        return np.where(a[0] >= 0, a[1], -a[1]).astype(np.float32)
    raise ImportError_(f"node {node.name or node.op_type} ({op}): unsupported operation on constants")


def _per_element(node, const: np.ndarray, shape: tuple, channel_axis: int | None = None) -> np.ndarray:
    """Broadcast a constant against a data tensor of ``shape`` (batch 1) → one value per feature."""
    c = np.asarray(const, dtype=np.float64)
    if channel_axis is not None:  # BN parameters: one per channel of axis 1
        c = c.reshape((1, -1) + (1,) * (len(shape) - 2))
    try:
        return np.broadcast_to(c, shape).reshape(-1)
    except ValueError:
        raise ImportError_(f"node {node.name}: constant of shape {const.shape} does not broadcast to the "
                           f"data shape {shape}") from None


def _features(shape: tuple) -> int:
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


def import_qonnx(path, **options) -> Network:
    """Import a binarized QONNX model (e.g. the FINN/Brevitas TFC_1W1A) into a :class:`Network`
    (the options are :func:`interpret`'s)."""
    return interpret(path, **options).network


def interpret(path, *, input_bits: int = 8, input_signed: bool = False, input_scale=Fraction(1, 255),
              score_bits: int = 16, name: str | None = None) -> Imported:
    """Walk a QONNX model once (module docstring): the network and its BatchNormalization sites.

    The network input is ``input_bits``-wide integers whose real value is ``x·input_scale``
    (default: 8-bit pixels and torchvision's ``ToTensor`` /255). Scores come out as
    ``score_bits``-wide integers of an exact quantized BN (scale in ``meta["score_scale"]``).
    """
    from onnx import numpy_helper

    model = _load(path)
    g = model.graph
    src = Path(path).name
    env: dict[str, object] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    data_inputs = [i for i in g.input if i.name not in env]
    if len(data_inputs) != 1:
        raise ImportError_(f"{src}: expected exactly one data input, found {[i.name for i in data_inputs]}")
    dims = [d.dim_value or 1 for d in data_inputs[0].type.tensor_type.shape.dim]
    shape = (1,) + tuple(dims[1:])
    in_lo, in_hi = IntType(input_bits, input_signed).range
    env[data_inputs[0].name] = _Chain(SurdAffine.identity(_features(shape), Fraction(input_scale)), None,
                                      in_lo, in_hi, shape)
    walk = _Walk()
    consumers: dict[str, int] = {}
    for node in g.node:
        for i in node.input:
            consumers[i] = consumers.get(i, 0) + 1

    def where(node) -> str:
        return f"{src}: node {node.name or '?'} ({node.op_type})"

    for node in g.node:
        args = [env.get(i) if i else None for i in node.input]
        missing = [i for i, v in zip(node.input, args) if i and v is None]
        if missing:
            raise ImportError_(f"{where(node)}: input {missing[0]!r} is not produced by any earlier node")
        op = node.op_type
        data = [a for a in args if isinstance(a, (_Chain, _Binary))]
        try:
            if not data:
                env[node.output[0]] = _fold_const(node, args)
                continue
            if op == "Shape":
                env[node.output[0]] = np.array(args[0].shape, dtype=np.int64)
                continue
            env[node.output[0]] = walk.data_op(node, args)
        except ImportError_ as e:
            msg = str(e)
            raise ImportError_(msg if msg.startswith(src) else f"{src}: {msg}") from None
        except (ValueError, TypeError, IndexError, ArithmeticError) as e:  # ArithmeticError: inf / nan constants
            raise ImportError_(f"{where(node)}: {e}") from None

    out = env.get(g.output[0].name)
    if not isinstance(out, _Chain) or out.base is None:
        raise ImportError_(f"{src}: the graph output must be a (float) function of a binary MatMul's result")
    if consumers.get(g.output[0].name):
        raise ImportError_(f"{src}: the graph output is also consumed inside the graph")
    mvu = walk.emit(out.base, None, f"{src}: the graph output")
    try:
        score = _score_layer(out, mvu, score_bits, src)
    except ArithmeticError as e:  # a non-finite or overflowing constant in the float tail
        raise ImportError_(f"{src}: the float tail after the last MatMul cannot be folded ({e})") from None
    walk.layers.append(QuantBN(score.spec, name=score.spec.name))
    meta = {"source": src, "input": {"bits": input_bits, "signed": input_signed,
                                     "scale": str(Fraction(input_scale))},
            "score_scale": score.spec_scale, "threshold_margins": walk.margins,
            "argmax_preserved": score.order_ok}
    return Imported(Network(tuple(walk.layers), name or Path(path).stem, meta), tuple(walk.bn_sites))


class _Walk:
    """What the ops on data tensors do, and the layers emitted so far (each once, complete)."""

    def __init__(self):
        self.layers: list = []
        self.margins: dict[str, float] = {}
        self.bn_sites: list[BNSite] = []

    def emit(self, acc: _Accumulator, fold, where: str) -> MVTU:
        """The accumulator's layer: with ``fold``'s thresholds (weights of γ < 0 rows flipped), or
        the raw accumulator for ``fold`` None."""
        if acc.emitted:
            raise ImportError_(f"{where}: the accumulator of {acc.name} is used twice (quantized twice or fanned out)")
        acc.emitted = True
        weights = acc.weights if fold is None else bnn.flip_rows(acc.weights, acc.in_features, fold.flip)
        layer = MVTU(weights, acc.in_features, None if fold is None else fold.spec, name=acc.name)
        self.layers.append(layer)
        return layer

    def data_op(self, node, args):
        op = node.op_type
        x = args[0]
        name = node.name or op
        if op in ("Reshape", "Flatten"):
            return _flatten(node, name, x, args)
        if op == "Identity":
            return x
        if op in ("Mul", "Div", "Add", "Sub"):
            return _arithmetic(node, name, args)
        if op == "BatchNormalization":
            if not isinstance(x, _Chain):
                raise ImportError_(f"node {name} (BatchNormalization): input must be a float (pre-quantizer) tensor")
            eps = float(np.float32(_attr(node, "epsilon", 1e-5)))
            params = [_per_element(node, args[i], x.shape, channel_axis=1) for i in range(1, 5)]
            form = x.form.then_bn(params[0], params[1], params[2], params[3], eps, f"node {name} (BatchNormalization)")
            self.bn_sites.append(BNSite(name, form, x.lo, x.hi))
            return _Chain(form, x.base, x.lo, x.hi, x.shape)
        if op == "BipolarQuant":
            return self.bipolar(name, x, args)
        if op == "MatMul":
            return _matmul(name, args)
        raise ImportError_(f"node {name} ({op}): unsupported operation; hwnorm imports Reshape/Flatten, "
                           "Mul/Div/Add/Sub by constants, BatchNormalization, BipolarQuant and MatMul with "
                           "BipolarQuant weights")

    def bipolar(self, name: str, x, args):
        if not isinstance(x, _Chain):
            raise ImportError_(f"node {name} (BipolarQuant): input is already binary or not a float tensor")
        scale = np.asarray(args[1], dtype=np.float64).reshape(-1)
        if scale.size != 1 or not 0 < scale[0] < np.inf:
            raise ImportError_(f"node {name} (BipolarQuant): scale must be one positive finite number, got {scale}")
        fold = bnn.fold_thresholds(x.form, [(Fraction(0), False)], acc_lo=x.lo, acc_hi=x.hi, name=name)
        self.margins[name] = _margin(x.form, x.lo, x.hi)
        if x.base is None:
            if fold.flip.any():
                raise ImportError_(f"node {name} (BipolarQuant): the input map decreases for feature "
                                   f"{int(np.flatnonzero(fold.flip)[0])}; only increasing input scalings are "
                                   "supported")
            in_type = IntType.from_range(x.lo, x.hi)
            self.layers.append(InputThreshold(fold.spec, in_type.bits, in_type.signed, name=f"{name}_input"))
        else:
            self.emit(x.base, fold, f"node {name} (BipolarQuant)")
        return _Binary(Fraction(float(scale[0])), x.shape)


def _flatten(node, name: str, x, args):
    if not isinstance(x, (_Chain, _Binary)):
        raise ImportError_(f"node {name} ({node.op_type}): the data must be the first input")
    feats = _features(x.shape)
    if node.op_type == "Reshape":
        target = [int(v) for v in np.asarray(args[1]).reshape(-1)]
        if len(target) != 2 or target[1] not in (feats, -1) or target[0] not in (1, -1, 0):
            raise ImportError_(f"node {name} (Reshape): only flattening to (batch, {feats}) is supported, "
                               f"got shape {target}")
    elif _attr(node, "axis", 1) != 1:
        raise ImportError_(f"node {name} (Flatten): only axis=1 is supported")
    if isinstance(x, _Chain):
        return _Chain(x.form, x.base, x.lo, x.hi, (1, feats))
    return _Binary(x.scale, (1, feats))


def _arithmetic(node, name: str, args):
    op = node.op_type
    d_idx = 0 if isinstance(args[0], _Chain) else 1
    d, c = args[d_idx], args[1 - d_idx]
    if not isinstance(d, _Chain) or isinstance(c, (_Chain, _Binary)):
        raise ImportError_(f"node {name} ({op}): only float data combined with a constant is supported "
                           "(apply elementwise arithmetic before the quantizer)")
    k = _per_element(node, c, d.shape)
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
    return _Chain(form, d.base, d.lo, d.hi, d.shape)


def _margin(form: SurdAffine, lo: int, hi: int) -> float:
    """Smallest |v(x)| over the domain: how far the nearest input is from the sign decision."""
    xs = np.arange(lo, hi + 1)
    return float(min(np.abs(form.approx(c, xs)).min() for c in range(form.channels)))


def _matmul(name: str, args) -> _Chain:
    """Binary activations × ±s weights: an accumulator in [−K, K], its real value scaled."""
    x, w = args
    if not isinstance(x, _Binary) or isinstance(w, (_Chain, _Binary)):
        raise ImportError_(f"node {name} (MatMul): only binary (BipolarQuant) activations × constant weights "
                           "are supported")
    w = np.asarray(w, dtype=np.float64)
    k = _features(x.shape)
    if w.ndim != 2 or w.shape[0] != k:
        raise ImportError_(f"node {name} (MatMul): weights of shape {w.shape} do not match {k} input features")
    mags = np.unique(np.abs(w))
    if mags.size != 1 or not 0 < mags[0] < np.inf:
        raise ImportError_(f"node {name} (MatMul): weights must be ±s with one scale s (a BipolarQuant of the "
                           f"weight), found {mags.size} distinct magnitudes")
    acc = _Accumulator(name, bnn.pack_bits((w.T >= 0).astype(np.uint8)), k)
    scale = x.scale * Fraction(float(mags[0]))
    return _Chain(SurdAffine.identity(w.shape[1], scale), acc, -k, k, (1, w.shape[1]))


@dataclass
class _Score:
    spec: object
    spec_scale: float
    order_ok: bool


def _score_layer(out: _Chain, mvtu: MVTU, bits: int, src: str) -> _Score:
    """The float tail → an exact quantized BN whose integer order equals the real order."""
    form = out.form
    lo, hi = mvtu.acc_range
    gamma, beta, mean, var = form.as_bn()
    xs = np.arange(lo, hi + 1)
    real = np.stack([form.approx(c, xs) for c in range(form.channels)])  # (classes, values)
    peak = float(np.abs(real).max()) or 1.0
    out_fmt = FixedFormat.integer(bits)
    fold = fold_bn(gamma, beta, mean, var, 0.0, in_fmt=FixedFormat(mvtu.acc_type.bits), in_scale=1.0,
                   in_range=(lo, hi), out_fmt=out_fmt, out_scale=peak / out_fmt.max_int,
                   rounding="half_up", overflow="saturate", name="scores")
    ints = fold.spec.apply(np.broadcast_to(xs[:, None], (xs.size, form.channels))).T.astype(np.int64)
    # Argmax is preserved for every input iff sorting all (class, value) scores by the real value
    # never reverses or merges two integers whose reals differ, nor splits equal reals.
    order = np.argsort(real, axis=None, kind="stable")
    r, n = real.reshape(-1)[order], ints.reshape(-1)[order]
    dr, dn = np.diff(r), np.diff(n)
    order_ok = bool(np.all(dn >= 0) and np.all((dr > 0) == (dn > 0)))
    if not order_ok:
        raise ImportError_(f"{src}: {bits}-bit scores cannot keep the order of the float outputs; "
                           "raise score_bits")
    return _Score(fold.spec, peak / out_fmt.max_int, order_ok)
