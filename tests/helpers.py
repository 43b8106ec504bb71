"""Helpers shared by several test modules (a test module never imports another one): random
BN specs and their stimulus, the toy binarized network, and components built from specs the way
the package builds them (layer → block → component)."""

from __future__ import annotations

import numpy as np

from hwnorm import bnn
from hwnorm.bnn import ThresholdSpec, fold_sign_threshold
from hwnorm.fixed import FixedFormat
from hwnorm.ir import MVTU, InputThreshold, Network, QuantBN
from hwnorm.qbn import BNSpec, fold_bn


def random_spec(rng, channels, rounding, overflow, per_channel_shift, in_signed=True, out_signed=True):
    in_fmt = FixedFormat.integer(int(rng.integers(3, 10)), signed=in_signed)
    out_fmt = FixedFormat.integer(int(rng.integers(2, 9)), signed=out_signed)
    shift = rng.integers(0, 9, channels) if per_channel_shift else int(rng.integers(0, 9))
    return BNSpec(channels, in_fmt, out_fmt, mult=rng.integers(-300, 300, channels),
                  bias=rng.integers(-5000, 5000, channels), shift=shift, rounding=rounding, overflow=overflow)


def vectors(spec: BNSpec, rng, n: int) -> np.ndarray:
    """``n`` inputs of a BN spec's range, the first three at its corners."""
    corners = np.array([spec.in_lo, spec.in_hi, 0 if spec.in_lo <= 0 <= spec.in_hi else spec.in_lo])
    x = rng.integers(spec.in_lo, spec.in_hi + 1, (n, spec.channels))
    x[:3] = corners[:, None]
    return x


def bn_block(spec: BNSpec, lanes: int):
    """The hardware block of a BN spec with ``lanes`` channels per beat."""
    return QuantBN(spec, name=spec.name).block({"pe": lanes})


def toy_network(rng, k_in=100, hidden=(70, 33), classes=5):
    """A small binarized MLP (input thresholds, binary MVTUs, a raw MVTU, a score BN) and the ±1
    weights / thresholds a plain numpy evaluation needs."""
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
