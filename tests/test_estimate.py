"""Estimators: cycle figures from the components' models, energy from a table kept as data.

The cycle estimator is also held clock for clock against both simulators in tests/test_cosim.py
(every co-simulated configuration, and the TFC top over all 10,000 MNIST images)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hwnorm import data
from hwnorm.estimate.design import estimate_design
from hwnorm.estimate.cycles import design_cycles, full_rate_output_cycles
from hwnorm.estimate.energy import load_energy_table, network_energy, register_toggles
from hwnorm.generate import default_designs, model_of


def design(name):
    (d,) = [d for d in default_designs() if d.name == name]
    return d


@pytest.fixture(scope="module")
def tfc():
    return model_of(design("tfc"))[0]


# ---------------------------------------------------------------- cycles
def test_network_cycles_compose_the_stages(tfc):
    c = design_cycles(tfc, "tfc", 200e6)
    assert c.design.cycles_per_vector == max(s.cycles_per_vector for s in c.stages) == tfc.initiation_interval
    assert c.design.latency == c.stages[-1].done_at == tfc.latency
    assert [s.done_at for s in c.stages] == sorted(s.done_at for s in c.stages)
    assert c.bottleneck.kind == "mvu" and c.bottleneck.cycles_per_vector == 784 // 49 * 64 // 16  # SF · NF
    assert c.vectors_per_second == pytest.approx(200e6 / c.design.cycles_per_vector)
    assert c.latency_seconds == pytest.approx(c.design.latency / 200e6)


def test_full_rate_schedule_of_a_block_is_its_latency_then_one_vector_per_interval():
    mvu = model_of(design("tfc_mvu"))[0]
    beats = full_rate_output_cycles(mvu, 3)
    assert len(beats) == 3 * mvu.out_beats
    last = beats[mvu.out_beats - 1::mvu.out_beats]
    assert last[0] == mvu.latency and np.all(np.diff(last) == mvu.initiation_interval)


def test_clock_must_be_positive(tfc):
    with pytest.raises(ValueError, match="positive"):
        design_cycles(tfc, "tfc", 0)


# ---------------------------------------------------------------- energy table
def test_the_table_reproduces_every_published_figure():
    t = load_energy_table()
    for bits, pj in [(8, 0.03), (16, 0.05), (32, 0.1)]:
        assert t.add(bits) == pytest.approx(pj)
    for bits, pj in [(8, 0.2), (32, 3.1)]:
        assert t.mult(bits) == pytest.approx(pj)
    for kib, pj in [(8, 10.0), (32, 20.0), (1024, 100.0)]:
        assert t.sram_read_bit(kib * 8192) * 64 == pytest.approx(pj)
    assert t.add(8) < t.add(12) < t.add(16) and t.mult(8) < t.mult(16) < t.mult(32)
    derived = [e for e in t.entries() if e["kind"] == "derived"]
    assert {e["component"] for e in derived} == {"xnor", "popcount", "comparator", "register"}
    assert all(e["how"] for e in derived)


@pytest.mark.parametrize("text, message", [
    ("[[published]]\ncomponent = 'int_ad'\nbits = 8\npj = 1.0\n", "published[0].component"),
    ("[[published]]\ncomponent = 'int_add'\nbits = 8\npj = -1.0\n", "positive pj"),
    ("name = [\n", "not valid TOML"),
    ("published = [1, 2]\n", "published must be an array of tables"),
    ("[[published]]\ncomponent = 'int_add'\nbits = 8\npj = nan\n", "positive pj"),
    ("[[published]]\ncomponent = 'int_add'\nbits = 8\npj = inf\n", "positive pj"),
    ("[[published]]\ncomponent = 'int_add'\nbits = true\npj = 1.0\n", "positive bits"),
    ("BUILT_IN with the xnor energy nan", "derived[0]: needs pj ≥ 0"),
])
def test_bad_energy_tables_name_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    if text.startswith("BUILT_IN"):
        text = Path(load_energy_table().origin).read_text().replace("pj = 0.00375", "pj = nan")
    path.write_text(text)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_energy_table(path)


def test_unknown_table_lists_the_built_in_ones():
    with pytest.raises(ValueError, match="horowitz45"):
        load_energy_table("nope")


# ---------------------------------------------------------------- energy of a network
def test_register_toggles_count_changed_bits():
    # beats of 2 lanes × 2 bits: 00|00 → 01|11 (3 bits) → 01|11 (0) → 10|00 (−2 → 0b10: 4 bits)
    values = np.array([[0, 0, 1, 3], [1, 3, -2, 0]])
    assert register_toggles(values, lanes=2, width=2) == 3 + 0 + 0 + 4  # register starts at 0


def test_register_toggles_add_up_over_batches_and_bit_widths():
    from hwnorm.datatypes import bit_planes
    from hwnorm.estimate.energy import ToggleCounter
    rng = np.random.default_rng(5)
    for width in (1, 3, 17, 63, 64):
        values = rng.integers(-9, 1 << min(width, 62), (7, 12))
        if width == 64:  # past bit_planes' reach: −1 is 64 ones
            assert register_toggles(np.array([-1, 0, 5]), 1, 64) == 64 + 64 + 2
            continue
        beats = np.concatenate([np.zeros((1, 4 * width), np.uint8),
                                bit_planes(values.reshape(-1, 4), width).reshape(-1, 4 * width)])
        expected = int(np.count_nonzero(beats[1:] != beats[:-1]))  # bit by bit, as the register holds them
        counter = ToggleCounter(4, width)
        for part in np.array_split(values, 8):  # 7 rows in 8 batches: an empty one among them
            counter.add(part)
        assert counter.toggles == expected == register_toggles(values, 4, width), width


def test_energy_does_not_depend_on_the_batch_it_is_counted_in(tfc, monkeypatch):
    import hwnorm.estimate.energy as energy
    x = data.mnist_test()[0][:30].reshape(30, -1).astype(np.int64)
    whole = network_energy(tfc, x).to_dict()
    monkeypatch.setattr(energy, "energy_batch", lambda net: 7)
    assert network_energy(tfc, x).to_dict() == whole


def test_tfc_energy_per_layer_and_component(tfc):
    x, _ = data.mnist_test()
    x = x[:200].reshape(200, -1).astype(np.int64)
    e = network_energy(tfc, x)
    table = load_energy_table()
    names = [layer.name for layer in e.layers]
    assert names == ["input"] + [layer.name for layer in tfc.net.layers] + ["argmax"]
    first = e.layers[2]  # MatMul_16: 784 × 64 binary
    assert first.counts["xnor_bits"] == first.counts["popcount_input_bits"] == 784 * 64
    assert first.pj["xnor"] == pytest.approx(784 * 64 * table.pj("xnor"))
    assert e.compute_pj == pytest.approx(sum(e.per_component().values()))
    weight_bits = sum(l.in_features * l.out_features for l in tfc.net.layers if hasattr(l, "weights"))
    assert e.buffer_bits > weight_bits  # weights plus thresholds
    memories = e.arrays["memories"]  # one weight memory per MVU, each row read once per image
    assert [m["name"] for m in memories] == [l.name for l in tfc.net.layers if l.kind == "mvu"]
    assert sum(m["rows"] * m["data_bits"] for m in memories) == weight_bits
    assert e.buffer_sram_pj == pytest.approx(sum(m["rows"] * m["data_bits"] * table.sram_read_bit(m["rows"] * m["data_bits"])
                                                 for m in memories))
    assert e.stt_cells == weight_bits // 2  # two bits per MLC cell (every row has an even width here)
    assert e.buffer_stt_pj > e.arrays["stt_cell_read_pj"] > 0  # periphery included


def test_register_energy_depends_on_the_data(tfc):
    blank = np.zeros((20, 784), np.int64)
    x, _ = data.mnist_test()
    real = network_energy(tfc, x[:20].reshape(20, -1).astype(np.int64))
    quiet = network_energy(tfc, blank)
    assert quiet.layers[0].counts["register_toggles"] == 0
    assert real.layers[0].counts["register_toggles"] > 0
    assert real.layers[2].counts["xnor_bits"] == quiet.layers[2].counts["xnor_bits"]  # no data gating


def test_estimate_command_writes_every_figure(tmp_path, capsys):
    from hwnorm.cli import main
    out = tmp_path / "est.json"
    assert main(["estimate", "--images", "50", "--clock-mhz", "125", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    (tfc,) = [d for d in default_designs() if d.name == "tfc"]
    latency = model_of(tfc)[0].latency  # pipelined for the design's 150 MHz, whatever --clock-mhz says
    assert f"tfc (network): 64 clocks per vector, latency {latency} clocks" in text and "bottleneck" in text
    doc = json.loads(out.read_text())
    assert doc["clock_mhz"] == 125 and {d["design"] for d in doc["designs"]} == {d.name for d in default_designs()}
    assert doc["designs"][0]["energy"]["images"] == 50


def test_estimate_refuses_a_bad_clock(capsys):
    from hwnorm.cli import main
    with pytest.raises(SystemExit) as e:  # argparse: usage and the error line
        main(["estimate", "--clock-mhz", "0"])
    assert e.value.code == 2 and "--clock-mhz: the value must be between" in capsys.readouterr().err


def test_estimate_of_a_model_with_a_user_folding(tmp_path):
    d = design("tfc")
    net = model_of(d)[0].net
    folding = {net.layers[1].name: {"pe": 8, "simd": 28}}
    from hwnorm.generate import Design, plan_of
    user = Design("mine", "network", {**d.params, "folding": folding}, "test")
    r = estimate_design(plan_of(user), images=10)
    mvu = [s for s in r["cycles"]["stages"] if s["name"] == net.layers[1].name][0]
    assert mvu["cycles_per_vector"] == (784 // 28) * (64 // 8)


def test_weight_memory_cells_pair_consecutive_bits_without_a_codec(tfc):
    from hwnorm.stt import load_table
    from hwnorm.stt.intcodec import rows_to_bits
    from hwnorm.stt.store import WeightStore, store_block
    layer = tfc.net.layers[1]
    block = layer.block(tfc.folding[layer.name])
    _, stored = store_block(block, WeightStore("none"), load_table(), 1)
    bits = rows_to_bits(block.weight_rows(), block.pe * block.simd)  # bit j of a row: element j
    assert np.array_equal(stored.cells, 2 * bits[:, 1::2] + bits[:, 0::2])  # (hard, soft) = (odd, even) bit


def test_weight_buffer_with_a_codec_is_content_dependent(tfc):
    x = data.mnist_test()[0][:5].reshape(5, -1).astype(np.int64)
    none = network_energy(tfc, x)
    rearranged = network_energy(tfc, x, codec="rearrange")
    assert rearranged.stt_codec == "rearrange" and none.stt_codec == "none"
    rows = [(m["rows"], m["data_bits"]) for m in none.arrays["memories"]]
    assert rearranged.stt_cells == sum(r * -(-(-(-bits // 16)) // 4) * 34 for r, bits in rows)  # 4-word blocks + 2 flags
    assert rearranged.buffer_stt_pj != none.buffer_stt_pj
    assert rearranged.buffer_sram_pj == none.buffer_sram_pj and rearranged.compute_pj == none.compute_pj
    with pytest.raises(ValueError, match="'backup' is not a weight codec"):
        network_energy(tfc, x, codec="backup")
