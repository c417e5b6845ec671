"""Rules about the file itself: YAML syntax, compose structure, port quoting."""

from __future__ import annotations

import re
from collections.abc import Iterator

from xgen_audit.engine import AuditContext, Checked, Outcome, Violation, rule


@rule("XG001")
def yaml_syntax(context: AuditContext) -> Iterator[Outcome]:
    for message, loc in context.parse_errors:
        yield Violation(message, loc)
    yield Checked()


@rule("XG002")
def compose_structure(context: AuditContext) -> Iterator[Outcome]:
    for problem in context.compose.problems:
        yield Violation(problem.message, problem.loc, problem.service)
    yield Checked()


# Scalars a YAML 1.1 reader takes for a base-60 integer or float: `22:22`, `1:30:00`.
# Each group after the first is 0-59, so `6379:6379` and `8080:80` are not affected.
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")


@rule("XG003")
def unquoted_port_mapping(context: AuditContext) -> Iterator[Outcome]:
    for name, service in sorted(context.compose.services.items()):
        for port in service.plain_ports:
            if _SEXAGESIMAL.match(port.raw):
                yield Violation(
                    f"port `{port.raw}` of service `{name}` is unquoted; a YAML 1.1 reader takes it "
                    "for a base-60 number",
                    port.loc,
                    name,
                )
        if service.ports or service.plain_ports:
            yield Checked(name)


@rule("XG007")
def missing_variable(context: AuditContext) -> Iterator[Outcome]:
    for message, loc in context.missing_variables:
        yield Violation(message, loc)
    yield Checked()
