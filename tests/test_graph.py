"""Networks as graphs: the IR's edges (JSON round trip, the checks), the ``add``, ``avgpool`` and
``depthwise`` kinds against plain numpy, the narrowest add proven on every input pair, and the
residual and depthwise-separable models (tests/models/make_residual_models.py,
make_mobilenet_models.py) imported exactly — against the QONNX executor."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hwnorm import data
from hwnorm.bnn import SurdAffine, ThresholdSpec
from hwnorm.blocks import fifo_depth
from hwnorm.check import check_model
from hwnorm.dataflow import NetworkBlock
from hwnorm.datatypes import IntType
from hwnorm.ir import INPUT, Network
from hwnorm.layers.add import Add, narrowest
from hwnorm.layers.avgpool import AvgPool
from hwnorm.layers.depthwise import Depthwise
from hwnorm.layers.spatial import Geometry, im2col
from hwnorm.layers.thresholding import InputThreshold
from hwnorm.models import VENDORED, model_path
from hwnorm.quantizer import Quantizer, threshold_fold
from hwnorm.qonnx import interpret

MODELS = Path(__file__).resolve().parent / "models"
RESIDUAL = json.loads((MODELS / "residual_models.json").read_text())
MOBILENET = json.loads((MODELS / "mobilenet_models.json").read_text())
GRAPH_MODELS = {**RESIDUAL, **MOBILENET}


def _model(name: str) -> Path:
    """A test model's file: vendored in hwnorm (the MobileNet-style one), else in tests/models."""
    return model_path(name) if name in VENDORED else MODELS / f"{name}.onnx"


def _thresholds(name, channels, lo, hi, cuts):
    return ThresholdSpec(np.tile(np.asarray(cuts, np.int64), (channels, 1)), lo, hi, 0, name)


def diamond() -> Network:
    """input → a ─┬─► b ─► add ─► out
                  └────────┘       (a fans out to b and to the add)"""
    a = InputThreshold(_thresholds("a", 4, 0, 255, [64, 128, 192]), 8, False, name="a")  # codes 0 … 3
    b = InputThreshold(_thresholds("b", 4, -8, 7, [2, 3]), 4, True, name="b")  # a's codes → 0 … 2
    u2 = IntType(2, False)
    add = Add((4,), (u2, u2), ((0, 3), (0, 2)), (1, 0), (3, -2), name="add")
    lo, hi = IntType.from_range(*add.out_range).range
    out = InputThreshold(_thresholds("out", 4, lo, hi, [-1, 2]), IntType.from_range(lo, hi).bits, True, name="out")
    return Network((a, b, add, out), "diamond", {}, ((INPUT,), ("a",), ("a", "b"), ("add",)))


def test_a_residual_graph_runs_and_round_trips():
    net = diamond()
    assert not net.is_chain and net.consumers("a") == ["b", "add"]
    x = np.random.default_rng(0).integers(0, 256, (50, 4))
    qa = np.searchsorted([64, 128, 192], x, side="right")
    qb = (qa >= 2).astype(np.int64) + (qa >= 3)
    s = 3 * (qa - 1) - 2 * qb
    expected = (s >= -1).astype(np.int64) + (s >= 2)
    np.testing.assert_array_equal(net.run(x), expected)
    doc = net.to_dict()
    assert doc["format"] == "hwnorm-network/3" and doc["inputs"] == [[""], ["a"], ["a", "b"], ["add"]]
    again = Network.from_dict(json.loads(json.dumps(doc)))
    assert again.spec_hash == net.spec_hash and again.inputs == net.inputs
    np.testing.assert_array_equal(again.run(x), expected)


@pytest.mark.parametrize("inputs, message", [
    (((INPUT,), ("add",), ("a", "b"), ("add",)), "reads 'add', which is not an earlier layer"),
    (((INPUT,), ("a",), ("a",), ("add",)), "add reads 2 stream"),
    (((INPUT,), ("a",), ("a", "a"), ("add",)), "the output of b is not read by any layer"),
    (((INPUT,), ("a",), ("a", "b"), ("nowhere",)), "reads 'nowhere'"),
    ((("a",), ("a",), ("a", "b"), ("add",)), "reads 'a', which is not an earlier layer"),
])
def test_malformed_graphs_are_refused_by_name(inputs, message):
    a, b, add, out = diamond().layers
    with pytest.raises(ValueError, match=message):
        Network((a, b, add, out), "g", {}, inputs)


def test_an_edge_whose_ranges_do_not_fit_is_refused():
    a, _, add, out = diamond().layers
    b = InputThreshold(_thresholds("b", 4, -8, 7, [1, 2, 3]), 4, True, name="b")  # codes 0 … 3: the add takes 0 … 2
    with pytest.raises(ValueError, match=r"b gives .* outside what add \(input 1\) takes"):
        Network((a, b, add, out), "g", {}, ((INPUT,), ("a",), ("a", "b"), ("add",)))


def test_a_chain_keeps_its_json_and_inputs_are_refused_there():
    a, b = diamond().layers[:2]
    chain = Network((a, b))
    doc = chain.to_dict()
    assert doc["format"] == "hwnorm-network/2" and "inputs" not in doc and chain.is_chain
    doc["inputs"] = [[""], ["a"]]
    with pytest.raises(ValueError, match="unknown field 'inputs'"):
        Network.from_dict(doc)


# ---------------------------------------------------------------- the kinds
def test_add_and_avgpool_equal_plain_numpy():
    rng = np.random.default_rng(3)
    i4, u3 = IntType(4, True), IntType(3, False)
    add = Add((5, 6, 3), (i4, u3), ((-8, 7), (1, 6)), (-1, 2), (7, -3))
    x0, x1 = rng.integers(-8, 8, (60, 3)), rng.integers(1, 7, (60, 3))
    np.testing.assert_array_equal(add.run(x0, x1), 7 * (x0 + 1) - 3 * (x1 - 2))
    lo, hi = add.out_range
    assert (lo, hi) == (7 * -7 - 3 * 4, 7 * 8 - 3 * -1) and add.out_type == IntType.from_range(lo, hi)
    with pytest.raises(ValueError, match="input 1 outside its declared range"):
        add.run(x0, x1 * 0)
    pool = AvgPool((6, 4, 3), Geometry(6, 4, (2, 2), (2, 2)), u3, 0, 7, zero=2)
    maps = rng.integers(0, 8, (2, 6, 4, 3))
    expected = maps.reshape(2, 3, 2, 2, 2, 3).sum(axis=(2, 4)) - 4 * 2
    np.testing.assert_array_equal(pool.run(maps.reshape(-1, 3)), expected.reshape(-1, 3))
    with pytest.raises(ValueError, match="padded windows are not supported"):
        AvgPool((6, 4, 3), Geometry(6, 4, (3, 3), pads=(1, 1, 1, 1)), u3, 0, 7)


def test_depthwise_equals_a_plain_grouped_convolution():
    rng = np.random.default_rng(4)
    c, g = 5, Geometry(7, 6, (3, 2), (2, 1), (1, 0, 1, 1))
    w = rng.integers(-7, 8, (c, g.taps))
    maps = rng.integers(0, 16, (2, g.height, g.width, c))
    layer = Depthwise(w, IntType(5, False), 0, 15, IntType(4, True), spatial=(g.out_height, g.out_width))
    got = layer.run(im2col(maps, g, 0)).reshape(2, g.out_height, g.out_width, c)
    padded = np.pad(maps, ((0, 0), (g.pads[0], g.pads[2]), (g.pads[1], g.pads[3]), (0, 0)))
    for oy in range(g.out_height):
        for ox in range(g.out_width):
            patch = padded[:, oy * 2:oy * 2 + 3, ox:ox + 2]  # (B, 3, 2, C)
            np.testing.assert_array_equal(got[:, oy, ox], np.einsum("byxc,cyx->bc", patch, w.reshape(c, 3, 2)))
    again = Network.from_dict(json.loads(json.dumps(Network((layer,)).to_dict())))
    assert again.spec_hash == Network((layer,)).spec_hash


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 3), st.fractions(Fraction(1, 64), 4),
       st.integers(2, 4), st.booleans(), st.integers(0, 1 << 20))
def test_the_narrowest_add_decides_every_input_pair_as_the_exact_one(bits0, bits1, z, ratio, out_bits, relu, seed):
    """Scales of any ratio: the exact multipliers, then the narrowest ones, give every pair of
    input codes the same quantized output (checked here pair by pair, independently)."""
    rng = np.random.default_rng(seed)
    ratio = Fraction(ratio.limit_denominator(1 << 12))
    e0, e1 = IntType(max(2, bits0), False), IntType(max(2, bits1), True)
    add = Add((2,), (e0, e1), (e0.range, e1.range), (z, 0), (ratio.numerator, ratio.denominator))
    lo, hi = IntType.from_range(*add.out_range).range
    unit = Fraction(1, ratio.numerator) / Fraction(int(rng.integers(1, 5)))
    quant = Quantizer(out_bits, False, relu=relu)
    fold = threshold_fold(SurdAffine.identity(2, unit), quant, lo, hi, "q")
    found = narrowest(add, fold.spec)
    pairs = np.array([(p, q) for p in range(*e0.range, 1) for q in range(e1.range[0], e1.range[1] + 1)] +
                     [(e0.range[1], q) for q in range(e1.range[0], e1.range[1] + 1)])
    x0, x1 = np.repeat(pairs[:, :1], 2, 1), np.repeat(pairs[:, 1:], 2, 1)
    exact = fold.spec.apply(add.run(x0, x1))
    if found is not None:
        narrow, spec = found
        assert max(map(abs, narrow.multipliers)) <= max(map(abs, add.multipliers))
        np.testing.assert_array_equal(spec.apply(narrow.run(x0, x1)), exact)


# ---------------------------------------------------------------- the residual models
@pytest.fixture(scope="module")
def held_out():
    images, labels = data.mnist_test()
    return images.reshape(len(images), -1)[::5].astype(np.int64), labels[::5].astype(np.int64)


@pytest.mark.parametrize("name", list(GRAPH_MODELS))
def test_graph_model_imports_and_keeps_its_accuracy(name, held_out):
    net = interpret(_model(name)).network
    kinds = [layer.kind for layer in net.layers]
    if name in RESIDUAL:
        assert kinds.count("add") == 2 and kinds.count("avgpool") == 1 and not net.is_chain
    else:
        assert kinds.count("depthwise") == 3 and kinds.count("avgpool") == 1 and net.is_chain
    adds = [layer for layer in net.layers if layer.kind == "add"]
    assert all(max(abs(m) for m in a.multipliers) < 1 << 8 for a in adds), [a.multipliers for a in adds]
    x, y = held_out
    assert float(np.mean(net.predict(x) == y)) == pytest.approx(GRAPH_MODELS[name]["held_out_top1"], abs=0.01)
    again = Network.from_dict(json.loads(json.dumps(net.to_dict())))
    np.testing.assert_array_equal(again.run(x[:20]), net.run(x[:20]))


@pytest.mark.parametrize("name", list(GRAPH_MODELS))
def test_graph_model_agrees_with_the_executor(name, held_out):
    x = held_out[0][:500].astype(np.float32) / 255
    r = check_model(_model(name), inputs=x)
    assert (r["count"], r["disagreements"]) == (500, 0), r


@pytest.mark.slow
@pytest.mark.parametrize("name", list(GRAPH_MODELS))
def test_graph_model_agrees_with_the_executor_on_all_mnist_images(name):
    r = check_model(_model(name))
    assert (r["count"], r["disagreements"]) == (10_000, 0), r


def test_a_residual_network_plans_forks_joins_and_fifos_from_its_cycle_model():
    """The graph's plan: a fork where a tensor has two readers, a FIFO on each fork branch and at
    each input of a join, every FIFO never full under the cycle model (so the model holds), the
    skip branches' deep enough for what the main branches delay. RTL: tests/test_cosim.py."""
    net = interpret(_model(next(iter(RESIDUAL)))).network
    top = NetworkBlock(net)
    kinds = [stage.block.kind for stage in top.stages]
    assert kinds.count("fork") == 2 and kinds.count("add") == 2
    fifos = {stage.name: stage.block.depth for stage in top.stages if stage.block.kind == "fifo"}
    assert {"node_add_in0_fifo", "node_add_in1_fifo", "node_add_1_in0_fifo", "node_add_1_in1_fifo"} <= set(fifos)
    assert fifos["node_add_in1_fifo"] > 100 and fifos["node_add_1_in1_fifo"] > 100  # the skips wait for the convs
    assert top.initiation_interval == 7056
    # the sizing: each FIFO's offers and its reader's takes under the model never exceed its depth
    from hwnorm.blocks import timeline
    outs, taken = timeline(top.stages, list(range(3 * top.in_beats)))
    readers = {src: (k, p) for k, stage in enumerate(top.stages) for p, src in enumerate(stage.sources)}
    for k, stage in enumerate(top.stages):
        if stage.block.kind == "fifo":
            offers = outs[stage.sources[0]]
            assert fifo_depth(offers, taken[readers[(k, 0)]]) <= stage.block.depth


def test_brevitas_trunc_avgpool_is_a_window_sum_then_thresholds():
    """``TruncAvgPool2d``: an ``AveragePool`` whose sums a ``Trunc`` reads as codes and shifts."""
    path = MODELS / "trunc_avgpool.onnx"
    r = check_model(path, random=300, seed=3)
    assert (r["count"], r["disagreements"]) == (300, 0), r
    net = interpret(path, input_mode="quantized").network
    assert [layer.kind for layer in net.layers] == ["avgpool", "thresholding", "mvu", "qbn"]
    assert net.layers[0].out_shape == (7, 7, 4) and net.layers[0].geometry.kernel == (4, 4)


def _concat_graph(path: Path, rng, b_scale: float = 0.5) -> Path:
    """input (1, 2, 5, 6) → Quant → Conv → Quant a ─┬─► Conv → Quant b ─► Concat(a, b) → dense
                                                     └──────────────────────┘"""
    from onnx import helper, numpy_helper
    from tests.test_conv import _quant, _with_dense_head

    inits: list = []
    nodes = [_quant("q_in", "x", "xq", 1 / 64, 8, True, inits)]
    for k, (c_in, source, out, scale) in enumerate([(2, "xq", "a", 0.5), (4, "a", "b", b_scale)]):
        inits.append(numpy_helper.from_array(rng.normal(0, 0.5, (4, c_in, 3, 3)).astype(np.float32), f"w{k}"))
        nodes.append(_quant(f"q_w{k}", f"w{k}", f"wq{k}", 0.25, 4, True, inits))
        nodes.append(helper.make_node("Conv", [source, f"wq{k}"], [f"c{k}"], name=f"conv{k}", kernel_shape=[3, 3],
                                      pads=[1, 1, 1, 1]))
        nodes.append(_quant(f"q_{out}", f"c{k}", out, scale, 3, True, inits))
    nodes.append(helper.make_node("Concat", ["a", "b"], ["cat"], name="join", axis=1))
    return _with_dense_head(path, rng, nodes, inits, "cat", 8 * 5 * 6, [1, 2, 5, 6])


def test_a_channel_concat_of_a_skip_connection_is_exact(tmp_path):
    path = _concat_graph(tmp_path / "cat.onnx", np.random.default_rng(8))
    r = check_model(path, random=300, seed=4)
    assert (r["count"], r["disagreements"]) == (300, 0), r
    net = interpret(path, input_mode="quantized").network
    (join,) = [layer for layer in net.layers if layer.kind == "concat"]
    assert join.channels == (4, 4) and join.out_shape == (5, 6, 8) and not net.is_chain
    again = Network.from_dict(json.loads(json.dumps(net.to_dict())))
    x = np.random.default_rng(0).integers(-128, 128, (5, net.in_features))
    np.testing.assert_array_equal(again.run(x), net.run(x))


def test_a_concat_of_two_scales_is_refused_by_name(tmp_path):
    from hwnorm.qonnx import ImportError_
    path = _concat_graph(tmp_path / "cat.onnx", np.random.default_rng(8), b_scale=0.25)
    with pytest.raises(ImportError_, match=r"node join_? \(Concat\): joins tensors of one per-tensor scale"):
        interpret(path)


def _per_channel_into(path: Path, rng, group: int) -> Path:
    """input (1, 4, 6, 5) → Quant → Conv 3×3 → Quant *per channel* → Conv 3×3 (``group``) → Quant
    → dense: Brevitas' MobileNet-v1 scales the activations that feed its depthwise convolutions
    per channel."""
    from onnx import helper, numpy_helper
    from tests.test_conv import _quant, _with_dense_head

    inits: list = []
    nodes = [_quant("q_in", "x", "xq", 1 / 64, 8, True, inits)]
    inits.append(numpy_helper.from_array(rng.normal(0, 0.5, (4, 4, 3, 3)).astype(np.float32), "w0"))
    nodes += [_quant("q_w0", "w0", "wq0", 0.25, 4, True, inits),
              helper.make_node("Conv", ["xq", "wq0"], ["c0"], name="conv0", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
              _quant("q_a", "c0", "a", np.array([0.5, 0.25, 0.75, 1.5], np.float32).reshape(1, 4, 1, 1), 4, True,
                     inits)]
    inits.append(numpy_helper.from_array(rng.normal(0, 0.5, (4, 4 // group, 3, 3)).astype(np.float32), "w1"))
    nodes += [_quant("q_w1", "w1", "wq1", np.array([0.25, 0.5, 0.125, 0.25], np.float32).reshape(4, 1, 1, 1), 4,
                     True, inits),
              helper.make_node("Conv", ["a", "wq1"], ["c1"], name="dw", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                               group=group),
              _quant("q_b", "c1", "b", 0.5, 3, True, inits)]
    return _with_dense_head(path, rng, nodes, inits, "b", 4 * 6 * 5, [1, 4, 6, 5])


def test_per_channel_activation_scales_feed_a_depthwise_convolution_exactly(tmp_path):
    path = _per_channel_into(tmp_path / "dw.onnx", np.random.default_rng(12), group=4)
    r = check_model(path, random=300, seed=5)
    assert (r["count"], r["disagreements"]) == (300, 0), r
    assert "depthwise" in [layer.kind for layer in interpret(path, input_mode="quantized").network.layers]


def test_per_channel_activation_scales_into_a_dense_convolution_are_refused_by_name(tmp_path):
    from hwnorm.qonnx import ImportError_
    path = _per_channel_into(tmp_path / "conv.onnx", np.random.default_rng(12), group=1)
    with pytest.raises(ImportError_, match=r"node dw \(Conv\): activations with per-channel scales cannot be summed "
                                           r"exactly across channels"):
        interpret(path)
