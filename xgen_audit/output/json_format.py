"""The JSON report: one document with findings, checks and a summary."""

from __future__ import annotations

import json
from collections import Counter

from typing import TYPE_CHECKING

from xgen_audit import __version__
from xgen_audit.findings import Status

if TYPE_CHECKING:
    from xgen_audit.audit import AuditResult

SCHEMA_VERSION = 1


def report_dict(result: "AuditResult", exit_code: int) -> dict:
    findings, checks = result.findings, result.checks
    severities = Counter(finding.severity.value for finding in findings)
    statuses = Counter(check.status.value for check in checks)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "xgen-audit", "version": __version__},
        "files": sorted(result.files),
        "stacks": [unit.as_dict() for unit in result.units],
        "findings": [finding.model_dump(mode="json") for finding in findings],
        "checks": [check.model_dump(mode="json") for check in checks],
        "summary": {
            "findings": len(findings),
            "by_severity": {name: severities.get(name, 0) for name in ("error", "warning", "info")},
            "checks": {status.value: statuses.get(status.value, 0) for status in Status},
            "exit_code": exit_code,
        },
    }


def render_json(result: "AuditResult", exit_code: int) -> str:
    return json.dumps(report_dict(result, exit_code), indent=2, sort_keys=False) + "\n"
