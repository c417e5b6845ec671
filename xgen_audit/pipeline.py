"""One `check` run from resolved settings to the findings to report.

The steps, in order: plan the stacks and files (minus excluded paths) and run
the rules. Then apply severity overrides, per-file ignores and inline
suppressions (adding XG008 for bad ones), filter with the baseline, and
recompute each check's verdict from what is left. Nothing here prints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from xgen_audit.audit import AuditOptions, AuditResult, audit_paths
from xgen_audit.baseline import Baseline, BaselineEntry, filter_with_baseline
from xgen_audit.compose.stacks import Stack, stack_from_config
from xgen_audit.config import Settings
from xgen_audit.findings import Check, Finding, Severity, Status
from xgen_audit.rules_meta import load_catalog
from xgen_audit.selection import apply_per_file_ignores, apply_severity_overrides, path_matches, relative_posix
from xgen_audit.suppressions import apply_suppressions

logger = logging.getLogger(__name__)

SUPPRESSION_RULE = "XG008"
# Rules whose finding means a file could not be parsed at all.
UNPARSED_RULES = {"XG001", "XG004"}


@dataclass(slots=True)
class RunRequest:
    paths: list[Path]
    settings: Settings
    environment: str | None = None
    files: list[Path] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    env_files: list[Path] | None = None
    use_environment: bool = False
    stack_names: list[str] = field(default_factory=list)
    honour_suppressions: bool = True
    baseline: Baseline | None = None
    celery_app: str | None = None
    jobs: int = 1


@dataclass(slots=True)
class RunOutcome:
    result: AuditResult
    suppressed: list[Finding] = field(default_factory=list)
    ignored: list[Finding] = field(default_factory=list)
    baselined: list[Finding] = field(default_factory=list)
    stale_baseline: list[BaselineEntry] = field(default_factory=list)
    files_text: dict[str, str] = field(default_factory=dict)

    def exit_code(self, fail_on: Severity) -> int:
        return 1 if any(finding.severity.rank >= fail_on.rank for finding in self.result.findings) else 0


class UnknownStack(ValueError):
    """`--stack` names a stack that the configuration does not define."""


def configured_stacks(settings: Settings, names: list[str]) -> list[Stack]:
    """Turn the configuration's stacks into Stack objects; `names` picks some of them."""
    chosen = names or sorted(settings.stacks)
    missing = [name for name in chosen if name not in settings.stacks]
    if missing:
        known = ", ".join(sorted(settings.stacks)) or "none"
        raise UnknownStack(f"unknown stack {', '.join(missing)}; the configuration defines: {known}")
    base_dir = _shown(settings.project_root)
    stacks = []
    for name in chosen:
        stack = stack_from_config(name, settings.stacks[name], base_dir)
        missing_env_files = [path for path in stack.env_files if not Path(path).is_file()]
        if missing_env_files:
            raise UnknownStack(f"stack {name}: env file not found: {', '.join(missing_env_files)}")
        stacks.append(stack)
    return stacks


def _shown(path: Path) -> str:
    from xgen_audit.discovery import display_path

    return display_path(path)


def run(request: RunRequest) -> RunOutcome:
    settings = request.settings
    rule_ids = settings.rule_ids()
    environment = request.environment
    if environment is None and settings.source_of("env") != "default":
        environment = settings.env

    stacks: list[Stack] = []
    paths = request.paths
    if settings.stacks and not request.files and (request.stack_names or not paths):
        stacks = configured_stacks(settings, request.stack_names)
    elif request.stack_names:
        stacks = configured_stacks(settings, request.stack_names)
    if not paths and not request.files and not stacks:
        paths = [Path(".")]

    options = AuditOptions(
        environment=environment,
        rule_ids=rule_ids,
        max_bytes=settings.max_file_size,
        files=request.files,
        profiles=request.profiles,
        env_files=request.env_files,
        use_environment=request.use_environment,
        stacks=stacks,
        celery_app=request.celery_app or settings.celery_app,
        jobs=request.jobs,
        excluded=lambda path: _excluded(path, settings),
    )
    result = audit_paths(paths, options)
    outcome = RunOutcome(result=result)

    findings = apply_severity_overrides(result.findings, settings.severity)
    findings, outcome.ignored = apply_per_file_ignores(findings, settings.per_file_ignores, settings.project_root)
    outcome.files_text = _read_texts(result.files, findings)
    if request.honour_suppressions:
        # A file that did not parse ran no rule, so its suppressions cannot be judged.
        unparsed = {finding.file for finding in findings if finding.rule in UNPARSED_RULES}
        judged = {name: text for name, text in outcome.files_text.items() if name not in unparsed}
        suppression = apply_suppressions(findings, judged, list(load_catalog()), rule_ids)
        findings, outcome.suppressed = suppression.kept, suppression.suppressed
        if SUPPRESSION_RULE in rule_ids:
            findings = findings + list(suppression.meta_findings)
            result.checks.extend(_suppression_checks(result, list(suppression.meta_findings)))
    if request.baseline is not None:
        findings, outcome.baselined, outcome.stale_baseline = filter_with_baseline(
            findings, request.baseline, outcome.files_text, settings.project_root
        )

    result.findings = sorted(findings, key=Finding.sort_key)
    result.checks = _recount(result.checks, result.findings, outcome)
    return outcome


def _excluded(path: Path, settings: Settings) -> bool:
    if not settings.exclude:
        return False
    relative = relative_posix(str(path), settings.project_root)
    return any(path_matches(pattern, relative) for pattern in settings.exclude)


def _read_texts(files: list[str], findings: list[Finding]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for name in sorted({*files, *(finding.file for finding in findings)}):
        try:
            texts[name] = Path(name).read_bytes().decode("utf-8", errors="replace")
        except OSError as error:
            logger.debug("cannot read %s for suppressions: %s", name, error)
    return texts


def _check_key(rule: str, stack: str | None, file: str) -> tuple[str, str]:
    """Checks of a named stack are per stack; checks of a lone file are per file."""
    return (rule, f"stack:{stack}") if stack else (rule, f"file:{file}")


def _suppression_checks(result: AuditResult, findings: list[Finding]) -> list[Check]:
    """Return one XG008 verdict per stack or file: fail where a suppression comment in its files is faulty."""
    meta = load_catalog()[SUPPRESSION_RULE]
    failing = {finding.file for finding in findings if finding.rule == SUPPRESSION_RULE}
    checks = []
    for unit in result.units:
        if not unit.files:
            continue
        status = Status.FAIL if failing.intersection(unit.files) else Status.PASS
        checks.append(Check(rule=meta.id, name=meta.name, file=unit.files[0], status=status, stack=unit.name))
    return checks


def _recount(checks: list[Check], findings: list[Finding], outcome: RunOutcome) -> list[Check]:
    """Make each check's verdict match the findings left after suppressions and the baseline.

    A rule that failed only through findings a user silenced passes, with a reason that counts them.
    """
    remaining = {_check_key(finding.rule, finding.stack, finding.file) for finding in findings}
    silenced: dict[tuple[str, str], int] = {}
    for finding in [*outcome.suppressed, *outcome.ignored, *outcome.baselined]:
        key = _check_key(finding.rule, finding.stack, finding.file)
        silenced[key] = silenced.get(key, 0) + 1
    recounted = []
    for check in checks:
        key = _check_key(check.rule, check.stack, check.file)
        if check.status is Status.FAIL and key not in remaining and silenced.get(key):
            count = silenced[key]
            noun = "finding" if count == 1 else "findings"
            check = check.model_copy(
                update={"status": Status.PASS, "reason": f"{count} {noun} suppressed, ignored or in the baseline"}
            )
        recounted.append(check)
    return sorted(recounted, key=Check.sort_key)
