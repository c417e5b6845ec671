"""The container environment of each service: `env_file` values overlaid by `environment`."""

from __future__ import annotations

from pathlib import Path

from xgen_audit.compose.dotenv import read_dotenv
from xgen_audit.compose.model import ComposeProject, EnvValue
from xgen_audit.discovery import display_path
from xgen_audit.parse.tree import Loc


def load_container_env(project: ComposeProject) -> None:
    """Fill `container_env` of every service; env files that cannot be read are skipped.

    Compose reads env files relative to the project folder, later files win, and
    `environment` wins over all of them.
    """
    cache: dict[Path, dict[str, EnvValue]] = {}
    for service in project.services.values():
        merged: dict[str, EnvValue] = {}
        for env_file in service.env_files:
            try:
                path = (project.project_dir / env_file.path).resolve()
            except (OSError, ValueError):
                # A path Compose itself cannot open (a NUL byte, a loop) adds nothing.
                continue
            if path not in cache:
                cache[path] = _read(path)
            merged.update(cache[path])
        merged.update(service.environment)
        service.container_env = merged


def _read(path: Path) -> dict[str, EnvValue]:
    try:
        if not path.is_file():
            return {}
    except (OSError, ValueError):
        return {}
    parsed = read_dotenv(path)
    shown = display_path(path)
    return {
        entry.key: EnvValue(value=entry.value, loc=Loc(shown, entry.line, 1))
        for entry in parsed.entries
    }
