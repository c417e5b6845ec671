"""Startup rules: the worker's first connection to the broker."""

from __future__ import annotations

from collections.abc import Iterator

from xgen_audit.checks.celery.common import (
    ReadApp,
    judge_apps,
    label,
    origin,
    show,
    source_words,
    unknown_setting,
)
from xgen_audit.engine import AuditContext, Checked, Outcome, Violation, rule


@rule("XG201")
def broker_retry_on_startup(context: AuditContext) -> Iterator[Outcome]:
    yield from judge_apps(context, _judge_retry_on_startup)


def _judge_retry_on_startup(read: ReadApp) -> Iterator[Outcome]:
    analysis = read.analysis
    setting = analysis.get("broker_connection_retry_on_startup")
    name = label(analysis, "broker_connection_retry_on_startup")
    if not setting.known:
        yield unknown_setting(read, "broker_connection_retry_on_startup")
        return

    if setting.value is True or (type(setting.value) is int and setting.value != 0):
        yield Checked(read.service)
        return
    if isinstance(setting.value, str) and setting.value:
        # Celery tests the value for truth, so "false" read from the environment still retries.
        yield Violation(
            f"`{name}` is the string {show(setting.value)}{origin(setting)}, not a boolean, so the worker "
            "retries its first broker connection for any non-empty string, \"false\" included",
            setting.loc,
            read.service,
        )
        return

    if setting.value is not None:
        yield Violation(
            f"`{name}` is {show(setting.value)}{origin(setting)}, so the worker makes one attempt "
            "to connect to the broker at startup and exits when the broker is not reachable yet",
            setting.loc,
            read.service,
        )
        return

    # Unset: Celery 5.5 and later fall back to broker_connection_retry and warn only when it is off.
    retry = analysis.get("broker_connection_retry")
    retry_name = label(analysis, "broker_connection_retry")
    follows = f"`{name}` is not set, so whether the worker retries its first broker connection follows `{retry_name}`"
    if not retry.known:
        message = f"{follows}, whose value is not known ({retry.reason})"
    elif retry.value:
        details = [show(retry.value), "Celery's default" if retry.source == "default" else source_words(retry)]
        message = f"{follows} ({', '.join(item for item in details if item)})"
    else:
        message = (
            f"`{name}` is not set and `{retry_name}` is {show(retry.value)}{origin(retry)}, so the worker makes "
            "one attempt to connect to the broker at startup and Celery emits a CPendingDeprecationWarning"
        )
    yield Violation(message, setting.loc, read.service)
