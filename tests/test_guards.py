"""The input guards: each hostile or odd input ends in a clear finding or a clean skip.

Every test runs the command line in-process on files it writes into a temporary
folder, and reads the JSON report.
"""

from __future__ import annotations

import codecs
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xgen_audit.celery import analyze_celery
from xgen_audit.cli.app import app
from xgen_audit.parse.yaml_reader import MAX_DEPTH, read_yaml_file

ROOT = Path(__file__).resolve().parents[1]
XGENERATOR = ROOT / "fixtures" / "xgenerator"
PARSE_RULE = "XG001"
VALID = "services:\n  web:\n    image: nginx:1.27\n"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def check_json(*args: str, isolated: bool = True) -> tuple[int, dict]:
    options = ["check", "--format", "json", *(["--isolated"] if isolated else []), *args]
    result = CliRunner().invoke(app, options)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.stdout)


def parse_findings(report: dict) -> list[dict]:
    return [finding for finding in report["findings"] if finding["rule"] == PARSE_RULE]


# ---- alias expansion, size, depth, duplicates -------------------------------------


def billion_laughs() -> str:
    """Return nine levels of ten aliases each: 10**9 scalars once expanded."""
    lines = ["services:", "  web:", "    image: nginx:1.27", "x-laughs:", "  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, 10):
        aliases = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"  l{level}: &l{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_stops_fast(tmp_path):
    (tmp_path / "compose.yaml").write_text(billion_laughs(), encoding="utf-8")

    start = time.perf_counter()
    exit_code, report = check_json("compose.yaml")
    elapsed = time.perf_counter() - start

    assert elapsed < 1.0
    assert exit_code == 1
    findings = parse_findings(report)
    assert len(findings) == 1
    assert "aliases" in findings[0]["message"]


def test_file_over_configured_size_limit(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.xgen-audit]\nmax-file-size = 200\n", encoding="utf-8")
    (tmp_path / "compose.yaml").write_text(VALID + "# padding\n" * 40, encoding="utf-8")

    exit_code, report = check_json("compose.yaml", isolated=False)

    assert exit_code == 1
    findings = parse_findings(report)
    assert len(findings) == 1
    assert "200-byte limit" in findings[0]["message"]


def test_file_under_configured_size_limit_passes_guard(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.xgen-audit]\nmax-file-size = 100000\n", encoding="utf-8")
    (tmp_path / "compose.yaml").write_text(VALID + "# padding\n" * 40, encoding="utf-8")

    _exit_code, report = check_json("compose.yaml", isolated=False)

    assert parse_findings(report) == []


def test_nesting_depth_limit(tmp_path):
    depth = MAX_DEPTH + 50
    (tmp_path / "compose.yaml").write_text(VALID + "x-deep: " + "[" * depth + "]" * depth + "\n", encoding="utf-8")

    exit_code, report = check_json("compose.yaml")

    assert exit_code == 1
    findings = parse_findings(report)
    assert len(findings) == 1
    assert f"deeper than {MAX_DEPTH}" in findings[0]["message"]
    assert findings[0]["line"] == 4


def test_nesting_just_under_limit_is_read():
    depth = MAX_DEPTH - 10
    text = VALID + "x-deep: " + "[" * depth + "]" * depth + "\n"

    parsed = read_yaml_file(text.encode(), "compose.yaml")

    assert parsed.root is not None
    assert "x-deep" in parsed.root.entries


def test_duplicate_key_reported_with_both_lines(tmp_path):
    (tmp_path / "compose.yaml").write_text(VALID + "    image: redis:7\n", encoding="utf-8")

    exit_code, report = check_json("compose.yaml")

    assert exit_code == 1
    findings = parse_findings(report)
    assert len(findings) == 1
    assert "duplicate key 'image'" in findings[0]["message"]
    assert "line 3" in findings[0]["message"]
    assert findings[0]["line"] == 4


# ---- encodings ------------------------------------------------------------------


def test_invalid_utf8_is_located(tmp_path):
    (tmp_path / "compose.yaml").write_bytes(b"services:\n  web:\n    image: caf\xe9:1\n")

    exit_code, report = check_json("compose.yaml")

    assert exit_code == 1
    findings = parse_findings(report)
    assert len(findings) == 1
    assert "0xe9" in findings[0]["message"]
    assert findings[0]["line"] == 3


@pytest.mark.parametrize(
    ("codec", "bom"),
    [
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-32-le", codecs.BOM_UTF32_LE),
        ("utf-32-be", codecs.BOM_UTF32_BE),
    ],
)
def test_bom_encodings_are_read(tmp_path, codec, bom):
    text = "services:\n  web:\n    image: café:1.0\n"
    data = bom + text.encode(codec)
    (tmp_path / "compose.yaml").write_bytes(data)

    parsed = read_yaml_file(data, "compose.yaml")
    _exit_code, report = check_json("compose.yaml")

    image = parsed.root.get("services").get("web").get("image")
    assert image.value == "café:1.0"
    assert image.loc.line == 3
    assert parse_findings(report) == []


def test_nul_bytes_without_bom_rejected(tmp_path):
    (tmp_path / "compose.yaml").write_bytes("services: {}\n".encode("utf-16-le"))

    exit_code, report = check_json("compose.yaml")

    assert exit_code == 1
    findings = parse_findings(report)
    assert len(findings) == 1
    assert "NUL bytes" in findings[0]["message"]


# ---- files that cannot be read, and folder discovery ------------------------------


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_a_finding(tmp_path):
    path = tmp_path / "compose.yaml"
    path.write_text(VALID, encoding="utf-8")
    path.chmod(0)
    try:
        exit_code, report = check_json("compose.yaml")
    finally:
        path.chmod(0o644)

    assert exit_code == 1
    findings = parse_findings(report)
    assert len(findings) == 1
    assert "cannot read" in findings[0]["message"]


def test_symlink_loop_in_folder_ends(tmp_path):
    (tmp_path / "app" / "nested").mkdir(parents=True)
    (tmp_path / "app" / "compose.yaml").write_text(VALID, encoding="utf-8")
    os.symlink("..", tmp_path / "app" / "nested" / "up")
    os.symlink("loop-b", tmp_path / "app" / "loop-a")
    os.symlink("loop-a", tmp_path / "app" / "loop-b")

    exit_code, report = check_json("app")

    assert exit_code in (0, 1)
    assert report["files"] == ["app/compose.yaml"]


def test_socket_named_like_compose_file_skipped(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "docker-compose.yml").write_text(VALID, encoding="utf-8")
    socket_path = tmp_path / "app" / "compose.yaml"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(socket_path))
        exit_code, report = check_json("app")
    finally:
        server.close()
        socket_path.unlink(missing_ok=True)

    assert exit_code in (0, 1)
    assert report["files"] == ["app/docker-compose.yml"]
    assert parse_findings(report) == []


def test_folder_named_like_compose_file(tmp_path):
    (tmp_path / "project" / "compose.yaml").mkdir(parents=True)
    (tmp_path / "project" / "docker-compose.yml").write_text(VALID, encoding="utf-8")

    exit_code, report = check_json("project")

    assert exit_code in (0, 1)
    assert report["files"] == ["project/docker-compose.yml"]
    assert parse_findings(report) == []


@pytest.mark.parametrize("text", ["", "# only a comment\n# and another\n", "\n\n   \n"])
def test_empty_or_comment_only_file(tmp_path, text):
    (tmp_path / "compose.yaml").write_text(text, encoding="utf-8")

    exit_code, report = check_json("compose.yaml")

    # Compose rejects an empty compose file, so xgen-audit reports it (XG002), not a parse error.
    assert exit_code == 1
    assert parse_findings(report) == []
    assert [(item["rule"], item["line"], item["column"]) for item in report["findings"]] == [("XG002", 1, 1)]
    assert report["files"] == ["compose.yaml"]


# ---- Celery configuration is read, never imported ---------------------------------


def side_effect_project(root: Path, marker: Path) -> None:
    shutil.copytree(XGENERATOR, root, ignore=shutil.ignore_patterns("__pycache__"))
    side_effect = (
        "from pathlib import Path\n"
        f"Path({str(marker)!r}).write_text('imported')\n"
        "task_serializer = 'json'\n"
        "task_acks_late = True\n"
    )
    (root / "app" / "celeryconfig.py").write_text(side_effect, encoding="utf-8")
    (root / "app" / "celery_app.py").write_text(
        "from celery import Celery\n"
        f"open({str(marker)!r}, 'w').write('imported')\n"
        "app = Celery('xgenerator', broker='redis://redis:6379/0')\n"
        "app.config_from_object('app.celeryconfig')\n",
        encoding="utf-8",
    )


def test_celery_config_never_imported_by_check(tmp_path):
    marker = tmp_path / "imported.marker"
    side_effect_project(tmp_path / "project", marker)

    exit_code, report = check_json("project")

    assert exit_code in (0, 1)
    assert "project/docker-compose.yml" in report["files"]
    assert not marker.exists()


def test_celery_config_never_imported_by_reader(tmp_path):
    marker = tmp_path / "imported.marker"
    project = tmp_path / "project"
    side_effect_project(project, marker)

    analysis = analyze_celery([project], "app.celery_app", {})

    assert not marker.exists()
    assert "app/celeryconfig.py" in {Path(name).as_posix() for name in analysis.files_read}


# ---- the benchmark's smoke run ------------------------------------------------------


@pytest.mark.skipif(shutil.which("xgen-audit") is None and not (Path(sys.executable).parent / "xgen-audit").exists(),
                    reason="the benchmark runs the installed xgen-audit command, which is not installed")
def test_benchmark_quick_runs(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--no-compose-lint"],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    assert "| start-up, one file | 1 |" in completed.stdout
    assert "## Targets" in completed.stdout


# ---- paths with a NUL byte --------------------------------------------------------------


def test_include_path_with_nul_byte(tmp_path):
    (tmp_path / "compose.yaml").write_text('include: ["\\u0000"]\n' + VALID, encoding="utf-8")

    exit_code, report = check_json("compose.yaml")

    assert exit_code == 1
    findings = parse_findings(report)
    assert len(findings) == 1
    assert "NUL byte" in findings[0]["message"]


def test_env_file_path_with_nul_byte(tmp_path):
    (tmp_path / "compose.yaml").write_text(VALID + '    env_file: "\\u0000"\n', encoding="utf-8")

    result = CliRunner().invoke(app, ["check", "--isolated", "--format", "json", "compose.yaml"])

    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1)
