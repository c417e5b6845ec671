"""Inline suppression comments in YAML and Python files, and the XG008 checks on them.

Forms, in a `#` comment of a compose file or a Celery config module:

    ports: ["6379:6379"]  # xgen-audit: ignore XG110 -- reachable only on the CI runner
    # xgen-audit: ignore XG110,XG601 -- local development stack
    # xgen-audit: ignore-file XG601 -- this file is only used on laptops

- `ignore` at the end of a line covers that line. Alone on its line it covers the
  next line that is not itself a comment, so several directives can be stacked.
- `ignore-file` covers the whole file. It must sit in the leading comment block,
  before the first line that is neither blank nor a comment.
- A reason after `--` is required: a suppression without one suppresses nothing.

Comments are found on the raw text: Python with `tokenize`, YAML with a small
scanner that skips quoted scalars and block scalars, so a `#` inside a string
never counts as a comment. Problems with suppressions become XG008 findings.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Literal, NamedTuple

from xgen_audit.findings import Finding, Severity
from xgen_audit.rules_meta import RuleCatalogError, load_catalog

META_RULE = "XG008"
META_NAME = "bad-suppression"

# Rules whose findings no comment can hide: a file that does not parse was not
# checked at all, and XG008 reports on the comments themselves.
UNSUPPRESSIBLE: dict[str, str] = {
    "XG001": "yaml-syntax",
    "XG004": "python-syntax",
    META_RULE: META_NAME,
}

_DIRECTIVE_RE = re.compile(r"#\s*xgen-audit\s*:\s*(?P<body>.*)$")
_FALLBACK_FIX = "Name known rule ids, give a reason after ` -- `, and remove suppressions that match nothing."

Scope = Literal["line", "file"]


class Comment(NamedTuple):
    """A `#` comment: 1-based line and column of the `#`, its text, and whether it is alone on its line."""

    line: int
    column: int
    text: str
    own_line: bool


@dataclass(frozen=True)
class Suppression:
    """One parsed directive; `target_line` is None for `ignore-file`."""

    line: int
    column: int
    scope: Scope
    target_line: int | None
    rule_ids: tuple[str, ...]
    reason: str | None


@dataclass(frozen=True)
class DirectiveProblem:
    """A comment that looks like a directive but cannot be applied."""

    line: int
    column: int
    message: str


@dataclass
class ParsedSuppressions:
    suppressions: list[Suppression] = field(default_factory=list)
    problems: list[DirectiveProblem] = field(default_factory=list)


class SuppressionResult(NamedTuple):
    kept: list[Finding]
    suppressed: list[Finding]
    meta_findings: list[Finding]


# Comment extraction


def python_comments(text: str) -> list[Comment]:
    """Return the comments of Python source, using the tokenizer so strings are skipped."""
    comments: list[Comment] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type != tokenize.COMMENT:
                continue
            row, column = token.start
            own_line = token.line[:column].strip() == ""
            comments.append(Comment(row, column + 1, token.string, own_line))
    except (tokenize.TokenError, SyntaxError):
        # The module does not tokenize (XG004 reports it); the comments before
        # the error are still used.
        pass
    return comments


def _skip_quoted(line: str, start: int, quote: str) -> int:
    """Return the index after the closing quote, or -1 when the scalar continues on the next line."""
    i = start
    while i < len(line):
        char = line[i]
        if quote == "'" and char == "'":
            if i + 1 < len(line) and line[i + 1] == "'":
                i += 2
                continue
            return i + 1
        if quote == '"' and char == "\\":
            i += 2
            continue
        if quote == '"' and char == '"':
            return i + 1
        i += 1
    return -1


def _is_blank_or_end(line: str, index: int) -> bool:
    return index >= len(line) or line[index] in " \t"


def _skip_token(line: str, start: int) -> int:
    i = start
    while i < len(line) and line[i] not in " \t":
        i += 1
    return i


@dataclass
class _YamlLineState:
    """Scanner state carried from one YAML line to the next."""

    quote: str | None = None
    flow_depth: int = 0
    block_owner: int | None = None
    block_indent: int | None = None


def _scan_yaml_line(line: str, state: _YamlLineState) -> int | None:
    """Return the 0-based column of the comment on this line, updating `state`."""
    i = 0
    expect_node = True
    if state.quote is not None:
        i = _skip_quoted(line, 0, state.quote)
        if i < 0:
            return None
        state.quote = None
        expect_node = False
    elif line.startswith(("---", "...")) and _is_blank_or_end(line, 3):
        i = 3

    indent = len(line) - len(line.lstrip(" "))
    entry_column: int | None = None
    after_colon = False
    while i < len(line):
        char = line[i]
        if char in " \t":
            i += 1
            continue
        if char == "#" and (i == 0 or line[i - 1] in " \t"):
            return i
        if expect_node and char in "'\"":
            if not after_colon and state.flow_depth == 0:
                entry_column = i
            end = _skip_quoted(line, i + 1, char)
            if end < 0:
                state.quote = char
                return None
            i = end
            expect_node = False
            continue
        if expect_node and char in "-?" and _is_blank_or_end(line, i + 1):
            entry_column = i
            after_colon = False
            i += 1
            continue
        if char in "[{":
            state.flow_depth += 1
            expect_node = True
            i += 1
            continue
        if char in "]}" and state.flow_depth:
            state.flow_depth -= 1
            expect_node = False
            i += 1
            continue
        if char == "," and state.flow_depth:
            expect_node = True
            i += 1
            continue
        if char == ":" and (
            _is_blank_or_end(line, i + 1) or (state.flow_depth and line[i + 1] in ",[]{}")
        ):
            expect_node = True
            after_colon = True
            i += 1
            continue
        if expect_node and char in "!&":
            # A tag or an anchor comes before the node it belongs to.
            i = _skip_token(line, i)
            continue
        if expect_node and char in "|>" and state.flow_depth == 0:
            state.block_owner = entry_column if entry_column is not None else indent - 1
            state.block_indent = None
            i = _skip_token(line, i)
            expect_node = False
            continue
        if expect_node and not after_colon and state.flow_depth == 0:
            entry_column = i
        expect_node = False
        i += 1
    return None


def _inside_block_scalar(line: str, state: _YamlLineState) -> bool:
    """Return True when the line is content of the block scalar started above it."""
    if state.block_owner is None:
        return False
    if not line.strip():
        return True
    indent = len(line) - len(line.lstrip(" "))
    if state.block_indent is None and indent > state.block_owner:
        state.block_indent = indent
        return True
    if state.block_indent is not None and indent >= state.block_indent:
        return True
    state.block_owner = None
    state.block_indent = None
    return False


def yaml_comments(text: str) -> list[Comment]:
    """Return the comments of a YAML document, skipping `#` in quoted and block scalars.

    NOTE: a multi-line plain scalar whose continuation line starts with a quote
    character is scanned as if the quote opened a quoted scalar.
    """
    comments: list[Comment] = []
    state = _YamlLineState()
    for number, line in enumerate(text.splitlines(), start=1):
        if _inside_block_scalar(line, state):
            continue
        column = _scan_yaml_line(line, state)
        if column is None:
            continue
        comments.append(Comment(number, column + 1, line[column:], line[:column].strip() == ""))
    return comments


def is_python_file(path: str) -> bool:
    return PurePath(path).suffix == ".py"


def find_comments(text: str, path: str) -> list[Comment]:
    """Return the comments of a file, reading `.py` files as Python and the rest as YAML."""
    return python_comments(text) if is_python_file(path) else yaml_comments(text)


# Directive parsing


def first_content_line(lines: list[str]) -> int:
    """Return the 1-based number of the first line that is neither blank nor a comment."""
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return number
    return len(lines) + 1


def _next_code_line(lines: list[str], after: int) -> int:
    number = after + 1
    while number <= len(lines) and lines[number - 1].strip().startswith("#"):
        number += 1
    return number


def _split_ids(text: str) -> tuple[str, ...]:
    parts = [part for part in re.split(r"[,\s]+", text.strip()) if part]
    return tuple(dict.fromkeys(parts))


def parse_suppressions(text: str, path: str) -> ParsedSuppressions:
    """Find the `xgen-audit:` directives in one file."""
    parsed = ParsedSuppressions()
    if "xgen-audit" not in text:
        # No directive can be there; scanning comments costs more than this test.
        return parsed
    lines = text.splitlines()
    content_start = first_content_line(lines)
    for comment in find_comments(text, path):
        match = _DIRECTIVE_RE.search(comment.text)
        if match is None:
            continue
        directive = _parse_directive(match.group("body"), comment, lines, content_start)
        if isinstance(directive, DirectiveProblem):
            parsed.problems.append(directive)
        else:
            parsed.suppressions.append(directive)
    return parsed


def _parse_directive(
    body: str, comment: Comment, lines: list[str], content_start: int
) -> Suppression | DirectiveProblem:
    word, _, rest = body.strip().partition(" ")
    rest = rest.strip()
    id_text, separator, reason_text = rest.partition("--")
    if word not in ("ignore", "ignore-file"):
        return DirectiveProblem(
            comment.line, comment.column, f"unknown xgen-audit directive {word!r}; use `ignore` or `ignore-file`"
        )

    rule_ids = _split_ids(id_text)
    if not rule_ids:
        return DirectiveProblem(
            comment.line,
            comment.column,
            f"`{word}` names no rule ids; name the rules it suppresses, as in "
            f"`# xgen-audit: {word} XG110 -- reason`",
        )

    reason = reason_text.strip() if separator else ""
    if word == "ignore-file":
        if comment.line >= content_start:
            return DirectiveProblem(
                comment.line,
                comment.column,
                f"`ignore-file` on line {comment.line} is below the first line of content "
                f"(line {content_start}), so it is not applied; move it into the comment block at the top of the file",
            )
        return Suppression(comment.line, comment.column, "file", None, rule_ids, reason or None)

    target = _next_code_line(lines, comment.line) if comment.own_line else comment.line
    return Suppression(comment.line, comment.column, "line", target, rule_ids, reason or None)


# Applying suppressions to findings


def _normalise(path: str | PurePath) -> str:
    return PurePath(path).as_posix()


def _meta_fix() -> str:
    try:
        meta = load_catalog().get(META_RULE)
    except RuleCatalogError:
        meta = None
    return meta.fix if meta is not None else _FALLBACK_FIX


@dataclass
class _FileSuppressions:
    """The usable suppressions of one file and which (suppression, rule id) pairs matched."""

    path: str
    active: list[tuple[Suppression, str]] = field(default_factory=list)
    used: set[tuple[int, str]] = field(default_factory=set)

    def covering(self, finding: Finding) -> tuple[Suppression, str] | None:
        for suppression, rule_id in self.active:
            if rule_id != finding.rule:
                continue
            if suppression.scope == "file" or suppression.target_line == finding.line:
                return suppression, rule_id
        return None


def apply_suppressions(
    findings: Iterable[Finding],
    files_text: Mapping[str | PurePath, str],
    known_ids: Iterable[str],
    active_ids: Iterable[str] | None = None,
) -> SuppressionResult:
    """Split findings into kept and suppressed, and report bad suppressions as XG008 findings.

    `files_text` maps each file (as the findings name it) to its text; findings in
    other files are kept untouched. `active_ids` are the rules that ran. A
    suppression of a rule that did not run is not reported as unused, so pass the
    selected ids when only some rules ran (default: every known id).
    To honour no inline suppressions at all, do not call this function.
    """
    known = set(known_ids)
    active = known if active_ids is None else set(active_ids)
    fix = _meta_fix()
    meta: list[Finding] = []
    by_file: dict[str, _FileSuppressions] = {}

    for path, text in files_text.items():
        file_key = _normalise(path)
        parsed = parse_suppressions(text, str(path))
        file_state = _FileSuppressions(str(path))
        for problem in parsed.problems:
            meta.append(_meta_finding(file_state.path, problem.line, problem.column, problem.message, fix))
        for suppression in parsed.suppressions:
            meta.extend(_check_suppression(suppression, known, file_state, fix))
        by_file[file_key] = file_state

    kept: list[Finding] = []
    suppressed: list[Finding] = []
    for finding in findings:
        file_state = by_file.get(_normalise(finding.file))
        match = None if file_state is None or finding.rule in UNSUPPRESSIBLE else file_state.covering(finding)
        if match is None:
            kept.append(finding)
            continue
        suppressed.append(finding)
        file_state.used.add((match[0].line, match[1]))

    for file_state in by_file.values():
        meta.extend(_unused(file_state, active, fix))
    return SuppressionResult(kept, suppressed, sorted(meta, key=Finding.sort_key))


def _check_suppression(
    suppression: Suppression, known: set[str], file_state: _FileSuppressions, fix: str
) -> list[Finding]:
    """Report the problems of one directive and register the rule ids it may suppress."""
    problems: list[str] = []
    if suppression.reason is None:
        problems.append(
            f"suppression of {', '.join(suppression.rule_ids)} has no reason, so it suppresses nothing; "
            "add ` -- <why the finding is acceptable here>` after the rule ids"
        )
    for rule_id in suppression.rule_ids:
        if rule_id in UNSUPPRESSIBLE:
            problems.append(_unsuppressible_message(rule_id))
        elif rule_id not in known:
            problems.append(f"suppression names unknown rule id {rule_id!r}; `xgen-audit rules` lists the rule ids")
        elif suppression.reason is not None:
            file_state.active.append((suppression, rule_id))
    return [_meta_finding(file_state.path, suppression.line, suppression.column, text, fix) for text in problems]


def _unsuppressible_message(rule_id: str) -> str:
    if rule_id == META_RULE:
        advice = "it reports problems with suppression comments, so fix the comment or ignore XG008 in the configuration"
    else:
        advice = "a file that does not parse is not checked at all, so fix the syntax error"
    return f"{rule_id} ({UNSUPPRESSIBLE[rule_id]}) cannot be suppressed by a comment; {advice}"


def _unused(file_state: _FileSuppressions, active: set[str], fix: str) -> list[Finding]:
    findings: list[Finding] = []
    for suppression, rule_id in file_state.active:
        if rule_id not in active or (suppression.line, rule_id) in file_state.used:
            continue
        where = "in this file" if suppression.scope == "file" else f"on line {suppression.target_line}"
        message = f"suppression of {rule_id} is unused: no {rule_id} finding {where}; remove {rule_id} from the comment"
        findings.append(_meta_finding(file_state.path, suppression.line, suppression.column, message, fix))
    return findings


def _meta_finding(path: str, line: int, column: int, message: str, fix: str) -> Finding:
    return Finding(
        rule=META_RULE,
        name=META_NAME,
        severity=Severity.WARNING,
        message=message,
        fix=fix,
        file=path,
        line=line,
        column=column,
    )

