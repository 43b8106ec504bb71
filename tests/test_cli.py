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


# ------------------------------------------------------------------ hostile paths on the terminal
HOSTILE = "m\x1b[2J\nfake: 0 mismatches\r\u202eevil"


def _assert_safe(text: str):
    assert "\x1b" not in text and "\u202e" not in text and "\x00" not in text
    assert not any(line.startswith("fake") for line in text.replace("\r", "\n").splitlines()), text


@pytest.mark.parametrize("argv", [
    ["import", "{model}"], ["mnist", "{model}", "--limit", "20"], ["check", "{model}", "--random", "5"],
    ["generate", "{model}", "-o", "{dir}/rtl"], ["estimate", "{model}"],
    ["flow", "{model}", "--sim", "none", "--no-synth", "-o", "{dir}/rtl", "--reports", "{dir}/reports"],
])
def test_every_command_shows_a_hostile_model_path_escaped(capsys, tmp_path, argv):
    from hwnorm import data
    folder = tmp_path / HOSTILE
    folder.mkdir()
    model = folder / f"{HOSTILE}.onnx"
    model.write_bytes(data.path("models/TFC_1W1A.onnx").read_bytes())
    code = cli.main([a.format(model=model, dir=folder) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    _assert_safe(out + err)
    if "fake" in out + err:  # where the path is shown, it is escaped whole
        assert "\\u001b[2J\\u000afake: 0 mismatches" in out + err


@pytest.mark.parametrize("command", ["qbn", "import", "mnist", "check", "stt-weights", "generate", "verify", "estimate",
                                     "report", "flow", "sweep"])
def test_every_command_escapes_a_hostile_missing_path_in_its_error(capsys, tmp_path, command):
    try:
        code = cli.main([command, str(tmp_path / f"{HOSTILE}.toml")])
    except SystemExit as e:  # argparse: a command that takes no such argument
        code = e.code
    out, err = capsys.readouterr()
    assert code != 0 and "hwnorm: error:" in err
    _assert_safe(out + err)


def _verify_in(tmp_path, monkeypatch, capsys, sim, mode):
    monkeypatch.chdir(tmp_path)
    code = cli.main(["verify", "--work-dir", "work", "--design", "tfc_mvu", "--vectors", "10", "--sim", sim,
                     "--mode", mode])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"verified 10 vectors on {sim}: 0 mismatches" in out


def test_verify_takes_a_relative_work_dir(capsys, tmp_path, monkeypatch, sim):
    _verify_in(tmp_path, monkeypatch, capsys, sim, "batch")


def test_verify_in_stream_mode_takes_a_relative_work_dir(capsys, tmp_path, monkeypatch, any_sim):
    _verify_in(tmp_path, monkeypatch, capsys, any_sim, "stream")


def test_verify_names_a_work_dir_it_cannot_create(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    assert cli.main(["verify", "--work-dir", str(tmp_path / "file" / "work"), "--design", "tfc_mvu"]) == 2
    assert f"work folder {tmp_path / 'file' / 'work'}: cannot create it" in capsys.readouterr().err


def test_a_failed_synthesis_is_said_on_its_line(capsys, monkeypatch):
    from hwnorm.estimate import design, synthesis

    def fails(text, name, target):
        raise synthesis.ToolError("yosys: exceeded the 1800 s limit")
    monkeypatch.setattr(design, "synthesize", fails)  # where the estimate calls it
    assert cli.main(["estimate", "TFC_1W1A", "--targets", "ecp5", "--synth", "--images", "10"]) == 0
    out = capsys.readouterr().out
    assert "ecp5    estimate" in out and "Yosys failed: yosys: exceeded the 1800 s limit" in out


@pytest.mark.parametrize("argv", [["stt", "-o", "{f}/out"], ["stt-weights", "-o", "{f}/out"], ["import", "-o", "{f}/n.json"],
                                  ["generate", "-o", "{f}/rtl"], ["report", "-o", "{f}/r"], ["sweep", "nope.toml", "-o", "{f}/s"],
                                  ["estimate", "-o", "{f}/e.json"], ["check", "--random", "3", "-o", "{f}/c.json"]])
def test_an_output_that_cannot_be_written_is_refused_before_the_work(capsys, tmp_path, monkeypatch, argv):
    (tmp_path / "a_file").write_text("")
    import hwnorm.bnfold
    import hwnorm.check
    import hwnorm.models
    import hwnorm.qonnx
    for module in (hwnorm.qonnx, hwnorm.models, hwnorm.check, hwnorm.bnfold):  # every name a model is imported through
        for name in ("interpret", "import_qonnx"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, lambda *a, **k: pytest.fail("worked before checking its output"))
    assert cli.main([a.format(f=tmp_path / "a_file") for a in argv]) == 2
    assert f"{tmp_path / 'a_file'} is not a folder" in capsys.readouterr().err


def test_the_network_profile_times_every_layer_of_what_the_network_computes():
    import numpy as np
    from hwnorm import data
    from hwnorm.bench.net import layer_seconds
    from hwnorm.models import load_network
    net = load_network("TFC_1W1A")[0]
    x = data.mnist_test()[0][:40].reshape(40, -1).astype(np.int64)
    seconds, outs = layer_seconds(net, x, repeat=1)
    assert len(seconds) == len(net.layers) and all(s > 0 for s in seconds)
    assert np.array_equal(np.concatenate(outs).reshape(40, -1), net.run(x))


def test_the_hours_long_cnv_hardware_bench_runs_only_when_named():
    from hwnorm.bench import ON_REQUEST, REGISTRY
    assert "cnv-hw" in REGISTRY and ON_REQUEST == {"cnv-hw"}


def test_the_cnv_bench_folds_the_cifar_cnv_as_finn_does_and_for_an_ecp5_85f():
    """`hwnorm bench cnv-hw`'s designs, without its hours of synthesis: FINN's folding gives FINN's
    32,768 clocks per image; the fastest folding whose estimate fits the LFE5U-85F is faster."""
    from hwnorm.bench.cnv_hw import cnv_plans
    (finn, _, finn_plan), (fitted, how, fitted_plan) = cnv_plans(say=lambda text: None)
    assert (finn, finn_plan.block.initiation_interval) == ("finn_folding", 32768)
    assert fitted == "fastest_85f" and "fitting the LFE5U-85F" in how
    assert fitted_plan.block.initiation_interval < 32768


def test_a_layer_fed_by_a_producer_without_a_backlog_gets_a_fifo_and_the_clocks_stay_composed():
    """The composed model lets a layer take beats it had refused as a backlog, one per clock; a
    producer that cannot hold one falls behind clock by clock. At the fastest ECP5-85F folding of
    the CIFAR CNV the whole-window windows burst a row's windows at one per clock into slower
    MVUs (and, before whole windows, the first window's writer waited on three one-lane beats
    gathered into one: 8,196 clocks per image, not 8,128). FIFOs at their least depths restore the
    composed clocks; FINN's folding needs none."""
    from hwnorm.bench.cnv_hw import cnv_plans
    from hwnorm.clocked_compiled import CompiledPlan
    from hwnorm.dataflow import NetworkBlock, plan_sources
    from hwnorm.estimate.cycles import full_rate_output_cycles
    (_, _, finn_plan), (_, _, fitted_plan) = cnv_plans(say=lambda text: None)
    assert finn_plan.block.fed == {}
    top = fitted_plan.block
    assert top.fed and all(4 <= d < 256 for d in top.fed.values())
    images = 3

    def clocked(block):
        return CompiledPlan(plan_sources(block.stages)).run(list(range(images * block.in_beats)),
                                                            images * block.out_beats, 4 * block.initiation_interval)
    assert clocked(top) == full_rate_output_cycles(top, images)
    unfed = NetworkBlock(top.net, top.folding, top.output, top.timing, size_fifos=False)
    assert unfed.fed == {} and clocked(unfed)[-1] > full_rate_output_cycles(unfed, images)[-1]


def test_a_gzip_model_is_read_and_one_that_expands_too_far_is_refused(tmp_path, monkeypatch, capsys):
    import gzip
    import hwnorm.io
    from hwnorm import data
    model = tmp_path / "tfc.onnx.gz"
    model.write_bytes(gzip.compress(data.path("models/TFC_1W1A.onnx").read_bytes()))
    code, out, err = run(capsys, "check", str(model), "--random", "20")
    assert code == 0 and "0 of 20 predictions" in out, err
    monkeypatch.setattr(hwnorm.io, "GUNZIP_LIMIT", 1000)
    code, _, err = run(capsys, "import", str(model))
    assert code == 2 and "expands to more than" in err and "Traceback" not in err
