"""``hwnorm flow``: the design config, the folding search, the whole flow, and Ctrl-C safety."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hwnorm.cli import main
from hwnorm.io import TEMP_SUFFIX
from hwnorm.config import FlowConfig, config_from_dict, load_config
from hwnorm.defaults import DEFAULT_CLOCK_MHZ
from hwnorm.flow import choose_folding, folding_for_interval
from hwnorm.generate import default_designs, network_of
from tests.helpers import terminal_signals

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tfc_net():
    (d,) = [d for d in default_designs() if d.kind == "network"]
    return network_of(d)


# ---------------------------------------------------------------- config
def test_an_empty_config_is_the_embedded_default():
    c = config_from_dict({})
    assert c == FlowConfig(origin="<config>") and c.model == "TFC_1W1A" and c.vectors == 500


def test_a_full_config_loads(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('model = "TFC_1W1A"\nname = "mine"\nclock_mhz = 150\ntarget = "ice40"\nvectors = 20\n'
                    'synth = false\n[folding]\nMatMul_16 = { pe = 8, simd = 28 }\n'
                    '[auto_folding]\nthroughput = 1e6\n[stt]\ncodec = "rearrange"\n')
    c = load_config(path)
    assert (c.name, c.clock_mhz, c.target, c.vectors, c.synth) == ("mine", 150.0, "ice40", 20, False)
    assert c.folding == {"MatMul_16": {"pe": 8, "simd": 28}} and c.throughput == 1e6 and c.codec == "rearrange"
    assert c.base == tmp_path


@pytest.mark.parametrize("doc, message", [
    ({"colour": 1}, "unknown key 'colour'; allowed: activations, auto_folding, clock_mhz"),
    ({"activations": "fast"}, "activations = 'fast' is not allowed; allowed: thresholds, requant, auto"),
    ({"activations": {"MatMul_20": "x"}}, "activations.MatMul_20 = 'x' is not allowed"),
    ({"target": "stratix"}, "target = 'stratix' is not allowed; allowed: ice40, ecp5, xilinx"),
    ({"vectors": 0}, "vectors must be positive"),
    ({"vectors": True}, "vectors must be int"),
    ({"synth": 1}, "synth must be bool"),
    ({"clock_mhz": "fast"}, "clock_mhz must be float"),
    ({"clock_mhz": float("nan")}, "clock_mhz must be finite"),
    ({"simulator": "modelsim"}, "allowed: auto, verilator, icarus, none"),
    ({"auto_folding": {"speed": 3}}, "unknown key auto_folding.'speed'; allowed: throughput, lut_budget"),
    ({"stt": {"codec": "backup"}}, "stt.codec = 'backup' is not allowed"),
    ({"folding": {"MatMul_16": {"pe": "x"}}}, "folding.MatMul_16.pe must be a whole number ≥ 1, got 'x'"),
    ({"folding": {"MatMul_16": {"pe": 0}}}, "folding.MatMul_16.pe must be a whole number ≥ 1, got 0"),
    ({"folding": {"MatMul_16": {"lanes": 2}}}, "folding.MatMul_16: unknown key 'lanes'; allowed: pe, simd"),
    ({"folding": [1]}, "[folding] must be a table"),
    ({"name": "2fast"}, "name"),
])
def test_bad_configs_name_the_key_and_what_is_allowed(doc, message):
    with pytest.raises(ValueError, match=None) as e:
        config_from_dict(doc, "c.toml")
    assert message in str(e.value) and str(e.value).startswith("c.toml")


def test_the_command_refuses_a_bad_config_cleanly(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("vectors = [\n")
    assert main(["flow", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    bad.write_text('[folding]\nMatMul_16 = { pe = 5, simd = 49 }\n')
    assert main(["flow", str(bad), "--sim", "none", "--no-synth"]) == 2
    err = capsys.readouterr().err
    assert "MatMul_16: PE=5 must divide its 64 output rows; allowed: 1, 2, 4, 8, 16, 32, 64" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- folding search
def _stage_cycles(net, folding):
    for layer in net.layers:
        f = folding[layer.name]
        if layer.kind == "mvu":
            yield layer, (layer.out_features // f["pe"]) * (layer.in_features // f["simd"]), f["pe"] * f["simd"]
        else:
            yield layer, layer.in_features // f["pe"], f["pe"]


@pytest.mark.parametrize("limit", [1, 7, 16, 64, 200, 4096])
def test_the_folding_for_an_interval_is_the_cheapest_that_reaches_it(tfc_net, limit):
    folding = folding_for_interval(tfc_net, limit, {})
    for layer, cycles, width in _stage_cycles(tfc_net, folding):
        assert cycles <= limit
        if layer.kind == "mvu":  # no cheaper PE × SIMD reaches the interval
            for pe in range(1, layer.out_features + 1):
                for simd in range(1, layer.in_features + 1):
                    if layer.out_features % pe == 0 and layer.in_features % simd == 0 and pe * simd < width:
                        assert (layer.out_features // pe) * (layer.in_features // simd) > limit


def test_throughput_and_lut_budget_choose_foldings(tfc_net):
    from hwnorm.estimate.resources import estimate_resources
    from hwnorm.generate import Design, model_of

    def resources(folding):
        block = model_of(Design("t", "network", {"folding": folding}, "test"))[0]
        return estimate_resources(block, ["ice40"])["ice40"]

    def luts(folding):
        return resources(folding)["lut"]

    config = config_from_dict({"auto_folding": {"throughput": 1e6}})
    fold, how = choose_folding(config, tfc_net, resources)
    interval = config.clock_mhz * 1e6 / 1e6  # clocks per image that reach 1e6 images/s at the config's clock
    assert max(c for _, c, _ in _stage_cycles(tfc_net, fold)) <= interval and "1e+06 images/s" in how
    fold, how = choose_folding(config_from_dict({"auto_folding": {"lut_budget": 4000}, "target": "ice40"}),
                               tfc_net, resources)
    assert luts(fold) <= 4000 and "within 4000 LUTs" in how
    interval = max(c for _, c, _ in _stage_cycles(tfc_net, fold))
    faster = folding_for_interval(tfc_net, interval - 1, {})
    assert faster is None or luts(faster) > 4000  # the fastest that fits
    fixed = {"MatMul_16": {"pe": 4, "simd": 16}}
    fold, _ = choose_folding(config_from_dict({"folding": fixed, "auto_folding": {"throughput": 1e5}}), tfc_net,
                             resources)
    assert fold["MatMul_16"] == fixed["MatMul_16"]
    with pytest.raises(ValueError, match="more than one image per clock"):
        choose_folding(config_from_dict({"auto_folding": {"throughput": 1e9}}), tfc_net, resources)
    with pytest.raises(ValueError, match="no folding fits lut_budget = 10 on ecp5; the smallest needs about"):
        choose_folding(config_from_dict({"auto_folding": {"lut_budget": 10}}), tfc_net, resources)


# ---------------------------------------------------------------- the whole flow
def test_flow_end_to_end_refreshes_one_design_among_others(tmp_path, capsys, any_sim):
    rtl, reports = tmp_path / "rtl", tmp_path / "reports"
    shutil.copytree(ROOT / "rtl", rtl)
    shutil.copytree(ROOT / "reports", reports)
    cfg = tmp_path / "flow.toml"
    cfg.write_text(f'vectors = 40\nsynth = false\nsimulator = "{any_sim}"\nrtl_dir = "{rtl}"\nreports_dir = "{reports}"\n'
                   'score_bits = 12\n[auto_folding]\nthroughput = 2e6\n')
    assert main(["flow", str(cfg)]) == 0
    out = capsys.readouterr()
    assert "40 images on" in out.out and ": 0 mismatches" in out.out and "golden top-1 92.96%" in out.out
    for k, stage in enumerate(("import", "folding", "verilog", "verify", "estimate", "report"), 1):
        assert f"[{k}/6] {stage}" in out.err
    manifest = json.loads((rtl / "manifest.json").read_text())
    assert [d["name"] for d in manifest["designs"]] == [d.name for d in default_designs()]  # others kept, in order
    tfc = manifest["designs"][0]
    assert tfc["initiation_interval"] <= DEFAULT_CLOCK_MHZ * 1e6 / 2e6 and \
        tfc["verilog_sha256"] == hashlib.sha256((rtl / "tfc.v").read_bytes()).hexdigest()
    index = (reports / "designs.md").read_text()
    assert all(f"[{d.name}]({d.name}.md)" in index for d in default_designs())
    fig = json.loads((reports / "tfc.json").read_text())
    assert fig["rtl"]["vectors"] == 40 and fig["parameters"]["score_bits"] == 12
    assert fig["parameters"]["layers"][-1]["out_bits"] == 12          # the configured score width
    assert not any("synthesis" in r for r in fig["resources"].values())  # synth = false: the model only


def test_ctrl_c_leaves_rtl_and_reports_whole(tmp_path, any_sim):
    """Interrupt the flow at several moments: every time, rtl/ is one consistent set (the manifest
    names the Verilog beside it by hash) and reports/ still has every file it had."""
    rtl, reports = tmp_path / "rtl", tmp_path / "reports"
    shutil.copytree(ROOT / "rtl", rtl)
    shutil.copytree(ROOT / "reports", reports)
    before = sorted(p.name for p in reports.iterdir())
    cfg = tmp_path / "flow.toml"
    cfg.write_text(f'vectors = 20\nsynth = false\nsimulator = "{any_sim}"\nrtl_dir = "{rtl}"\n'
                   f'reports_dir = "{reports}"\n[auto_folding]\nthroughput = 4.5e6\n')  # 33 clocks at 150 MHz
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    interrupted = 0
    for done in range(1, 5):  # Ctrl-C once stage `done` has printed its line: the next one is under way
        proc = subprocess.Popen([sys.executable, "-m", "hwnorm.entry", "flow", str(cfg)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=terminal_signals)
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith(f"[{done}/"):
                proc.send_signal(signal.SIGINT)
                break
        _, rest = proc.communicate(timeout=300)
        err = "".join(seen) + rest
        assert "Traceback" not in err, err
        assert proc.returncode in (0, 130), err
        interrupted += proc.returncode == 130 and "interrupted; every output set is either written whole" in err
        manifest = json.loads((rtl / "manifest.json").read_text())
        (tfc,) = [d for d in manifest["designs"] if d["name"] == "tfc"]
        assert tfc["verilog_sha256"] == hashlib.sha256((rtl / "tfc.v").read_bytes()).hexdigest()
        assert not [p for p in rtl.iterdir() if p.name.endswith(TEMP_SUFFIX)]
        assert set(before) <= {p.name for p in reports.iterdir()}
        assert not [p for p in reports.iterdir() if p.name.endswith(TEMP_SUFFIX)]
    assert interrupted, "no run was interrupted"


@pytest.mark.parametrize("text, message", [
    ('energy_table = "nope"\n', "energy_table: "),
    ('[stt]\ncells = "nope.toml"\n', "stt.cells: nope.toml: cannot read cell table"),
    ('rtl_dir = "a_file/rtl"\n', "rtl_dir = 'a_file/rtl': a_file is not a folder"),
    ('simulator = "icarus"\nreports_dir = "a_file/x"\n', "reports_dir = 'a_file/x': a_file is not a folder"),
])
def test_what_would_fail_late_is_checked_before_any_work(tmp_path, monkeypatch, capsys, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")
    (tmp_path / "flow.toml").write_text(text)
    import hwnorm.flow

    def no_import(design):
        raise AssertionError("the model was imported before the check")
    monkeypatch.setattr(hwnorm.flow, "network_of", no_import)  # before import, folding, co-simulation
    assert main(["flow", "flow.toml"]) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "flow.toml"]


def test_one_flow_imports_the_model_once_and_builds_each_block_once(tmp_path, monkeypatch):
    """Each stage's product is made once and handed on: one walk of the ONNX graph, one network
    block, one Amaranth top (co-simulation and synthesis read the Verilog text), and the folding
    facts the search, the automatic folding and the network's check share are each computed once."""
    import hwnorm.dataflow
    import hwnorm.estimate.design
    import hwnorm.generate
    import hwnorm.qonnx
    from hwnorm.estimate.synthesis import ToolError
    from hwnorm.flow import run_flow

    monkeypatch.setattr(hwnorm.generate, "_MODELS", {})   # a fresh process: nothing imported yet
    counts = {"walks": 0, "network blocks": 0, "tops": 0, "synthesized": 0}

    def counting(cls, method, key):
        original = getattr(cls, method)

        def counted(self, *args, **kwargs):
            counts[key] += 1
            return original(self, *args, **kwargs)
        monkeypatch.setattr(cls, method, counted)
    counting(hwnorm.qonnx._Walk, "__init__", "walks")
    counting(hwnorm.dataflow.NetworkBlock, "__init__", "network blocks")
    counting(hwnorm.dataflow.NetworkBlock, "component", "tops")

    def synthesize(text, name, target):  # Yosys is not run here: the test is about what reaches it
        counts["synthesized"] += 1
        assert f"module {name}" in text
        raise ToolError("not run in this test")
    monkeypatch.setattr(hwnorm.estimate.design, "synthesize", synthesize)
    config = config_from_dict({"simulator": "none", "target": "ecp5", "fmax": False,
                               "rtl_dir": str(tmp_path / "rtl"), "reports_dir": str(tmp_path / "reports"),
                               "model": "TFC_1W1A"})
    result = run_flow(config, say=lambda line: None)
    # Yosys runs once per target, on the one top: TFC's iCE40 estimate (~9.7k LUTs) is over the
    # HX8K's 7,680 by less than the model's error, so it is synthesized too (a part the estimate
    # rules out is skipped: tests/test_devices.py)
    assert counts == {"walks": 1, "network blocks": 1, "tops": 1, "synthesized": 3}
    assert all("synthesis_failed" in result.figures["resources"][t] for t in ("ecp5", "ice40", "xilinx"))

    # The folding facts are kept per layer: checking the same folding again builds no block.
    net = hwnorm.generate.network_of(hwnorm.flow.flow_design(config, {}))
    built = []
    for kind in {type(layer) for layer in net.layers}:
        monkeypatch.setattr(kind, "block", lambda self, fold, original=kind.block: built.append(self.name)
                            or original(self, fold))
    hwnorm.dataflow.check_folding(net, {})
    assert built == []
