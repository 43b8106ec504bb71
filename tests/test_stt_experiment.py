"""The STT-RAM experiment: its network, the `hwnorm stt` command and its report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwnorm.cli import main
from hwnorm.stt import experiment, mlp


def test_split_is_the_documented_interleave():
    tx, ty, ex, ey = mlp.split()
    assert len(tx) == 8000 and len(ex) == 2000 and tx.shape[1] == 784
    assert 0 <= tx.min() and tx.max() <= 1


def test_vendored_network_is_fp16_in_unit_range_and_accurate():
    net = mlp.FP16MLP.load()
    flat = net.flat()
    assert flat.dtype == np.float16 and net.n_weights == flat.size == 109_386
    assert np.abs(flat.astype(np.float32)).max() <= 1
    _, _, ex, ey = mlp.split()
    assert net.accuracy(ex, ey) >= 0.93


def test_training_from_scratch_learns():
    net = mlp.train(epochs=1, limit=2000, seed=1)
    _, _, ex, ey = mlp.split()
    assert net.accuracy(ex, ey) >= 0.80
    assert all(np.abs(t.astype(np.float32)).max() <= 1 for t in net.tensors)


def test_save_and_load_round_trip(tmp_path):
    net = mlp.FP16MLP.load()
    net.save(tmp_path / "m.npz")
    again = mlp.FP16MLP.load(tmp_path / "m.npz")
    assert all(np.array_equal(a, b) for a, b in zip(net.tensors, again.tensors)) and again.scales == net.scales


def test_small_run_keeps_its_promises():
    r = experiment.run(experiment.Settings(codecs=("none", "backup+rearrange"), bers=(1e-2,), seeds=2))
    assert r["energy"]["none"]["read_energy_delta"] == 0
    acc = r["accuracy"]
    assert acc["none"][0]["bit_flips_mean"] > 0
    # the backup removes the bit-14 catastrophe: far better than no encoding at a high error rate
    assert acc["backup+rearrange"][0]["accuracy_mean"] > acc["none"][0]["accuracy_mean"] + 0.3
    assert r["energy"]["backup+rearrange"]["cells_per_weight"] == pytest.approx(8.5, abs=1e-3)


@pytest.mark.parametrize("bad, message", [
    (dict(codecs=("backup",)), "must include 'none'"),
    (dict(codecs=("none", "zip")), "unknown codec 'zip'"),
    (dict(bers=(0.0,)), "bit-error rates"),
    (dict(seeds=0), "seeds"),
    (dict(tile_words=100), "tile-words"),
])
def test_settings_are_validated(bad, message):
    with pytest.raises(ValueError, match=message):
        experiment.Settings(**bad).check()


def test_cli_writes_the_three_report_files(tmp_path, capsys):
    rc = main(["stt", "--codecs", "none,backup", "--ber", "1e-4,1e-2", "--seeds", "1", "-o", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "backup" in out and "wrote" in out
    doc = json.loads((tmp_path / "stt.json").read_text())
    assert set(doc["accuracy"]) == {"none", "backup"} and len(doc["accuracy"]["none"]) == 2
    assert "| `backup` |" in (tmp_path / "stt.md").read_text()
    assert (tmp_path / "stt_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_rejects_a_bad_cell_table(tmp_path, capsys):
    table = tmp_path / "cells.json"
    table.write_text(json.dumps({"name": "x", "read": {}}))
    assert main(["stt", "--cells", str(table), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "cells.json" in err and "read.00" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_committed_report_is_complete():
    from pathlib import Path

    reports = Path(__file__).resolve().parent.parent / "reports"
    doc = json.loads((reports / "stt.json").read_text())
    assert set(doc["accuracy"]) == set(experiment.CODECS)
    assert (reports / "stt_accuracy.png").exists() and "## Against the paper's claims" in (
        reports / "stt.md").read_text()


def test_cli_pairing_is_configurable_and_validated(tmp_path, capsys):
    swapped = "14:15,13:12,11:10,9:8,7:6,5:4,3:2,1:0"
    assert main(["stt", "--codecs", "none,backup", "--pairing", swapped, "--ber", "1e-3", "--seeds", "1",
                 "-o", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "stt.json").read_text())["scenario"]["pairing"][0] == [14, 15]
    split_sign = "15:13,14:12,11:10,9:8,7:6,5:4,3:2,1:0"
    assert main(["stt", "--codecs", "none,backup", "--pairing", split_sign, "-o", str(tmp_path / "x")]) == 2
    assert "bits 15 and 14 in one cell" in capsys.readouterr().err
