"""The golden model against QONNX's reference executor: on the vendored MNIST test set
(``hwnorm mnist [--check-qonnx]``) or on any inputs (``hwnorm check``)."""

from __future__ import annotations

import time
import warnings

import numpy as np

from hwnorm import data
from hwnorm.datatypes import BIPOLAR, IntType
from hwnorm.defaults import LIMITS
from hwnorm.inputs import float_range, quantize_inputs
from hwnorm.qonnx import interpret, NoInputQuantizer
from hwnorm.qonnx_ref import available, load_reference, reference_logits

__all__ = ["mnist_accuracy", "compare_with_executor", "check_model", "load_inputs", "agreement", "accuracy_line",
           "executor_line", "check_line"]


def agreement(scores: np.ndarray, reference: np.ndarray) -> dict:
    """Compare the golden model's integer scores (N, classes) with the executor's predicted
    classes. The scores are exact, so classes that tie on them tie in real arithmetic too; the
    executor's float32 sums break such a tie by rounding noise. A prediction disagrees when the
    executor's class is not among the best-scoring ones; a tie it broke otherwise than the first
    index (ArgMax's rule, and the hardware's) is counted apart, as ``ties``."""
    scores = np.asarray(scores)
    best = scores == scores.max(axis=1, keepdims=True)
    chosen = best[np.arange(len(scores)), reference]
    differ = np.flatnonzero(~chosen)
    ties = int(np.sum(chosen & (reference != np.argmax(scores, axis=1))))
    return {"disagreements": int(differ.size), "first_disagreement": int(differ[0]) if differ.size else None,
            "ties": ties}


def mnist_accuracy(net, limit: int | None = None, label: str = "network") -> dict:
    """Top-1 and images/s of the golden model on the first ``limit`` MNIST test images (pixels as
    8-bit integers), with its predictions (key ``predictions``, not JSON)."""
    images, labels = data.mnist_test()
    n = len(images) if limit is None else max(0, min(limit, len(images)))
    if n == 0:
        raise ValueError("--limit must be at least 1")
    x, y = images[:n].reshape(n, -1), labels[:n].astype(np.int64)
    if not data.takes_mnist(net):
        lo, hi = net.in_range
        raise ValueError(f"{label}: the network takes {net.in_features} inputs in [{lo}, {hi}], MNIST images are "
                         f"{x.shape[1]} pixels in [0, 255]")
    net.predict(x[:1])  # compile the kernels before timing
    t0 = time.perf_counter()
    scores = net.scores(x)
    seconds = time.perf_counter() - t0
    pred = np.argmax(scores, axis=1)
    return {"images": n, "top1": float(np.mean(pred == y)), "images_per_s": n / seconds, "predictions": pred,
            "scores": scores}


def compare_with_executor(model_path, scores: np.ndarray, progress=None) -> dict:
    """Run the QONNX reference executor on the same MNIST images (pixel/255 floats) and count the
    images where its prediction is not one of the golden model's best ``scores`` (:func:`agreement`)."""
    if not available():
        raise ValueError("--check-qonnx needs the QONNX executor: pip install 'hwnorm[reference]'")
    images, labels = data.mnist_test()
    n = len(scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_reference(str(model_path))
        shape = tuple(model.get_tensor_shape(model.graph.input[0].name)[1:])
        xf = _executor_layout(images[:n].astype(np.float32).reshape(n, -1) / 255, shape)
        ref = np.argmax(reference_logits(model, xf, batch=1000, progress=progress), axis=1)
    return {"top1": float(np.mean(ref == labels[:n])), **agreement(scores, ref)}


def load_inputs(path, features: int) -> np.ndarray:
    """Float inputs (N, features) of a ``.npy`` file: the model's input values, as the executor takes them."""
    from pathlib import Path

    p = Path(path)
    _check_npy_header(p)
    try:
        x = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{p}: not a readable .npy array ({e})") from None
    if x.dtype.kind not in "iuf" or x.ndim < 1 or not x.size:
        raise ValueError(f"{p}: expected a non-empty numeric array (N, …), got {x.dtype} {x.shape}")
    x = x.astype(np.float32).reshape(len(x), -1)
    if x.shape[1] != features:
        raise ValueError(f"{p}: each input has {x.shape[1]} values; the model takes {features}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{p}: inputs must be finite numbers")
    return x


# The largest input array ``--inputs`` reads: its header is checked first, so a few bytes that
# declare 10¹² rows are refused instead of allocated.
MAX_INPUT_BYTES = 1 << 31


def _check_npy_header(p) -> None:
    """A ``.npy`` file's header, read before its data: a ``.npz`` archive or any other file, and an
    array larger than :data:`MAX_INPUT_BYTES` or with more rows than ``LIMITS['random']``, are
    refused with the reason."""
    try:
        with open(p, "rb") as f:
            magic = f.read(6)
            if magic[:4] == b"PK\x03\x04":
                raise ValueError(f"{p}: a .npz archive; --inputs takes one .npy array (numpy.save)")
            if magic != b"\x93NUMPY":
                raise ValueError(f"{p}: not a .npy array (numpy.save writes one)")
            f.seek(0)
            version = np.lib.format.read_magic(f)
            fmt = np.lib.format
            shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)
    except OSError as e:
        raise ValueError(f"{p}: not a readable .npy array ({e.strerror or e})") from None
    except (ValueError, EOFError) as e:
        raise ValueError(f"{p}: not a readable .npy array ({e})" if not str(e).startswith(str(p)) else str(e)) from None
    rows, size = (shape[0] if shape else 1), int(np.prod(shape, dtype=object)) * dtype.itemsize
    if rows > LIMITS["random"][1] or size > MAX_INPUT_BYTES:
        raise ValueError(f"{p}: declares an array of shape {shape} ({size:,} bytes); at most "
                         f"{LIMITS['random'][1]:,} inputs and {MAX_INPUT_BYTES:,} bytes are read")


def check_model(model_path, inputs=None, random: int | None = None, seed: int = 0, progress=None) -> dict:
    """Predictions of the golden model (imported with quantized inputs: the model's own input
    quantizer, emulated in float32) and of the executor on the same float inputs: ``inputs`` (N,
    features), or ``random`` seeded inputs spanning the input quantizer's range, or the MNIST test
    images (pixel/255) for a 784-input model.

    A model with no input quantizer reads its input as it is: hwnorm takes it as integer codes
    standing for code·scale (8-bit pixels and /255, as :func:`hwnorm.qonnx.interpret` does), so the
    float inputs must lie on that grid (random inputs are drawn on it)."""
    if not available():
        raise ValueError("checking against QONNX needs its executor: pip install 'hwnorm[reference]'")
    try:
        net = interpret(model_path, input_mode="quantized").network
        encode = _QuantizerInputs(net.meta["input_quant"])
    except NoInputQuantizer:
        net = interpret(model_path).network
        encode = _GridInputs(net.meta["input"], str(model_path))
    features = net.in_features
    if inputs is not None:
        x, source = inputs, "inputs given"
    elif random is not None:
        x, source = encode.random(np.random.default_rng(seed), random, features), f"random inputs (seed {seed})"
    else:
        images, _ = data.mnist_test()
        if images[0].size != features:
            raise ValueError(f"{model_path}: the model takes {features} inputs, not MNIST images: give --inputs or --random")
        x, source = (images.astype(np.float32) / 255).reshape(len(images), -1), "MNIST test images (pixel/255)"
    x, codes = encode(x)
    golden = net.scores(codes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_reference(str(model_path))
        shape = tuple(model.get_tensor_shape(model.graph.input[0].name)[1:])
        # the executor keeps every tensor of a batch: as many images as the golden model runs at once,
        # halved, keep its memory as bounded as the golden model's (a 224×224 MobileNet took 8.9 GB at 100)
        batch = min(1000, max(1, net.batch_size() // 2))
        ref = np.argmax(reference_logits(model, _executor_layout(x, shape), batch=batch, progress=progress), axis=1)
    return {"model": str(model_path), "inputs": source, "count": int(len(x)), **agreement(golden, ref),
            "spec_hash": net.spec_hash}


def _executor_layout(x: np.ndarray, shape: tuple) -> np.ndarray:
    """Rows of inputs as hwnorm streams them (a feature map channels last) → the model's input
    shape: (C, H, W) for an image input, (C, L) for a 1-D map, as ONNX convolutions take them."""
    if len(shape) == 3:
        c, h, w = shape
        return x.reshape(len(x), h, w, c).transpose(0, 3, 1, 2)
    if len(shape) == 2:
        c, length = shape
        return x.reshape(len(x), length, c).transpose(0, 2, 1)
    return x.reshape((len(x),) + shape)


class _QuantizerInputs:
    """Float inputs through the model's own input quantizer, emulated like the executor runs it."""

    def __init__(self, input_quant: dict):
        self.input_quant = input_quant

    def random(self, rng, n: int, features: int) -> np.ndarray:
        lo, hi = float_range(self.input_quant, features)
        return rng.uniform(lo, hi, (n, features)).astype(np.float32)

    def __call__(self, x):
        return x, quantize_inputs(self.input_quant, x)


class _GridInputs:
    """Float inputs of a model without an input quantizer: each must be code·scale for an integer
    code of the declared input type (float32, as the executor gets it)."""

    def __init__(self, declared: dict, model: str):
        from fractions import Fraction

        self.bipolar = bool(declared.get("bipolar"))  # bits: 1 for +scale, 0 for −scale
        self.type = BIPOLAR if self.bipolar else IntType(declared["bits"], declared["signed"])
        self.scale, self.model = Fraction(declared["scale"]), model
        self.range = (0, 1) if self.bipolar else self.type.range

    def floats(self, codes: np.ndarray) -> np.ndarray:
        return ((BIPOLAR.values(codes) if self.bipolar else codes) * float(self.scale)).astype(np.float32)

    def random(self, rng, n: int, features: int) -> np.ndarray:
        lo, hi = self.range
        return self.floats(rng.integers(lo, hi + 1, (n, features)))

    def __call__(self, x):
        codes = np.rint(np.asarray(x, np.float64) / float(self.scale)).astype(np.int64)
        if self.bipolar:
            codes = (codes + 1) // 2
        lo, hi = self.range
        off = np.flatnonzero((codes < lo) | (codes > hi) | (self.floats(codes) != np.asarray(x, np.float32)))
        if off.size:
            raise ValueError(f"{self.model}: the model has no input quantizer, so hwnorm reads its input as "
                             f"{self.type} codes × {self.scale}; input value {float(np.ravel(x)[off[0]])!r} "
                             f"(row {off[0] // x.shape[1]}) is not on that grid")
        return self.floats(codes), codes


# ------------------------------------------------------------------ what the commands print
def accuracy_line(label: str, acc: dict) -> str:
    return (f"{label}: top-1 {100 * acc['top1']:.2f}% on {acc['images']} MNIST test images "
            f"({acc['images_per_s']:,.0f} images/s)")


def executor_line(ref: dict, images: int) -> str:
    return (f"QONNX executor: top-1 {100 * ref['top1']:.2f}%; {ref['disagreements']} of {images} "
            f"predictions differ from hwnorm"
            + (f" (first: image {ref['first_disagreement']})" if ref["disagreements"] else "") + _ties(ref))


def check_line(r: dict) -> str:
    return (f"{r['model']}: {r['count']} {r['inputs']}: {r['disagreements']} of {r['count']} predictions of the golden "
            f"model differ from the QONNX executor" + (f" (first: input {r['first_disagreement']})"
                                                       if r["disagreements"] else "") + _ties(r))


def _ties(r: dict) -> str:
    if not r["ties"]:
        return ""
    return (f"; {r['ties']} exact tie(s) of the best scores the executor's float32 rounding broke towards "
            "another of the tied classes (counted as agreeing)")
