"""Reading and parsing Python files safely, with positions counted from 1."""

from __future__ import annotations

import ast
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from xgen_audit.celery.model import Problem
from xgen_audit.parse.tree import Loc

log = logging.getLogger(__name__)

MAX_SOURCE_BYTES = 2 * 1024 * 1024


@dataclass
class ParsedFile:
    """A parsed module and its lines, to turn `ast` byte offsets into 1-based character columns."""

    path: Path
    display: str
    tree: ast.Module
    lines: list[str] = field(default_factory=list)

    def loc(self, node: ast.AST) -> Loc:
        line = getattr(node, "lineno", 1) or 1
        offset = getattr(node, "col_offset", 0) or 0
        return Loc(self.display, line, self.column(line, offset))

    def column(self, line: int, byte_offset: int) -> int:
        # `ast` counts columns in UTF-8 bytes from 0; findings count characters from 1.
        if 1 <= line <= len(self.lines):
            prefix = self.lines[line - 1].encode("utf-8")[:byte_offset]
            return len(prefix.decode("utf-8", errors="ignore")) + 1
        return byte_offset + 1

    def segment(self, node: ast.AST, limit: int = 80) -> str:
        try:
            text = ast.get_source_segment("\n".join(self.lines), node) or ""
        except (ValueError, IndexError):
            text = ""
        text = " ".join(text.split())
        return text if len(text) <= limit else text[: limit - 3] + "..."


def read_python(path: Path, display: str) -> tuple[ParsedFile | None, Problem | None]:
    """Read and parse one file; a failure comes back as a Problem, never as an exception."""
    try:
        size = path.stat().st_size
    except OSError as error:
        return None, Problem("unreadable", f"cannot read {display}: {error.strerror or error}", Loc(display, 1, 1))
    if size > MAX_SOURCE_BYTES:
        message = f"{display} is {size} bytes, over the {MAX_SOURCE_BYTES} byte limit for Python configuration"
        return None, Problem("unreadable", message, Loc(display, 1, 1))

    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        message = f"{display} is not valid UTF-8 (byte {error.start}); save it as UTF-8"
        return None, Problem("unreadable", message, Loc(display, 1, 1))
    except OSError as error:
        return None, Problem("unreadable", f"cannot read {display}: {error.strerror or error}", Loc(display, 1, 1))

    return parse_python(text, path, display)


def parse_python(text: str, path: Path, display: str) -> tuple[ParsedFile | None, Problem | None]:
    lines = text.splitlines()
    try:
        # Invalid escapes and the like in the user's code would print SyntaxWarning
        # lines to stderr; they are not xgen-audit's findings.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text, filename=display)
    except SyntaxError as error:
        line = error.lineno or 1
        column = error.offset or 1
        message = f"Python syntax error in {display}: {error.msg}"
        return None, Problem("syntax-error", message, Loc(display, line, max(column, 1)), rule="XG004")
    except (ValueError, RecursionError, MemoryError) as error:
        log.debug("cannot parse %s: %r", display, error)
        message = f"cannot parse {display}: {type(error).__name__}"
        return None, Problem("unreadable", message, Loc(display, 1, 1))
    return ParsedFile(path, display, tree, lines), None
