"""Canonical forms of `ports` and `volumes` items, as Compose's short-syntax parsers read them.

The merge uses them as de-duplication keys; checks and tests can use them to compare bindings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from xgen_audit.compose.syntax import SyntaxProblem, parse_port_spec, parse_volume_spec
from xgen_audit.parse.tree import YMap, YNode, YScalar


def scalar_text(node: YNode | None) -> str | None:
    """Return a scalar's value as text (booleans as true/false), or None for null or non-scalars."""
    if not isinstance(node, YScalar) or node.value is None:
        return None
    if isinstance(node.value, bool):
        return "true" if node.value else "false"
    return str(node.value)


@dataclass(frozen=True, slots=True, order=True)
class PortBinding:
    """One published port in canonical form; `published` is "" for a random host port."""

    host_ip: str
    published: str
    target: int
    protocol: str

    @property
    def key(self) -> str:
        # Compose's merge key; an empty host_ip counts as 0.0.0.0 there.
        return f"{self.host_ip or '0.0.0.0'}:{self.published}:{self.target}/{self.protocol}"


def parse_port_text(text: str) -> list[PortBinding] | None:
    """Parse short port syntax `[[IP:]HOST:]CONTAINER[/PROTO]`; None when it is invalid."""
    try:
        specs = parse_port_spec(text)
    except (SyntaxProblem, ValueError):
        return None
    return [PortBinding(host_ip, published, int(target), protocol) for host_ip, published, target, protocol in specs]


def port_bindings(node: YNode | None) -> list[PortBinding]:
    """Return the canonical bindings of one `ports` item (number, string or mapping)."""
    if isinstance(node, YScalar):
        if isinstance(node.value, bool) or node.value is None:
            return []
        if isinstance(node.value, (int, str)):
            return parse_port_text(str(node.value)) or []
        return []
    if not isinstance(node, YMap):
        return []
    target_text = scalar_text(node.get("target")) if node.get("target") is not None else None
    if target_text is None or not target_text.strip().isdigit():
        return []
    published = scalar_text(node.get("published")) if node.get("published") is not None else None
    host_ip = scalar_text(node.get("host_ip")) if node.get("host_ip") is not None else None
    protocol = scalar_text(node.get("protocol")) if node.get("protocol") is not None else None
    return [
        PortBinding(host_ip or "", published or "", int(target_text), (protocol or "tcp").lower())
    ]


@dataclass(frozen=True, slots=True, order=True)
class VolumeMount:
    """One service mount in canonical form: type "volume", "bind", "tmpfs", ...; `source` is
    "" for an anonymous volume and for tmpfs."""

    type: str
    source: str
    target: str
    read_only: bool = False


def parse_volume_text(text: str, clean: bool = True) -> VolumeMount | None:
    """Parse short volume syntax `SOURCE:TARGET[:OPTIONS]` or `TARGET`; None when invalid.

    With `clean`, the target is path-cleaned as in Compose's canonical output.
    """
    if text.startswith(":") or "::" in text:
        return None
    try:
        kind, source, target, options = parse_volume_spec(text)
    except SyntaxProblem:
        return None
    tidy = _clean_target if clean else str
    if kind == "anonymous":
        return VolumeMount("volume", "", tidy(target or ""))
    return VolumeMount(kind, source or "", tidy(target or ""), "ro" in options)


def _clean_target(target: str) -> str:
    if not target.startswith("/"):
        return target
    cleaned = os.path.normpath(target)
    # normpath keeps a leading `//`, which POSIX path cleaning in Go collapses.
    return "/" + cleaned.lstrip("/")


def volume_mount(node: YNode | None, clean: bool = True) -> VolumeMount | None:
    """Return the canonical form of one service `volumes` item, or None when unreadable."""
    if isinstance(node, YScalar):
        return parse_volume_text(node.value, clean) if isinstance(node.value, str) else None
    if not isinstance(node, YMap):
        return None
    target = scalar_text(node.get("target")) if node.get("target") is not None else None
    if not target:
        return None
    kind = scalar_text(node.get("type")) if node.get("type") is not None else None
    source = scalar_text(node.get("source")) if node.get("source") is not None else None
    read_only = node.get("read_only")
    return VolumeMount(
        kind or "volume",
        source or "",
        _clean_target(target) if clean else target,
        bool(isinstance(read_only, YScalar) and read_only.value is True),
    )


def volume_target(node: YNode | None) -> str | None:
    """Return the merge key of a `volumes` item: its target as written.

    Compose de-duplicates before it cleans paths, so `/data/` and `/data` stay two mounts.
    """
    mount = volume_mount(node, clean=False)
    return mount.target if mount is not None else None
