"""Round-trip editing of a compose file with ruamel.yaml, keeping its layout.

ruamel.yaml's round-trip mode keeps comments, key order, quoting, anchors and
flow style, but it writes the whole document again with one indentation style.
This module detects that style from the text, converts line endings and the
final newline back, moves comments that ruamel attaches to the wrong node when
a key is added or removed, and measures which original lines an edit may touch.
"""

from __future__ import annotations

import difflib
import io
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken

Path_ = tuple[Any, ...]

_BOM = "\ufeff"
_KEY_ONLY = re.compile(r"^( *)(?:\"[^\"]*\"|'[^']*'|[^\s#'\"-][^:#]*?):\s*(?:#.*)?$")
_KEY_LINE = re.compile(r"^( *)(?:\"[^\"]*\"|'[^']*'|[^\s#'\"-][^:#]*?):(?:\s|$)")
_DASH_LINE = re.compile(r"^( *)- ")


class EditError(Exception):
    """A fix that cannot be made safely. The message gives the reason and what to do instead."""


@dataclass(frozen=True, slots=True)
class Layout:
    """The writing style of a file: indentation, line endings, BOM, final newline and `---`."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2
    newline: str = "\n"
    final_newline: bool = True
    bom: bool = False
    explicit_start: bool = False


def detect_layout(text: str) -> Layout:
    """Read the indentation and line-ending style of a YAML text.

    The most common step between a key and the block under it wins; a file
    without block sequences gets sequences indented under their key, the
    style most compose files use.
    """
    bom = text.startswith(_BOM)
    if bom:
        text = text[1:]
    if "\r\n" in text and re.search(r"(?<!\r)\n", text):
        raise EditError("the file mixes CRLF and LF line endings; make them consistent first")
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.replace("\r\n", "\n").split("\n")

    mapping_steps: Counter[int] = Counter()
    sequence_offsets: Counter[int] = Counter()
    for index, line in enumerate(lines):
        parent = _KEY_ONLY.match(line)
        if parent is None:
            continue
        child = _next_content_line(lines, index + 1)
        if child is None:
            continue
        parent_indent = len(parent.group(1))
        dash = _DASH_LINE.match(child)
        if dash is not None and len(dash.group(1)) >= parent_indent:
            sequence_offsets[len(dash.group(1)) - parent_indent] += 1
            continue
        key = _KEY_LINE.match(child)
        if key is not None and len(key.group(1)) > parent_indent:
            mapping_steps[len(key.group(1)) - parent_indent] += 1

    mapping = mapping_steps.most_common(1)[0][0] if mapping_steps else 2
    offset = sequence_offsets.most_common(1)[0][0] if sequence_offsets else mapping
    first = _next_content_line(lines, 0)
    return Layout(
        mapping=mapping,
        sequence=offset + 2,
        offset=offset,
        newline=newline,
        final_newline=text.endswith("\n") or text == "",
        bom=bom,
        explicit_start=first is not None and first.rstrip() == "---",
    )


def _next_content_line(lines: list[str], start: int) -> str | None:
    for line in lines[start:]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return line
    return None


def make_yaml(layout: Layout) -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    # A wide line limit stops ruamel from folding long commands onto two lines.
    yaml.width = 1 << 16
    yaml.indent(mapping=layout.mapping, sequence=layout.sequence, offset=layout.offset)
    yaml.explicit_start = layout.explicit_start
    return yaml


@dataclass(slots=True)
class Document:
    """A parsed round-trip document with the text and layout it came from."""

    root: CommentedMap
    text: str  # the original, with LF line endings and no BOM
    layout: Layout

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")


def load_document(text: str) -> Document:
    """Parse a compose file for editing; raise EditError when it cannot be edited safely."""
    layout = detect_layout(text)
    plain = text[1:] if layout.bom else text
    plain = plain.replace("\r\n", "\n")
    if re.search(r"^(---|\.\.\.)\s*$", plain, re.MULTILINE) and plain.count("\n---") + plain.startswith("---") > 1:
        raise EditError("the file contains several YAML documents; Compose reads only the first")
    try:
        root = make_yaml(layout).load(plain)
    except YAMLError as error:
        raise EditError(f"ruamel.yaml cannot load the file for editing: {error}".splitlines()[0]) from None
    if not isinstance(root, CommentedMap):
        raise EditError("the file's top level is not a mapping")
    _keep_anchors(root)
    return Document(root=root, text=plain, layout=layout)


def _keep_anchors(root: Any) -> None:
    """Mark every anchor to be written again; ruamel drops anchors that no alias uses."""
    seen: set[int] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        name = anchor_name(node)
        if name is not None and hasattr(node, "yaml_set_anchor"):
            node.yaml_set_anchor(name, always_dump=True)
        if isinstance(node, CommentedMap):
            pending.extend(value for _key, value in node.non_merged_items())
        elif isinstance(node, CommentedSeq):
            pending.extend(node)


def dump_document(document: Document) -> str:
    """Write the document back with the file's own line endings, BOM and final newline."""
    stream = io.StringIO()
    make_yaml(document.layout).dump(document.root, stream)
    text = stream.getvalue()
    if not document.layout.final_newline:
        text = text.rstrip("\n")
    if document.layout.newline != "\n":
        text = text.replace("\n", document.layout.newline)
    if document.layout.bom:
        text = _BOM + text
    return text


# ---------------------------------------------------------------------------
# Walking the document


def own_keys(mapping: CommentedMap) -> list[Any]:
    """Keys written in the mapping itself, not brought in by a `<<` merge key."""
    return [key for key, _value in mapping.non_merged_items()]


def anchor_name(node: Any) -> str | None:
    anchor = getattr(node, "anchor", None)
    value = getattr(anchor, "value", None)
    return value or None


def child(document: Document, path: Path_) -> Any:
    node: Any = document.root
    for step in path:
        node = node[step]
    return node


def check_editable(document: Document, path: Path_, what: str) -> None:
    """Raise EditError when a node on `path` is shared through an anchor or comes from a merge key.

    Editing such a node would change every place that refers to it, or would
    write the value into the wrong mapping.
    """
    node: Any = document.root
    for step in path:
        if isinstance(node, CommentedMap) and step in node and step not in own_keys(node):
            raise EditError(f"{what} comes from a `<<` merge key; change it where the anchor is defined")
        node = node[step]
        name = anchor_name(node)
        if name is not None:
            raise EditError(f"{what} is shared through the anchor `&{name}`; editing it would change every alias")


def key_line(container: Any, step: Any) -> int | None:
    """The 1-based line where a mapping key or sequence item starts, if it was in the original text."""
    try:
        if isinstance(container, CommentedMap):
            return container.lc.key(step)[0] + 1
        return container.lc.item(step)[0] + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


def span(document: Document, path: Path_) -> tuple[int, int]:
    """The 1-based line range a node takes, from its key to the line before the next sibling."""
    end = len(document.lines)
    start = 1
    container: Any = document.root
    for step in path:
        steps = own_keys(container) if isinstance(container, CommentedMap) else list(range(len(container)))
        line = key_line(container, step)
        if line is not None:
            start = line
        later = [key_line(container, other) for other in steps[steps.index(step) + 1:]] if step in steps else []
        later = [value for value in later if value is not None and value > start]
        if later:
            end = min(later) - 1
        container = container[step]
    return start, end


def content_span(document: Document, path: Path_) -> tuple[int, int]:
    """Like span, without the blank and comment-only lines at its end."""
    start, end = span(document, path)
    lines = document.lines
    while end > start and _is_blank_or_comment(lines[end - 1]):
        end -= 1
    return start, end


def tail_region(document: Document, path: Path_) -> tuple[int, int]:
    """Lines where appending to the mapping or sequence at `path` changes the text."""
    node = child(document, path)
    steps = own_keys(node) if isinstance(node, CommentedMap) else list(range(len(node)))
    written = [step for step in steps if key_line(node, step) is not None]
    if not written:
        return span(document, path)
    _start, end = span(document, (*path, written[-1]))
    _last_start, last_end = content_span(document, (*path, written[-1]))
    return last_end, end


def _is_blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


# ---------------------------------------------------------------------------
# Comments that ruamel keeps on the last value of a block


def _last_leaf(node: Any) -> tuple[dict, Any, int] | None:
    """The comment slot of the last value written in a block: (ca.items, key, index)."""
    if isinstance(node, CommentedMap):
        keys = own_keys(node)
        if not keys:
            return None
        key = keys[-1]
        value = node[key]
        if _is_block(value) and len(value) and anchor_name(value) is None:
            return _last_leaf(value)
        return node.ca.items, key, 2
    if isinstance(node, CommentedSeq):
        if not len(node):
            return None
        index = len(node) - 1
        value = node[index]
        if _is_block(value) and len(value) and anchor_name(value) is None:
            return _last_leaf(value)
        return node.ca.items, index, 0
    return None


def _is_block(node: Any) -> bool:
    return isinstance(node, (CommentedMap, CommentedSeq)) and not node.fa.flow_style()


def take_trailing(node: Any) -> str:
    """Remove and return the lines ruamel attached after a block's last value.

    ruamel stores the end-of-line comment of the last value together with the
    blank lines and comments that follow it, up to the next key. When a key is
    added after that value, those lines belong after the new key instead.
    """
    slot = _last_leaf(node)
    if slot is None:
        return ""
    items, key, index = slot
    entry = items.get(key)
    if not entry or len(entry) <= index or entry[index] is None:
        return ""
    token = entry[index]
    value = token.value
    cut = value.find("\n")
    if cut < 0:
        return ""
    kept, moved = value[: cut + 1], value[cut + 1:]
    if kept.strip():
        token.value = kept
    else:
        entry[index] = None
    return moved


def give_trailing(node: Any, text: str) -> None:
    """Attach lines taken with take_trailing after the last value of `node`."""
    if not text:
        return
    slot = _last_leaf(node)
    if slot is None:
        raise EditError("cannot place the comments that follow the edited block")
    items, key, index = slot
    size = 4 if index == 2 else 2
    entry = items.setdefault(key, [None] * size)
    while len(entry) <= index:
        entry.append(None)
    token = entry[index]
    if token is None:
        entry[index] = CommentToken("\n" + text, CommentMark(0), None)
    else:
        token.value = token.value + text


def append_key(document: Document, path: Path_, key: str, value: Any, blank_line: bool = False) -> None:
    """Add `key: value` at the end of the mapping at `path`, keeping the comments that followed it.

    Comments indented deeper than the mapping's keys that come right after its
    last value belong to that value and stay; the rest move after the new key.
    """
    mapping = child(document, path)
    trailing = take_trailing(mapping)
    inner, trailing = _split_inner(trailing, _key_indent(mapping))
    give_trailing(mapping, inner)
    if blank_line:
        give_trailing(mapping, "\n")
    mapping[key] = value
    give_trailing(mapping, trailing)


def _key_indent(mapping: CommentedMap) -> int:
    keys = own_keys(mapping)
    try:
        return mapping.lc.key(keys[0])[1]
    except (IndexError, KeyError, TypeError, AttributeError):
        return 0


def _split_inner(text: str, indent: int) -> tuple[str, str]:
    lines = text.split("\n")
    count = 0
    for line in lines[:-1]:
        stripped = line.lstrip(" ")
        if not stripped.startswith("#") or len(line) - len(stripped) <= indent:
            break
        count += 1
    if count == 0:
        return "", text
    return "\n".join(lines[:count]) + "\n", "\n".join(lines[count:])


def remove_key(document: Document, path: Path_, key: str, trailing: str = "") -> None:
    """Delete a key from a mapping; the comments that followed its block stay in place.

    `trailing` carries such comments when the caller already took them off the value.
    """
    mapping = child(document, path)
    keys = own_keys(mapping)
    if keys[-1] == key:
        trailing = take_trailing(mapping) + trailing
    elif trailing.strip():
        raise EditError(f"a comment follows `{key}`; remove the key by hand")
    del mapping[key]
    if not own_keys(mapping):
        raise EditError(f"removing `{key}` would leave an empty mapping")
    give_trailing(mapping, trailing)


def remove_item(document: Document, path: Path_, index: int) -> str:
    """Delete an item of a sequence and return the comments that followed it, if none is left.

    When items remain, comments after the last item move to the new last item.
    """
    sequence = child(document, path)
    last = index == len(sequence) - 1
    if not last:
        entry = sequence.ca.items.get(index)
        token = entry[0] if entry else None
        following = token.value.split("\n", 1)[1] if token is not None and "\n" in token.value else ""
        if following.strip():
            raise EditError("a comment follows the entry; remove the entry by hand")
    trailing = take_trailing(sequence) if last else ""
    del sequence[index]
    if len(sequence):
        give_trailing(sequence, trailing)
        return ""
    return trailing


# ---------------------------------------------------------------------------
# Which lines changed


def lines_outside(original: str, new: str, regions: list[tuple[int, int]]) -> list[int]:
    """Return the original line numbers that changed outside the regions (each widened by one line)."""
    allowed: set[int] = set()
    for start, end in regions:
        allowed.update(range(start - 1, end + 2))
    before = original.replace("\r\n", "\n").split("\n")
    after = new.replace("\r\n", "\n").split("\n")
    outside: list[int] = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, i1, i2, _j1, _j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "insert":
            if i1 not in allowed and i1 + 1 not in allowed:
                outside.append(i1 + 1)
            continue
        outside.extend(line for line in range(i1 + 1, i2 + 1) if line not in allowed)
    return outside
