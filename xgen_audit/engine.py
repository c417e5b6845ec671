"""Rule registry and runner.

A rule is a function registered under its id. It receives an AuditContext and
yields outcomes: a Violation (the rule fails at a location), Unknown (the rule
cannot decide statically, with the reason) or Checked (the rule looked at
something and found it fine). The runner turns outcomes into findings and one
check verdict per rule and file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Union

from xgen_audit.findings import Check, Finding, Severity, Status
from xgen_audit.parse.tree import Loc
from xgen_audit.rules_meta import RuleMeta, load_catalog

if TYPE_CHECKING:
    from xgen_audit.compose.model import ComposeProject
    from xgen_audit.compose.roles import ServiceRoles


@dataclass(frozen=True, slots=True)
class Violation:
    message: str
    loc: Loc
    service: str | None = None
    severity: Severity | None = None


@dataclass(frozen=True, slots=True)
class Unknown:
    reason: str
    service: str | None = None
    loc: Loc | None = None


@dataclass(frozen=True, slots=True)
class Checked:
    service: str | None = None


Outcome = Union[Violation, Unknown, Checked]


@dataclass
class AuditContext:
    """Everything a rule may read: the compose model, its environment, parse errors, Celery config."""

    compose: "ComposeProject"
    environment: str = "production"
    parse_errors: list[tuple[str, Loc]] = field(default_factory=list)
    # Required variables (`${X:?message}`) without a value: (message, location).
    missing_variables: list[tuple[str, Loc]] = field(default_factory=list)
    # The interpolation variables of the stack (its `.env`, and the process
    # environment when the user asks for it).
    variables: dict[str, str] = field(default_factory=dict)
    celery: object | None = None
    options: dict = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @cached_property
    def roles(self) -> "ServiceRoles":
        from xgen_audit.compose.roles import ServiceRoles

        return ServiceRoles(self.compose)


RuleFunc = Callable[[AuditContext], Iterable[Outcome]]

_REGISTRY: dict[str, RuleFunc] = {}


def rule(rule_id: str) -> Callable[[RuleFunc], RuleFunc]:
    """Register a rule function under its id; an id may be registered once."""

    def register(func: RuleFunc) -> RuleFunc:
        if rule_id in _REGISTRY:
            raise ValueError(f"rule {rule_id} is registered twice")
        _REGISTRY[rule_id] = func
        return func

    return register


def registry() -> dict[str, RuleFunc]:
    """Return every registered rule, importing the check modules on first use."""
    import xgen_audit.checks  # noqa: F401  (registers the rules)

    return dict(sorted(_REGISTRY.items()))


def make_finding(meta: RuleMeta, violation: Violation, stack: str | None = None) -> Finding:
    return Finding(
        rule=meta.id,
        name=meta.name,
        severity=violation.severity or meta.severity,
        message=violation.message,
        fix=meta.fix,
        file=violation.loc.file,
        line=violation.loc.line,
        column=violation.loc.column,
        service=violation.service,
        stack=stack,
    )


def run_rules(
    context: AuditContext,
    rule_ids: Iterable[str],
    check_file: str,
    stack: str | None = None,
) -> tuple[list[Finding], list[Check]]:
    """Run the selected rules on one context; return findings and one check per rule."""
    catalog = load_catalog()
    rules = registry()
    findings: list[Finding] = []
    checks: list[Check] = []
    for rule_id in rule_ids:
        meta = catalog[rule_id]
        outcomes = list(rules[rule_id](context))
        rule_findings = [
            make_finding(meta, outcome, stack) for outcome in outcomes if isinstance(outcome, Violation)
        ]
        findings.extend(rule_findings)
        checks.append(_verdict(meta, outcomes, check_file, stack))
    return findings, checks


def _verdict(meta: RuleMeta, outcomes: list[Outcome], check_file: str, stack: str | None) -> Check:
    unknowns = [outcome for outcome in outcomes if isinstance(outcome, Unknown)]
    reason = "; ".join(sorted({_unknown_text(item) for item in unknowns})) or None
    if any(isinstance(outcome, Violation) for outcome in outcomes):
        status = Status.FAIL
    elif unknowns:
        status = Status.UNKNOWN
    elif outcomes:
        status = Status.PASS
    else:
        status = Status.NOT_APPLICABLE
    return Check(
        rule=meta.id, name=meta.name, file=check_file, status=status, reason=reason, stack=stack
    )


def _unknown_text(item: Unknown) -> str:
    if item.service:
        return f"service {item.service!r}: {item.reason}"
    return item.reason


def iter_rule_ids(selected: Iterable[str] | None = None) -> Iterator[str]:
    known = load_catalog()
    for rule_id in selected if selected is not None else known:
        if rule_id in known:
            yield rule_id
