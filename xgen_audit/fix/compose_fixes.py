"""Edits that fix compose findings: one function per rule, working on a round-trip document.

Each fixer checks everything it needs before it changes the document, so a
fix that raises EditError leaves the document as it was. It returns a short
description and the original lines it may change, which the planner uses to
prove that nothing else changed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from xgen_audit.checks.compose.startup import broker_services
from xgen_audit.compose.build import build_project
from xgen_audit.compose.environment import load_container_env
from xgen_audit.compose.model import ComposeProject
from xgen_audit.compose.roles import ServiceRoles, image_has_healthcheck
from xgen_audit.compose.stacks import load_stack, stack_from_files
from xgen_audit.discovery import environment_from_name
from xgen_audit.findings import Finding
from xgen_audit.fix.yamldoc import (
    Document,
    EditError,
    append_key,
    check_editable,
    child,
    content_span,
    give_trailing,
    key_line,
    own_keys,
    remove_item,
    remove_key,
    tail_region,
    take_trailing,
)
from xgen_audit.parse.tree import Loc

Region = tuple[int, int]

# The healthcheck the XG202 fix adds to Redis. `redis-cli ping` alone can exit 0
# on an error reply such as LOADING on some redis-cli versions, so the reply is checked.
REDIS_HEALTHCHECK_TEST = ["CMD-SHELL", "redis-cli ping | grep -q PONG"]
REDIS_HEALTHCHECK_TIMING = {"interval": "10s", "timeout": "3s", "retries": 5}


@dataclass(slots=True)
class FixResult:
    description: str
    regions: list[Region]


@dataclass
class FileContext:
    """One compose file being fixed: its document, its model, and what earlier fixes added."""

    path: str
    document: Document
    declared: set[str] = field(default_factory=set)
    healthchecks: set[str] = field(default_factory=set)

    @cached_property
    def project(self) -> ComposeProject:
        """The file's compose model, built as `check` builds it for a file on its own."""
        stack = stack_from_files([self.path])
        loaded = load_stack(stack, {})
        if any(problem.kind == "syntax" for problem in loaded.merge.problems):
            raise EditError("xgen-audit cannot parse the file")
        project_dir = Path(stack.project_dir or os.path.dirname(self.path) or ".")
        project = build_project(loaded.merge.root, list(stack.files), project_dir, Loc(self.path, 1, 1))
        load_container_env(project)
        return project

    @cached_property
    def roles(self) -> ServiceRoles:
        return ServiceRoles(self.project)

    def quote(self, text: str) -> Any:
        """Quote a new string the way the file quotes most of its strings."""
        singles = len(re.findall(r"[:\-\[,]\s*'", self.document.text))
        doubles = len(re.findall(r"[:\-\[,]\s*\"", self.document.text))
        return SingleQuotedScalarString(text) if singles > doubles else DoubleQuotedScalarString(text)


Fixer = Callable[[FileContext, Finding], FixResult]


# ---------------------------------------------------------------------------
# Locating nodes


def service_path(context: FileContext, finding: Finding) -> tuple[str, str]:
    name = finding.service
    services = context.document.root.get("services")
    if name is None or not isinstance(services, CommentedMap) or name not in services:
        raise EditError(f"service `{name}` is not defined in {context.path}; fix the file that defines it")
    check_editable(context.document, ("services", name), f"service `{name}`")
    if not isinstance(services[name], CommentedMap):
        raise EditError(f"service `{name}` is not a mapping")
    return ("services", name)


def item_at(context: FileContext, path: tuple, finding: Finding) -> int:
    """The index of the sequence item at the finding's line (and column, when several share it)."""
    sequence = child(context.document, path)
    if not isinstance(sequence, CommentedSeq):
        raise EditError(f"`{path[-1]}` of service `{finding.service}` is not a list")
    on_line = [index for index in range(len(sequence)) if key_line(sequence, index) == finding.line]
    if len(on_line) > 1:
        on_line = [index for index in on_line if sequence.lc.item(index)[1] + 1 == finding.column] or on_line
    if len(on_line) != 1:
        raise EditError(f"no single `{path[-1]}` entry of service `{finding.service}` is at line {finding.line}")
    return on_line[0]


def _separates_top_level_blocks(context: FileContext) -> bool:
    return bool(re.search(r"\n[ \t]*\n", context.document.text.strip("\n")))


# ---------------------------------------------------------------------------
# Named volumes (XG101, XG102)


def declare_volume(context: FileContext, name: str) -> list[Region]:
    """Declare `name` under top-level `volumes:` unless it is there; return the lines this touches."""
    document = context.document
    root = document.root
    if name in context.declared:
        return []
    if "volumes" in root and "volumes" not in own_keys(root):
        raise EditError("top-level `volumes:` comes from a `<<` merge key; declare the volume by hand")
    if "volumes" not in root:
        region = tail_region(document, ())
        append_key(document, (), "volumes", CommentedMap([(name, None)]), blank_line=_separates_top_level_blocks(context))
        context.declared.add(name)
        return [region]

    check_editable(document, ("volumes",), "top-level `volumes:`")
    volumes = root["volumes"]
    if volumes is None:
        region = content_span(document, ("volumes",))
        root["volumes"] = CommentedMap([(name, None)])
    elif isinstance(volumes, CommentedMap):
        if name in volumes:
            context.declared.add(name)
            return []
        region = tail_region(document, ("volumes",)) if own_keys(volumes) else content_span(document, ("volumes",))
        if volumes.fa.flow_style():
            volumes[name] = None
        else:
            append_key(document, ("volumes",), name, None)
    else:
        raise EditError("top-level `volumes:` is not a mapping")
    context.declared.add(name)
    return [region]


def _volume_name(context: FileContext, service: str) -> str:
    taken = set(context.project.volumes) | set(context.declared)
    declared = context.document.root.get("volumes")
    if isinstance(declared, CommentedMap):
        taken |= {str(key) for key in declared}
    for other in context.project.services.values():
        taken |= {mount.source for mount in other.volumes if mount.type == "volume" and mount.source}
    candidates = ["redis-data", f"{service}-data"] + [f"{service}-data-{number}" for number in range(2, 100)]
    for candidate in candidates:
        if candidate not in taken:
            return candidate
    raise EditError("no free volume name found; add the volume by hand")


def fix_redis_volume(context: FileContext, finding: Finding) -> FixResult:
    """XG101: mount a new named volume at the Redis data directory and declare it."""
    path = service_path(context, finding)
    name = path[1]
    image = context.roles.redis.get(name)
    if image is None:
        raise EditError(f"service `{name}` is not recognised as Redis in {context.path} on its own")
    data_dir = image.data_dir
    service = context.project.services[name]
    covering = [mount for mount in service.volumes if mount.target and _covers(mount.target, data_dir)]
    if covering:
        raise EditError(
            f"service `{name}` already mounts `{covering[0].raw or covering[0].target}` at {data_dir}; "
            "replacing it would move the data, so change it by hand"
        )
    volume = _volume_name(context, name)
    entry = f"{volume}:{data_dir}"
    document = context.document
    mapping = child(document, path)

    if "volumes" in mapping:
        check_editable(document, (*path, "volumes"), f"`volumes` of service `{name}`")
        mounts = mapping["volumes"]
        if mounts is None:
            regions = [content_span(document, (*path, "volumes"))]
            mapping["volumes"] = CommentedSeq([entry])
        elif isinstance(mounts, CommentedSeq):
            regions = [tail_region(document, (*path, "volumes")) if len(mounts) else content_span(document, (*path, "volumes"))]
            trailing = take_trailing(mounts)
            mounts.append(entry)
            give_trailing(mounts, trailing)
        else:
            raise EditError(f"`volumes` of service `{name}` is not a list")
    else:
        regions = [tail_region(document, path)]
        append_key(document, path, "volumes", CommentedSeq([entry]))
    regions += declare_volume(context, volume)
    return FixResult(f"mounted named volume `{volume}` at {data_dir} in service `{name}` and declared it", regions)


def _covers(mount_target: str, data_dir: str) -> bool:
    target = os.path.normpath(mount_target)
    return data_dir == target or data_dir.startswith(target.rstrip("/") + "/")


def fix_undeclared_volume(context: FileContext, finding: Finding) -> FixResult:
    """XG102: declare the named volume a service mounts."""
    path = service_path(context, finding)
    index = item_at(context, (*path, "volumes"), finding)
    item = child(context.document, (*path, "volumes"))[index]
    if isinstance(item, CommentedMap):
        source = item.get("source")
    elif isinstance(item, str):
        source = item.split(":", 1)[0] if ":" in item else None
    else:
        source = None
    if not isinstance(source, str) or not source:
        raise EditError(f"the volume at line {finding.line} has no source name")
    if "$" in source:
        raise EditError(f"the volume name `{source}` depends on variables; declare the name it takes by hand")
    regions = declare_volume(context, source)
    return FixResult(f"declared volume `{source}` under top-level `volumes:`", regions)


# ---------------------------------------------------------------------------
# Ports (XG003, XG110)


def fix_quote_port(context: FileContext, finding: Finding) -> FixResult:
    """XG003: quote a `HOST:CONTAINER` port, keeping its text."""
    path = service_path(context, finding)
    ports_path = (*path, "ports")
    check_editable(context.document, ports_path, f"`ports` of service `{path[1]}`")
    index = item_at(context, ports_path, finding)
    ports = child(context.document, ports_path)
    value = ports[index]
    if anchor := getattr(getattr(value, "anchor", None), "value", None):
        raise EditError(f"the port is shared through the anchor `&{anchor}`; quote it where the anchor is defined")
    if not isinstance(value, str):
        raise EditError(f"the port at line {finding.line} was not read as text; quote it by hand")
    ports[index] = context.quote(str(value))
    return FixResult(f"quoted port `{value}` of service `{path[1]}`", [(finding.line, finding.line)])


def fix_redis_port(context: FileContext, finding: Finding) -> FixResult:
    """XG110 (unsafe): remove a published port of Redis; remove `ports:` when it empties."""
    if environment_from_name(Path(context.path)) != "production":
        raise EditError(f"{context.path} is a development file by its name; its published Redis port is left alone")
    path = service_path(context, finding)
    mapping = child(context.document, path)
    if "ports" not in mapping:
        raise EditError(f"service `{path[1]}` has no `ports:` here; remove `network_mode: host` by hand")
    ports_path = (*path, "ports")
    check_editable(context.document, ports_path, f"`ports` of service `{path[1]}`")
    index = item_at(context, ports_path, finding)
    region = content_span(context.document, ports_path)
    shown = mapping["ports"][index]
    trailing = remove_item(context.document, ports_path, index)
    if not len(mapping["ports"]):
        remove_key(context.document, path, "ports", trailing)
    return FixResult(f"removed published port `{shown}` of Redis service `{path[1]}`", [region])


# ---------------------------------------------------------------------------
# Broker readiness (XG202)


def ensure_redis_healthcheck(context: FileContext, name: str) -> list[Region]:
    """Give Redis service `name` a healthcheck unless it has one; return the lines this touches."""
    if name in context.healthchecks:
        return []
    services = context.document.root.get("services")
    if not isinstance(services, CommentedMap) or name not in services:
        raise EditError(f"Redis service `{name}` is not defined in {context.path}; add its healthcheck where it is defined")
    model = context.project.services[name]
    if model.healthcheck is not None and model.healthcheck.disabled:
        raise EditError(f"Redis service `{name}` turns its healthcheck off; remove `disable` or `NONE` by hand")
    image = context.roles.redis.get(name)
    if model.healthcheck is not None or (image is not None and image_has_healthcheck(image.product)):
        context.healthchecks.add(name)
        return []

    path = ("services", name)
    check_editable(context.document, path, f"service `{name}`")
    test = CommentedSeq([context.quote(part) for part in REDIS_HEALTHCHECK_TEST])
    test.fa.set_flow_style()
    healthcheck = CommentedMap([("test", test), *REDIS_HEALTHCHECK_TIMING.items()])
    region = tail_region(context.document, path)
    append_key(context.document, path, "healthcheck", healthcheck)
    context.healthchecks.add(name)
    return [region]


def fix_broker_readiness(context: FileContext, finding: Finding) -> FixResult:
    """XG202 (unsafe): give Redis a healthcheck and make Celery wait for `service_healthy`."""
    path = service_path(context, finding)
    name = path[1]
    redis_names = list(context.roles.redis)
    if name in context.roles.redis:
        regions = ensure_redis_healthcheck(context, name)
        return FixResult(f"added a `redis-cli ping` healthcheck to Redis service `{name}`", regions)

    service = context.project.services.get(name)
    brokers = broker_services(service, redis_names) if service is not None else []
    if len(brokers) != 1:
        raise EditError(f"cannot tell which Redis service `{name}` uses as its broker; add `depends_on` by hand")
    broker = brokers[0]
    regions = ensure_redis_healthcheck(context, broker)
    regions += _wait_until_healthy(context, path, broker)
    return FixResult(f"made service `{name}` wait until Redis `{broker}` is healthy", regions)


def _condition(value: str) -> CommentedMap:
    return CommentedMap([("condition", value)])


def _wait_until_healthy(context: FileContext, path: tuple[str, str], broker: str) -> list[Region]:
    document = context.document
    mapping = child(document, path)
    if "depends_on" not in mapping:
        region = tail_region(document, path)
        append_key(document, path, "depends_on", CommentedMap([(broker, _condition("service_healthy"))]))
        return [region]

    dependency_path = (*path, "depends_on")
    check_editable(document, dependency_path, f"`depends_on` of service `{path[1]}`")
    dependencies = mapping["depends_on"]
    if isinstance(dependencies, CommentedSeq):
        return [_list_to_mapping(context, dependency_path, broker)]
    if not isinstance(dependencies, CommentedMap):
        raise EditError(f"`depends_on` of service `{path[1]}` is neither a list nor a mapping")
    if broker not in dependencies:
        region = tail_region(document, dependency_path)
        append_key(document, dependency_path, broker, _condition("service_healthy"))
        return [region]
    check_editable(document, (*dependency_path, broker), f"the dependency on `{broker}`")
    entry = dependencies[broker]
    region = content_span(document, (*dependency_path, broker))
    if entry is None:
        dependencies[broker] = _condition("service_healthy")
    elif isinstance(entry, CommentedMap) and "condition" in own_keys(entry):
        entry["condition"] = "service_healthy"
    elif isinstance(entry, CommentedMap):
        append_key(document, (*dependency_path, broker), "condition", "service_healthy")
    else:
        raise EditError(f"the dependency on `{broker}` is not a mapping")
    return [region]


def _list_to_mapping(context: FileContext, path: tuple, broker: str) -> Region:
    """Turn `depends_on: [a, redis]` into the mapping form, which can carry a condition.

    Other services keep `service_started`, which is what the list form means.
    """
    document = context.document
    sequence = child(document, path)
    names = [str(item) for item in sequence]
    if len(set(names)) != len(names) or not all(isinstance(item, str) for item in sequence):
        raise EditError("`depends_on` lists a service twice or contains something other than names")
    region = content_span(document, path)
    comments = {}
    for index, name in enumerate(names):
        entry = sequence.ca.items.get(index)
        token = entry[0] if entry else None
        if token is not None and token.value.lstrip(" ").startswith("#"):
            comments[name] = token.value.split("\n", 1)[0].strip().lstrip("#").strip()
    trailing = take_trailing(sequence) if not sequence.fa.flow_style() else ""
    if sequence.fa.flow_style():
        trailing = take_trailing(child(document, path[:-1])) if own_keys(child(document, path[:-1]))[-1] == path[-1] else ""

    converted = CommentedMap()
    for name in [*names, *([broker] if broker not in names else [])]:
        converted[name] = _condition("service_healthy" if name == broker else "service_started")
        if name in comments:
            converted.yaml_add_eol_comment(f"# {comments[name]}", name)
    child(document, path[:-1])[path[-1]] = converted
    give_trailing(converted, trailing)
    return region


FIXERS: dict[str, Fixer] = {
    "XG003": fix_quote_port,
    "XG101": fix_redis_volume,
    "XG102": fix_undeclared_volume,
    "XG110": fix_redis_port,
    "XG202": fix_broker_readiness,
}

__all__ = ["FIXERS", "FileContext", "FixResult", "REDIS_HEALTHCHECK_TEST", "REDIS_HEALTHCHECK_TIMING"]
