"""Rules on the configuration files themselves: Python syntax, unknown and mixed setting names."""

from __future__ import annotations

from collections.abc import Iterator

from xgen_audit.checks.celery.common import celery_apps, deduplicated, missing_app_loc, missing_app_reason, service_of
from xgen_audit.engine import AuditContext, Checked, Outcome, Unknown, Violation, rule


@rule("XG004")
def python_syntax(context: AuditContext) -> Iterator[Outcome]:
    yield from deduplicated(_syntax_outcomes(context))


def _syntax_outcomes(context: AuditContext) -> Iterator[Outcome]:
    for app in celery_apps(context):
        service = service_of(app)
        analysis = app.analysis
        if analysis is None:
            where = app.processes[0].invocation.loc if app.processes else None
            yield Unknown(app.reason or "the Celery app could not be read", service, where)
            continue
        errors = [problem for problem in analysis.problems if problem.rule == "XG004"]
        for problem in errors:
            yield Violation(problem.message, problem.loc, service)
        if errors:
            continue
        if analysis.app is None:
            # The app was not found for another reason, so its configuration files are not known.
            yield Unknown(missing_app_reason(analysis), service, missing_app_loc(analysis))
        else:
            yield Checked(service)


@rule("XG005")
def unknown_celery_setting(context: AuditContext) -> Iterator[Outcome]:
    yield from deduplicated(_name_outcomes(context, "XG005"))


@rule("XG006")
def mixed_setting_names(context: AuditContext) -> Iterator[Outcome]:
    yield from deduplicated(_name_outcomes(context, "XG006"))


def _name_outcomes(context: AuditContext, rule_id: str) -> Iterator[Outcome]:
    for app in celery_apps(context):
        service = service_of(app)
        analysis = app.analysis
        if analysis is None:
            where = app.processes[0].invocation.loc if app.processes else None
            yield Unknown(app.reason or "the Celery app could not be read", service, where)
            continue
        if analysis.app is None:
            yield Unknown(missing_app_reason(analysis), service, missing_app_loc(analysis))
            continue
        problems = [problem for problem in analysis.problems if problem.rule == rule_id]
        for problem in problems:
            yield Violation(_with_suggestion(problem.message, problem.suggestion, rule_id), problem.loc, service)
        if not problems:
            yield Checked(service)


def _with_suggestion(message: str, suggestion: str | None, rule_id: str) -> str:
    if not suggestion:
        return message
    if rule_id == "XG005":
        return f"{message} (closest setting: `{suggestion}`)"
    return f"{message} (in that style: `{suggestion}`)"
