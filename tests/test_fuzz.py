"""Fuzzing (hypothesis): the flow-config and design-file loaders and the ONNX importer on malformed
input (node names and field types included) end in a valid result or a clear ValueError — never
another exception.

``HWNORM_FUZZ_EXAMPLES`` sets the examples per test (default 150, a third of it for multi-bit
models: CI-sized; the closing note reports a larger campaign run with the same tests)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwnorm import data
from hwnorm.config import FlowConfig, config_from_dict, load_config
from hwnorm.qonnx import RenamedNodes, import_qonnx

EXAMPLES = int(os.environ.get("HWNORM_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)
# A multi-bit import fits requantizers (~0.6 s for TFC_2W2A): a third of the examples keeps CI bounded.
FUZZ_MULTIBIT = settings(FUZZ, max_examples=max(1, EXAMPLES // 3))
MODEL = data.path("models/TFC_1W1A.onnx").read_bytes()
MULTIBIT = {"TFC_2W2A": data.path("models/TFC_2W2A.onnx").read_bytes(),  # FINN-era and current Brevitas exports
            "brevitas": (Path(__file__).parent / "models" / "mlp_w3a4_zero_point.onnx").read_bytes()}
IMPORT_OPTIONS = [{}, {"activations": "requant"}, {"input_mode": "quantized"}]
KEYS = ["model", "name", "output", "clock_mhz", "target", "synth", "fmax", "simulator", "vectors", "seed", "images",
        "energy_table", "rtl_dir", "reports_dir", "folding", "auto_folding", "stt", "throughput", "codec", "pe"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["ecp5", "ice40", "argmax", "none", "TFC_1W1A", "rearrange"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8),
                                                                        inner, max_size=4)), max_leaves=12)
configs = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10), values, max_size=6)


@FUZZ
@given(configs)
def test_config_loader_never_crashes(doc):
    try:
        c = config_from_dict(doc, "fuzz.toml")
    except ValueError as e:
        assert str(e).startswith("fuzz.toml")
    else:
        assert isinstance(c, FlowConfig)


def _toml(v) -> str:
    """A TOML value (or quoted key) for plain data; a JSON string is a valid TOML basic string."""
    import json
    import math
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, (int, float, str)):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v if x is not None) + "]"
    return "{" + ", ".join(f"{_toml(k)} = {_toml(x)}" for k, x in v.items() if x is not None) + "}"


DESIGN_FIELDS = ["name", "kind", "model", "layer", "output", "folding", "score_bits", "activations", "target", "pe",
                 "simd", "codec", "cells", "block_words"]
designs = st.lists(st.dictionaries(st.sampled_from(DESIGN_FIELDS), values, max_size=5).map(
    lambda d: {"name": "d", "kind": "stt_encoder", **d}), min_size=1, max_size=3)


@FUZZ
@given(designs)
def test_design_files_of_any_field_types_never_crash(tmp_path_factory, entries):
    """Every design kind's fields with values of any type: a design or one clear error, checked
    and built as `hwnorm generate` does (except rendering Verilog)."""
    from hwnorm.generate import load_designs, model_of
    path = tmp_path_factory.mktemp("designs") / "d.toml"
    path.write_text("".join("[[design]]\n" + "".join(f"{_toml(k)} = {_toml(v)}\n" for k, v in e.items() if v is not None)
                            for e in entries))
    try:
        for design in load_designs(path):
            if design.kind in ("stt_encoder", "stt_decoder"):  # cheap to build; networks are covered above
                model_of(design)
    except ValueError as e:
        assert str(e)


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_config_files_of_any_bytes_never_crash(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_bytes(raw)
    try:
        load_config(path)
    except ValueError as e:
        assert str(path) in str(e)


def _import(tmp_path_factory, raw: bytes, **options):
    path = tmp_path_factory.mktemp("onnx") / "m.onnx"
    path.write_bytes(raw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RenamedNodes)
            net = import_qonnx(path, **options)
    except ValueError as e:
        assert str(e), "an error must say something"
        return None
    names = [layer.name for layer in net.layers]  # whatever the node names were
    assert len(set(names)) == len(names) and all(n.isidentifier() and n.isascii() for n in names), names
    return net


@FUZZ
@given(st.data())
def test_onnx_importer_survives_corrupted_bytes(tmp_path_factory, data_):
    raw = bytearray(MODEL)
    how = data_.draw(st.sampled_from(["truncate", "flip", "splice"]))
    if how == "truncate":
        raw = raw[:data_.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        for _ in range(data_.draw(st.integers(1, 20))):
            k = data_.draw(st.integers(0, len(raw) - 1))
            raw[k] ^= 1 << data_.draw(st.integers(0, 7))
    else:
        k = data_.draw(st.integers(0, len(raw)))
        raw[k:k] = data_.draw(st.binary(min_size=1, max_size=64))
    _import(tmp_path_factory, bytes(raw))


def _mutate(model, data_):
    """1–3 random defects: op types, attributes, initializer values and shapes, edges, dropped nodes,
    the input shape, and the parameters of a quantizer (bit width, flags, rounding, non-constant)."""
    g = model.graph
    for _ in range(data_.draw(st.integers(1, 3))):
        what = data_.draw(st.sampled_from(["op", "attr", "init_value", "init_shape", "edge", "drop", "input", "quant",
                                           "name", "domain"]))
        if what == "op":
            node = g.node[data_.draw(st.integers(0, len(g.node) - 1))]
            node.op_type = data_.draw(st.sampled_from(["Conv", "Relu", "MatMul", "Add", "Mul", "BipolarQuant",
                                                       "MultiThreshold", "Foo"]))
        elif what == "attr":
            nodes = [n for n in g.node if n.attribute]
            if nodes:
                attr = data_.draw(st.sampled_from(nodes)).attribute[0]
                if attr.type == onnx.AttributeProto.INT:
                    attr.i = data_.draw(st.integers(-5, 5))
                elif attr.type == onnx.AttributeProto.FLOAT:
                    attr.f = data_.draw(st.floats(allow_nan=True))
                elif attr.type == onnx.AttributeProto.STRING:
                    attr.s = data_.draw(st.binary(max_size=8))
        elif what in ("init_value", "init_shape") and g.initializer:
            init = g.initializer[data_.draw(st.integers(0, len(g.initializer) - 1))]
            arr = onnx.numpy_helper.to_array(init).copy()
            if what == "init_value" and arr.size:
                flat = arr.reshape(-1)
                choices = ([0.0, -1.0, 1e30, float("nan"), float("inf"), 0.5] if flat.dtype.kind == "f"
                           else [0, 1, -1, 127, 1 << 20])
                flat[data_.draw(st.integers(0, flat.size - 1))] = data_.draw(st.sampled_from(choices))
                init.CopyFrom(onnx.numpy_helper.from_array(flat.reshape(arr.shape), init.name))
            elif arr.size:
                init.CopyFrom(onnx.numpy_helper.from_array(arr.reshape(-1)[:max(1, arr.size // 2)], init.name))
        elif what == "edge":
            node = g.node[data_.draw(st.integers(0, len(g.node) - 1))]
            if node.input:
                node.input[0] = data_.draw(st.sampled_from([n.output[0] for n in g.node if n.output] + ["ghost"]))
        elif what == "drop" and len(g.node) > 1:
            del g.node[data_.draw(st.integers(0, len(g.node) - 1))]
        elif what == "input":
            dims = g.input[0].type.tensor_type.shape.dim
            if dims:
                dims[-1].dim_value = data_.draw(st.integers(0, 2000))
        elif what == "quant":
            _mutate_quantizer(g, data_)
        elif what == "name":  # exporters leave names empty or repeat them; names from files are untrusted
            name = data_.draw(st.sampled_from(["", "scores", "MatMul_16", "x\n provider: {url: evil}", "a|b\u202e",
                                               "9lives", "module", "é" * 80]) | st.text(max_size=12))
            for node in data_.draw(st.lists(st.sampled_from(list(g.node)), min_size=1, max_size=4)):
                node.name = name
        elif what == "domain":
            node = g.node[data_.draw(st.integers(0, len(g.node) - 1))]
            node.domain = data_.draw(st.sampled_from(["", "ai.onnx", "com.example", "qonnx.custom_op.general"]))


def _mutate_quantizer(g, data_):
    quants = [n for n in g.node if n.op_type in ("Quant", "BipolarQuant")]
    if not quants:
        return
    node = data_.draw(st.sampled_from(quants))
    how = data_.draw(st.sampled_from(["bits", "flag", "rounding", "non_constant", "arity"]))
    if how == "bits" and len(node.input) > 3:
        value = data_.draw(st.sampled_from([0.0, -1.0, 1.0, 2.5, 33.0, 64.0, float("nan"), 1e9]))
        inits = {i.name: i for i in g.initializer}
        if node.input[3] in inits:
            inits[node.input[3]].CopyFrom(onnx.numpy_helper.from_array(np.float32(value), node.input[3]))
    elif how == "flag":
        node.attribute.append(onnx.helper.make_attribute(data_.draw(st.sampled_from(["signed", "narrow"])),
                                                         data_.draw(st.integers(-2, 3))))
    elif how == "rounding":
        node.attribute.append(onnx.helper.make_attribute(
            "rounding_mode", data_.draw(st.sampled_from(["FLOOR", "UP", "HALF_DOWN", "STOCHASTIC", "", "round"]))))
    elif how == "non_constant" and len(node.input) > 1:
        node.input[data_.draw(st.integers(1, len(node.input) - 1))] = g.input[0].name
    elif how == "arity":
        del node.input[data_.draw(st.integers(0, len(node.input) - 1)):]


@FUZZ
@given(st.data())
def test_onnx_importer_survives_mutated_graphs(tmp_path_factory, data_):
    """Valid protobuf, wrong content."""
    model = onnx.load_from_string(MODEL)
    _mutate(model, data_)
    _import(tmp_path_factory, model.SerializeToString())


@FUZZ_MULTIBIT
@given(st.data())
def test_onnx_importer_survives_mutated_multibit_graphs(tmp_path_factory, data_):
    """The same defects in multi-bit models, imported with every realization and input mode."""
    model = onnx.load_from_string(MULTIBIT[data_.draw(st.sampled_from(sorted(MULTIBIT)))])
    _mutate(model, data_)
    _import(tmp_path_factory, model.SerializeToString(), **data_.draw(st.sampled_from(IMPORT_OPTIONS)))


def test_the_unmutated_models_still_import(tmp_path_factory):
    assert _import(tmp_path_factory, MODEL) is not None
    for raw in MULTIBIT.values():
        for options in IMPORT_OPTIONS:
            assert _import(tmp_path_factory, raw, **options) is not None


# ------------------------------------------------------------------ quantizer forms against the executor
QUANT_POSITIONS = ("input", "weights", "hidden activation", "last activation")


@FUZZ_MULTIBIT
@given(st.sampled_from(QUANT_POSITIONS), st.integers(1, 8), st.booleans(), st.booleans(), st.integers(-3, 3),
       st.integers(0, 2**32 - 1))
def test_any_zero_point_bit_width_and_sign_imports_exactly_or_is_refused_by_name(tmp_path_factory, position, bits,
                                                                                  signed, narrow, zero, seed):
    """One quantizer of a random MLP (input, weights, or an activation) takes any bit width, sign,
    narrowness and zero point: the import agrees with the executor on every prediction, or names
    the node it refuses."""
    from hwnorm.check import agreement
    from hwnorm.qonnx import ImportError_
    from hwnorm.qonnx_ref import load_reference, reference_logits
    from tests.helpers import qnn_model

    rng = np.random.default_rng(seed)
    options = {"input": dict(input_quant=(bits, signed, zero, 1 / 16)),
               "weights": dict(weight_bits=bits, weight_zero=zero, weight_narrow=narrow),
               "hidden activation": dict(layers=(10, 8, 5), bits=(bits, 3), act_signed=(signed, False), zero=(zero, 1),
                                         narrow=(narrow, False), relu=(bool(seed & 1), True)),
               "last activation": dict(bits=(3, bits), act_signed=(True, signed), zero=(0, zero), narrow=(False, narrow),
                                       relu=(False, bool(seed & 1)), layers=(12, 6, 4))}[position]
    path = qnn_model(tmp_path_factory.mktemp("q") / "q.onnx", rng, **options)
    try:
        net = import_qonnx(path, input_bits=8, input_signed=True, input_scale=1)
    except ImportError_ as e:
        assert str(e).startswith("q.onnx: "), e  # one clear line naming the file (and the node, where one is to blame)
        return
    x = rng.integers(-128, 128, (200, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = np.argmax(reference_logits(load_reference(path), x.astype(np.float32), batch=200), axis=1)
    assert agreement(net.scores(x), ref)["disagreements"] == 0
