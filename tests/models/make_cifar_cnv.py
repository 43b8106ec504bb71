"""Builds ``hwnorm/data/models/CNV_CIFAR_1W1A.onnx.gz`` and ``CNV_CIFAR_2W2A.onnx.gz``: FINN's
CIFAR-10 CNV topology (BNN-PYNQ ``cnv_1w1a`` / ``cnv_2w2a``) from Brevitas' own model code, ::

    3×32×32 → conv 64 → conv 64 → pool → conv 128 → conv 128 → pool → conv 256 → conv 256
            → fc 512 → fc 512 → fc 10          (3×3 convolutions, no padding; 2×2 pools)

untrained: there is no CIFAR-10 on these machines, and the hardware does not depend on the
weights' values. Its batch norms take statistics of three batches of uniform random images, so
the thresholds are spread as a trained network's are. Each weight is stored as the value its
quantizer gives it (``Quant`` / ``BipolarQuant`` of it is itself): the executor's outputs do not
change, and the file compresses to a tenth (a float weight is noise to gzip).

Needs torch and brevitas (not hwnorm's dependencies). Run with this folder on the path:
``python tests/models/make_cifar_cnv.py``.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from brevitas.export import export_qonnx
from brevitas_examples.bnn_pynq.models import model_with_cfg
from onnx import numpy_helper

PACKAGE = Path(__file__).resolve().parent.parent.parent / "hwnorm" / "data" / "models"


def quantized_weights(model: onnx.ModelProto) -> int:
    """Replace each weight initializer read by a quantizer with what the quantizer makes of it."""
    inits = {i.name: i for i in model.graph.initializer}
    done = 0
    for node in model.graph.node:
        if node.op_type not in ("Quant", "BipolarQuant") or node.input[0] not in inits:
            continue
        w = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
        scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        if node.op_type == "BipolarQuant":
            q = np.where(w >= 0, 1.0, -1.0).astype(np.float32) * scale
        else:
            zero = numpy_helper.to_array(inits[node.input[2]]).astype(np.float32)
            bits = int(numpy_helper.to_array(inits[node.input[3]]))
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            signed, narrow = attrs.get("signed", 1), attrs.get("narrow", 0)
            assert attrs.get("rounding_mode", b"ROUND") in (b"ROUND", "ROUND"), attrs
            lo = -(2 ** (bits - 1)) + narrow if signed else 0
            hi = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1 - narrow
            q = ((np.clip(np.round(w / scale + zero), lo, hi) - zero) * scale).astype(np.float32)
        inits[node.input[0]].CopyFrom(numpy_helper.from_array(q, node.input[0]))
        done += 1
    return done


def build(name: str, out: Path) -> None:
    torch.manual_seed(0)
    net, _ = model_with_cfg(name.lower(), False)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(16, 3, 32, 32) * 2 - 1)
    net.eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        export_qonnx(net, torch.zeros(1, 3, 32, 32), str(path), dynamo=False)
        model = onnx.load(str(path))
    print(name, quantized_weights(model), "weight tensors stored quantized")
    out.write_bytes(gzip.compress(model.SerializeToString(), mtime=0))


if __name__ == "__main__":
    for variant in ("CNV_1W1A", "CNV_2W2A"):
        build(variant, PACKAGE / f"{variant.replace('CNV', 'CNV_CIFAR')}.onnx.gz")
