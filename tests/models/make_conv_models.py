"""Train and export the convolutional QNNs in tests/models/ with current Brevitas.

Not run by the tests or CI (they use the vendored .onnx files); it needs torch and brevitas, as
``make_brevitas_models.py`` says::

    pip install torch==2.13.0
    pip install brevitas onnx==1.17.0 onnxoptimizer onnxruntime==1.31.1 qonnx==1.0.0
    pip install -e . && python tests/models/make_conv_models.py

Two CNV-style networks (3×3 convolutions, max-pools, a dense head; FINN's CNV shrunk to MNIST's
28×28 inputs), at 1-bit weights and activations and at 2-bit, trained on the 8,000 vendored MNIST
test images whose index is not a multiple of 5; top-1 on the other 2,000 is printed and written
to ``conv_models.json``. MNIST's test set is the only data on these machines, so these figures are
not comparable with published MNIST results.

And two small convolutional networks that cover what the importer and the hardware must handle
beyond CNV, trained briefly (their value is in their shapes): zero padding of integer
activations, stride 2, a max-pool with padding and a stride other than its kernel, non-square
kernels, inputs and strides, pooling in several places.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from brevitas import nn as qnn
from brevitas.quant import (Int8ActPerTensorFloat, Int8WeightPerTensorFloat, SignedBinaryActPerTensorConst,
                            SignedBinaryWeightPerTensorConst, Uint8ActPerTensorFloat)
from torch import nn

from make_brevitas_models import export, mnist_split, train  # (this folder is the script's path)

OUT = Path(__file__).resolve().parent
PACKAGE = OUT.parents[1] / "hwnorm" / "data" / "models"  # the CNVs ship with hwnorm (vendored models)


def conv(c_in, c_out, kernel, bits, **kw):
    quant = SignedBinaryWeightPerTensorConst if bits == 1 else Int8WeightPerTensorFloat
    return qnn.QuantConv2d(c_in, c_out, kernel, bias=False, weight_quant=quant, weight_bit_width=bits, **kw)


def linear(k, n, bits):
    quant = SignedBinaryWeightPerTensorConst if bits == 1 else Int8WeightPerTensorFloat
    return qnn.QuantLinear(k, n, bias=False, weight_quant=quant, weight_bit_width=bits)


def act(bits, signed=True):
    if bits == 1:
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat if signed else Uint8ActPerTensorFloat, bit_width=bits)


def cnv(bits: int):
    """28×28 → conv 16 → conv 16 → pool → conv 32 → conv 32 → pool → 512 → 64 → 10, no padding
    (FINN's CNV layout), ``bits``-bit weights and activations; the first layer reads 8-bit codes."""
    layers = [act(8)]
    for c_in, c_out, pool in ((1, 16, False), (16, 16, True), (16, 32, False), (32, 32, True)):
        layers += [conv(c_in, c_out, 3, bits), nn.BatchNorm2d(c_out), act(bits)]
        if pool:
            layers.append(nn.MaxPool2d(2))
    layers += [nn.Flatten(), linear(512, 64, bits), nn.BatchNorm1d(64), act(bits), linear(64, 10, bits)]
    return nn.Sequential(*layers)


def cnv_w1a1():
    """CNV-style, binary weights and activations (BipolarQuant), 8-bit input codes."""
    return cnv(1)


def cnv_w2a2():
    """CNV-style, 2-bit weights and signed 2-bit activations, 8-bit input codes."""
    return cnv(2)


def conv_pad_stride():
    """Zero padding of integer activations, stride 2, a 3×3 / stride-2 / padded max-pool, a 2×2
    kernel, pooling right before the dense layer; unsigned ReLU and signed activations."""
    return nn.Sequential(act(8, signed=False),
                         conv(1, 8, 3, 4, stride=2, padding=1), nn.BatchNorm2d(8), qnn.QuantReLU(bit_width=4),
                         nn.MaxPool2d(3, stride=2, padding=1),
                         conv(8, 12, 2, 3), nn.BatchNorm2d(12), act(3),
                         nn.MaxPool2d(2), nn.Flatten(), linear(108, 10, 4))


def conv_nonsquare():
    """A 28×20 input, a 3×5 kernel padded (1, 2), a 2×2 pool in the middle, a (2, 1) stride, and
    a binary convolution without padding after 2-bit integer ones."""
    return nn.Sequential(act(8),
                         conv(1, 6, (3, 5), 2, padding=(1, 2)), nn.BatchNorm2d(6), act(2, signed=False),
                         nn.MaxPool2d(2),
                         conv(6, 10, 3, 2, stride=(2, 1)), nn.BatchNorm2d(10), act(1),
                         conv(10, 8, (2, 3), 1), nn.BatchNorm2d(8), act(1),
                         nn.Flatten(), linear(8 * 5 * 6, 10, 1))


TRAINED = {f.__name__: f for f in (cnv_w1a1, cnv_w2a2)}
VENDORED_AS = {"cnv_w1a1": "CNV_MNIST_1W1A", "cnv_w2a2": "CNV_MNIST_2W2A"}  # their names in hwnorm
SHAPES = {f.__name__: f for f in (conv_pad_stride, conv_nonsquare)}
INPUT_SHAPE = {"conv_nonsquare": (1, 28, 20)}  # the centre 20 columns of the images


def _inputs(name: str, x: torch.Tensor) -> torch.Tensor:
    h, w = INPUT_SHAPE.get(name, (1, 28, 28))[1:]
    left = (28 - w) // 2
    return x[:, :, (28 - h) // 2:(28 - h) // 2 + h, left:left + w]


def _export(name: str, model, example) -> Path:
    return export(model, example, PACKAGE / f"{VENDORED_AS[name]}.onnx" if name in VENDORED_AS else OUT / f"{name}.onnx")


def main():
    x, y, held = mnist_split()
    summary = {}
    for name, make in {**TRAINED, **SHAPES}.items():
        model = make()
        epochs = 8 if name in TRAINED else 2
        top1 = train(model, _inputs(name, x), y, held, epochs, lr=5e-3)
        path = _export(name, model, torch.zeros(1, *INPUT_SHAPE.get(name, (1, 28, 28))))
        summary[VENDORED_AS.get(name, name)] = {"held_out_top1": round(top1, 4), "epochs": epochs,
                         "input_shape": list(INPUT_SHAPE.get(name, (1, 28, 28))), "doc": make.__doc__}
        print(f"{name}: held-out top-1 {100 * top1:.2f}% → {path.name}", flush=True)
    (OUT / "conv_models.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("update the sha256 of the vendored CNVs in hwnorm/data/__init__.py")


if __name__ == "__main__":
    main()
