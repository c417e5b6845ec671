"""SARIF 2.1.0 output, in the subset GitHub code scanning reads.

One run whose driver lists the rules that produced a finding or a check, each with
its summary, rationale, fix and examples. Every finding becomes a result with a
location relative to `%SRCROOT%` and a partial fingerprint that does not depend
on the line number. Checks whose verdict is `unknown` are reported as tool
execution notifications, since they are not problems in the code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import PurePath, PurePosixPath
from typing import Any
from urllib.parse import quote

from xgen_audit.findings import Check, Finding, Severity, Status
from xgen_audit.output import (
    PROJECT_URL,
    posix_path,
    rule_help_url,
    sorted_checks,
    sorted_findings,
    stable_fingerprints,
)
from xgen_audit.rules_meta import RuleMeta

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "xgenAuditContentHash/v1"

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _unwrap(text: str) -> str:
    """Join hard-wrapped lines into paragraphs, keeping blank lines between paragraphs."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


def _help(meta: RuleMeta) -> dict[str, str]:
    failing = meta.examples.failing.strip("\n")
    passing = meta.examples.passing.strip("\n")
    language = meta.examples.language
    text = f"{meta.fix}\n\nFailing example:\n{failing}\n\nPassing example:\n{passing}\n"
    markdown = (
        f"{meta.fix}\n\n**Failing example**\n\n```{language}\n{failing}\n```\n\n"
        f"**Passing example**\n\n```{language}\n{passing}\n```\n"
    )
    return {"text": text, "markdown": markdown}


def _rule_descriptor(rule_id: str, name: str, meta: RuleMeta | None) -> dict[str, Any]:
    if meta is None:
        # A finding from a rule missing in the catalogue still needs a descriptor
        # for its ruleIndex, built from the id and name the finding carries.
        return {"id": rule_id, "name": name, "shortDescription": {"text": name}}
    tags = sorted({*meta.tags, meta.area.value})
    return {
        "id": meta.id,
        "name": meta.name,
        "shortDescription": {"text": meta.summary},
        "fullDescription": {"text": _unwrap(meta.rationale)},
        "help": _help(meta),
        "helpUri": rule_help_url(meta.id),
        "defaultConfiguration": {"level": LEVELS[meta.severity]},
        "properties": {"tags": tags},
    }


def _artifact_location(file: str) -> dict[str, str]:
    path = PurePath(file)
    if path.is_absolute():
        # A path outside the project cannot be expressed relative to %SRCROOT%.
        return {"uri": PurePosixPath(path.as_posix()).as_uri()}
    relative = posix_path(file).removeprefix("./")
    return {"uri": quote(relative, safe="/"), "uriBaseId": SRCROOT}


def _result(finding: Finding, rule_index: int, fingerprint: str) -> dict[str, Any]:
    return {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": f"{finding.message}\nFix: {finding.fix}"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": _artifact_location(finding.file),
                    "region": {"startLine": max(finding.line, 1), "startColumn": max(finding.column, 1)},
                }
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint},
        "properties": {
            key: value
            for key, value in (("service", finding.service), ("stack", finding.stack))
            if value is not None
        },
    }


def _notification(check: Check) -> dict[str, Any]:
    where = f"stack {check.stack!r}" if check.stack else check.file
    reason = check.reason or "no reason given"
    return {
        "level": "note",
        "message": {"text": f"{check.rule} {check.name} could not decide on {where}: {reason}"},
        "descriptor": {"id": check.rule},
    }


def build_sarif(
    findings: Iterable[Finding],
    checks: Iterable[Check],
    catalog: Mapping[str, RuleMeta],
    tool_version: str,
    *,
    files_text: Mapping[str | PurePath, str] | None = None,
    information_uri: str = PROJECT_URL,
) -> dict[str, Any]:
    """Return the SARIF log as a dict; see render_sarif."""
    findings = sorted_findings(findings)
    checks = sorted_checks(checks)

    names: dict[str, str] = {check.rule: check.name for check in checks}
    names.update({finding.rule: finding.name for finding in findings})
    rule_ids = sorted(names)
    rules = [_rule_descriptor(rule_id, names[rule_id], catalog.get(rule_id)) for rule_id in rule_ids]
    index = {rule_id: position for position, rule_id in enumerate(rule_ids)}

    fingerprints = stable_fingerprints(findings, files_text)
    results = [
        _result(finding, index[finding.rule], fingerprint) for finding, fingerprint in zip(findings, fingerprints)
    ]
    for result in results:
        if not result["properties"]:
            del result["properties"]

    notifications = [_notification(check) for check in checks if check.status is Status.UNKNOWN]
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "xgen-audit",
                        "version": tool_version,
                        "informationUri": information_uri,
                        "rules": rules,
                    }
                },
                "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def render_sarif(
    findings: Iterable[Finding],
    checks: Iterable[Check],
    catalog: Mapping[str, RuleMeta],
    tool_version: str,
    *,
    files_text: Mapping[str | PurePath, str] | None = None,
    information_uri: str = PROJECT_URL,
) -> str:
    """Render findings as a SARIF 2.1.0 log for GitHub code scanning and other SARIF viewers.

    Pass `files_text` (file -> text) so the partial fingerprints hash the offending
    line; without it they hash the message, which changes when a message changes.
    """
    log = build_sarif(
        findings, checks, catalog, tool_version, files_text=files_text, information_uri=information_uri
    )
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"
