"""Rule selection with prefix selectors, per-file ignores and severity overrides.

A selector is a full rule id (`XG110`), a prefix of one (`XG1`, `XG`) or `ALL`.
Within one layer of settings the most specific matching selector decides whether
a rule runs: `select = ["XG1"]` with `ignore = ["XG110"]` runs every XG1xx rule
except XG110, and `select = ["XG110"]` with `ignore = ["XG1"]` runs only XG110.
When an ignore and a select selector are equally specific, the ignore wins.

Layers (defaults, the configuration file, the command line) are applied in order.
A layer that sets `select` starts afresh; otherwise it refines the rules the
layers before it selected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from xgen_audit.findings import Finding, Severity

ALL_SELECTOR = "ALL"


def selector_matches(selector: str, rule_id: str) -> bool:
    """Return True when `selector` is ALL or a prefix of `rule_id`."""
    return selector == ALL_SELECTOR or rule_id.startswith(selector)


def specificity(selector: str) -> int:
    """Rank a selector: ALL is the least specific, a full id the most."""
    if selector == ALL_SELECTOR:
        return 0
    return len(selector)


def unknown_selectors(selectors: Iterable[str], known_ids: Iterable[str]) -> list[str]:
    """Return the selectors that match no known rule id, in input order."""
    known = list(known_ids)
    unknown: list[str] = []
    for selector in selectors:
        if selector == ALL_SELECTOR:
            continue
        if not any(rule_id.startswith(selector) for rule_id in known):
            unknown.append(selector)
    return unknown


def _decide(rule_id: str, positive: Sequence[str], negative: Sequence[str]) -> bool | None:
    """Return True (select), False (ignore) or None (no selector of this layer matches)."""
    best_select = max((specificity(s) for s in positive if selector_matches(s, rule_id)), default=-1)
    best_ignore = max((specificity(s) for s in negative if selector_matches(s, rule_id)), default=-1)
    if best_select < 0 and best_ignore < 0:
        return None
    return best_select > best_ignore


def selected_rules(
    all_ids: Iterable[str],
    select: Sequence[str] | None,
    extend_select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    *,
    base: Iterable[str] | None = None,
) -> list[str]:
    """Return the rule ids one layer of settings selects, in the order of `all_ids`.

    `select=None` means the layer does not set `select`: rules that none of its
    selectors match keep the verdict of `base` (the previous layers' result, or
    every rule when `base` is None). With `select` set, unmatched rules are off.
    """
    ids = list(all_ids)
    previous = set(ids if base is None else base)
    positive = list(select or ()) + list(extend_select)
    chosen: list[str] = []
    for rule_id in ids:
        verdict = _decide(rule_id, positive, ignore)
        if verdict is None:
            verdict = select is None and rule_id in previous
        if verdict:
            chosen.append(rule_id)
    return chosen


@dataclass(frozen=True, slots=True)
class RuleLayer:
    """The rule selectors of one settings source; `source` is "default", a file path or "command line"."""

    source: str
    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return self.select is None and not self.extend_select and not self.ignore


def fold_layers(all_ids: Iterable[str], layers: Iterable[RuleLayer]) -> list[str]:
    """Apply each layer in turn and return the rule ids that remain selected."""
    ids = list(all_ids)
    current: list[str] | None = None
    for layer in layers:
        current = selected_rules(
            ids, layer.select, layer.extend_select, layer.ignore, base=current
        )
    return ids if current is None else current


# Globs: `**` matches any number of folders, `*` and `?` stay within one path
# segment, `[...]` is a character class. Patterns use `/` as the separator.
@lru_cache(maxsize=512)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a POSIX-style glob into a regular expression matching a whole relative path."""
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif char == "*":
            parts.append("[^/]*")
            i += 1
        elif char == "?":
            parts.append("[^/]")
            i += 1
        elif char == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                parts.append(re.escape(char))
                i += 1
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                parts.append("[" + body.replace("\\", "\\\\") + "]")
                i = end + 1
        else:
            parts.append(re.escape(char))
            i += 1
    return re.compile("".join(parts) + r"\Z")


def path_matches(pattern: str, relative_path: str) -> bool:
    """Return True when a relative POSIX path matches the glob.

    A pattern without `/` also matches any single file or folder name, so
    `*.override.yaml` matches `deploy/compose.override.yaml`, as in .gitignore.
    A pattern that matches a folder matches every file below it.
    """
    path = relative_path.removeprefix("./")
    normalised = pattern.removeprefix("./").rstrip("/")
    regex = glob_to_regex(normalised)
    posix = PurePosixPath(path)
    candidates = [path] + [str(parent) for parent in posix.parents if str(parent) != "."]
    if "/" not in normalised:
        candidates.extend(posix.parts)
    return any(regex.match(candidate) for candidate in candidates)


def relative_posix(file: str | Path, root: Path, cwd: Path | None = None) -> str:
    """Express a finding's file relative to the project root, with `/` separators.

    A relative `file` is taken relative to `cwd` (default: the current folder).
    A file outside the root keeps its path as given.
    """
    path = Path(file)
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(file).as_posix()


def per_file_ignored(rule_id: str, relative_path: str, per_file_ignores: Mapping[str, Sequence[str]]) -> bool:
    """Return True when a per-file-ignores entry whose glob matches the path names the rule."""
    for pattern, selectors in per_file_ignores.items():
        if not path_matches(pattern, relative_path):
            continue
        if any(selector_matches(selector, rule_id) for selector in selectors):
            return True
    return False


def apply_per_file_ignores(
    findings: Iterable[Finding],
    per_file_ignores: Mapping[str, Sequence[str]],
    root: Path,
    cwd: Path | None = None,
) -> tuple[list[Finding], list[Finding]]:
    """Split findings into (kept, ignored) by the per-file-ignores globs, relative to `root`."""
    if not per_file_ignores:
        return list(findings), []
    kept: list[Finding] = []
    ignored: list[Finding] = []
    for finding in findings:
        relative = relative_posix(finding.file, root, cwd)
        if per_file_ignored(finding.rule, relative, per_file_ignores):
            ignored.append(finding)
        else:
            kept.append(finding)
    return kept, ignored


def apply_severity_overrides(findings: Iterable[Finding], overrides: Mapping[str, Severity]) -> list[Finding]:
    """Return the findings with the configured severity for each overridden rule id."""
    result: list[Finding] = []
    for finding in findings:
        severity = overrides.get(finding.rule)
        if severity is not None and severity != finding.severity:
            finding = finding.model_copy(update={"severity": Severity(severity)})
        result.append(finding)
    return result
