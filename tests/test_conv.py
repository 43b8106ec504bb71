"""Convolutional QNNs: the spatial golden kernels against plain numpy, the importer (Conv, MaxPool,
NCHW ↔ NHWC transposes, a feature map flattened into a dense layer) against the QONNX executor on
the vendored conv models (tests/models/make_conv_models.py) and on hand-built graphs, refusals
that name the node, and the line-buffer hardware (window, max-pool) in Amaranth's simulator —
values and every output beat's clock. Co-simulation on Verilator / Icarus is in test_cosim.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hwnorm import data
from hwnorm.check import check_model
from hwnorm.datatypes import BIPOLAR, IntType
from hwnorm.ir import Network
from hwnorm.layers.maxpool import MaxPool
from hwnorm.layers.spatial import Geometry, im2col, maxpool
from hwnorm.layers.window import SlidingWindow
from hwnorm.qonnx import ImportError_, interpret

MODELS = Path(__file__).resolve().parent / "models"
CONV_MODELS = json.loads((MODELS / "conv_models.json").read_text())  # the CNVs ship as vendored models
CNVS = ["CNV_MNIST_1W1A", "CNV_MNIST_2W2A"]
N_RANDOM = 300


def model_file(name: str) -> Path:
    from hwnorm.models import VENDORED, model_path
    return model_path(name) if name in VENDORED else MODELS / f"{name}.onnx"


# ---------------------------------------------------------------- golden kernels
def _random_geometry(rng, padded: bool = True) -> Geometry:
    kh, kw = (int(v) for v in rng.integers(1, 5, 2))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    pads = (int(rng.integers(0, kh)), int(rng.integers(0, kw)), int(rng.integers(0, kh)), int(rng.integers(0, kw)))
    pads = pads if padded else (0, 0, 0, 0)
    h = int(rng.integers(max(1, kh - pads[0] - pads[2]), 12))
    w = int(rng.integers(max(1, kw - pads[1] - pads[3]), 12))
    return Geometry(h, w, (kh, kw), (sh, sw), pads)


def _reference_windows(x, g: Geometry, pad):
    """Every window by plain indexing: (B, OH, OW, kh, kw, C)."""
    b, h, w, c = x.shape
    top, left = g.pads[0], g.pads[1]
    padded = np.full((b, h + g.pads[0] + g.pads[2], w + g.pads[1] + g.pads[3], c), pad, dtype=object)
    padded[:, top:top + h, left:left + w] = x
    out = np.empty((b, g.out_height, g.out_width, *g.kernel, c), dtype=object)
    for oy in range(g.out_height):
        for ox in range(g.out_width):
            y0, x0 = oy * g.stride[0], ox * g.stride[1]
            out[:, oy, ox] = padded[:, y0:y0 + g.kernel[0], x0:x0 + g.kernel[1]]
    return out


@pytest.mark.parametrize("seed", range(25))
def test_im2col_and_maxpool_match_plain_indexing(seed):
    rng = np.random.default_rng(seed)
    g = _random_geometry(rng)
    c = int(rng.integers(1, 6))
    x = rng.integers(-8, 8, (2, g.height, g.width, c))
    windows = _reference_windows(x, g, -3)
    np.testing.assert_array_equal(im2col(x, g, -3), windows.reshape(-1, g.taps * c).astype(np.int64))
    lowest = -(1 << 40)  # padding never wins a max-pool (ONNX pads with −∞)
    expected = _reference_windows(x, g, lowest).reshape(2, g.out_height, g.out_width, g.taps, c).max(axis=3)
    np.testing.assert_array_equal(maxpool(x, g), expected.reshape(-1, c).astype(np.int64))


@pytest.mark.parametrize("seed, c", enumerate([1, 7, 63, 64, 65, 130]))
def test_spatial_layers_on_bits_equal_them_on_integers(seed, c):
    """A bipolar map (packed words; windows that straddle word boundaries) and the same 0 / 1
    values as integers give the same outputs."""
    rng = np.random.default_rng(seed)
    g = _random_geometry(rng, padded=False)  # ±1 maps are never padded
    bits = rng.integers(0, 2, (3 * g.height * g.width, c))
    for layer in (SlidingWindow((g.height, g.width, c), g, BIPOLAR), MaxPool((g.height, g.width, c), g, BIPOLAR)):
        packed = layer.run(layer.golden_input(bits)).unpack()
        plain = layer.run(bits.astype(np.int64))
        np.testing.assert_array_equal(packed, plain)


@pytest.mark.parametrize("kwargs, message", [
    ({"kernel": (3, 3), "pads": (3, 0, 0, 0)}, "must be smaller than the kernel"),
    ({"kernel": (9, 2)}, "does not fit"),
    ({"kernel": (0, 2)}, "kernel and stride must be ≥ 1"),
    ({"kernel": (2, 2), "stride": (1, 0)}, "kernel and stride must be ≥ 1"),
    ({"kernel": (2, 2), "pads": (1, 1)}, "four whole numbers"),
])
def test_geometry_refuses_nonsense(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Geometry(6, 5, **kwargs)


def test_a_padded_bipolar_window_is_refused():
    with pytest.raises(ValueError, match="no value 0 to pad with"):
        SlidingWindow((4, 4, 3), Geometry(4, 4, (3, 3), pads=(1, 1, 1, 1)), BIPOLAR)


# ---------------------------------------------------------------- the vendored conv models
@pytest.fixture(scope="module")
def held_out():
    images, labels = data.mnist_test()
    return (images.astype(np.float32) / 255).reshape(len(images), -1)[::5], labels[::5].astype(np.int64)


@pytest.mark.parametrize("name", list(CONV_MODELS))
def test_conv_model_agrees_with_the_executor(name, held_out):
    path = model_file(name)
    on_random = check_model(path, random=N_RANDOM, seed=11)
    assert (on_random["count"], on_random["disagreements"]) == (N_RANDOM, 0), on_random
    if CONV_MODELS[name]["input_shape"] == [1, 28, 28]:
        on_images = check_model(path, inputs=held_out[0][:500])
        assert (on_images["count"], on_images["disagreements"]) == (500, 0), on_images


@pytest.mark.slow
@pytest.mark.parametrize("name", CNVS)
def test_cnv_model_agrees_with_the_executor_on_all_mnist_images(name):
    r = check_model(model_file(name))
    assert (r["count"], r["disagreements"]) == (10_000, 0), r


@pytest.mark.parametrize("name", CNVS)
def test_cnv_model_keeps_its_held_out_accuracy(name, held_out):
    """Integer pixels (the input quantizer becomes a thresholding layer over the 28 × 28 map):
    top-1 on the 2,000 held-out images as trained; the JSON round trip changes nothing."""
    x, y = held_out
    net = interpret(model_file(name)).network
    pixels = np.rint(x * 255).astype(np.int64)
    assert float(np.mean(net.predict(pixels) == y)) == pytest.approx(CONV_MODELS[name]["held_out_top1"], abs=0.01)
    again = Network.from_dict(json.loads(json.dumps(net.to_dict())))
    assert again.spec_hash == net.spec_hash
    np.testing.assert_array_equal(again.run(pixels[:50]), net.run(pixels[:50]))
    kinds = [layer.kind for layer in net.layers]
    assert kinds.count("window") == 4 and kinds.count("maxpool") == 2


def test_conv_layers_declare_feature_map_shapes():
    net = interpret(MODELS / "conv_nonsquare.onnx").network
    shapes = {layer.name: (layer.kind, layer.in_shape, layer.out_shape) for layer in net.layers}
    assert ("window", (28, 20, 1), (28, 20, 15)) in shapes.values()      # 3×5 kernel padded (1, 2)
    assert ("window", (14, 10, 6), (6, 8, 54)) in shapes.values()        # stride (2, 1)
    assert ("mvu", (240,), (10,)) in shapes.values()                     # the flattened 5×6×8 map


# ---------------------------------------------------------------- hand-built graphs
def _quant(name: str, x: str, out: str, scale: float, bits: int, signed: bool, inits: list):
    from onnx import helper, numpy_helper
    inits += [numpy_helper.from_array(np.array(scale, np.float32), f"{name}_s"),
              numpy_helper.from_array(np.array(0.0, np.float32), f"{name}_z"),
              numpy_helper.from_array(np.array(float(bits), np.float32), f"{name}_b")]
    return helper.make_node("Quant", [x, f"{name}_s", f"{name}_z", f"{name}_b"], [out], name=name,
                            domain="qonnx.custom_op.general", signed=int(signed), narrow=0, rounding_mode="ROUND")


def _with_dense_head(path: Path, rng, nodes: list, inits: list, feature: str, features: int, in_shape: list) -> Path:
    """The conv test graphs' end: ``feature`` flattened (Reshape to (1, −1)) into a quantized
    ``features`` × 5 MatMul; the graph over input ``x`` of ``in_shape`` saved to ``path``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits.append(numpy_helper.from_array(np.array([1, -1], np.int64), "flat"))
    nodes.append(helper.make_node("Reshape", [feature, "flat"], ["f"], name="flatten"))
    inits.append(numpy_helper.from_array(rng.normal(0, 0.5, (features, 5)).astype(np.float32), "w_fc"))
    nodes.append(_quant("q_fc", "w_fc", "wfq", 0.25, 3, True, inits))
    nodes.append(helper.make_node("MatMul", ["f", "wfq"], ["y"], name="fc"))
    graph = helper.make_graph(nodes, "conv_test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("qonnx.custom_op.general", 1)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _conv_graph(path: Path, channels_last: bool, rng, conv_attrs=None, pool_attrs=None, act_bits: int = 3,
                kernel: int = 3) -> Path:
    """input (1, 2, 5, 6) → Quant → Conv 3×3 pad 1 → Quant → [MaxPool] → [Transpose NHWC] →
    Reshape → MatMul, the MatMul's rows in the flattening's order (C·H·W, or H·W·C after the
    transpose): a two-channel input, and a flattened map either way."""
    from onnx import helper, numpy_helper

    inits, nodes = [], []
    nodes.append(_quant("q_in", "x", "xq", 1 / 64, 8, True, inits))
    w = rng.normal(0, 0.5, (4, 2, kernel, kernel)).astype(np.float32)
    inits.append(numpy_helper.from_array(w, "w_conv"))
    nodes.append(_quant("q_w", "w_conv", "wq", 0.25, 4, True, inits))
    nodes.append(helper.make_node("Conv", ["xq", "wq"], ["c"], name="conv",
                                  **{"kernel_shape": [kernel, kernel], "pads": [kernel // 2] * 4,
                                     **(conv_attrs or {})}))
    nodes.append(_quant("q_act", "c", "a", 0.5, act_bits, True, inits))
    feature, (h, w_) = "a", (5, 6)
    if pool_attrs is not None:
        nodes.append(helper.make_node("MaxPool", ["a"], ["p"], name="pool", **pool_attrs))
        feature, (h, w_) = "p", (2, 3)
    if channels_last:
        nodes.append(helper.make_node("Transpose", [feature], ["t"], name="to_nhwc", perm=[0, 2, 3, 1]))
        feature = "t"
    return _with_dense_head(path, rng, nodes, inits, feature, 4 * h * w_, [1, 2, 5, 6])


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("pool", [None, {"kernel_shape": [3, 2], "strides": [2, 2]}])
def test_a_flattened_feature_map_streams_channels_last(tmp_path, channels_last, pool):
    """The dense layer's weight rows are permuted from ONNX's flattening (NCHW: c·H·W + y·W + x;
    after a transpose to NHWC: none) to the stream's (y, x, c); a two-channel input is fed
    channels last. Exact against the executor either way."""
    rng = np.random.default_rng(3)
    path = _conv_graph(tmp_path / "g.onnx", channels_last, rng, pool_attrs=pool)
    r = check_model(path, random=200, seed=5)
    assert (r["count"], r["disagreements"]) == (200, 0), r
    net = interpret(path, input_mode="quantized").network
    assert net.layers[0].in_shape == (5, 6, 2) and net.layers[-2].in_shape in ((120,), (24,))


def _conv1d_graph(path: Path, rng, channels_last: bool, pool: bool) -> Path:
    """input (1, 2, 20) → Quant → Conv 1-D k = 3 pad 1 → Quant → [MaxPool 1-D k = 2 s = 2] →
    [Transpose NWC] → Reshape → MatMul: a keyword-spotting model's shape, (channels, length)."""
    from onnx import helper, numpy_helper

    inits, nodes = [], []
    nodes.append(_quant("q_in", "x", "xq", 1 / 64, 8, True, inits))
    inits.append(numpy_helper.from_array(rng.normal(0, 0.5, (4, 2, 3)).astype(np.float32), "w_conv"))
    nodes.append(_quant("q_w", "w_conv", "wq", 0.25, 4, True, inits))
    nodes.append(helper.make_node("Conv", ["xq", "wq"], ["c"], name="conv", kernel_shape=[3], pads=[1, 1]))
    nodes.append(_quant("q_act", "c", "a", 0.5, 3, True, inits))
    feature, length = "a", 20
    if pool:
        nodes.append(helper.make_node("MaxPool", ["a"], ["p"], name="pool", kernel_shape=[2], strides=[2]))
        feature, length = "p", 10
    if channels_last:
        nodes.append(helper.make_node("Transpose", [feature], ["t"], name="to_nwc", perm=[0, 2, 1]))
        feature = "t"
    return _with_dense_head(path, rng, nodes, inits, feature, 4 * length, [1, 2, 20])


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("pool", [False, True])
def test_a_1d_convolution_is_a_map_of_height_one(tmp_path, channels_last, pool):
    """Conv and MaxPool over (N, C, L) maps (keyword-spotting models): imported as maps of height
    1 with 1 × k windows, exact against the executor (the RTL: test_cosim.py)."""
    path = _conv1d_graph(tmp_path / "k.onnx", np.random.default_rng(6), channels_last, pool)
    r = check_model(path, random=200, seed=5)
    assert (r["count"], r["disagreements"]) == (200, 0), r
    net = interpret(path, input_mode="quantized").network
    window = net.layers[0]
    assert window.kind == "window" and window.in_shape == (1, 20, 2) and window.geometry.kernel == (1, 3)
    assert net.layers[-2].in_shape == ((40,) if pool else (80,))


def test_a_pointwise_convolution_reads_the_pixel_stream_without_a_window(tmp_path):
    """A 1×1 convolution at stride 1 without padding is an MVU over the pixels as they stream: no
    line buffer; exact against the executor (the RTL: test_cosim.py)."""
    path = _conv_graph(tmp_path / "g.onnx", False, np.random.default_rng(4), kernel=1)
    r = check_model(path, random=200, seed=5)
    assert (r["count"], r["disagreements"]) == (200, 0), r
    net = interpret(path, input_mode="quantized").network
    assert [layer.kind for layer in net.layers][:2] == ["mvu", "mvu"] and net.layers[0].in_shape == (5, 6, 2)
    from hwnorm.layers.spatial import Geometry
    assert Geometry(5, 6, (1, 1)).pointwise
    assert not Geometry(5, 6, (1, 1), (2, 2)).pointwise and not Geometry(5, 6, (1, 3), pads=(0, 1, 0, 1)).pointwise


@pytest.mark.parametrize("conv_attrs, pool_attrs, message", [
    ({"group": 2}, None, r"depthwise convolution of 2 channels takes weights \(2, 1, kh, kw\), got \(4, 2, 3, 3\) "
                         r"\(channel multipliers other than 1 are not supported\)"),
    ({"dilations": [2, 2]}, None, r"dilations \[2, 2\] are not supported"),
    (None, {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, "ceil_mode = 1 gives a 3×3 output"),
    (None, {"kernel_shape": [2, 2], "dilations": [2, 2]}, r"dilations \[2, 2\] are not supported"),
])
def test_unsupported_conv_and_pool_attributes_name_the_node(tmp_path, conv_attrs, pool_attrs, message):
    path = _conv_graph(tmp_path / "g.onnx", False, np.random.default_rng(0), conv_attrs, pool_attrs)
    with pytest.raises(ImportError_, match=message) as e:
        interpret(path)
    assert "g.onnx: node" in str(e.value)


def test_padding_a_binary_convolution_is_refused_by_name(tmp_path):
    """±1 activations have no code for the 0 that ONNX pads with: refused, naming the node."""
    import onnx
    model = onnx.load(model_file("CNV_MNIST_1W1A"))
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    conv = convs[1]  # reads the BipolarQuant of the first block
    (pads,) = [a for a in conv.attribute if a.name == "pads"]
    pads.ints[:] = [1, 1, 1, 1]
    onnx.save(model, tmp_path / "padded.onnx")
    with pytest.raises(ImportError_, match=r"\(Conv\): padding ±1 activations with 0 has no ±1 code"):
        interpret(tmp_path / "padded.onnx")


def test_maxpool_of_float_data_is_refused(tmp_path):
    import onnx
    from onnx import helper
    model = onnx.load(MODELS / "conv_pad_stride.onnx")
    g = model.graph
    first_conv = next(n for n in g.node if n.op_type == "Conv")
    pool = helper.make_node("MaxPool", [first_conv.output[0]], ["pooled_float"], name="early_pool", kernel_shape=[1, 1])
    for n in g.node:
        n.input[:] = ["pooled_float" if i == first_conv.output[0] else i for i in n.input]
    g.node.insert(list(g.node).index(first_conv) + 1, pool)
    onnx.save(model, tmp_path / "pool_float.onnx")
    with pytest.raises(ImportError_, match=r"early_pool \(MaxPool\): supported on quantized activations"):
        interpret(tmp_path / "pool_float.onnx")


def test_exact_ties_broken_otherwise_are_counted_apart():
    """The executor choosing another of the best-scoring classes is a tie; any other class disagrees."""
    from hwnorm.check import agreement
    scores = np.array([[5, 5, 1], [2, 7, 7], [3, 1, 0], [4, 4, 4]])
    r = agreement(scores, np.array([1, 1, 1, 2]))
    assert (r["disagreements"], r["first_disagreement"], r["ties"]) == (1, 2, 2)


def test_a_node_named_like_a_derived_layer_is_renamed(tmp_path):
    """A node named `conv_window` beside a Conv named `conv` (whose window layer takes that name)."""
    import onnx
    path = _conv_graph(tmp_path / "g.onnx", False, np.random.default_rng(0))
    model = onnx.load(path)
    (reshape,) = [n for n in model.graph.node if n.op_type == "Reshape"]
    reshape.name = "conv_window"
    onnx.save(model, path)
    with pytest.warns(UserWarning, match="conv_window"):
        net = interpret(path).network
    assert len({layer.name for layer in net.layers}) == len(net.layers)


def test_hwnorm_check_on_a_conv_model_reports_ties_apart(capsys):
    from hwnorm import cli
    assert cli.main(["check", str(MODELS / "conv_pad_stride.onnx"), "--random", "400"]) == 0
    out = capsys.readouterr().out
    assert "0 of 400 predictions of the golden model differ from the QONNX executor" in out


# ---------------------------------------------------------------- line-buffer hardware
def _hardware_cases():
    t4 = IntType(4, True)
    return [
        ("window", (5, 4, 4), Geometry(5, 4, (3, 3), (1, 1), (1, 1, 1, 1)), t4, 2),
        ("maxpool", (5, 4, 4), Geometry(5, 4, (3, 3), (1, 1), (1, 1, 1, 1)), t4, 2),
        ("window", (6, 7, 3), Geometry(6, 7, (2, 3), (2, 1), (0, 1, 1, 0)), t4, 3),
        ("maxpool", (6, 7, 3), Geometry(6, 7, (2, 3), (2, 1), (0, 1, 1, 0)), t4, 1),
        ("window", (5, 5, 2), Geometry(5, 5, (3, 3), (2, 2)), IntType(3, False), 1),
        ("maxpool", (7, 5, 2), Geometry(7, 5, (3, 1), (3, 2), (1, 0, 2, 0)), IntType(3, False), 2),
        ("window", (6, 6, 5), Geometry(6, 6, (3, 3)), BIPOLAR, 5),
        ("maxpool", (6, 6, 5), Geometry(6, 6, (2, 2), (2, 2)), BIPOLAR, 1),
    ]


def _spatial_layer(kind, shape, g, element):
    lo, hi = (0, 1) if element.is_bipolar else element.range
    if kind == "window":
        return SlidingWindow(shape, g, element, lo, hi, 0 if element.is_bipolar else max(lo, min(hi, 1)))
    return MaxPool(shape, g, element, lo, hi)


@pytest.mark.parametrize("case", range(len(_hardware_cases())))
def test_line_buffer_units_in_amaranth_simulation(case):
    """Three maps back to back under random idle cycles and back-pressure: every beat equals the
    golden model's; at full rate every output beat comes on the clock the cycle model predicts."""
    from tests.hdl_sim import full_rate_timing, lanes, run_stream

    kind, shape, g, element, lanes_n = _hardware_cases()[case]
    layer = _spatial_layer(kind, shape, g, element)
    block = layer.block({layer.folding_keys[0]: lanes_n})
    x = layer.stimulus(3, np.random.default_rng(case))
    out = layer.run(layer.golden_input(x))
    out = out.unpack() if hasattr(out, "unpack") else out
    beats = [list(map(int, row)) for row in x.reshape(-1, lanes_n)]
    expected = [list(map(int, row)) for row in out.reshape(-1, lanes_n)]
    got = [lanes(v, lanes_n) for v in run_stream(block.component(), beats, case, n_out=len(expected))]
    assert got == expected
    timing = full_rate_timing(block.component(), beats, len(expected))
    assert timing.produced == block.schedule(list(range(len(beats))))  # beat k offered from clock k


@pytest.mark.parametrize("shape,g,element,clock", [
    ((6, 7, 3), Geometry(6, 7, (3, 3)), IntType(4, True), 0),
    ((7, 6, 2), Geometry(7, 6, (2, 3), (2, 1)), IntType(3, False), 0),
    ((6, 5, 5), Geometry(6, 5, (3, 3), (2, 2)), BIPOLAR, 0),
    ((5, 5, 1), Geometry(5, 5, (1, 3)), IntType(8, False), 0),
    ((3, 130, 4), Geometry(3, 130, (3, 3)), IntType(2, False), 150),  # its column store in block RAM
])
def test_whole_windows_per_beat_in_amaranth_simulation(shape, g, element, clock):
    """``simd = kh·kw·C``: one pixel per beat in, each completed window out in one beat. Three maps
    under random idle cycles and back-pressure equal the golden windows; at full rate every window
    comes on the clock the cycle model predicts, and the clocked model agrees."""
    from hwnorm.clocked import model_of
    from hwnorm.layers.window import ParallelWindowBlock
    from hwnorm.timing import Timing
    from tests.hdl_sim import full_rate_timing, lanes, run_stream

    layer = _spatial_layer("window", shape, g, element)
    whole = g.taps * shape[2]
    assert {"simd": whole} in layer.foldings()
    block = layer.block({"simd": whole}).with_timing(Timing(clock, "ecp5"))
    assert isinstance(block, ParallelWindowBlock) and block.store_ranks == (clock > 0)
    x = layer.stimulus(3, np.random.default_rng(whole))
    out = layer.run(layer.golden_input(x))
    out = out.unpack() if hasattr(out, "unpack") else out
    beats = [list(map(int, row)) for row in x.reshape(-1, shape[2])]
    expected = [list(map(int, row)) for row in out.reshape(-1, whole)]
    got = [lanes(v, whole) for v in run_stream(block.component(), beats, whole, n_out=len(expected))]
    assert got == expected
    timing = full_rate_timing(block.component(), beats, len(expected))
    assert timing.produced == block.schedule(list(range(len(beats))))
    assert model_of(block).issue.emits == frozenset(block.emit_issues())
    assert layer.clocks_per_image({"simd": whole}) == shape[0] * shape[1]


def test_a_padded_window_is_not_offered_whole():
    layer = _spatial_layer("window", (5, 4, 4), Geometry(5, 4, (3, 3), (1, 1), (1, 1, 1, 1)), IntType(4, True))
    assert {"simd": 36} not in layer.foldings()
    with pytest.raises(ValueError, match=r"SIMD=36 \(the whole 3×3×4 window per beat\) cannot be built for a "
                                         r"padded window .*; allowed: a divisor of its 4 channels"):
        layer.block({"simd": 36})
