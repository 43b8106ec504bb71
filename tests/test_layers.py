"""The layer-kind registry, proven with a kind defined in this file alone.

``bias_add`` (``y[c] = x[c] + bias[c]`` on integers) is registered here — spec, golden model, JSON,
folding, block (cycle model, inventory), Amaranth component, stimulus, energy — and then goes
through every view of the package with no edit to any other file: IR JSON, design files,
Verilog, co-simulation on both simulators (``hwnorm verify``), the report's cycles measured
against the estimate, energy and resources (costed by the generic fit, and said so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import data as adata, stream, wiring
from amaranth.lib.wiring import In, Out

from hwnorm import bnn, layers
from hwnorm.blocks import BeatPipeline, Inventory, MemoryUse
from hwnorm.cli import main
from hwnorm.datatypes import IntType, bit_planes, counter_bits
from hwnorm.fixed import FixedFormat
from hwnorm.hdl.common import FromBlock, advance_signal, group_counter, lane_array, rom
from hwnorm.ir import MVULayer, Network, QuantBN
from hwnorm.layers.base import ElementwiseLayer, LayerBlock, as_int_batch, check_fold
from hwnorm.bnspec import fold_bn


# ---------------------------------------------------------------- the kind, all of it
@dataclass(frozen=True, eq=False)
class BiasAdd(ElementwiseLayer):
    """``y[c] = x[c] + bias[c]`` for integer inputs of ``IntType(in_bits, in_signed)``."""

    bias: np.ndarray
    in_bits: int = 8
    in_signed: bool = False
    name: str = "bias"

    kind = "bias_add"

    def __post_init__(self):
        b = np.array(self.bias, dtype=np.int64).reshape(-1)
        b.setflags(write=False)
        object.__setattr__(self, "bias", b)

    in_shape = property(lambda self: (self.bias.size,))
    out_shape = in_shape
    in_type = property(lambda self: IntType(self.in_bits, self.in_signed))
    out_range = property(lambda self: (self.in_type.min + int(self.bias.min()), self.in_type.max + int(self.bias.max())))
    out_type = property(lambda self: IntType.from_range(*self.out_range))

    def run(self, x):
        return as_int_batch(self.name, x, self.in_features).astype(np.int64) + self.bias

    def spec_fields(self) -> dict:
        return {"bias": self.bias.tolist(), "in_bits": self.in_bits, "in_signed": self.in_signed}

    @classmethod
    def from_dict(cls, d: dict) -> "BiasAdd":
        return cls(np.array(d["bias"]), d["in_bits"], d["in_signed"], d["name"])

    def block(self, fold: dict) -> "BiasAddBlock":
        fold = self.parse_fold(fold)
        return BiasAddBlock(self, fold.get("pe", 1))

    def describe(self, block) -> dict:
        return {"layer": self.name, "pe": block.pe, "channels": self.in_features}

    def energy_actions(self, fold: dict) -> dict:
        return {f"add_{self.out_type.width}b": self.in_features}

    def stored_bits(self) -> list:
        return [bit_planes(self.bias, self.bias_type.width).reshape(-1)]

    @property
    def bias_type(self) -> IntType:
        return IntType.from_range(int(self.bias.min()), int(self.bias.max()))


class BiasAddBlock(LayerBlock, BeatPipeline):
    kind = BiasAdd.kind
    depth = 2  # input register (with the bias ROM read), sum register

    def __init__(self, layer: BiasAdd, pe: int):
        self.pe = check_fold(layer.name, "PE", pe, layer.in_features, "channels")
        self.layer, self.name, self.groups = layer, layer.name, layer.in_features // pe
        self.in_type, self.out_type = layer.in_type, layer.out_type
        self.in_lanes = self.out_lanes = pe
        self.in_beats = self.out_beats = self.groups

    def bias_rows(self) -> list:
        return self.layer.bias.reshape(self.groups, self.pe).tolist()

    def inventory(self) -> Inventory:
        pe, bias_w = self.pe, self.layer.bias_type.width
        return Inventory(adder=pe * self.out_type.width + counter_bits(self.groups),
                         register=pe * (self.in_type.width + self.out_type.width) + counter_bits(self.groups) + 2,
                         memories=(MemoryUse("rom", pe * bias_w, self.groups),) if self.groups > 1 else ())

    def component(self):
        return BiasAddComponent(self)


class BiasAddComponent(FromBlock, wiring.Component):
    def __init__(self, block: BiasAddBlock):
        self.block = block
        super().__init__({"i": In(stream.Signature(lane_array(block.in_type, block.pe))),
                          "o": Out(stream.Signature(lane_array(block.out_type, block.pe)))})

    def elaborate(self, platform):
        block, m = self.block, Module()
        advance = advance_signal(m, self.o)
        m.d.comb += self.i.ready.eq(advance)
        group = group_counter(m, self.i, block.groups)
        bias = rom(m, "bias", adata.ArrayLayout(block.layer.bias_type.shape(), block.pe), block.bias_rows(),
                   advance, group)
        x1, v1 = Signal(self.i.payload.shape()), Signal()
        total = Signal(self.o.payload.shape())
        for p in range(block.pe):
            m.d.comb += total[p].eq(x1[p] + bias[p])
        with m.If(advance):
            m.d.sync += [x1.eq(self.i.payload), v1.eq(self.i.valid), self.o.valid.eq(v1), self.o.payload.eq(total)]
        return m


@pytest.fixture(scope="module", autouse=True)
def bias_add_kind():
    layers.register(BiasAdd)
    yield BiasAdd
    layers.unregister(BiasAdd.kind)


# ---------------------------------------------------------------- a network that uses it
def network(seed: int = 3, channels: int = 12, classes: int = 4) -> Network:
    """bias_add (uint6 in) → mvu (integer input, raw accumulator) → qbn scores."""
    rng = np.random.default_rng(seed)
    first = BiasAdd(rng.integers(-20, 9, channels), in_bits=6, name="offset")
    t = first.out_type
    w = rng.choice([-1, 1], (classes, channels))
    mvu = MVULayer(bnn.pack_bipolar(w), channels, None, in_bits=t.bits, in_signed=t.signed, name="fc")
    lo, hi = mvu.acc_range
    fold = fold_bn(rng.uniform(0.5, 2, classes), rng.normal(0, 1, classes), 0.0, 1.0, 0.0,
                   in_fmt=FixedFormat(mvu.acc_type.bits), in_scale=1.0, in_range=(lo, hi),
                   out_fmt=FixedFormat.integer(10), out_scale=0.5, name="scores")
    return Network((first, mvu, QuantBN(fold.spec, name="scores")), "biased")


def test_the_kind_is_registered_under_one_name():
    assert layers.kind("bias_add") is BiasAdd and "bias_add" in layers.names()
    with pytest.raises(ValueError, match="'bias_add' is taken"):
        layers.register(type("Other", (BiasAdd,), {}))
    with pytest.raises(ValueError, match="unknown layer kind 'nope'; allowed: " + ", ".join(layers.names())):
        layers.kind("nope")


def test_golden_model_and_json_round_trip():
    net = network()
    x = np.random.default_rng(0).integers(0, 64, (50, 12))
    first, mvu, scores = net.layers
    w = bnn.unpack_bits(mvu.weights, 12).astype(np.int64) * 2 - 1
    np.testing.assert_array_equal(net.run(x), scores.spec.apply((x + first.bias) @ w.T))
    again = Network.from_dict(json.loads(json.dumps(net.to_dict())))
    assert again.spec_hash == net.spec_hash and again.layers[0].kind == "bias_add"
    assert net.to_dict()["layers"][0]["out_type"] == first.out_type.name


@pytest.fixture(scope="module")
def design_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bias_add")
    (folder / "net.json").write_text(json.dumps(network().to_dict()))
    (folder / "designs.toml").write_text(
        '[[design]]\nname = "biased"\nkind = "network"\nmodel = "net.json"\n'
        '[design.folding]\noffset = { pe = 4 }\nfc = { pe = 2, simd = 6 }\nscores = { pe = 2 }\n\n'
        '[[design]]\nname = "offset_only"\nkind = "bias_add"\nmodel = "net.json"\nlayer = "offset"\npe = 3\n')
    return folder / "designs.toml"


def test_verilog_and_manifest_through_generate(design_file, tmp_path, capsys):
    assert main(["generate", str(design_file), "-o", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    kinds = {d["name"]: d["kind"] for d in manifest["designs"]}
    assert kinds == {"biased": "network", "offset_only": "bias_add"}
    biased = manifest["designs"][0]
    assert [layer["kind"] for layer in biased["parameters"]["layers"]] == ["bias_add", "mvu", "qbn"]
    assert "module offset_only(" in (tmp_path / "offset_only.v").read_text()


def test_cosimulation_on_both_simulators(design_file, sim, tmp_path, capsys):
    code = main(["verify", str(design_file), "--sim", sim, "--vectors", "60", "--work-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"verified 120 vectors on {sim}: 0 mismatches" in out


def test_cycles_energy_and_resources(design_file, any_sim, tmp_path):
    out = tmp_path / "reports"
    assert main(["report", str(design_file), "-o", str(out), "--sim", any_sim, "--vectors", "30",
                 "--images", "20", "--no-synth"]) == 0
    for name in ("biased", "offset_only"):
        fig = json.loads((out / f"{name}.json").read_text())
        full = fig["rtl"]["full_rate"]
        assert fig["rtl"]["mismatches"] == 0 and full["beats_at_predicted_clock"] == full["beats"]
        assert full["latency"] == fig["cycles"]["design"]["latency"]
        assert all(r["uncalibrated_kinds"] == ["bias_add"] and r["estimate"]["lut"] > 0
                   for r in fig["resources"].values())
        assert "generic fit" in (out / f"{name}.md").read_text()
    net = json.loads((out / "biased.json").read_text())
    # PE 4 → SIMD 6: split to gcd 2 lanes and gather; the MVU replays its input (NF = 2): a FIFO
    assert [s["kind"] for s in net["cycles"]["stages"]] == ["bias_add", "split", "gather", "fifo", "mvu", "qbn",
                                                            "argmax"]
    first = network().layers[0]
    offset = net["energy"]["layers"][1]
    assert offset["name"] == "offset" and offset["counts"][f"add_{first.out_type.width}b"] == 12
    assert offset["pj"]["add"] > 0 and offset["counts"]["register_toggles"] > 0
    bits = net["energy"]["weight_buffer"]["bits"]
    assert bits == 12 * first.bias_type.width + 12 * 4  # the biases, then the ±1 weights
