"""Stacks: the file sets, environments and profiles that one audit run evaluates.

A folder yields stacks the way a team usually runs it:

- the base file alone (Compose's discovery order) is the production stack when no
  `*prod*` file exists;
- base + override file (what plain `docker compose up` loads) is the development stack;
- base + each `*prod*` file (`docker-compose.prod.yml`, `compose.production.yaml`, ...) is a
  production stack.

When the folder's `.env` sets COMPOSE_FILE, that list is the one stack (production), as
Compose would use it; COMPOSE_PROFILES from the `.env` selects the active profiles.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xgen_audit.compose.dotenv import DotenvFile, compose_selection, read_dotenv
from xgen_audit.compose.merge import MergeResult, load_compose
from xgen_audit.config import StackConfig
from xgen_audit.discovery import environment_from_name

PRODUCTION = "production"
DEVELOPMENT = "development"

# Compose's discovery order for the main file and the override file.
BASE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILE_NAMES = (
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
)
_PROD_FILE_RE = re.compile(r"^(?:docker-)?compose[._-].*prod.*\.ya?ml$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Stack:
    """One file set to audit.

    `files` are merged left to right. `env_files` feed interpolation: the process environment
    wins, then the first env file that sets a variable. `profiles` are the active profiles.
    """

    name: str
    environment: str
    files: tuple[str, ...]
    env_files: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    project_dir: str = ""


@dataclass(slots=True)
class LoadedStack:
    """A stack with its merged, interpolated tree and the variables used for interpolation."""

    stack: Stack
    merge: MergeResult
    variables: dict[str, str] = field(default_factory=dict)
    env_sources: list[DotenvFile] = field(default_factory=list)


def find_base_file(folder: Path) -> Path | None:
    """Return the main compose file Compose would pick in `folder`, or None."""
    for name in BASE_FILE_NAMES:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def find_override_file(folder: Path) -> Path | None:
    for name in OVERRIDE_FILE_NAMES:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def find_production_files(folder: Path) -> list[Path]:
    """Return the `*prod*` compose files of `folder`, sorted by name."""
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and _PROD_FILE_RE.match(path.name) and path.name not in OVERRIDE_FILE_NAMES
    )


def discover_stacks(folder: str | Path, environ: Mapping[str, str] | None = None) -> list[Stack]:
    """Return the stacks of a folder, sorted by name; [] when it has no compose file."""
    folder = Path(folder)
    env_file = folder / ".env"
    env_files = (str(env_file),) if env_file.is_file() else ()
    dotenv_values = read_dotenv(env_file, environ).values if env_files else {}
    # The process environment wins over the `.env`, as it does for interpolation.
    selection = compose_selection({**dotenv_values, **dict(environ or {})})
    profiles = selection.profiles

    if selection.files:
        files = tuple(str(folder / name) for name in selection.files)
        return [Stack("COMPOSE_FILE", PRODUCTION, files, env_files, profiles, str(folder))]

    base = find_base_file(folder)
    if base is None:
        return []
    override = find_override_file(folder)
    production = find_production_files(folder)

    stacks: list[Stack] = []
    if override is not None:
        stacks.append(
            Stack(
                f"{base.name}+{override.name}",
                DEVELOPMENT,
                (str(base), str(override)),
                env_files,
                profiles,
                str(folder),
            )
        )
    for prod in production:
        stacks.append(
            Stack(f"{base.name}+{prod.name}", PRODUCTION, (str(base), str(prod)), env_files, profiles, str(folder))
        )
    if not production:
        stacks.append(Stack(base.name, PRODUCTION, (str(base),), env_files, profiles, str(folder)))
    return sorted(stacks, key=lambda stack: stack.name)


def stack_from_files(
    files: Sequence[str | Path],
    environment: str = PRODUCTION,
    env_files: Sequence[str | Path] | None = None,
    profiles: Sequence[str] = (),
    name: str | None = None,
) -> Stack:
    """Build the stack of an explicit `-f A -f B` list; files keep their order.

    Without `env_files`, the `.env` of the first file's directory is used, as Compose does.
    """
    paths = tuple(str(path) for path in files)
    project_dir = os.path.dirname(paths[0]) if paths else "."
    if env_files is None:
        default = Path(project_dir or ".") / ".env"
        chosen = (str(default),) if default.is_file() else ()
    else:
        chosen = tuple(str(path) for path in env_files)
    label = name or "+".join(os.path.basename(path) for path in paths)
    return Stack(label, environment, paths, chosen, tuple(profiles), project_dir)


def stack_environment(files: Sequence[str | Path]) -> str:
    """Guess a stack's environment: development when any file's name marks it so."""
    names = [Path(file) for file in files]
    return DEVELOPMENT if any(environment_from_name(name) == DEVELOPMENT for name in names) else PRODUCTION


def stack_from_config(name: str, entry: StackConfig, base_dir: str | Path = ".") -> Stack:
    """Build one configured stack, its paths relative to `base_dir`.

    Without `env`, the environment comes from the file names, as for `-f` lists.
    """
    base = Path(base_dir)
    files = [str(base / path) for path in entry.files]
    env_files = [str(base / path) for path in entry.env_files] if entry.env_files else None
    environment = entry.env or stack_environment(files)
    return stack_from_files(files, environment, env_files, entry.profiles, name)


def stacks_from_config(config: Mapping[str, object], base_dir: str | Path = ".") -> list[Stack]:
    """Build stacks from `{name: {files, env, env-files, profiles}}`, paths relative to `base_dir`.

    Raises pydantic.ValidationError when an entry has the wrong shape.
    """
    stacks = [stack_from_config(name, StackConfig.model_validate(raw), base_dir) for name, raw in config.items()]
    return sorted(stacks, key=lambda stack: stack.name)


def stack_variables(
    stack: Stack, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str], list[DotenvFile]]:
    """Return the interpolation variables of a stack: the process environment first, then the
    env files in order; a variable already set is never overwritten."""
    variables = dict(environ or {})
    sources: list[DotenvFile] = []
    for path in stack.env_files:
        dotenv = read_dotenv(path, environ)
        sources.append(dotenv)
        for key, value in dotenv.values.items():
            variables.setdefault(key, value)
    return variables, sources


def load_stack(
    stack: Stack,
    environ: Mapping[str, str] | None = None,
    *,
    interpolate: bool = True,
    max_bytes: int | None = None,
) -> LoadedStack:
    """Merge and interpolate a stack's files with its variables and profiles."""
    variables, sources = stack_variables(stack, environ)
    profiles = stack.profiles
    if not profiles:
        profiles = compose_selection(variables).profiles
    result = load_compose(
        stack.files,
        variables,
        profiles,
        interpolate=interpolate,
        project_dir=stack.project_dir or None,
        **({"max_bytes": max_bytes} if max_bytes is not None else {}),
    )
    return LoadedStack(stack=stack, merge=result, variables=variables, env_sources=sources)
