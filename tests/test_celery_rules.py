"""Per-rule fixtures of the Celery rules, run through the CLI.

Each case under fixtures/celery-rules/<ID>/<fail|pass|unknown>/<case>/ is a small
project with an `expected.json` written by hand: the expected status of rule <ID>
and its findings as (rule, file relative to the case, line, severity).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xgen_audit.cli.app import app
from xgen_audit.engine import registry
from xgen_audit.rules_meta import Area, load_catalog

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "celery-rules"
STATUS_BY_FOLDER = {"fail": {"fail"}, "pass": {"pass", "not_applicable"}, "unknown": {"unknown"}}


def case_dirs() -> list[Path]:
    return sorted(path.parent for path in FIXTURES.glob("*/*/*/expected.json"))


def celery_rule_ids() -> list[str]:
    return [rule_id for rule_id, meta in load_catalog().items() if meta.area is Area.CELERY]


def run_check(case: Path) -> dict:
    result = CliRunner().invoke(app, ["check", "--format", "json", str(case)])
    assert result.exit_code in (0, 1), f"{case}: exit code {result.exit_code}\n{result.output}"
    return json.loads(result.stdout)


def relative(file: str, case: Path) -> str:
    return Path(file).resolve().relative_to(case.resolve()).as_posix()


def describe(items: Counter) -> str:
    return "\n".join(f"  {rule} {severity} at {file}:{line}" for (rule, file, line, severity) in sorted(items)) or "  (none)"


CASES = [pytest.param(case, id=case.relative_to(FIXTURES).as_posix()) for case in case_dirs()]


def test_cases_present():
    assert CASES, f"no case with an expected.json under {FIXTURES}"


@pytest.mark.parametrize("case", CASES)
def test_celery_rule_case(case: Path):
    rule_id = case.parents[1].name
    folder = case.parent.name
    expected_data = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    assert expected_data["status"] in STATUS_BY_FOLDER[folder], (
        f"expected status {expected_data['status']} does not fit folder {folder}/"
    )

    report = run_check(case)

    checks = [check for check in report["checks"] if check["rule"] == rule_id]
    assert len(checks) == 1, f"expected one check of {rule_id}, got {checks}"
    assert checks[0]["status"] == expected_data["status"], (
        f"{rule_id} status is {checks[0]['status']} (reason: {checks[0].get('reason')})"
    )

    expected: Counter = Counter(
        (item["rule"], item["file"], item["line"], item["severity"]) for item in expected_data["findings"]
    )
    actual: Counter = Counter(
        (finding["rule"], relative(finding["file"], case), finding["line"], finding["severity"])
        for finding in report["findings"]
        if finding["rule"] == rule_id
    )
    assert actual == expected, (
        f"findings of {rule_id} differ\nmissing:\n{describe(expected - actual)}\n"
        f"unexpected:\n{describe(actual - expected)}"
    )


def test_unknown_reason_given():
    for case in case_dirs():
        if case.parent.name != "unknown":
            continue
        rule_id = case.parents[1].name
        report = run_check(case)
        check = next(check for check in report["checks"] if check["rule"] == rule_id)
        assert check["reason"], f"{case.relative_to(FIXTURES)}: unknown {rule_id} without a reason"


@pytest.mark.parametrize("rule_id", celery_rule_ids())
def test_celery_rule_registered_with_cases(rule_id: str):
    assert rule_id in registry(), f"{rule_id} is in the catalogue but no function is registered for it"
    for folder in ("fail", "pass"):
        cases = list((FIXTURES / rule_id / folder).glob("*/expected.json"))
        assert cases, f"{rule_id} has no case in {FIXTURES / rule_id / folder}"


def test_celery_rules_in_catalogue():
    expected = {"XG004", "XG005", "XG006", "XG201", "XG303", "XG401", "XG402", "XG403", "XG404", "XG504"}
    assert expected <= set(celery_rule_ids())


def test_fixture_folders_name_celery_rules():
    folders = {path.name for path in FIXTURES.iterdir() if path.is_dir()}
    stray = sorted(folders - set(celery_rule_ids()))
    assert not stray, f"folders that name no Celery rule: {stray}"


def test_message_names_environment_variable():
    case = FIXTURES / "XG401" / "fail" / "set-false-from-environment"
    report = run_check(case)
    messages = [finding["message"] for finding in report["findings"] if finding["rule"] == "XG401"]
    assert len(messages) == 1
    assert "from CELERY_ACKS_LATE, default False" in messages[0]


def test_xg201_message_does_not_claim_warning_by_default():
    report = run_check(FIXTURES / "XG201" / "fail" / "unset")
    messages = [finding["message"] for finding in report["findings"] if finding["rule"] == "XG201"]
    assert len(messages) == 1
    assert "Warning" not in messages[0]
    assert "broker_connection_retry" in messages[0]


def test_xg005_message_suggests_closest_name():
    report = run_check(FIXTURES / "XG005" / "fail" / "typo")
    messages = sorted(finding["message"] for finding in report["findings"] if finding["rule"] == "XG005")
    assert any("`task_ack_late`" in message and "`task_acks_late`" in message for message in messages)
    assert any("`worker_prefetch_multipler`" in message and "`worker_prefetch_multiplier`" in message for message in messages)


def test_xg005_namespace_suggestion_keeps_prefix():
    report = run_check(FIXTURES / "XG005" / "fail" / "namespace-typo")
    messages = [finding["message"] for finding in report["findings"] if finding["rule"] == "XG005"]
    assert len(messages) == 1
    assert "`CELERY_TASK_ACKS_LATE`" in messages[0]


def test_xg303_message_names_values():
    report = run_check(FIXTURES / "XG303" / "fail" / "concurrency-over-cpus")
    messages = [finding["message"] for finding in report["findings"] if finding["rule"] == "XG303"]
    assert len(messages) == 1
    assert "8 prefork processes" in messages[0]
    assert "`worker`" in messages[0]


def test_no_celery_app_is_not_applicable(tmp_path: Path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  redis:\n    image: redis:7\n    volumes:\n      - data:/data\nvolumes:\n  data:\n",
        encoding="utf-8",
    )
    report = run_check(tmp_path)
    statuses = {check["rule"]: check["status"] for check in report["checks"]}
    for rule_id in celery_rule_ids():
        assert statuses[rule_id] == "not_applicable", f"{rule_id} is {statuses[rule_id]} without a Celery app"


def write_shared_project(root: Path) -> None:
    """Write one app run by two workers whose environments differ, so each gets its own analysis."""
    (root / "proj").mkdir()
    (root / "proj" / "__init__.py").write_text("", encoding="utf-8")
    (root / "proj" / "celery.py").write_text(
        'from celery import Celery\n\napp = Celery("proj")\napp.config_from_object("proj.celeryconfig")\n',
        encoding="utf-8",
    )
    (root / "proj" / "celeryconfig.py").write_text('broker_url = "redis://redis:6379/0"\n', encoding="utf-8")
    (root / "compose.yaml").write_text(
        "services:\n"
        "  default-worker:\n    build: .\n    command: celery -A proj worker -Q default --concurrency 2\n"
        "    environment:\n      QUEUE: default\n"
        "  mail-worker:\n    build: .\n    command: celery -A proj worker -Q mail --concurrency 2\n"
        "    environment:\n      QUEUE: mail\n",
        encoding="utf-8",
    )


def test_shared_configuration_reported_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_shared_project(tmp_path)
    monkeypatch.chdir(tmp_path)

    report = run_check(Path("."))

    findings = [finding for finding in report["findings"] if finding["rule"] == "XG201"]
    assert len(findings) == 1
    assert findings[0]["file"] == "proj/celery.py"


def test_finding_path_outside_working_folder(tmp_path: Path):
    write_shared_project(tmp_path)

    report = run_check(tmp_path)

    findings = [finding for finding in report["findings"] if finding["rule"] == "XG201"]
    assert len(findings) == 1
    assert Path(findings[0]["file"]).resolve() == (tmp_path / "proj" / "celery.py").resolve()
