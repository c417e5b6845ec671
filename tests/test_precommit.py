"""The pre-commit hook: its definition, its `files` pattern, and a real `pre-commit run`.

The end-to-end test points pre-commit at this repository as a hook repository
at its current HEAD commit. pre-commit clones that commit, so it runs only
committed code. It installs the hook into a fresh virtualenv with pip, which
needs access to the package index.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
HOOKS_FILE = REPO / ".pre-commit-hooks.yaml"

# pip's messages when the package index cannot be reached.
NETWORK_ERRORS = re.compile(
    r"NewConnectionError|Temporary failure in name resolution|Network is unreachable|"
    r"Could not find a version that satisfies|No matching distribution found|ConnectTimeout|ProxyError"
)


def load_hooks() -> list[dict]:
    return YAML(typ="safe").load(HOOKS_FILE.read_text(encoding="utf-8"))


def test_hook_definition():
    [hook] = load_hooks()
    assert hook["id"] == "xgen-audit"
    assert hook["name"] == "xgen-audit"
    assert hook["description"]
    assert hook["entry"] == "xgen-audit check"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is True
    assert hook["require_serial"] is True


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("compose.yaml", True),
        ("compose.yml", True),
        ("deploy/compose.yaml", True),
        ("docker-compose.yml", True),
        ("docker-compose.yaml", True),
        ("docker-compose-dev.yml", True),
        ("docker-compose.prod.yml", True),
        ("compose.prod.yaml", True),
        ("compose.override.yaml", True),
        ("stack.override.yml", True),
        ("proj/celeryconfig.py", True),
        ("proj/celery.py", True),
        ("settings.py", True),
        ("config/settings_prod.py", True),
        ("config/settings/production.py", True),
        ("mycompose.yaml", False),
        ("compose.json", False),
        ("compose.yaml.orig", False),
        ("proj/tasks.py", False),
        ("notsettings.py", False),
        ("config/settings/nested/base.py", False),
        ("README.md", False),
    ],
)
def test_hook_files_pattern(path: str, expected: bool):
    [hook] = load_hooks()
    # pre-commit matches `files` with re.search against the repository-relative path.
    assert (re.search(hook["files"], path) is not None) is expected


def _git(*args: str, cwd: Path) -> str:
    completed = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return completed.stdout.strip()


def _committed(path: str) -> bool:
    return subprocess.run(["git", "cat-file", "-e", f"HEAD:{path}"], cwd=REPO, capture_output=True).returncode == 0


def _skip_unless_runnable() -> str:
    if importlib.util.find_spec("pre_commit") is None:
        pytest.skip("pre-commit is not installed")
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("the repository is not a git checkout")
    try:
        cli_spec = importlib.util.find_spec("xgen_audit.cli.app")
    except ModuleNotFoundError:
        cli_spec = None
    if cli_spec is None:
        pytest.skip("the CLI entry point xgen_audit.cli.app is not importable yet")
    for path in (".pre-commit-hooks.yaml", "xgen_audit/cli/app.py", "pyproject.toml"):
        if not _committed(path):
            pytest.skip(f"{path} is not committed, and pre-commit only sees committed code")
    return _git("rev-parse", "HEAD", cwd=REPO)


UNSAFE_COMPOSE = """services:
  redis:
    image: redis:7
"""

SAFE_COMPOSE = """services:
  redis:
    image: redis:7
    volumes:
      - redis-data:/data

volumes:
  redis-data:
"""


@pytest.fixture(scope="module")
def hook_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    rev = _skip_unless_runnable()
    project = tmp_path_factory.mktemp("project")
    _git("init", "--quiet", cwd=project)
    config = f"repos:\n  - repo: {REPO}\n    rev: {rev}\n    hooks:\n      - id: xgen-audit\n"
    (project / ".pre-commit-config.yaml").write_text(config, encoding="utf-8")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path_factory.mktemp("pre-commit-home")), "NO_COLOR": "1"}
    env.pop("PYTHONPATH", None)
    return project, env


def _run_hook(project: Path, env: dict[str, str], files: list[str]) -> subprocess.CompletedProcess[str]:
    _git("add", "--all", cwd=project)
    command = [sys.executable, "-m", "pre_commit", "run", "xgen-audit", "--files", *files]
    completed = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=900)
    output = completed.stdout + completed.stderr
    if "An unexpected error has occurred" in output or "CalledProcessError" in output:
        log = Path(env["PRE_COMMIT_HOME"]) / "pre-commit.log"
        details = log.read_text(encoding="utf-8") if log.exists() else output
        if NETWORK_ERRORS.search(details):
            pytest.skip("pre-commit could not install the hook: the package index is not reachable")
        pytest.fail(f"pre-commit failed to install or run the hook:\n{details}")
    return completed


def test_precommit_reports_findings(hook_project: tuple[Path, dict[str, str]]):
    project, env = hook_project
    (project / "compose.yaml").write_text(UNSAFE_COMPOSE, encoding="utf-8")
    completed = _run_hook(project, env, ["compose.yaml"])
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "XG101" in completed.stdout
    assert "Failed" in completed.stdout


def test_precommit_passes_clean_file(hook_project: tuple[Path, dict[str, str]]):
    project, env = hook_project
    (project / "compose.yaml").write_text(SAFE_COMPOSE, encoding="utf-8")
    completed = _run_hook(project, env, ["compose.yaml"])
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Passed" in completed.stdout


def test_precommit_skips_other_files(hook_project: tuple[Path, dict[str, str]]):
    project, env = hook_project
    (project / "README.md").write_text("# project\n", encoding="utf-8")
    completed = _run_hook(project, env, ["README.md"])
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "no files to check" in completed.stdout
