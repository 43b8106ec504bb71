"""The network IR: golden execution equals a plain numpy evaluation; JSON round trip; errors."""

import json

import numpy as np
import pytest

from hwnorm import bnn
from hwnorm.datatypes import IntType
from hwnorm.fixed import FixedFormat
from hwnorm.ir import MVULayer, Network, QuantBN
from hwnorm.bnspec import fold_bn
from tests.helpers import toy_network


def reference(x, net, pm1_weights, thresholds, w_out, bn_spec):
    a = np.where(x >= net.layers[0].thresholds.thresholds[:, 0], 1, -1)
    for w, t in zip(pm1_weights, thresholds):
        a = np.where(a @ w.T >= t, 1, -1)
    return bn_spec.apply(a @ w_out.T)


def test_golden_network_equals_plain_numpy_evaluation():
    rng = np.random.default_rng(5)
    net, ws, ts, w_out, spec = toy_network(rng)
    x = rng.integers(0, 256, (257, 100))
    assert np.array_equal(net.run(x), reference(x, net, ws, ts, w_out, spec))
    assert np.array_equal(net.predict(x), np.argmax(reference(x, net, ws, ts, w_out, spec), axis=1))


def test_json_round_trip_is_identical():
    net = toy_network(np.random.default_rng(6))[0]
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
    layer = MVULayer(bnn.pack_bipolar(np.where(fold.flip[:, None], -w, w)), k, fold.spec, in_bits=8, in_signed=True)
    x = rng.integers(-128, 128, (31, k))
    acc = x @ w.T
    assert np.array_equal(layer.run(x), fold.spec.apply(np.where(fold.flip, -acc, acc)))


def test_inconsistent_networks_are_rejected():
    rng = np.random.default_rng(9)
    net = toy_network(rng)[0]
    with pytest.raises(ValueError, match=r"in gives shape \(100,\) \(100 values\), fc1 takes \(70,\)"):
        Network((net.layers[0], net.layers[2]))
    with pytest.raises(ValueError, match="expects bits, fc_out gives integers"):
        Network((net.layers[-2], MVULayer(np.zeros((3, 1), np.uint64), 5)))
    with pytest.raises(ValueError, match="pad bits must be 0"):
        MVULayer(np.full((2, 1), np.uint64(2**63)), 10)
    with pytest.raises(ValueError, match="unknown layer kind"):
        Network.from_dict({"format": "hwnorm-network/1", "layers": [{"kind": "conv"}]})
    with pytest.raises(ValueError, match=r"outside the declared uint8 range \[0, 255\]"):
        net.run(np.full((1, 100), 300))


def test_layers_declare_their_tensors_and_json_carries_them():
    net = toy_network(np.random.default_rng(10), k_in=12, hidden=(8,), classes=3)[0]
    first, hidden, raw, scores = net.layers
    assert (first.in_shape, first.in_type.name, first.out_type.name) == ((12,), "uint8", "bipolar")
    assert (hidden.in_type.name, hidden.out_shape, hidden.vectors) == ("bipolar", (8,), 1)
    assert raw.out_type == IntType.from_range(-8, 8) and raw.out_range == (-8, 8)
    assert scores.in_range == (-8, 8) and scores.out_type == IntType(12, signed=True)
    doc = net.to_dict()
    assert doc["format"] == "hwnorm-network/2"
    assert [d["kind"] for d in doc["layers"]] == ["thresholding", "mvu", "mvu", "qbn"]
    assert doc["layers"][1]["in_shape"] == [12] and doc["layers"][1]["out_type"] == "bipolar"
    bad = json.loads(json.dumps(doc))
    bad["layers"][2]["out_shape"] = [9]
    with pytest.raises(ValueError, match=r"layer 'fc_out': out_shape is declared as \[9\], its spec gives \[3\]"):
        Network.from_dict(bad)


def test_files_of_the_first_ir_format_still_load():
    net = toy_network(np.random.default_rng(11), k_in=12, hidden=(8,), classes=3)[0]
    old = {"format": "hwnorm-network/1", "name": net.name, "meta": {}, "layers": []}
    for layer, was in zip(net.to_dict()["layers"], ["input_threshold", "mvtu", "mvtu", "qbn"]):
        old["layers"].append({k: v for k, v in layer.items() if k not in ("in_shape", "out_shape", "in_type", "out_type")}
                             | {"kind": was})
    assert Network.from_dict(old).spec_hash == net.spec_hash


def test_a_producer_whose_values_do_not_fit_the_consumer_is_refused():
    rng = np.random.default_rng(12)
    net = toy_network(rng, k_in=12, hidden=(8,), classes=3)[0]
    _, hidden, raw, scores = net.layers
    narrow = fold_bn(np.ones(3), np.zeros(3), 0.0, 1.0, 0.0, in_fmt=FixedFormat.integer(16), in_scale=1.0,
                     in_range=(-4, 4), out_fmt=FixedFormat.integer(8), out_scale=0.1, name="narrow")
    with pytest.raises(ValueError, match=r"fc_out gives \(3,\) int5 \[-8, 8\], outside what narrow takes: "
                                         r"\(3,\) int16 \[-4, 4\]"):
        Network((hidden, raw, QuantBN(narrow.spec, name="narrow")))
    assert Network((hidden, raw, scores)).out_features == 3


def test_repeated_layer_names_are_refused_by_name():
    d = toy_network(np.random.default_rng(10))[0].to_dict()
    d["layers"][2]["name"] = d["layers"][1]["name"]
    with pytest.raises(ValueError, match=rf"layer 2 repeats the name {d['layers'][1]['name']!r}"):
        Network.from_dict(d)


@pytest.mark.parametrize("edit,message", [
    (lambda d: d.pop("layers"), "missing field 'layers'"),
    (lambda d: d.update(layers="abc"), "field 'layers' must be a list of layer objects, got str"),
    (lambda d: d.update(meta=5), "field 'meta' must be an object, got int"),
    (lambda d: d["layers"][1].update(weights=5), r"layers\[1\]: layer 'fc0' \(mvu\): field 'weights' must be a list"),
    (lambda d: d["layers"][1].update(weights=[1, 2]), r"layers\[1\]: .*hex-encoded uint64 words \(strings\)"),
    (lambda d: d["layers"][1].update(in_features=70.0), "field 'in_features' must be a whole number, got float"),
    (lambda d: d["layers"][1].update(in_signed=1), "field 'in_signed' must be true or false, got int"),
    (lambda d: d["layers"][1].update(thresholds=7), "field 'thresholds' must be an object or null"),
    (lambda d: d["layers"][1]["thresholds"].update(acc_range=3), r"layers\[1\]: layer 'fc0' \(mvu\): malformed"),
    (lambda d: d["layers"][-1].pop("spec"), r"\(qbn\): missing field 'spec'"),
    (lambda d: d["layers"][1].update(name="x\n provider: evil"), r"name 'x\\n provider: evil' is not a legal Verilog"),
    (lambda d: d["layers"][1].update(name="fc|\u202e"), "is not a legal Verilog identifier"),
])
def test_malformed_ir_json_names_the_layer_and_field(edit, message):
    d = json.loads(json.dumps(toy_network(np.random.default_rng(11))[0].to_dict()))
    edit(d)
    with pytest.raises(ValueError, match=message):
        Network.from_dict(d)


# ------------------------------------------------------------------ strict IR files: no coercion, no unknown keys
def _tfc_2w2a_dict():
    from hwnorm import data
    from hwnorm.qonnx import import_qonnx
    return import_qonnx(data.path("models/TFC_2W2A.onnx")).to_dict()


STRICT_DEFECTS = {  # what: (mutation of the first MVU's JSON, message)
    "a fractional weight": (lambda m: m["weights"][0].__setitem__(0, 0.5), r"weights: must be \(lists of\) whole"),
    "a weight that is a string": (lambda m: m["weights"][0].__setitem__(0, "1"), r"weights: must be \(lists of\)"),
    "a weight that is true": (lambda m: m["weights"][0].__setitem__(0, True), r"weights: must be \(lists of\)"),
    "a weight outside its type": (lambda m: m["weights"][0].__setitem__(0, 7), r"weights: values must lie in int2"),
    "a fractional threshold": (lambda m: m["thresholds"]["thresholds"][0].__setitem__(0, -459.5),
                               r"thresholds: must be \(lists of\) whole numbers, got -459.5"),
    "a fractional input range": (lambda m: m.__setitem__("in_range", [0, 2.5]), r"in_range: must be a whole number"),
    "int64 weights": (lambda m: m.__setitem__("weight_type", "int64"), r"64-bit weights; an MVU takes at most 32"),
    "int65 weights": (lambda m: m.__setitem__("weight_type", "int65"), r"65-bit weights; an MVU takes at most 32"),
    "an unknown key": (lambda m: m.__setitem__("wieghts", []), r"unknown field 'wieghts'; a mvu layer has: kind, "),
    "an unknown nested key": (lambda m: m["thresholds"].__setitem__("extra", 1), r"unknown field 'thresholds.extra'"),
}


@pytest.mark.parametrize("defect", list(STRICT_DEFECTS))
def test_ir_values_are_never_coerced_and_unknown_keys_are_refused(defect):
    d = _tfc_2w2a_dict()
    mutate, message = STRICT_DEFECTS[defect]
    mutate(d["layers"][1])
    with pytest.raises(ValueError, match=r"layers\[1\]: layer 'MatMul_\d+' \(mvu\): .*" + message):
        Network.from_dict(json.loads(json.dumps(d)))


def test_an_unknown_network_key_is_refused():
    d = _tfc_2w2a_dict()
    d["layer"] = []
    with pytest.raises(ValueError, match=r"unknown field 'layer'; a network has: format, name, meta, layers"):
        Network.from_dict(d)


@pytest.mark.parametrize("suffix", ["json", "toml"])
def test_deeply_nested_data_files_are_one_clear_error(tmp_path, suffix):
    from hwnorm.io import load_json, load_toml
    path = tmp_path / f"deep.{suffix}"
    path.write_text('{"a": ' + "[" * 1000 + "]" * 1000 + "}" if suffix == "json" else
                    "model = " + "[" * 1000 + "]" * 1000 + "\n")
    with pytest.raises(ValueError, match=r"deep\.\w+: tables / arrays nested more than 32 deep"):
        (load_json if suffix == "json" else load_toml)(path)
