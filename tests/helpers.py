"""Helpers shared by several test modules (a test module never imports another one): random
BN specs and their stimulus, the toy binarized network, and components built from specs the way
the package builds them (layer → block → component)."""

from __future__ import annotations

import numpy as np

from hwnorm import bnn
from hwnorm.bnn import ThresholdSpec, fold_sign_threshold
from hwnorm.fixed import FixedFormat
from hwnorm.ir import MVULayer, InputThreshold, Network, QuantBN
from hwnorm.bnspec import BNSpec, fold_bn


def random_spec(rng, channels, rounding, overflow, per_channel_shift, in_signed=True, out_signed=True):
    in_fmt = FixedFormat.integer(int(rng.integers(3, 10)), signed=in_signed)
    out_fmt = FixedFormat.integer(int(rng.integers(2, 9)), signed=out_signed)
    shift = rng.integers(0, 9, channels) if per_channel_shift else int(rng.integers(0, 9))
    return BNSpec(channels, in_fmt, out_fmt, mult=rng.integers(-300, 300, channels),
                  bias=rng.integers(-5000, 5000, channels), shift=shift, rounding=rounding, overflow=overflow)


def vectors(spec: BNSpec, rng, n: int) -> np.ndarray:
    """``n`` inputs of a BN spec's range, the first three at its corners."""
    corners = np.array([spec.in_lo, spec.in_hi, 0 if spec.in_lo <= 0 <= spec.in_hi else spec.in_lo])
    x = rng.integers(spec.in_lo, spec.in_hi + 1, (n, spec.channels))
    x[:3] = corners[:, None]
    return x


def bn_block(spec: BNSpec, lanes: int):
    """The hardware block of a BN spec with ``lanes`` channels per beat."""
    return QuantBN(spec, name=spec.name).block({"pe": lanes})


def toy_network(rng, k_in=100, hidden=(70, 33), classes=5):
    """A small binarized MLP (input thresholds, binary MVTUs, a raw MVULayer, a score BN) and the ±1
    weights / thresholds a plain numpy evaluation needs."""
    layers = [InputThreshold(ThresholdSpec(rng.integers(0, 257, (k_in, 1)), 0, 255), name="in")]
    pm1_weights, thresholds, k = [], [], k_in
    for i, n in enumerate(hidden):
        w = rng.choice([-1, 1], (n, k))
        fold = fold_sign_threshold(rng.normal(0, 1, n), rng.normal(0, 1, n), rng.normal(0, 3, n),
                                   rng.uniform(1, k, n), acc_lo=-k, acc_hi=k)
        w_eff = np.where(fold.flip[:, None], -w, w)
        layers.append(MVULayer(bnn.pack_bipolar(w_eff), k, fold.spec, name=f"fc{i}"))
        pm1_weights.append(w_eff)
        thresholds.append(fold.spec.thresholds[:, 0])
        k = n
    w = rng.choice([-1, 1], (classes, k))
    layers.append(MVULayer(bnn.pack_bipolar(w), k, None, name="fc_out"))
    fold = fold_bn(rng.uniform(0.5, 2, classes), rng.normal(0, 1, classes), 0.0, 1.0, 0.0,
                   in_fmt=FixedFormat.integer(16), in_scale=1.0, in_range=(-k, k),
                   out_fmt=FixedFormat.integer(12), out_scale=0.01, name="scores")
    layers.append(QuantBN(fold.spec, name="scores"))
    return Network(tuple(layers), "toy"), pm1_weights, thresholds, w, fold.spec


# ---------------------------------------------------------------- small QONNX graphs, built by hand
QONNX_DOMAIN = "qonnx.custom_op.general"


def quant_node(inp: str, out: str, prefix: str, scale, zero, bits: int, inits: dict, signed=True, narrow=False,
               rounding="ROUND"):
    """A QONNX Quant node and its constant inputs (added to ``inits``)."""
    from onnx import helper
    inits[f"{prefix}_s"], inits[f"{prefix}_z"], inits[f"{prefix}_b"] = scale, zero, float(bits)
    return helper.make_node("Quant", [inp, f"{prefix}_s", f"{prefix}_z", f"{prefix}_b"], [out], name=prefix,
                            domain=QONNX_DOMAIN, signed=int(signed), narrow=int(narrow), rounding_mode=rounding)


def qnn_model(path, rng, layers=(12, 6), inputs=16, bits=(4, 3), act_signed=(True, False), relu=(False, True),
              per_channel=True, zero=(0, 2), narrow=(False, False), rounding=("ROUND", "HALF_UP"), gemm=False,
              bn=True, bias=True, weight_bits=None, weight_zero=0.0, weight_narrow=True, input_quant=(8, True, 0.0, 1 / 64)):
    """A random MLP as Brevitas would export it: input Quant, then per layer a quantized weight,
    MatMul (or Gemm with transB), bias, BN, ReLU, activation Quant; a float tail at the end.
    ``weight_bits`` (default: random 2 … 8), ``weight_zero`` and ``weight_narrow`` shape every weight
    quantizer; ``input_quant`` is the input Quant's (bits, signed, zero point, scale)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], {}
    in_bits, in_signed, in_zero, in_scale = input_quant
    nodes.append(quant_node("x", "q0", "in_q", np.float32(in_scale), float(in_zero), in_bits, inits, signed=in_signed))
    prev, k = "q0", inputs
    for i, n in enumerate(layers):
        wb = int(rng.integers(2, 9)) if weight_bits is None else weight_bits
        w = rng.normal(0, 0.5, (n, k)).astype(np.float32)
        ws = (rng.uniform(0.02, 0.2, (n, 1)) if per_channel else np.float32(0.1)).astype(np.float32)
        inits[f"w{i}"] = w
        nodes.append(quant_node(f"w{i}", f"wq{i}", f"w{i}_q", ws, float(weight_zero), wb, inits, narrow=weight_narrow))
        if gemm:
            inits[f"c{i}"] = rng.normal(0, 0.3, n).astype(np.float32)
            nodes.append(helper.make_node("Gemm", [prev, f"wq{i}", f"c{i}"], [f"mm{i}"], name=f"Gemm_{i}", transB=1,
                                          alpha=1.25, beta=0.5))
        else:
            nodes.append(helper.make_node("Transpose", [f"wq{i}"], [f"wt{i}"], name=f"T{i}", perm=[1, 0]))
            nodes.append(helper.make_node("MatMul", [prev, f"wt{i}"], [f"mm{i}"], name=f"MatMul_{i}"))
        cur = f"mm{i}"
        if bias and not gemm:
            inits[f"bias{i}"] = rng.normal(0, 0.3, n).astype(np.float32)
            nodes.append(helper.make_node("Add", [cur, f"bias{i}"], [f"b{i}"], name=f"Add_{i}"))
            cur = f"b{i}"
        if i == len(layers) - 1:
            inits["tail_m"] = rng.uniform(0.5, 2, n).astype(np.float32)
            nodes.append(helper.make_node("Mul", [cur, "tail_m"], ["y"], name="tail"))
            break
        if bn:
            for nm, val in (("g", rng.uniform(-1.5, 2, n)), ("be", rng.normal(0, 0.5, n)), ("mu", rng.normal(0, 1, n)),
                            ("var", rng.uniform(0.5, 3, n))):
                inits[f"{nm}{i}"] = val.astype(np.float32)
            nodes.append(helper.make_node("BatchNormalization", [cur, f"g{i}", f"be{i}", f"mu{i}", f"var{i}"],
                                          [f"bn{i}"], name=f"BN_{i}", epsilon=1e-5))
            cur = f"bn{i}"
        if relu[i]:
            nodes.append(helper.make_node("Relu", [cur], [f"r{i}"], name=f"Relu_{i}"))
            cur = f"r{i}"
        nodes.append(quant_node(cur, f"a{i}", f"act_q{i}", np.float32(rng.uniform(0.05, 0.4)), float(zero[i]), bits[i],
                                inits, signed=act_signed[i], narrow=narrow[i], rounding=rounding[i]))
        prev, k = f"a{i}", n
    graph = helper.make_graph(nodes, "qnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, inputs])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, layers[-1]])],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)])
    onnx.save(model, str(path))
    return path


# ---------------------------------------------------------------- signals as a terminal delivers them
def terminal_signals() -> None:
    """``preexec_fn`` of a child process that is to be interrupted: SIGINT and SIGTERM at their
    default dispositions. A test run started in the background (``cmd &``, ``nohup``, a scheduler)
    inherits SIGINT as ignored, and so would every process it starts."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
