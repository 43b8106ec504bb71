"""Train and export the residual QNNs in tests/models/ with current Brevitas.

Not run by the tests or CI (they use the vendored .onnx files); it needs torch and brevitas, as
``make_brevitas_models.py`` says::

    pip install torch==2.13.0
    pip install brevitas onnx==1.17.0 onnxoptimizer onnxruntime==1.31.1 qonnx==1.0.0
    pip install -e . && python tests/models/make_residual_models.py

Small ResNet-style networks for MNIST's 28×28 images: a stem convolution, a residual block with
an identity shortcut, a residual block whose shortcut is a strided 1×1 convolution, a global
average pool and a dense layer — at 4-bit and at 2-bit weights and activations. Each residual
join adds two quantized tensors of their own learned scales (``QuantIdentity`` on the main
branch, the block input's ``QuantReLU`` or the shortcut's ``QuantIdentity``), then a
``QuantReLU``; the pool is a ``ReduceMean`` followed by a 4-bit unsigned ``QuantIdentity``. Trained briefly on
the 8,000 vendored MNIST test images whose index is not a multiple of 5; top-1 on the other
2,000 goes to ``residual_models.json`` (not comparable with published MNIST figures).
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
PACKAGE = OUT.parent.parent / "hwnorm" / "data" / "models"


def conv(c_in, c_out, kernel, bits, **kw):
    return qnn.QuantConv2d(c_in, c_out, kernel, bias=False, weight_quant=Int8WeightPerTensorFloat,
                           weight_bit_width=bits, **kw)


class Block(nn.Module):
    """conv 3×3 → BN → QuantReLU → conv 3×3 → BN → QuantIdentity, plus the shortcut (the input,
    or a strided 1×1 conv → BN → QuantIdentity when the shape changes), → QuantReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int, bits: int):
        super().__init__()
        self.main = nn.Sequential(conv(c_in, c_out, 3, bits, stride=stride, padding=1), nn.BatchNorm2d(c_out),
                                  qnn.QuantReLU(bit_width=bits),
                                  conv(c_out, c_out, 3, bits, padding=1), nn.BatchNorm2d(c_out),
                                  qnn.QuantIdentity(bit_width=bits))
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            conv(c_in, c_out, 1, bits, stride=stride), nn.BatchNorm2d(c_out), qnn.QuantIdentity(bit_width=bits))
        self.out = qnn.QuantReLU(bit_width=bits)

    def forward(self, x):
        return self.out(self.main(x) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, bits: int):
        super().__init__()
        self.stem = nn.Sequential(qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=8),
                                  conv(1, 16, 3, bits, padding=1), nn.BatchNorm2d(16), qnn.QuantReLU(bit_width=bits))
        self.blocks = nn.Sequential(Block(16, 16, 1, bits), Block(16, 32, 2, bits))
        # the pooled features (≥ 0) as 4-bit unsigned codes at either width: 2 bits leave the
        # dense layer too little to tell ten classes apart
        self.pool = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=4)
        self.fc = qnn.QuantLinear(32, 10, bias=True, weight_quant=Int8WeightPerTensorFloat, weight_bit_width=bits)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(self.pool(x.mean(dim=(2, 3), keepdim=True)), 1))


MODELS = {"RESNET_MNIST_W4A4": lambda: ResNet(4), "resnet_w2a2": lambda: ResNet(2)}
TRAINING = {"RESNET_MNIST_W4A4": (10, 2e-3), "resnet_w2a2": (10, 2e-3)}  # epochs, Adam's learning rate
DOCS = {"RESNET_MNIST_W4A4": "ResNet-style, 4-bit weights and activations: identity and strided 1×1 shortcuts, "
                       "global average pool",
        "resnet_w2a2": "ResNet-style, 2-bit weights and activations: identity and strided 1×1 shortcuts, "
                       "global average pool"}


def main(names=None):
    x, y, held = mnist_split()
    summary_path = OUT / "residual_models.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for name in names or MODELS:
        torch.manual_seed(0)
        model = MODELS[name]()
        epochs, lr = TRAINING[name]
        top1 = train(model, x, y, held, epochs, lr=lr)
        folder = PACKAGE if name.isupper() else OUT  # the 4-bit one is vendored: hwnorm's residual example
        path = export(model, torch.zeros(1, 1, 28, 28), folder / f"{name}.onnx")
        summary[name] = {"held_out_top1": round(top1, 4), "epochs": epochs, "input_shape": [1, 28, 28],
                         "doc": DOCS[name]}
        print(f"{name}: held-out top-1 {100 * top1:.2f}% → {path.name}", flush=True)
        summary_path.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])  # the models named, or all
