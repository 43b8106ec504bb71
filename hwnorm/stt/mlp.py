"""The STT-RAM experiment's network: a small FP16 MLP trained by hwnorm on vendored MNIST.

Data split (documented, fixed): the vendored MNIST *test* set is the only MNIST hwnorm ships, so
images with index ``i % 5 == 0`` (2,000) are held out for evaluation and the other 8,000 train
the network. The interleaved split keeps both halves of the test set (the two writer groups of
the original NIST data) in both parts.

Network: 784-128-64-10, ReLU, softmax cross-entropy, Adam, seeded, float32 numpy. Each tensor
is then normalized to [−1, 1] by its largest magnitude and rounded to FP16: the FP16 tensors go
into the STT-RAM buffer, the per-tensor scales (one float32 each) stay in registers and are
assumed error-free. ``hwnorm/data/models/mlp_mnist_fp16.npz`` holds the result of
:func:`train` with the defaults, so the experiment does not depend on BLAS rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from hwnorm import data
from hwnorm.io import write_atomic

LAYERS = (784, 128, 64, 10)
VENDORED = "mlp_mnist_fp16.npz"


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, eval_x, eval_y); x as float32 pixel/255, shape (n, 784)."""
    images, labels = data.mnist_test()
    x = images.reshape(len(images), -1).astype(np.float32) / 255
    y = labels.astype(np.int64)
    held = np.arange(len(x)) % 5 == 0
    return x[~held], y[~held], x[held], y[held]


@dataclass(frozen=True)
class FP16MLP:
    tensors: tuple  # (W1, b1, W2, b2, W3, b3) as float16 in [−1, 1]
    scales: tuple   # one float32 per tensor

    names = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias")

    @property
    def n_weights(self) -> int:
        return sum(t.size for t in self.tensors)

    def flat(self) -> np.ndarray:
        """Every tensor, in order, as one FP16 stream (the buffer's content)."""
        return np.concatenate([t.ravel() for t in self.tensors])

    def with_flat(self, flat: np.ndarray) -> "FP16MLP":
        out, at = [], 0
        for t in self.tensors:
            out.append(flat[at:at + t.size].reshape(t.shape))
            at += t.size
        return FP16MLP(tuple(out), self.scales)

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = x
        for i in range(0, len(self.tensors), 2):
            w = self.tensors[i].astype(np.float32) * self.scales[i]
            b = self.tensors[i + 1].astype(np.float32) * self.scales[i + 1]
            h = h @ w + b
            if i + 2 < len(self.tensors):
                h = np.maximum(h, 0)
        return h

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        with np.errstate(over="ignore", invalid="ignore"):  # corrupted weights may overflow float32
            return float(np.mean(np.argmax(self.logits(x), axis=1) == y))

    def save(self, path) -> None:
        from io import BytesIO


        buf = BytesIO()
        np.savez_compressed(buf, scales=np.asarray(self.scales, np.float32),
                            **{f"t{i}": t for i, t in enumerate(self.tensors)})
        write_atomic(path, buf.getvalue())

    @classmethod
    def load(cls, path=None) -> "FP16MLP":
        path = path or Path(str(resources.files("hwnorm.data").joinpath("models", VENDORED)))
        with np.load(path) as z:
            n = len(z["scales"])
            return cls(tuple(z[f"t{i}"] for i in range(n)), tuple(float(s) for s in z["scales"]))


def normalize(tensors) -> FP16MLP:
    """Scale each tensor into [−1, 1] by its largest magnitude and round to FP16."""
    out, scales = [], []
    for t in tensors:
        s = float(np.max(np.abs(t))) or 1.0
        q = (t / s).astype(np.float16)
        out.append(np.clip(q, -1, 1).astype(np.float16))
        scales.append(np.float32(s))
    return FP16MLP(tuple(out), tuple(float(s) for s in scales))


def train(epochs: int = 12, batch: int = 64, lr: float = 1e-3, seed: int = 0, limit: int | None = None,
          progress=None) -> FP16MLP:
    """Train the MLP on the training part of the split (Adam, He init) and return it in FP16."""
    x, y, _, _ = split()
    if limit:
        x, y = x[:limit], y[:limit]
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(LAYERS[:-1], LAYERS[1:]):
        params += [rng.normal(0, np.sqrt(2 / fan_in), (fan_in, fan_out)).astype(np.float32),
                   np.zeros(fan_out, np.float32)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            grads = _gradients(params, x[idx], y[idx])
            step += 1
            for p, g, mi, vi in zip(params, grads, m, v):
                mi *= 0.9
                mi += 0.1 * g
                vi *= 0.999
                vi += 0.001 * g * g
                p -= lr * (mi / (1 - 0.9 ** step)) / (np.sqrt(vi / (1 - 0.999 ** step)) + 1e-8)
        if progress:
            progress(epoch + 1, epochs)
    return normalize(params)


def _gradients(params, x, y):
    acts = [x]
    for i in range(0, len(params), 2):
        z = acts[-1] @ params[i] + params[i + 1]
        acts.append(np.maximum(z, 0) if i + 2 < len(params) else z)
    z = acts[-1] - acts[-1].max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    delta = p / len(y)
    grads = [None] * len(params)
    for i in range(len(params) - 2, -1, -2):
        grads[i] = acts[i // 2].T @ delta
        grads[i + 1] = delta.sum(axis=0)
        if i:
            delta = (delta @ params[i].T) * (acts[i // 2] > 0)
    return grads
