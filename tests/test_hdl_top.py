"""The network top in the Amaranth simulator: the imported TFC_1W1A classifies real MNIST images
exactly like the golden model; other foldings (lane splits, gcd converters, FIFOs) stay bit-exact
under random back-pressure; the composed cycle model equals the simulated handshakes; folding
errors and hostile layer names are handled."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from amaranth.back import verilog

from hwnorm import data
from hwnorm.blocks import ArgMaxBlock, FIFOBlock, GatherBlock, SplitBlock
from hwnorm.dataflow import NetworkBlock, auto_folding, check_folding
from hwnorm.datatypes import IntType
from hwnorm.generate import default_designs
from hwnorm.ir import Network
from hwnorm.qonnx import import_qonnx
from tests.hdl_sim import full_rate_timing, lanes, run_stream
from tests.helpers import toy_network


def top_of(net, folding=None, output="argmax"):
    """The network's hardware top (block → component)."""
    return NetworkBlock(net, folding, output).component()


@pytest.fixture(scope="module")
def tfc():
    return import_qonnx(data.path("models/TFC_1W1A.onnx"))


@pytest.fixture(scope="module")
def images():
    x, _ = data.mnist_test()
    return x[:16].reshape(16, -1).astype(np.int64)


def beats(top, x: np.ndarray) -> list:
    return x.reshape(-1, top.folding[top.net.layers[0].name]["pe"]).tolist()


def default_tfc_folding() -> dict:
    (design,) = [d for d in default_designs() if d.name == "tfc"]
    return design.params["folding"]


@pytest.mark.parametrize("folding", ["rtl/ default", "automatic"])
def test_tfc_top_classifies_like_the_golden_model(tfc, images, folding):
    top = top_of(tfc, default_tfc_folding() if folding == "rtl/ default" else None)
    got = run_stream(top, beats(top, images), seed=1, n_out=len(images))
    assert [int(g) for g in got] == tfc.predict(images).tolist()


@pytest.mark.slow
def test_tfc_top_on_300_mnist_images_with_back_pressure(tfc):
    x, _ = data.mnist_test()
    x = x[:300].reshape(300, -1).astype(np.int64)
    top = top_of(tfc, default_tfc_folding())
    got = run_stream(top, beats(top, x), seed=11, n_out=len(x), p_valid=0.8, p_ready=0.3)
    assert [int(g) for g in got] == tfc.predict(x).tolist()


def test_tfc_raw_scores_are_bit_exact_with_a_user_folding(tfc, images):
    names = [layer.name for layer in tfc.layers]
    # PE 8 → SIMD 32 (gather), PE 4 → SIMD 16 … and an odd 7-wide input: converters everywhere
    folding = {names[0]: {"pe": 7}, names[1]: {"pe": 8, "simd": 49}, names[2]: {"pe": 4, "simd": 32},
               names[3]: {"pe": 16, "simd": 16}, names[4]: {"pe": 5, "simd": 8}, names[5]: {"pe": 2}}
    top = top_of(tfc, folding, output="raw")
    kinds = {type(stage.block) for stage in top.block.stages}
    assert {GatherBlock, SplitBlock, FIFOBlock} <= kinds
    x = images[:6]
    got = run_stream(top, beats(top, x), seed=2, n_out=len(x) * 5)
    np.testing.assert_array_equal(np.array([lanes(g, 2) for g in got]).reshape(len(x), 10), tfc.run(x))


@pytest.mark.parametrize("folding", ["rtl/ default", "automatic"])
def test_composed_cycle_model_matches_the_simulation(tfc, images, folding):
    top = top_of(tfc, default_tfc_folding() if folding == "rtl/ default" else None)
    t = full_rate_timing(top, beats(top, images[:4]), n_out=4)
    assert t.produced[0] - t.accepted[0] == top.latency
    assert np.all(np.diff(t.produced) == top.initiation_interval)
    assert [int(o) for o in t.outputs] == tfc.predict(images[:4]).tolist()


def test_gcd_converter_split_then_gather_on_a_toy_network():
    rng = np.random.default_rng(3)
    net = toy_network(rng, k_in=60, hidden=(30, 12), classes=6)[0]
    folding = {"in": {"pe": 6}, "fc0": {"pe": 6, "simd": 4}, "fc1": {"pe": 4, "simd": 6},
               "fc_out": {"pe": 3, "simd": 4}, "scores": {"pe": 6}}
    top = top_of(net, folding, output="raw")
    x = rng.integers(0, 256, (5, 60))
    got = run_stream(top, beats(top, x), seed=4, n_out=5, p_valid=0.5, p_ready=0.4)
    np.testing.assert_array_equal(np.array([lanes(g, 6) for g in got]), net.run(x))


def test_argmax_takes_the_first_index_on_ties():
    dut = ArgMaxBlock(IntType(8, signed=True), 2, 6).component()
    vectors = [[3, 3, 1, 3, 0, 3], [-5, -5, -5, -5, -5, -5], [0, 1, 2, 2, 9, 9], [-1, -2, 7, 7, 7, 6]]
    got = run_stream(dut, [v[k:k + 2] for v in vectors for k in (0, 2, 4)], seed=5, n_out=len(vectors))
    assert [int(g) for g in got] == [int(np.argmax(v)) for v in vectors]


def test_folding_errors_name_the_layer_and_the_allowed_values(tfc):
    names = [layer.name for layer in tfc.layers]
    with pytest.raises(ValueError, match="not in the network"):
        check_folding(tfc, {"nope": {"pe": 1}})
    with pytest.raises(ValueError, match="unknown key 'simd'"):
        check_folding(tfc, {names[0]: {"simd": 2}})
    with pytest.raises(ValueError, match=f"{names[1]}: PE=3 must divide its 64 output rows"):
        check_folding(tfc, {names[1]: {"pe": 3}})
    with pytest.raises(ValueError, match="unknown output"):
        top_of(tfc, output="softmax")
    assert check_folding(tfc, None) == auto_folding(tfc)


def test_hostile_layer_names_cannot_reach_the_verilog():
    rng = np.random.default_rng(6)
    net = toy_network(rng, k_in=8, hidden=(4,), classes=2)[0]
    evil = "x endmodule module evil(input a); //"
    d = net.to_dict()
    d["layers"][1]["name"] = evil
    with pytest.raises(ValueError, match="not a legal Verilog identifier"):  # refused at the IR's door …
        Network.from_dict(d)
    layers = list(net.layers)  # … and sanitized in the HDL even when built in code
    layers[1] = dataclasses.replace(layers[1], name=evil)
    layers[2] = dataclasses.replace(layers[2], name="1 wire")
    net = Network(tuple(layers))
    text = verilog.convert(top_of(net), name="toy", emit_src=False)
    assert "evil(" not in text and "endmodule module" not in text
    assert "x_endmodule_module_evil_input_a" in text


@pytest.mark.parametrize("make,n_in,n_out", [(lambda: GatherBlock(IntType(5, signed=True), 2, 3), 2, 6),
                                             (lambda: SplitBlock(IntType(5, signed=True), 2, 3), 6, 2),
                                             (lambda: FIFOBlock(IntType(5, signed=True), 2, 4), 2, 2)])
def test_stream_plumbing_keeps_element_order(make, n_in, n_out):
    rng = np.random.default_rng(7)
    elements = rng.integers(-16, 16, 36)
    got = run_stream(make().component(), elements.reshape(-1, n_in).tolist(), seed=8, n_out=36 // n_out, p_valid=0.6, p_ready=0.5)
    assert [v for g in got for v in lanes(g, n_out)] == elements.tolist()


@pytest.mark.parametrize("depth,p_valid,p_ready", [(4, 0.9, 0.4), (5, 0.5, 0.9), (9, 0.8, 0.6)])
def test_the_stream_fifo_moves_on_the_clocks_of_its_cycle_model(depth, p_valid, p_ready):
    """The FIFO's RTL and its clocked model (hwnorm.clocked.FIFOModel, which the FIFO depths are
    sized by) give the same i.ready and o.valid on every clock, under random offers and reads."""
    from amaranth.sim import Simulator
    from hwnorm.clocked import FIFOModel

    dut = FIFOBlock(IntType(6), 1, depth).component()
    rng = np.random.default_rng(depth)
    offers, reads = (rng.random(300) < p_valid).tolist(), (rng.random(300) < p_ready).tolist()
    model, seen, expected = FIFOModel(depth), [], []

    async def bench(ctx):
        for t, (offer, read) in enumerate(zip(offers, reads)):
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.i.payload, [t % 64])
            ctx.set(dut.o.ready, read)
            seen.append((ctx.get(dut.i.ready), ctx.get(dut.o.valid)))
            ready, valid = model.ready([read], [offer])[0], model.valid([offer])[0]
            expected.append((int(ready), int(valid)))
            model.tick([offer], [offer and ready], [valid and read], [read])
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == expected
