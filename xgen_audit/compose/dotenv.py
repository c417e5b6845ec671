"""Read `.env` files the way Compose reads them for interpolation.

Format, as checked against `docker compose config` (v2.40):

- `KEY=VALUE` (also `KEY: VALUE`), an optional `export ` prefix, spaces around the key ignored;
- lines that start with `#` and blank lines are skipped;
- single-quoted values are literal and may span lines;
- double-quoted values may span lines, expand `\\n`, `\\t`, `\\"`, `\\\\` and `\\$` (a literal
  `$`) and are then interpolated;
- unquoted values end at ` #` (an inline comment needs a space before `#`), are stripped and
  interpolated; a backslash is kept as written;
- a bare `KEY` takes the value of KEY from the process environment, or stays unset.

Interpolation inside the file looks in the process environment first, then in the keys defined
on earlier lines. A key defined later in the file is not visible yet.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xgen_audit.compose.interpolate import interpolate_text

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-\[\]]*")
_EXPORT_RE = re.compile(r"export\s+")

# Escapes that Compose expands inside double quotes. `\$` becomes `$$`, which the following
# interpolation step turns into a literal `$`.
_DOUBLE_QUOTE_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "$": "$$",
}


@dataclass(frozen=True, slots=True)
class DotenvEntry:
    """One variable of a `.env` file with the line (from 1) where its definition starts."""

    key: str
    value: str
    line: int
    quote: str = ""
    unresolved: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DotenvProblem:
    file: str
    line: int
    message: str


@dataclass(slots=True)
class DotenvFile:
    """A parsed `.env` file: its entries in file order and the problems found."""

    path: str
    entries: list[DotenvEntry] = field(default_factory=list)
    problems: list[DotenvProblem] = field(default_factory=list)

    @property
    def values(self) -> dict[str, str]:
        """Map each key to its value; a key defined twice keeps the later value."""
        return {entry.key: entry.value for entry in self.entries}

    def line_of(self, key: str) -> int | None:
        """Return the line of the last definition of `key`, or None."""
        found = None
        for entry in self.entries:
            if entry.key == key:
                found = entry.line
        return found


def parse_dotenv(
    text: str, filename: str = ".env", environ: Mapping[str, str] | None = None
) -> DotenvFile:
    """Parse the text of a `.env` file; `environ` is the process environment (empty if None)."""
    process_env = dict(environ or {})
    result = DotenvFile(path=filename)
    defined: dict[str, str] = {}
    lines = text.replace("\r\n", "\n").split("\n")

    index = 0
    while index < len(lines):
        line_number = index + 1
        stripped = lines[index].strip()
        index += 1
        if stripped == "" or stripped.startswith("#"):
            continue

        body = _EXPORT_RE.sub("", stripped, count=1) if stripped.startswith("export") else stripped
        key_match = _KEY_RE.match(body)
        if key_match is None:
            result.problems.append(
                DotenvProblem(filename, line_number, f"invalid line {stripped!r}: expected KEY=VALUE")
            )
            continue
        key = key_match.group(0)
        rest = body[key_match.end() :].lstrip()

        if rest == "" or rest.startswith("#"):
            # A bare key copies the process environment's value, if there is one.
            if key in process_env:
                result.entries.append(DotenvEntry(key, process_env[key], line_number))
                defined[key] = process_env[key]
            continue
        if rest[0] not in "=:":
            result.problems.append(
                DotenvProblem(
                    filename,
                    line_number,
                    f"invalid line {stripped!r}: the key {key!r} must be followed by '='",
                )
            )
            continue

        raw_value = rest[1:].lstrip()
        quote = raw_value[:1] if raw_value[:1] in ("'", '"') else ""
        if quote:
            text_value, index, closed = _read_quoted(raw_value, quote, lines, index)
            if not closed:
                result.problems.append(
                    DotenvProblem(
                        filename,
                        line_number,
                        f"unterminated {quote} quote in the value of {key}; close the quote",
                    )
                )
        else:
            text_value = _strip_inline_comment(raw_value)

        if quote == "'":
            value, unresolved = text_value, ()
        else:
            if quote == '"':
                text_value = _expand_escapes(text_value)
            lookup = {**defined, **process_env}
            interpolated = interpolate_text(text_value, lookup)
            value, unresolved = interpolated.value, interpolated.unresolved
            for message in interpolated.errors:
                result.problems.append(DotenvProblem(filename, line_number, message))

        result.entries.append(DotenvEntry(key, value, line_number, quote, unresolved))
        defined[key] = value

    return result


def _read_quoted(
    raw_value: str, quote: str, lines: list[str], next_index: int
) -> tuple[str, int, bool]:
    """Read a quoted value that may continue on later lines.

    Returns the text between the quotes, the index of the next unread line and whether the
    closing quote was found.
    """
    buffer = raw_value[1:]
    index = next_index
    while True:
        end = _closing_quote(buffer, quote)
        if end >= 0:
            return buffer[:end], index, True
        if index >= len(lines):
            return buffer, index, False
        buffer += "\n" + lines[index]
        index += 1


def _closing_quote(text: str, quote: str) -> int:
    position = 0
    while position < len(text):
        char = text[position]
        if quote == '"' and char == "\\":
            position += 2
            continue
        if char == quote:
            return position
        position += 1
    return -1


def _strip_inline_comment(value: str) -> str:
    match = re.search(r"\s#", value)
    if match is not None:
        value = value[: match.start()]
    return value.strip()


def _expand_escapes(value: str) -> str:
    def replace(match: re.Match[str]) -> str:
        return _DOUBLE_QUOTE_ESCAPES.get(match.group(1), match.group(0))

    return re.sub(r"\\(.)", replace, value, flags=re.DOTALL)


def read_dotenv(path: str | Path, environ: Mapping[str, str] | None = None) -> DotenvFile:
    """Read and parse a `.env` file; a file that cannot be read gives one problem."""
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        result = DotenvFile(path=str(file_path))
        result.problems.append(DotenvProblem(str(file_path), 1, f"cannot read the file: {error}"))
        return result
    return parse_dotenv(text, str(file_path), environ)


@dataclass(frozen=True, slots=True)
class ComposeSelection:
    """The Compose CLI variables of a `.env` that choose files and profiles.

    `files` is COMPOSE_FILE split on COMPOSE_PATH_SEPARATOR (default `os.pathsep`, as Compose
    uses the platform's separator), `profiles` is COMPOSE_PROFILES split on commas.
    """

    files: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    path_separator: str = os.pathsep


def compose_selection(values: Mapping[str, str]) -> ComposeSelection:
    """Read COMPOSE_FILE, COMPOSE_PROFILES and COMPOSE_PATH_SEPARATOR from a mapping."""
    separator = values.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
    files_text = values.get("COMPOSE_FILE", "")
    files = tuple(part for part in files_text.split(separator) if part.strip()) if files_text else ()
    profiles_text = values.get("COMPOSE_PROFILES", "")
    profiles = tuple(part.strip() for part in profiles_text.split(",") if part.strip())
    return ComposeSelection(files=files, profiles=profiles, path_separator=separator)
