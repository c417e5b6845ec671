"""The rule catalogue is the single source of rule docs: every rule has metadata,
logic, fixtures and examples that behave as documented, and the docs are generated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xgen_audit.audit import AuditOptions, audit_file
from xgen_audit.docs import CONFIG_END, CONFIG_START, TABLE_END, TABLE_START, config_table, rule_page, rules_table
from xgen_audit.engine import registry
from xgen_audit.rules_meta import Area, load_catalog

ROOT = Path(__file__).resolve().parents[1]

# Rules whose findings come from a step of the run rather than a registered function.
PIPELINE_RULES = {"XG008": "suppression comments are checked after the rules ran"}


def test_every_catalogue_rule_has_logic():
    registered = set(registry())
    missing = [rule_id for rule_id in load_catalog() if rule_id not in registered and rule_id not in PIPELINE_RULES]
    assert missing == []


def test_every_registered_rule_has_metadata():
    catalog = load_catalog()
    assert [rule_id for rule_id in registry() if rule_id not in catalog] == []


def test_every_rule_has_fixtures():
    """Pipeline rules are tested where their step is (XG008: tests/test_suppressions.py)."""
    for rule_id, meta in load_catalog().items():
        if rule_id in PIPELINE_RULES:
            continue
        if meta.area is Area.CELERY:
            folder = ROOT / "fixtures" / "celery-rules" / rule_id
        else:
            folder = ROOT / "fixtures" / "rules" / rule_id
        assert (folder / "fail").is_dir(), f"{rule_id}: no failing fixtures in {folder}"
        assert (folder / "pass").is_dir(), f"{rule_id}: no passing fixtures in {folder}"


def test_rule_ids_are_unique_names():
    names = [meta.name for meta in load_catalog().values()]
    assert len(names) == len(set(names))


def _example_findings(tmp_path: Path, text: str, rule_id: str) -> list[str]:
    compose = tmp_path / "compose.yaml"
    compose.write_text(text)
    match = re.match(r"# \.env beside the file sets (\w+)=", text)
    if match:
        (tmp_path / ".env").write_text(f"{match.group(1)}=example\n")
    findings, _checks = audit_file(compose, AuditOptions())
    return [finding.rule for finding in findings if finding.rule == rule_id]


COMPOSE_EXAMPLES = sorted(
    rule_id
    for rule_id, meta in load_catalog().items()
    if meta.examples.language == "yaml" and rule_id not in PIPELINE_RULES and rule_id != "XG001"
)


@pytest.mark.parametrize("rule_id", COMPOSE_EXAMPLES)
def test_failing_example_fails(tmp_path, rule_id):
    meta = load_catalog()[rule_id]
    assert _example_findings(tmp_path, meta.examples.failing, rule_id), f"{rule_id}: failing example passes"


@pytest.mark.parametrize("rule_id", COMPOSE_EXAMPLES)
def test_passing_example_passes(tmp_path, rule_id):
    meta = load_catalog()[rule_id]
    assert _example_findings(tmp_path, meta.examples.passing, rule_id) == [], f"{rule_id}: passing example fails"


def test_readme_tables_are_generated():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert rules_table(load_catalog()) in readme, "run `python -m xgen_audit.docs` to update the README"
    assert config_table() in readme, "run `python -m xgen_audit.docs` to update the README"
    for marker in (TABLE_START, TABLE_END, CONFIG_START, CONFIG_END):
        assert readme.count(marker) == 1


def test_rule_pages_are_generated():
    for rule_id, meta in load_catalog().items():
        page = ROOT / "docs" / "rules" / f"{rule_id}.md"
        assert page.is_file(), f"{page} is missing; run `python -m xgen_audit.docs`"
        assert page.read_text(encoding="utf-8") == rule_page(meta), f"{page} is stale"
