"""Builds ``hwnorm/data/models/calibration/skip_concat_pool.onnx``: the layer kinds no vendored
example has, for the resource model's calibration points (untrained: its value is in its shape).

    input 1×12×12 → QuantIdentity (8-bit) → conv 3×3 (8) → QuantReLU a ─┬─► conv 3×3 (8) → QuantReLU b
                                                                        └──── Concat(a, b) (16 channels) ◄┘
    → TruncAvgPool2d 2×2 / 2 (4-bit) → dense 576 → 10

``a`` and ``b`` share one QuantReLU (one scale: the importer's concat joins tensors of one
per-tensor scale). Run with this folder on the path: ``python tests/models/make_calibration_models.py``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat
from torch import nn

from make_brevitas_models import export  # (this folder is the script's path)

PACKAGE = Path(__file__).resolve().parent.parent.parent / "hwnorm" / "data" / "models" / "calibration"


class SkipConcatPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=8)
        self.conv_a = qnn.QuantConv2d(1, 8, 3, padding=1, bias=False, weight_quant=Int8WeightPerTensorFloat,
                                      weight_bit_width=4)
        self.conv_b = qnn.QuantConv2d(8, 8, 3, padding=1, bias=False, weight_quant=Int8WeightPerTensorFloat,
                                      weight_bit_width=4)
        self.act = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.pool = qnn.TruncAvgPool2d(kernel_size=2, stride=2, bit_width=4)
        self.fc = qnn.QuantLinear(16 * 6 * 6, 10, bias=False, weight_bit_width=4)

    def forward(self, x):
        a = self.act(self.conv_a(self.q(x)))
        b = self.act(self.conv_b(a))
        return self.fc(torch.flatten(self.pool(torch.cat([a, b], dim=1)), 1))


def main():
    torch.manual_seed(0)
    model = SkipConcatPool()
    model.train()
    with torch.no_grad():  # a few batches, so the activation scales are not their initial ones
        for _ in range(20):
            model(torch.rand(16, 1, 12, 12))
    PACKAGE.mkdir(parents=True, exist_ok=True)
    export(model.eval(), torch.zeros(1, 1, 12, 12), PACKAGE / "skip_concat_pool.onnx")


if __name__ == "__main__":
    main()
