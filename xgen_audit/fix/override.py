"""Build a production override file for a stack (`xgen-audit init production`).

The override relies on Compose's merge tags (Compose 2.24.4 or later):
`!reset []` removes what the base file set, and `!override [...]` replaces a
list instead of appending to it. For every service it

- drops bind mounts, mounted `.env` files included (`volumes: !override`
  with the other mounts, or `!reset []` when none is left),
- removes the published ports of Redis and other datastores,
- mounts a named volume at the Redis data directory and declares it,
- gives Redis a healthcheck and makes Celery services wait for it, and
- gives each Celery worker an explicit concurrency, CPU and memory limits and
  a healthcheck. The numbers are placeholders marked `TODO(xgen-audit)`.

The model comes from xgen-audit's own reader; the user's code is never run.
"""

from __future__ import annotations

import io
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tag import Tag

from xgen_audit.checks.compose.startup import broker_services
from xgen_audit.compose.build import build_project
from xgen_audit.compose.environment import load_container_env
from xgen_audit.compose.model import ComposeProject, Mount, Service
from xgen_audit.compose.roles import CeleryProcess, ServiceRoles, image_has_healthcheck, image_repository
from xgen_audit.compose.stacks import load_stack, stack_from_files
from xgen_audit.fix.compose_fixes import REDIS_HEALTHCHECK_TEST, REDIS_HEALTHCHECK_TIMING
from xgen_audit.parse.tree import Loc
from xgen_audit.parse.yaml_reader import YamlReadError, parse_yaml_text

DEFAULT_OVERRIDE_NAME = "docker-compose.prod.yml"
# Compose's own search order for a project's main file.
BASE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")

# Placeholders the user must replace; they are valid values so that Compose and
# xgen-audit accept the file as written.
CONCURRENCY_PLACEHOLDER = "2"
CPUS_PLACEHOLDER = "2"
MEMORY_PLACEHOLDER = "1g"

# Datastore images whose ports stay off the host, by the last part of the repository name.
DATASTORE_IMAGES = (
    "postgres", "postgis", "mysql", "mariadb", "mongo", "mongodb", "rabbitmq", "memcached", "elasticsearch",
)

TODO = "TODO(xgen-audit):"


class OverrideError(Exception):
    """The override cannot be built or written; the message gives the reason and what to do."""


@dataclass(slots=True)
class OverridePlan:
    """The override to write: its text, where it goes, and what it changes per service."""

    base_files: list[str]
    output: Path
    text: str
    changes: dict[str, list[str]] = field(default_factory=dict)
    todos: list[str] = field(default_factory=list)

    @property
    def compose_command(self) -> str:
        """The `docker compose` command that shows the merged production configuration."""
        files = " ".join(f"-f {shlex.quote(name)}" for name in [*self.base_files, str(self.output)])
        return f"docker compose {files} config"


def find_base_file(folder: Path) -> Path:
    """Return the compose file Compose would read in `folder`; raise OverrideError when there is none."""
    for name in BASE_FILE_NAMES:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise OverrideError(f"no compose file ({', '.join(BASE_FILE_NAMES)}) in {folder}; name one with -f")


def plan_production_override(base_files: list[Path], output: Path | None = None) -> OverridePlan:
    """Build the production override for the stack made of `base_files` (in `-f` order)."""
    if not base_files:
        raise OverrideError("no base compose file given")
    for path in base_files:
        if not path.is_file():
            raise OverrideError(f"base compose file {path} not found")
    names = [str(path) for path in base_files]
    target = output if output is not None else base_files[0].parent / DEFAULT_OVERRIDE_NAME
    if any(os.path.realpath(target) == os.path.realpath(path) for path in base_files):
        raise OverrideError(f"the override {target} would replace a base file; choose another name with -o")

    project = _load_project(names)
    builder = _OverrideBuilder(project, ServiceRoles(project))
    root = builder.build()
    text = _dump(root, names, target)
    try:
        parse_yaml_text(text, str(target))
    except YamlReadError as error:  # pragma: no cover - would be a bug in the builder
        raise OverrideError(f"the generated override does not parse: {error.message}") from None
    return OverridePlan(base_files=names, output=target, text=text, changes=builder.changes, todos=builder.todos)


def write_override(plan: OverridePlan, force: bool = False) -> None:
    """Write the override; an existing file is replaced only with `force`."""
    if plan.output.exists() and not force:
        raise FileExistsError(f"{plan.output} already exists; use --force to overwrite it")
    plan.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = plan.output.with_name(f".{plan.output.name}.xgen-audit-tmp")
    temporary.write_text(plan.text, encoding="utf-8")
    os.replace(temporary, plan.output)


def _load_project(files: list[str]) -> ComposeProject:
    stack = stack_from_files(files, "production")
    loaded = load_stack(stack, {})
    syntax = [problem for problem in loaded.merge.problems if problem.kind == "syntax"]
    if syntax:
        raise OverrideError(f"cannot parse {syntax[0].loc}: {syntax[0].message}; fix it first (see XG001)")
    project_dir = Path(stack.project_dir or os.path.dirname(files[0]) or ".")
    project = build_project(loaded.merge.root, files, project_dir, Loc(files[0], 1, 1))
    load_container_env(project)
    return project


def _tagged(items: list, tag: str, flow: bool = False) -> CommentedSeq:
    sequence = CommentedSeq(items)
    sequence.yaml_set_ctag(Tag(suffix=tag))
    if flow:
        sequence.fa.set_flow_style()
    return sequence


def _flow(items: list) -> CommentedSeq:
    sequence = CommentedSeq(items)
    sequence.fa.set_flow_style()
    return sequence


def is_datastore(service: Service) -> bool:
    if service.image is None or not service.image.known:
        return False
    last = image_repository(service.image.value).rsplit("/", 1)[-1]
    return last in DATASTORE_IMAGES


class _OverrideBuilder:
    """Collect the override's entries service by service."""

    def __init__(self, project: ComposeProject, roles: ServiceRoles):
        self.project = project
        self.roles = roles
        self.services = CommentedMap()
        self.volumes = CommentedMap()
        self.changes: dict[str, list[str]] = {}
        self.todos: list[str] = []
        self._documents: dict[str, Any] = {}

    def build(self) -> CommentedMap:
        for name, service in self.project.services.items():
            entries = CommentedMap()
            self._volumes(service, entries)
            self._ports(service, entries)
            self._redis_healthcheck(service, entries)
            self._wait_for_broker(service, entries)
            self._worker(service, entries)
            if entries:
                self.services[name] = entries
        root = CommentedMap()
        root["services"] = self.services
        if self.volumes:
            root["volumes"] = self.volumes
            root.yaml_set_comment_before_after_key("volumes", before="\n")
        return root

    def _note(self, service: str, change: str) -> None:
        self.changes.setdefault(service, []).append(change)

    # -- volumes --------------------------------------------------------------

    def _volumes(self, service: Service, entries: CommentedMap) -> None:
        name = service.name
        binds = [mount for mount in service.volumes if mount.type == "bind"]
        kept = [mount for mount in service.volumes if mount.type != "bind"]
        redis = self.roles.redis.get(name)
        added = None
        if redis is not None and not any(
            mount.type == "volume" and mount.source and mount.target == redis.data_dir for mount in kept
        ):
            added = self._volume_name(name)
            self.volumes[added] = None
            kept = [mount for mount in kept if mount.target != redis.data_dir]
        if not binds and added is None:
            return

        items = [self._mount_item(mount) for mount in kept]
        if added is not None:
            items.append(f"{added}:{redis.data_dir}")
            self._note(name, f"named volume `{added}` at {redis.data_dir}")
        if binds:
            shown = ", ".join(mount.source or mount.raw for mount in binds)
            self._note(name, f"bind mounts dropped ({shown})")
            entries["volumes"] = _tagged(items, "!override") if items else _tagged([], "!reset", flow=True)
        else:
            entries["volumes"] = CommentedSeq(items)

    def _volume_name(self, service: str) -> str:
        taken = set(self.project.volumes) | set(self.volumes)
        for other in self.project.services.values():
            taken |= {mount.source for mount in other.volumes if mount.source}
        for candidate in ["redis-data", f"{service}-data", *(f"{service}-data-{n}" for n in range(2, 100))]:
            if candidate not in taken:
                return candidate
        raise OverrideError(f"no free volume name for Redis service `{service}`")

    def _mount_item(self, mount: Mount) -> Any:
        """The mount as the user wrote it: the short string, or a copy of the long form."""
        if not mount.long_syntax and mount.raw:
            return mount.raw
        node = self._original_node(mount.loc)
        if isinstance(node, dict):
            return _plain_copy(node)
        item = CommentedMap([("type", mount.type), ("target", mount.target)])
        if mount.source:
            item.insert(1, "source", mount.source)
        if mount.read_only:
            item["read_only"] = True
        return item

    def _original_node(self, loc: Loc) -> Any:
        document = self._documents.get(loc.file)
        if document is None:
            try:
                document = YAML().load(Path(loc.file).read_text(encoding="utf-8"))
            except Exception:  # noqa: BLE001 - any failure means: rebuild from the model
                document = {}
            self._documents[loc.file] = document
        services = document.get("services") if isinstance(document, dict) else None
        for service in (services or {}).values():
            mounts = service.get("volumes") if isinstance(service, dict) else None
            if not isinstance(mounts, CommentedSeq):
                continue
            for index, item in enumerate(mounts):
                if mounts.lc.item(index)[0] + 1 == loc.line:
                    return item
        return None

    # -- ports ----------------------------------------------------------------

    def _ports(self, service: Service, entries: CommentedMap) -> None:
        if not service.ports and service.ports_loc is None:
            return
        if service.name in self.roles.redis or is_datastore(service):
            entries["ports"] = _tagged([], "!reset", flow=True)
            shown = ", ".join(port.raw or str(port.target) for port in service.ports)
            self._note(service.name, f"published ports removed ({shown})")

    # -- startup order --------------------------------------------------------

    def _redis_healthcheck(self, service: Service, entries: CommentedMap) -> None:
        redis = self.roles.redis.get(service.name)
        if redis is None:
            return
        healthcheck = service.healthcheck
        if healthcheck is not None and healthcheck.active:
            return
        if healthcheck is None and image_has_healthcheck(redis.product):
            return
        test = _flow([DoubleQuotedScalarString(part) for part in REDIS_HEALTHCHECK_TEST])
        value = CommentedMap([("test", test), *REDIS_HEALTHCHECK_TIMING.items()])
        if healthcheck is not None:
            # `disable: true` from the base file would survive a merge.
            value.yaml_set_ctag(Tag(suffix="!override"))
        entries["healthcheck"] = value
        self._note(service.name, "healthcheck `redis-cli ping`")

    def _wait_for_broker(self, service: Service, entries: CommentedMap) -> None:
        if service.name not in {other.name for other in self.roles.celery_services()}:
            return
        for broker in broker_services(service, list(self.roles.redis)):
            dependency = service.depends_on.get(broker)
            if dependency is not None and dependency.condition == "service_healthy":
                continue
            dependencies = entries.setdefault("depends_on", CommentedMap())
            dependencies[broker] = CommentedMap([("condition", "service_healthy")])
            self._note(service.name, f"waits until `{broker}` is healthy")

    # -- workers --------------------------------------------------------------

    def _worker(self, service: Service, entries: CommentedMap) -> None:
        processes = [process for process in self.roles.workers() if process.service.name == service.name]
        if not processes:
            return
        process = processes[0]
        self._concurrency(service, process, entries)
        self._limits(service, entries)
        self._worker_healthcheck(service, process, entries)

    def _concurrency(self, service: Service, process: CeleryProcess, entries: CommentedMap) -> None:
        pool = process.option("pool")
        if process.option("concurrency") or process.option("autoscale") or (pool is not None and pool.value == "solo"):
            return
        if process.invocation.unknown_reason:
            return
        comment = (
            f"{TODO} choose the number of worker processes (--concurrency).\n"
            "Keep it at or below the CPU limit, and make the memory limit cover every process."
        )
        command = self._command_with_concurrency(service, process)
        if command is not None:
            entries["command"] = command
            entries.yaml_set_comment_before_after_key("command", before=comment, indent=4)
        else:
            environment = entries.setdefault("environment", CommentedMap())
            environment["CELERY_WORKER_CONCURRENCY"] = DoubleQuotedScalarString(CONCURRENCY_PLACEHOLDER)
            entries.yaml_set_comment_before_after_key("environment", before=comment, indent=4)
        self.todos.append(f"{service.name}: worker concurrency")
        self._note(service.name, "worker concurrency placeholder")

    def _command_with_concurrency(self, service: Service, process: CeleryProcess) -> Any:
        """The service's command with `--concurrency` added, when the command runs the worker itself."""
        command = service.command
        if command is None or process.invocation.script is not None:
            return None
        if process.invocation.loc not in {token.loc for token in command.tokens}:
            return None
        original = self._original_command(service.name, command.loc.file)
        flag = f"--concurrency={CONCURRENCY_PLACEHOLDER}"
        if isinstance(original, str):
            return f"{original.rstrip()} {flag}"
        if isinstance(original, CommentedSeq):
            words = [*[str(item) for item in original], flag]
            return _flow(words) if original.fa.flow_style() else CommentedSeq(words)
        return None

    def _original_command(self, service: str, file: str) -> Any:
        self._original_node(Loc(file, 0, 0))  # loads and caches the document
        document = self._documents.get(file) or {}
        services = document.get("services") if isinstance(document, dict) else None
        entry = (services or {}).get(service)
        return entry.get("command") if isinstance(entry, dict) else None

    def _limits(self, service: Service, entries: CommentedMap) -> None:
        limits = CommentedMap()
        if service.cpu_limit is None:
            limits["cpus"] = DoubleQuotedScalarString(CPUS_PLACEHOLDER)
            limits.yaml_set_comment_before_after_key(
                "cpus", before=f"{TODO} choose the CPUs this worker may use (a number such as 0.5 or 2)", indent=10
            )
            self.todos.append(f"{service.name}: CPU limit")
        if service.memory_limit is None:
            limits["memory"] = MEMORY_PLACEHOLDER
            limits.yaml_set_comment_before_after_key(
                "memory",
                before=f"{TODO} choose the memory limit (such as 512m or 2g); it must hold every worker process",
                indent=10,
            )
            self.todos.append(f"{service.name}: memory limit")
        if limits:
            entries["deploy"] = CommentedMap([("resources", CommentedMap([("limits", limits)]))])
            self._note(service.name, "resource limit placeholders")

    def _worker_healthcheck(self, service: Service, process: CeleryProcess, entries: CommentedMap) -> None:
        if service.healthcheck is not None or _dockerfile_healthcheck(service, self.project.project_dir):
            return
        app = process.invocation.global_options.get("app")
        target = f" -A {app.value}" if app is not None and app.value else ""
        ping = f"celery{target} inspect ping -d celery@$$HOSTNAME --timeout 10"
        test = _flow([DoubleQuotedScalarString("CMD-SHELL"), DoubleQuotedScalarString(ping)])
        entries["healthcheck"] = CommentedMap(
            [("test", test), ("interval", "30s"), ("timeout", "20s"), ("start_period", "30s"), ("retries", 3)]
        )
        if not target:
            entries.yaml_set_comment_before_after_key(
                "healthcheck", before=f"{TODO} add `-A <your app>` to the ping command", indent=4
            )
            self.todos.append(f"{service.name}: Celery app of the healthcheck")
        self._note(service.name, "healthcheck `celery inspect ping`")


def _dockerfile_healthcheck(service: Service, project_dir: Path) -> bool:
    from xgen_audit.compose.dockerfile import stage_has_healthcheck

    return stage_has_healthcheck(service, project_dir)


def _plain_copy(node: Any) -> Any:
    if isinstance(node, dict):
        return CommentedMap([(key, _plain_copy(value)) for key, value in node.items()])
    if isinstance(node, list):
        return CommentedSeq([_plain_copy(value) for value in node])
    return node


def _dump(root: CommentedMap, base_files: list[str], output: Path) -> str:
    command = " ".join(f"-f {shlex.quote(name)}" for name in [*base_files, str(output)])
    header = "\n".join(
        [
            f"Production override for {', '.join(base_files)}, written by `xgen-audit init production`.",
            f"Check the merged result with: docker compose {command} config",
            "`!reset` removes what the base file sets and `!override` replaces it (Compose 2.24.4 or later).",
            f"Replace every {TODO} placeholder before you deploy.",
        ]
    )
    root.yaml_set_start_comment(header)
    yaml = YAML()
    yaml.width = 1 << 16
    yaml.indent(mapping=2, sequence=4, offset=2)
    stream = io.StringIO()
    yaml.dump(root, stream)
    return stream.getvalue()
