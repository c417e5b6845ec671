"""Celery's command-line option tables, read from the installed Celery.

The tables come from Celery's own click definitions (`celery.bin.celery`,
`celery.bin.worker`, `celery.bin.beat`), so `-c4`, `--concurrency=4` or
`-Ofair` mean what the installed Celery makes of them. Importing those modules
costs about 0.2 s, so the extracted tables are cached per Celery version in the
user's cache folder and later runs read the cache without importing Celery.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One click option: its Python name, spellings, whether it takes a value, env vars."""

    name: str
    opts: tuple[str, ...]
    takes_value: bool
    envvars: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CommandTable:
    command: str
    options: tuple[OptionSpec, ...]
    # click's auto_envvar_prefix for this command, e.g. CELERY_WORKER.
    env_prefix: str

    def by_flag(self) -> dict[str, OptionSpec]:
        return {flag: spec for spec in self.options for flag in spec.opts}


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "xgen-audit"


def celery_version() -> str | None:
    try:
        return metadata.version("celery")
    except metadata.PackageNotFoundError:
        return None


@cache
def load_tables() -> dict[str, CommandTable]:
    """Return the option tables of `celery` (global), `worker` and `beat`."""
    version = celery_version()
    if version is None:
        raise RuntimeError("celery is not installed; it is a dependency of xgen-audit")
    cache_file = _cache_dir() / f"celery-cli-{version}-v{CACHE_FORMAT}.json"
    try:
        return _decode(json.loads(cache_file.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    tables = extract_tables()
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(_encode(tables), sort_keys=True), encoding="utf-8")
        os.replace(temporary, cache_file)
    except OSError as error:
        # A read-only home only costs the import on every run.
        logger.debug("cannot write the Celery option cache %s: %s", cache_file, error)
    return tables


def extract_tables() -> dict[str, CommandTable]:
    """Read the option definitions from Celery's click commands (imports Celery)."""
    import click
    from celery.bin.beat import beat
    from celery.bin.celery import celery
    from celery.bin.worker import worker

    def table(command: click.Command, name: str, prefix: str) -> CommandTable:
        specs = []
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            envvar = param.envvar
            envvars = (envvar,) if isinstance(envvar, str) else tuple(envvar or ())
            specs.append(
                OptionSpec(
                    name=param.name or "",
                    opts=tuple(param.opts) + tuple(param.secondary_opts),
                    takes_value=not (param.is_flag or param.count),
                    envvars=envvars,
                )
            )
        return CommandTable(command=name, options=tuple(specs), env_prefix=prefix)

    return {
        "celery": table(celery, "celery", "CELERY"),
        "worker": table(worker, "worker", "CELERY_WORKER"),
        "beat": table(beat, "beat", "CELERY_BEAT"),
    }


def _encode(tables: dict[str, CommandTable]) -> dict:
    return {
        "format": CACHE_FORMAT,
        "tables": {
            name: {
                "env_prefix": table.env_prefix,
                "options": [
                    {"name": spec.name, "opts": list(spec.opts), "takes_value": spec.takes_value, "envvars": list(spec.envvars)}
                    for spec in table.options
                ],
            }
            for name, table in tables.items()
        },
    }


def _decode(data: dict) -> dict[str, CommandTable]:
    if data.get("format") != CACHE_FORMAT:
        raise ValueError("old cache format")
    tables = {}
    for name, table in data["tables"].items():
        options = tuple(
            OptionSpec(
                name=item["name"],
                opts=tuple(item["opts"]),
                takes_value=bool(item["takes_value"]),
                envvars=tuple(item["envvars"]),
            )
            for item in table["options"]
        )
        tables[name] = CommandTable(command=name, options=options, env_prefix=table["env_prefix"])
    if set(tables) != {"celery", "worker", "beat"}:
        raise ValueError("incomplete cache")
    return tables
