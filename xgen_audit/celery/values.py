"""Values met while reading Python modules statically, and the objects that stand for code.

`Ev` is the result of evaluating one expression: a plain value (or an `Unknown`)
plus the environment variables that the value was read from. The other classes
stand for things the reader can name but never runs: external modules and
functions (`ExtRef`), the project's own modules, classes and functions, and the
Celery app with the configuration calls made on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from xgen_audit.celery.model import Unknown, contains_unknown
from xgen_audit.parse.tree import Loc


@dataclass(frozen=True)
class EnvRead:
    """One read of an environment variable; `from_env` is False when the code's default was used."""

    var: str
    from_env: bool


@dataclass
class Ev:
    value: Any
    envs: tuple[EnvRead, ...] = ()

    @property
    def known(self) -> bool:
        return is_data(self.value) and not contains_unknown(self.value)


def unknown(reason: str, loc: Loc | None = None, envs: tuple[EnvRead, ...] = ()) -> Ev:
    return Ev(Unknown(reason, loc), envs)


def merge_envs(*values: Ev) -> tuple[EnvRead, ...]:
    merged: list[EnvRead] = []
    for value in values:
        for read in value.envs:
            if read not in merged:
                merged.append(read)
    return tuple(merged)


DATA_TYPES = (type(None), bool, int, float, complex, str, bytes, tuple, list, dict, set, frozenset, timedelta)


def is_data(value: Any) -> bool:
    """Tell whether `value` is plain data (as opposed to a stand-in for code or an Unknown)."""
    return isinstance(value, DATA_TYPES)


@dataclass(frozen=True)
class ExtRef:
    """A module, class or function outside the project, named by its dotted import path."""

    path: str


@dataclass
class Binding:
    """A module-level name: its value, where it was assigned and what kind of statement bound it."""

    ev: Ev
    loc: Loc
    kind: Literal["value", "import", "callable", "class", "module"] = "value"


@dataclass
class Scope:
    """The names a module or class body binds, in the order it binds them.

    `taint` is set after a star import that could not be read: from there on any
    name may have been replaced, so a lookup of an absent name is unknown rather
    than "not set".
    """

    bindings: dict[str, Binding] = field(default_factory=dict)
    taint: Unknown | None = None

    def bind(self, name: str, binding: Binding) -> None:
        self.bindings.pop(name, None)
        self.bindings[name] = binding

    def get(self, name: str) -> Binding | None:
        return self.bindings.get(name)

    def mark_tainted(self, reason: Unknown) -> None:
        for name, binding in self.bindings.items():
            if binding.kind == "value":
                self.bindings[name] = Binding(Ev(reason, binding.ev.envs), binding.loc, binding.kind)
        self.taint = reason


@dataclass
class UserModule:
    """A module of the project (found under a search root)."""

    name: str
    file: str | None
    is_package: bool
    scope: Scope
    loc: Loc | None = None


@dataclass
class ClassObj:
    name: str
    module: str
    loc: Loc
    scope: Scope
    bases: list[Any] = field(default_factory=list)


@dataclass
class FuncObj:
    name: str
    loc: Loc


@dataclass
class BoundMethod:
    obj: Any
    name: str


@dataclass
class DjangoEnv:
    """An `environ.Env(...)` object of django-environ, with the casts and defaults it was given."""

    scheme: dict[str, tuple[Any, Any]] = field(default_factory=dict)


@dataclass
class DecoupleConfig:
    """python-decouple's `config` callable (or an `AutoConfig`/`Config` instance)."""


@dataclass
class ConfigOp:
    """One change to the app-level configuration, in the order the module makes it.

    `kind` is "set", "setdefault" or "taint" (a change whose keys cannot be known).
    `auto` marks constructor keywords, which Celery leaves out of its check for
    mixed old and new names.
    """

    kind: Literal["set", "setdefault", "taint"]
    key: str
    ev: Ev
    loc: Loc
    auto: bool = False


@dataclass
class ConfigSource:
    """A `config_from_object`, `config_source=` or `config_from_envvar` call."""

    kind: Literal["object", "envvar"]
    ev: Ev
    loc: Loc
    silent: bool = False


@dataclass
class AppObj:
    """A `Celery(...)` instance and every configuration call the module makes on it."""

    module: str
    file: str
    loc: Loc
    variable: str | None = None
    ops: list[ConfigOp] = field(default_factory=list)
    defaults_ops: list[ConfigOp] = field(default_factory=list)
    sources: list[ConfigSource] = field(default_factory=list)
    namespace: Ev | None = None
    task_cls: Ev | None = None
    config_loc: Loc | None = None


@dataclass
class AppConf:
    """`app.conf` of an `AppObj`."""

    app: AppObj
