"""The parsed model of a Celery app's configuration, as the Celery rules read it.

Values are plain Python objects. A value that cannot be known statically is
kept as `Unknown` with the reason, so a rule can report "unknown" rather than
guess. An `Unknown` may also sit inside a dict or list whose other parts are known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from xgen_audit.parse.tree import Loc

Source = Literal["set", "default", "env"]


@dataclass(frozen=True)
class Unknown:
    """A value that cannot be decided without running the code."""

    reason: str
    loc: Loc | None = None

    def __repr__(self) -> str:
        return f"Unknown({self.reason!r})"


def contains_unknown(value: Any, depth: int = 0) -> bool:
    """Tell whether `value` is or contains an `Unknown`; nesting over 100 levels counts as unknown."""
    if isinstance(value, Unknown):
        return True
    if depth > 100:
        return True
    if isinstance(value, dict):
        return any(contains_unknown(item, depth + 1) for pair in value.items() for item in pair)
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(contains_unknown(item, depth + 1) for item in value)
    return False


@dataclass
class SettingValue:
    """The effective value of one setting and where it came from.

    `source` is "set" when the project assigns it, "env" when Celery itself reads
    it from an environment variable (CELERY_BROKER_URL, CELERY_RESULT_BACKEND)
    and "default" when nothing sets it. `env_var` names the variable the project
    code reads the value from (`os.environ.get('X', d)` and the like), and
    `from_default_of_env` is True when that variable was absent from the given
    environment, so the code's default was used. `value` may be a dict or list
    with `Unknown` members; `known` is False then.
    """

    name: str
    value: Any
    known: bool = True
    reason: str | None = None
    loc: Loc | None = None
    env_var: str | None = None
    from_default_of_env: bool = False
    source: Source = "set"
    written_as: str | None = None

    @property
    def is_set(self) -> bool:
        return self.source != "default"


@dataclass
class AppInfo:
    """The Celery app object: the module that defines it and the `Celery(...)` call."""

    module: str
    file: str
    variable: str
    loc: Loc


@dataclass
class OptionValue:
    """One task option: its value (possibly `Unknown`), where it was written and its source text."""

    value: Any
    loc: Loc
    origin: Literal["decorator", "base", "task_cls"] = "decorator"
    text: str = ""


@dataclass
class TaskInfo:
    """A task: a decorated function, with its options from the decorator and its base class."""

    name: str
    loc: Loc
    decorator: str
    options: dict[str, OptionValue] = field(default_factory=dict)
    base: str | None = None


@dataclass
class TaskClassInfo:
    """A class derived from a Celery `Task`, with the class attributes that matter to the rules."""

    name: str
    module: str
    loc: Loc
    options: dict[str, OptionValue] = field(default_factory=dict)


@dataclass
class CodeUse:
    """A place in the code that uses a feature a rule cares about (countdown, result reads)."""

    kind: str
    loc: Loc
    text: str


ProblemKind = Literal[
    "syntax-error",
    "unreadable",
    "module-not-found",
    "app-not-found",
    "unknown-setting",
    "mixed-setting-names",
    "several-config-sources",
]


@dataclass
class Problem:
    """Something wrong with the configuration that the reader found while reading it.

    `rule` is the id of the rule that reports this kind (XG004 syntax errors,
    XG005 unknown names, XG006 mixed old and new names), or None for problems
    that only make values unknown.
    """

    kind: ProblemKind
    message: str
    loc: Loc
    suggestion: str | None = None
    rule: str | None = None


@dataclass
class CeleryAnalysis:
    """Everything the reader learned about one Celery app."""

    app: AppInfo | None
    config_loc: Loc | None
    config_module: str | None
    namespace: str | None
    settings: dict[str, SettingValue] = field(default_factory=dict)
    tasks: list[TaskInfo] = field(default_factory=list)
    task_classes: list[TaskClassInfo] = field(default_factory=list)
    task_cls: str | None = None
    countdown_uses: list[CodeUse] = field(default_factory=list)
    result_reads: list[CodeUse] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files_read: list[str] = field(default_factory=list)
    service: str | None = None
    celery_version: str | None = None

    def get(self, name: str) -> SettingValue:
        """Return the effective value of a setting (old or new name), Celery's default included."""
        from xgen_audit.celery.settings_table import settings_table

        table = settings_table()
        new = table.new_name(name)
        found = self.settings.get(new)
        if found is not None:
            return found
        return SettingValue(
            name=new,
            value=table.defaults.get(new),
            known=True,
            loc=self.config_loc or (self.app.loc if self.app else None),
            source="default",
        )

    def value(self, name: str) -> Any:
        """Return the effective value, or an `Unknown` when it cannot be known statically."""
        setting = self.get(name)
        if setting.known:
            return setting.value
        return Unknown(setting.reason or "cannot be decided statically", setting.loc)
