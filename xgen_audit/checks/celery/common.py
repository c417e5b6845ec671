"""Steps the Celery rules share: which apps to judge, task options, and how to word settings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from xgen_audit.celery.model import CeleryAnalysis, SettingValue, TaskInfo
from xgen_audit.celery.model import Unknown as UnknownValue
from xgen_audit.celery_apps import CeleryApp, CeleryContext
from xgen_audit.compose.roles import CeleryProcess
from xgen_audit.engine import AuditContext, Outcome, Unknown, Violation
from xgen_audit.parse.tree import Loc

# Problems that leave the reader without an app: their message is the reason a rule cannot decide.
_NO_APP_PROBLEMS = ("syntax-error", "unreadable", "module-not-found", "app-not-found")

REDIS_SCHEMES = ("redis://", "rediss://", "redis+socket://", "sentinel://")


@dataclass(frozen=True)
class ReadApp:
    """A Celery app whose configuration was read, with the service named in its findings."""

    app: CeleryApp
    analysis: CeleryAnalysis
    service: str | None

    @property
    def workers(self) -> list[CeleryProcess]:
        return [process for process in self.app.processes if process.role == "worker"]


def celery_apps(context: AuditContext) -> list[CeleryApp]:
    celery = context.celery
    if not isinstance(celery, CeleryContext):
        return []
    return list(celery.apps)


def service_of(app: CeleryApp) -> str | None:
    """Return the service that runs an app, or None when several (or none) do."""
    names = [service.name for service in app.services]
    return names[0] if len(names) == 1 else None


def runs_as(app: CeleryApp, roles: tuple[str, ...] | None) -> bool:
    """Tell whether the stack runs the app in one of `roles`; an app read without compose always counts."""
    if roles is None or not app.processes:
        return True
    return any(process.role in roles for process in app.processes)


def readable_apps(context: AuditContext, roles: tuple[str, ...] | None = ("worker",)) -> Iterator[ReadApp | Unknown]:
    """Yield each app run in `roles` whose configuration was read, or Unknown with the reason it was not."""
    for app in celery_apps(context):
        if not runs_as(app, roles):
            continue
        service = service_of(app)
        where = app.processes[0].invocation.loc if app.processes else None
        if app.analysis is None:
            yield Unknown(app.reason or "the Celery app could not be read", service, where)
        elif app.analysis.app is None:
            yield Unknown(missing_app_reason(app.analysis), service, missing_app_loc(app.analysis) or where)
        else:
            yield ReadApp(app, app.analysis, service)


def judge_apps(
    context: AuditContext, judge: Callable[[ReadApp], Iterable[Outcome]], roles: tuple[str, ...] | None = ("worker",)
) -> Iterator[Outcome]:
    """Run `judge` on every readable app run in `roles`, passing on the reasons others cannot be judged."""
    outcomes: list[Outcome] = []
    for read in readable_apps(context, roles):
        if isinstance(read, ReadApp):
            outcomes.extend(judge(read))
        else:
            outcomes.append(read)
    yield from deduplicated(outcomes)


def missing_app_reason(analysis: CeleryAnalysis) -> str:
    for problem in analysis.problems:
        if problem.kind in _NO_APP_PROBLEMS:
            return problem.message
    return "the Celery app was not found"


def missing_app_loc(analysis: CeleryAnalysis) -> Loc | None:
    for problem in analysis.problems:
        if problem.kind in _NO_APP_PROBLEMS:
            return problem.loc
    return None


def deduplicated(outcomes: Iterable[Outcome]) -> Iterator[Outcome]:
    """Drop a finding repeated at the same place, as when two services share one configuration."""
    seen: set[tuple[Loc, str]] = set()
    for outcome in outcomes:
        if isinstance(outcome, Violation):
            key = (outcome.loc, outcome.message)
            if key in seen:
                continue
            seen.add(key)
        yield outcome


# ---- wording ---------------------------------------------------------------------


def label(analysis: CeleryAnalysis, name: str) -> str:
    """Return a setting's name as the project writes it: as assigned, or with the app's namespace."""
    setting = analysis.get(name)
    if setting.written_as:
        return setting.written_as
    namespace = analysis.namespace
    if namespace:
        return f"{namespace}_{setting.name.upper()}" if namespace.isupper() else f"{namespace}_{setting.name}"
    return setting.name


def show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return str(value)


def source_words(setting: SettingValue) -> str | None:
    """Return "from VAR" or "from VAR, default X" for a value read from the environment, else None."""
    if setting.env_var is None:
        return None
    if setting.from_default_of_env:
        return f"from {setting.env_var}, default {show(setting.value)}"
    return f"from {setting.env_var}"


def origin(setting: SettingValue) -> str:
    words = source_words(setting)
    return f" ({words})" if words else ""


def state(analysis: CeleryAnalysis, name: str) -> str:
    """Return "`name` is VALUE (from VAR)" or "`name` is not set (Celery's default is X)"."""
    setting = analysis.get(name)
    if setting.source == "default":
        return f"`{label(analysis, name)}` is not set (Celery's default is {show(setting.value)})"
    return f"`{label(analysis, name)}` is {show(setting.value)}{origin(setting)}"


def unknown_setting(read: ReadApp, name: str) -> Unknown:
    setting = read.analysis.get(name)
    reason = setting.reason or "its value cannot be known statically"
    return Unknown(f"`{label(read.analysis, name)}`: {reason}", read.service, setting.loc)


def task_names(tasks: list[TaskInfo], limit: int = 5) -> str:
    names = [task.name for task in tasks]
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f" and {len(names) - limit} more"
    return shown


# ---- task options --------------------------------------------------------------


@dataclass(frozen=True)
class Effective:
    """A task option as the worker applies it: its value and the place that decides it."""

    value: Any
    loc: Loc | None
    # "annotation", "task" (decorator or base class) or "setting".
    source: str


def task_option(analysis: CeleryAnalysis, task: TaskInfo, option: str, setting: str) -> Effective:
    """Return a task option after Celery's precedence: annotations, then the task's own value, then the setting.

    The value is an `UnknownValue` when it cannot be known statically.
    """
    annotated = annotation(analysis, task.name, option)
    if annotated is not None:
        return annotated
    own = task.options.get(option)
    if own is not None and own.value is not None:
        return Effective(own.value, own.loc, "task")
    value = analysis.value(setting)
    return Effective(value, analysis.get(setting).loc, "setting")


def annotation(analysis: CeleryAnalysis, task_name: str, option: str) -> Effective | None:
    """Return the value `task_annotations` gives a task's option, or None when it gives none.

    Annotations are a dict, or a list of dicts, keyed by task name or '*'. Other
    forms (callables, import paths) make the result unknown.
    """
    setting = analysis.get("task_annotations")
    if setting.source == "default" or setting.value is None:
        return None
    if not setting.known:
        return Effective(UnknownValue(setting.reason or "task_annotations cannot be read statically", setting.loc), setting.loc, "annotation")
    mappings = setting.value if isinstance(setting.value, (list, tuple)) else [setting.value]
    for mapping in mappings:
        if not isinstance(mapping, dict):
            reason = "task_annotations holds an object or import path that cannot be read statically"
            return Effective(UnknownValue(reason, setting.loc), setting.loc, "annotation")
        for key in (task_name, "*"):
            entry = mapping.get(key)
            if isinstance(entry, dict) and option in entry:
                return Effective(entry[option], setting.loc, "annotation")
    return None


def is_unknown(value: Any) -> bool:
    return isinstance(value, UnknownValue)


def late_ack_tasks(analysis: CeleryAnalysis) -> tuple[list[TaskInfo], list[tuple[TaskInfo, UnknownValue]]]:
    """Return the tasks that acknowledge late, and those whose `acks_late` is unknown."""
    late: list[TaskInfo] = []
    unknown: list[tuple[TaskInfo, UnknownValue]] = []
    for task in analysis.tasks:
        effective = task_option(analysis, task, "acks_late", "task_acks_late")
        if is_unknown(effective.value):
            unknown.append((task, effective.value))
        elif effective.value:
            late.append(task)
    return late, unknown


def redis_broker(analysis: CeleryAnalysis) -> bool | None:
    """Tell whether the broker is Redis (or Sentinel); None when the broker URL is unknown."""
    setting = analysis.get("broker_url")
    if not setting.known:
        return None
    value = setting.value
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if not isinstance(value, str):
        # NOTE: Celery's default broker (no URL) is amqp, so a missing URL is not Redis.
        return False
    first = value.split(";", 1)[0].strip().lower()
    return first.startswith(REDIS_SCHEMES)
