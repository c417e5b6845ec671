"""Finding Python modules and files under the project's search roots, without importing them.

A search root plays the part of one `sys.path` entry: `a.b` is `ROOT/a/b.py` or
`ROOT/a/b/__init__.py`. Roots are tried in the order given, as Python tries
`sys.path`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Folders that hold installed packages, tool caches or other projects' code; a
# `Celery(` found there is not the project's app.
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".venv",
        "venv",
        "env",
        ".env",
        "virtualenv",
        "site-packages",
        "dist-packages",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "build",
        "dist",
        ".eggs",
    }
)

MAX_SCANNED_FILES = 5000


def is_identifier_path(dotted: str) -> bool:
    return bool(dotted) and all(part.isidentifier() for part in dotted.split("."))


def find_module(dotted: str, roots: list[Path]) -> tuple[Path, bool] | None:
    """Return (file, is_package) for the module `dotted`, or None when no root has it."""
    if not is_identifier_path(dotted):
        return None
    parts = dotted.split(".")
    for root in roots:
        base = root.joinpath(*parts)
        package_init = base / "__init__.py"
        if package_init.is_file():
            return package_init, True
        module_file = base.with_name(base.name + ".py")
        if module_file.is_file():
            return module_file, False
    return None


def is_package_dir(dotted: str, roots: list[Path]) -> bool:
    """Tell whether `dotted` is a folder under a root (a package, possibly without `__init__.py`)."""
    if not is_identifier_path(dotted):
        return False
    return any(root.joinpath(*dotted.split(".")).is_dir() for root in roots)


def module_name_for(path: Path, roots: list[Path]) -> str | None:
    """Return the dotted module name of `path` relative to the first root that contains it."""
    for root in roots:
        try:
            relative = path.resolve().relative_to(root.resolve())
        except ValueError:
            continue
        parts = list(relative.with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        if parts and all(part.isidentifier() for part in parts):
            return ".".join(parts)
    return None


def resolve_relative(current_module: str, is_package: bool, level: int, target: str | None) -> str | None:
    """Turn `from ..x import y` inside `current_module` into an absolute module name."""
    if level == 0:
        return target
    package_parts = current_module.split(".") if current_module else []
    if not is_package:
        package_parts = package_parts[:-1]
    drop = level - 1
    if drop > len(package_parts):
        return None
    base = package_parts[: len(package_parts) - drop] if drop else package_parts
    if target:
        base = base + target.split(".")
    return ".".join(base) if base else None


def iter_python_files(root: Path) -> Iterator[Path]:
    """Yield the project's Python files under `root`, skipping virtualenvs, caches and VCS folders."""
    count = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            count += 1
            if count > MAX_SCANNED_FILES:
                return
            yield Path(folder) / name
