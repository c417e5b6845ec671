"""Run an audit: find the stacks, merge their files, build the model, run the rules.

This is the library entry point; it returns results and never prints.

A unit of checking is a stack: the compose files Compose would merge, the `.env`
files that feed interpolation and the active profiles. A file checked on its own
is a stack of one file (with its folder's `.env`), reported without a stack name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xgen_audit.compose.build import build_project
from xgen_audit.compose.environment import load_container_env
from xgen_audit.celery_apps import CeleryContext, analyze_python_project, build_celery_context
from xgen_audit.compose.model import ComposeProject, StructureProblem
from xgen_audit.compose.stacks import (
    Stack,
    discover_stacks,
    find_base_file,
    load_stack,
    stack_environment,
    stack_from_files,
)
from xgen_audit.discovery import display_path, environment_from_name, is_compose_name, walk_compose_files
from xgen_audit.engine import AuditContext, iter_rule_ids, registry, run_rules
from xgen_audit.findings import Check, Finding, Status
from xgen_audit.parse.tree import Loc
from xgen_audit.parse.yaml_reader import DEFAULT_MAX_BYTES
from xgen_audit.rules_meta import Area, load_catalog

logger = logging.getLogger(__name__)

PARSE_RULE = "XG001"


@dataclass(slots=True)
class AuditOptions:
    environment: str | None = None
    rule_ids: list[str] | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    files: list[Path] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    env_files: list[Path] | None = None
    use_environment: bool = False
    stacks: list[Stack] = field(default_factory=list)
    celery_app: str | None = None
    # Processes to spread stacks and files over; 1 checks them in this process.
    jobs: int = 1
    # Paths the configuration excludes; a file named with -f is still checked.
    excluded: Callable[[Path], bool] = field(default=lambda path: False)


@dataclass(slots=True)
class UnitInfo:
    """The files, environment and profiles one checked unit was built from, for the report."""

    name: str | None
    environment: str
    files: list[str]
    env_files: list[str]
    profiles: list[str]
    dropped_services: dict[str, list[str]]

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "environment": self.environment,
            "files": self.files,
            "env_files": self.env_files,
            "profiles": self.profiles,
            "dropped_services": self.dropped_services,
        }


@dataclass(slots=True)
class AuditResult:
    findings: list[Finding] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    units: list[UnitInfo] = field(default_factory=list)

    def sort(self) -> None:
        self.findings.sort(key=Finding.sort_key)
        self.checks.sort(key=Check.sort_key)
        self.files.sort()
        self.units.sort(key=lambda unit: (unit.name or "", unit.files))


@dataclass(slots=True)
class _Unit:
    stack: Stack | None
    named: bool
    # A folder without compose files whose Celery configuration is checked alone.
    python_root: Path | None = None


def compose_rule_ids(selected: list[str] | None) -> list[str]:
    """Return the selected rules that run on a stack: compose, meta and Celery rules."""
    registered = registry()
    return [rule_id for rule_id in iter_rule_ids(selected) if rule_id in registered]


# Compose rules that also read the Celery configuration (worker_concurrency).
_COMPOSE_RULES_READING_CELERY = {"XG301"}


def _wants_celery(rule_ids: list[str]) -> bool:
    catalog = load_catalog()
    return any(
        catalog[rule_id].area is Area.CELERY or rule_id in _COMPOSE_RULES_READING_CELERY for rule_id in rule_ids
    )


def plan_units(paths: list[Path], options: AuditOptions, environ: Mapping[str, str]) -> list[_Unit]:
    """Decide what to check: explicit `-f` stacks, configured stacks, or what folders contain.

    In a folder, the stacks Compose would run (base, base + override, base + each
    production file) are checked. Another compose file beside a base file is checked
    merged with it, and a compose file without a base is checked on its own. A file
    named on the command line follows the same rule.
    """
    if options.files:
        environment = options.environment or stack_environment(options.files)
        env_files = [display_path(path) for path in options.env_files] if options.env_files is not None else None
        stack = stack_from_files([display_path(path) for path in options.files], environment, env_files, options.profiles)
        return [_Unit(stack, named=True)]
    units = [_Unit(stack, named=True) for stack in options.stacks]
    python_files = []
    for path in paths:
        if path.is_dir():
            folder_units = _folder_units(path, options, environ)
            units.extend(folder_units or [_Unit(stack=None, named=False, python_root=path)])
        elif path.suffix == ".py":
            python_files.append(path)
        elif not options.excluded(path):
            units.append(_named_file_unit(path, options))
    if python_files and not units:
        # A Celery module named alone (as a pre-commit hook passes changed files): the
        # app it belongs to is found from the current folder, the project root.
        units.append(_Unit(stack=None, named=False, python_root=Path(".")))
    return units


def _folder_units(root: Path, options: AuditOptions, environ: Mapping[str, str]) -> list[_Unit]:
    units: list[_Unit] = []
    by_folder: dict[str, list[Path]] = {}
    for file in walk_compose_files(root):
        if not options.excluded(file):
            by_folder.setdefault(display_path(file.parent), []).append(file)
    for folder in sorted(by_folder):
        stacks = [
            stack
            for stack in discover_stacks(folder, environ)
            if not any(options.excluded(Path(name)) for name in stack.files)
        ]
        covered = {os.path.normpath(name) for stack in stacks for name in stack.files}
        for stack in stacks:
            if options.profiles:
                stack = Stack(stack.name, stack.environment, stack.files, stack.env_files, tuple(options.profiles), stack.project_dir)
            if len(stack.files) == 1 and stack.name != "COMPOSE_FILE":
                units.append(_Unit(stack, named=False))
            else:
                units.append(_Unit(_qualified(stack, folder), named=True))
        base = find_base_file(Path(folder))
        for file in by_folder[folder]:
            if os.path.normpath(display_path(file)) in covered:
                continue
            if base is not None and base.name != file.name:
                # Another file beside a base file is an override of it (`-f base -f file`).
                shown = [display_path(base), display_path(file)]
                stack = stack_from_files(shown, environment_from_name(file), None, options.profiles)
                units.append(_Unit(_qualified(stack, folder), named=True))
            else:
                units.append(_single_unit(file, options))
    return units


def _qualified(stack: Stack, folder: str) -> Stack:
    """Prefix a discovered stack's name with its folder, so names stay unique across folders."""
    name = stack.name if folder in ("", ".") else f"{folder}/{stack.name}"
    return Stack(name, stack.environment, stack.files, stack.env_files, stack.profiles, stack.project_dir)


def _named_file_unit(path: Path, options: AuditOptions) -> _Unit:
    """Check a named file alone, or merged with its base when it is an override of one.

    An override or prod file beside a base file is never deployed alone (as a
    pre-commit hook passes changed files one by one), so it is checked as
    `-f base -f file`, like the same file found in a folder walk.
    """
    base = find_base_file(path.parent) if path.parent.is_dir() else None
    if base is None or base.name == path.name or not is_compose_name(path.name):
        return _single_unit(path, options)
    shown = [display_path(base), display_path(path)]
    environment = stack_environment([base, path])
    stack = stack_from_files(shown, environment, None, options.profiles)
    folder = display_path(path.parent)
    return _Unit(_qualified(stack, folder), named=True)


def _single_unit(path: Path, options: AuditOptions) -> _Unit:
    shown = display_path(path)
    environment = environment_from_name(path)
    env_files = [display_path(item) for item in options.env_files] if options.env_files is not None else None
    stack = stack_from_files([shown], environment, env_files, options.profiles)
    return _Unit(stack, named=False)


def audit_paths(paths: list[Path], options: AuditOptions) -> AuditResult:
    """Check every stack and file found in `paths` (or the explicit `-f` files)."""
    environ = dict(os.environ) if options.use_environment else {}
    result = AuditResult()
    seen: set[str] = set()
    units = plan_units(paths, options, environ)
    for outcome in _map_units(units, options, environ):
        if outcome is None:
            continue
        findings, checks, info = outcome
        result.findings.extend(findings)
        result.checks.extend(checks)
        result.units.append(info)
        for name in info.files:
            if name not in seen:
                seen.add(name)
                result.files.append(name)
    result.sort()
    return result


def _audit_unit(unit: _Unit, options: AuditOptions, environ: Mapping[str, str]):
    if unit.stack is None:
        return audit_python_project(unit.python_root, options)
    return audit_stack(unit.stack, options, environ, named=unit.named)


def _audit_unit_in_worker(job: tuple[_Unit, AuditOptions, dict]):
    """Audit one unit in a worker process and return plain field values.

    Pickling field dicts and rebuilding the models without validation in the
    parent costs less than pickling the pydantic models themselves.
    """
    unit, options, environ = job
    outcome = _audit_unit(unit, options, environ)
    if outcome is None:
        return None
    findings, checks, info = outcome
    return [dict(finding.__dict__) for finding in findings], [dict(check.__dict__) for check in checks], info


def _from_worker(packed):
    if packed is None:
        return None
    findings, checks, info = packed
    return (
        [Finding.model_construct(**fields) for fields in findings],
        [Check.model_construct(**fields) for fields in checks],
        info,
    )


def _map_units(units: list[_Unit], options: AuditOptions, environ: Mapping[str, str]):
    """Audit units in this process, or spread them over `options.jobs` processes.

    Results come back in the order of `units`, and the report is sorted after,
    so the output is the same whatever the number of jobs.
    """
    if options.jobs <= 1 or len(units) < 2:
        return [_audit_unit(unit, options, environ) for unit in units]
    from concurrent.futures import ProcessPoolExecutor
    from dataclasses import replace

    # The exclusion predicate was applied while planning and may not pickle.
    portable = replace(options, excluded=_include_everything)
    jobs = [(unit, portable, dict(environ)) for unit in units]
    chunk = max(1, len(jobs) // (options.jobs * 4))
    with ProcessPoolExecutor(max_workers=options.jobs) as pool:
        return [_from_worker(packed) for packed in pool.map(_audit_unit_in_worker, jobs, chunksize=chunk)]


def _include_everything(path: Path) -> bool:
    return False


def audit_file(path: Path, options: AuditOptions) -> tuple[list[Finding], list[Check]]:
    """Check one compose file on its own, with its folder's `.env` for interpolation."""
    findings, checks, _info = audit_stack(_single_unit(path, options).stack, options, {}, named=False)
    return findings, checks


def audit_stack(
    stack: Stack, options: AuditOptions, environ: Mapping[str, str], named: bool = True
) -> tuple[list[Finding], list[Check], UnitInfo]:
    """Merge one stack's files as Compose does and run the compose rules on the result."""
    environment = options.environment or stack.environment
    label = stack.name if named else None
    rule_ids = compose_rule_ids(options.rule_ids)
    first = stack.files[0]

    loaded = load_stack(stack, environ, max_bytes=options.max_bytes)
    merge = loaded.merge
    if merge.dropped_services and not _has_services(merge.root) and not stack.profiles:
        # Every service sits behind a profile and none is active: the file is meant to
        # run with profiles the deployment chooses, so check them all rather than nothing.
        all_profiles = Stack(stack.name, stack.environment, stack.files, stack.env_files, ("*",), stack.project_dir)
        loaded = load_stack(all_profiles, environ, max_bytes=options.max_bytes)
        merge = loaded.merge
    info = UnitInfo(
        name=label,
        environment=environment,
        files=list(dict.fromkeys([*stack.files, *merge.files_read])),
        env_files=list(stack.env_files),
        profiles=list(merge.active_profiles),
        dropped_services={name: list(profiles) for name, profiles in sorted(merge.dropped_services.items())},
    )

    parse_errors = [(problem.message, problem.loc) for problem in merge.problems if problem.kind == "syntax"]
    project_dir = Path(stack.project_dir or os.path.dirname(first) or ".")
    project = build_project(merge.root, list(stack.files), project_dir, Loc(first, 1, 1))
    if parse_errors:
        context = AuditContext(compose=project, environment=environment, parse_errors=parse_errors)
        findings, checks = _unparsable(context, rule_ids, first, label)
        return findings, checks, info

    for problem in merge.problems:
        if problem.severity == "error":
            project.problems.append(StructureProblem(message=problem.message, loc=problem.loc))
        else:
            logger.warning("%s: %s", problem.loc, problem.message)
    missing = []
    for problem in merge.interpolation_problems:
        if problem.kind == "required":
            missing.append((problem.message, problem.loc))
        elif problem.kind == "invalid":
            project.problems.append(StructureProblem(message=problem.message, loc=problem.loc))
    project.problems.sort(key=lambda problem: problem.loc)
    load_container_env(project)

    context = AuditContext(
        compose=project, environment=environment, missing_variables=missing, variables=loaded.variables
    )
    if _wants_celery(rule_ids):
        context.celery = build_celery_context(project, context.roles, options.celery_app)
        info.files.extend(_celery_files(context.celery))
    findings, checks = run_rules(context, rule_ids, first, label)
    return findings, checks, info


def audit_python_project(folder: Path, options: AuditOptions) -> tuple[list[Finding], list[Check], UnitInfo] | None:
    """Check the Celery configuration of a folder that has no compose files; None when it has no app."""
    rule_ids = [rule_id for rule_id in compose_rule_ids(options.rule_ids) if load_catalog()[rule_id].area is Area.CELERY]
    if not rule_ids:
        return None
    celery = analyze_python_project(folder, options.celery_app)
    if not celery.apps:
        return None
    shown = display_path(folder)
    project = ComposeProject(files=[], project_dir=folder, root_loc=Loc(shown, 1, 1))
    context = AuditContext(compose=project, environment=options.environment or "production", celery=celery)
    findings, checks = run_rules(context, rule_ids, shown, None)
    info = UnitInfo(
        name=None,
        environment=context.environment,
        files=_celery_files(celery),
        env_files=[],
        profiles=[],
        dropped_services={},
    )
    return findings, checks, info


def _celery_files(celery: CeleryContext) -> list[str]:
    files: list[str] = []
    for app in celery.apps:
        if app.analysis is not None:
            files.extend(app.analysis.files_read)
    return list(dict.fromkeys(files))


def _has_services(root) -> bool:
    services = root.get("services") if root is not None else None
    return bool(getattr(services, "entries", None))


def _unparsable(context: AuditContext, rule_ids: list[str], first: str, label: str | None):
    findings, checks = run_rules(context, [rule for rule in rule_ids if rule == PARSE_RULE], first, label)
    catalog = load_catalog()
    for rule_id in rule_ids:
        if rule_id != PARSE_RULE:
            checks.append(
                Check(
                    rule=rule_id,
                    name=catalog[rule_id].name,
                    file=first,
                    status=Status.UNKNOWN,
                    reason="a file could not be parsed (see XG001)",
                    stack=label,
                )
            )
    return findings, checks


__all__ = [
    "AuditOptions",
    "AuditResult",
    "UnitInfo",
    "audit_file",
    "audit_paths",
    "audit_stack",
    "plan_units",
]
