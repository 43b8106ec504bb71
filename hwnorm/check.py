"""The golden model on the vendored MNIST test set, and its agreement with the QONNX reference
executor (``hwnorm mnist [--check-qonnx]``)."""

from __future__ import annotations

import time
import warnings

import numpy as np

__all__ = ["mnist_accuracy", "compare_with_executor"]


def mnist_accuracy(net, limit: int | None = None, label: str = "network") -> dict:
    """Top-1 and images/s of the golden model on the first ``limit`` MNIST test images (pixels as
    8-bit integers), with its predictions (key ``predictions``, not JSON)."""
    from hwnorm import data

    images, labels = data.mnist_test()
    n = len(images) if limit is None else max(0, min(limit, len(images)))
    if n == 0:
        raise ValueError("--limit must be at least 1")
    x, y = images[:n].reshape(n, -1), labels[:n].astype(np.int64)
    if net.in_features != x.shape[1]:
        raise ValueError(f"{label}: the network takes {net.in_features} inputs, MNIST images have {x.shape[1]}")
    net.predict(x[:1])  # compile the kernels before timing
    t0 = time.perf_counter()
    pred = net.predict(x)
    seconds = time.perf_counter() - t0
    return {"images": n, "top1": float(np.mean(pred == y)), "images_per_s": n / seconds, "predictions": pred}


def compare_with_executor(model_path, predictions: np.ndarray, progress=None) -> dict:
    """Run the QONNX reference executor on the same MNIST images (pixel/255 floats) and count the
    images where its prediction differs from ``predictions``."""
    from hwnorm import data
    from hwnorm.qonnx_ref import available, load_reference, reference_logits

    if not available():
        raise ValueError("--check-qonnx needs the QONNX executor: pip install 'hwnorm[reference]'")
    images, labels = data.mnist_test()
    n = len(predictions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_reference(str(model_path))
        shape = tuple(model.get_tensor_shape(model.graph.input[0].name)[1:])
        xf = (images[:n].astype(np.float32) / 255).reshape((n,) + shape)
        ref = np.argmax(reference_logits(model, xf, batch=1000, progress=progress), axis=1)
    y = labels[:n]
    differ = np.flatnonzero(ref != predictions)
    return {"top1": float(np.mean(ref == y)), "disagreements": int(differ.size),
            "first_disagreement": int(differ[0]) if differ.size else None}
