"""Typed model of the compose keys the rules read, each value with its origin.

The model is built from the located tree by `xgen_audit.compose.build`; rules read
only this model, never the YAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from xgen_audit.parse.tree import Loc

_CONFIG = ConfigDict(arbitrary_types_allowed=True, frozen=False)


class _Model(BaseModel):
    model_config = _CONFIG


class Text(_Model):
    """A string value as Compose reads it after interpolation."""

    value: str
    loc: Loc
    raw: str = ""
    unresolved: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        return not self.unresolved


class CommandLine(_Model):
    """`command` or `entrypoint`: string form (split like a shell) or list form."""

    form: Literal["string", "list"]
    tokens: list[Text]
    loc: Loc
    key_loc: Loc


class PortBinding(_Model):
    """One `ports` entry in canonical form (a container range stays one entry)."""

    loc: Loc
    raw: str
    long_syntax: bool = False
    plain_scalar: bool = False
    target: str | None = None
    published: str = ""
    host_ip: str = ""
    protocol: str = "tcp"
    unresolved: tuple[str, ...] = ()


class Mount(_Model):
    """One `volumes` entry of a service."""

    loc: Loc
    raw: str
    long_syntax: bool = False
    type: Literal["volume", "bind", "tmpfs", "anonymous", "npipe", "image", "cluster", "other"]
    source: str | None = None
    target: str | None = None
    read_only: bool = False
    unresolved: tuple[str, ...] = ()


class EnvValue(_Model):
    value: str | None
    loc: Loc


class EnvFile(_Model):
    path: str
    required: bool = True
    loc: Loc


class Dependency(_Model):
    service: str
    condition: str = "service_started"
    required: bool = True
    loc: Loc
    long_syntax: bool = False


class Healthcheck(_Model):
    loc: Loc
    test: list[str] | None = None
    disabled: bool = False

    @property
    def active(self) -> bool:
        if self.disabled:
            return False
        return not (self.test and self.test[0].upper() == "NONE")


class Limit(_Model):
    """A resource limit; `value` is CPUs (float) or bytes (int), None when unset or unknown."""

    value: float | None
    loc: Loc
    raw: str
    unresolved: tuple[str, ...] = ()


class Build(_Model):
    context: str = "."
    dockerfile: str | None = None
    target: str | None = None
    loc: Loc


class Service(_Model):
    name: str
    loc: Loc
    image: Text | None = None
    build: Build | None = None
    command: CommandLine | None = None
    entrypoint: CommandLine | None = None
    ports: list[PortBinding] = Field(default_factory=list)
    ports_loc: Loc | None = None
    # Port entries written as plain (unquoted) scalars, even those Compose rejects.
    plain_ports: list[Text] = Field(default_factory=list)
    expose: list[Text] = Field(default_factory=list)
    volumes: list[Mount] = Field(default_factory=list)
    volumes_loc: Loc | None = None
    environment: dict[str, EnvValue] = Field(default_factory=dict)
    env_files: list[EnvFile] = Field(default_factory=list)
    depends_on: dict[str, Dependency] = Field(default_factory=dict)
    depends_on_loc: Loc | None = None
    healthcheck: Healthcheck | None = None
    cpu_limit: Limit | None = None
    memory_limit: Limit | None = None
    logging_driver: Text | None = None
    network_mode: Text | None = None
    profiles: list[str] = Field(default_factory=list)
    working_dir: Text | None = None
    # The container's environment: env_file values overlaid by `environment`, filled
    # by xgen_audit.compose.environment when the env files can be read.
    container_env: dict[str, EnvValue] = Field(default_factory=dict)

    def env(self, name: str) -> EnvValue | None:
        """Return a variable of the container's environment, with where it was set."""
        return self.container_env.get(name) or self.environment.get(name)


class TopLevelVolume(_Model):
    name: str
    loc: Loc
    external: bool = False


class StructureProblem(_Model):
    """A key whose value has a shape Compose does not accept (rule XG002)."""

    message: str
    loc: Loc
    service: str | None = None


class ComposeProject(_Model):
    """The effective compose configuration of one file or stack."""

    files: list[str]
    project_dir: Path
    root_loc: Loc
    services: dict[str, Service] = Field(default_factory=dict)
    volumes: dict[str, TopLevelVolume] = Field(default_factory=dict)
    volumes_loc: Loc | None = None
    problems: list[StructureProblem] = Field(default_factory=list)
    environ: dict[str, str] = Field(default_factory=dict)
