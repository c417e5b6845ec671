"""Dev-only patterns kept out of production: bind mounts and mounted `.env` files."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from xgen_audit.discovery import display_host_path
from xgen_audit.engine import AuditContext, Checked, Outcome, Unknown, Violation, rule
from xgen_audit.findings import Severity


def _dev_severity(context: AuditContext) -> Severity | None:
    """Development stacks get these rules as info; production keeps the rule's default."""
    return None if context.is_production else Severity.INFO


@rule("XG601")
def bind_mount_in_production(context: AuditContext) -> Iterator[Outcome]:
    for name, service in sorted(context.compose.services.items()):
        for mount in service.volumes:
            if mount.type == "other" and mount.unresolved:
                variables = ", ".join(mount.unresolved)
                yield Unknown(f"volume `{mount.raw}` depends on unset variables ({variables})", name, mount.loc)
            elif mount.type == "bind":
                yield Violation(
                    f"service `{name}` bind-mounts host path `{display_host_path(mount.source)}` at {mount.target}",
                    mount.loc,
                    name,
                    _dev_severity(context),
                )
        if service.volumes:
            yield Checked(name)


def is_dotenv(path: str) -> bool:
    base = posixpath.basename(path.rstrip("/"))
    return base == ".env" or base.startswith(".env.") or base.endswith(".env")


@rule("XG602")
def dotenv_mounted(context: AuditContext) -> Iterator[Outcome]:
    for name, service in sorted(context.compose.services.items()):
        for mount in service.volumes:
            if mount.type != "bind" or not mount.source:
                continue
            if is_dotenv(mount.source) or (mount.target and is_dotenv(mount.target)):
                yield Violation(
                    f"service `{name}` mounts dotenv file `{display_host_path(mount.source)}` into the container "
                    f"at {mount.target}",
                    mount.loc,
                    name,
                    _dev_severity(context),
                )
        if service.volumes:
            yield Checked(name)
