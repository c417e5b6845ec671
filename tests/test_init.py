"""`init production`: the override file, its golden text, Compose's and xgen-audit's verdicts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from ruamel.yaml import YAML
from typer.testing import CliRunner

from xgen_audit.cli.init_cmd import init_app
from xgen_audit.config import Settings
from xgen_audit.fix.override import plan_production_override, write_override
from xgen_audit.pipeline import RunRequest, run
from xgen_audit.rules_meta import Area, load_catalog

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "fixtures" / "fix" / "xgenerator" / "docker-compose.prod.yml.golden"


def make_app() -> typer.Typer:
    """The main app as the lead wires it: `init` is a group under it."""
    app = typer.Typer()

    @app.command()
    def version() -> None:
        typer.echo("test")

    app.add_typer(init_app, name="init")
    return app


@pytest.fixture
def stack(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "xgenerator"
    shutil.copytree(ROOT / "fixtures" / "xgenerator", folder)
    monkeypatch.chdir(folder)
    return folder


def test_override_matches_golden(stack):
    result = CliRunner().invoke(make_app(), ["init", "production"])
    assert result.exit_code == 0, result.output
    assert (stack / "docker-compose.prod.yml").read_text() == GOLDEN.read_text()


def test_prints_compose_command(stack):
    result = CliRunner().invoke(make_app(), ["init", "production"])
    assert "docker compose -f docker-compose.yml -f docker-compose.prod.yml config" in result.stdout


def test_existing_override_needs_force(stack):
    (stack / "docker-compose.prod.yml").write_text("# mine\n")
    result = CliRunner().invoke(make_app(), ["init", "production"])
    assert result.exit_code == 2
    assert "--force" in result.output
    assert (stack / "docker-compose.prod.yml").read_text() == "# mine\n"


def test_force_overwrites(stack):
    (stack / "docker-compose.prod.yml").write_text("# mine\n")
    result = CliRunner().invoke(make_app(), ["init", "production", "--force"])
    assert result.exit_code == 0
    assert (stack / "docker-compose.prod.yml").read_text() == GOLDEN.read_text()


def test_missing_base_file_is_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(make_app(), ["init", "production"])
    assert result.exit_code == 2
    assert "no compose file" in result.output


def test_override_tags_read_back(stack):
    plan = plan_production_override([Path("docker-compose.yml")])
    document = YAML().load(plan.text)
    services = document["services"]
    assert services["api"]["volumes"].tag.value == "!reset"
    assert services["redis"]["ports"].tag.value == "!reset"
    assert list(services["redis"]["volumes"]) == ["redis-data:/data"]
    assert "redis-data" in document["volumes"]


def test_placeholders_marked_todo(stack):
    plan = plan_production_override([Path("docker-compose.yml")])
    lines = plan.text.splitlines()
    for key in ("command:", "cpus:", "memory:"):
        index = next(number for number, line in enumerate(lines) if line.strip().startswith(key))
        assert lines[index - 1].strip().startswith("# TODO(xgen-audit):") or lines[index - 2].strip().startswith(
            "# TODO(xgen-audit):"
        ), key
    assert "--concurrency=" in plan.text


def test_kept_mounts_use_override(tmp_path):
    base = tmp_path / "docker-compose.yml"
    base.write_text(
        "services:\n"
        "  app:\n"
        "    image: example/app:1\n"
        "    volumes:\n"
        "      - ./src:/app\n"
        "      - cache:/cache\n"
        "      - type: volume\n"
        "        source: media\n"
        "        target: /media\n"
        "  db:\n"
        "    image: postgres:16\n"
        "    ports:\n"
        '      - "5432:5432"\n'
        "volumes:\n"
        "  cache:\n"
        "  media:\n"
    )
    plan = plan_production_override([base])
    document = YAML().load(plan.text)
    volumes = document["services"]["app"]["volumes"]
    assert volumes.tag.value == "!override"
    assert volumes[0] == "cache:/cache"
    assert dict(volumes[1]) == {"type": "volume", "source": "media", "target": "/media"}
    assert document["services"]["db"]["ports"].tag.value == "!reset"


def test_merged_stack_passes_check(stack):
    plan = plan_production_override([Path("docker-compose.yml")])
    write_override(plan)
    outcome = run(
        RunRequest(
            paths=[],
            settings=Settings(project_root=stack),
            environment="production",
            files=[Path("docker-compose.yml"), Path("docker-compose.prod.yml")],
        )
    )
    catalog = load_catalog()
    compose_findings = [
        f"{finding.rule} {finding.message}"
        for finding in outcome.result.findings
        if catalog[finding.rule].area is not Area.CELERY
    ]
    assert compose_findings == []
    # The override changes compose files only; the Celery configuration keeps its findings.
    celery_files = {finding.file for finding in outcome.result.findings if catalog[finding.rule].area is Area.CELERY}
    assert all(name.endswith(".py") for name in celery_files)


def test_compose_accepts_override(stack):
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose (Compose v2) is not on PATH")
    write_override(plan_production_override([Path("docker-compose.yml")]))
    completed = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml", "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    config = json.loads(completed.stdout)
    services = config["services"]
    assert "ports" not in services["redis"]
    assert [mount["source"] for mount in services["redis"]["volumes"]] == ["redis-data"]
    assert "volumes" not in services["worker"]
    assert services["worker"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["worker"]["command"][-1] == "--concurrency=2"
    assert services["api"]["ports"][0]["published"] == "8000"
