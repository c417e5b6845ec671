"""Find compose files in the paths the user names."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

# compose.yaml, docker-compose.yml, their .override. files and variants such as
# docker-compose.prod.yml, compose.production.yaml or docker-compose-dev.yml.
COMPOSE_NAME_RE = re.compile(r"^(?:docker-)?compose(?:[.-][A-Za-z0-9_.-]+)?\.ya?ml$", re.IGNORECASE)
SKIPPED_DIRS = {
    ".git", ".hg", ".svn", "node_modules", "__pycache__", ".tox", ".nox", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", "site-packages", ".venv", "venv", ".direnv",
}
# Name parts that mark a development file, and parts that rule it out (`non-dev`).
_DEVELOPMENT_PARTS = {"dev", "development", "local", "override"}
_PRODUCTION_PARTS = {"prod", "production", "non", "nondev"}


class PathNotFound(Exception):
    """A path named on the command line does not exist."""


def is_compose_name(name: str) -> bool:
    return bool(COMPOSE_NAME_RE.match(name))


def environment_from_name(path: Path) -> str:
    """Guess a file's environment from its name's parts, split at `.`, `-` and `_`.

    `compose.override.yaml`, `docker-compose.dev.yml` and `local.yml` are development;
    `docker-compose-non-dev.yml`, `compose.prod-local.yml` and `compose.localstack.yml`
    are not.
    """
    parts = {part.lower() for part in re.split(r"[._-]+", path.name)}
    if parts & _PRODUCTION_PARTS:
        return "production"
    return "development" if parts & _DEVELOPMENT_PARTS else "production"


def discover(paths: list[Path]) -> list[Path]:
    """Return the compose files to check, sorted and without duplicates.

    A file named explicitly is checked whatever its name; folders are searched for
    compose file names, skipping version-control folders, virtual environments and
    node_modules. Symbolic links to folders are not followed, so link loops end.
    """
    found: set[Path] = set()
    for path in paths:
        if not path.exists() and not path.is_symlink():
            raise PathNotFound(str(path))
        if path.is_dir():
            found.update(_walk(path))
        else:
            found.add(path)
    return sorted(found, key=lambda item: str(item))


def walk_compose_files(root: Path) -> list[Path]:
    """Return the compose files below a folder, sorted (see `discover`)."""
    return _walk(root)


def _walk(root: Path) -> list[Path]:
    files = []
    for directory, subdirectories, names in os.walk(root, followlinks=False):
        subdirectories[:] = sorted(
            name for name in subdirectories
            if name not in SKIPPED_DIRS and not (Path(directory) / name / "pyvenv.cfg").exists()
        )
        for name in sorted(names):
            if is_compose_name(name):
                candidate = Path(directory) / name
                if candidate.is_file():
                    files.append(candidate)
    return files


def display_path(path: Path) -> str:
    """Show a path relative to the current folder when it is below it, in POSIX form."""
    text = os.fspath(path)
    if not os.path.isabs(text) and ".." not in Path(text).parts and not os.path.islink(text):
        # Already relative to the current folder: skip resolving every parent.
        return Path(os.path.normpath(text)).as_posix()
    try:
        return path.resolve().relative_to(_current_folder()).as_posix()
    except ValueError:
        return path.as_posix()


def _current_folder() -> Path:
    return _resolved_folder(os.getcwd())


@functools.lru_cache(maxsize=8)
def _resolved_folder(folder: str) -> Path:
    return Path(folder).resolve()


def display_host_path(source: str) -> str:
    """Show an absolute host path below the current folder as `./relative`, others unchanged."""
    if not os.path.isabs(source):
        return source
    try:
        return "./" + Path(source).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return source
