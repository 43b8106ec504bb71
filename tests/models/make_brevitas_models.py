"""Train and export the small multi-bit QNNs in tests/models/ with current Brevitas.

Not run by the tests or CI (they use the vendored .onnx files); it needs torch and brevitas::

    pip install torch==2.13.0
    pip install brevitas onnx==1.17.0 onnxoptimizer onnxruntime==1.31.1 qonnx==1.0.0
    pip install -e . && python tests/models/make_brevitas_models.py

Each model is an MLP on MNIST, trained for a few epochs on the 8,000 vendored test images whose
index is not a multiple of 5 (the other 2,000 are held out; top-1 on them is printed and written
to models.json), and exported with ``brevitas.export.export_qonnx`` (QONNX ``Quant`` nodes). They
cover what the importer must handle: signed and unsigned activations, per-channel and per-tensor
weight scales, biases, BatchNorm, ReLU, narrow ranges, zero points and 2 … 8 bits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import torch
from brevitas import nn as qnn
from brevitas.export import export_qonnx
from brevitas.quant import (Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Int8WeightPerTensorFloat,
                            ShiftedUint8ActPerTensorFloat, Uint8ActPerTensorFloat)
from torch import nn

from hwnorm import data

OUT = Path(__file__).resolve().parent


def linear(k, n, bits, per_channel):
    return qnn.QuantLinear(k, n, bias=True, weight_bit_width=bits,
                           weight_quant=Int8WeightPerChannelFloat if per_channel else Int8WeightPerTensorFloat)


def mlp_w4a4_relu():
    """Per-channel 4-bit weights, BN, unsigned 4-bit ReLU activations (Uint), biases."""
    return nn.Sequential(nn.Flatten(), qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=8),
                         linear(784, 64, 4, True), nn.BatchNorm1d(64),
                         qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=4),
                         linear(64, 10, 4, True))


def mlp_w8a8_signed():
    """Per-tensor 8-bit weights, signed 8-bit narrow activations, no BN."""
    return nn.Sequential(nn.Flatten(), qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=8),
                         linear(784, 32, 8, False),
                         qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=8, narrow_range=True),
                         linear(32, 10, 8, False))


def mlp_w2a3_bn():
    """Two hidden layers: 2-bit per-tensor weights, BN, signed 3-bit activations."""
    return nn.Sequential(nn.Flatten(), qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=8),
                         linear(784, 48, 2, False), nn.BatchNorm1d(48),
                         qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=3),
                         linear(48, 32, 2, False), nn.BatchNorm1d(32),
                         qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=3),
                         linear(32, 10, 2, False))


def mlp_w3a4_zero_point():
    """3-bit per-channel weights, BN, asymmetric 4-bit activations with a zero point (Shifted Uint)."""
    return nn.Sequential(nn.Flatten(), qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=8),
                         linear(784, 40, 3, True), nn.BatchNorm1d(40),
                         qnn.QuantIdentity(act_quant=ShiftedUint8ActPerTensorFloat, bit_width=4),
                         linear(40, 10, 3, True))


MODELS = {f.__name__: f for f in (mlp_w4a4_relu, mlp_w8a8_signed, mlp_w2a3_bn, mlp_w3a4_zero_point)}


def mnist_split():
    """The vendored MNIST test images as training data: images (N, 1, 28, 28) in [0, 1], labels,
    and the held-out mask (index a multiple of 5); threads and seed fixed."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    x, y = data.mnist_test()
    x = torch.tensor(x.astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    return x, torch.tensor(y.astype(np.int64)), torch.arange(len(x)) % 5 == 0


def export(model, example, path: Path) -> Path:
    """``export_qonnx`` into one self-contained file (no external data beside it)."""
    export_qonnx(model, example, str(path))
    onnx.save(onnx.load(str(path)), str(path), save_as_external_data=False)
    Path(f"{path}.data").unlink(missing_ok=True)
    return path


def train(model, x, y, held, epochs: int, lr: float) -> float:
    """Adam on the images not ``held`` (batches of 100, reshuffled each epoch); top-1 on the held ones."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(int((~held).sum()))
        xs, ys = x[~held][perm], y[~held][perm]
        for i in range(0, len(xs), 100):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xs[i:i + 100]), ys[i:i + 100])
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return float((model(x[held]).argmax(1) == y[held]).float().mean())


def main():
    x, y, held = mnist_split()
    summary = {}
    for name, make in MODELS.items():
        model = make()
        top1 = train(model, x, y, held, epochs=6, lr=2e-3)
        path = export(model, torch.zeros(1, 1, 28, 28), OUT / f"{name}.onnx")
        summary[name] = {"held_out_top1": round(top1, 4), "doc": make.__doc__}
        print(f"{name}: held-out top-1 {100 * top1:.2f}% → {path.name}")
    (OUT / "models.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
