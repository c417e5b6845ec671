"""Records of a fix run: the planned edits per file, the fixes made and the fixes skipped."""

from __future__ import annotations

from dataclasses import dataclass, field

from xgen_audit.findings import Finding


@dataclass(frozen=True, slots=True)
class AppliedFix:
    """A change made for one finding, with its safety as the rule's metadata gives it."""

    finding: Finding
    safety: str  # "safe" or "unsafe"
    description: str


@dataclass(frozen=True, slots=True)
class SkippedFix:
    """A finding whose fix was not made, and why."""

    finding: Finding
    reason: str


@dataclass(slots=True)
class FileEdit:
    """The planned change to one file.

    `original` and `new` are the full texts, with the file's own line endings.
    `problem` is set when the whole file is left alone (it cannot be parsed, the
    edit would change lines it should not), and `new` then equals `original`.
    """

    path: str
    original: str
    new: str
    fixes: list[AppliedFix] = field(default_factory=list)
    skipped: list[SkippedFix] = field(default_factory=list)
    problem: str | None = None

    @property
    def changed(self) -> bool:
        return self.new != self.original

    @property
    def findings(self) -> list[Finding]:
        return [fix.finding for fix in self.fixes]


@dataclass(frozen=True, slots=True)
class FileSkipped:
    """A file that apply_edits did not write."""

    path: str
    reason: str


@dataclass(slots=True)
class FixReport:
    """The result of apply_edits: the files written and the files left untouched."""

    written: list[str] = field(default_factory=list)
    skipped: list[FileSkipped] = field(default_factory=list)
    fixed: list[AppliedFix] = field(default_factory=list)
    not_fixed: list[SkippedFix] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "written": list(self.written),
            "skipped": [{"path": item.path, "reason": item.reason} for item in self.skipped],
            "fixed": [_fix_dict(fix.finding) | {"safety": fix.safety, "description": fix.description} for fix in self.fixed],
            "not_fixed": [_fix_dict(item.finding) | {"reason": item.reason} for item in self.not_fixed],
        }


def _fix_dict(finding: Finding) -> dict:
    return {"rule": finding.rule, "file": finding.file, "line": finding.line, "service": finding.service}
