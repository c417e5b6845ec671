"""Per-rule fixtures: each compose file under fixtures/rules/<ID>/ states its expected result.

Layout: `fixtures/rules/<ID>/fail/*.yml`, `pass/*.yml` and `unknown/*.yml`. The folder
sets the expected check status of rule <ID> (`fail`, `pass`, `unknown`). In `pass/`, a
first-line comment `# status: not_applicable` means the rule must not apply at all.

Expected findings are written on the offending line as a trailing comment:

    - "6379:6379"  # expect: XG110 error col=9

Several findings on one line are separated by `;`. Without `col=`, the expected column
is the line's first non-blank character. Markers are counted, so a line that must give
two findings of the same rule and severity carries the marker twice. A finding that lands
in another file, such as a start script in a build context, is marked in that file, and
the compose file names it in its leading comments with `# also-expect-in: RELATIVE/PATH`.

Only findings of the rule under test are compared; other rules may report what they like.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from xgen_audit.audit import AuditOptions, audit_file
from xgen_audit.engine import registry

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rules"
STATUS_BY_FOLDER = {"fail": "fail", "pass": "pass", "unknown": "unknown"}

_MARKER_RE = re.compile(r"#\s*expect:\s*(?P<body>.+?)\s*$")
_EXPECTATION_RE = re.compile(r"^(?P<rule>XG\d{3})\s+(?P<severity>error|warning|info)(?:\s+col=(?P<column>\d+))?$")
_STATUS_RE = re.compile(r"^#\s*status:\s*(?P<status>\w+)\s*$")
_ALSO_RE = re.compile(r"^#\s*also-expect-in:\s*(?P<path>\S+)\s*$")

# Fixtures whose marked result is correct but which xgen-audit does not produce yet.
# Keys are paths relative to FIXTURES.
KNOWN_BUGS: dict[str, str] = {}

Expected = tuple[str, str, int, int, str]


@dataclass(frozen=True)
class Case:
    path: Path
    rule: str
    folder: str

    @property
    def name(self) -> str:
        return self.path.relative_to(FIXTURES).as_posix()


def collect_cases() -> list[Case]:
    cases = []
    for path in sorted(FIXTURES.glob("*/*/*.yml")):
        folder = path.parent.name
        rule = path.parent.parent.name
        cases.append(Case(path, rule, folder))
    return cases


def first_column(line: str) -> int:
    """Return the 1-based column of the first character that is not a space or tab."""
    stripped = line.lstrip(" \t")
    return len(line) - len(stripped) + 1


def parse_markers(path: Path) -> list[Expected]:
    """Return (file, rule, line, column, severity) for every `# expect:` marker in a file."""
    expected: list[Expected] = []
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        match = _MARKER_RE.search(line)
        if match is None:
            continue
        for part in match.group("body").split(";"):
            item = _EXPECTATION_RE.match(part.strip())
            if item is None:
                raise ValueError(f"{path}:{number}: invalid marker {part.strip()!r}, expected the form `XG110 error col=9`")
            column = int(item.group("column")) if item.group("column") else first_column(line)
            expected.append((str(path.resolve()), item.group("rule"), number, column, item.group("severity")))
    return expected


def leading_comments(path: Path) -> list[str]:
    """Return the comment lines before the first line that is neither blank nor a comment."""
    lines = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        if stripped:
            lines.append(stripped)
    return lines


def declared_status(case: Case) -> str | None:
    comments = leading_comments(case.path)
    if not comments:
        return None
    match = _STATUS_RE.match(comments[0])
    return match.group("status") if match else None


def expected_status(case: Case) -> str:
    declared = declared_status(case)
    if case.folder == "pass" and declared == "not_applicable":
        return "not_applicable"
    return STATUS_BY_FOLDER[case.folder]


def expected_findings(case: Case) -> Counter:
    expected = parse_markers(case.path)
    for comment in leading_comments(case.path):
        match = _ALSO_RE.match(comment)
        if match is not None:
            expected.extend(parse_markers(case.path.parent / match.group("path")))
    return Counter(item for item in expected if item[1] == case.rule)


def actual_findings(case: Case, findings) -> Counter:
    return Counter(
        (str(Path(finding.file).resolve()), finding.rule, finding.line, finding.column, finding.severity.value)
        for finding in findings
        if finding.rule == case.rule
    )


def describe(items: Counter) -> str:
    if not items:
        return "  (none)"
    lines = []
    for (file, rule, line, column, severity), count in sorted(items.items()):
        location = Path(file).relative_to(FIXTURES) if Path(file).is_relative_to(FIXTURES) else Path(file)
        times = f" x{count}" if count > 1 else ""
        lines.append(f"  {rule} {severity} at {location}:{line}:{column}{times}")
    return "\n".join(lines)


def case_params() -> list:
    params = []
    for case in collect_cases():
        marks = []
        if case.name in KNOWN_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[case.name]))
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


CASES = case_params()


def test_fixture_folder_present():
    assert FIXTURES.is_dir(), f"fixture folder {FIXTURES} is missing"
    assert CASES, f"no fixture files match {FIXTURES}/<ID>/<fail|pass|unknown>/*.yml"


@pytest.mark.parametrize("case", CASES)
def test_rule_fixture(case: Case):
    assert case.folder in STATUS_BY_FOLDER, (
        f"{case.name}: folder `{case.folder}` is not one of {sorted(STATUS_BY_FOLDER)}"
    )
    declared = declared_status(case)
    if case.folder == "unknown":
        assert declared == "unknown", f"{case.name}: a file in unknown/ must start with `# status: unknown`"
    if declared is not None:
        allowed = {"fail": {"fail"}, "pass": {"pass", "not_applicable"}, "unknown": {"unknown"}}[case.folder]
        assert declared in allowed, f"{case.name}: `# status: {declared}` does not fit folder {case.folder}/"

    expected = expected_findings(case)
    if case.folder == "fail":
        assert expected, f"{case.name}: a fail fixture needs at least one `# expect: {case.rule} ...` marker"

    findings, checks = audit_file(case.path, AuditOptions())
    actual = actual_findings(case, findings)
    verdicts = [check for check in checks if check.rule == case.rule]

    assert len(verdicts) == 1, f"{case.name}: expected one check of {case.rule}, got {len(verdicts)}"
    verdict = verdicts[0]
    assert verdict.status.value == expected_status(case), (
        f"{case.name}: {case.rule} status is `{verdict.status.value}` (reason: {verdict.reason}), "
        f"expected `{expected_status(case)}`"
    )
    assert actual == expected, (
        f"{case.name}: findings of {case.rule} differ from the markers\n"
        f"missing (marked, not reported):\n{describe(expected - actual)}\n"
        f"unexpected (reported, not marked):\n{describe(actual - expected)}"
    )


def fixture_folders(rule: str) -> dict[str, int]:
    """Count the fixture files of one rule per outcome folder."""
    return {
        folder: len(list((FIXTURES / rule / folder).glob("*.yml")))
        for folder in STATUS_BY_FOLDER
    }


def _compose_rules() -> list[str]:
    """Registered rules that read compose files; Celery rules have project fixtures elsewhere."""
    from xgen_audit.rules_meta import Area, load_catalog

    catalog = load_catalog()
    return sorted(rule for rule in registry() if rule in catalog and catalog[rule].area is not Area.CELERY)


@pytest.mark.parametrize("rule", _compose_rules())
def test_registered_rule_has_fixtures(rule: str):
    counts = fixture_folders(rule)
    assert counts["fail"] > 0, f"rule {rule} has no fixture in {FIXTURES / rule / 'fail'}"
    assert counts["pass"] > 0, f"rule {rule} has no fixture in {FIXTURES / rule / 'pass'}"


def test_fixture_folders_name_registered_rules():
    registered = set(registry())
    folders = sorted(path.name for path in FIXTURES.iterdir() if path.is_dir())
    unknown = [name for name in folders if name not in registered]
    assert not unknown, f"fixture folders name rules that are not registered: {unknown}"


def test_fixture_outcome_folders_known():
    stray = sorted(
        path.relative_to(FIXTURES).as_posix()
        for path in FIXTURES.glob("*/*")
        if path.is_dir() and path.name not in STATUS_BY_FOLDER
    )
    assert not stray, f"fixture folders other than fail/, pass/ and unknown/: {stray}"
