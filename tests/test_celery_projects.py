"""Whole fixture projects (compose files, Dockerfiles, start scripts and Python) checked through the CLI.

The expected findings were worked out by reading each project, not by running
xgen-audit: every finding of every rule is listed as (rule, file relative to
the project, line).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xgen_audit.cli.app import app

ROOT = Path(__file__).resolve().parents[1] / "fixtures"
PROJECTS = ROOT / "projects"

Finding = tuple[str, str, int]

EXPECTED: dict[str, set[Finding]] = {
    # Production settings (chosen by DJANGO_SETTINGS_MODULE) turn late acknowledgement
    # on, misspell the prefetch setting and keep Redis's one-hour visibility timeout
    # below the 90-minute limit of rebuild_search_index. Four processes run under 2 CPUs.
    "django-shop": {
        ("XG303", "compose.yaml", 15),
        ("XG005", "config/settings/production.py", 9),
        ("XG403", "config/celery_app.py", 8),
        ("XG404", "config/settings/production.py", 10),
    },
    # celeryconfig.py mixes one old name into new ones, sets no startup retry, no
    # visibility timeout and no result backend while the web view calls `.get()`.
    # The thread pool is not compared with the CPU limit.
    "flask-reports": {
        ("XG006", "celeryconfig.py", 13),
        ("XG201", "reports/worker.py", 4),
        ("XG404", "reports/worker.py", 4),
        ("XG504", "reports/web.py", 11),
    },
    # The start script runs 3 processes (CELERY_CONCURRENCY) under 2 CPUs, and 3 x
    # 300000 KiB exceeds the 512 MiB limit. Countdowns on Redis need a visibility timeout.
    "mailer": {
        ("XG303", "compose/production/worker/start", 7),
        ("XG303", "mailer/celery_app.py", 12),
        ("XG404", "mailer/celery_app.py", 3),
    },
}


def check_project(folder: Path) -> dict:
    result = CliRunner().invoke(app, ["check", "--format", "json", str(folder)])
    assert result.exit_code in (0, 1), f"{folder}: exit code {result.exit_code}\n{result.output}"
    return json.loads(result.stdout)


def findings_of(report: dict, folder: Path) -> set[Finding]:
    return {
        (finding["rule"], Path(finding["file"]).resolve().relative_to(folder.resolve()).as_posix(), finding["line"])
        for finding in report["findings"]
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_project_findings(name: str):
    folder = PROJECTS / name
    report = check_project(folder)

    actual = findings_of(report, folder)

    missing = sorted(EXPECTED[name] - actual)
    unexpected = sorted(actual - EXPECTED[name])
    assert not missing, f"{name}: expected findings not reported: {missing}"
    assert not unexpected, f"{name}: findings not expected: {unexpected}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_project_has_no_unknown_checks(name: str):
    report = check_project(PROJECTS / name)
    unknown = [(check["rule"], check["reason"]) for check in report["checks"] if check["status"] == "unknown"]
    assert not unknown, f"{name}: checks left unknown: {unknown}"


def test_projects_listed():
    folders = sorted(path.name for path in PROJECTS.iterdir() if path.is_dir())
    assert folders == sorted(EXPECTED)


def test_django_reads_production_settings():
    report = check_project(PROJECTS / "django-shop")
    statuses = {check["rule"]: check["status"] for check in report["checks"]}
    # base.py turns late acknowledgement off; production.py, which the worker loads, turns it on.
    assert statuses["XG401"] == "pass"
    assert statuses["XG402"] == "pass"


def test_django_typo_suggests_namespaced_name():
    report = check_project(PROJECTS / "django-shop")
    messages = [finding["message"] for finding in report["findings"] if finding["rule"] == "XG005"]
    assert len(messages) == 1
    assert "`CELERY_WORKER_PREFETCH_MULTIPLIER`" in messages[0]


def test_start_script_concurrency_from_environment():
    report = check_project(PROJECTS / "mailer")
    messages = [finding["message"] for finding in report["findings"] if finding["rule"] == "XG303"]
    assert any("3 prefork processes" in message for message in messages)
    assert any("300000 KiB" in message for message in messages)


def test_xgenerator_celery_findings():
    folder = ROOT / "xgenerator"
    report = check_project(folder)

    celery = {item for item in findings_of(report, folder) if item[0] in {"XG201", "XG401", "XG404", "XG504"}}

    # The review's configuration: no startup retry and early acknowledgement. The
    # result backend comes from CELERY_RESULT_BACKEND in .env, and no task is delayed.
    assert celery == {("XG201", "app/celery_app.py", 11), ("XG401", "app/celery_app.py", 11)}


def test_xgenerator_hardened_passes():
    result = CliRunner().invoke(app, ["check", str(ROOT / "xgenerator-hardened")])
    assert result.exit_code == 0, result.output
