"""Binary kernels and threshold folding against plain int64 / float64 numpy references."""

import numpy as np
import pytest

from hwnorm import bnn
from hwnorm.datatypes import IntType
from hwnorm.bnn import (ThresholdSpec, binary_conv2d, binary_dense_threshold, binary_matmul, flip_rows,
                        fold_multithreshold, fold_sign_threshold, int_binary_matmul, pack_bipolar, pack_bits,
                        pack_conv_weights, unpack_bits, words_for)

RNG = np.random.default_rng(20261122)


def pm1(shape, rng=RNG):
    return rng.choice(np.array([-1, 1], np.int64), size=shape)


# ---------------------------------------------------------------- packing and the pad rule
@pytest.mark.parametrize("k", list(range(1, 130)) + [4095, 4096, 4097])
def test_pack_roundtrip_and_zero_pads_at_every_k_mod_64(k):
    bits = RNG.integers(0, 2, (3, k))
    p = pack_bits(bits)
    assert p.dtype == np.uint64 and p.shape == (3, words_for(k))
    assert np.array_equal(unpack_bits(p, k), bits)
    pad = words_for(k) * 64 - k
    if pad:  # pad bits are 0
        assert not np.any(p[:, -1] >> np.uint64(64 - pad))


def test_bit_layout_is_little_endian_within_a_word():
    bits = np.zeros(130, np.uint8)
    bits[[0, 5, 64, 129]] = 1
    p = pack_bits(bits)
    assert p.tolist() == [1 + 32, 1, 2]


def test_pack_rejects_non_binary_values():
    with pytest.raises(ValueError, match=r"\{0, 1\}"):
        pack_bits(np.array([0, 2]))


def test_sign_of_zero_is_plus_one():
    assert unpack_bits(pack_bipolar(np.array([0.0, -0.0, -1e-9, 1.0])), 4).tolist() == [1, 1, 0, 1]


@pytest.mark.parametrize("k", [1, 2, 63, 64, 65, 100, 127, 128, 129, 191, 192, 193, 784, 1000, 4096])
def test_binary_matmul_equals_int64_reference_at_every_word_boundary(k):
    for m, n in ((1, 1), (2, 3), (3, 2), (5, 7), (8, 8)):
        a, w = pm1((m, k)), pm1((n, k))
        got = binary_matmul(pack_bipolar(a), pack_bipolar(w), k)
        assert got.dtype == np.int32
        assert np.array_equal(got, a @ w.T)


def test_binary_matmul_random_shapes():
    for _ in range(40):
        m, n, k = int(RNG.integers(1, 40)), int(RNG.integers(1, 40)), int(RNG.integers(1, 4097))
        a, w = pm1((m, k)), pm1((n, k))
        assert np.array_equal(binary_matmul(pack_bipolar(a), pack_bipolar(w), k), a @ w.T)


@pytest.mark.parametrize("m, n", [(4, 32), (5, 33), (9, 70), (3, 96), (12, 31), (8, 64)])
def test_binary_matmul_register_tiles_and_their_edges(m, n):
    # Full 4-row × 32-column tiles go through the IR micro-kernel, the rest through the row loop;
    # every output position must come out of exactly one of them with the same value.
    from hwnorm.bnn import TILE_COLS, TILE_ROWS
    assert (TILE_ROWS, TILE_COLS) == (4, 32)
    for k in (1, 64, 65, 1000):
        a, w = pm1((m, k)), pm1((n, k))
        assert np.array_equal(binary_matmul(pack_bipolar(a), pack_bipolar(w), k), a @ w.T)


def test_extreme_dot_products_fill_the_range():
    k = 4096
    ones = np.ones((1, k), np.int64)
    assert binary_matmul(pack_bipolar(ones), pack_bipolar(ones), k)[0, 0] == k
    assert binary_matmul(pack_bipolar(ones), pack_bipolar(-ones), k)[0, 0] == -k


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="shape"):
        binary_matmul(np.zeros((2, 3), np.uint64), np.zeros((2, 1), np.uint64), 64)
    with pytest.raises(ValueError, match="uint64"):
        binary_matmul(np.zeros((2, 1), np.int64), np.zeros((2, 1), np.uint64), 64)


def test_flip_rows_negates_and_keeps_pads_zero():
    k = 70
    w = pm1((4, k))
    flip = np.array([True, False, True, False])
    got = flip_rows(pack_bipolar(w), k, flip)
    assert np.array_equal(got, pack_bipolar(np.where(flip[:, None], -w, w)))


@pytest.mark.parametrize("k", [1, 64, 65, 784])
def test_fused_dense_threshold_equals_matmul_then_compare(k):
    for n in (1, 10, 64, 65, 130):
        a, w = pm1((9, k)), pm1((n, k))
        thr = RNG.integers(-k, k + 2, n)
        got = unpack_bits(binary_dense_threshold(pack_bipolar(a), pack_bipolar(w), k, thr), n)
        assert np.array_equal(got, (a @ w.T >= thr).astype(np.uint8))


@pytest.mark.parametrize("bits,signed", [(1, False), (2, True), (4, False), (8, False), (8, True), (12, True)])
def test_integer_input_bitplane_matmul(bits, signed):
    for k in (1, 63, 64, 65, 784):
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        x = RNG.integers(lo, hi, (6, k), endpoint=True)
        x[0] = lo
        x[1] = hi  # the extremes
        w = pm1((5, k))
        assert np.array_equal(int_binary_matmul(x, pack_bipolar(w), k, bits, signed), x @ w.T)


def test_integer_input_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="8-bit"):
        int_binary_matmul(np.array([[256]]), pack_bipolar(np.ones((1, 1))), 1, 8, False)


def conv_reference(x, w, stride, padding, pad_value):
    """Direct NHWC convolution on ±1 int64 values."""
    b, h, wd, c = x.shape
    co, k = w.shape[0], w.shape[1]
    xp = np.full((b, h + 2 * padding, wd + 2 * padding, c), pad_value, np.int64)
    xp[:, padding:padding + h, padding:padding + wd] = x
    oh, ow = (h + 2 * padding - k) // stride + 1, (wd + 2 * padding - k) // stride + 1
    out = np.zeros((b, oh, ow, co), np.int64)
    for oy in range(oh):
        for ox in range(ow):
            patch = xp[:, oy * stride:oy * stride + k, ox * stride:ox * stride + k, :].reshape(b, -1)
            out[:, oy, ox] = patch @ w.reshape(co, -1).T
    return out


@pytest.mark.parametrize("c_in,kernel,stride,padding,pad_value", [
    (1, 3, 1, 0, -1), (3, 3, 1, 1, -1), (3, 3, 2, 1, 1), (64, 3, 1, 1, 1), (70, 2, 2, 0, -1), (5, 5, 3, 2, 1),
    (130, 1, 1, 0, -1),
])
def test_binary_conv2d_equals_direct_convolution(c_in, kernel, stride, padding, pad_value):
    x = pm1((2, 7, 6, c_in))
    w = pm1((9, kernel, kernel, c_in))
    got = binary_conv2d(pack_bipolar(x), pack_conv_weights(w), c_in, kernel, stride, padding, pad_value)
    assert np.array_equal(got, conv_reference(x, w, stride, padding, pad_value))


def test_conv_rejects_zero_padding_value():
    with pytest.raises(ValueError, match="pad_value"):
        bnn.im2col_packed(np.zeros((1, 3, 3, 1), np.uint64), 4, 3, 1, 1, pad_value=0)


# ---------------------------------------------------------------- folding: BN + sign
def bn_sign_reference(acc, g, b, mu, var, eps):
    """Float64 BN followed by sign(0) = +1, per channel (last axis)."""
    return (g * (acc - mu) / np.sqrt(var + eps) + b >= 0).astype(np.int64)


def folded_output(fold, acc):
    """The folded datapath: flipped channels see −acc (their weights were negated)."""
    return fold.spec.apply(np.where(fold.flip, -acc, acc))


def random_layer(rng, channels, k):
    g = rng.normal(0, 1, channels) * rng.choice([1e-3, 1, 30], channels)
    g[rng.random(channels) < 0.1] = 0.0  # γ = 0
    b = rng.normal(0, 2, channels)
    mu = rng.normal(0, k / 4, channels)
    var = rng.uniform(0.01, k, channels)
    return g, b, mu, var, 1e-5


def tie_layer(rng, channels, k):
    """Channels whose BN is exactly 0 (in float64 too) at an even accumulator value."""
    g = rng.choice([-4.0, -1.0, -0.5, 0.5, 2.0], channels)
    sqrt_s = rng.choice([1.0, 2.0, 4.0, 0.25], channels)
    mu = rng.integers(-k // 2, k // 2 + 1, channels).astype(np.float64) + rng.choice([0, 0.5, 0.25], channels)
    tau = 2 * rng.integers(-k // 2, k // 2 + 1, channels).astype(np.float64) + (k % 2)
    b = -g * (tau - mu) / sqrt_s  # BN(tau) = 0 exactly
    return g, b, mu, sqrt_s ** 2, 0.0


def test_sign_fold_equals_float_bn_on_1000_random_layers_with_negative_zero_gamma_and_ties():
    rng = np.random.default_rng(7)
    mismatches, layers, ties, zero_g, neg_g = 0, 0, 0, 0, 0
    for i in range(1000):
        k = int(rng.choice([1, 7, 64, 65, 200, 784]))
        make = tie_layer if i % 4 == 0 else random_layer
        g, b, mu, var, eps = make(rng, 16, k)
        fold = fold_sign_threshold(g, b, mu, var, eps, acc_lo=-k, acc_hi=k)
        acc = np.arange(-k, k + 1, 2)[:, None] * np.ones((1, 16), np.int64)  # reachable: K − 2·popcount
        ref = bn_sign_reference(acc, g, b, mu, var, eps)
        mismatches += int((folded_output(fold, acc) != ref).sum())
        layers += 1
        ties += int((g * (acc - mu) / np.sqrt(var + eps) + b == 0).sum())
        zero_g += int((g == 0).sum())
        neg_g += int(fold.flip.sum())
    assert layers == 1000 and mismatches == 0
    assert ties > 100 and zero_g > 100 and neg_g > 1000  # the hard cases were really exercised


def test_negative_gamma_flips_weights_and_negates_threshold():
    k = 64
    fold = fold_sign_threshold([-1.0], [0.0], [10.0], [1.0], 0.0, acc_lo=-k, acc_hi=k)
    # BN ≥ 0 ⇔ acc ≤ 10 ⇔ −acc ≥ −10
    assert fold.flip.tolist() == [True] and fold.spec.thresholds.tolist() == [[-10]]


def test_zero_gamma_saturates_thresholds():
    fold = fold_sign_threshold([0.0, 0.0, 0.0], [1.0, -1.0, 0.0], 5.0, 1.0, acc_lo=-8, acc_hi=8)
    assert fold.spec.thresholds.ravel().tolist() == [-8, 9, -8]  # always, never, always (sign(0) = +1)


def test_fold_rejects_bad_parameters_naming_the_channel():
    with pytest.raises(ValueError, match="channel 1"):
        fold_sign_threshold([1.0, np.nan], 0.0, 0.0, 1.0, acc_lo=-4, acc_hi=4)
    with pytest.raises(ValueError, match="channel 0: var \\+ eps = 0"):
        fold_sign_threshold([1.0], 0.0, 0.0, 0.0, 0.0, acc_lo=-4, acc_hi=4)


def test_integer_input_range_fold_is_exact_over_the_whole_range():
    rng = np.random.default_rng(3)
    for _ in range(50):
        g, b, mu, var, eps = random_layer(rng, 8, 300)
        lo, hi = -37, 1200  # not symmetric: an integer-input first layer
        fold = fold_sign_threshold(g, b, mu, var, eps, acc_lo=lo, acc_hi=hi)
        acc = np.arange(lo, hi + 1)[:, None] * np.ones((1, 8), np.int64)
        assert np.array_equal(folded_output(fold, acc), bn_sign_reference(acc, g, b, mu, var, eps))


# ---------------------------------------------------------------- folding: BN + n-bit activation
def quant_reference(acc, g, b, mu, var, eps, scale, zero, bits, signed):
    y = g * (acc - mu) / np.sqrt(var + eps) + b
    q = np.round(y / scale + zero)  # numpy rounds half to even, like ONNX / QONNX Quant
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return np.clip(q, lo, hi).astype(np.int64)


@pytest.mark.parametrize("bits,signed", [(1, False), (2, False), (2, True), (3, True), (4, False)])
def test_multithreshold_fold_equals_bn_then_quantizer(bits, signed):
    rng = np.random.default_rng(bits * 10 + signed)
    for i in range(200):
        k = int(rng.choice([16, 64, 255]))
        g, b, mu, var, eps = (tie_layer if i % 3 == 0 else random_layer)(rng, 8, k)
        # dyadic scales: float64 y/scale is then exact at a tie, so the reference rounds true ties
        scale = float(rng.choice([0.25, 0.5, 1.0, 0.375, 1.25]))
        zero = int(rng.integers(-1, 2))
        fold = fold_multithreshold(g, b, mu, var, eps, acc_lo=-k, acc_hi=k, out_bits=bits, out_scale=scale,
                                   out_zero_point=zero, signed=signed)
        assert fold.spec.n_thresholds == (1 << bits) - 1
        acc = np.arange(-k, k + 1)[:, None] * np.ones((1, 8), np.int64)
        ref = quant_reference(acc, g, b, mu, var, eps, scale, zero, bits, signed)
        assert np.array_equal(folded_output(fold, acc), ref)


def test_threshold_spec_validation_and_rules():
    spec = ThresholdSpec(np.array([[1, 3], [0, 0]]), -4, 4)
    assert spec.as_rule("gt").tolist() == [[0, 2], [-1, -1]]
    assert spec.apply(np.array([[2, 0]])).tolist() == [[1, 2]]
    assert spec.threshold_type == IntType(4, signed=True) and spec.out_type == IntType(2)  # [-4, 5], [0, 2]
    assert ThresholdSpec(np.array([[0, 7]]), 0, 6, out_base=-1).threshold_type == IntType(3)  # unsigned [0, 7]
    assert ThresholdSpec(np.array([[0, 7]]), 0, 6, out_base=-1).out_type == IntType(2, signed=True)  # [-1, 1]
    assert ThresholdSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="non-decreasing"):
        ThresholdSpec(np.array([[3, 1]]), -4, 4)
    with pytest.raises(ValueError, match=r"\[-4, 5\]"):
        ThresholdSpec(np.array([[9]]), -4, 4)
    with pytest.raises(ValueError, match="outside the declared range"):
        spec.apply(np.array([[5, 0]]))
    with pytest.raises(ValueError, match="'ge', 'gt'"):
        spec.as_rule("lt")


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64])
@pytest.mark.parametrize("size", [10, 1 << 17])  # numpy's min / max, and the one-pass kernel
def test_outside_agrees_with_min_and_max(dtype, size):
    from hwnorm.intmm import outside
    rng = np.random.default_rng(size)
    x = rng.integers(0, 100, size).astype(dtype)
    assert not outside(x, 0, 99) and outside(x, 1, 99) == (x.min() < 1) and outside(x, 0, 98) == (x.max() > 98)
    x[size // 2] = 120
    assert outside(x, 0, 99) and not outside(x, 0, 127)
    assert not outside(x[:0], 0, 0)


def test_a_threshold_pass_checks_the_range_of_a_large_batch_in_the_same_pass():
    spec = ThresholdSpec(np.array([[0, 2, 4]] * 3), acc_lo=-8, acc_hi=7)
    acc = np.zeros((1 << 16, 3), np.int16)
    assert (spec.apply(acc) == 1).all()
    acc[-1, 2] = 8
    with pytest.raises(ValueError, match="accumulator outside the declared range"):
        spec.apply(acc)
    with pytest.raises(ValueError, match="accumulator outside the declared range"):
        spec.apply(np.full((4, 3), 2 ** 63, np.uint64))


@pytest.mark.parametrize("channels, n", [(1, 255), (3, 7), (100, 3), (784, 1)])  # both loop orders
def test_threshold_counts_equal_the_definition(channels, n):
    rng = np.random.default_rng(channels + n)
    spec = ThresholdSpec(np.sort(rng.integers(-128, 128, (channels, n)), axis=1), acc_lo=-128, acc_hi=127, out_base=-2)
    acc = rng.integers(-128, 128, (300, channels))
    want = -2 + (acc[:, :, None] >= spec.thresholds[None, :, :]).sum(axis=2)
    assert (spec.apply(acc) == want).all() and (spec.apply(acc.astype(np.int8)) == want).all()
