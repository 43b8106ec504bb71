"""``conv``: convolutions of the golden model (a ``window`` layer, then an ``mvu`` over the windows)
against numpy's im2col (``sliding_window_view``) and a BLAS matmul, same data, same run; and the
whole CNV 1W1A network's golden run as images/s and as a fraction of this machine's ``bgemm`` rate
(measured now)."""

from __future__ import annotations

import numpy as np

from hwnorm.bench.registry import benchmark, best_rate, figure
from hwnorm import bnn, data
from hwnorm.datatypes import BIPOLAR, IntType
from hwnorm.layers.mvu import MVULayer
from hwnorm.layers.spatial import Geometry
from hwnorm.layers.window import SlidingWindow
from hwnorm.models import load_network

BATCH, SIZE, CHANNELS, FILTERS, KERNEL = 32, 24, 64, 64, 3


def numpy_conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Valid conv of maps ``x`` (B, H, W, C) by filters ``w`` (F, k, k, C): im2col by a strided
    view (ky, kx, c order) and one float32 BLAS product — exact here (|sums| < 2^24)."""
    k = w.shape[1]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))  # (B, OH, OW, C, k, k)
    cols = np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3)).reshape(-1, k * k * x.shape[3])
    return cols.astype(np.float32) @ w.reshape(len(w), -1).T.astype(np.float32)


def _conv_layers(element, weights: np.ndarray, weight_bits: int):
    g = Geometry(SIZE, SIZE, (KERNEL, KERNEL))
    lo, hi = (0, 1) if element is BIPOLAR else element.range
    window = SlidingWindow((SIZE, SIZE, CHANNELS), g, element, lo, hi)
    k = KERNEL * KERNEL * CHANNELS
    flat = weights.reshape(FILTERS, k)
    packed = bnn.pack_bits((flat > 0).astype(np.uint8)) if weight_bits == 1 else flat
    in_bits = 1 if element is BIPOLAR else element.bits
    mvu = MVULayer(packed, k, None, in_bits, getattr(element, "signed", False), "conv", weight_bits, True,
               spatial=(g.out_height, g.out_width))
    return window, mvu


@benchmark("conv")
def bench_conv(repeat: int = 5):
    rng = np.random.default_rng(0)
    macs = BATCH * (SIZE - KERNEL + 1) ** 2 * KERNEL * KERNEL * CHANNELS * FILTERS
    for label, element, weight_bits in (("binary", BIPOLAR, 1), ("int2", IntType(2, True), 2),
                                        ("int4xint2", IntType(4, True), 2)):
        if element is BIPOLAR:
            codes = rng.integers(0, 2, (BATCH * SIZE * SIZE, CHANNELS))
            values = codes * 2 - 1
            w = rng.choice([-1, 1], (FILTERS, KERNEL, KERNEL, CHANNELS))
        else:
            codes = rng.integers(*element.range, (BATCH * SIZE * SIZE, CHANNELS), endpoint=True)
            values = codes
            w = rng.integers(*IntType(weight_bits, True).range, (FILTERS, KERNEL, KERNEL, CHANNELS), endpoint=True)
        window, mvu = _conv_layers(element, w, weight_bits)
        x = window.golden_input(codes)
        ours = lambda: mvu.run(window.run(x))  # noqa: E731
        maps = values.reshape(BATCH, SIZE, SIZE, CHANNELS)
        theirs = lambda: numpy_conv(maps, w)  # noqa: E731
        if not np.array_equal(ours(), theirs().astype(np.int64)):
            raise AssertionError(f"conv: golden model and numpy im2col disagree ({label})")
        yield figure(f"conv.{label}_{SIZE}x{SIZE}x{CHANNELS}_k{KERNEL}_f{FILTERS}_b{BATCH}",
                     best_rate(ours, macs, repeat), "MAC/s", "numpy im2col (sliding_window_view) + float32 matmul",
                     best_rate(theirs, macs, max(1, repeat // 2)))
    yield _cnv_figure(repeat)


def _cnv_figure(repeat: int) -> dict:
    """The vendored CNV 1W1A model's golden run on the 2,000 held-out MNIST images: its binary MACs
    per second against the bgemm kernel's rate on a large square product, both measured now."""
    net, _ = load_network("CNV_MNIST_1W1A")
    images, _ = data.mnist_test()
    x = images[data.mnist_ids("held-out")].reshape(-1, 784).astype(np.int64)
    macs = sum(layer.mac_count() for layer in net.layers)
    rate = best_rate(lambda: net.predict(x), len(x), repeat)
    rng = np.random.default_rng(1)
    m, k = 512, 4096
    a = rng.integers(0, 2**64, (m, bnn.words_for(k)), dtype=np.uint64)
    b = rng.integers(0, 2**64, (m, bnn.words_for(k)), dtype=np.uint64)
    bgemm = best_rate(lambda: bnn.binary_matmul(a, b, k), m * m * k, max(repeat, 20))
    return figure("conv.CNV_MNIST_1W1A_network_mac_rate", rate * macs, "MAC/s", "bgemm kernel, M=N=512 K=4096", bgemm,
                  images_per_s=round(rate), macs_per_image=macs)
