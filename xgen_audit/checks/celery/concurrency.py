"""Concurrency rules: a prefork worker's processes against its container's CPU and memory limits."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from xgen_audit.celery_apps import CeleryApp, CeleryContext
from xgen_audit.checks.celery.common import deduplicated, label, origin
from xgen_audit.compose.model import Limit
from xgen_audit.compose.roles import CeleryProcess
from xgen_audit.commands.invocation import OptionValue
from xgen_audit.engine import AuditContext, Checked, Outcome, Unknown, Violation, rule
from xgen_audit.parse.tree import Loc

# Pools that fork one process per slot; threads, gevent, eventlet and solo are not compared.
PROCESS_POOLS = frozenset({"prefork", "processes"})


@dataclass(frozen=True)
class Setting:
    """A worker setting as the process gets it: from its command line, environment or Celery config."""

    value: str
    loc: Loc
    text: str


@rule("XG303")
def concurrency_over_limits(context: AuditContext) -> Iterator[Outcome]:
    celery = context.celery if isinstance(context.celery, CeleryContext) else None
    if celery is None or not celery.apps:
        return
    outcomes: list[Outcome] = []
    for process in context.roles.workers():
        outcomes.extend(_judge_process(process, celery.app_of(process)))
    yield from deduplicated(outcomes)


def _judge_process(process: CeleryProcess, app: CeleryApp | None) -> Iterator[Outcome]:
    service = process.service
    name = service.name
    if process.invocation.unknown_reason:
        yield Unknown(process.invocation.unknown_reason, name, process.invocation.loc)
        return
    if process.invocation.dialect == "airflow":
        # NOTE: Airflow workers read their pool from airflow.cfg, which is not read.
        return

    pool = _worker_value(process, app, "pool", "worker_pool")
    if isinstance(pool, Unknown):
        yield pool
        return
    pool_name = (pool.value if pool is not None else "prefork").strip().lower()
    if pool_name not in PROCESS_POOLS:
        yield Checked(name)
        return

    cpus = _limit(service.cpu_limit, name, "CPU")
    memory = _limit(service.memory_limit, name, "memory")
    for limit in (cpus, memory):
        if isinstance(limit, Unknown):
            yield limit
    if not isinstance(cpus, Limit) and not isinstance(memory, Limit):
        # Nothing to compare with: XG302 reports the missing limits.
        return

    concurrency = _concurrency(process, app)
    if isinstance(concurrency, Unknown):
        yield concurrency
        return
    count, where = concurrency
    if isinstance(cpus, Limit) and count is None:
        # `auto` sizes a prefork pool from the CPU limit (Celery 5.7 and later).
        yield Checked(name)
    elif isinstance(cpus, Limit):
        yield from _judge_cpu(process, count, where, cpus)
    if isinstance(memory, Limit):
        yield from _judge_memory(process, app, count, where, cpus if isinstance(cpus, Limit) else None, memory)


def _judge_cpu(process: CeleryProcess, count: int, where: Setting, cpus: Limit) -> Iterator[Outcome]:
    name = process.service.name
    allowed = math.ceil(cpus.value or 0)
    if count > allowed:
        rounded = f" ({allowed} CPUs rounded up)" if allowed != cpus.value else ""
        yield Violation(
            f"worker of service `{name}` runs {count} prefork processes ({where.text}) under a CPU limit of "
            f"{cpus.raw}{rounded}, so the processes compete for the CPUs",
            where.loc,
            name,
        )
    else:
        yield Checked(name)


def _judge_memory(
    process: CeleryProcess, app: CeleryApp | None, count: int | None, where: Setting, cpus: Limit | None, memory: Limit
) -> Iterator[Outcome]:
    name = process.service.name
    per_child = _worker_value(process, app, "max_memory_per_child", "worker_max_memory_per_child")
    if per_child is None:
        return
    if isinstance(per_child, Unknown):
        yield per_child
        return
    kib = _as_int(per_child.value)
    if kib is None or kib <= 0:
        return
    if count is None:
        # `auto` sizes the pool from the CPU limit.
        if cpus is None:
            return
        count = max(1, math.ceil(cpus.value or 0))
    total = count * kib * 1024
    if memory.value is not None and total > memory.value:
        yield Violation(
            f"worker of service `{name}` may use {count} x {kib} KiB = {_mebibytes(total)} MiB "
            f"({where.text}, {per_child.text}) under a memory limit of {memory.raw}, so the container can be "
            "OOM-killed before a child reaches its limit and is replaced",
            per_child.loc,
            name,
        )
    else:
        yield Checked(name)


def _concurrency(process: CeleryProcess, app: CeleryApp | None) -> tuple[int | None, Setting] | Unknown:
    """Return the number of pool processes (None for `auto`) and where it is set."""
    name = process.service.name
    for option_name in ("autoscale", "concurrency"):
        option = process.option(option_name)
        if option is None:
            continue
        if option.unresolved:
            variables = ", ".join(option.unresolved)
            return Unknown(f"`{option.flag}` takes its value from unset variables ({variables})", name, option.loc)
        text = _option_text(option)
        if option_name == "autoscale":
            numbers = [_as_int(part) for part in option.value.split(",")]
            if not numbers or any(number is None for number in numbers):
                return Unknown(f"{text} is not one or two numbers", name, option.loc)
            return max(number for number in numbers if number is not None), Setting(option.value, option.loc, text)
        parsed = _parse_concurrency(option.value)
        if parsed is None:
            return Unknown(f"{text} is not a number or `auto`", name, option.loc)
        if parsed == "auto":
            return None, Setting(option.value, option.loc, text)
        if parsed > 0:
            return parsed, Setting(option.value, option.loc, text)
        # `--concurrency 0` counts as not given, so the configured value applies.

    configured = _worker_value(process, app, None, "worker_concurrency")
    if isinstance(configured, Unknown):
        return configured
    if configured is not None:
        parsed = _parse_concurrency(configured.value)
        if parsed == "auto":
            return None, configured
        if isinstance(parsed, int) and parsed > 0:
            return parsed, configured
        if parsed is None:
            # Celery logs a warning for a non-numeric value and falls back to the CPU count.
            return Unknown(f"{configured.text} is not a number or `auto`", name, configured.loc)
    return Unknown(
        "no concurrency is set, so the worker starts one process per host CPU, a number not known statically",
        name,
        process.invocation.loc,
    )


def _parse_concurrency(value: str) -> int | str | None:
    """Return the process count, "auto", or None when the value is neither."""
    text = value.strip()
    if text.lower() == "auto":
        return "auto"
    if text == "":
        return 0
    return _as_int(text)


def _worker_value(process: CeleryProcess, app: CeleryApp | None, option_name: str | None, setting_name: str) -> Setting | Unknown | None:
    """Return a worker option from the command line or environment, else the app's setting, else None."""
    name = process.service.name
    option = process.option(option_name) if option_name else None
    if option is not None:
        if option.unresolved:
            variables = ", ".join(option.unresolved)
            return Unknown(f"`{option.flag}` takes its value from unset variables ({variables})", name, option.loc)
        return Setting(option.value, option.loc, _option_text(option))
    if app is None or app.analysis is None or app.analysis.app is None:
        return None
    analysis = app.analysis
    setting = analysis.get(setting_name)
    if setting.source == "default" or setting.value is None:
        return None
    written = label(analysis, setting_name)
    if not setting.known:
        return Unknown(f"`{written}`: {setting.reason or 'its value cannot be known statically'}", name, setting.loc)
    return Setting(str(setting.value), setting.loc, f"`{written} = {setting.value!r}`{origin(setting)}")


def _option_text(option: OptionValue) -> str:
    if option.source == "environment":
        return f"`{option.flag}={option.value}`"
    return f"`{option.flag} {option.value}`"


def _limit(limit: Limit | None, service: str, what: str) -> Limit | Unknown | None:
    """Return a usable limit, Unknown when it comes from unset variables, or None when there is none."""
    if limit is None:
        return None
    if limit.unresolved:
        variables = ", ".join(limit.unresolved)
        return Unknown(f"its {what} limit comes from unset variables ({variables})", service, limit.loc)
    if not limit.value:
        return None
    return limit


def _as_int(value: str | int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _mebibytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f}"
