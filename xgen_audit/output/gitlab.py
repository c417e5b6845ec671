"""GitLab Code Quality report: a JSON list of issues in the Code Climate shape GitLab reads.

Each issue has a description, a check_name, an MD5 hex fingerprint that is
unique in the report and stable across line moves, a severity, and the
location's relative path and first line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import Any

from xgen_audit.findings import Finding, Severity
from xgen_audit.output import posix_path, sorted_findings, stable_fingerprints

# GitLab's scale is info < minor < major < critical < blocker. Errors are
# deployment defects but not build breakers, so they sit at major.
SEVERITIES = {Severity.ERROR: "major", Severity.WARNING: "minor", Severity.INFO: "info"}


def build_gitlab(
    findings: Iterable[Finding], files_text: Mapping[str | PurePath, str] | None = None
) -> list[dict[str, Any]]:
    """Return the Code Quality issues as plain data; see render_gitlab."""
    findings = sorted_findings(findings)
    issues: list[dict[str, Any]] = []
    for finding, fingerprint in zip(findings, stable_fingerprints(findings, files_text)):
        issues.append(
            {
                "type": "issue",
                "check_name": finding.rule,
                "description": f"{finding.rule} ({finding.name}): {finding.message}",
                "content": {"body": f"Fix: {finding.fix}"},
                "categories": ["Bug Risk"],
                "fingerprint": hashlib.md5(fingerprint.encode("utf-8"), usedforsecurity=False).hexdigest(),
                "severity": SEVERITIES[finding.severity],
                "location": {
                    "path": posix_path(finding.file).removeprefix("./"),
                    "lines": {"begin": max(finding.line, 1)},
                },
            }
        )
    return issues


def render_gitlab(findings: Iterable[Finding], files_text: Mapping[str | PurePath, str] | None = None) -> str:
    """Render a GitLab Code Quality report (`artifacts:reports:codequality`)."""
    return json.dumps(build_gitlab(findings, files_text), indent=2, ensure_ascii=False) + "\n"
