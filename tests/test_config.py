"""Configuration discovery, validation, provenance and command-line overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from xgen_audit.config import (
    CLI_SOURCE,
    DEFAULT_SOURCE,
    ConfigError,
    Settings,
    apply_cli_overrides,
    find_config_file,
    load_config_file,
    load_settings,
)
from xgen_audit.findings import Severity
from xgen_audit.parse.yaml_reader import DEFAULT_MAX_BYTES

KNOWN = ["XG001", "XG004", "XG008", "XG101", "XG110", "XG201", "XG601"]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, body: str) -> str:
    path = write(tmp_path / ".xgen-audit.toml", body)
    with pytest.raises(ConfigError) as caught:
        load_config_file(path, KNOWN)
    return str(caught.value)


# Discovery


def test_dedicated_file_wins_over_pyproject(tmp_path: Path):
    write(tmp_path / "pyproject.toml", "[tool.xgen-audit]\nenv = 'development'\n")
    dedicated = write(tmp_path / ".xgen-audit.toml", "env = 'production'\n")
    assert find_config_file(tmp_path) == dedicated.resolve()


def test_pyproject_without_table_is_skipped(tmp_path: Path):
    parent = write(tmp_path / "pyproject.toml", "[tool.xgen-audit]\nfail-on = 'error'\n")
    write(tmp_path / "app" / "pyproject.toml", "[project]\nname = 'app'\n")
    assert find_config_file(tmp_path / "app") == parent.resolve()


def test_nearest_file_wins(tmp_path: Path):
    write(tmp_path / ".xgen-audit.toml", "env = 'production'\n")
    nearer = write(tmp_path / "deploy" / "pyproject.toml", "[tool.xgen-audit]\nenv = 'development'\n")
    compose = write(tmp_path / "deploy" / "dev" / "compose.yaml", "services: {}\n")
    assert find_config_file(compose) == nearer.resolve()


def test_no_file_found_gives_defaults(tmp_path: Path):
    settings = load_settings(tmp_path, known_ids=KNOWN)
    assert settings.config_file is None
    assert settings.project_root == tmp_path.resolve()
    assert settings.fail_on is Severity.WARNING
    assert settings.env == "production"
    assert settings.max_file_size == DEFAULT_MAX_BYTES
    assert settings.rule_ids(KNOWN) == KNOWN
    assert settings.source_of("fail-on") == DEFAULT_SOURCE


def test_discovered_file_sets_root_and_sources(tmp_path: Path):
    path = write(
        tmp_path / "pyproject.toml",
        "[tool.xgen-audit]\nselect = ['XG1']\nfail-on = 'error'\nexclude = ['legacy/**']\n",
    )
    settings = load_settings(tmp_path / "deploy" / "compose.yaml", known_ids=KNOWN)
    assert settings.config_file == path.resolve()
    assert settings.project_root == tmp_path.resolve()
    assert settings.fail_on is Severity.ERROR
    assert settings.exclude == ("legacy/**",)
    assert settings.rule_ids(KNOWN) == ["XG101", "XG110"]
    assert settings.source_of("fail-on") == str(path.resolve())
    assert settings.source_of("env") == DEFAULT_SOURCE


def test_isolated_ignores_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path / ".xgen-audit.toml", "fail-on = 'info'\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings(tmp_path, isolated=True, known_ids=KNOWN)
    assert settings.config_file is None
    assert settings.fail_on is Severity.WARNING


def test_isolated_with_explicit_file_is_error(tmp_path: Path):
    path = write(tmp_path / "custom.toml", "env = 'development'\n")
    with pytest.raises(ConfigError, match="--isolated"):
        load_settings(tmp_path, config_file=path, isolated=True, known_ids=KNOWN)


def test_explicit_file_used_instead_of_discovery(tmp_path: Path):
    write(tmp_path / ".xgen-audit.toml", "env = 'production'\n")
    custom = write(tmp_path / "ci" / "audit.toml", "env = 'development'\n")
    settings = load_settings(tmp_path, config_file=custom, known_ids=KNOWN)
    assert settings.env == "development"
    assert settings.project_root == custom.parent.resolve()
    assert settings.source_of("config-file") == CLI_SOURCE


def test_explicit_file_missing(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path, config_file=tmp_path / "nope.toml", known_ids=KNOWN)


def test_explicit_pyproject_without_table(tmp_path: Path):
    path = write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n")
    with pytest.raises(ConfigError, match=r"no \[tool.xgen-audit\] table"):
        load_settings(tmp_path, config_file=path, known_ids=KNOWN)


def test_all_keys_parsed(tmp_path: Path):
    path = write(
        tmp_path / "pyproject.toml",
        """
[tool.xgen-audit]
select = ["XG"]
ignore = ["XG6"]
extend-select = ["XG601"]
fail-on = "info"
exclude = ["legacy/**"]
env = "development"
max-file-size = 2048
celery-app = "proj.celery:app"

[tool.xgen-audit.severity]
XG110 = "warning"

[tool.xgen-audit.per-file-ignores]
"deploy/dev/*.yaml" = ["XG6", "XG110"]

[tool.xgen-audit.stacks.prod]
files = ["compose.yaml", "compose.prod.yaml"]
env = "production"
env-files = [".env.prod"]
profiles = ["workers"]
""",
    )
    settings = load_settings(tmp_path, known_ids=KNOWN)
    assert settings.config_file == path.resolve()
    assert settings.severity == {"XG110": Severity.WARNING}
    assert settings.fail_on is Severity.INFO
    assert settings.per_file_ignores == {"deploy/dev/*.yaml": ("XG6", "XG110")}
    assert settings.env == "development"
    assert settings.max_file_size == 2048
    assert settings.celery_app == "proj.celery:app"
    stack = settings.stacks["prod"]
    assert stack.files == ["compose.yaml", "compose.prod.yaml"]
    assert stack.env == "production"
    assert stack.env_files == [".env.prod"]
    assert stack.profiles == ["workers"]
    # extend-select XG601 is more specific than ignore XG6, so XG601 runs.
    assert settings.rule_ids(KNOWN) == KNOWN


# Validation errors


def test_unknown_key_names_file_key_and_allowed(tmp_path: Path):
    message = load_error(tmp_path, "selekt = ['XG1']\n")
    assert ".xgen-audit.toml" in message
    assert "selekt: unknown key" in message
    assert "allowed keys: celery-app, env, exclude, extend-select" in message


def test_unknown_key_in_pyproject_has_table_prefix(tmp_path: Path):
    path = write(tmp_path / "pyproject.toml", "[tool.xgen-audit]\nverbose = true\n")
    with pytest.raises(ConfigError) as caught:
        load_config_file(path, KNOWN)
    assert "tool.xgen-audit.verbose: unknown key" in str(caught.value)


def test_snake_case_key_is_unknown(tmp_path: Path):
    message = load_error(tmp_path, "fail_on = 'error'\n")
    assert "fail_on: unknown key" in message


def test_bad_severity_value_lists_allowed(tmp_path: Path):
    message = load_error(tmp_path, "fail-on = 'fatal'\n")
    assert "fail-on" in message
    assert "'error', 'warning' or 'info'" in message
    assert "'fatal'" in message


def test_bad_env_value(tmp_path: Path):
    message = load_error(tmp_path, "env = 'staging'\n")
    assert "env:" in message
    assert "'production' or 'development'" in message


def test_unknown_selector_names_known_ids(tmp_path: Path):
    message = load_error(tmp_path, "ignore = ['XG999', 'XG1']\n")
    assert "ignore" in message
    assert "XG999" in message
    assert "Known rule ids: XG001, XG004, XG008, XG101, XG110, XG201, XG601" in message


def test_unknown_extend_select_selector(tmp_path: Path):
    message = load_error(tmp_path, "extend-select = ['E501']\n")
    assert "extend-select" in message
    assert "E501" in message


def test_severity_override_needs_full_known_id(tmp_path: Path):
    message = load_error(tmp_path, "[severity]\nXG1 = 'info'\n")
    assert "severity" in message
    assert "XG1" in message
    assert "full rule ids" in message


def test_severity_override_bad_level(tmp_path: Path):
    message = load_error(tmp_path, "[severity]\nXG110 = 'low'\n")
    assert "severity.XG110" in message


def test_per_file_ignores_unknown_selector(tmp_path: Path):
    message = load_error(tmp_path, "[per-file-ignores]\n'*.yaml' = ['XG7']\n")
    assert "per-file-ignores" in message
    assert "XG7" in message


def test_stack_unknown_key_lists_stack_keys(tmp_path: Path):
    message = load_error(tmp_path, "[stacks.prod]\nfiles = ['a.yaml']\nenv_files = ['.env']\n")
    assert "stacks.prod.env_files: unknown key" in message
    assert "allowed keys: env, env-files, files, profiles" in message


def test_stack_needs_files(tmp_path: Path):
    message = load_error(tmp_path, "[stacks.prod]\nfiles = []\n")
    assert "stacks.prod.files" in message


@pytest.mark.parametrize("value", ["'10'", "true", "0", "-5", "1.5"])
def test_max_file_size_must_be_positive_integer(tmp_path: Path, value: str):
    message = load_error(tmp_path, f"max-file-size = {value}\n")
    assert "max-file-size" in message


def test_celery_app_must_be_module_path(tmp_path: Path):
    message = load_error(tmp_path, "celery-app = 'proj/celery.py'\n")
    assert "celery-app" in message
    assert "package.module:app" in message


def test_select_must_be_list(tmp_path: Path):
    message = load_error(tmp_path, "select = 'XG1'\n")
    assert "select" in message


def test_invalid_toml_names_file(tmp_path: Path):
    path = write(tmp_path / ".xgen-audit.toml", "select = [\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, known_ids=KNOWN)
    assert str(path.resolve()) in str(caught.value)
    assert "invalid TOML" in str(caught.value)


def test_broken_pyproject_is_reported_not_skipped(tmp_path: Path):
    write(tmp_path / ".xgen-audit.toml", "env = 'production'\n")
    write(tmp_path / "app" / "pyproject.toml", "[tool.xgen-audit\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(tmp_path / "app", known_ids=KNOWN)


def test_several_errors_reported_together(tmp_path: Path):
    message = load_error(tmp_path, "env = 'staging'\nfail-on = 'fatal'\nbogus = 1\n")
    assert "env:" in message
    assert "fail-on:" in message
    assert "bogus: unknown key" in message


# Command-line overrides


def settings_with(tmp_path: Path, body: str) -> Settings:
    write(tmp_path / ".xgen-audit.toml", body)
    return load_settings(tmp_path, known_ids=KNOWN)


def test_cli_select_replaces_file_selection(tmp_path: Path):
    settings = settings_with(tmp_path, "select = ['XG1']\nignore = ['XG110']\n")
    merged = apply_cli_overrides(settings, select=["XG6"], known_ids=KNOWN)
    assert merged.rule_ids(KNOWN) == ["XG601"]


def test_cli_ignore_beats_specific_file_select(tmp_path: Path):
    settings = settings_with(tmp_path, "select = ['XG110', 'XG601']\n")
    merged = apply_cli_overrides(settings, ignore=["XG1"], known_ids=KNOWN)
    assert merged.rule_ids(KNOWN) == ["XG601"]


def test_cli_extend_select_adds_to_file_selection(tmp_path: Path):
    settings = settings_with(tmp_path, "select = ['XG1']\n")
    merged = apply_cli_overrides(settings, extend_select=["XG201"], known_ids=KNOWN)
    assert merged.rule_ids(KNOWN) == ["XG101", "XG110", "XG201"]


def test_cli_fail_on_and_exclude_replace(tmp_path: Path):
    settings = settings_with(tmp_path, "fail-on = 'info'\nexclude = ['a/**']\n")
    merged = apply_cli_overrides(settings, fail_on="error", exclude=["b/**"], known_ids=KNOWN)
    assert merged.fail_on is Severity.ERROR
    assert merged.exclude == ("b/**",)
    assert merged.source_of("fail-on") == CLI_SOURCE
    assert merged.source_of("exclude") == CLI_SOURCE
    assert settings.fail_on is Severity.INFO


def test_cli_nothing_given_changes_nothing(tmp_path: Path):
    settings = settings_with(tmp_path, "select = ['XG1']\n")
    assert apply_cli_overrides(settings, known_ids=KNOWN) == settings


def test_cli_unknown_selector(tmp_path: Path):
    settings = load_settings(tmp_path, known_ids=KNOWN)
    with pytest.raises(ConfigError) as caught:
        apply_cli_overrides(settings, ignore=["XG999"], known_ids=KNOWN)
    assert "--ignore" in str(caught.value)
    assert "XG999" in str(caught.value)
    assert "XG601" in str(caught.value)


def test_cli_bad_fail_on(tmp_path: Path):
    settings = load_settings(tmp_path, known_ids=KNOWN)
    with pytest.raises(ConfigError) as caught:
        apply_cli_overrides(settings, fail_on="fatal", known_ids=KNOWN)
    assert "--fail-on" in str(caught.value)
    assert "error, warning, info" in str(caught.value)


def test_describe_records_sources(tmp_path: Path):
    settings = settings_with(tmp_path, "select = ['XG1']\nenv = 'development'\n")
    merged = apply_cli_overrides(settings, ignore=["XG110"], fail_on="error", known_ids=KNOWN)
    rows = merged.describe()
    file_source = str((tmp_path / ".xgen-audit.toml").resolve())
    assert ("select", ["ALL"], DEFAULT_SOURCE) in rows
    assert ("select", ["XG1"], file_source) in rows
    assert ("ignore", ["XG110"], CLI_SOURCE) in rows
    assert ("env", "development", file_source) in rows
    assert ("fail-on", "error", CLI_SOURCE) in rows
    assert ("max-file-size", DEFAULT_MAX_BYTES, DEFAULT_SOURCE) in rows
    keys = [row.key for row in rows]
    assert "config-file" in keys
    assert "stacks" in keys
