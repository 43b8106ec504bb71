"""``net``: whole golden networks on MNIST, layer by layer, against the bgemm kernel's rate.

Where a network's time goes: for each layer the seconds of its golden model (packing between
layers included — it is part of what the network costs), its multiply-accumulates per second
and the fraction of the binary GEMM kernel's rate that is (measured in the same run), or, for a
layer without MACs (max-pool, argmax), its images/s against the whole network's. The issue's
yardstick: a whole binary network at 0.3 of the bgemm rate, a multi-bit one at 0.1.
"""

from __future__ import annotations

import time

import numpy as np

from hwnorm import data
from hwnorm.bench.bnn import bgemm_rate
from hwnorm.bench.registry import benchmark, figure
from hwnorm.models import load_network

# (model, MNIST test images): the CNVs take ~100 µs per image
NETWORKS = (("TFC_1W1A", 10000), ("TFC_2W2A", 10000), ("CNV_MNIST_1W1A", 2000), ("CNV_MNIST_2W2A", 2000))


def layer_seconds(net, x, repeat: int) -> tuple[list[float], list]:
    """Per layer, the fewest seconds over ``repeat`` runs of the network over ``x`` (in the
    batches :meth:`~hwnorm.ir.Network.batch_size` gives), and the predictions of the last run."""
    batch = net.batch_size()
    best = [float("inf")] * len(net.layers)
    for _ in range(repeat + 1):  # the first run warms the kernels up (and is not counted)
        spent = [0.0] * len(net.layers)
        outs = []
        for i in range(0, len(x), batch):
            t0 = time.perf_counter()
            for k, (_, act) in enumerate(net.trace(x[i:i + batch])):
                t1 = time.perf_counter()
                spent[k] += t1 - t0
                t0 = t1
            outs.append(act)
        best = [min(b, s) for b, s in zip(best, spent)]
    return best, outs


@benchmark("net")
def bench_net(repeat: int = 5):
    rate = bgemm_rate(repeat)
    images_all = data.mnist_test()[0]
    for name, n in NETWORKS:
        net = load_network(name)[0]
        x = images_all[:n].reshape(n, -1).astype(np.int64)
        seconds, _ = layer_seconds(net, x, max(1, repeat // 2))
        total = sum(seconds)
        macs = sum(layer.mac_count() for layer in net.layers) * n
        predicted = net.predict(x)
        if len(predicted) != n:
            raise AssertionError(f"net: {name} predicted {len(predicted)} of {n} images")
        yield figure(f"net.{name}", macs / total, "MAC/s", "bgemm kernel, binary MAC/s", rate,
                     images_per_s=n / total, seconds=total, images=n)
        for layer, s in zip(net.layers, seconds):
            share = {"kind": layer.kind, "seconds": s, "share": s / total}
            if layer.mac_count():
                yield figure(f"net.{name}.{layer.name}", layer.mac_count() * n / s, "MAC/s",
                             "bgemm kernel, binary MAC/s", rate, **share)
            else:
                yield figure(f"net.{name}.{layer.name}", n / s, "images/s", "whole network, images/s",
                             n / total, **share)
