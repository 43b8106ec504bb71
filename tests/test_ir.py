"""The network IR: golden execution equals a plain numpy evaluation; JSON round trip; errors."""

import json

import numpy as np
import pytest

from hwnorm import bnn
from hwnorm.bnn import ThresholdSpec, fold_sign_threshold
from hwnorm.fixed import FixedFormat
from hwnorm.ir import MVTU, InputThreshold, Network, QuantBN
from hwnorm.qbn import fold_bn


def build(rng, k_in=100, hidden=(70, 33), classes=5):
    layers = [InputThreshold(ThresholdSpec(rng.integers(0, 257, (k_in, 1)), 0, 255), name="in")]
    pm1_weights, thresholds, k = [], [], k_in
    for i, n in enumerate(hidden):
        w = rng.choice([-1, 1], (n, k))
        fold = fold_sign_threshold(rng.normal(0, 1, n), rng.normal(0, 1, n), rng.normal(0, 3, n),
                                   rng.uniform(1, k, n), acc_lo=-k, acc_hi=k)
        w_eff = np.where(fold.flip[:, None], -w, w)
        layers.append(MVTU(bnn.pack_bipolar(w_eff), k, fold.spec, name=f"fc{i}"))
        pm1_weights.append(w_eff)
        thresholds.append(fold.spec.thresholds[:, 0])
        k = n
    w = rng.choice([-1, 1], (classes, k))
    layers.append(MVTU(bnn.pack_bipolar(w), k, None, name="fc_out"))
    fold = fold_bn(rng.uniform(0.5, 2, classes), rng.normal(0, 1, classes), 0.0, 1.0, 0.0,
                   in_fmt=FixedFormat.integer(16), in_scale=1.0, in_range=(-k, k),
                   out_fmt=FixedFormat.integer(12), out_scale=0.01, name="scores")
    layers.append(QuantBN(fold.spec, name="scores"))
    return Network(tuple(layers), "toy"), pm1_weights, thresholds, w, fold.spec


def reference(x, net, pm1_weights, thresholds, w_out, bn_spec):
    a = np.where(x >= net.layers[0].thresholds.thresholds[:, 0], 1, -1)
    for w, t in zip(pm1_weights, thresholds):
        a = np.where(a @ w.T >= t, 1, -1)
    return bn_spec.apply(a @ w_out.T)


def test_golden_network_equals_plain_numpy_evaluation():
    rng = np.random.default_rng(5)
    net, ws, ts, w_out, spec = build(rng)
    x = rng.integers(0, 256, (257, 100))
    assert np.array_equal(net.run(x), reference(x, net, ws, ts, w_out, spec))
    assert np.array_equal(net.predict(x), np.argmax(reference(x, net, ws, ts, w_out, spec), axis=1))


def test_json_round_trip_is_identical():
    net = build(np.random.default_rng(6))[0]
    again = Network.from_dict(json.loads(json.dumps(net.to_dict())))
    assert again.spec_hash == net.spec_hash
    x = np.random.default_rng(0).integers(0, 256, (20, 100))
    assert np.array_equal(again.run(x), net.run(x))


def test_integer_input_mvtu_with_multithreshold():
    rng = np.random.default_rng(8)
    k, n = 50, 9
    w = rng.choice([-1, 1], (n, k))
    lo, hi = -k * 128, k * 128
    fold = bnn.fold_multithreshold(rng.normal(0, 1, n), rng.normal(0, 1, n), 0, rng.uniform(100, 5000, n),
                                   acc_lo=lo, acc_hi=hi, out_bits=2, out_scale=0.5)
    layer = MVTU(bnn.pack_bipolar(np.where(fold.flip[:, None], -w, w)), k, fold.spec, in_bits=8, in_signed=True)
    x = rng.integers(-128, 128, (31, k))
    acc = x @ w.T
    assert np.array_equal(layer.run(x), fold.spec.apply(np.where(fold.flip, -acc, acc)))


def test_inconsistent_networks_are_rejected():
    rng = np.random.default_rng(9)
    net = build(rng)[0]
    with pytest.raises(ValueError, match="gives 100 features"):
        Network((net.layers[0], net.layers[2]))
    with pytest.raises(ValueError, match="expects bits, fc_out gives integers"):
        Network((net.layers[-2], MVTU(np.zeros((3, 1), np.uint64), 5)))
    with pytest.raises(ValueError, match="pad bits must be 0"):
        MVTU(np.full((2, 1), np.uint64(2**63)), 10)
    with pytest.raises(ValueError, match="unknown layer kind"):
        Network.from_dict({"format": "hwnorm-network/1", "layers": [{"kind": "conv"}]})
    with pytest.raises(ValueError, match="outside the declared 8-bit range"):
        net.run(np.full((1, 100), 300))
