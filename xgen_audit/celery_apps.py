"""Connect compose services to the Celery apps they run, and read those apps' settings.

A worker's `-A/--app` value (or the APP / CELERY_APP variables click reads) names
the app module. It is looked up, without importing anything, in the folders the
container's code comes from: the service's build context and the host folders
bind-mounted into it. Services that run the same app from the same folders with
the same environment share one analysis.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from xgen_audit.celery import CeleryAnalysis, analyze_celery
from xgen_audit.compose.model import ComposeProject, Service
from xgen_audit.compose.roles import CeleryProcess, ServiceRoles

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class CeleryApp:
    """One Celery app as the stack runs it, with the processes that run it."""

    spec: str | None
    roots: list[Path]
    analysis: CeleryAnalysis | None
    processes: list[CeleryProcess] = field(default_factory=list)
    # Why the app could not be read at all (no -A value, start script unread).
    reason: str | None = None

    @property
    def services(self) -> list[Service]:
        seen: dict[str, Service] = {}
        for process in self.processes:
            seen.setdefault(process.service.name, process.service)
        return [seen[name] for name in sorted(seen)]


@dataclass(slots=True)
class CeleryContext:
    apps: list[CeleryApp] = field(default_factory=list)

    def app_of(self, process: CeleryProcess) -> CeleryApp | None:
        for app in self.apps:
            if any(item is process for item in app.processes):
                return app
        return None


def app_spec(process: CeleryProcess) -> str | None:
    """Return the `-A` value of a Celery process, from its options or APP / CELERY_APP."""
    option = process.invocation.global_options.get("app")
    if option is not None and option.value and not option.unresolved:
        return option.value
    for variable in ("APP", "CELERY_APP"):
        env = process.service.env(variable)
        if env is not None and env.value:
            return env.value
    return None


def code_roots(service: Service, project_dir: Path) -> list[Path]:
    """Host folders that hold the service's code: bind mounts at its working dir, its build context."""
    roots: list[Path] = []
    working_dir = service.working_dir.value if service.working_dir is not None else None
    for mount in service.volumes:
        if mount.type != "bind" or not mount.source or not mount.target:
            continue
        covers_workdir = working_dir is not None and (
            posixpath.normpath(working_dir) == posixpath.normpath(mount.target)
            or posixpath.normpath(working_dir).startswith(posixpath.normpath(mount.target).rstrip("/") + "/")
        )
        source = (project_dir / Path(mount.source).expanduser()).resolve()
        if source.is_dir() and (covers_workdir or mount.source in (".", "./")):
            roots.append(source)
    if service.build is not None:
        context = (project_dir / service.build.context).resolve()
        if context.is_dir():
            roots.append(context)
            if (context / "src").is_dir():
                roots.append(context / "src")
    if not roots and project_dir.is_dir():
        roots.append(project_dir.resolve())
    return list(dict.fromkeys(roots))


def build_celery_context(project: ComposeProject, roles: ServiceRoles, app_override: str | None) -> CeleryContext:
    """Analyse every Celery app the stack's workers and beat run."""
    context = CeleryContext()
    by_key: dict[tuple, CeleryApp] = {}
    processes = [
        process
        for processes in roles.celery.values()
        for process in processes
        if process.role in ("worker", "beat")
    ]
    for process in processes:
        spec = app_spec(process) or app_override
        service = process.service
        roots = code_roots(service, project.project_dir)
        environ = {name: value.value for name, value in sorted((service.container_env or service.environment).items())}
        if spec is None:
            reason = process.invocation.unknown_reason or "the worker's command names no app (-A/--app)"
            key = ("no-app", service.name)
            if key not in by_key:
                by_key[key] = CeleryApp(spec=None, roots=roots, analysis=None, reason=reason)
                context.apps.append(by_key[key])
            by_key[key].processes.append(process)
            continue
        key = (spec, tuple(roots), tuple(environ.items()))
        if key not in by_key:
            analysis = analyze_celery(roots, spec, environ, service=service.name, base_dir=Path.cwd())
            by_key[key] = CeleryApp(spec=spec, roots=roots, analysis=analysis)
            context.apps.append(by_key[key])
        by_key[key].processes.append(process)
    if not processes and app_override is not None:
        analysis = analyze_celery([project.project_dir.resolve()], app_override, {}, base_dir=Path.cwd())
        context.apps.append(CeleryApp(spec=app_override, roots=[project.project_dir.resolve()], analysis=analysis))
    return context


def analyze_python_project(folder: Path, app_override: str | None) -> CeleryContext:
    """Analyse a project without compose files: the app named, or the one found by scanning."""
    root = folder.resolve()
    analysis = analyze_celery([root], app_override, {}, base_dir=Path.cwd())
    if analysis.app is None and app_override is None:
        return CeleryContext()
    return CeleryContext(apps=[CeleryApp(spec=app_override, roots=[root], analysis=analysis)])
