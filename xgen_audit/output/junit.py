"""JUnit XML output: one test case per check, grouped in one test suite per file or stack.

The test case's classname is the stack name when the check covers a stack, and
the file otherwise. Its name is the rule id and the rule name. A case with findings gets a
`<failure>` listing them, an `unknown` or `not_applicable` verdict gets
`<skipped>` with the reason, and anything else passes. Findings that no check
covers, such as XG008 reports on suppression comments, get a case of their own.
The layout is the common one that GitLab, Jenkins and most CI servers read.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from xgen_audit.findings import Check, Finding, Status
from xgen_audit.output import findings_for_check, posix_path, sorted_checks, sorted_findings

# Characters XML 1.0 does not allow, even escaped.
_INVALID_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


@dataclass
class _Case:
    classname: str
    name: str
    findings: list[Finding] = field(default_factory=list)
    skipped_reason: str | None = None
    note: str | None = None


def _classname(stack: str | None, file: str) -> str:
    return stack if stack else posix_path(file)


def _case_for_check(check: Check, findings: list[Finding]) -> _Case:
    case = _Case(_classname(check.stack, check.file), f"{check.rule} {check.name}", findings)
    if findings:
        return case
    if check.status is Status.UNKNOWN:
        case.skipped_reason = f"unknown: {check.reason or 'the rule could not decide statically'}"
    elif check.status is Status.NOT_APPLICABLE:
        case.skipped_reason = f"not applicable: {check.reason or 'nothing in this file is subject to the rule'}"
    elif check.status is Status.FAIL:
        case.note = "The rule failed, but every finding was suppressed or is in the baseline."
    return case


def _collect_cases(findings: list[Finding], checks: list[Check]) -> list[_Case]:
    cases: list[_Case] = []
    covered: set[int] = set()
    for check in checks:
        matched = findings_for_check(check, findings)
        covered.update(id(finding) for finding in matched)
        cases.append(_case_for_check(check, matched))

    orphans: dict[tuple[str, str, str], list[Finding]] = defaultdict(list)
    for finding in findings:
        if id(finding) not in covered:
            key = (_classname(finding.stack, finding.file), finding.rule, finding.name)
            orphans[key].append(finding)
    for (classname, rule, name), group in sorted(orphans.items()):
        cases.append(_Case(classname, f"{rule} {name}", group))
    return sorted(cases, key=lambda case: (case.classname, case.name))


def _failure_text(findings: list[Finding]) -> str:
    lines = []
    for finding in findings:
        service = f" [service {finding.service}]" if finding.service else ""
        lines.append(
            f"{posix_path(finding.file)}:{finding.line}:{finding.column}: {finding.severity.value} "
            f"{finding.rule} {finding.message}{service}\n    Fix: {finding.fix}"
        )
    return "\n".join(lines)


def _case_element(case: _Case) -> ET.Element:
    element = ET.Element("testcase", {"classname": _clean(case.classname), "name": _clean(case.name), "time": "0"})
    if case.findings:
        worst = max(case.findings, key=lambda finding: finding.severity.rank)
        summary = case.findings[0].message if len(case.findings) == 1 else f"{len(case.findings)} findings"
        failure = ET.SubElement(element, "failure", {"message": _clean(summary), "type": worst.severity.value})
        failure.text = _clean(_failure_text(case.findings))
    elif case.skipped_reason is not None:
        ET.SubElement(element, "skipped", {"message": _clean(case.skipped_reason)})
    elif case.note is not None:
        ET.SubElement(element, "system-out").text = _clean(case.note)
    return element


def _counts(cases: list[_Case]) -> dict[str, str]:
    failures = sum(1 for case in cases if case.findings)
    skipped = sum(1 for case in cases if not case.findings and case.skipped_reason is not None)
    return {"tests": str(len(cases)), "failures": str(failures), "errors": "0", "skipped": str(skipped), "time": "0"}


def render_junit(findings: Iterable[Finding], checks: Iterable[Check]) -> str:
    """Render findings and checks as a JUnit XML document (UTF-8, with an XML declaration)."""
    cases = _collect_cases(sorted_findings(findings), sorted_checks(checks))
    suites: dict[str, list[_Case]] = defaultdict(list)
    for case in cases:
        suites[case.classname].append(case)

    root = ET.Element("testsuites", {"name": "xgen-audit", **_counts(cases)})
    for classname in sorted(suites):
        suite_cases = suites[classname]
        suite = ET.SubElement(root, "testsuite", {"name": _clean(classname), **_counts(suite_cases)})
        for case in suite_cases:
            suite.append(_case_element(case))

    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
