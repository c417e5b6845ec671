"""Build the typed compose model from a located (and interpolated) YAML tree.

Only the keys that rules read are modelled. A key with a shape Compose rejects
becomes a StructureProblem at its location (rule XG002) and is left out of the
model, so the rest of the file is still checked.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from xgen_audit.compose.model import (
    Build,
    CommandLine,
    ComposeProject,
    Dependency,
    EnvFile,
    EnvValue,
    Healthcheck,
    Limit,
    Mount,
    PortBinding,
    Service,
    StructureProblem,
    Text,
    TopLevelVolume,
)
from xgen_audit.compose.syntax import (
    SyntaxProblem,
    parse_bytes,
    parse_cpus,
    parse_port_spec,
    parse_volume_spec,
)
from xgen_audit.parse.tree import TAG_STR, Loc, YMap, YNode, YScalar, YSeq, kind_name


class _Builder:
    def __init__(self, project: ComposeProject):
        self.project = project

    def problem(self, message: str, loc: Loc, service: str | None = None) -> None:
        self.project.problems.append(StructureProblem(message=message, loc=loc, service=service))

    def expect_map(self, node: YNode | None, what: str, loc: Loc, service: str | None) -> YMap | None:
        if node is None or (isinstance(node, YScalar) and node.value is None):
            return None
        if not isinstance(node, YMap):
            self.problem(f"{what} must be a mapping, not {kind_name(node)}", _node_loc(node, loc), service)
            return None
        return node

    def expect_list(self, node: YNode | None, what: str, loc: Loc, service: str | None) -> YSeq | None:
        if node is None or (isinstance(node, YScalar) and node.value is None):
            return None
        if not isinstance(node, YSeq):
            self.problem(f"{what} must be a list, not {kind_name(node)}", _node_loc(node, loc), service)
            return None
        return node

    def text(self, node: YNode | None, what: str, loc: Loc, service: str | None) -> Text | None:
        """Return a scalar as text; numbers are accepted where Compose accepts them."""
        if node is None or (isinstance(node, YScalar) and node.value is None):
            return None
        if not isinstance(node, YScalar) or isinstance(node.value, bool):
            self.problem(f"{what} must be a string, not {kind_name(node)}", _node_loc(node, loc), service)
            return None
        return _as_text(node)


def _node_loc(node: YNode | None, fallback: Loc) -> Loc:
    return node.loc if node is not None else fallback


def _as_text(node: YScalar) -> Text:
    value = node.value
    if isinstance(value, float) and value.is_integer():
        text = node.raw or str(value)
    elif isinstance(value, str):
        text = value
    else:
        text = node.raw if node.raw else str(value)
    return Text(value=text, loc=node.loc, raw=node.raw, unresolved=node.unresolved)


def build_project(root: YNode | None, files: list[str], project_dir: Path, root_loc: Loc) -> ComposeProject:
    """Build the model of one compose file or merged stack."""
    project = ComposeProject(files=files, project_dir=project_dir, root_loc=root_loc)
    builder = _Builder(project)
    if root is None or (isinstance(root, YScalar) and root.value is None):
        return project
    if not isinstance(root, YMap):
        builder.problem(f"the top level of a compose file must be a mapping, not {kind_name(root)}", root.loc)
        return project

    services = builder.expect_map(root.get("services"), "`services`", root.key_loc("services"), None)
    if services is not None:
        for name, entry in services.entries.items():
            service = _build_service(builder, name, entry.key_loc, entry.value)
            if service is not None:
                project.services[name] = service

    volumes = builder.expect_map(root.get("volumes"), "top-level `volumes`", root.key_loc("volumes"), None)
    if volumes is not None:
        project.volumes_loc = root.key_loc("volumes")
        for name, entry in volumes.entries.items():
            project.volumes[name] = _build_top_volume(builder, name, entry.key_loc, entry.value)
    return project


def _build_top_volume(builder: _Builder, name: str, loc: Loc, node: YNode) -> TopLevelVolume:
    external = False
    mapping = builder.expect_map(node, f"volume `{name}`", loc, None)
    if mapping is not None:
        external_node = mapping.get("external")
        external = bool(isinstance(external_node, YScalar) and external_node.value not in (None, False, "false"))
        if isinstance(external_node, YMap):
            external = True
    return TopLevelVolume(name=name, loc=loc, external=external)


def _build_service(builder: _Builder, name: str, key_loc: Loc, node: YNode) -> Service | None:
    if not isinstance(node, YMap):
        where = key_loc if isinstance(node, YScalar) and node.value is None else node.loc
        builder.problem(f"service `{name}` must be a mapping, not {kind_name(node)}", where, name)
        return None
    service = Service(name=name, loc=key_loc)
    service.image = builder.text(node.get("image"), f"`services.{name}.image`", node.key_loc("image"), name)
    service.build = _build_build(builder, name, node)
    service.command = _build_command(builder, name, node, "command")
    service.entrypoint = _build_command(builder, name, node, "entrypoint")
    _build_ports(builder, service, node)
    _build_expose(builder, service, node)
    _build_volumes(builder, service, node)
    _build_environment(builder, service, node)
    _build_env_files(builder, service, node)
    _build_depends_on(builder, service, node)
    service.healthcheck = _build_healthcheck(builder, name, node)
    _build_limits(builder, service, node)
    logging = builder.expect_map(node.get("logging"), f"`services.{name}.logging`", node.key_loc("logging"), name)
    if logging is not None:
        service.logging_driver = builder.text(
            logging.get("driver"), f"`services.{name}.logging.driver`", logging.key_loc("driver"), name
        )
    service.network_mode = builder.text(
        node.get("network_mode"), f"`services.{name}.network_mode`", node.key_loc("network_mode"), name
    )
    service.working_dir = builder.text(
        node.get("working_dir"), f"`services.{name}.working_dir`", node.key_loc("working_dir"), name
    )
    profiles = builder.expect_list(node.get("profiles"), f"`services.{name}.profiles`", node.key_loc("profiles"), name)
    if profiles is not None:
        for item in profiles.items:
            text = builder.text(item, f"a profile of service `{name}`", profiles.loc, name)
            if text is not None:
                service.profiles.append(text.value)
    return service


def _build_build(builder: _Builder, name: str, node: YMap) -> Build | None:
    value = node.get("build")
    loc = node.key_loc("build")
    if value is None or (isinstance(value, YScalar) and value.value is None):
        return None
    if isinstance(value, YScalar):
        text = builder.text(value, f"`services.{name}.build`", loc, name)
        return Build(context=text.value, loc=loc) if text is not None else None
    mapping = builder.expect_map(value, f"`services.{name}.build`", loc, name)
    if mapping is None:
        return None
    context = builder.text(mapping.get("context"), f"`services.{name}.build.context`", loc, name)
    dockerfile = builder.text(mapping.get("dockerfile"), f"`services.{name}.build.dockerfile`", loc, name)
    target = builder.text(mapping.get("target"), f"`services.{name}.build.target`", loc, name)
    return Build(
        context=context.value if context is not None else ".",
        dockerfile=dockerfile.value if dockerfile is not None else None,
        target=target.value.lower() if target is not None else None,
        loc=loc,
    )


def _build_command(builder: _Builder, name: str, node: YMap, key: str) -> CommandLine | None:
    value = node.get(key)
    key_loc = node.key_loc(key)
    what = f"`services.{name}.{key}`"
    if value is None or (isinstance(value, YScalar) and value.value is None):
        return None
    if isinstance(value, YSeq):
        tokens = []
        for item in value.items:
            text = builder.text(item, f"an item of {what}", value.loc, name)
            if text is not None:
                tokens.append(text)
        return CommandLine(form="list", tokens=tokens, loc=value.loc, key_loc=key_loc)
    text = builder.text(value, what, key_loc, name)
    if text is None:
        return None
    try:
        words = shlex.split(text.value, comments=False, posix=True)
    except ValueError as error:
        builder.problem(f"{what} cannot be split into words: {error}", text.loc, name)
        return None
    quote_offset = 1 if isinstance(value, YScalar) and value.style in ("'", '"') else 0
    tokens = _locate_words(words, text, quote_offset)
    if text.unresolved:
        tokens = _attribute_unresolved(tokens, text)
    return CommandLine(form="string", tokens=tokens, loc=text.loc, key_loc=key_loc)


def _locate_words(words: list[str], text: Text, quote_offset: int) -> list[Text]:
    """Give each word of a one-line command string the column where it starts.

    The column is exact for plain and quoted one-line strings without escapes;
    other strings give every word the string's own position.
    """
    single_line = "\n" not in text.raw and text.raw == text.value
    located: list[Text] = []
    cursor = 0
    for word in words:
        loc = text.loc
        if single_line:
            position = text.raw.find(word, cursor)
            if position >= 0:
                loc = Loc(text.loc.file, text.loc.line, text.loc.column + quote_offset + position)
                cursor = position + len(word)
        located.append(Text(value=word, loc=loc, raw=word, unresolved=text.unresolved))
    return located


_VARIABLE_RE = r"\$\{{?{name}\b"


def _attribute_unresolved(tokens: list[Text], text: Text) -> list[Text]:
    """Mark only the words whose written form names an unset variable.

    The string was interpolated before it was split, so each word first carries
    every unset variable of the string. Splitting the written text gives the same
    words in the same order unless a value brought spaces or quotes with it. In
    that case every word keeps the whole list.
    """
    try:
        raw_words = shlex.split(text.raw, comments=False, posix=True)
    except ValueError:
        return tokens
    if len(raw_words) != len(tokens):
        # An unset variable that was a whole word vanishes from the split value:
        # the word before it keeps the variable, so `-c ${N}` stays unknown.
        return tokens
    located = []
    for token, raw_word in zip(tokens, raw_words):
        names = tuple(
            name for name in text.unresolved if re.search(_VARIABLE_RE.format(name=re.escape(name)), raw_word)
        )
        located.append(token.model_copy(update={"unresolved": names}))
    return located


def _build_ports(builder: _Builder, service: Service, node: YMap) -> None:
    name = service.name
    ports = builder.expect_list(node.get("ports"), f"`services.{name}.ports`", node.key_loc("ports"), name)
    if ports is None:
        return
    service.ports_loc = node.key_loc("ports")
    for item in ports.items:
        if isinstance(item, YMap):
            binding = _long_port(builder, name, item)
            if binding is not None:
                service.ports.append(binding)
            continue
        if not isinstance(item, YScalar) or item.value is None or isinstance(item.value, (bool, float)):
            builder.problem(
                f"a port of service `{name}` must be a number, a string or a mapping, not {kind_name(item)}",
                _node_loc(item, ports.loc),
                name,
            )
            continue
        text = _as_text(item)
        plain = item.style == "" and item.tag == TAG_STR
        if plain:
            service.plain_ports.append(text)
        if text.unresolved:
            service.ports.append(
                PortBinding(loc=item.loc, raw=item.raw, plain_scalar=plain, unresolved=text.unresolved)
            )
            continue
        try:
            specs = parse_port_spec(text.value)
        except SyntaxProblem as error:
            builder.problem(str(error), item.loc, name)
            continue
        for host_ip, published, target, protocol in specs:
            service.ports.append(
                PortBinding(
                    loc=item.loc,
                    raw=item.raw,
                    plain_scalar=plain,
                    host_ip=host_ip,
                    published=published,
                    target=target,
                    protocol=protocol,
                )
            )


def _long_port(builder: _Builder, name: str, item: YMap) -> PortBinding | None:
    target = builder.text(item.get("target"), f"`target` of a port of service `{name}`", item.loc, name)
    if target is None:
        builder.problem(f"a long-syntax port of service `{name}` has no `target`", item.loc, name)
        return None
    published = builder.text(item.get("published"), f"`published` of a port of service `{name}`", item.loc, name)
    host_ip = builder.text(item.get("host_ip"), f"`host_ip` of a port of service `{name}`", item.loc, name)
    protocol = builder.text(item.get("protocol"), f"`protocol` of a port of service `{name}`", item.loc, name)
    unresolved = tuple(
        var for part in (target, published, host_ip) if part is not None for var in part.unresolved
    )
    return PortBinding(
        loc=item.loc,
        raw="",
        long_syntax=True,
        target=target.value,
        published=published.value if published is not None else "",
        host_ip=host_ip.value if host_ip is not None else "",
        protocol=protocol.value.lower() if protocol is not None else "tcp",
        unresolved=unresolved,
    )


def _build_expose(builder: _Builder, service: Service, node: YMap) -> None:
    name = service.name
    expose = builder.expect_list(node.get("expose"), f"`services.{name}.expose`", node.key_loc("expose"), name)
    if expose is None:
        return
    for item in expose.items:
        text = builder.text(item, f"an `expose` entry of service `{name}`", expose.loc, name)
        if text is not None:
            service.expose.append(text)


def _build_volumes(builder: _Builder, service: Service, node: YMap) -> None:
    name = service.name
    volumes = builder.expect_list(node.get("volumes"), f"`services.{name}.volumes`", node.key_loc("volumes"), name)
    if volumes is None:
        return
    service.volumes_loc = node.key_loc("volumes")
    for item in volumes.items:
        if isinstance(item, YMap):
            mount = _long_mount(builder, name, item)
        elif isinstance(item, YScalar) and isinstance(item.value, str):
            mount = _short_mount(builder, name, item)
        else:
            builder.problem(
                f"a volume of service `{name}` must be a string or a mapping, not {kind_name(item)}",
                _node_loc(item, volumes.loc),
                name,
            )
            mount = None
        if mount is not None:
            service.volumes.append(mount)


def _short_mount(builder: _Builder, name: str, item: YScalar) -> Mount | None:
    text = _as_text(item)
    try:
        kind, source, target, options = parse_volume_spec(text.value)
    except SyntaxProblem as error:
        if text.unresolved:
            return Mount(loc=item.loc, raw=item.raw, type="other", unresolved=text.unresolved)
        builder.problem(f"{error} (service `{name}`)", item.loc, name)
        return None
    if text.unresolved and ":" in item.raw and "$" in item.raw.split(":", 1)[0] and not source:
        # `${SRC}:/app` with SRC unset: Compose gets `:/app`, and what the source
        # was meant to be (host path or volume name) cannot be known.
        return Mount(loc=item.loc, raw=item.raw, type="other", target=target, unresolved=text.unresolved)
    return Mount(
        loc=item.loc,
        raw=item.raw,
        type=kind,
        source=source,
        target=target,
        read_only="ro" in options,
        unresolved=text.unresolved,
    )


_MOUNT_TYPES = {"volume", "bind", "tmpfs", "npipe", "image", "cluster"}


def _long_mount(builder: _Builder, name: str, item: YMap) -> Mount | None:
    kind = builder.text(item.get("type"), f"`type` of a volume of service `{name}`", item.loc, name)
    source = builder.text(item.get("source"), f"`source` of a volume of service `{name}`", item.loc, name)
    target = builder.text(item.get("target"), f"`target` of a volume of service `{name}`", item.loc, name)
    if target is None:
        builder.problem(f"a long-syntax volume of service `{name}` has no `target`", item.loc, name)
        return None
    mount_type = kind.value if kind is not None and kind.value in _MOUNT_TYPES else "other"
    if kind is None:
        mount_type = "volume" if source is not None else "anonymous"
    if mount_type == "volume" and (source is None or not source.value):
        mount_type = "anonymous"
    read_only = item.get("read_only")
    unresolved = tuple(var for part in (kind, source, target) if part is not None for var in part.unresolved)
    return Mount(
        loc=item.loc,
        raw="",
        long_syntax=True,
        type=mount_type,
        source=source.value if source is not None else None,
        target=target.value,
        read_only=bool(isinstance(read_only, YScalar) and read_only.value in (True, "true")),
        unresolved=unresolved,
    )


def _build_environment(builder: _Builder, service: Service, node: YMap) -> None:
    name = service.name
    value = node.get("environment")
    what = f"`services.{name}.environment`"
    if isinstance(value, YMap):
        for key, entry in value.entries.items():
            scalar = entry.value
            if isinstance(scalar, YScalar):
                text = None if scalar.value is None else _as_text(scalar).value
                if isinstance(scalar.value, bool):
                    text = "true" if scalar.value else "false"
                service.environment[key] = EnvValue(value=text, loc=entry.key_loc)
            else:
                builder.problem(f"the value of {key} in {what} must be a scalar, not {kind_name(scalar)}", scalar.loc, name)
        return
    items = builder.expect_list(value, what, node.key_loc("environment"), name)
    if items is None:
        return
    for item in items.items:
        text = builder.text(item, f"an item of {what}", items.loc, name)
        if text is None:
            continue
        key, sep, val = text.value.partition("=")
        service.environment[key] = EnvValue(value=val if sep else None, loc=text.loc)


def _build_env_files(builder: _Builder, service: Service, node: YMap) -> None:
    name = service.name
    value = node.get("env_file")
    what = f"`services.{name}.env_file`"
    if isinstance(value, YScalar) and value.value is not None:
        text = builder.text(value, what, node.key_loc("env_file"), name)
        if text is not None:
            service.env_files.append(EnvFile(path=text.value, loc=text.loc))
        return
    items = builder.expect_list(value, what, node.key_loc("env_file"), name)
    if items is None:
        return
    for item in items.items:
        if isinstance(item, YMap):
            path = builder.text(item.get("path"), f"`path` in {what}", item.loc, name)
            required = item.get("required")
            if path is not None:
                service.env_files.append(
                    EnvFile(
                        path=path.value,
                        required=not (isinstance(required, YScalar) and required.value in (False, "false")),
                        loc=item.loc,
                    )
                )
            continue
        text = builder.text(item, f"an item of {what}", items.loc, name)
        if text is not None:
            service.env_files.append(EnvFile(path=text.value, loc=text.loc))


def _build_depends_on(builder: _Builder, service: Service, node: YMap) -> None:
    name = service.name
    value = node.get("depends_on")
    what = f"`services.{name}.depends_on`"
    if value is None:
        return
    service.depends_on_loc = node.key_loc("depends_on")
    if isinstance(value, YSeq):
        for item in value.items:
            text = builder.text(item, f"an item of {what}", value.loc, name)
            if text is not None:
                service.depends_on[text.value] = Dependency(service=text.value, loc=text.loc)
        return
    mapping = builder.expect_map(value, what, node.key_loc("depends_on"), name)
    if mapping is None:
        return
    for dependency, entry in mapping.entries.items():
        options = builder.expect_map(entry.value, f"`{dependency}` in {what}", entry.key_loc, name)
        condition = "service_started"
        required = True
        if options is not None:
            text = builder.text(options.get("condition"), f"`condition` in {what}", entry.key_loc, name)
            if text is not None:
                condition = text.value
            required_node = options.get("required")
            required = not (isinstance(required_node, YScalar) and required_node.value in (False, "false"))
        service.depends_on[dependency] = Dependency(
            service=dependency, condition=condition, required=required, loc=entry.key_loc, long_syntax=True
        )


def _build_healthcheck(builder: _Builder, name: str, node: YMap) -> Healthcheck | None:
    what = f"`services.{name}.healthcheck`"
    mapping = builder.expect_map(node.get("healthcheck"), what, node.key_loc("healthcheck"), name)
    if mapping is None:
        return None
    disable = mapping.get("disable")
    disabled = isinstance(disable, YScalar) and disable.value in (True, "true")
    test_node = mapping.get("test")
    test: list[str] | None = None
    if isinstance(test_node, YSeq):
        test = [str(item.value) for item in test_node.items if isinstance(item, YScalar)]
    elif isinstance(test_node, YScalar) and test_node.value is not None:
        test = ["CMD-SHELL", str(test_node.value)]
    elif test_node is not None:
        builder.problem(f"`test` in {what} must be a string or a list, not {kind_name(test_node)}", test_node.loc, name)
    return Healthcheck(loc=node.key_loc("healthcheck"), test=test, disabled=disabled)


def _build_limits(builder: _Builder, service: Service, node: YMap) -> None:
    name = service.name
    deploy = builder.expect_map(node.get("deploy"), f"`services.{name}.deploy`", node.key_loc("deploy"), name)
    limits = None
    if deploy is not None:
        resources = builder.expect_map(deploy.get("resources"), f"`services.{name}.deploy.resources`", deploy.key_loc("resources"), name)
        if resources is not None:
            limits = builder.expect_map(resources.get("limits"), f"`services.{name}.deploy.resources.limits`", resources.key_loc("limits"), name)
    if limits is not None:
        service.cpu_limit = _limit(builder, name, limits.get("cpus"), limits.key_loc("cpus"), "cpus", parse_cpus)
        service.memory_limit = _limit(builder, name, limits.get("memory"), limits.key_loc("memory"), "memory", parse_bytes)
    if service.cpu_limit is None:
        service.cpu_limit = _limit(builder, name, node.get("cpus"), node.key_loc("cpus"), "cpus", parse_cpus)
    if service.memory_limit is None:
        service.memory_limit = _limit(builder, name, node.get("mem_limit"), node.key_loc("mem_limit"), "mem_limit", parse_bytes)


def _limit(builder: _Builder, name: str, node: YNode | None, loc: Loc, key: str, parse) -> Limit | None:
    text = builder.text(node, f"`{key}` of service `{name}`", loc, name)
    if text is None:
        return None
    if text.unresolved:
        return Limit(value=None, loc=text.loc, raw=text.value, unresolved=text.unresolved)
    try:
        value = parse(text.value)
    except SyntaxProblem as error:
        builder.problem(f"{error} in service `{name}`", text.loc, name)
        return None
    return Limit(value=float(value), loc=text.loc, raw=text.value)
