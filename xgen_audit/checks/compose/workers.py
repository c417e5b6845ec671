"""Worker rules: explicit concurrency, container limits, logging to STDOUT, health checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
        yield from _judge_concurrency(process)


def _judge_concurrency(process: CeleryProcess) -> Iterator[Outcome]:
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
            if logfile is None:
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
        elif _dockerfile_has_healthcheck(service, context.compose.project_dir):
            yield Checked(name)
        else:
            yield Violation(
                f"worker service `{name}` has no healthcheck, so a hung worker looks healthy",
                service.loc,
                name,
            )


def _dockerfile_has_healthcheck(service: Service, project_dir: Path) -> bool:
    """Whether the Dockerfile in the service's build context sets a HEALTHCHECK."""
    if service.build is None:
        return False
    dockerfile = project_dir / service.build.context / (service.build.dockerfile or "Dockerfile")
    try:
        lines = dockerfile.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return False
    for line in lines:
        words = line.strip().split()
        if len(words) >= 2 and words[0].upper() == "HEALTHCHECK":
            return words[1].upper() != "NONE"
    return False


@rule("XG503")
def logging_disabled(context: AuditContext) -> Iterator[Outcome]:
    for name, service in sorted(context.compose.services.items()):
        driver = service.logging_driver
        if driver is not None and driver.value == "none":
            yield Violation(f"service `{name}` sets logging driver `none`, which discards its logs", driver.loc, name)
        else:
            yield Checked(name)
