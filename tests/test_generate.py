"""`hwnorm generate`: rtl/ is in sync with the generators, every file lints clean under Verilator
-Wall (with the documented waivers), the manifest describes the RTL, user foldings work from the
command line, bad input is refused without touching existing output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from amaranth.hdl import Value

from hwnorm import data
from hwnorm.cli import main
from hwnorm.generate import MANIFEST, WAIVERS, build, default_designs, load_designs, model_of, render
from hwnorm.hdl.common import unused_ok
from hwnorm.verilator import lint

RTL = Path(__file__).resolve().parent.parent / "rtl"


@pytest.fixture(scope="module")
def rendered():
    return render(default_designs())


def test_rtl_folder_is_in_sync_with_the_generators(rendered):
    on_disk = {p.name: p.read_text() for p in RTL.iterdir() if p.is_file()}
    assert sorted(on_disk) == sorted(rendered), "rtl/ holds other files than `hwnorm generate` writes"
    stale = [name for name, text in rendered.items() if on_disk[name] != text]
    assert not stale, f"rtl/ is out of date for {stale}: run `hwnorm generate -o rtl`"


def test_every_generated_core_is_capi2_yaml(rendered):
    import yaml
    cores = {name: text for name, text in rendered.items() if name.endswith(".core")}
    assert cores
    for name, text in cores.items():
        core = yaml.safe_load(text)
        assert text.startswith("CAPI=2:") and set(core) == {"CAPI=2", "name", "description", "filesets", "targets"}
        assert core["targets"]["default"]["toplevel"] == name[:-5]


def test_rendering_is_deterministic(rendered):
    again = render(default_designs()[-2:])  # the cheap ones; the sync test covers the rest across runs
    for name in ("stt_encoder.v", "stt_decoder.v", "stt_encoder.core"):
        assert again[name] == rendered[name]
    machine_paths = {str(RTL.parent), str(Path.home()), str(Path.cwd())}
    for name, text in rendered.items():  # nothing that names this checkout or machine
        assert not [p for p in machine_paths if p in text], name


@pytest.mark.parametrize("design", [d.name for d in default_designs()])
def test_generated_verilog_lints_clean(design):
    clean, messages = lint(RTL / f"{design}.v", design, RTL / WAIVERS)
    assert clean, messages


def test_manifest_matches_the_components(rendered):
    manifest = json.loads(rendered[MANIFEST])
    designs = {d.name: d for d in default_designs()}
    assert [d["name"] for d in manifest["designs"]] == list(designs)
    for entry in manifest["designs"]:
        component, params = build(designs[entry["name"]])
        unused_ok(component)  # built for its ports only
        block = model_of(designs[entry["name"]])[0]
        assert (entry["latency"], entry["initiation_interval"]) == (block.latency, block.initiation_interval)
        ports = {p["name"]: p for p in entry["ports"]}
        assert ports["i__payload"]["width"] == len(Value.cast(component.i.payload))
        assert ports["o__payload"]["width"] == len(Value.cast(component.o.payload))
        assert ports["i__ready"]["direction"] == "output" and ports["o__ready"]["direction"] == "input"
        assert f"module {entry['name']}(" in rendered[entry["file"]]
        assert entry["verilog_lines"] == rendered[entry["file"]].count("\n")
        assert entry["parameters"]["spec_hash"] == params["spec_hash"]
    tfc = manifest["designs"][0]
    assert tfc["parameters"]["folding"]["MatMul_16"] == {"pe": 16, "simd": 49}


def test_user_folding_from_the_command_line(tmp_path, capsys):
    folding = tmp_path / "fold.toml"
    folding.write_text('MatMul_16 = { pe = 8, simd = 56 }\nMatMul_40 = { pe = 5, simd = 32 }\n')
    out = tmp_path / "rtl"
    model = str(data.path("models/TFC_1W1A.onnx"))
    assert main(["generate", model, "--folding", str(folding), "--name", "my_tfc", "--output", "raw",
                 "-o", str(out), "--lint"]) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    (entry,) = manifest["designs"]
    assert entry["name"] == "my_tfc" and entry["parameters"]["output"] == "raw"
    assert entry["parameters"]["folding"]["MatMul_16"] == {"pe": 8, "simd": 56}
    assert entry["initiation_interval"] == (784 // 56) * (64 // 8)
    assert "module my_tfc(" in (out / "my_tfc.v").read_text()
    assert "clean" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["--folding", "{fold}", "--name", "t"], "MatMul_16: PE=3 must divide its 64 output rows"),
    (["--name", "my top"], "not a legal Verilog identifier"),
    (["--name", "module"], "Verilog keyword"),
])
def test_bad_model_options_are_refused(tmp_path, capsys, args, message):
    folding = tmp_path / "fold.json"
    folding.write_text('{"MatMul_16": {"pe": 3}}')
    args = [a.replace("{fold}", str(folding)) for a in args]
    out = tmp_path / "rtl"
    assert main(["generate", str(data.path("models/TFC_1W1A.onnx")), "-o", str(out), *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_bad_design_file_leaves_previous_output_intact(tmp_path, capsys):
    out = tmp_path / "rtl"
    good = tmp_path / "good.toml"
    good.write_text('[[design]]\nname = "enc"\nkind = "stt_encoder"\ncodec = "backup"\n')
    assert main(["generate", str(good), "-o", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "bad.toml"
    bad.write_text('[[design]]\nname = "enc"\nkind = "stt_encoder"\ncodec = "backup+rearrange"\n\n'
                   '[[design]]\nname = "dec"\nkind = "stt_decoder"\ncodec = "fnw"\n')
    assert main(["generate", str(bad), "-o", str(out)]) == 2
    assert "no hardware codec yet" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("text,message", [
    ('[[design]]\nname = "a"\nkind = "gpu"\n', "unknown kind 'gpu'"),
    ('[[design]]\nname = "a b"\nkind = "mvu"\n', "not a legal Verilog identifier"),
    ('[[design]]\nname = "a"\nkind = "mvu"\nlayer = "MatMul_24"\nwidth = 3\n', "unknown field 'width'"),
    ('[[design]]\nname = "a"\nkind = "mvu"\nlayer = "nope"\n', "no mvu layer named 'nope'"),
    ('[[design]]\nname = "a"\nkind = "network"\nmodel = "missing.onnx"\n', "model 'missing.onnx' not found"),
    ('[[design]]\nname = "a"\nkind = "network"\noutput = "softmax"\n', "unknown output 'softmax'"),
    ('name = [\n', "not valid TOML"),
    ('[[design]]\nname = "a"\nkind = "network"\nmodel = 42\n', "field 'model' must be a string, got 42"),
    ('[[design]]\nname = "a"\nkind = "stt_encoder"\nblock_words = "four"\n', "'block_words' must be a whole number"),
    ('[[design]]\nname = "a"\nkind = "stt_encoder"\nblock_words = 4.0\n', "'block_words' must be a whole number"),
    ('[[design]]\nname = "a"\nkind = "stt_decoder"\ncells = 7\n', "field 'cells' must be a string, got 7"),
    ('[[design]]\nname = "a"\nkind = "mvu"\npe = true\n', "field 'pe' must be a whole number ≥ 1, got True"),
])
def test_design_file_errors(tmp_path, text, message):
    path = tmp_path / "d.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        for design in load_designs(path):
            model_of(design)


@pytest.mark.parametrize("rename", ["empty", "repeated", "scores", "hostile"])
def test_models_with_missing_repeated_or_hostile_node_names_generate(tmp_path, capsys, rename):
    """Exporters leave node names empty or repeat them, and names from a file are untrusted: every
    layer still gets a unique legal name, and a collision is said once."""
    import onnx

    model = onnx.load(str(data.path("models/TFC_1W1A.onnx")))
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul"]
    if rename == "empty":
        for n in model.graph.node:
            n.name = ""
    elif rename == "repeated":
        for n in matmuls:
            n.name = "fc"
    elif rename == "scores":
        matmuls[-1].name = "scores"
    else:
        matmuls[0].name = "x\n provider: {url: evil}\u202e|"
    folder = tmp_path / "a: b\nprovider: {url: evil}"  # a model path that would inject YAML keys unquoted
    folder.mkdir()
    path = folder / "renamed.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "rtl"
    assert main(["generate", str(path), "-o", str(out), "--name", "renamed"]) == 0
    err = capsys.readouterr().err
    assert ("node names repeated" in err) == (rename in ("repeated", "scores")) and "Traceback" not in err
    import yaml
    core = yaml.safe_load((out / "renamed.core").read_text())
    assert "provider" not in core and str(path) in core["description"]
    layers = json.loads((out / MANIFEST).read_text())["designs"][0]["parameters"]["folding"]
    # one layer per MatMul, plus the input quantizer and the scores: none lost to a name collision
    assert len(layers) == len(matmuls) + 2 and all(name.isidentifier() for name in layers)


def test_files_of_designs_no_longer_generated_are_removed_and_said(tmp_path, capsys):
    out = tmp_path / "rtl"
    both = tmp_path / "both.toml"
    both.write_text('[[design]]\nname = "enc"\nkind = "stt_encoder"\n\n[[design]]\nname = "dec"\nkind = "stt_decoder"\n')
    one = tmp_path / "one.toml"
    one.write_text('[[design]]\nname = "enc"\nkind = "stt_encoder"\n')
    assert main(["generate", str(both), "-o", str(out)]) == 0
    (out / "mine.v").write_text("// not hwnorm's\n")
    capsys.readouterr()
    assert main(["generate", str(one), "-o", str(out)]) == 0
    assert "removed dec.core, dec.v" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["enc.core", "enc.v", MANIFEST, "mine.v", WAIVERS]


def test_a_very_parallel_folding_is_announced_before_the_slow_conversion(monkeypatch):
    import hwnorm.generate as gen
    from hwnorm.generate import design_for_model
    converted = []
    monkeypatch.setattr(gen, "verilog_text", lambda component, name: converted.append(name) or "")
    monkeypatch.setattr(gen, "WIDE_FOLDING_LANES", 40_000)  # the real bound is 100k lanes (over a minute)
    wide = design_for_model("TFC_1W1A", "wide", folding={"MatMul_16": {"pe": 64, "simd": 784}})
    with pytest.warns(gen.SlowGeneration, match=r"wide: the folding has [\d,]+ parallel lanes .* takes about \d+ min"):
        gen.verilog_of(gen.plan_of(wide))
    assert converted == ["wide"]


def test_a_model_error_is_prefixed_once(tmp_path, capsys):
    import numpy as np
    import onnx
    from onnx import numpy_helper
    model = onnx.load(str(data.path("models/TFC_1W1A.onnx")))
    weights = next(i for i in model.graph.initializer if numpy_helper.to_array(i).shape == (64, 784))
    weights.CopyFrom(numpy_helper.from_array(np.full((64, 784), np.nan, np.float32), weights.name))
    onnx.save(model, str(tmp_path / "nan_weights.onnx"))
    assert main(["generate", str(tmp_path / "nan_weights.onnx"), "-o", str(tmp_path / "rtl")]) == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("hwnorm: error:")]
    assert line.count("nan_weights.onnx") == 1 and "non-finite values" in line, line


@pytest.mark.parametrize("where, text, message", [
    ("design", '[[design]]\nname = "a"\nkind = "network"\nfolding = "fast"\n', "field 'folding' must be a table, got 'fast'"),
    ("folding", '{"MatMul_16": {"pe": 4, "simd": "x"}}', "fold.json: folding.MatMul_16.simd must be a whole number ≥ 1, got 'x'"),
    ("folding", '{"MatMul_16": {"pe": 4.0}}', "fold.json: folding.MatMul_16.pe must be a whole number ≥ 1, got 4.0"),
])
def test_folding_of_the_wrong_type_is_named(tmp_path, capsys, where, text, message):
    path = tmp_path / ("d.toml" if where == "design" else "fold.json")
    path.write_text(text)
    argv = [str(path)] if where == "design" else ["TFC_1W1A", "--folding", str(path)]
    assert main(["generate", *argv, "-o", str(tmp_path / "rtl")]) == 2
    assert message in capsys.readouterr().err
