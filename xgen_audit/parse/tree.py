"""Located YAML tree: plain values that remember the file, line and column they came from.

The compose reader turns ruamel.yaml nodes into this tree once. Merging files,
interpolation and the typed model all work on it, so every value that reaches a
rule still carries the position where the user wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True, slots=True, order=True)
class Loc:
    """A position in a source file; line and column are counted from 1."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


# YAML core-schema tags as ruamel.yaml's 1.2 resolver assigns them.
TAG_STR = "tag:yaml.org,2002:str"
TAG_INT = "tag:yaml.org,2002:int"
TAG_FLOAT = "tag:yaml.org,2002:float"
TAG_BOOL = "tag:yaml.org,2002:bool"
TAG_NULL = "tag:yaml.org,2002:null"
TAG_MAP = "tag:yaml.org,2002:map"
TAG_SEQ = "tag:yaml.org,2002:seq"
TAG_MERGE = "tag:yaml.org,2002:merge"

# Compose's own tags for overriding files: `!reset` removes what earlier files set,
# `!override` replaces it without the merge rules.
TAG_RESET = "!reset"
TAG_OVERRIDE = "!override"


@dataclass(slots=True, eq=False)
class YScalar:
    """A scalar with its typed value, the text as written and its quoting style.

    `style` is "" for a plain scalar, "'" or '"' for quoted ones and "|" or ">"
    for block scalars. `unresolved` names interpolation variables that had no
    value and no default, so the value cannot be known statically.
    """

    value: str | int | float | bool | None
    loc: Loc
    raw: str = ""
    style: str = ""
    tag: str = TAG_STR
    unresolved: tuple[str, ...] = ()
    interpolated: bool = False


@dataclass(slots=True, eq=False)
class YEntry:
    """One key of a mapping: the key's position and the value node."""

    key: str
    key_loc: Loc
    value: "YNode"


@dataclass(slots=True, eq=False)
class YMap:
    entries: dict[str, YEntry] = field(default_factory=dict)
    loc: Loc = Loc("", 0, 0)
    tag: str = TAG_MAP

    def get(self, key: str) -> "YNode | None":
        entry = self.entries.get(key)
        return entry.value if entry is not None else None

    def key_loc(self, key: str) -> Loc:
        entry = self.entries.get(key)
        return entry.key_loc if entry is not None else self.loc

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def items(self):
        return ((key, entry.value) for key, entry in self.entries.items())


@dataclass(slots=True, eq=False)
class YSeq:
    items: list["YNode"] = field(default_factory=list)
    loc: Loc = Loc("", 0, 0)
    tag: str = TAG_SEQ


YNode = Union[YScalar, YMap, YSeq]


def kind_name(node: YNode | None) -> str:
    """Name a node's shape the way messages about wrong shapes need it."""
    if node is None:
        return "nothing"
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    if node.value is None:
        return "null"
    if isinstance(node.value, bool):
        return "a boolean"
    if isinstance(node.value, int):
        return "a number"
    if isinstance(node.value, float):
        return "a number"
    return "a string"


def to_plain(node: YNode | None):
    """Return the tree as plain Python values, dropping positions."""
    if node is None:
        return None
    if isinstance(node, YScalar):
        return node.value
    if isinstance(node, YSeq):
        return [to_plain(item) for item in node.items]
    return {key: to_plain(entry.value) for key, entry in node.entries.items()}
