"""GitHub Actions workflow commands: one annotation per finding.

`::error file=F,line=L,col=C,title=T::message` lines, which the Actions runner
turns into annotations on the pull request. Severities map to the commands
error, warning and notice.
"""

from __future__ import annotations

from collections.abc import Iterable

from xgen_audit.findings import Finding, Severity
from xgen_audit.output import posix_path, sorted_findings

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """Escape a command's message: `%`, CR and LF, as the Actions runner decodes them."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value: the message escapes plus `:` and `,`, which separate properties."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_annotation(finding: Finding) -> str:
    properties = [f"file={escape_property(posix_path(finding.file))}"]
    if finding.line >= 1:
        properties.append(f"line={finding.line}")
        if finding.column >= 1:
            properties.append(f"col={finding.column}")
    properties.append(f"title={escape_property(f'{finding.rule} {finding.name}')}")
    message = f"{finding.message}\nFix: {finding.fix}"
    return f"::{COMMANDS[finding.severity]} {','.join(properties)}::{escape_data(message)}"


def render_github(findings: Iterable[Finding]) -> str:
    """Render one workflow command per finding, sorted; empty when there are no findings."""
    return "".join(format_annotation(finding) + "\n" for finding in sorted_findings(findings))
