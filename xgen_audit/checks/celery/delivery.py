"""Delivery rules: late acknowledgement, lost workers, prefetch and the Redis visibility timeout."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from xgen_audit.celery.model import TaskInfo
from xgen_audit.checks.celery.common import (
    ReadApp,
    is_unknown,
    judge_apps,
    label,
    late_ack_tasks,
    redis_broker,
    state,
    task_names,
    task_option,
    unknown_setting,
)
from xgen_audit.compose.roles import CeleryProcess
from xgen_audit.engine import AuditContext, Checked, Outcome, Unknown, Violation, rule
from xgen_audit.parse.tree import Loc

# kombu's Redis transport (`Channel.visibility_timeout`), in seconds.
DEFAULT_VISIBILITY_TIMEOUT = 3600


# ---- XG401 -----------------------------------------------------------------------


@rule("XG401")
def acks_late_unset(context: AuditContext) -> Iterator[Outcome]:
    yield from judge_apps(context, _judge_acks_late)


def _judge_acks_late(read: ReadApp) -> Iterator[Outcome]:
    analysis = read.analysis
    setting = analysis.get("task_acks_late")
    if not setting.known:
        yield unknown_setting(read, "task_acks_late")
        return
    if setting.value:
        # Tasks that opt out with `acks_late=False` made that choice on purpose.
        yield Checked(read.service)
        return

    early: list[TaskInfo] = []
    late = 0
    for task in analysis.tasks:
        effective = task_option(analysis, task, "acks_late", "task_acks_late")
        if is_unknown(effective.value):
            yield Unknown(f"`acks_late` of task {task.name}: {effective.value.reason}", read.service, effective.loc)
        elif effective.value:
            late += 1
        elif effective.source == "setting":
            early.append(task)

    if not early:
        yield Checked(read.service)
        return
    if late:
        for task in early:
            yield Violation(
                f"task {task.name} does not set `acks_late=True` and {state(analysis, 'task_acks_late')}, "
                "so the task is lost when its worker dies while it runs",
                task.loc,
                read.service,
            )
        return
    if len(early) == 1:
        tasks = f"task {early[0].name} does not set `acks_late=True`"
    else:
        tasks = f"none of the {len(early)} tasks sets `acks_late=True` ({task_names(early)})"
    yield Violation(
        f"{state(analysis, 'task_acks_late')} and {tasks}, so a task is lost when its worker dies while it runs",
        setting.loc,
        read.service,
    )


# ---- XG402 -----------------------------------------------------------------------


@rule("XG402")
def reject_on_worker_lost(context: AuditContext) -> Iterator[Outcome]:
    yield from judge_apps(context, _judge_reject_on_worker_lost)


def _judge_reject_on_worker_lost(read: ReadApp) -> Iterator[Outcome]:
    analysis = read.analysis
    acks_late = analysis.get("task_acks_late")
    if not acks_late.known:
        yield unknown_setting(read, "task_acks_late")
        return
    late, unknown = late_ack_tasks(analysis)
    for task, value in unknown:
        yield Unknown(f"`acks_late` of task {task.name}: {value.reason}", read.service, task.loc)
    if not acks_late.value and not late:
        return

    exposed: list[TaskInfo] = []
    for task in late:
        verdict = _worker_lost_handled(read, task)
        if isinstance(verdict, Unknown):
            yield verdict
        elif not verdict:
            exposed.append(task)

    globally_handled = _setting_handles_worker_lost(read)
    if isinstance(globally_handled, Unknown):
        yield globally_handled
        return
    if acks_late.value and not globally_handled and (exposed or not analysis.tasks):
        # The settings leave every late task exposed unless the task itself overrides them.
        yield Violation(
            f"`{label(analysis, 'task_acks_late')}` is True but {state(analysis, 'task_reject_on_worker_lost')}, "
            "so the message of a task whose worker process is killed (OOM, SIGKILL) is acknowledged and the task is lost",
            analysis.get("task_reject_on_worker_lost").loc,
            read.service,
        )
        return
    for task in exposed:
        yield Violation(
            f"task {task.name} acknowledges late but sets neither `reject_on_worker_lost=True` nor "
            f"`retry_on_worker_lost=True`, so its message is acknowledged and the task is lost when its "
            "worker process is killed (OOM, SIGKILL)",
            task.loc,
            read.service,
        )
    if not exposed:
        yield Checked(read.service)


def _setting_handles_worker_lost(read: ReadApp) -> bool | Unknown:
    """Tell whether the settings requeue or retry a task whose worker process died."""
    for name in ("task_reject_on_worker_lost", "task_retry_on_worker_lost"):
        setting = read.analysis.get(name)
        if not setting.known:
            return unknown_setting(read, name)
        if setting.value:
            return True
    return False


def _worker_lost_handled(read: ReadApp, task: TaskInfo) -> bool | Unknown:
    for option, setting in (("reject_on_worker_lost", "task_reject_on_worker_lost"), ("retry_on_worker_lost", "task_retry_on_worker_lost")):
        effective = task_option(read.analysis, task, option, setting)
        if is_unknown(effective.value):
            return Unknown(f"`{option}` of task {task.name}: {effective.value.reason}", read.service, effective.loc)
        if effective.value:
            return True
    return False


# ---- XG403 -----------------------------------------------------------------------


@rule("XG403")
def prefetch_with_acks_late(context: AuditContext) -> Iterator[Outcome]:
    yield from judge_apps(context, _judge_prefetch)


def _judge_prefetch(read: ReadApp) -> Iterator[Outcome]:
    analysis = read.analysis
    acks_late = analysis.get("task_acks_late")
    if not acks_late.known:
        yield unknown_setting(read, "task_acks_late")
        return
    late, unknown = late_ack_tasks(analysis)
    if not acks_late.value and not late:
        for task, value in unknown:
            yield Unknown(f"`acks_late` of task {task.name}: {value.reason}", read.service, task.loc)
        return
    why = f"`{label(analysis, 'task_acks_late')}` is True" if acks_late.value else f"task {late[0].name} acknowledges late"

    workers = read.workers or [None]
    for process in workers:
        yield from _judge_process_prefetch(read, process, why)


def _judge_process_prefetch(read: ReadApp, process: CeleryProcess | None, why: str) -> Iterator[Outcome]:
    analysis = read.analysis
    service = process.service.name if process is not None else read.service
    if process is not None and process.invocation.unknown_reason:
        yield Unknown(process.invocation.unknown_reason, service, process.invocation.loc)
        return

    disabled = _prefetch_disabled(read, process)
    if isinstance(disabled, Unknown) or disabled:
        yield disabled if isinstance(disabled, Unknown) else Checked(service)
        return

    option = process.option("prefetch_multiplier") if process is not None else None
    # `--prefetch-multiplier 0` counts as not given: the worker uses the configured value.
    if option is not None and option.unresolved:
        variables = ", ".join(option.unresolved)
        yield Unknown(f"`{option.flag}` takes its value from unset variables ({variables})", service, option.loc)
        return
    if option is not None and option.value.strip() not in ("", "0"):
        multiplier = _as_int(option.value)
        if multiplier is None:
            yield Unknown(f"`{option.flag} {option.value}` is not a number", service, option.loc)
        elif multiplier > 1:
            yield Violation(
                f"{why} and the worker of service `{service}` reserves {multiplier} messages per process "
                f"(`{option.flag} {option.value}`), so messages wait behind a running task on a busy worker "
                "while other workers are idle",
                option.loc,
                service,
            )
        else:
            yield Checked(service)
        return

    setting = analysis.get("worker_prefetch_multiplier")
    if not setting.known:
        yield unknown_setting(read, "worker_prefetch_multiplier")
        return
    multiplier = _as_int(setting.value)
    if multiplier is None:
        yield Unknown(f"{state(analysis, 'worker_prefetch_multiplier')}, which is not a number", service, setting.loc)
    elif multiplier == 0:
        yield Violation(
            f"{why} and {state(analysis, 'worker_prefetch_multiplier')}, which means no limit, so a worker "
            "reserves every message it can while its processes are busy",
            setting.loc,
            service,
        )
    elif multiplier > 1:
        yield Violation(
            f"{why} and {state(analysis, 'worker_prefetch_multiplier')}, so messages wait behind a running "
            "task on a busy worker while other workers are idle",
            setting.loc,
            service,
        )
    else:
        yield Checked(service)


def _prefetch_disabled(read: ReadApp, process: CeleryProcess | None) -> bool | Unknown:
    """Tell whether `--disable-prefetch` or `worker_disable_prefetch` (Celery 5.6+, Redis only) applies."""
    if redis_broker(read.analysis) is not True:
        return False
    option = process.option("disable_prefetch") if process is not None else None
    if option is not None:
        return option.value.strip().lower() not in ("0", "false", "no", "off")
    setting = read.analysis.get("worker_disable_prefetch")
    if not setting.known:
        return unknown_setting(read, "worker_disable_prefetch")
    return bool(setting.value)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


# ---- XG404 -----------------------------------------------------------------------


@rule("XG404")
def visibility_timeout(context: AuditContext) -> Iterator[Outcome]:
    yield from judge_apps(context, _judge_visibility_timeout)


def _judge_visibility_timeout(read: ReadApp) -> Iterator[Outcome]:
    analysis = read.analysis
    redis = redis_broker(analysis)
    if redis is None:
        yield unknown_setting(read, "broker_url")
        return
    if not redis:
        return

    acks_late = analysis.get("task_acks_late")
    if not acks_late.known:
        yield unknown_setting(read, "task_acks_late")
        return
    late, unknown = late_ack_tasks(analysis)
    reasons = []
    if acks_late.value:
        reasons.append(f"`{label(analysis, 'task_acks_late')}` is True")
    elif late:
        reasons.append(f"task {late[0].name} acknowledges late")
    if analysis.countdown_uses:
        first = analysis.countdown_uses[0]
        reasons.append(f"the code sends tasks with {first.kind} ({first.loc.file}:{first.loc.line})")
    if not reasons:
        for task, value in unknown:
            yield Unknown(f"`acks_late` of task {task.name}: {value.reason}", read.service, task.loc)
        if not unknown:
            yield Checked(read.service)
        return
    why = " and ".join(reasons)

    options = analysis.get("broker_transport_options")
    options_name = label(analysis, "broker_transport_options")
    if not options.known and not (isinstance(options.value, dict) and "visibility_timeout" in options.value):
        yield unknown_setting(read, "broker_transport_options")
        return
    value = options.value.get("visibility_timeout") if isinstance(options.value, dict) else None
    if value is None:
        yield Violation(
            f"the broker is Redis, {why}, and `{options_name}` sets no `visibility_timeout`, so kombu's default "
            f"of {DEFAULT_VISIBILITY_TIMEOUT} s applies: a message unacknowledged for longer is delivered again",
            options.loc,
            read.service,
        )
        return
    if is_unknown(value):
        yield Unknown(f"`visibility_timeout` in `{options_name}`: {value.reason}", read.service, options.loc)
        return
    timeout = _as_seconds(value)
    if timeout is None:
        yield Unknown(f"`visibility_timeout` in `{options_name}` is {value!r}, not a number", read.service, options.loc)
        return

    longest = _longest_time_limit(read)
    if isinstance(longest, Unknown):
        yield longest
        return
    if longest is not None and timeout < longest[0]:
        limit, where = longest
        yield Violation(
            f"`visibility_timeout` in `{options_name}` is {_seconds(timeout)} s, shorter than the longest task "
            f"time limit ({_seconds(limit)} s, {where}), so Redis delivers a task that is still running to a "
            "second worker and the task runs twice",
            options.loc,
            read.service,
        )
        return
    yield Checked(read.service)


def _longest_time_limit(read: ReadApp) -> tuple[float, str] | Unknown | None:
    """Return the longest hard time limit of any task and what sets it, or None when no limit is set."""
    analysis = read.analysis
    candidates: list[tuple[float, str]] = []
    for process in read.workers:
        option = process.option("time_limit")
        if option is None:
            continue
        if option.unresolved:
            variables = ", ".join(option.unresolved)
            return Unknown(f"`{option.flag}` takes its value from unset variables ({variables})", process.service.name, option.loc)
        seconds = _as_seconds(option.value)
        if seconds is not None:
            candidates.append((seconds, f"`{option.flag}` of service `{process.service.name}`"))

    setting = analysis.get("task_time_limit")
    if not setting.known:
        return unknown_setting(read, "task_time_limit")
    global_limit = _as_seconds(setting.value)
    if global_limit is not None:
        candidates.append((global_limit, f"`{label(analysis, 'task_time_limit')}` at {_where(setting.loc)}"))
    for task in analysis.tasks:
        own = task.options.get("time_limit")
        if own is None or own.value is None:
            continue
        if is_unknown(own.value):
            return Unknown(f"`time_limit` of task {task.name}: {own.value.reason}", read.service, own.loc)
        seconds = _as_seconds(own.value)
        if seconds is not None:
            candidates.append((seconds, f"task {task.name}"))
    if not candidates:
        # NOTE: tasks without any time limit may run longer than the timeout; that cannot be known statically.
        return None
    return max(candidates, key=lambda item: item[0])


def _where(loc: Loc | None) -> str:
    return f"{loc.file}:{loc.line}" if loc is not None else "the configuration"


def _as_seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _seconds(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)
