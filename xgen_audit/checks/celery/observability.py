"""Observability rules: whether task states and results can be read back."""

from __future__ import annotations

from collections.abc import Iterator

from xgen_audit.checks.celery.common import ReadApp, judge_apps, state, unknown_setting
from xgen_audit.engine import AuditContext, Checked, Outcome, Violation, rule


@rule("XG504")
def task_status_invisible(context: AuditContext) -> Iterator[Outcome]:
    # The code that reads results often runs in another service (an API), so beat-only apps count too.
    yield from judge_apps(context, _judge_result_backend, roles=None)


def _judge_result_backend(read: ReadApp) -> Iterator[Outcome]:
    analysis = read.analysis
    if not analysis.result_reads:
        yield Checked(read.service)
        return
    backend = analysis.get("result_backend")
    if not backend.known:
        yield unknown_setting(read, "result_backend")
        return
    if backend.value:
        yield Checked(read.service)
        return
    reads = sorted(analysis.result_reads, key=lambda use: use.loc)
    first = reads[0]
    others = len(reads) - 1
    more = f" and {others} more place{'s' if others != 1 else ''}" if others else ""
    yield Violation(
        f"the code reads a task's state or result (`{first.text}`{more}) but {state(analysis, 'result_backend')}, "
        "so no task state or result is stored and the read fails at run time",
        first.loc,
        read.service,
    )
