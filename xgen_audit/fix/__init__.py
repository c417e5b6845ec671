"""Automatic fixes (`check --fix`, `--unsafe-fixes`, `--diff`) and the production override (`init production`).

plan_fixes(findings, unsafe, files_text) -> list[FileEdit]
verify_edits(edits) -> list[FileEdit] (the checks apply_edits runs, without writing)
unified_diff(edits) -> str             (for --diff; writes nothing)
apply_edits(edits) -> FixReport        (atomic writes, rechecked with the rules)
"""

from xgen_audit.fix.model import AppliedFix, FileEdit, FileSkipped, FixReport, SkippedFix
from xgen_audit.fix.planner import apply_edits, fix_safety, plan_fixes, unified_diff, verify_edits

__all__ = [
    "AppliedFix",
    "FileEdit",
    "FileSkipped",
    "FixReport",
    "SkippedFix",
    "apply_edits",
    "fix_safety",
    "plan_fixes",
    "unified_diff",
    "verify_edits",
]
