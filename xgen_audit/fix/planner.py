"""Plan fixes for findings, show them as a diff, and write them safely.

plan_fixes groups findings by file and makes every fix of a file on one
round-trip document. A file's edit is kept only when the new text parses with
xgen-audit's reader and every changed line lies in or next to a region a fix
had to change. apply_edits then writes each file through a temporary file in
the same folder, runs the fixed rules on that temporary file, and replaces the
original only when the findings are gone and nothing new broke.
"""

from __future__ import annotations

import difflib
import logging
import os
import stat
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from xgen_audit.audit import AuditOptions, audit_file
from xgen_audit.findings import Finding
from xgen_audit.fix.compose_fixes import FIXERS, FileContext
from xgen_audit.fix.model import AppliedFix, FileEdit, FileSkipped, FixReport, SkippedFix
from xgen_audit.fix.python_fixes import PythonFixError, set_retry_on_startup
from xgen_audit.fix.yamldoc import EditError, dump_document, lines_outside, load_document
from xgen_audit.parse.yaml_reader import YamlReadError, decode_bytes, parse_yaml_text
from xgen_audit.rules_meta import load_catalog

logger = logging.getLogger(__name__)

RETRY_RULE = "XG201"
# Safety of rules whose metadata file may not exist yet.
_DEFAULT_SAFETY = {RETRY_RULE: "safe"}
# Rules that must not appear after a fix when they did not before: the file still parses and loads.
_STRUCTURE_RULES = ("XG001", "XG002")


def fix_safety(rule: str) -> str:
    """Return "safe", "unsafe" or "none" for a rule, from its metadata."""
    meta = load_catalog().get(rule)
    if meta is not None:
        return getattr(meta.fixable, "value", meta.fixable) or "none"
    return _DEFAULT_SAFETY.get(rule, "none")


def fixable_rules() -> set[str]:
    return {*FIXERS, RETRY_RULE}


def plan_fixes(
    findings: Iterable[Finding], unsafe: bool = False, files_text: Mapping[str, str] | None = None
) -> list[FileEdit]:
    """Plan the fixes for `findings`; unsafe fixes are made only when `unsafe` is True.

    `files_text` gives the text each finding was computed from (the pipeline's
    `files_text`); a file missing there is read from disk. Findings without an
    automatic fix are left out; fixable ones that are not made are listed in
    the FileEdit's `skipped`. Nothing is written.
    """
    by_file: dict[str, list[Finding]] = {}
    for finding in sorted(set(findings), key=Finding.sort_key):
        safety = fix_safety(finding.rule)
        if safety not in ("safe", "unsafe") or finding.rule not in fixable_rules():
            continue
        by_file.setdefault(finding.file, []).append(finding)

    edits = []
    for path, file_findings in sorted(by_file.items()):
        edits.append(_plan_file(path, file_findings, unsafe, files_text))
    return edits


def _plan_file(path: str, findings: list[Finding], unsafe: bool, files_text: Mapping[str, str] | None) -> FileEdit:
    try:
        original = files_text[path] if files_text is not None and path in files_text else _read_text(path)
    except (OSError, UnicodeDecodeError, YamlReadError) as error:
        skipped = [SkippedFix(finding, f"cannot read {path}: {error}") for finding in findings]
        return FileEdit(path, "", "", skipped=skipped, problem=f"cannot read the file: {error}")
    edit = FileEdit(path, original, original)

    wanted = []
    for finding in findings:
        safety = fix_safety(finding.rule)
        if safety == "unsafe" and not unsafe:
            edit.skipped.append(SkippedFix(finding, "the fix is unsafe; run with --unsafe-fixes to apply it"))
        else:
            wanted.append(finding)
    if not wanted:
        return edit

    if path.endswith(".py"):
        return _plan_python(edit, wanted)
    return _plan_compose(edit, wanted)


def _read_text(path: str) -> str:
    data = Path(path).read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnicodeDecodeError("utf-8", data[:2], 0, 2, "only UTF-8 files are fixed")
    text = decode_bytes(data)
    # Keep a UTF-8 byte order mark, so that the file is written back with it.
    return "\ufeff" + text if data.startswith(b"\xef\xbb\xbf") and not text.startswith("\ufeff") else text


def _give_up(edit: FileEdit, reason: str) -> FileEdit:
    edit.skipped.extend(SkippedFix(fix.finding, reason) for fix in edit.fixes)
    edit.fixes = []
    edit.new = edit.original
    edit.problem = reason
    return edit


def _plan_compose(edit: FileEdit, findings: list[Finding]) -> FileEdit:
    try:
        document = load_document(edit.original)
    except EditError as error:
        edit.skipped.extend(SkippedFix(finding, str(error)) for finding in findings)
        edit.problem = str(error)
        return edit
    context = FileContext(edit.path, document)
    regions = []
    for finding in findings:
        try:
            result = FIXERS[finding.rule](context, finding)
        except EditError as error:
            edit.skipped.append(SkippedFix(finding, str(error)))
            continue
        regions.extend(result.regions)
        edit.fixes.append(AppliedFix(finding, fix_safety(finding.rule), result.description))
    if not edit.fixes:
        return edit

    new = dump_document(document)
    outside = lines_outside(edit.original, new, regions)
    if outside:
        shown = ", ".join(str(line) for line in outside[:5])
        return _give_up(
            edit,
            f"rewriting the file would also change line(s) {shown}, which no fix needs "
            "(mixed indentation or spacing that ruamel.yaml normalises); make the change by hand",
        )
    try:
        parse_yaml_text(new.lstrip("\ufeff"), edit.path)
    except YamlReadError as error:
        return _give_up(edit, f"the fixed file would not parse (line {error.line}: {error.message})")
    edit.new = new
    return edit


def _plan_python(edit: FileEdit, findings: list[Finding]) -> FileEdit:
    text = edit.original
    for finding in findings:
        try:
            result = set_retry_on_startup(text, finding.line)
        except PythonFixError as error:
            edit.skipped.append(SkippedFix(finding, str(error)))
            continue
        text = result.text
        edit.fixes.append(AppliedFix(finding, fix_safety(finding.rule), result.description))
    edit.new = text
    return edit


def verify_edits(edits: Iterable[FileEdit]) -> list[FileEdit]:
    """Run the checks `apply_edits` runs before writing, without writing anything.

    An edit that would be refused keeps its original text and gets the reason as
    its `problem`, so `--diff` shows only what `--fix` would write.
    """
    verified = []
    for edit in edits:
        if edit.changed:
            reason = _try_fixed_copy(edit, replace_original=False)
            if reason is not None:
                edit = _give_up(edit, reason)
        verified.append(edit)
    return verified


def unified_diff(edits: Iterable[FileEdit]) -> str:
    """Return the planned changes as one unified diff (`a/` and `b/` paths, as git shows them)."""
    chunks = []
    for edit in edits:
        if not edit.changed:
            continue
        before = edit.original.lstrip("\ufeff").replace("\r\n", "\n").splitlines(keepends=True)
        after = edit.new.lstrip("\ufeff").replace("\r\n", "\n").splitlines(keepends=True)
        for lines in (before, after):
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n\\ No newline at end of file\n"
        chunks.append("".join(difflib.unified_diff(before, after, f"a/{edit.path}", f"b/{edit.path}")))
    return "".join(chunks)


# ---------------------------------------------------------------------------
# Writing


def apply_edits(edits: Iterable[FileEdit]) -> FixReport:
    """Write every changed file atomically; leave a file untouched when any check fails.

    Before a compose file is replaced, the fixed rules run on the new text in a
    temporary file beside it: the findings the edit resolves must be gone, and
    no new parse or structure error may appear.
    """
    report = FixReport()
    for edit in edits:
        report.not_fixed.extend(edit.skipped)
        if not edit.changed:
            if edit.problem:
                report.skipped.append(FileSkipped(edit.path, edit.problem))
            continue
        reason = _write(edit)
        if reason is None:
            report.written.append(edit.path)
            report.fixed.extend(edit.fixes)
        else:
            report.skipped.append(FileSkipped(edit.path, reason))
            report.not_fixed.extend(SkippedFix(fix.finding, reason) for fix in edit.fixes)
    return report


def _write(edit: FileEdit) -> str | None:
    """Write one file; return why it was left untouched, or None when it was written."""
    return _try_fixed_copy(edit, replace_original=True)


def _try_fixed_copy(edit: FileEdit, replace_original: bool) -> str | None:
    """Write the fixed text beside the file and check it; move it over the file when asked.

    Returns why the file is (or would be) left untouched, or None.
    """
    target = Path(os.path.realpath(edit.path))
    try:
        current = _read_text(edit.path)
        mode = stat.S_IMODE(target.stat().st_mode)
    except (OSError, UnicodeDecodeError, YamlReadError) as error:
        return f"cannot read the file again: {error}"
    if current != edit.original:
        return "the file changed since it was checked; run the command again"
    if not os.access(target, os.W_OK):
        return "the file is read-only; make it writable, or apply the change shown by --diff by hand"

    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".xgen-audit-fix", dir=target.parent)
    except OSError as error:
        return f"cannot create a temporary file in {target.parent}: {error}"
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(edit.new)
        os.chmod(temporary, mode)
        reason = _recheck(edit, Path(temporary))
        if reason is not None or not replace_original:
            return reason
        os.replace(temporary, target)
        return None
    except OSError as error:
        return f"cannot write the file: {error}"
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _recheck(edit: FileEdit, fixed_copy: Path) -> str | None:
    """Run the fixed rules on the original and on the fixed copy; return what is wrong, or None."""
    if edit.path.endswith(".py"):
        # NOTE: the Celery rules are not re-run here; the edit is only checked to be valid Python.
        try:
            compile(edit.new, edit.path, "exec")
        except SyntaxError as error:
            return f"the fixed file is not valid Python (line {error.lineno}): {error.msg}"
        return None

    rules = sorted({fix.finding.rule for fix in edit.fixes} | set(_STRUCTURE_RULES))
    options = AuditOptions(rule_ids=rules)
    before, _checks = audit_file(Path(edit.path), options)
    after, _checks = audit_file(fixed_copy, options)
    count_before = Counter(_identity(finding) for finding in before)
    count_after = Counter(_identity(finding) for finding in after)

    for rule in _STRUCTURE_RULES:
        new_errors = [finding for finding in after if finding.rule == rule and count_before[_identity(finding)] == 0]
        if new_errors:
            return f"the fixed file fails {rule}: {new_errors[0].message}; it was left untouched"

    # Per rule and service: the fixed findings must be gone, and no other finding may take their place.
    groups_before = Counter((rule, service) for rule, service, _message in count_before.elements())
    groups_after = Counter((rule, service) for rule, service, _message in count_after.elements())
    resolved = Counter(_identity(fix.finding) for fix in edit.fixes)
    expected = dict(groups_before)
    for key, number in resolved.items():
        group = key[:2]
        expected.setdefault(group, 0)
        # A finding that only shows in its stack cannot be counted on the file alone.
        expected[group] -= min(number, count_before[key])
    for fix in edit.fixes:
        group = (fix.finding.rule, fix.finding.service)
        if groups_after[group] > expected[group]:
            return (
                f"the fix did not remove {fix.finding.rule} for service `{fix.finding.service}` "
                f"({fix.finding.message}); the file was left untouched"
            )
    return None


def _identity(finding: Finding) -> tuple[str, str | None, str]:
    return (finding.rule, finding.service, finding.message)
