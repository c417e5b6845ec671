"""The command line as a user runs it: exit codes, text and JSON output, bad input."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xgen_audit.cli.app import app
from xgen_audit.rules_meta import load_catalog

ROOT = Path(__file__).resolve().parents[1]
XGENERATOR = ROOT / "fixtures" / "xgenerator"
HARDENED = ROOT / "fixtures" / "xgenerator-hardened"


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def run_json(*args: str) -> tuple[int, dict]:
    result = run("check", "--format", "json", *args)
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture(autouse=True)
def _in_repository(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_xgenerator_fails_with_located_findings():
    result = run("check", "fixtures/xgenerator", "--color", "never")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("fixtures/xgenerator/docker-compose.yml:29:9: XG110 ") for line in lines)
    assert any(line.startswith("fixtures/xgenerator/docker-compose.yml:26:3: XG101 ") for line in lines)
    assert any(line.startswith("  fix: ") for line in lines)


def test_xgenerator_findings_by_rule():
    exit_code, report = run_json("fixtures/xgenerator")
    assert exit_code == 1
    rules = sorted(finding["rule"] for finding in report["findings"])
    assert rules == sorted(
        ["XG101", "XG110", "XG201", "XG202", "XG202", "XG301", "XG302", "XG302", "XG401", "XG502"]
        + ["XG601"] * 4
        + ["XG602"] * 2
    )


def test_hardened_passes_with_exit_zero():
    exit_code, report = run_json("fixtures/xgenerator-hardened")
    assert exit_code == 0
    assert report["findings"] == []
    statuses = {check["rule"]: check["status"] for check in report["checks"]}
    assert statuses["XG101"] == "pass"
    assert statuses["XG110"] == "pass"
    assert statuses["XG301"] == "pass"
    assert "fail" not in statuses.values()


def test_text_output_has_checklist_and_counts():
    result = run("check", "fixtures/xgenerator-hardened", "--color", "never")
    assert result.exit_code == 0
    assert "pass    XG101 redis-data-volume" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("0 findings (0 errors, 0 warnings, 0 info) in 1 file;")


def test_json_fields_of_findings_and_checks():
    _exit_code, report = run_json("fixtures/xgenerator")
    finding = next(item for item in report["findings"] if item["rule"] == "XG110")
    assert set(finding) >= {"rule", "name", "severity", "message", "fix", "file", "line", "column", "service"}
    assert finding["name"] == "redis-port-published"
    assert finding["severity"] == "error"
    assert finding["service"] == "redis"
    assert finding["fix"] == load_catalog()["XG110"].fix
    check = report["checks"][0]
    assert set(check) >= {"rule", "file", "status", "reason"}
    assert report["summary"]["exit_code"] == 1


def test_fail_on_error_ignores_warnings(tmp_path):
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: nginx\n    volumes:\n      - ./site:/usr/share/nginx/html\n")
    assert run("check", str(compose)).exit_code == 1
    assert run("check", "--fail-on", "error", str(compose)).exit_code == 0


def test_fail_on_info_counts_info(tmp_path):
    compose = tmp_path / "docker-compose.dev.yml"
    compose.write_text("services:\n  web:\n    image: nginx\n    volumes:\n      - ./site:/srv\n")
    assert run("check", str(compose)).exit_code == 0
    assert run("check", "--fail-on", "info", str(compose)).exit_code == 1


def test_env_option_overrides_file_name(tmp_path):
    compose = tmp_path / "docker-compose.dev.yml"
    compose.write_text("services:\n  web:\n    image: nginx\n    volumes:\n      - ./site:/srv\n")
    _exit_code, report = run_json("--env", "production", str(compose))
    assert [finding["severity"] for finding in report["findings"]] == ["warning"]


def test_missing_path_is_usage_error():
    result = run("check", "does/not/exist.yml")
    assert result.exit_code == 2
    assert "path not found: does/not/exist.yml" in result.stderr


def test_bad_option_value_is_usage_error():
    assert run("check", "--format", "xml", "fixtures/xgenerator").exit_code == 2
    assert run("check", "--fail-on", "fatal", "fixtures/xgenerator").exit_code == 2


def test_output_is_identical_between_runs():
    first = run("check", "fixtures", "--color", "never").stdout
    second = run("check", "fixtures", "--color", "never").stdout
    assert first == second
    assert first


def test_no_color_env_disables_colour():
    result = run("check", "fixtures/xgenerator", env={"NO_COLOR": "1"})
    assert "\x1b[" not in result.stdout


def test_color_always_adds_escape_codes():
    result = run("check", "fixtures/xgenerator", "--color", "always")
    assert "\x1b[" in result.stdout


def test_output_file_written(tmp_path):
    target = tmp_path / "report.json"
    result = run("check", "--format", "json", "--output", str(target), "fixtures/xgenerator")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert json.loads(target.read_text())["summary"]["findings"] == 16


def test_rules_lists_every_rule():
    result = run("rules")
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == list(load_catalog())


def test_rule_page_has_examples():
    result = run("rule", "xg110")
    assert result.exit_code == 0
    assert result.stdout.startswith("# XG110 redis-port-published")
    assert "## Example that fails" in result.stdout
    assert "## Fixed" in result.stdout


def test_unknown_rule_is_usage_error():
    result = run("rule", "XG999")
    assert result.exit_code == 2
    assert "unknown rule 'XG999'" in result.stderr


# Bad input: each file gets a located finding and an exit code, never a traceback.
BAD_INPUTS = {
    "empty": (b"", 1, ("XG002", 1, 1)),
    "only-comments": (b"# nothing here\n# at all\n", 1, ("XG002", 1, 1)),
    "document-marker-only": (b"---\n", 1, ("XG002", 1, 1)),
    "service-without-body": (b"services:\n  web:\n", 1, ("XG002", 2, 3)),
    "top-level-list": (b"- a\n- b\n", 1, ("XG002", 1, 1)),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 1, ("XG001", 3, 1)),
    "invalid-utf8": (b"services:\n  web:\n    image: caf\xe9\n", 1, ("XG001", 3, 15)),
    "tab-indent": (b"services:\n\tweb:\n    image: nginx\n", 1, ("XG001", 2, 1)),
    "duplicate-key": (b"services:\n  web:\n    image: a\n    image: b\n", 1, ("XG001", 4, 5)),
    "unclosed-flow": (b"services: [\n", 1, ("XG001", 2, 1)),
    "services-scalar": (b"services: 42\n", 1, ("XG002", 1, 11)),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_finding_not_traceback(tmp_path, case):
    content, expected_exit, expected = BAD_INPUTS[case]
    compose = tmp_path / "compose.yaml"
    compose.write_bytes(content)
    result = CliRunner().invoke(app, ["check", "--format", "json", str(compose)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == expected_exit, result.stdout
    report = json.loads(result.stdout)
    located = [(item["rule"], item["line"], item["column"]) for item in report["findings"]]
    if expected is None:
        assert located == []
    else:
        assert expected in located, located


def test_utf16_file_with_bom_is_read(tmp_path):
    compose = tmp_path / "compose.yaml"
    compose.write_bytes(codecs.BOM_UTF16_LE + "services:\n  redis:\n    image: redis\n".encode("utf-16-le"))
    _exit_code, report = run_json(str(compose))
    assert [item["rule"] for item in report["findings"]] == ["XG101"]


def test_unparsable_file_marks_other_checks_unknown(tmp_path):
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web: [\n")
    _exit_code, report = run_json(str(compose))
    statuses = {check["rule"]: check["status"] for check in report["checks"]}
    assert statuses["XG001"] == "fail"
    assert statuses["XG101"] == "unknown"


def test_unreadable_file_is_a_finding(tmp_path, monkeypatch):
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    compose.chmod(0)
    real_read_bytes = Path.read_bytes

    def refuse(path: Path) -> bytes:
        # root reads mode-000 files, so the refusal a user gets is raised here.
        if path.resolve() == compose.resolve():
            raise PermissionError(13, "Permission denied", str(path))
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    try:
        exit_code, report = run_json(str(compose))
    finally:
        compose.chmod(0o644)
    assert exit_code == 1
    assert report["findings"][0]["rule"] == "XG001"
    assert "Permission denied" in report["findings"][0]["message"]


def test_folder_discovery_skips_vendor_folders(tmp_path):
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "docker-compose.prod.yml").write_text("services: {}\n")
    (tmp_path / "compose.override.yaml").write_text("services: {}\n")
    (tmp_path / "notes.yml").write_text("services: {}\n")
    for skipped in (".git", "node_modules", ".venv"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "docker-compose.yml").write_text("services: {}\n")
    _exit_code, report = run_json(str(tmp_path))
    names = sorted(Path(name).name for name in report["files"])
    assert names == ["compose.override.yaml", "docker-compose.prod.yml"]


def test_folder_named_like_compose_file_is_not_a_file(tmp_path):
    (tmp_path / "compose.yaml").mkdir()
    result = run("check", str(tmp_path))
    assert result.exit_code == 0


def test_symlink_loop_in_folder_ends(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "loop").symlink_to(tmp_path)
    exit_code, report = run_json(str(tmp_path))
    assert exit_code == 0
    assert len(report["files"]) == 1


def test_named_file_checked_whatever_its_name(tmp_path):
    compose = tmp_path / "stack-definition.txt"
    compose.write_text("services:\n  redis:\n    image: redis:7\n")
    _exit_code, report = run_json(str(compose))
    assert [item["rule"] for item in report["findings"]] == ["XG101"]


def test_module_entry_point_runs():
    import subprocess
    import sys

    completed = subprocess.run(
        [sys.executable, "-m", "xgen_audit", "check", "fixtures/xgenerator-hardened"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "0 findings" in completed.stdout


def test_jobs_give_identical_output():
    single = run("check", "fixtures", "--color", "never").stdout
    parallel = run("check", "fixtures", "--color", "never", "--jobs", "2").stdout
    assert parallel == single
    assert "stack fixtures/stacks/prod-reset/compose.yaml+compose.prod.yaml" in parallel


@pytest.mark.parametrize(
    ("name", "environment"),
    [
        ("compose.override.yaml", "development"),
        ("docker-compose.dev.yml", "development"),
        ("docker-compose.local.yml", "development"),
        ("docker-compose-non-dev.yml", "production"),
        ("docker-compose.localstack.yml", "production"),
        ("docker-compose.devices.yml", "production"),
        ("docker-compose.prod-local.yml", "production"),
    ],
)
def test_environment_from_file_name_parts(tmp_path, name, environment):
    compose = tmp_path / name
    compose.write_text("services:\n  web:\n    image: nginx\n")
    _exit_code, report = run_json(str(compose))
    assert report["stacks"][0]["environment"] == environment
