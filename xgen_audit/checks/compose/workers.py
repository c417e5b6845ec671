"""Worker rules: explicit concurrency, container limits, logging to STDOUT, health checks."""

from __future__ import annotations

from collections.abc import Iterator

from xgen_audit.compose.dockerfile import stage_has_healthcheck
from xgen_audit.compose.model import Limit, Service
from xgen_audit.compose.roles import CeleryProcess
from xgen_audit.engine import AuditContext, Checked, Outcome, Unknown, Violation, rule


def _where(process: CeleryProcess) -> str:
    service = process.service.name
    if process.invocation.script:
        return f"worker of service `{service}` (started by {process.invocation.script})"
    return f"worker of service `{service}`"


@rule("XG301")
def worker_concurrency_unset(context: AuditContext) -> Iterator[Outcome]:
    for process in context.roles.workers():
        yield from _judge_concurrency(process, context)


def _judge_concurrency(process: CeleryProcess, context: AuditContext) -> Iterator[Outcome]:
    name = process.service.name
    invocation = process.invocation
    if invocation.unknown_reason:
        yield Unknown(invocation.unknown_reason, name, invocation.loc)
        return
    pool = process.option("pool")
    if pool is not None and pool.value == "solo":
        yield Checked(name)
        return
    for option_name in ("concurrency", "autoscale"):
        option = process.option(option_name)
        if option is None:
            continue
        if option.unresolved:
            variables = ", ".join(option.unresolved)
            yield Unknown(f"`{option.flag}` takes its value from unset variables ({variables})", name, option.loc)
            return
        if option_name == "concurrency" and option.value.strip() in ("", "0"):
            yield Violation(
                f"{_where(process)} sets `{option.flag} {option.value}`, which means one process per host CPU",
                option.loc,
                name,
            )
            return
        yield Checked(name)
        return
    # The app's own `worker_concurrency` counts too; the command line and environment override it.
    celery = context.celery
    app = celery.app_of(process) if celery is not None and invocation.dialect == "celery" else None
    analysis = app.analysis if app is not None else None
    setting = analysis.get("worker_concurrency") if analysis is not None and analysis.app is not None else None
    if setting is not None and setting.source != "default":
        written = setting.written_as or "worker_concurrency"
        if not setting.known:
            yield Unknown(f"`{written}`: {setting.reason or 'its value cannot be known statically'}", name, setting.loc)
            return
        if setting.value in (0, "0", ""):
            yield Violation(
                f"{_where(process)} takes `{written} = {setting.value!r}` from its Celery configuration, "
                "which means one process per host CPU",
                setting.loc,
                name,
            )
            return
        if setting.value is not None:
            yield Checked(name)
            return
    default = "16 processes (Airflow's default)" if invocation.dialect == "airflow" else "one process per host CPU"
    yield Violation(
        f"{_where(process)} sets no concurrency, so it starts {default} whatever the container's CPU limit",
        invocation.loc,
        name,
    )


@rule("XG302")
def worker_limits_missing(context: AuditContext) -> Iterator[Outcome]:
    services = {process.service.name: process.service for process in context.roles.workers()}
    for name, service in sorted(services.items()):
        yield from _judge_limit(service, service.cpu_limit, "CPU", "deploy.resources.limits.cpus")
        yield from _judge_limit(service, service.memory_limit, "memory", "deploy.resources.limits.memory")


def _judge_limit(service: Service, limit: Limit | None, what: str, key: str) -> Iterator[Outcome]:
    name = service.name
    if limit is not None and limit.unresolved:
        variables = ", ".join(limit.unresolved)
        yield Unknown(f"its {what} limit comes from unset variables ({variables})", name, limit.loc)
    elif limit is None:
        yield Violation(f"worker service `{name}` has no {what} limit (`{key}`)", service.loc, name)
    elif not limit.value:
        yield Violation(f"worker service `{name}` sets its {what} limit to 0, which means no limit", limit.loc, name)
    else:
        yield Checked(name)


# Paths that are the process's own stdout/stderr: Docker collects what is written there.
_STANDARD_STREAMS = {"/dev/stdout", "/dev/stderr", "/proc/self/fd/1", "/proc/self/fd/2", "/proc/1/fd/1", "/proc/1/fd/2"}


@rule("XG501")
def worker_logfile(context: AuditContext) -> Iterator[Outcome]:
    for processes in context.roles.celery.values():
        for process in processes:
            if process.role not in ("worker", "beat"):
                continue
            name = process.service.name
            if process.invocation.unknown_reason:
                yield Unknown(process.invocation.unknown_reason, name, process.invocation.loc)
                continue
            logfile = process.option("logfile")
            if logfile is None or logfile.value in _STANDARD_STREAMS:
                yield Checked(name)
                continue
            yield Violation(
                f"Celery {process.role} of service `{name}` logs to file `{logfile.value}` "
                f"(`{logfile.flag}`) instead of STDOUT/STDERR",
                logfile.loc,
                name,
            )


@rule("XG502")
def worker_healthcheck_missing(context: AuditContext) -> Iterator[Outcome]:
    services = {process.service.name: process.service for process in context.roles.workers()}
    for name, service in sorted(services.items()):
        healthcheck = service.healthcheck
        if healthcheck is not None and healthcheck.active:
            yield Checked(name)
        elif healthcheck is not None:
            yield Violation(f"worker service `{name}` disables its healthcheck", healthcheck.loc, name)
        elif stage_has_healthcheck(service, context.compose.project_dir):
            yield Checked(name)
        else:
            yield Violation(
                f"worker service `{name}` has no healthcheck, so a hung worker looks healthy",
                service.loc,
                name,
            )


@rule("XG503")
def logging_disabled(context: AuditContext) -> Iterator[Outcome]:
    for name, service in sorted(context.compose.services.items()):
        driver = service.logging_driver
        if driver is not None and driver.value == "none":
            yield Violation(f"service `{name}` sets logging driver `none`, which discards its logs", driver.loc, name)
        else:
            yield Checked(name)
