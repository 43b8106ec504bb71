"""Train / export two QNN shapes hwnorm must import that the other scripts do not make (issue 31):

* ``mlp_bipolar_input.onnx``: an MLP whose float input is declared BIPOLAR with the standard QONNX
  datatype annotation (``ModelWrapper.set_tensor_datatype``) and mapped to 0 / 1 by ``(x + 1) / 2``
  in the graph (``Add`` and ``Div`` before the first ``MatMul``, no input quantizer), as the QONNX
  zoo's cybersecurity MLP is. Trained on MNIST binarized to ±1 (pixel > 127) on the 8,000
  training-split images; 2-bit weights, 2-bit activations.
* ``kws_conv1d_w4a4.onnx``: a keyword-spotting-shaped 1-D convolutional network on (10, 49)
  MFCC-like inputs — ``Conv`` over (N, C, L), BatchNorm, ReLU, ``MaxPool`` 1-D, dense — 4-bit.
  There is no audio data on these machines: it is trained for a few epochs on random inputs
  with random labels, only so that its quantizers have non-degenerate scales; what the tests use
  is its exactness on random inputs.

Not run by the tests or CI (they use the vendored .onnx files); needs torch and brevitas, as
``make_brevitas_models.py`` says::

    pip install -e . && python tests/models/make_annotated_models.py
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from torch import nn

from make_brevitas_models import export, mnist_split, train  # (this folder is the script's path)

OUT = Path(__file__).resolve().parent


class BipolarInputMLP(nn.Module):
    """±1 inputs → (x + 1) / 2 → dense 784-64-64-10, 2-bit weights and activations."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            qnn.QuantLinear(784, 64, bias=True, weight_bit_width=2), nn.BatchNorm1d(64), qnn.QuantReLU(bit_width=2),
            qnn.QuantLinear(64, 64, bias=True, weight_bit_width=2), nn.BatchNorm1d(64), qnn.QuantReLU(bit_width=2),
            qnn.QuantLinear(64, 10, bias=True, weight_bit_width=2))

    def forward(self, x):
        return self.body((x + 1) / 2)


def conv1d(c_in: int, c_out: int):
    return qnn.QuantConv1d(c_in, c_out, 3, padding=1, bias=False, weight_quant=Int8WeightPerTensorFloat,
                           weight_bit_width=4)


class KeywordSpotting(nn.Module):
    """(10, 49) features → 8-bit input quantizer → conv 1-D 16 → pool 2 → conv 1-D 16 → pool 2 → dense 12."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=8),
            conv1d(10, 16), nn.BatchNorm1d(16), qnn.QuantReLU(bit_width=4), nn.MaxPool1d(2),
            conv1d(16, 16), nn.BatchNorm1d(16), qnn.QuantReLU(bit_width=4), nn.MaxPool1d(2))
        self.fc = qnn.QuantLinear(16 * 12, 12, bias=True, weight_quant=Int8WeightPerTensorFloat, weight_bit_width=4)

    def forward(self, x):
        return self.fc(torch.flatten(self.body(x), 1))


def bipolar_mlp() -> dict:
    x, y, held = mnist_split()
    x = torch.where(x.reshape(len(x), -1) > 127 / 255, 1.0, -1.0)
    model = BipolarInputMLP()
    top1 = train(model, x, y, held, epochs=8, lr=2e-3)
    path = export(model, torch.zeros(1, 784), OUT / "mlp_bipolar_input.onnx")
    wrapper = ModelWrapper(str(path))
    wrapper.set_tensor_datatype(wrapper.graph.input[0].name, DataType["BIPOLAR"])
    wrapper.save(str(path))
    return {"held_out_top1": round(top1, 4), "epochs": 8, "input_shape": [784], "input_datatype": "BIPOLAR",
            "doc": "MLP 784-64-64-10, 2-bit weights and activations; float input annotated BIPOLAR, (x + 1) / 2 "
                   "in the graph; trained on MNIST binarized to ±1"}


def keyword_spotting() -> dict:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4000, 10, 49, generator=g)
    y = torch.randint(0, 12, (4000,), generator=g)
    held = torch.arange(len(x)) % 5 == 0
    model = KeywordSpotting()
    top1 = train(model, x, y, held, epochs=3, lr=2e-3)
    export(model, torch.zeros(1, 10, 49), OUT / "kws_conv1d_w4a4.onnx")
    return {"held_out_top1": round(top1, 4), "epochs": 3, "input_shape": [10, 49],
            "doc": "keyword-spotting-shaped: conv 1-D 10→16→16 (k 3, pad 1), max-pool 2, dense 12; 4-bit; "
                   "random inputs and labels (exactness only)"}


def main():
    summary = {"mlp_bipolar_input": bipolar_mlp(), "kws_conv1d_w4a4": keyword_spotting()}
    for name, entry in summary.items():
        print(f"{name}: held-out top-1 {100 * entry['held_out_top1']:.2f}%", flush=True)
    (OUT / "annotated_models.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
