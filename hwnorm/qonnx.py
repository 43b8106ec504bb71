"""Import a QONNX (Brevitas / FINN) binarized network into the hwnorm IR.

The importer interprets the graph abstractly instead of pattern-matching it. Every
activation tensor is one of

* a **constant** (initializers and anything computed only from them — weight quantizers,
  transposes, ``Pow(var + eps, 0.5)`` … are folded in float32, as the reference executor does);
* a **chain**: an exact real map of an integer base (the network input, or the accumulator of
  a binary MatMul) — Mul / Div / Add / Sub by constants and one BatchNormalization compose into
  a :class:`hwnorm.bnn.SurdAffine`;
* **binary**: ``±scale`` values produced by a BipolarQuant, backed by a layer that outputs bits.

A BipolarQuant of a chain becomes thresholds (of the input layer, or fused into the MVTU that
made the accumulator, with γ < 0 channels' weights flipped); a MatMul of binary values by ±1
weights becomes an MVTU; the chain left at the graph output (the float affine tail) becomes an
exact quantized BN whose integer scores keep the order of the real scores, so argmax is
unchanged. Anything else stops the import with an error naming the node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from hwnorm import bnn
from hwnorm.bnn import SurdAffine
from hwnorm.exactfit import signed_bits
from hwnorm.fixed import FixedFormat
from hwnorm.ir import MVTU, InputThreshold, Network, QuantBN
from hwnorm.qbn import fold_bn

__all__ = ["import_qonnx", "ImportError_"]


class ImportError_(ValueError):
    """An ONNX graph hwnorm cannot represent exactly (names the node)."""


@dataclass
class _Chain:
    form: SurdAffine
    base: int | None  # index of the MVTU whose accumulator this is; None: the network input
    lo: int
    hi: int
    shape: tuple


@dataclass
class _Binary:
    scale: Fraction
    layer: int
    shape: tuple


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


def import_qonnx(path, *, input_bits: int = 8, input_signed: bool = False, input_scale=Fraction(1, 255),
                 score_bits: int = 16, name: str | None = None) -> Network:
    """Import a binarized QONNX model (e.g. the FINN/Brevitas TFC_1W1A) into a :class:`Network`.

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
    in_lo, in_hi = ((-(1 << (input_bits - 1)), (1 << (input_bits - 1)) - 1) if input_signed
                    else (0, (1 << input_bits) - 1))
    env[data_inputs[0].name] = _Chain(SurdAffine.identity(_features(shape), Fraction(input_scale)), None,
                                      in_lo, in_hi, shape)
    layers: list = []
    margins: dict[str, float] = {}
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
            env[node.output[0]] = _data_op(node, args, layers, consumers, margins)
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
    try:
        score = _score_layer(out, layers[out.base], score_bits, src)
    except ArithmeticError as e:  # a non-finite or overflowing constant in the float tail
        raise ImportError_(f"{src}: the float tail after the last MatMul cannot be folded ({e})") from None
    layers.append(QuantBN(score.spec, name=score.spec.name))
    meta = {"source": src, "input": {"bits": input_bits, "signed": input_signed,
                                     "scale": str(Fraction(input_scale))},
            "score_scale": score.spec_scale, "threshold_margins": margins,
            "argmax_preserved": score.order_ok}
    return Network(tuple(layers), name or Path(path).stem, meta)


def _data_op(node, args, layers, consumers, margins):
    op = node.op_type
    x = args[0]
    name = node.name or op
    if op in ("Reshape", "Flatten"):
        if not isinstance(x, _Chain) and not isinstance(x, _Binary):
            raise ImportError_(f"node {name} ({op}): the data must be the first input")
        feats = _features(x.shape)
        if op == "Reshape":
            target = [int(v) for v in np.asarray(args[1]).reshape(-1)]
            if len(target) != 2 or target[1] not in (feats, -1) or target[0] not in (1, -1, 0):
                raise ImportError_(f"node {name} (Reshape): only flattening to (batch, {feats}) is supported, "
                                   f"got shape {target}")
        elif _attr(node, "axis", 1) != 1:
            raise ImportError_(f"node {name} (Flatten): only axis=1 is supported")
        new_shape = (1, feats)
        if isinstance(x, _Chain):
            return _Chain(x.form, x.base, x.lo, x.hi, new_shape)
        return _Binary(x.scale, x.layer, new_shape)
    if op == "Identity":
        return x
    if op in ("Mul", "Div", "Add", "Sub"):
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
    if op == "BatchNormalization":
        if not isinstance(x, _Chain):
            raise ImportError_(f"node {name} (BatchNormalization): input must be a float (pre-quantizer) tensor")
        eps = float(np.float32(_attr(node, "epsilon", 1e-5)))
        params = [_per_element(node, args[i], x.shape, channel_axis=1) for i in range(1, 5)]
        form = x.form.then_bn(params[0], params[1], params[2], params[3], eps, f"node {name} (BatchNormalization)")
        return _Chain(form, x.base, x.lo, x.hi, x.shape)
    if op == "BipolarQuant":
        return _bipolar(node, x, args, layers, consumers, margins)
    if op == "MatMul":
        return _matmul(node, args, layers)
    raise ImportError_(f"node {name} ({op}): unsupported operation; hwnorm imports Reshape/Flatten, "
                       "Mul/Div/Add/Sub by constants, BatchNormalization, BipolarQuant and MatMul with "
                       "BipolarQuant weights")


def _bipolar(node, x, args, layers, consumers, margins):
    name = node.name or "BipolarQuant"
    if not isinstance(x, _Chain):
        raise ImportError_(f"node {name} (BipolarQuant): input is already binary or not a float tensor")
    scale = np.asarray(args[1], dtype=np.float64).reshape(-1)
    if scale.size != 1 or not 0 < scale[0] < np.inf:
        raise ImportError_(f"node {name} (BipolarQuant): scale must be one positive finite number, got {scale}")
    fold = bnn.fold_thresholds(x.form, [(Fraction(0), False)], acc_lo=x.lo, acc_hi=x.hi, name=name)
    margins[name] = _margin(x.form, x.lo, x.hi)
    if x.base is None:
        if fold.flip.any():
            raise ImportError_(f"node {name} (BipolarQuant): the input map decreases for feature "
                               f"{int(np.flatnonzero(fold.flip)[0])}; only increasing input scalings are supported")
        layers.append(InputThreshold(fold.spec, _bits_of(x.lo, x.hi), x.lo < 0, name=f"{name}_input"))
        return _Binary(Fraction(float(scale[0])), len(layers) - 1, x.shape)
    mvtu = layers[x.base]
    if mvtu.thresholds is not None:
        raise ImportError_(f"node {name} (BipolarQuant): the accumulator of {mvtu.name} is quantized twice")
    spec = fold.spec
    layers[x.base] = MVTU(bnn.flip_rows(mvtu.weights, mvtu.in_features, fold.flip), mvtu.in_features, spec,
                          mvtu.in_bits, mvtu.in_signed, mvtu.name)
    return _Binary(Fraction(float(scale[0])), x.base, x.shape)


def _bits_of(lo: int, hi: int) -> int:
    return max(hi.bit_length(), (-lo).bit_length()) + (1 if lo < 0 else 0)


def _margin(form: SurdAffine, lo: int, hi: int) -> float:
    """Smallest |v(x)| over the domain: how far the nearest input is from the sign decision."""
    xs = np.arange(lo, hi + 1)
    return float(min(np.abs(form.approx(c, xs)).min() for c in range(form.channels)))


def _matmul(node, args, layers):
    name = node.name or "MatMul"
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
    packed = bnn.pack_bits((w.T >= 0).astype(np.uint8))
    layers.append(MVTU(packed, k, None, 1, False, name))
    scale = x.scale * Fraction(float(mags[0]))
    return _Chain(SurdAffine.identity(w.shape[1], scale), len(layers) - 1, -k, k, (1, w.shape[1]))


@dataclass
class _Score:
    spec: object
    spec_scale: float
    order_ok: bool


def _score_layer(out: _Chain, mvtu: MVTU, bits: int, src: str) -> _Score:
    """The float tail → an exact quantized BN whose integer order equals the real order."""
    form = out.form
    lo, hi = mvtu.acc_range
    p1 = np.array([float(v) for v in form.p1])
    q = np.array([float(v) for v in form.q])
    s = np.array([float(v) for v in form.s])
    mean = np.array([float(-p0 / a) if a != 0 else 0.0 for p0, a in zip(form.p0, form.p1)])
    beta = q + np.array([float(p0) / math.sqrt(float(sv)) if a == 0 else 0.0
                         for p0, a, sv in zip(form.p0, form.p1, form.s)])
    xs = np.arange(lo, hi + 1)
    real = np.stack([form.approx(c, xs) for c in range(form.channels)])  # (classes, values)
    peak = float(np.abs(real).max()) or 1.0
    out_fmt = FixedFormat.integer(bits)
    fold = fold_bn(p1, beta, mean, s, 0.0, in_fmt=FixedFormat.integer(signed_bits(lo, hi)), in_scale=1.0,
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
