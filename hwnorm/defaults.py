"""The embedded default design: the batch-norm layers of the vendored TFC_1W1A BNN.

Until the full QONNX importer exists this reads only what quantized BN needs: each
BatchNormalization node's parameters and the fan-in K of the binary MatMul feeding it,
whose ±1 dot products lie in [−K, K].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnorm import data


@dataclass(frozen=True)
class BNLayer:
    name: str
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float
    fan_in: int

    @property
    def in_range(self) -> tuple[int, int]:
        return -self.fan_in, self.fan_in


def tfc_bn_layers(model_path=None) -> list[BNLayer]:
    import onnx
    from onnx import numpy_helper

    path = model_path or data.path("models/TFC_1W1A.onnx")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf raises several unrelated types on garbage
        raise ValueError(f"{path}: not a readable ONNX model ({type(e).__name__})") from None
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}

    def weight_upstream(name: str) -> np.ndarray:
        # Walk back through Transpose / BipolarQuant to the weight initializer.
        while name not in inits:
            node = producer.get(name)
            if node is None or node.op_type not in ("Transpose", "BipolarQuant", "Quant"):
                raise ValueError(f"{path}: cannot trace the MatMul weight back from tensor {name!r}")
            name = node.input[0]
        return inits[name]

    layers = []
    for node in model.graph.node:
        if node.op_type != "BatchNormalization":
            continue
        mm = producer.get(node.input[0])
        if mm is None or mm.op_type != "MatMul":
            raise ValueError(f"{path}: node {node.name}: BatchNormalization must follow a MatMul")
        weight = weight_upstream(mm.input[1])  # PyTorch Linear layout: (out, in)
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        g, b, m, v = (inits[i].astype(np.float64) for i in node.input[1:5])
        layers.append(BNLayer(node.name, g, b, m, v, float(eps), int(weight.shape[1])))
    if not layers:
        raise ValueError(f"{path}: no BatchNormalization node found")
    return layers
