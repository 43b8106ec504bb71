"""Multi-bit QNNs as current Brevitas and QKeras (via qonnx's converter) export them (tests/models/, made
by make_brevitas_models.py and make_qkeras_model.py):
import, prediction-for-prediction agreement with the QONNX executor on held-out MNIST images and on
random inputs, both exact activation realizations, ``hwnorm check``; and the integer kernel
``igemm`` against numpy's exact int64 product."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hwnorm import cli, data
from hwnorm.check import check_model
from hwnorm.intmm import igemm, operand_dtype
from hwnorm.qonnx import interpret

MODELS = Path(__file__).resolve().parent / "models"
TEST_MODELS = json.loads((MODELS / "models.json").read_text())
N_IMAGES = 500   # of the 2,000 held-out images (index a multiple of 5): bounded for CI
N_RANDOM = 300   # seeded random inputs spanning (and clipping at) the input quantizer's range


@pytest.fixture(scope="module")
def held_out():
    images, labels = data.mnist_test()
    x = (images.astype(np.float32) / 255).reshape(len(images), -1)
    return x[::5], labels[::5].astype(np.int64)


@pytest.mark.parametrize("name", list(TEST_MODELS))
def test_vendored_model_agrees_with_the_executor(name, held_out):
    path = MODELS / f"{name}.onnx"
    x, _ = held_out
    on_images = check_model(path, inputs=x[:N_IMAGES])
    assert (on_images["count"], on_images["disagreements"]) == (N_IMAGES, 0), on_images
    on_random = check_model(path, random=N_RANDOM, seed=7)
    assert (on_random["count"], on_random["disagreements"]) == (N_RANDOM, 0), on_random


@pytest.mark.parametrize("name", list(TEST_MODELS))
def test_vendored_model_keeps_its_accuracy_and_both_realizations_agree(name, held_out):
    """Integer pixels (the input quantizer becomes a layer): top-1 on all 2,000 held-out images
    as trained, and thresholds / requantizers giving the same codes after every activation."""
    path = MODELS / f"{name}.onnx"
    x, y = held_out
    pixels = np.rint(x * 255).astype(np.int64)
    thresholds = interpret(path)
    requant = interpret(path, activations="requant")
    sites = [s.layer for s in thresholds.activation_sites if s.requant_possible]
    assert sites, "every model here has requantizable activations"
    assert [lay.kind for lay in requant.network.layers].count("qbn") >= len(sites)
    top1 = float(np.mean(thresholds.network.predict(pixels) == y))
    assert top1 == pytest.approx(TEST_MODELS[name]["held_out_top1"], abs=0.01)
    np.testing.assert_array_equal(requant.network.run(pixels), thresholds.network.run(pixels))


def test_the_input_quantizer_as_a_requantizer_is_a_qbn_layer(held_out):
    path = MODELS / "mlp_w3a4_zero_point.onnx"
    thresholds = interpret(path)
    first = thresholds.activation_sites[0]
    assert first.layer.endswith("_input") and first.requant_possible
    requant = interpret(path, activations={first.layer: "requant"})
    assert thresholds.network.layers[0].kind == "thresholding"
    assert requant.network.layers[0].kind == "qbn" and requant.network.layers[0].name == first.layer
    pixels = np.arange(256).repeat(784).reshape(256, 784)  # every pixel value on every input
    np.testing.assert_array_equal(requant.network.run(pixels, upto=1), thresholds.network.run(pixels, upto=1))


def test_hwnorm_check_command(capsys, tmp_path):
    x = np.random.default_rng(3).uniform(-0.2, 1.2, (40, 28, 28)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "check.json"
    code = cli.main(["check", str(MODELS / "mlp_w8a8_signed.onnx"), "--inputs", str(tmp_path / "x.npy"),
                     "-o", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "0 of 40 predictions" in printed
    assert json.loads(out.read_text())["disagreements"] == 0


@pytest.mark.parametrize("argv, message", [
    (["--inputs", "{tmp}/missing.npy"], "not a readable .npy array"),
    (["--inputs", "{tmp}/short.npy"], "each input has 10 values; the model takes 784"),
    (["--random", "0"], "--random: the value must be between 1 and"),
    (["--random", "3", "--inputs", "{tmp}/short.npy"], "give --inputs or --random, not both"),
])
def test_hwnorm_check_bad_input_is_one_clear_line(capsys, tmp_path, argv, message):
    np.save(tmp_path / "short.npy", np.zeros((2, 10), np.float32))
    try:
        code = cli.main(["check", str(MODELS / "mlp_w8a8_signed.onnx")] + [a.format(tmp=tmp_path) for a in argv])
    except SystemExit as e:  # argparse: usage and the error line
        code = e.code
    err = capsys.readouterr().err
    assert code != 0 and message in err and "Traceback" not in err


# ------------------------------------------------------------------ igemm
@pytest.mark.parametrize("x_bits, x_signed, w_bits, w_signed, k", [
    (2, True, 2, True, 1), (4, False, 3, True, 37), (8, True, 8, True, 300), (1, False, 8, True, 64),
    (8, False, 8, False, 1000), (12, True, 10, True, 50), (16, True, 16, True, 3000),  # int64 accumulators
])
def test_igemm_is_exact_at_the_extremes(x_bits, x_signed, w_bits, w_signed, k):
    rng = np.random.default_rng(x_bits * 100 + w_bits + k)

    def values(bits, signed, shape):
        lo, hi = (-(1 << bits - 1), (1 << bits - 1) - 1) if signed else (0, (1 << bits) - 1)
        v = rng.integers(lo, hi, shape, endpoint=True)
        v[0] = lo if signed else hi  # the largest products, of both signs
        v[-1] = hi
        return v, (lo, hi)

    x, xr = values(x_bits, x_signed, (9, k))
    w, wr = values(w_bits, w_signed, (7, k))
    got = igemm(x, w, xr, wr)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, x.astype(object).dot(w.T.astype(object)).astype(np.int64))


def test_igemm_refuses_values_outside_their_declared_range_and_odd_shapes():
    with pytest.raises(ValueError, match="activations outside their declared range"):
        igemm(np.array([[4]]), np.array([[1]]), (0, 3), (-1, 1))
    with pytest.raises(ValueError, match="integer"):
        igemm(np.ones((2, 3)), np.ones((2, 3), np.int64))
    assert igemm(np.zeros((0, 4), np.int64), np.ones((3, 4), np.int64)).shape == (0, 3)
    assert operand_dtype(-128, 127) == np.int8 and operand_dtype(0, 255) == np.int16


@pytest.mark.parametrize("k, n, thresholds, x_bits, w_bits", [
    (9, 16, 1, 8, 1), (27, 64, 1, 8, 2), (9, 70, 3, 8, 2), (1, 5, 7, 4, 4), (40, 130, 1, 12, 8),
])
def test_the_fused_kernel_equals_products_then_thresholds(k, n, thresholds, x_bits, w_bits):
    """igemm_threshold: the products, every threshold compare and the packing of one pass, equal
    to igemm then the threshold counts (and pack_bits) — ties on the thresholds included."""
    from hwnorm.bnn import pack_bits
    from hwnorm.intmm import igemm_threshold
    rng = np.random.default_rng(k * 1000 + n + thresholds)
    xr = (-(1 << x_bits - 1), (1 << x_bits - 1) - 1)
    wr = (-1, 1) if w_bits == 1 else (-(1 << w_bits - 1), (1 << w_bits - 1) - 1)
    x = rng.integers(xr[0], xr[1], (300, k), endpoint=True)
    w = rng.choice([-1, 1], (n, k)) if w_bits == 1 else rng.integers(wr[0], wr[1], (n, k), endpoint=True)
    acc = igemm(x, w, xr, wr)
    thr = np.sort(rng.choice(acc.reshape(-1), (n, thresholds)), axis=1)  # values the accumulators take: ties
    counts = 3 + (acc[:, :, None] >= thr[None]).sum(axis=2)
    np.testing.assert_array_equal(igemm_threshold(x, w, thr, 3, xr, wr), counts)
    if thresholds == 1:
        np.testing.assert_array_equal(igemm_threshold(x, w, thr, 0, xr, wr, bits=True), pack_bits(counts - 3))
    with pytest.raises(ValueError, match=r"layer_x: input outside its declared range"):
        igemm_threshold(x, w, thr, 0, (0, 1), wr, what="layer_x")


def test_a_model_without_an_input_quantizer_takes_inputs_on_its_integer_grid():
    """The QKeras model reads its input as it is: hwnorm takes 8-bit codes standing for code/255,
    and refuses float inputs off that grid (the executor would see values hwnorm cannot)."""
    path = MODELS / "qkeras_mlp_w4a3.onnx"
    first = interpret(path).network.layers[0]
    assert first.kind == "mvu" and first.in_range == (0, 255)  # no thresholding layer in front
    x = np.full((2, 784), 3 / 255, np.float32)
    assert check_model(path, inputs=x)["disagreements"] == 0
    x[1, 5] = 3.5 / 255
    with pytest.raises(ValueError, match=r"no input quantizer.*uint8 codes × 1/255; input value .* \(row 1\)"):
        check_model(path, inputs=x)
    x[1, 5] = 256 / 255
    with pytest.raises(ValueError, match="not on that grid"):
        check_model(path, inputs=x)


@pytest.mark.parametrize("name", ["CNV_CIFAR_1W1A", "CNV_CIFAR_2W2A"])
def test_the_vendored_cifar_cnvs_agree_with_the_executor(name):
    """FINN's CIFAR-10 CNV topology (3×32×32 inputs, untrained, gzip-compressed): random images."""
    from hwnorm.models import model_path
    on_random = check_model(model_path(name), random=20, seed=3)
    assert (on_random["count"], on_random["disagreements"]) == (20, 0), on_random
