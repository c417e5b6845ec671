"""The Dockerfile a service builds, read once: its stages, HEALTHCHECKs and COPY lines.

Several rules look into the Dockerfile (is it an Airflow image, does the built
stage set a HEALTHCHECK, where does a start script come from), so it is parsed
once per file version and shared.
"""

from __future__ import annotations

import functools
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from xgen_audit.compose.model import Service


@dataclass(frozen=True, slots=True)
class Copy:
    """A COPY or ADD from the build context: its sources and the destination in the image."""

    sources: tuple[str, ...]
    destination: str


@dataclass(frozen=True, slots=True)
class Stage:
    """One FROM stage: its name, the image it starts from, its HEALTHCHECK and its copies.

    `healthcheck` is None when the stage sets none, False for `HEALTHCHECK NONE`.
    """

    name: str | None
    base: str
    healthcheck: bool | None
    copies: tuple[Copy, ...]


def dockerfile_path(service: Service, project_dir: Path) -> Path | None:
    if service.build is None:
        return None
    return project_dir / service.build.context / (service.build.dockerfile or "Dockerfile")


def service_stages(service: Service, project_dir: Path) -> tuple[Stage, ...]:
    """Return the stages of the Dockerfile a service builds; () when it has none or it cannot be read."""
    path = dockerfile_path(service, project_dir)
    if path is None:
        return ()
    try:
        status = path.stat()
    except (OSError, ValueError):
        return ()
    return _read_stages(str(path), status.st_mtime_ns, status.st_size)


def built_stage(service: Service, project_dir: Path) -> int | None:
    """Return the index of the stage the service builds: `build.target`, else the last one."""
    stages = service_stages(service, project_dir)
    if not stages:
        return None
    names = {stage.name: index for index, stage in enumerate(stages) if stage.name}
    return names.get(service.build.target or "", len(stages) - 1) if service.build else None


@functools.lru_cache(maxsize=256)
def _read_stages(path: str, _mtime_ns: int, _size: int) -> tuple[Stage, ...]:
    """Parse a Dockerfile; the modification time and size in the key drop stale entries."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    stages: list[Stage] = []
    for line in text.replace("\\\n", " ").splitlines():
        words = line.strip().split()
        if not words:
            continue
        instruction = words[0].upper()
        arguments = [word for word in words[1:] if not word.startswith("--")]
        if instruction == "FROM":
            base = arguments[0].lower() if arguments else ""
            name = arguments[2].lower() if len(arguments) >= 3 and arguments[1].upper() == "AS" else None
            stages.append(Stage(name, base, None, ()))
        elif not stages:
            continue
        elif instruction == "HEALTHCHECK" and len(words) >= 2:
            stage = stages[-1]
            stages[-1] = Stage(stage.name, stage.base, words[1].upper() != "NONE", stage.copies)
        elif instruction in ("COPY", "ADD"):
            copy = _copy(line.strip()[len(words[0]):])
            if copy is not None:
                stage = stages[-1]
                stages[-1] = Stage(stage.name, stage.base, stage.healthcheck, (*stage.copies, copy))
    return tuple(stages)


def _copy(arguments: str) -> Copy | None:
    """Read `COPY [--chown=...] SRC... DEST`; a copy from another stage or image is skipped."""
    if any(word.startswith("--from") for word in arguments.split()):
        return None
    try:
        words = [word for word in shlex.split(arguments) if not word.startswith("--")]
    except ValueError:
        return None
    if len(words) < 2:
        return None
    *sources, destination = words
    return Copy(tuple(sources), destination)


def stage_has_healthcheck(service: Service, project_dir: Path) -> bool:
    """Return whether the stage the service builds sets a HEALTHCHECK.

    A stage built FROM an earlier stage inherits that stage's HEALTHCHECK. Base
    images are not read.
    """
    stages = service_stages(service, project_dir)
    index = built_stage(service, project_dir)
    names = {stage.name: position for position, stage in enumerate(stages) if stage.name}
    seen: set[int] = set()
    while index is not None and index not in seen:
        seen.add(index)
        stage = stages[index]
        if stage.healthcheck is not None:
            return stage.healthcheck
        index = names.get(stage.base)
    return False


def copied_source(service: Service, project_dir: Path, image_path: str) -> Path | None:
    """Return the file in the build context that a COPY or ADD puts at `image_path`."""
    if service.build is None:
        return None
    context = (project_dir / service.build.context).resolve()
    for stage in service_stages(service, project_dir):
        for copy in stage.copies:
            for source in copy.sources:
                destination = copy.destination
                if destination == image_path or (
                    destination.endswith("/") and destination + os.path.basename(source) == image_path
                ):
                    candidate = (context / source).resolve()
                    if candidate.is_file() and context in candidate.parents:
                        return candidate
    return None
