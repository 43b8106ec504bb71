"""Integer weight memories in MLC STT-RAM: the weight codecs (hwnorm.stt.intcodec), the stored
network under seeded faults (hwnorm.stt.store) and the array-level buffer model (hwnorm.stt.array).
The RTL side — the decoder in the generated MVU, under the same faults — is in test_cosim."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hwnorm.dataflow import check_folding
from hwnorm.models import load_network
from hwnorm.stt import load_table
from hwnorm.stt.array import cross_check, load_array_model, memory_cost
from hwnorm.stt.intcodec import (INT_CODECS, ROW_CODECS, WeightCodec, bits_to_rows, cells_to_rows, fit, read_probability,
                                 rows_to_bits, state_rank)
from hwnorm.stt.store import WeightStore, stored_network

TABLE = load_table()


@pytest.fixture(scope="module")
def tfc2():
    net = load_network("TFC_2W2A")[0]
    return net, check_folding(net, None)


@pytest.mark.parametrize("codec", INT_CODECS)
@pytest.mark.parametrize("element_bits", [1, 2, 3, 4, 8])
def test_every_codec_decodes_what_it_encoded(codec, element_bits):
    rng = np.random.default_rng(element_bits)
    bits = rng.integers(0, 2, (7, 5 * element_bits)).astype(np.uint8)  # odd widths get a pad bit
    spec = fit(codec, element_bits, bits, TABLE)
    cells = spec.encode(bits, TABLE)
    assert cells.shape == (7, spec.cells_per_row(bits.shape[1])) and cells.max() <= 3
    assert np.array_equal(spec.decode(cells, bits.shape[1]), bits)


def test_remap_puts_the_most_frequent_states_in_the_best_cells():
    # 2-bit weights in {−1, 0, 1}, mostly 0: the code 10 (−2) never occurs
    rng = np.random.default_rng(1)
    w = rng.choice([0, 1, 3], p=[0.7, 0.2, 0.1], size=(50, 16))  # two's complement codes of 0, +1, −1
    bits = np.stack([(w >> 0) & 1, (w >> 1) & 1], axis=2).reshape(50, 32).astype(np.uint8)
    rank = state_rank(TABLE)
    assert set(rank[:2]) == {0, 3}  # the extreme states are the reliable ones
    plain, backed = fit("remap", 2, bits, TABLE), fit("remap+backup", 2, bits, TABLE)
    enc = plain.encode_map[0]
    assert (enc[0], enc[1], enc[3]) == tuple(rank[:3]) and sorted(enc) == [0, 1, 2, 3]
    assert plain.decode_map[0][enc[2]] == 2  # remap alone: a bijection, the unused code decodes to −2
    unused = enc[2]
    likely = max((0, 1, 3), key=lambda d: (np.count_nonzero(w == d) * read_probability(TABLE, enc[d], unused), -d))
    assert backed.decode_map[0][unused] == likely != 2  # remap+backup: the unused state decodes by MAP
    for d in (0, 1, 3):
        assert backed.decode_map[0][enc[d]] == d


def test_binary_weights_pair_two_per_cell_and_odd_widths_repeat_every_w_cells():
    assert WeightCodec("none", 1).period == 1 and WeightCodec("none", 2).period == 1
    assert fit("remap", 3, np.zeros((1, 6), np.uint8), TABLE).period == 3
    assert fit("remap", 4, np.zeros((1, 8), np.uint8), TABLE).period == 2


def test_rows_bits_cells_conversions_round_trip():
    rng = np.random.default_rng(3)
    rows = [int(v) for v in rng.integers(0, 1 << 62, 5)] + [0, (1 << 70) - 1]
    assert bits_to_rows(rows_to_bits(rows, 71)) == rows
    cells = rng.integers(0, 4, (4, 9)).astype(np.uint8)
    back = [[(r >> (2 * c)) & 3 for c in range(9)] for r in cells_to_rows(cells)]
    assert np.array_equal(np.array(back), cells)


def test_weights_from_rows_inverts_the_rom_layout(tfc2):
    net, folding = tfc2
    for layer in net.layers:
        if layer.kind == "mvu":
            block = layer.block(folding[layer.name])
            assert np.array_equal(block.weights_from_rows(block.weight_rows()), layer.weights)


def test_a_store_without_faults_changes_nothing(tfc2):
    net, folding = tfc2
    for codec in INT_CODECS:
        stored, memories = stored_network(net, folding, WeightStore(codec))
        assert all(m.flips == 0 and np.array_equal(m.clean, m.cells) for m in memories.values())
        for a, b in zip(stored.layers, net.layers):
            assert a is b or np.array_equal(a.weights, b.weights)


def test_faults_are_seeded_and_the_golden_model_reads_the_decoded_weights(tfc2):
    net, folding = tfc2
    store = WeightStore("remap+backup", ber=0.05, seed=11)
    a, mem_a = stored_network(net, folding, store)
    b, mem_b = stored_network(net, folding, store)
    assert all(np.array_equal(mem_a[k].cells, mem_b[k].cells) for k in mem_a)
    assert sum(m.flips for m in mem_a.values()) > 100
    other = stored_network(net, folding, dataclasses.replace(store, seed=12))[1]
    assert any(not np.array_equal(mem_a[k].cells, other[k].cells) for k in mem_a)
    for layer in a.layers:
        if layer.kind == "mvu":
            block = layer.block(folding[layer.name])
            assert block.weight_rows() == mem_a[layer.name].decoded_rows()


def test_weight_store_settings_are_checked():
    with pytest.raises(ValueError, match="allowed: none, remap"):
        WeightStore("backup+rearrange")
    with pytest.raises(ValueError, match=r"ber must be a number in \[0, 0.5\]"):
        WeightStore("none", ber=0.7)
    with pytest.raises(ValueError, match="seed must be an integer"):
        WeightStore("none", seed=-1)
    assert set(ROW_CODECS) == {"none", "remap", "remap+backup"}  # per cell; the others per 16-bit word


def test_decoder_cost_follows_the_codec():
    bits = np.zeros((2, 64), np.uint8)
    none, remap = fit("none", 2, bits, TABLE), fit("remap", 2, bits, TABLE)
    assert none.decoder_levels() == 0 and none.decoder_luts(32) == 0  # plain wiring
    assert remap.decoder_levels() == 1 and remap.decoder_luts(32) == 64  # 0 → 11: a table per cell
    hamming = fit("hamming", 2, bits, TABLE)
    assert hamming.decoder_levels() > fit("fnw", 2, bits, TABLE).decoder_levels()


def test_a_design_stt_table_is_checked(tfc2):
    from hwnorm.generate import design_for_model, model_of
    d = design_for_model("TFC_2W2A", "t")
    with pytest.raises(ValueError, match="stt codec 'backup' is not a weight codec"):
        model_of(dataclasses.replace(d, params={**d.params, "stt": {"codec": "backup"}}))
    with pytest.raises(ValueError, match="unknown field 'rate'"):
        model_of(dataclasses.replace(d, params={**d.params, "stt": {"codec": "remap", "rate": 1}}))


# ---------------------------------------------------------------- the array model
def test_array_model_reproduces_its_read_anchors_and_shows_the_write_difference():
    model = load_array_model()
    rows = cross_check(model, TABLE)
    assert len(rows) == 2
    for r in rows:
        assert r["model_slc_read_pj"] == pytest.approx(r["nvsim_read_pj"])  # the read periphery's calibration
        assert r["model_slc_write_pj"] != pytest.approx(r["nvsim_write_pj"], rel=0.05)  # a different cell
        assert r["model_mlc_read_ns"] > r["nvsim_read_ns"]  # the second sensing step
    small, large = (model.periphery_read_pj(kib * 8192, 64) for kib in (8, 1024))
    assert 0 < small < large


def test_memory_cost_counts_reads_writes_and_cells():
    from hwnorm.estimate.energy import load_energy_table
    model, energy = load_array_model(), load_energy_table()
    cells = np.array([[0, 3, 1, 2], [3, 3, 3, 3]], np.uint8)
    c = memory_cost(model, TABLE, energy, "m", cells, data_bits=8, reads_per_row=5)
    assert c.reads_per_inference == 10
    cell_read = sum(TABLE.read_energy_pj[s] for s in cells.ravel())
    assert c.stt_cell_read_pj == pytest.approx(5 * cell_read)
    assert c.stt_read_pj == pytest.approx(10 * model.periphery_read_pj(16, 8) + 5 * cell_read)
    assert c.sram_read_pj == pytest.approx(10 * 8 * energy.sram_read_bit(16))
    written = sum(TABLE.write_energy_matrix[0, s] for s in cells.ravel())  # over an all-00 array
    assert c.stt_write_pj == pytest.approx(2 * model.periphery_write_pj(16, 8) + written)


@pytest.mark.parametrize("text, message", [
    ("name = 'x'", "needs at least one \\[\\[stt_anchor\\]\\]"),
    ("feature_nm = 45\n[[stt_anchor]]\ncapacity_kib = 1\nword_bits = 64\nread_pj = -1\nread_ns = 1\nwrite_pj = 1\n"
     "write_ns = 1", r"stt_anchor\[0\].read_pj must be a finite number > 0"),
])
def test_a_bad_array_model_names_the_field(tmp_path, text, message):
    path = tmp_path / "arrays.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_array_model(path)


def test_flow_config_stores_the_weights_in_stt_ram():
    from hwnorm.config import config_from_dict
    from hwnorm.flow import flow_design
    config = config_from_dict({"model": "TFC_2W2A", "stt": {"codec": "hamming", "store": True, "ber": 0.01,
                                                            "seed": 3}})
    assert flow_design(config, {}).params["stt"] == {"codec": "hamming", "ber": 0.01, "seed": 3, "cells": "default"}
    assert "stt" not in flow_design(config_from_dict({"stt": {"codec": "hamming"}}), {}).params  # energy only
    with pytest.raises(ValueError, match=r"stt.ber must be in \[0, 0.5\]"):
        config_from_dict({"stt": {"store": True, "ber": 0.9}})
    with pytest.raises(ValueError, match="stt.store must be bool"):
        config_from_dict({"stt": {"store": 1}})


def test_stt_weights_command_writes_its_report(tmp_path, capsys):
    from hwnorm.cli import main
    assert main(["stt-weights", "--models", "TFC_2W2A", "--codecs", "none,remap+backup", "--ber", "0.05",
                 "--seeds", "1", "--images", "50", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "TFC_2W2A: error-free" in out and "remap+backup" in out
    text = (tmp_path / "stt_weights.md").read_text()
    assert "## The array model against NVSim" in text and "STT `remap+backup`" in text
    assert (tmp_path / "stt_weights_accuracy.png").stat().st_size > 1000


def test_committed_stt_weights_report_is_complete():
    import json
    from pathlib import Path

    from hwnorm.stt.weights_report import DEFAULT_MODELS, RTL_MODELS
    doc = json.loads((Path(__file__).resolve().parents[1] / "reports" / "stt_weights.json").read_text())
    assert set(doc["models"]) == set(DEFAULT_MODELS)
    for m in doc["models"].values():
        assert set(m["energy"]) == set(INT_CODECS) == set(m["accuracy"])
    rtl = doc["rtl"]
    assert {(r["model"], r["codec"]) for r in rtl} == {(m, c) for m in RTL_MODELS for c in INT_CODECS}
    assert all(r["mismatches"] == 0 and r["flipped_bits"] > 0 for r in rtl)


def test_a_faulty_raw_accumulator_saturates_at_the_clean_range(tfc2):
    from hwnorm.layers.mvu import MVULayer
    net, folding = tfc2
    store = WeightStore("none", ber=0.1, seed=0)
    faulty, _ = stored_network(net, folding, store)
    clipped = [(a, b) for a, b in zip(faulty.layers, net.layers) if a.kind == "mvu" and a.acc_clip is not None]
    assert clipped, "seed 0 at BER 0.1 widens the last layer's accumulator"
    for layer, clean in clipped:
        assert layer.acc_clip == clean.out_range and layer.out_range == clean.out_range  # the next layer's input
        free = dataclasses.replace(layer, acc_clip=None)
        assert free.acc_range[0] < layer.acc_clip[0] or free.acc_range[1] > layer.acc_clip[1]
        x = np.random.default_rng(0).integers(layer.in_lo, layer.in_hi + 1, (64, layer.in_features))
        assert np.array_equal(layer.run(x), np.clip(free.run(x), *layer.acc_clip))
        assert MVULayer.from_dict(layer.to_dict()).acc_clip == layer.acc_clip  # the IR JSON keeps it
    with pytest.raises(ValueError, match="acc_clip .* applies to a raw accumulator"):
        thresholded = next(l for l in net.layers if l.kind == "mvu" and l.thresholds is not None)
        dataclasses.replace(thresholded, acc_clip=(0, 1))
