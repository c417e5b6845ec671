"""Run an audit: read each compose file, build its model, run the rules, collect results.

This is the library entry point; it returns results and never prints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from xgen_audit.compose.build import build_project
from xgen_audit.compose.environment import load_container_env
from xgen_audit.compose.interpolate import interpolate_tree
from xgen_audit.compose.model import ComposeProject
from xgen_audit.discovery import display_path, environment_from_name
from xgen_audit.engine import AuditContext, iter_rule_ids, registry, run_rules
from xgen_audit.findings import Check, Finding, Status
from xgen_audit.parse.tree import Loc
from xgen_audit.parse.yaml_reader import DEFAULT_MAX_BYTES, YamlReadError, read_yaml_file
from xgen_audit.rules_meta import Area, load_catalog

logger = logging.getLogger(__name__)

PARSE_RULE = "XG001"


@dataclass(slots=True)
class AuditOptions:
    environment: str | None = None
    rule_ids: list[str] | None = None
    max_bytes: int = DEFAULT_MAX_BYTES


@dataclass(slots=True)
class AuditResult:
    findings: list[Finding] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def sort(self) -> None:
        self.findings.sort(key=Finding.sort_key)
        self.checks.sort(key=Check.sort_key)


def compose_rule_ids(selected: list[str] | None) -> list[str]:
    catalog = load_catalog()
    registered = registry()
    return [
        rule_id
        for rule_id in iter_rule_ids(selected)
        if catalog[rule_id].area in (Area.COMPOSE, Area.META) and rule_id in registered
    ]


def audit_files(paths: list[Path], options: AuditOptions) -> AuditResult:
    result = AuditResult()
    for path in paths:
        findings, checks = audit_file(path, options)
        result.files.append(display_path(path))
        result.findings.extend(findings)
        result.checks.extend(checks)
    result.sort()
    return result


def audit_file(path: Path, options: AuditOptions) -> tuple[list[Finding], list[Check]]:
    """Check one compose file on its own."""
    shown = display_path(path)
    environment = options.environment or environment_from_name(path)
    rule_ids = compose_rule_ids(options.rule_ids)
    project = ComposeProject(files=[shown], project_dir=path.parent, root_loc=Loc(shown, 1, 1))

    try:
        data = path.read_bytes()
        parsed = read_yaml_file(data, shown, options.max_bytes)
    except OSError as error:
        return _unparsable(project, environment, rule_ids, f"cannot read the file: {error.strerror or error}", Loc(shown, 1, 1))
    except YamlReadError as error:
        return _unparsable(project, environment, rule_ids, error.message, Loc(shown, error.line, error.column))

    root, _problems = interpolate_tree(parsed.root, {})
    project = build_project(root, [shown], path.parent, Loc(shown, 1, 1))
    load_container_env(project)
    context = AuditContext(compose=project, environment=environment)
    return run_rules(context, rule_ids, shown)


def _unparsable(project, environment, rule_ids, message, loc) -> tuple[list[Finding], list[Check]]:
    context = AuditContext(compose=project, environment=environment, parse_errors=[(message, loc)])
    findings, checks = run_rules(context, [rule for rule in rule_ids if rule == PARSE_RULE], loc.file)
    catalog = load_catalog()
    for rule_id in rule_ids:
        if rule_id != PARSE_RULE:
            checks.append(
                Check(
                    rule=rule_id,
                    name=catalog[rule_id].name,
                    file=loc.file,
                    status=Status.UNKNOWN,
                    reason="the file could not be parsed (see XG001)",
                )
            )
    return findings, checks
