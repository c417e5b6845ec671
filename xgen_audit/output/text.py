"""Human-readable output: findings with their fix, a checklist per file, then counts."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from xgen_audit.findings import Check, Finding, Severity, Status

if TYPE_CHECKING:
    from xgen_audit.audit import AuditResult, UnitInfo

_SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_STATUS_LABEL = {
    Status.PASS: ("pass", "green"),
    Status.FAIL: ("fail", "bold red"),
    Status.UNKNOWN: ("unknown", "magenta"),
    Status.NOT_APPLICABLE: ("n/a", "dim"),
}


def render_text(console: Console, result: "AuditResult", quiet: bool = False) -> None:
    """Print findings, then (unless quiet) the checklist per stack or file and the counts."""
    if console.color_system is None:
        # Without colour, plain lines are streamed: building one rich object per line
        # costs seconds and hundreds of MiB on thousands of findings.
        write = console.file.write
        for line in text_lines(result, quiet):
            write(line.plain + "\n")
        return
    batch: list[Text] = []
    for line in text_lines(result, quiet):
        batch.append(line)
        if len(batch) == _PRINT_BATCH:
            console.print(Text("\n").join(batch), soft_wrap=True, highlight=False)
            batch = []
    if batch:
        console.print(Text("\n").join(batch), soft_wrap=True, highlight=False)


# Lines handed to rich at once: one print per line is slow, and one for all keeps every line in memory.
_PRINT_BATCH = 500


def text_lines(result: "AuditResult", quiet: bool = False) -> Iterator[Text]:
    """Yield the report's lines with their styles."""
    findings, checks = result.findings, result.checks
    for finding in findings:
        line = Text()
        line.append(f"{finding.file}:{finding.line}:{finding.column}: ", style="bold")
        line.append(finding.rule, style=_SEVERITY_STYLE[finding.severity])
        line.append(f" {finding.message}")
        if finding.stack:
            line.append(f" [stack {finding.stack}]", style="dim")
        yield line
        yield Text(f"  fix: {finding.fix}", style="dim")
    if quiet:
        return

    by_group: dict[tuple[str, str], list[Check]] = defaultdict(list)
    for check in checks:
        by_group[(check.stack or "", check.file)].append(check)
    units = {(unit.name or "", unit.files[0]): unit for unit in result.units if unit.files}
    for index, group in enumerate(sorted(by_group)):
        if findings or index:
            yield Text()
        yield _group_header(group, units.get(group))
        for check in by_group[group]:
            label, style = _STATUS_LABEL[check.status]
            line = Text("  ")
            line.append(f"{label:<8}", style=style)
            line.append(f"{check.rule} {check.name}")
            if check.reason and check.status in (Status.UNKNOWN, Status.NOT_APPLICABLE):
                line.append(f"  ({check.reason})", style="dim")
            yield line

    yield Text()
    stacks = sum(1 for stack, _file in by_group if stack)
    yield Text(summary_line(findings, checks, stacks, len(by_group) - stacks))


def _group_header(group: tuple[str, str], unit: "UnitInfo | None") -> Text:
    stack, file = group
    header = Text(f"stack {stack}" if stack else file, style="bold")
    if unit is None:
        return header
    details = [unit.environment]
    if stack:
        details.append("files: " + " + ".join(unit.files))
    if unit.profiles:
        details.append("profiles: " + ", ".join(unit.profiles))
    if unit.dropped_services:
        details.append("not deployed (inactive profiles): " + ", ".join(unit.dropped_services))
    header.append(f" ({'; '.join(details)})", style="dim")
    return header


def summary_line(findings: list[Finding], checks: list[Check], stacks: int, files: int) -> str:
    severities = Counter(finding.severity for finding in findings)
    statuses = Counter(check.status for check in checks)
    noun = "finding" if len(findings) == 1 else "findings"
    scope = [_count(stacks, "stack")] if stacks else []
    if files or not stacks:
        scope.append(_count(files, "file"))
    return (
        f"{len(findings)} {noun} ({_count(severities[Severity.ERROR], 'error')}, "
        f"{_count(severities[Severity.WARNING], 'warning')}, "
        f"{severities[Severity.INFO]} info) in {' and '.join(scope)}; checks: {statuses[Status.PASS]} passed, "
        f"{statuses[Status.FAIL]} failed, {statuses[Status.UNKNOWN]} unknown, "
        f"{statuses[Status.NOT_APPLICABLE]} not applicable"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
