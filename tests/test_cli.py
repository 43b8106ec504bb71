"""The hwnorm command: defaults work, bad input fails clearly, outputs are atomic."""

import json

import pytest

from hwnorm import cli


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and "hwnorm 0.1.0" in capsys.readouterr().out
    code, out, _ = run(capsys)
    assert code == 0 and "qbn" in out and "bench" in out


def test_qbn_default_folds_the_real_tfc_layers_exactly(capsys, tmp_path):
    target = tmp_path / "out" / "specs.json"
    code, out, err = run(capsys, "qbn", "-o", str(target))
    assert code == 0, err
    assert "0 mismatches" in out and "BatchNormalization_17" in out
    doc = json.loads(target.read_text())
    assert len(doc["layers"]) == 3
    first = doc["layers"][0]
    assert first["spec"]["in_range"] == [-784, 784]
    assert first["verified"] == {"inputs": 1569 * 64, "method": "exhaustive", "mismatches": 0}
    assert not list(target.parent.glob(".*"))  # no temporary file left behind


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON \\(line 1"),
    ('{"layers": [{"gamma": [1], "beta": [0], "mean": [0], "var": [1]}]}', "missing field 'in_range'"),
    ('{"layers": [{"gamma": [1], "beta": [0], "mean": [0], "var": [1], "in_range": [0, 3], "colour": 1}]}',
     "unknown field 'colour'"),
    ('{"layers": [{"gamma": [1], "beta": [0], "mean": [0], "var": [0], "eps": 0, "in_range": [0, 3]}]}',
     "layer bn0: channel 0: var \\+ eps = 0"),
    ('{"layers": [{"gamma": ["a"], "beta": [0], "mean": [0], "var": [1], "in_range": [0, 3]}]}',
     "lists of numbers"),
    ('{"layers": [{"gamma": [1], "beta": [0], "mean": [0], "var": [1], "in_range": [5, 3]}]}',
     "in_range must be"),
    ('{"layers": [{"gamma": [1], "beta": [0], "mean": [0], "var": [1], "eps": "small", "in_range": [0, 3]}]}',
     "layers\\[0\\]: eps must be a number, got 'small'"),
    ('{"layers": [{"gamma": [true], "beta": [0], "mean": [0], "var": [1], "in_range": [0, 3]}]}',
     "layers\\[0\\]: gamma: .* lists of numbers"),
])
def test_qbn_bad_input_is_one_clear_line(capsys, tmp_path, content, message):
    src = tmp_path / "params.json"
    src.write_text(content)
    out_file = tmp_path / "specs.json"
    out_file.write_text("previous")
    code, _, err = run(capsys, "qbn", str(src), "-o", str(out_file))
    assert code == 2
    assert err.startswith("hwnorm: error: ") and "Traceback" not in err
    assert __import__("re").search(message, err), err
    assert out_file.read_text() == "previous"  # nothing half-written


def test_qbn_rejects_a_file_that_is_not_onnx(capsys, tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    code, _, err = run(capsys, "qbn", str(bad))
    assert code == 2 and "not a readable ONNX model" in err


def test_bench_rejects_unknown_names(capsys):
    from hwnorm.bench import REGISTRY
    code, _, err = run(capsys, "bench", "nope")
    assert code == 2 and "unknown benchmark nope" in err
    assert f"available: {', '.join(sorted(REGISTRY))}" in err and "igemm" in REGISTRY


def test_write_atomic_gives_normal_permissions(tmp_path):
    import os
    from hwnorm.io import write_atomic
    p = write_atomic(tmp_path / "x.txt", "hi")
    mask = os.umask(0)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask and p.read_text() == "hi"


def test_import_default_writes_an_ir_that_mnist_runs(capsys, tmp_path):
    target = tmp_path / "tfc.json"
    code, out, err = run(capsys, "import", "-o", str(target))
    assert code == 0, err
    assert "MatMul_16" in out and " qbn " in out
    code, out, err = run(capsys, "mnist", str(target), "--limit", "500")
    assert code == 0, err
    assert "on 500 MNIST test images" in out


def test_mnist_check_qonnx_reports_zero_disagreements(capsys, tmp_path):
    target = tmp_path / "m.json"
    code, out, err = run(capsys, "mnist", "--limit", "300", "--check-qonnx", "-o", str(target))
    assert code == 0, err
    doc = json.loads(target.read_text())
    assert doc["images"] == 300 and doc["qonnx"]["disagreements"] == 0
    assert doc["qonnx"]["top1"] == doc["top1"]


def test_import_of_a_broken_model_fails_cleanly(capsys, tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    out_json = tmp_path / "never.json"
    code, out, err = run(capsys, "import", str(bad), "-o", str(out_json))
    assert code == 2 and "broken.onnx" in err and "Traceback" not in err
    assert not out_json.exists()


@pytest.mark.parametrize("argv, message", [
    (["verify", "--vectors", "100000000000"], "--vectors: the value must be between 1 and 100,000"),
    (["estimate", "--clock-mhz", "inf"], "--clock-mhz: the value must be between"),
    (["report", "--clock-mhz", "1e308", "--no-synth", "--sim", "none"], "--clock-mhz: the value must be between"),
    (["verify", "--seed", "-1"], "--seed: the value must be between 0"),
    (["stt", "--ber", ","], "--ber: expected comma-separated numbers"),
    (["stt", "--ber", "nan"], "--ber: expected finite numbers"),
    (["stt", "--codecs", "none,none"], "--codecs: none given twice"),
    (["stt", "--codecs", ""], "--codecs: expected comma-separated values, none empty"),
    (["estimate", "--targets", ""], "--targets: expected comma-separated values, none empty"),
    (["generate", "TFC_1W1A", "--name", ""], "design name '' is not a legal Verilog identifier"),
    (["flow", "-o", ""], "rtl_dir must not be empty"),
])
def test_nonsense_options_are_refused_before_any_work(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    try:
        code, _, err = run(capsys, *argv)
    except SystemExit as e:  # argparse: usage and one error line
        code, err = e.code, capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("text, message", [
    ("vectors = 1e11\n", "vectors must be int"),
    ("vectors = 100000000\n", "vectors must be between 1 and 100,000"),
    ("seed = -1\n", "seed must be between 0"),
    ("clock_mhz = 1e308\n", "clock_mhz must be between"),
    ('rtl_dir = ""\n', "rtl_dir must not be empty"),
    ('\ufeffvectors = 5\nrtl_dir = ""\n', "rtl_dir must not be empty"),  # a BOM is read past, not an error
])
def test_nonsense_flow_settings_name_the_key(capsys, tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flow.toml").write_text(text, encoding="utf-8")
    code, _, err = run(capsys, "flow", "flow.toml")
    assert code == 2 and f"flow.toml: {message}" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow.toml"]
