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
