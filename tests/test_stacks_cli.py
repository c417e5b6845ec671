"""Stacks as a user checks them: discovery in folders, `-f` lists, configured stacks, profiles."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xgen_audit.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
STACKS = ROOT / "fixtures" / "stacks"
CORPUS = ROOT.parent / "shared" / "corpus" / "compose"


def check_json(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["check", "--format", "json", *args])
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def located(report: dict, stack_suffix: str | None = None) -> set[tuple]:
    return {
        (Path(item["file"]).name, item["line"], item["rule"], item["severity"])
        for item in report["findings"]
        if stack_suffix is None or (item["stack"] or "").endswith(stack_suffix)
    }


@pytest.fixture(autouse=True)
def _in_repository(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_folder_gives_development_and_production_stacks():
    _exit_code, report = check_json("fixtures/stacks/prod-reset")
    stacks = {item["name"]: item for item in report["stacks"]}
    development = stacks["fixtures/stacks/prod-reset/compose.yaml+compose.override.yml"]
    production = stacks["fixtures/stacks/prod-reset/compose.yaml+compose.prod.yaml"]
    assert development["environment"] == "development"
    assert production["environment"] == "production"
    assert production["files"] == [
        "fixtures/stacks/prod-reset/compose.yaml",
        "fixtures/stacks/prod-reset/compose.prod.yaml",
    ]


def test_production_stack_with_reset_passes():
    exit_code, report = check_json("-f", "fixtures/stacks/prod-reset/compose.yaml", "-f",
                                   "fixtures/stacks/prod-reset/compose.prod.yaml", "--env", "production")
    assert exit_code == 0
    assert report["findings"] == []
    statuses = {check["rule"]: check["status"] for check in report["checks"]}
    assert statuses["XG110"] == "pass"
    assert statuses["XG601"] == "pass"


def test_development_stack_reports_dev_patterns_as_info():
    _exit_code, report = check_json("fixtures/stacks/prod-reset")
    development = located(report, "compose.override.yml")
    assert ("compose.override.yml", 4, "XG110", "info") in development
    assert ("compose.yaml", 9, "XG601", "info") in development
    assert ("compose.yaml", 17, "XG601", "info") in development
    # The base file's all-interfaces publish stays an error even in development.
    assert ("compose.yaml", 7, "XG110", "error") in development


def test_prod_file_adding_bind_mount_fails_at_prod_line():
    exit_code, report = check_json("fixtures/stacks/prod-adds-bind")
    assert exit_code == 1
    binds = {item for item in located(report) if item[2] == "XG601"}
    assert binds == {
        ("docker-compose.prod.yml", 4, "XG601", "warning"),
        ("docker-compose.prod.yml", 8, "XG601", "warning"),
    }


def test_same_base_problem_reported_once_per_stack():
    _exit_code, report = check_json("fixtures/stacks/prod-reset")
    base_findings = [
        item for item in report["findings"]
        if item["file"].endswith("prod-reset/compose.yaml") and item["rule"] == "XG202"
    ]
    assert len(base_findings) == 1
    assert base_findings[0]["stack"].endswith("compose.override.yml")


def test_extends_finding_points_into_other_file():
    _exit_code, report = check_json("fixtures/stacks/extends-other-file")
    files = {Path(item["file"]).as_posix() for item in report["findings"]}
    assert "fixtures/stacks/extends-other-file/common/services.yml" in files
    bind = next(item for item in report["findings"] if item["rule"] == "XG601")
    assert "/work/" not in bind["message"] or bind["message"].count("./") >= 1
    assert "`./fixtures/stacks/extends-other-file/common/" in bind["message"]


def test_env_file_value_used_for_port():
    _exit_code, report = check_json("fixtures/stacks/env-port")
    port = next(item for item in report["findings"] if item["rule"] == "XG110")
    assert "host port 6380" in port["message"]
    assert port["line"] == 5


def test_env_file_option_replaces_dotenv(tmp_path):
    override = tmp_path / "ci.env"
    override.write_text("REDIS_PORT=7000\nREDIS_BIND=127.0.0.1\n")
    _exit_code, report = check_json("--env-file", str(override), "fixtures/stacks/env-port/compose.yaml")
    port = next(item for item in report["findings"] if item["rule"] == "XG110")
    assert "127.0.0.1:7000" in port["message"]
    assert port["severity"] == "warning"


def test_profile_hides_debug_redis_until_activated():
    _exit_code, report = check_json("fixtures/stacks/debug-profile")
    assert not any(item["service"] == "redis-debug" for item in report["findings"])
    assert report["stacks"][0]["dropped_services"] == {"commander": ["debug", "tools"], "redis-debug": ["debug"]}
    _exit_code, report = check_json("--profile", "debug", "fixtures/stacks/debug-profile")
    published = [item for item in report["findings"] if item["rule"] == "XG110"]
    assert [item["service"] for item in published] == ["redis-debug"]


def test_use_environment_only_when_asked(monkeypatch):
    monkeypatch.setenv("REDIS_BIND", "127.0.0.1")
    _exit_code, report = check_json("fixtures/stacks/env-port/compose.yaml")
    port = next(item for item in report["findings"] if item["rule"] == "XG110")
    assert port["severity"] == "error"
    _exit_code, report = check_json("--use-environment", "fixtures/stacks/env-port/compose.yaml")
    port = next(item for item in report["findings"] if item["rule"] == "XG110")
    assert port["severity"] == "warning"


def test_required_variable_missing_is_xg007(tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  redis:\n    image: redis:7\n    command: redis-server --requirepass ${PW:?set PW}\n"
    )
    exit_code, report = check_json(str(tmp_path / "compose.yaml"))
    assert exit_code == 1
    missing = [item for item in report["findings"] if item["rule"] == "XG007"]
    assert [(item["line"], item["severity"]) for item in missing] == [(4, "error")]
    (tmp_path / ".env").write_text("PW=x\n")
    _exit_code, report = check_json(str(tmp_path / "compose.yaml"))
    assert not any(item["rule"] == "XG007" for item in report["findings"])


def test_compose_file_variable_in_dotenv_selects_files(tmp_path):
    shutil.copytree(STACKS / "prod-reset", tmp_path / "project")
    project = tmp_path / "project"
    (project / ".env").write_text("COMPOSE_FILE=compose.yaml:compose.prod.yaml\n")
    _exit_code, report = check_json(str(project))
    names = [item["name"] for item in report["stacks"]]
    assert names == [
        f"{project.as_posix()}/COMPOSE_FILE",
        f"{project.as_posix()}/compose.yaml+compose.override.yml",
    ]
    production = next(item for item in report["stacks"] if item["name"].endswith("COMPOSE_FILE"))
    assert [Path(name).name for name in production["files"]] == ["compose.yaml", "compose.prod.yaml"]
    assert not any(item["stack"] == names[0] for item in report["findings"])


def test_configured_stacks_in_pyproject(tmp_path, monkeypatch):
    shutil.copytree(STACKS / "prod-reset", tmp_path / "deploy")
    (tmp_path / "pyproject.toml").write_text(
        "[tool.xgen-audit.stacks.production]\n"
        'files = ["deploy/compose.yaml", "deploy/compose.prod.yaml"]\n'
        'env = "production"\n'
    )
    monkeypatch.chdir(tmp_path)
    exit_code, report = check_json()
    assert [item["name"] for item in report["stacks"]] == ["production"]
    assert exit_code == 0
    result = CliRunner().invoke(app, ["check", "--stack", "staging"])
    assert result.exit_code == 2
    assert "unknown stack staging" in result.stderr


def test_text_header_names_files_and_profiles():
    result = CliRunner().invoke(app, ["check", "--color", "never", "--profile", "debug", "fixtures/stacks/debug-profile"])
    assert "profiles: debug" in result.stdout


@pytest.mark.skipif(not (CORPUS / "MANIFEST.tsv").is_file(), reason=f"corpus not found at {CORPUS}")
def test_corpus_pairs_check_as_stacks():
    """Every paired corpus file set loads as one stack without a crash."""
    rows = (CORPUS / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[1:]
    pairs = set()
    for row in rows:
        name, paired = row.split("\t")[0], row.split("\t")[5]
        for other in paired.split(","):
            if other and other != "-":
                pairs.add(tuple(sorted((name, other))))
    assert pairs
    for first, second in sorted(pairs):
        exit_code, report = check_json("-f", os.fspath(CORPUS / first), "-f", os.fspath(CORPUS / second))
        assert exit_code in (0, 1), (first, second)
        assert report["stacks"][0]["files"][:2] == [
            os.fspath(CORPUS / first).replace(os.sep, "/"),
            os.fspath(CORPUS / second).replace(os.sep, "/"),
        ]
        for finding in report["findings"]:
            assert Path(finding["file"]).name in {first, second} or finding["file"], finding


def test_named_override_is_merged_with_its_base():
    """An override passed alone (as pre-commit passes changed files) is checked on its base."""
    exit_code, report = check_json("fixtures/stacks/prod-reset/compose.prod.yaml")
    assert exit_code == 0
    assert [item["files"] for item in report["stacks"]] == [
        ["fixtures/stacks/prod-reset/compose.yaml", "fixtures/stacks/prod-reset/compose.prod.yaml"]
    ]
    _exit_code, report = check_json("fixtures/stacks/prod-reset/compose.override.yml")
    assert report["stacks"][0]["environment"] == "development"
