"""reports/ holds generated files: regenerate them and compare."""

import json
from pathlib import Path

import pytest

from hwnorm import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command, report", [("qbn", "qbn_tfc.json"), ("import", "tfc_ir.json")])
def test_report_is_in_sync(tmp_path, capsys, command, report):
    fresh = tmp_path / report
    assert cli.main([command, "-o", str(fresh)]) == 0
    committed = ROOT / "reports" / report
    assert json.loads(fresh.read_text()) == json.loads(committed.read_text()), \
        f"reports/{report} is stale: run `hwnorm {command} -o reports/{report}`"


@pytest.mark.parametrize("name", ["tfc", "tfc_thresholding", "tfc_mvu", "tfc_qbn", "stt_encoder", "stt_decoder"])
def test_design_report_is_in_sync(name):
    """Every default design has a report whose model figures (cycles, analytic resources) are the
    current code's; its RTL check found no mismatch. (Synthesis figures are checked against the
    model in tests/test_resources.py.)"""
    from hwnorm.estimate.cycles import design_cycles
    from hwnorm.estimate.resources import estimate_resources
    from hwnorm.generate import default_designs, model_of

    (design,) = [d for d in default_designs() if d.name == name]
    fig = json.loads((ROOT / "reports" / f"{name}.json").read_text())
    block = model_of(design)[0]
    stale = f"reports/{name}.json is stale: run `hwnorm report`"
    assert fig["cycles"] == design_cycles(block, name, fig["clock_mhz"] * 1e6).to_dict(), stale
    assert {t: r["estimate"] for t, r in fig["resources"].items()} == estimate_resources(block), stale
    assert fig["rtl"]["mismatches"] == 0 and fig["rtl"]["full_rate"]["beats_at_predicted_clock"] == \
        fig["rtl"]["full_rate"]["beats"]
    for file in (f"{name}.md", f"{name}_cycles.png", f"{name}_resources.png"):
        assert (ROOT / "reports" / file).exists(), f"reports/{file} is missing: run `hwnorm report`"
    assert f"[{name}]({name}.md)" in (ROOT / "reports" / "designs.md").read_text()
