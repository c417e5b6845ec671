"""Service roles: which services run Redis, and which run Celery workers, beat or flower."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from xgen_audit.commands.invocation import (
    AIRFLOW_ENV,
    Invocation,
    OptionValue,
    Token,
    find_invocations,
    split_shell,
)
from xgen_audit.commands.cli_tables import load_tables
from xgen_audit.compose.dockerfile import copied_source, service_stages
from xgen_audit.compose.model import ComposeProject, Service
from xgen_audit.parse.tree import Loc


@dataclass(frozen=True, slots=True)
class RedisImage:
    """A Redis-compatible image and the directory where it keeps its data."""

    product: str
    data_dir: str


# Repository path (registry and tag removed) -> product and data directory.
# Sources: each image's Dockerfile (VOLUME/WORKDIR) or entrypoint, as of 2026.
_REDIS_IMAGES = {
    "redis": RedisImage("redis", "/data"),
    "library/redis": RedisImage("redis", "/data"),
    "redis/redis-stack": RedisImage("redis-stack", "/data"),
    "redis/redis-stack-server": RedisImage("redis-stack", "/data"),
    "bitnami/redis": RedisImage("bitnami/redis", "/bitnami/redis/data"),
    "bitnamilegacy/redis": RedisImage("bitnami/redis", "/bitnami/redis/data"),
    "valkey/valkey": RedisImage("valkey", "/data"),
    "valkey": RedisImage("valkey", "/data"),
    "library/valkey": RedisImage("valkey", "/data"),
    "bitnami/valkey": RedisImage("bitnami/valkey", "/bitnami/valkey/data"),
    "eqalpha/keydb": RedisImage("keydb", "/data"),
    "keydb": RedisImage("keydb", "/data"),
    "dragonflydb/dragonfly": RedisImage("dragonfly", "/data"),
}
_REDIS_SERVER_COMMANDS = {
    "redis-server": RedisImage("redis", "/data"),
    "valkey-server": RedisImage("valkey", "/data"),
    "keydb-server": RedisImage("keydb", "/data"),
    "redis-stack-server": RedisImage("redis-stack", "/data"),
}
# Images that ship a HEALTHCHECK of their own.
_IMAGES_WITH_HEALTHCHECK = {"dragonfly"}
_AIRFLOW_IMAGES = re.compile(r"(^|/)(airflow|docker-airflow|airflow-worker)$")


def image_repository(reference: str) -> str:
    """Strip registry, tag and digest: `docker.io/library/redis:7@sha256:..` -> `library/redis`."""
    name = reference.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    return "/".join(parts).lower()


def redis_image(service: Service) -> RedisImage | None:
    """Return the Redis-compatible product a service runs, by image or server command."""
    if service.image is not None and service.image.known:
        repository = image_repository(service.image.value)
        if repository.startswith("docker.io/"):
            repository = repository[len("docker.io/"):]
        match = _REDIS_IMAGES.get(repository)
        if match is not None:
            return match
    for command in (service.entrypoint, service.command):
        if command is not None and command.tokens:
            head = os.path.basename(command.tokens[0].value)
            if head in _REDIS_SERVER_COMMANDS:
                return _REDIS_SERVER_COMMANDS[head]
    return None


def image_has_healthcheck(product: str) -> bool:
    return product in _IMAGES_WITH_HEALTHCHECK


def is_airflow_image(service: Service, project_dir: Path | None = None) -> bool:
    """Return whether a service runs an Airflow image, named or built FROM one."""
    if service.image is not None and service.image.known:
        if _AIRFLOW_IMAGES.search(image_repository(service.image.value)):
            return True
    if project_dir is None:
        return False
    stages = service_stages(service, project_dir)
    return bool(stages) and bool(_AIRFLOW_IMAGES.search(image_repository(stages[0].base)))


@dataclass(slots=True)
class CeleryProcess:
    """A Celery process a service runs, with its options including environment defaults."""

    service: Service
    invocation: Invocation
    env_options: dict[str, OptionValue] = field(default_factory=dict)

    @property
    def role(self) -> str:
        return self.invocation.role

    def option(self, name: str) -> OptionValue | None:
        """Return an option from the command line, else from CELERY_WORKER_* variables."""
        return self.invocation.options.get(name) or self.env_options.get(name)


class ServiceRoles:
    """Roles of every service of a project, computed once per project."""

    def __init__(self, project: ComposeProject):
        self.project = project

    @cached_property
    def redis(self) -> dict[str, RedisImage]:
        found = {}
        for name, service in sorted(self.project.services.items()):
            image = redis_image(service)
            if image is not None:
                found[name] = image
        return found

    @cached_property
    def celery(self) -> dict[str, list[CeleryProcess]]:
        found: dict[str, list[CeleryProcess]] = {}
        for name, service in sorted(self.project.services.items()):
            if name in self.redis:
                continue
            processes = celery_processes(service, self.project.project_dir)
            if processes:
                found[name] = processes
        return found

    def workers(self) -> list[CeleryProcess]:
        return [process for processes in self.celery.values() for process in processes if process.role == "worker"]

    def celery_services(self, roles=("worker", "beat")) -> list[Service]:
        return [
            self.project.services[name]
            for name, processes in self.celery.items()
            if any(process.role in roles for process in processes)
        ]


def command_tokens(service: Service) -> list[Token]:
    """The effective command line: entrypoint then command, as the container runs it."""
    tokens: list[Token] = []
    for command in (service.entrypoint, service.command):
        if command is not None:
            tokens.extend(Token(text.value, text.loc, text.unresolved) for text in command.tokens)
    return tokens


def celery_processes(service: Service, project_dir: Path) -> list[CeleryProcess]:
    tokens = command_tokens(service)
    airflow = is_airflow_image(service, project_dir)
    if not tokens:
        if airflow and service.image is not None and "worker" in image_repository(service.image.value):
            invocation = Invocation(role="worker", loc=service.loc, dialect="airflow")
            return [CeleryProcess(service, invocation, _environment_options(service, invocation))]
        return []
    reader = ScriptLocator(service, project_dir)
    invocations = find_invocations(tokens, reader.read, airflow_image=airflow, celery_hint=shows_celery(service))
    return [CeleryProcess(service, invocation, _environment_options(service, invocation)) for invocation in invocations]


def shows_celery(service: Service) -> bool:
    """Return whether a service shows signs of Celery besides its command: variables or healthcheck."""
    if any("CELERY" in name.upper() for name in service.container_env or service.environment):
        return True
    healthcheck = service.healthcheck
    if healthcheck is not None and healthcheck.test and "celery" in " ".join(healthcheck.test):
        return True
    return service.image is not None and "celery" in service.image.value.lower()


def _environment_options(service: Service, invocation: Invocation) -> dict[str, OptionValue]:
    """Options that click reads from CELERY_WORKER_<NAME> (or Airflow's variables)."""
    options: dict[str, OptionValue] = {}
    if invocation.dialect == "airflow":
        for name, variable in AIRFLOW_ENV.items():
            env = service.env(variable)
            if env is not None and env.value:
                options[name] = OptionValue(env.value, env.loc, source="environment", flag=variable)
        return options
    if invocation.role not in ("worker", "beat"):
        return options
    table = load_tables()["beat" if invocation.role == "beat" else "worker"]
    for spec in table.options:
        variable = f"{table.env_prefix}_{spec.name.upper()}"
        env = service.env(variable)
        if env is not None and env.value is not None and env.value != "":
            options[spec.name] = OptionValue(env.value, env.loc, source="environment", flag=variable)
    return options


_MAX_SCRIPT_BYTES = 256 * 1024
_MAX_SEARCH_FILES = 5000


class ScriptLocator:
    """Find a start script named in a service's command inside its build context.

    The Dockerfile's COPY/ADD lines map the path inside the image back to the file
    in the build context. A file of the same name in the context is the fallback.
    """

    def __init__(self, service: Service, project_dir: Path):
        self.service = service
        self.project_dir = project_dir

    def read(self, script: str) -> tuple[list[list[Token]], str | None]:
        if self.service.build is None:
            return [], f"start script {script} is inside the image and the service has no build context to look in"
        context = (self.project_dir / self.service.build.context).resolve()
        if not context.is_dir():
            return [], f"start script {script} cannot be read: build context {self.service.build.context} not found"
        path = copied_source(self.service, self.project_dir, script) or self._by_name(context, script)
        if path is None:
            return [], f"start script {script} not found under build context {self.service.build.context}"
        try:
            data = path.read_bytes()[:_MAX_SCRIPT_BYTES]
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            return [], f"start script {path} cannot be read: {error}"
        display = os.path.relpath(path) if not os.path.isabs(self.service.loc.file) else str(path)
        return split_script(text, display, self.service), None

    def _by_name(self, context: Path, script: str) -> Path | None:
        relative = (context / script.lstrip("./")).resolve() if script.startswith("./") else None
        if relative is not None and relative.is_file() and context in relative.parents:
            return relative
        name = os.path.basename(script)
        seen = 0
        for directory, subdirectories, files in os.walk(context):
            subdirectories[:] = sorted(d for d in subdirectories if d not in {".git", "node_modules", ".venv", "venv"})
            seen += len(files)
            if name in files:
                return Path(directory) / name
            if seen > _MAX_SEARCH_FILES:
                return None
        return None


def split_script(text: str, display: str, service: Service) -> list[list[Token]]:
    """Split a start script into commands, expanding variables from the service's environment."""
    commands = split_shell(text, Loc(display, 1, 1))
    return [[_expand_shell_word(token, service) for token in command] for command in commands]


_SHELL_VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def _expand_shell_word(token: Token, service: Service) -> Token:
    if "$" not in token.text:
        return token
    unresolved: list[str] = []

    def substitute(match: re.Match) -> str:
        name = match.group(1) or match.group(3)
        env = service.env(name)
        if env is not None and env.value:
            return env.value
        if match.group(2) is not None:
            return match.group(2)
        unresolved.append(name)
        return ""

    text = _SHELL_VAR_RE.sub(substitute, token.text)
    return Token(text, token.loc, tuple(unresolved))
