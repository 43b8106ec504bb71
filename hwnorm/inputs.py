"""Float inputs → the integer codes a network imported with ``input_mode = "quantized"`` takes.

The model's own preprocessing (elementwise Mul / Div / Add / Sub by constants) and its first
quantizer run here in float32, op by op, exactly as QONNX's executor computes them (numpy's
float32 arithmetic is IEEE's, like onnxruntime's elementwise kernels): the codes are the ones
the executor's quantizer produces, bit for bit, for any float input.
"""

from __future__ import annotations

import numpy as np

from hwnorm.quantizer import code_range, executor_codes, quantizer_from_json, Sign

__all__ = ["quantize_inputs", "float_range", "preprocess"]

_OPS = {"Mul": np.multiply, "Div": np.divide, "Add": np.add, "Sub": np.subtract}


def _f32(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


def preprocess(v, ops) -> np.ndarray:
    """Float32 values ``v`` (…, features) through elementwise ``ops`` — ``(op, data_first, constant)``
    — in float32, op by op, as the executor runs them."""
    v = _f32(v)
    with np.errstate(all="ignore"):
        for op, data_first, value in ops:
            c = _f32(value)
            v = _OPS[op](v, c) if data_first else _OPS[op](c, v)
    return v


def quantize_inputs(input_quant: dict, x) -> np.ndarray:
    """int64 codes (N, features) of float inputs ``x`` (N, …) — bit 0 / 1 for a sign quantizer."""
    v = preprocess(_f32(x).reshape(len(x), -1),
                   [(step["op"], step["data_first"], step["value"]) for step in input_quant["ops"]])
    quant = quantizer_from_json(input_quant["quantizer"])  # a sign: of v itself (BipolarQuant) or of v/s + z
    codes = executor_codes(v, _f32(input_quant["scale"]), quant.zero, quant)
    return (codes > 0).astype(np.int64) if isinstance(quant, Sign) else codes


def float_range(input_quant: dict, features: int) -> tuple[np.ndarray, np.ndarray]:
    """Per feature, the float interval whose codes span the quantizer's range (a little beyond it,
    so random inputs also reach the clipping): for seeded random inputs of a model."""
    q = input_quant["quantizer"]
    lo, hi = (-1.0, 1.0) if q is None else code_range(q["bits"], q["signed"], q["narrow"])
    zero = 0.0 if q is None else q["zero"]
    scale = np.broadcast_to(np.asarray(input_quant["scale"], np.float64), (features,))
    a, b = (lo - zero - 1) * scale, (hi - zero + 1) * scale  # the quantizer's input, with a code of margin
    for step in reversed(input_quant["ops"]):  # undo the preprocessing (affine): map both ends back
        c = np.broadcast_to(np.asarray(step["value"], np.float64), (features,))
        op, first = step["op"], step["data_first"]
        if op == "Mul":
            a, b = a / c, b / c
        elif op == "Div":
            a, b = (a * c, b * c) if first else (c / a, c / b)
        elif op == "Add":
            a, b = a - c, b - c
        else:
            a, b = (a + c, b + c) if first else (c - a, c - b)
    return np.minimum(a, b), np.maximum(a, b)
