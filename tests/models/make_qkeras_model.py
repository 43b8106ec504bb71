"""Train a small QKeras MLP on MNIST and convert it to QONNX with qonnx's Keras converter.

Not run by the tests or CI (they use the vendored ``qkeras_mlp_w4a3.onnx``). The converter lives
in qonnx 0.4 (``qonnx.converters.keras``; qonnx 1.0 dropped it), which pins an old protobuf that
TensorFlow 2.21 refuses, so it needs its own environment. This one worked on 2026-11-30::

    python -m venv /tmp/qk && . /tmp/qk/bin/activate
    pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 qkeras==0.9.0 tf2onnx==1.17.0 pyparsing qonnx==0.4.0
    pip install "protobuf>=6.31.1"          # back to what TensorFlow needs; the converter still runs
    python tests/models/make_qkeras_model.py

QKeras 0.9 is written for Keras 2: ``TF_USE_LEGACY_KERAS=1`` makes ``tf.keras`` the tf-keras
package. The converter drops a ``QActivation`` on the model input, so the first ``QDense`` reads
the input as it is: hwnorm's integer input mode (8-bit pixels standing for pixel/255) feeds it.

Data as for the Brevitas models: the 8,000 vendored MNIST test images whose index is not a
multiple of 5 train it, the other 2,000 are held out (top-1 written to models.json).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx.optimizer  # noqa: E402,F401  (qonnx 0.4 reaches it as an attribute of tf2onnx)
import tf_keras as keras  # noqa: E402
from qkeras import QActivation, QDense, quantized_bits, quantized_relu  # noqa: E402
from qonnx.converters.keras import from_keras  # noqa: E402

OUT = Path(__file__).resolve().parent
MNIST = OUT.parents[1] / "hwnorm" / "data" / "mnist"  # read directly: hwnorm needs numba, not installed here


def idx(name: str) -> np.ndarray:
    """An IDX file (the MNIST format): big-endian dimensions after a 4-byte magic, then uint8 data."""
    import gzip

    raw = gzip.decompress((MNIST / name).read_bytes())
    dims = [int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(raw[3])]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)
NAME = "qkeras_mlp_w4a3"
DOC = ("QKeras → qonnx.converters.keras: 4-bit weights (per-tensor; the converter refuses alpha ≠ 1), 8-bit "
       "biases, unsigned 3-bit ReLU activations, a raw (unquantized) model input.")


def model():
    x = keras.layers.Input((784,), name="pixels")
    h = QDense(64, kernel_quantizer=quantized_bits(4, 0, alpha=1),
               bias_quantizer=quantized_bits(8, 3, alpha=1), name="fc1")(x)
    h = QActivation(quantized_relu(3, 1), name="act1")(h)
    h = QDense(32, kernel_quantizer=quantized_bits(4, 0, alpha=1),
               bias_quantizer=quantized_bits(8, 3, alpha=1), name="fc2")(h)
    h = QActivation(quantized_relu(3, 1), name="act2")(h)
    h = QDense(10, kernel_quantizer=quantized_bits(4, 0, alpha=1),
               bias_quantizer=quantized_bits(8, 3, alpha=1), name="scores")(h)
    return keras.Model(x, h)


def main():
    tf.random.set_seed(0)
    images, labels = idx("t10k-images-idx3-ubyte.gz"), idx("t10k-labels-idx1-ubyte.gz")
    x = (images.astype(np.float32) / 255).reshape(len(images), -1)
    held = np.arange(len(x)) % 5 == 0
    net = model()
    net.compile(optimizer=keras.optimizers.Adam(3e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    net.fit(x[~held], labels[~held], epochs=12, batch_size=100, verbose=2)
    top1 = float(np.mean(np.argmax(net.predict(x[held], verbose=0), axis=1) == labels[held]))
    onnx_model, _ = from_keras(net, NAME, opset=13)
    path = OUT / f"{NAME}.onnx"
    onnx.save(onnx_model, str(path))
    summary_path = OUT / "models.json"
    summary = json.loads(summary_path.read_text())
    summary[NAME] = {"held_out_top1": round(top1, 4), "doc": DOC, "exporter": "qkeras", "input": "integer"}
    summary_path.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{NAME}: held-out top-1 {100 * top1:.2f}% → {path.name}")


if __name__ == "__main__":
    main()
