"""Human-readable output: findings with their fix, a checklist per file, then counts."""

from __future__ import annotations

from collections import Counter, defaultdict

from rich.console import Console
from rich.text import Text

from xgen_audit.findings import Check, Finding, Severity, Status
from xgen_audit.rules_meta import RuleMeta

_SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_STATUS_LABEL = {
    Status.PASS: ("pass", "green"),
    Status.FAIL: ("fail", "bold red"),
    Status.UNKNOWN: ("unknown", "magenta"),
    Status.NOT_APPLICABLE: ("n/a", "dim"),
}


def render_text(
    console: Console,
    findings: list[Finding],
    checks: list[Check],
    catalog: dict[str, RuleMeta],
    environments: dict[str, str],
    quiet: bool = False,
) -> None:
    """Print findings, then (unless quiet) the checklist per file and the counts."""
    for finding in findings:
        line = Text()
        line.append(f"{finding.file}:{finding.line}:{finding.column}: ", style="bold")
        line.append(finding.rule, style=_SEVERITY_STYLE[finding.severity])
        line.append(f" {finding.message}")
        console.print(line, soft_wrap=True, highlight=False)
        console.print(Text(f"  fix: {finding.fix}", style="dim"), soft_wrap=True, highlight=False)
    if quiet:
        return

    by_file: dict[str, list[Check]] = defaultdict(list)
    for check in checks:
        by_file[_group_key(check)].append(check)
    for group in sorted(by_file):
        if findings or group != sorted(by_file)[0]:
            console.print()
        header = Text(group, style="bold")
        environment = environments.get(group)
        if environment:
            header.append(f" ({environment})", style="dim")
        console.print(header, soft_wrap=True, highlight=False)
        for check in by_file[group]:
            label, style = _STATUS_LABEL[check.status]
            line = Text("  ")
            line.append(f"{label:<8}", style=style)
            line.append(f"{check.rule} {check.name}")
            if check.reason and check.status in (Status.UNKNOWN, Status.NOT_APPLICABLE):
                line.append(f"  ({check.reason})", style="dim")
            console.print(line, soft_wrap=True, highlight=False)

    console.print()
    console.print(summary_line(findings, checks, len(by_file)), soft_wrap=True, highlight=False)


def _group_key(check: Check) -> str:
    return f"stack {check.stack}" if check.stack else check.file


def summary_line(findings: list[Finding], checks: list[Check], groups: int) -> str:
    severities = Counter(finding.severity for finding in findings)
    statuses = Counter(check.status for check in checks)
    noun = "finding" if len(findings) == 1 else "findings"
    files = "file" if groups == 1 else "files"
    return (
        f"{len(findings)} {noun} ({severities[Severity.ERROR]} errors, {severities[Severity.WARNING]} warnings, "
        f"{severities[Severity.INFO]} info) in {groups} {files}; checks: {statuses[Status.PASS]} passed, "
        f"{statuses[Status.FAIL]} failed, {statuses[Status.UNKNOWN]} unknown, "
        f"{statuses[Status.NOT_APPLICABLE]} not applicable"
    )
