"""Baseline files: record today's findings so that only new ones fail a run.

An entry is keyed by rule, file (relative, `/`-separated), service and a content
fingerprint: a SHA-256 over the rule, the service and the offending line's text
with its comment removed and whitespace collapsed. Line numbers are not part of
the key, so edits elsewhere in the file keep the entry matching. Identical keys
are counted, so a baseline that contains one occurrence does not hide a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xgen_audit.config import ConfigError
from xgen_audit.findings import Finding
from xgen_audit.selection import relative_posix
from xgen_audit.suppressions import find_comments

logger = logging.getLogger(__name__)

BASELINE_VERSION = 1

EntryKey = tuple[str, str, str, str]


class BaselineError(ConfigError):
    """A baseline file that cannot be read, parsed or written; the CLI exits with status 2."""


class BaselineEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str
    file: str
    service: str | None = None
    fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$")
    count: int = Field(default=1, ge=1)

    def key(self) -> EntryKey:
        return (self.rule, self.file, self.service or "", self.fingerprint)


class Baseline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = BASELINE_VERSION
    tool: Literal["xgen-audit"] = "xgen-audit"
    entries: list[BaselineEntry] = Field(default_factory=list)


# Fingerprints


def normalise_code(text: str) -> str:
    """Collapse runs of whitespace so re-indenting a line keeps its fingerprint."""
    return " ".join(text.split())


class LineTexts:
    """The lines of each file with comments removed, computed once per file."""

    def __init__(self, files_text: Mapping[str | PurePath, str] | None):
        self._texts = {PurePath(path).as_posix(): text for path, text in (files_text or {}).items()}
        self._code: dict[str, list[str]] = {}

    def code_line(self, file: str, line: int) -> str | None:
        """Return the code on a 1-based line without its comment, or None when unknown."""
        key = PurePath(file).as_posix()
        if key not in self._code:
            text = self._texts.get(key)
            if text is None:
                return None
            self._code[key] = _strip_comments(text, key)
        lines = self._code[key]
        if not 1 <= line <= len(lines):
            return None
        return lines[line - 1]


def _strip_comments(text: str, path: str) -> list[str]:
    lines = text.splitlines()
    for comment in find_comments(text, path):
        line = lines[comment.line - 1]
        lines[comment.line - 1] = line[: comment.column - 1]
    return lines


def content_fingerprint(finding: Finding, lines: LineTexts) -> str:
    """Hash the rule, the service and the offending line's code; fall back to the message.

    The message is used when the file's text is not available or the finding has
    no line, as for findings about a whole stack.
    """
    code = lines.code_line(finding.file, finding.line)
    content = f"line:{normalise_code(code)}" if code is not None else f"message:{finding.message}"
    digest = hashlib.sha256()
    digest.update("\0".join((finding.rule, finding.service or "", content)).encode("utf-8"))
    return digest.hexdigest()


def _entry_file(file: str, root: Path | None) -> str:
    if root is None:
        return PurePath(file).as_posix()
    return relative_posix(file, root)


def entry_key(finding: Finding, lines: LineTexts, root: Path | None = None) -> EntryKey:
    return (finding.rule, _entry_file(finding.file, root), finding.service or "", content_fingerprint(finding, lines))


# Writing and reading


def build_baseline(
    findings: Iterable[Finding],
    files_text: Mapping[str | PurePath, str] | None = None,
    root: Path | None = None,
) -> Baseline:
    """Return a baseline holding the findings, with entries sorted by key.

    Without `files_text` the findings' files are read from disk; a file that
    cannot be read is fingerprinted by the finding's message.
    """
    findings = list(findings)
    if files_text is None:
        files_text = _read_texts({finding.file for finding in findings})
    lines = LineTexts(files_text)
    counts = Counter(entry_key(finding, lines, root) for finding in findings)
    entries = [
        BaselineEntry(rule=rule, file=file, service=service or None, fingerprint=fingerprint, count=count)
        for (rule, file, service, fingerprint), count in sorted(counts.items())
    ]
    return Baseline(entries=entries)


def _read_texts(paths: Iterable[str]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for path in sorted(paths):
        try:
            texts[path] = Path(path).read_bytes().decode("utf-8", errors="replace")
        except OSError as error:
            logger.warning("cannot read %s for the baseline fingerprint, using the message instead: %s", path, error)
    return texts


def dump_baseline(baseline: Baseline) -> str:
    """Serialise deterministically: sorted keys, sorted entries, two-space indent, final newline."""
    data = baseline.model_dump(mode="json")
    data["entries"] = sorted(
        data["entries"],
        key=lambda entry: (entry["rule"], entry["file"], entry["service"] or "", entry["fingerprint"]),
    )
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_baseline(
    findings: Iterable[Finding],
    path: Path,
    files_text: Mapping[str | PurePath, str] | None = None,
    root: Path | None = None,
) -> Baseline:
    """Write the findings as a baseline file and return the baseline written."""
    baseline = build_baseline(findings, files_text, root)
    path = Path(path)
    try:
        path.write_text(dump_baseline(baseline), encoding="utf-8")
    except OSError as error:
        raise BaselineError(f"{path}: cannot write the baseline file: {error.strerror or error}") from error
    return baseline


def load_baseline(path: Path) -> Baseline:
    """Read and validate a baseline file; raise BaselineError naming the file and the problem."""
    path = Path(path)
    try:
        raw = path.read_bytes().decode("utf-8")
    except FileNotFoundError as error:
        raise BaselineError(f"{path}: baseline file not found; write one first or check the path") from error
    except OSError as error:
        raise BaselineError(f"{path}: cannot read the baseline file: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise BaselineError(f"{path}: the baseline file is not valid UTF-8: {error}") from error
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise BaselineError(
            f"{path}:{error.lineno}:{error.colno}: the baseline file is not valid JSON: {error.msg}"
        ) from error
    try:
        return Baseline.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or '(top level)'}: {item['msg']}" for item in error.errors()
        )
        raise BaselineError(f"{path}: invalid baseline file: {problems}") from error


def filter_with_baseline(
    findings: Iterable[Finding],
    baseline: Baseline,
    files_text: Mapping[str | PurePath, str] | None,
    root: Path | None = None,
) -> tuple[list[Finding], list[Finding], list[BaselineEntry]]:
    """Split findings into (new, matched) and return the baseline entries nothing matched.

    Each entry matches at most `count` findings, taken in sort order. A stale
    entry's `count` is the number of its occurrences left unmatched. `root` must
    be the same value that was passed when the baseline was written.
    """
    lines = LineTexts(files_text)
    remaining: Counter[EntryKey] = Counter()
    for entry in baseline.entries:
        remaining[entry.key()] += entry.count

    new: list[Finding] = []
    matched: list[Finding] = []
    for finding in sorted(findings, key=Finding.sort_key):
        key = entry_key(finding, lines, root)
        if remaining[key] > 0:
            remaining[key] -= 1
            matched.append(finding)
        else:
            new.append(finding)

    stale = [
        BaselineEntry(rule=rule, file=file, service=service or None, fingerprint=fingerprint, count=count)
        for (rule, file, service, fingerprint), count in sorted(remaining.items())
        if count > 0
    ]
    return new, matched, stale
