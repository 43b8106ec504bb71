"""``bgemm`` (binary GEMM vs numpy) and ``tfc`` (TFC_1W1A on MNIST vs the QONNX executor)."""

from __future__ import annotations

import time
import warnings

import numpy as np

from hwnorm.bench.registry import benchmark, best_rate, figure
from hwnorm import data
from hwnorm.bnn import binary_matmul, words_for
from hwnorm.qonnx import import_qonnx
from hwnorm.qonnx_ref import available, load_reference, reference_logits

M = N = 512
K = 4096


def numpy_bgemm_rows(a, b, k):
    """One row of a against all of b per numpy call (the temporaries stay in cache)."""
    out = np.empty((a.shape[0], b.shape[0]), np.int32)
    for i in range(a.shape[0]):
        out[i] = k - 2 * np.bitwise_count(a[i] ^ b).sum(axis=1, dtype=np.int32)
    return out


def numpy_bgemm_blocks(a, b, k, rows=8):
    """Broadcast blocks of 8 rows (fewer Python iterations, larger temporaries)."""
    out = np.empty((a.shape[0], b.shape[0]), np.int32)
    for i in range(0, a.shape[0], rows):
        out[i:i + rows] = k - 2 * np.bitwise_count(a[i:i + rows, None, :] ^ b[None]).sum(-1, dtype=np.int32)
    return out


def _bgemm_operands():
    rng = np.random.default_rng(0)
    return (rng.integers(0, 2**64, (M, words_for(K)), dtype=np.uint64),
            rng.integers(0, 2**64, (N, words_for(K)), dtype=np.uint64))


def bgemm_rate(repeat: int = 5) -> float:
    """Binary MAC/s of the bgemm kernel (M = N = 512, K = 4096), best of at least 50 calls: the
    rate other benchmarks (whole networks) are held against, measured in their own run."""
    a, b = _bgemm_operands()
    return best_rate(lambda: binary_matmul(a, b, K), M * N * K, max(repeat, 50))  # ~0.5 ms per call


@benchmark("bgemm")
def bench_bgemm(repeat: int = 5):
    a, b = _bgemm_operands()
    got = binary_matmul(a, b, K)
    for baseline in (numpy_bgemm_rows, numpy_bgemm_blocks):
        if not np.array_equal(got, baseline(a, b, K)):
            raise AssertionError(f"bgemm: kernel and {baseline.__name__} disagree")
    macs = M * N * K
    kernel = bgemm_rate(repeat)
    # The baseline is the faster of two sensible numpy formulations, measured now.
    numpy_rate = max(best_rate(lambda: fn(a, b, K), macs, max(1, repeat // 2))
                     for fn in (numpy_bgemm_rows, numpy_bgemm_blocks))
    yield figure(f"bgemm.M{M}_N{N}_K{K}", kernel, "binary MAC/s", "numpy XOR + bitwise_count", numpy_rate)


@benchmark("tfc")
def bench_tfc(repeat: int = 5):
    if not available():
        raise ValueError("the tfc benchmark needs the QONNX executor: pip install 'hwnorm[reference]'")
    net = import_qonnx(data.path("models/TFC_1W1A.onnx"))
    images, _ = data.mnist_test()
    x = images.reshape(len(images), -1)
    golden = net.predict(x)
    golden_rate = best_rate(lambda: net.predict(x), len(x), repeat)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_reference(data.path("models/TFC_1W1A.onnx"))
        xf = (images.astype(np.float32) / 255).reshape(-1, 1, 28, 28)
        subset = 40  # ~12 ms per image: time a subset, as the executor is used (one image per call)
        reference_logits(model, xf[:2], batch=1)  # warm-up
        t0 = time.perf_counter()
        one = reference_logits(model, xf[:subset], batch=1)
        per_image_rate = subset / (time.perf_counter() - t0)
        batched_n = 2000
        reference_logits(model, xf[:1000], batch=1000)  # warm-up (shape inference of the batched copy)
        t0 = time.perf_counter()
        batched = reference_logits(model, xf[:batched_n], batch=1000)
        batched_rate = batched_n / (time.perf_counter() - t0)
    if not (np.array_equal(np.argmax(one, 1), golden[:subset])
            and np.array_equal(np.argmax(batched, 1), golden[:batched_n])):
        raise AssertionError("tfc: golden model and QONNX executor disagree on the timed images")
    yield figure("tfc.mnist_vs_qonnx_per_image", golden_rate, "images/s", "QONNX execute_onnx, 1 image/call",
                 per_image_rate)
    yield figure("tfc.mnist_vs_qonnx_batched", golden_rate, "images/s", "QONNX execute_onnx, 1000 images/call",
                 batched_rate)
