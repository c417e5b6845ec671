"""Startup rules: Celery waits for a healthy broker, not just a started container."""

from __future__ import annotations

import re
from collections.abc import Iterator

from xgen_audit.compose.model import ComposeProject, Service
from xgen_audit.compose.roles import image_has_healthcheck
from xgen_audit.engine import AuditContext, Checked, Outcome, Violation, rule

_REDIS_URL_HOST = re.compile(r"(?:redis|rediss|sentinel|valkey)://(?:[^@/\s]*@)?([A-Za-z0-9_.-]+)")


def broker_services(service: Service, redis_names: list[str]) -> list[str]:
    """Return the Redis services a Celery service uses as its broker.

    A Redis URL in a variable named for the broker (CELERY_BROKER_URL, BROKER_URL,
    ...) names it. Failing that, a Redis URL in any variable except the result
    backend's, then the Redis services it depends on, and last the project's
    only Redis service when there is exactly one.
    """
    env = service.container_env or service.environment
    broker_hosts: set[str] = set()
    other_hosts: set[str] = set()
    for variable, value in env.items():
        hosts = {host for host in _REDIS_URL_HOST.findall(value.value or "") if host in redis_names}
        upper = variable.upper()
        if "BROKER" in upper:
            broker_hosts |= hosts
        elif "BACKEND" not in upper and "RESULT" not in upper:
            other_hosts |= hosts
    if broker_hosts or other_hosts:
        return sorted(broker_hosts or other_hosts)
    depended = sorted(name for name in service.depends_on if name in redis_names)
    if depended:
        return depended
    return list(redis_names) if len(redis_names) == 1 else []


def waits_until_healthy(project: ComposeProject, start: str, target: str) -> bool:
    """Return whether `start` cannot start before `target` is healthy, directly or through other services.

    A chain counts when its last link is `service_healthy` on the target: every
    earlier service in the chain starts only after that one is healthy.
    """
    seen: set[str] = set()
    pending = [start]
    while pending:
        current = pending.pop()
        if current in seen or current not in project.services:
            continue
        seen.add(current)
        for name, dependency in project.services[current].depends_on.items():
            if name == target:
                if dependency.condition == "service_healthy":
                    return True
                continue
            pending.append(name)
    return False


@rule("XG202")
def broker_readiness(context: AuditContext) -> Iterator[Outcome]:
    project = context.compose
    redis_names = list(context.roles.redis)
    if not redis_names:
        return
    used: set[str] = set()
    for service in context.roles.celery_services():
        for broker in broker_services(service, redis_names):
            used.add(broker)
            yield from _judge_dependency(project, service, broker)
    for broker in sorted(used):
        redis = project.services[broker]
        healthcheck = redis.healthcheck
        if healthcheck is not None and healthcheck.active:
            yield Checked(broker)
        elif healthcheck is None and image_has_healthcheck(context.roles.redis[broker].product):
            yield Checked(broker)
        else:
            state = "disables its healthcheck" if healthcheck is not None else "has no healthcheck"
            yield Violation(
                f"Redis service `{broker}` {state}, so no service can wait for it to accept connections",
                healthcheck.loc if healthcheck is not None else redis.loc,
                broker,
            )


def _judge_dependency(project: ComposeProject, service: Service, broker: str) -> Iterator[Outcome]:
    name = service.name
    dependency = service.depends_on.get(broker)
    if dependency is not None and dependency.condition == "service_healthy":
        yield Checked(name)
    elif dependency is not None:
        how = "in list form" if not dependency.long_syntax else f"with condition `{dependency.condition}`"
        yield Violation(
            f"service `{name}` depends on Redis `{broker}` {how}, which does not wait until Redis is ready",
            dependency.loc,
            name,
        )
    elif waits_until_healthy(project, name, broker):
        yield Checked(name)
    else:
        yield Violation(
            f"service `{name}` runs Celery but does not wait for Redis `{broker}` to be healthy",
            service.depends_on_loc or service.loc,
            name,
        )
