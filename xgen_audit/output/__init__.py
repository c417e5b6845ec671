"""Output formats for findings and checks, plus the helpers every format shares.

Each format is a pure function from findings, checks and rule metadata to a
string; the CLI writes that string. Everything is sorted first, so the same run
always renders the same bytes.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import NamedTuple

from xgen_audit.baseline import LineTexts, content_fingerprint
from xgen_audit.findings import Check, Finding

# NOTE: placeholder until the project has a published home; SARIF's
# informationUri and helpUri are built from it.
PROJECT_URL = "https://github.com/xgen-audit/xgen-audit"


def rule_help_url(rule_id: str) -> str:
    """Return the URL of a rule's documentation page (docs/rules/<ID>.md in the repository)."""
    return f"{PROJECT_URL}/blob/main/docs/rules/{rule_id}.md"


def sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=Finding.sort_key)


def sorted_checks(checks: Iterable[Check]) -> list[Check]:
    return sorted(checks, key=Check.sort_key)


def posix_path(file: str) -> str:
    return PurePath(file).as_posix()


def stable_fingerprints(
    findings: Iterable[Finding], files_text: Mapping[str | PurePath, str] | None = None
) -> list[str]:
    """Return one fingerprint per finding, in input order, that survives edits elsewhere in the file.

    It hashes the rule, the file, the service and the offending line's code (see
    baseline.content_fingerprint). Without `files_text` the message is hashed in
    place of the line. Repeats of the same fingerprint get `:2`, `:3`… in the
    order given, so every fingerprint in one report is unique.
    """
    lines = LineTexts(files_text)
    seen: Counter[str] = Counter()
    result: list[str] = []
    for finding in findings:
        digest = hashlib.sha256()
        parts = (finding.rule, posix_path(finding.file), finding.service or "", content_fingerprint(finding, lines))
        digest.update("\0".join(parts).encode("utf-8"))
        base = digest.hexdigest()
        seen[base] += 1
        result.append(base if seen[base] == 1 else f"{base}:{seen[base]}")
    return result


def findings_for_check(check: Check, findings: Iterable[Finding]) -> list[Finding]:
    """Return the findings a check verdict covers: same rule, and the same stack or file."""
    matched: list[Finding] = []
    for finding in findings:
        if finding.rule != check.rule:
            continue
        if check.stack is not None:
            if finding.stack == check.stack:
                matched.append(finding)
        elif finding.stack is None and posix_path(finding.file) == posix_path(check.file):
            matched.append(finding)
    return matched


class RuleCount(NamedTuple):
    rule: str
    name: str
    count: int


def statistics(findings: Iterable[Finding]) -> list[RuleCount]:
    """Count findings per rule, most frequent first and then by rule id, for `--statistics`."""
    counts: Counter[tuple[str, str]] = Counter((finding.rule, finding.name) for finding in findings)
    rows = [RuleCount(rule, name, count) for (rule, name), count in counts.items()]
    return sorted(rows, key=lambda row: (-row.count, row.rule, row.name))


def render_statistics(findings: Iterable[Finding]) -> str:
    """Render `statistics()` as aligned `count  rule  name` lines; empty when there are no findings."""
    rows = statistics(findings)
    if not rows:
        return ""
    width = max(len(str(row.count)) for row in rows)
    return "".join(f"{row.count:>{width}}  {row.rule}  {row.name}\n" for row in rows)
