"""reports/ holds generated files: regenerate them and compare."""

import json
from pathlib import Path

from hwnorm import cli

ROOT = Path(__file__).resolve().parents[1]


def test_qbn_report_is_in_sync(tmp_path, capsys):
    fresh = tmp_path / "qbn_tfc.json"
    assert cli.main(["qbn", "-o", str(fresh)]) == 0
    committed = ROOT / "reports" / "qbn_tfc.json"
    assert json.loads(fresh.read_text()) == json.loads(committed.read_text()), \
        "reports/qbn_tfc.json is stale: run `hwnorm qbn -o reports/qbn_tfc.json`"


def test_tfc_ir_report_is_in_sync(tmp_path, capsys):
    fresh = tmp_path / "tfc_ir.json"
    assert cli.main(["import", "-o", str(fresh)]) == 0
    committed = ROOT / "reports" / "tfc_ir.json"
    assert json.loads(fresh.read_text()) == json.loads(committed.read_text()), \
        "reports/tfc_ir.json is stale: run `hwnorm import -o reports/tfc_ir.json`"
