"""Train and export the depthwise-separable QNN in tests/models/ with current Brevitas.

Not run by the tests or CI (they use the vendored .onnx file); it needs torch and brevitas, as
``make_brevitas_models.py`` says::

    pip install torch==2.13.0
    pip install brevitas onnx==1.17.0 onnxoptimizer onnxruntime==1.31.1 qonnx==1.0.0
    pip install -e . && python tests/models/make_mobilenet_models.py

A small MobileNet-v1-style network for MNIST's 28×28 images, 4-bit weights and activations: a
stem convolution, then depthwise 3×3 + pointwise 1×1 blocks (stride 2 in two of the depthwise
convolutions), a global average pool and a dense layer. Trained briefly on the 8,000 vendored
MNIST test images whose index is not a multiple of 5; top-1 on the other 2,000 goes to
``mobilenet_models.json`` (not comparable with published MNIST figures).

And ``trunc_avgpool.onnx``, untrained (its value is in its shape): Brevitas' ``TruncAvgPool2d``,
which exports an ``AveragePool`` followed by a QONNX ``Trunc`` of the window sums.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat, Uint8ActPerTensorFloat
from torch import nn

from make_brevitas_models import export, mnist_split, train  # (this folder is the script's path)

OUT = Path(__file__).resolve().parent
PACKAGE = OUT.parent.parent / "hwnorm" / "data" / "models"  # vendored: hwnorm's depthwise and global-pool example
BITS = 4


def conv(c_in, c_out, kernel, **kw):
    return qnn.QuantConv2d(c_in, c_out, kernel, bias=False, weight_quant=Int8WeightPerTensorFloat,
                           weight_bit_width=BITS, **kw)


def separable(c_in: int, c_out: int, stride: int):
    """Depthwise 3×3 (stride ``stride``) → BN → QuantReLU → pointwise 1×1 → BN → QuantReLU."""
    return [conv(c_in, c_in, 3, stride=stride, padding=1, groups=c_in), nn.BatchNorm2d(c_in),
            qnn.QuantReLU(bit_width=BITS),
            conv(c_in, c_out, 1), nn.BatchNorm2d(c_out), qnn.QuantReLU(bit_width=BITS)]


class MobileNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=8),
            conv(1, 8, 3, padding=1), nn.BatchNorm2d(8), qnn.QuantReLU(bit_width=BITS),
            *separable(8, 16, 2), *separable(16, 32, 2), *separable(32, 32, 1))
        self.pool = qnn.QuantIdentity(bit_width=BITS)
        self.fc = qnn.QuantLinear(32, 10, bias=True, weight_quant=Int8WeightPerTensorFloat, weight_bit_width=BITS)

    def forward(self, x):
        x = self.features(x)
        return self.fc(torch.flatten(self.pool(x.mean(dim=(2, 3), keepdim=True)), 1))


class TruncPool(nn.Module):
    """4-bit unsigned input codes (4 channels) → 4×4 / stride 4 TruncAvgPool2d to 4 bits → dense."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=4, return_quant_tensor=True)
        self.pool = qnn.TruncAvgPool2d(kernel_size=4, stride=4, bit_width=4)
        self.fc = qnn.QuantLinear(4 * 7 * 7, 10, bias=False, weight_bit_width=4)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.q(x)), 1))


def main():
    x, y, held = mnist_split()
    name, epochs = "MOBILENET_MNIST_W4A4", 10
    model = MobileNet()
    top1 = train(model, x, y, held, epochs, lr=2e-3)
    path = export(model, torch.zeros(1, 1, 28, 28), PACKAGE / f"{name}.onnx")
    summary = {name: {"held_out_top1": round(top1, 4), "epochs": epochs, "input_shape": [1, 28, 28],
                      "doc": "MobileNet-v1-style, 4-bit: depthwise 3×3 + pointwise 1×1 blocks, stride 2 in two, "
                             "global average pool"}}
    print(f"{name}: held-out top-1 {100 * top1:.2f}% → {path.name}", flush=True)
    (OUT / "mobilenet_models.json").write_text(json.dumps(summary, indent=1) + "\n")
    export(TruncPool().eval(), torch.zeros(1, 4, 28, 28), OUT / "trunc_avgpool.onnx")


if __name__ == "__main__":
    main()
