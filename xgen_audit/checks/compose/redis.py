"""Redis rules: data on a named volume, declared volumes, no port published to the host."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from xgen_audit.compose.model import Mount, Service
from xgen_audit.compose.syntax import is_all_interfaces, is_loopback
from xgen_audit.discovery import display_host_path
from xgen_audit.engine import AuditContext, Checked, Outcome, Unknown, Violation, rule
from xgen_audit.findings import Severity


def _covers(mount_target: str, data_dir: str) -> bool:
    """Return whether a mount at `mount_target` contains `data_dir` (the same path or a parent)."""
    target = posixpath.normpath(mount_target)
    return data_dir == target or data_dir.startswith(target.rstrip("/") + "/")


@rule("XG101")
def redis_data_volume(context: AuditContext) -> Iterator[Outcome]:
    project = context.compose
    for name, image in context.roles.redis.items():
        service = project.services[name]
        mounts = [mount for mount in service.volumes if mount.target and _covers(mount.target, image.data_dir)]
        unresolved = [mount for mount in service.volumes if mount.unresolved and mount.target is None]
        if not mounts and unresolved:
            variables = ", ".join(sorted({var for mount in unresolved for var in mount.unresolved}))
            yield Unknown(f"a volume of the Redis service depends on unset variables ({variables})", name, unresolved[0].loc)
            continue
        # The mount nearest the data directory decides, as Docker lays deeper mounts on top.
        mount = max(mounts, key=lambda item: len(item.target or ""), default=None)
        yield from _judge_redis_mount(service, image.data_dir, mount)


def _judge_redis_mount(service: Service, data_dir: str, mount: Mount | None) -> Iterator[Outcome]:
    name = service.name
    where = service.volumes_loc or service.loc
    if mount is None:
        yield Violation(
            f"Redis service `{name}` has no volume at {data_dir}; its data lives in an "
            "anonymous volume or the container",
            where,
            name,
        )
    elif mount.unresolved:
        variables = ", ".join(mount.unresolved)
        yield Unknown(f"the source of its {data_dir} mount depends on unset variables ({variables})", name, mount.loc)
    elif mount.type == "volume" and mount.source:
        yield Checked(name)
    elif mount.type == "bind":
        yield Violation(
            f"Redis service `{name}` keeps {data_dir} in host directory `{display_host_path(mount.source)}` "
            "instead of a named volume",
            mount.loc,
            name,
        )
    else:
        yield Violation(
            f"Redis service `{name}` mounts {data_dir} as {_mount_kind(mount)}, not a named volume",
            mount.loc,
            name,
        )


def _mount_kind(mount: Mount) -> str:
    return {"anonymous": "an anonymous volume", "tmpfs": "tmpfs (lost on restart)"}.get(mount.type, f"a {mount.type} mount")


@rule("XG102")
def undeclared_volume(context: AuditContext) -> Iterator[Outcome]:
    project = context.compose
    for name, service in sorted(project.services.items()):
        named = [mount for mount in service.volumes if mount.type == "volume" and mount.source]
        for mount in named:
            if mount.unresolved:
                continue
            if mount.source not in project.volumes:
                yield Violation(
                    f"service `{name}` mounts volume `{mount.source}`, which is not declared under "
                    "top-level `volumes:`",
                    mount.loc,
                    name,
                )
        if named:
            yield Checked(name)


@rule("XG110")
def redis_port_published(context: AuditContext) -> Iterator[Outcome]:
    project = context.compose
    for name in context.roles.redis:
        service = project.services[name]
        yield Checked(name)
        if service.network_mode is not None and service.network_mode.value == "host":
            yield Violation(
                f"Redis service `{name}` uses `network_mode: host`, so its port is open on every host address",
                service.network_mode.loc,
                name,
                Severity.ERROR,
            )
        for port in service.ports:
            yield from _judge_port(context, name, port)


def _judge_port(context: AuditContext, name: str, port) -> Iterator[Outcome]:
    shown = port.raw or f"target {port.target}"
    if port.unresolved:
        variables = ", ".join(f"${{{var}}}" for var in port.unresolved)
        yield Violation(
            f"Redis service `{name}` publishes port `{shown}` to the host; {variables} is unset here, "
            "and an empty host address means all interfaces",
            port.loc,
            name,
            Severity.ERROR,
        )
        return
    if is_loopback(port.host_ip):
        published = port.published or "a random port"
        yield Violation(
            f"Redis service `{name}` publishes {port.target} on {port.host_ip}:{published} (loopback only)",
            port.loc,
            name,
            Severity.WARNING if context.is_production else Severity.INFO,
        )
    elif is_all_interfaces(port.host_ip):
        host_port = f"host port {port.published}" if port.published else "a random host port"
        yield Violation(
            f"Redis service `{name}` publishes {port.target} as {host_port} on all interfaces",
            port.loc,
            name,
            Severity.ERROR,
        )
    else:
        published = port.published or "a random port"
        yield Violation(
            f"Redis service `{name}` publishes {port.target} on host address {port.host_ip}:{published}",
            port.loc,
            name,
            Severity.ERROR,
        )
