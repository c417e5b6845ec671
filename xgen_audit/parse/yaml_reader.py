"""Read a YAML file into a located tree, as Compose reads it.

ruamel.yaml's C parser (ruamel.yaml.clib) produces the events; this module builds
the tree from them itself, which lets it

- resolve plain scalars with the YAML 1.2 core schema as Compose's Go parser does
  (`22:22` and `yes` stay strings, `0777` is octal),
- resolve aliases and merge keys (`<<: *a`, `<<: [*a, *b]`; keys written in the
  mapping win over merged ones, and earlier merge sources win over later ones),
- reject duplicate keys as Compose does, and
- stop on documents that nest too deeply or expand too far through aliases,
  without recursion and before building anything large.
"""

from __future__ import annotations

import codecs
import math
import re
from dataclasses import dataclass, field

from ruamel.yaml import events
from ruamel.yaml.cyaml import CParser
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from xgen_audit.parse.tree import (
    TAG_BOOL,
    TAG_FLOAT,
    TAG_INT,
    TAG_MAP,
    TAG_NULL,
    TAG_SEQ,
    TAG_STR,
    Loc,
    YEntry,
    YMap,
    YNode,
    YScalar,
    YSeq,
)

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 256
# A document may reuse anchors, but not so that its expanded tree explodes
# ("billion laughs"): beyond this many nodes after alias expansion it is rejected.
MAX_EXPANDED_NODES = 2_000_000


class YamlReadError(Exception):
    """A file that cannot be read as YAML, with the position of the problem."""

    def __init__(self, message: str, line: int = 1, column: int = 1):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


# YAML 1.2 core schema, with the integer forms Go's strconv accepts.
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_RE = re.compile(r"^[-+]?(?:[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


# Every null, bool, int and float form starts with one of these characters (or is
# empty), so any other first character means a string without trying the patterns.
_NON_STRING_START = frozenset("~nNtTfF0123456789+-.")


def resolve_plain(text: str) -> tuple[object, str]:
    """Return the value and tag of a plain (unquoted) scalar."""
    if text and text[0] not in _NON_STRING_START:
        return text, TAG_STR
    if _NULL_RE.match(text):
        return None, TAG_NULL
    if _BOOL_RE.match(text):
        return text.lower() == "true", TAG_BOOL
    if _INT_RE.match(text):
        return _parse_int(text), TAG_INT
    if _FLOAT_RE.match(text):
        lowered = text.lower()
        if lowered.endswith("inf"):
            return (-math.inf if lowered.startswith("-") else math.inf), TAG_FLOAT
        if lowered.endswith("nan"):
            return math.nan, TAG_FLOAT
        return float(text), TAG_FLOAT
    return text, TAG_STR


def _parse_int(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits.startswith("0o"):
        return sign * int(digits[2:], 8)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    # Go's strconv.ParseInt with base 0, which Compose uses, reads a leading 0 as octal.
    if len(digits) > 1 and digits.startswith("0") and set(digits) <= set("01234567"):
        return sign * int(digits, 8)
    return sign * int(digits)


def _resolve_tagged(tag: str, text: str) -> tuple[object, str]:
    """Return the value of a scalar with an explicit core tag such as `!!int`."""
    if tag == TAG_STR:
        return text, TAG_STR
    value, resolved = resolve_plain(text)
    if resolved == tag:
        return value, tag
    # A core tag that does not fit the text (`!!int abc`): keep the text.
    return text, TAG_STR


def decode_bytes(data: bytes) -> str:
    """Decode a YAML file's bytes: UTF-8, or UTF-16/32 when a BOM marks it.

    Raises YamlReadError for binary data and invalid UTF-8, at the first bad byte.
    """
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(codec)
            except UnicodeDecodeError as error:
                raise YamlReadError(f"invalid {codec.upper()} data: {error.reason}") from None
    if b"\x00" in data:
        line, column = _byte_position(data, data.index(b"\x00"))
        raise YamlReadError("the file contains NUL bytes; it is not a text file", line, column)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _byte_position(data, error.start)
        raise YamlReadError(
            f"invalid UTF-8: byte 0x{data[error.start]:02x} cannot be decoded", line, column
        ) from None


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    line = data.count(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return line, column


@dataclass(slots=True)
class _Frame:
    """A mapping or sequence under construction."""

    node: YMap | YSeq
    anchor: str | None
    pending_key: YScalar | None = None
    merges: list[tuple[YNode, Loc]] = field(default_factory=list)
    size: int = 1


class _TreeBuilder:
    def __init__(self, filename: str):
        self.filename = filename
        self.anchors: dict[str, YNode] = {}
        self.sizes: dict[int, int] = {}
        self.stack: list[_Frame] = []
        self.root: YNode | None = None
        # Dispatch on the event's exact class: the C parser creates only these classes,
        # and one dict lookup per event is cheaper than a chain of isinstance checks.
        self.handlers = {
            events.ScalarEvent: self.add_scalar,
            events.MappingStartEvent: self.start_collection,
            events.SequenceStartEvent: self.start_collection,
            events.MappingEndEvent: self.end_collection,
            events.SequenceEndEvent: self.end_collection,
            events.AliasEvent: self.add_alias,
        }

    def loc(self, mark) -> Loc:
        return Loc(self.filename, mark.line + 1, mark.column + 1)

    def add(self, node: YNode, size: int, mark) -> None:
        """Attach a finished node to the collection being built, or make it the root."""
        if size > MAX_EXPANDED_NODES:
            raise YamlReadError(
                f"the document expands to more than {MAX_EXPANDED_NODES:,} nodes through "
                "aliases; refusing to expand it",
                mark.line + 1,
                mark.column + 1,
            )
        if not self.stack:
            self.root = node
            return
        frame = self.stack[-1]
        frame.size += size
        if frame.size > MAX_EXPANDED_NODES:
            raise YamlReadError(
                f"the document expands to more than {MAX_EXPANDED_NODES:,} nodes through "
                "aliases; refusing to expand it",
                mark.line + 1,
                mark.column + 1,
            )
        if isinstance(frame.node, YSeq):
            frame.node.items.append(node)
            return
        if frame.pending_key is None:
            if not isinstance(node, YScalar):
                raise YamlReadError(
                    "a mapping key must be a scalar; Compose does not accept complex keys",
                    mark.line + 1,
                    mark.column + 1,
                )
            frame.pending_key = node
            return
        key_node = frame.pending_key
        frame.pending_key = None
        if key_node.raw == "<<" and key_node.style == "" and key_node.tag == TAG_STR:
            frame.merges.append((node, key_node.loc))
            return
        key = _key_text(key_node)
        if key in frame.node.entries:
            first = frame.node.entries[key].key_loc
            raise YamlReadError(
                f"duplicate key {key!r} (first defined at line {first.line}); "
                "Compose rejects duplicate keys",
                key_node.loc.line,
                key_node.loc.column,
            )
        frame.node.entries[key] = YEntry(key, key_node.loc, node)

    def finish_mapping(self, frame: _Frame) -> None:
        """Apply merge keys: written keys win, then earlier merge sources."""
        mapping = frame.node
        assert isinstance(mapping, YMap)
        if not frame.merges:
            return
        merged: dict[str, YEntry] = {}
        for value, merge_loc in frame.merges:
            sources = value.items if isinstance(value, YSeq) else [value]
            for source in sources:
                if not isinstance(source, YMap):
                    raise YamlReadError(
                        "a merge key (<<) must refer to a mapping or a list of mappings",
                        merge_loc.line,
                        merge_loc.column,
                    )
                for key, entry in source.entries.items():
                    merged.setdefault(key, entry)
        for key, entry in mapping.entries.items():
            merged[key] = entry
        mapping.entries = merged

    def feed(self, event) -> None:
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(event)

    def start_collection(self, event) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise YamlReadError(
                f"the document nests deeper than {MAX_DEPTH} levels",
                event.start_mark.line + 1,
                event.start_mark.column + 1,
            )
        loc = self.loc(event.start_mark)
        if isinstance(event, events.MappingStartEvent):
            node: YMap | YSeq = YMap(loc=loc, tag=_collection_tag(event.tag, TAG_MAP))
        else:
            node = YSeq(loc=loc, tag=_collection_tag(event.tag, TAG_SEQ))
        self.stack.append(_Frame(node, event.anchor))

    def end_collection(self, event) -> None:
        frame = self.stack.pop()
        if isinstance(frame.node, YMap):
            self.finish_mapping(frame)
        if frame.anchor is not None:
            self.anchors[frame.anchor] = frame.node
            self.sizes[id(frame.node)] = frame.size
        self.add(frame.node, frame.size, event.start_mark)

    def add_alias(self, event) -> None:
        target = self.anchors.get(event.anchor)
        if target is None:
            raise YamlReadError(
                f"alias *{event.anchor} refers to an unknown or unfinished anchor",
                event.start_mark.line + 1,
                event.start_mark.column + 1,
            )
        self.add(target, self.sizes.get(id(target), 1), event.start_mark)

    def add_scalar(self, event) -> None:
        loc = self.loc(event.start_mark)
        text = event.value
        style = event.style or ""
        tag = event.tag
        if tag in (None, "!") and style == "" and event.implicit[0]:
            value, resolved = resolve_plain(text)
        elif tag is None or tag == "!":
            value, resolved = text, TAG_STR
        elif tag.startswith("tag:yaml.org,2002:"):
            value, resolved = _resolve_tagged(tag, text)
        else:
            # Custom tags (Compose's !reset and !override) keep the text and the tag.
            value, resolved = text, tag
        node = YScalar(value=value, loc=loc, raw=text, style=style, tag=resolved)
        if event.anchor is not None:
            self.anchors[event.anchor] = node
            self.sizes[id(node)] = 1
        self.add(node, 1, event.start_mark)


def _collection_tag(tag: str | None, default: str) -> str:
    if tag is None or tag == "!" or tag.startswith("tag:yaml.org,2002:"):
        return default
    return tag


def _key_text(key: YScalar) -> str:
    if isinstance(key.value, str):
        return key.value
    # Compose keys are strings; a plain `8080:` key is read as its text.
    return key.raw


@dataclass(slots=True)
class ParsedYaml:
    root: YNode | None
    text: str
    document_count: int


def parse_yaml_text(text: str, filename: str) -> ParsedYaml:
    """Parse YAML text into a located tree (the first document).

    The C parser follows libyaml, which rejects a `:` inside a plain scalar in flow
    context (`ports: [6379:6379]`) although YAML 1.2 and Compose accept it. Such a
    file is parsed again with ruamel.yaml's pure-Python parser, which accepts it.
    """
    try:
        # The C parser is used on its own: going through YAML().parse builds a loader
        # class on every call, which costs more than parsing a typical compose file.
        return _parse_events(CParser(text), text, filename)
    except _FlowColonError:
        return _parse_events(_pure_parser(text), text, filename)


class _FlowColonError(Exception):
    """libyaml rejected a `:` in a flow scalar that YAML 1.2 allows."""


def _pure_parser(text: str):
    from ruamel.yaml import YAML

    loader = YAML(typ="safe", pure=True)
    return _EventSource(loader.parse(text))


class _EventSource:
    """The pure parser's event iterator with the C parser's check/get interface."""

    def __init__(self, iterator):
        self.iterator = iter(iterator)
        self.pending = None

    def check_event(self) -> bool:
        if self.pending is None:
            self.pending = next(self.iterator, None)
        return self.pending is not None

    def get_event(self):
        self.check_event()
        event, self.pending = self.pending, None
        return event

    def dispose(self) -> None:
        self.iterator = iter(())


def _parse_events(parser, text: str, filename: str) -> ParsedYaml:
    builder: _TreeBuilder | None = None
    documents = 0
    root: YNode | None = None
    try:
        while parser.check_event():
            event = parser.get_event()
            kind = type(event)
            if kind is events.DocumentStartEvent:
                documents += 1
                builder = _TreeBuilder(filename) if documents == 1 else None
            elif kind is events.DocumentEndEvent:
                if builder is not None:
                    root = builder.root
            elif builder is not None:
                builder.feed(event)
    except MarkedYAMLError as error:
        if isinstance(parser, CParser) and "found unexpected ':'" in (error.problem or ""):
            raise _FlowColonError() from None
        mark = error.problem_mark or error.context_mark
        message = _yaml_error_message(error, text, mark)
        if mark is None:
            raise YamlReadError(message) from None
        raise YamlReadError(message, mark.line + 1, mark.column + 1) from None
    except YAMLError as error:
        raise YamlReadError(str(error).strip() or "invalid YAML") from None
    finally:
        parser.dispose()
    return ParsedYaml(root=root, text=text, document_count=documents)


def _yaml_error_message(error: MarkedYAMLError, text: str, mark) -> str:
    parts = [part for part in (error.context, error.problem) if part]
    message = "; ".join(parts) if parts else "invalid YAML"
    if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
        message += " (a tab character; YAML allows only spaces for indentation)"
    return message


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.splitlines()
    if 0 <= line < len(lines) and 0 <= column < len(lines[line]):
        return lines[line][column]
    return ""


def read_yaml_file(data: bytes, filename: str, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedYaml:
    """Decode and parse a YAML file's bytes; raises YamlReadError with a position."""
    if len(data) > max_bytes:
        raise YamlReadError(
            f"the file is {len(data):,} bytes, over the {max_bytes:,}-byte limit for one file"
        )
    return parse_yaml_text(decode_bytes(data), filename)
