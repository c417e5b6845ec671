"""Project configuration: discovery, validation and the resolved settings of a run.

Settings come from three places, later ones winning: built-in defaults, one
configuration file, and command-line options. The file is found by walking up
from the checked path. In each folder `.xgen-audit.toml` (top-level keys) is
read if present, otherwise `pyproject.toml` if it has a `[tool.xgen-audit]`
table. The walk stops at the first folder with either. That folder is the project
root, against which `per-file-ignores`, `exclude` and stack file paths are resolved.

Keys are kebab-case in TOML. An unknown key, a wrong type or an unknown rule id
raises ConfigError naming the file, the key and what is allowed.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, ValidationInfo, field_validator

from xgen_audit.findings import Severity
from xgen_audit.parse.yaml_reader import DEFAULT_MAX_BYTES
from xgen_audit.rules_meta import load_catalog
from xgen_audit.selection import ALL_SELECTOR, RuleLayer, fold_layers, unknown_selectors

DEDICATED_FILE = ".xgen-audit.toml"
PYPROJECT_FILE = "pyproject.toml"
PYPROJECT_TABLE = ("tool", "xgen-audit")

DEFAULT_SOURCE = "default"
CLI_SOURCE = "command line"

Environment = Literal["production", "development"]

_CELERY_APP_RE = re.compile(r"^[A-Za-z_][\w.]*(?::[A-Za-z_][\w.]*)?$")


class ConfigError(Exception):
    """Invalid settings or an unreadable settings file; the CLI exits with status 2."""


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class _TomlModel(BaseModel):
    # Only the kebab-case spelling is accepted, so `env_files` is an unknown key.
    model_config = ConfigDict(extra="forbid", alias_generator=_kebab, populate_by_name=False, frozen=True)


class StackConfig(_TomlModel):
    """One named stack: compose files merged in order, as `docker compose -f a -f b` does."""

    files: list[str] = Field(min_length=1)
    env: Environment | None = None
    env_files: list[str] = Field(default_factory=list)
    profiles: list[str] = Field(default_factory=list)


def _known_ids(info: ValidationInfo) -> list[str]:
    context = info.context or {}
    return list(context.get("known_ids", ()))


def _check_selectors(selectors: Iterable[str], info: ValidationInfo) -> None:
    known = _known_ids(info)
    unknown = unknown_selectors(selectors, known)
    if unknown:
        raise ValueError(
            f"unknown rule selector(s) {', '.join(unknown)}; use {ALL_SELECTOR}, a rule id or a "
            f"prefix of one. Known rule ids: {', '.join(known) or 'none'}"
        )


class FileConfig(_TomlModel):
    """The keys of `[tool.xgen-audit]` or `.xgen-audit.toml`; None means the key is not set."""

    select: list[str] | None = Field(
        default=None, description="Rules to run: ids, prefixes such as `XG1`, or `ALL` (default `ALL`)."
    )
    ignore: list[str] | None = Field(default=None, description="Rules not to run: ids or prefixes.")
    extend_select: list[str] | None = Field(
        default=None, description="Rules to run in addition to `select`: ids or prefixes."
    )
    severity: dict[str, Severity] | None = Field(
        default=None, description="Severity per rule id (`error`, `warning`, `info`), replacing the default."
    )
    fail_on: Severity | None = Field(
        default=None, description="Lowest severity that makes the run exit with 1 (default `warning`)."
    )
    per_file_ignores: dict[str, list[str]] | None = Field(
        default=None, description="Glob (relative to the project root) to the rule ids or prefixes ignored there."
    )
    exclude: list[str] | None = Field(default=None, description="Globs of files and folders not to check.")
    env: Environment | None = Field(
        default=None, description="Check every stack and file as `production` or `development` (default: from names)."
    )
    stacks: dict[str, StackConfig] | None = Field(
        default=None,
        description="Named stacks: `files` merged in order, `env`, `env-files`, `profiles`; checked when no path is given.",
    )
    max_file_size: Annotated[int, Strict(), Field(gt=0)] | None = Field(
        default=None, description="Largest file read, in bytes (default 10485760); larger files are an XG001 finding."
    )
    celery_app: str | None = Field(
        default=None, description="The Celery app (`package.module:app`) when no worker command names it."
    )

    @field_validator("select", "ignore", "extend_select")
    @classmethod
    def _validate_selectors(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is not None:
            _check_selectors(value, info)
        return value

    @field_validator("severity")
    @classmethod
    def _validate_severity_ids(
        cls, value: dict[str, Severity] | None, info: ValidationInfo
    ) -> dict[str, Severity] | None:
        if value is None:
            return value
        known = _known_ids(info)
        unknown = [rule_id for rule_id in value if rule_id not in known]
        if unknown:
            raise ValueError(
                f"unknown rule id(s) {', '.join(unknown)}; severity overrides take full rule ids. "
                f"Known rule ids: {', '.join(known) or 'none'}"
            )
        return value

    @field_validator("per_file_ignores")
    @classmethod
    def _validate_per_file_selectors(
        cls, value: dict[str, list[str]] | None, info: ValidationInfo
    ) -> dict[str, list[str]] | None:
        if value is not None:
            _check_selectors([selector for selectors in value.values() for selector in selectors], info)
        return value

    @field_validator("celery_app")
    @classmethod
    def _validate_celery_app(cls, value: str | None) -> str | None:
        if value is not None and not _CELERY_APP_RE.match(value):
            raise ValueError(f"{value!r} is not a module path; write `package.module` or `package.module:app`")
        return value


class SettingRow(NamedTuple):
    """One line of `--show-settings`: a key, its value and where the value came from."""

    key: str
    value: Any
    source: str


@dataclass(frozen=True)
class Settings:
    """The resolved settings of a run, with the source of each value in `sources`.

    Rule selection is kept as layers (defaults, file, command line) because a
    later layer refines the result of the earlier ones; `rule_ids()` folds them.
    """

    project_root: Path
    config_file: Path | None = None
    rule_layers: tuple[RuleLayer, ...] = (RuleLayer(DEFAULT_SOURCE, select=(ALL_SELECTOR,)),)
    severity: dict[str, Severity] = field(default_factory=dict)
    fail_on: Severity = Severity.WARNING
    per_file_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    env: Environment = "production"
    stacks: dict[str, StackConfig] = field(default_factory=dict)
    max_file_size: int = DEFAULT_MAX_BYTES
    celery_app: str | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def source_of(self, key: str) -> str:
        return self.sources.get(key, DEFAULT_SOURCE)

    def rule_ids(self, all_ids: Iterable[str] | None = None) -> list[str]:
        """Return the selected rule ids among `all_ids` (default: the rule catalogue)."""
        ids = list(load_catalog()) if all_ids is None else list(all_ids)
        return fold_layers(ids, self.rule_layers)

    def describe(self) -> list[SettingRow]:
        """List every setting with its value and source, for `--show-settings`."""
        config_file = str(self.config_file) if self.config_file else None
        rows = [
            SettingRow("config-file", config_file, self.source_of("config-file")),
            SettingRow("project-root", str(self.project_root), self.source_of("project-root")),
        ]
        for layer in self.rule_layers:
            if layer.select is not None:
                rows.append(SettingRow("select", list(layer.select), layer.source))
            if layer.extend_select:
                rows.append(SettingRow("extend-select", list(layer.extend_select), layer.source))
            if layer.ignore:
                rows.append(SettingRow("ignore", list(layer.ignore), layer.source))
        plain = {
            "severity": {rule_id: level.value for rule_id, level in sorted(self.severity.items())},
            "fail-on": self.fail_on.value,
            "per-file-ignores": {glob: list(ids) for glob, ids in sorted(self.per_file_ignores.items())},
            "exclude": list(self.exclude),
            "env": self.env if self.source_of("env") != DEFAULT_SOURCE else "from file names",
            "stacks": {
                name: stack.model_dump(by_alias=True) for name, stack in sorted(self.stacks.items())
            },
            "max-file-size": self.max_file_size,
            "celery-app": self.celery_app,
        }
        rows.extend(SettingRow(key, value, self.source_of(key)) for key, value in plain.items())
        return rows


# Discovery and reading


def find_config_file(start: Path) -> Path | None:
    """Return the nearest configuration file at or above `start`, or None."""
    folder = start.resolve()
    if not folder.is_dir():
        folder = folder.parent
    for candidate in (folder, *folder.parents):
        dedicated = candidate / DEDICATED_FILE
        if dedicated.is_file():
            return dedicated
        pyproject = candidate / PYPROJECT_FILE
        if pyproject.is_file() and _has_tool_table(pyproject):
            return pyproject
    return None


def _has_tool_table(pyproject: Path) -> bool:
    # A broken pyproject.toml counts as having the table, so reading it reports the error
    # and a typo there never makes the walk pick up an unrelated file further up.
    try:
        data = _read_toml(pyproject)
    except ConfigError:
        return True
    tool = data.get(PYPROJECT_TABLE[0])
    return isinstance(tool, dict) and PYPROJECT_TABLE[1] in tool


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration file: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: the configuration file is not valid UTF-8: {error}") from error
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from error


def _table_of(path: Path, data: dict[str, Any]) -> tuple[Any, str]:
    """Return the settings table of a file and the key prefix used in messages."""
    if path.name != PYPROJECT_FILE:
        return data, ""
    tool = data.get(PYPROJECT_TABLE[0])
    if not isinstance(tool, dict) or PYPROJECT_TABLE[1] not in tool:
        raise ConfigError(f"{path}: no [tool.xgen-audit] table; add one or pass a .xgen-audit.toml file")
    return tool[PYPROJECT_TABLE[1]], "tool.xgen-audit"


def load_config_file(path: Path, known_ids: Iterable[str] | None = None) -> FileConfig:
    """Read and validate one configuration file; raise ConfigError on any problem."""
    known = sorted(load_catalog() if known_ids is None else known_ids)
    data = _read_toml(path)
    table, prefix = _table_of(path, data)
    try:
        return FileConfig.model_validate(table, context={"known_ids": known})
    except ValidationError as error:
        lines = [_describe_error(item, prefix) for item in error.errors()]
        raise ConfigError(f"{path}: invalid configuration:\n" + "\n".join(f"  {line}" for line in lines)) from error


def _key_path(loc: Sequence[str | int], prefix: str) -> str:
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _allowed_keys(loc: Sequence[str | int]) -> list[str]:
    model: type[BaseModel] = StackConfig if len(loc) >= 3 and loc[0] == "stacks" else FileConfig
    return sorted(_kebab(name) for name in model.model_fields)


def _describe_error(item: Mapping[str, Any], prefix: str) -> str:
    loc = tuple(item["loc"])
    key = _key_path(loc, prefix)
    if item["type"] == "extra_forbidden":
        return f"{key}: unknown key; allowed keys: {', '.join(_allowed_keys(loc))}"
    context = item.get("ctx") or {}
    message = str(context["error"]) if "error" in context else item["msg"]
    return f"{key}: {message} (got {item.get('input')!r})"


# Resolution


def _layer_from_file(config: FileConfig, source: str) -> RuleLayer:
    return RuleLayer(
        source=source,
        select=tuple(config.select) if config.select is not None else None,
        extend_select=tuple(config.extend_select or ()),
        ignore=tuple(config.ignore or ()),
    )


def settings_from_file(config: FileConfig, path: Path, project_root: Path) -> Settings:
    """Put the values a file sets over the defaults, recording the file as their source."""
    source = str(path)
    settings = Settings(project_root=project_root, config_file=path)
    updates: dict[str, Any] = {}
    sources = {"config-file": "found by walking up from the checked path", "project-root": source}
    layer = _layer_from_file(config, source)
    if not layer.is_empty():
        updates["rule_layers"] = (*settings.rule_layers, layer)
    simple_values = {
        "severity": config.severity,
        "fail_on": config.fail_on,
        "per_file_ignores": (
            {glob: tuple(ids) for glob, ids in config.per_file_ignores.items()}
            if config.per_file_ignores is not None
            else None
        ),
        "exclude": tuple(config.exclude) if config.exclude is not None else None,
        "env": config.env,
        "stacks": config.stacks,
        "max_file_size": config.max_file_size,
        "celery_app": config.celery_app,
    }
    for name, value in simple_values.items():
        if value is not None:
            updates[name] = value
            sources[_kebab(name)] = source
    return replace(settings, sources=sources, **updates)


def load_settings(
    start: Path | None = None,
    config_file: Path | None = None,
    isolated: bool = False,
    known_ids: Iterable[str] | None = None,
) -> Settings:
    """Resolve the settings for a run.

    `config_file` names the file explicitly; `isolated` ignores every file and
    uses the defaults, with the current folder as project root. Without either,
    the file is found by walking up from `start` (default: the current folder).
    """
    if isolated and config_file is not None:
        raise ConfigError("--isolated ignores configuration files, so it cannot be combined with --config")
    origin = (start or Path.cwd()).resolve()
    if isolated:
        root = Path.cwd().resolve()
        return Settings(project_root=root, sources={"config-file": "isolated mode", "project-root": "isolated mode"})

    if config_file is not None:
        path = config_file.resolve()
        if not path.is_file():
            raise ConfigError(f"{config_file}: configuration file not found")
        settings = settings_from_file(load_config_file(path, known_ids), path, path.parent)
        return replace(settings, sources={**settings.sources, "config-file": CLI_SOURCE})

    found = find_config_file(origin)
    if found is None:
        root = origin if origin.is_dir() else origin.parent
        return Settings(project_root=root, sources={"config-file": "none found", "project-root": "checked path"})
    return settings_from_file(load_config_file(found, known_ids), found, found.parent)


def apply_cli_overrides(
    settings: Settings,
    *,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
    extend_select: Sequence[str] | None = None,
    fail_on: Severity | str | None = None,
    exclude: Sequence[str] | None = None,
    known_ids: Iterable[str] | None = None,
) -> Settings:
    """Put command-line options on top of the settings; options that are None change nothing.

    `--select` starts the selection afresh; `--extend-select` and `--ignore`
    refine what the file selected and beat it even where the file was more
    specific. `--fail-on` and `--exclude` replace the file's values.
    """
    known = sorted(load_catalog() if known_ids is None else known_ids)
    for option, selectors in (("--select", select), ("--ignore", ignore), ("--extend-select", extend_select)):
        unknown = unknown_selectors(selectors or (), known)
        if unknown:
            raise ConfigError(
                f"{CLI_SOURCE}: {option}: unknown rule selector(s) {', '.join(unknown)}; use "
                f"{ALL_SELECTOR}, a rule id or a prefix of one. Known rule ids: {', '.join(known) or 'none'}"
            )

    updates: dict[str, Any] = {}
    sources = dict(settings.sources)
    layer = RuleLayer(
        source=CLI_SOURCE,
        select=tuple(select) if select is not None else None,
        extend_select=tuple(extend_select or ()),
        ignore=tuple(ignore or ()),
    )
    if not layer.is_empty():
        updates["rule_layers"] = (*settings.rule_layers, layer)
    if fail_on is not None:
        try:
            updates["fail_on"] = Severity(fail_on)
        except ValueError as error:
            allowed = ", ".join(level.value for level in Severity)
            raise ConfigError(f"{CLI_SOURCE}: --fail-on: invalid level {fail_on!r}; use one of {allowed}") from error
        sources["fail-on"] = CLI_SOURCE
    if exclude is not None:
        updates["exclude"] = tuple(exclude)
        sources["exclude"] = CLI_SOURCE
    return replace(settings, sources=sources, **updates)
