"""Rule documentation generated from the catalogue: one page per rule and the README table."""

from __future__ import annotations

from xgen_audit.rules_meta import RuleMeta

TABLE_START = "<!-- rules-table:start -->"
TABLE_END = "<!-- rules-table:end -->"


def rule_page(meta: RuleMeta) -> str:
    """Return a rule's page as Markdown."""
    severity = meta.severity.value + (f" ({meta.severity_note})" if meta.severity_note else "")
    lines = [
        f"# {meta.id} {meta.name}",
        "",
        meta.summary,
        "",
        f"- Default severity: {severity}",
        f"- Area: {meta.area.value}" + (f", hardening item {meta.hardening_item}" if meta.hardening_item else ""),
        f"- Fix: {meta.fixable.value}",
    ]
    if meta.tags:
        lines.append(f"- Tags: {', '.join(meta.tags)}")
    lines += ["", "## Why it matters", "", meta.rationale.strip(), "", "## How to fix it", "", meta.fix.strip()]
    language = meta.examples.language
    lines += ["", "## Example that fails", "", f"```{language}", meta.examples.failing.strip("\n"), "```"]
    lines += ["", "## Fixed", "", f"```{language}", meta.examples.passing.strip("\n"), "```"]
    if meta.limitations:
        lines += ["", "## Known limitations", "", meta.limitations.strip()]
    if meta.references:
        lines += ["", "## References", ""] + [f"- {reference}" for reference in meta.references]
    return "\n".join(lines) + "\n"


def rules_table(catalog: dict[str, RuleMeta]) -> str:
    """Return the Markdown table of rules for the README, between its markers."""
    rows = [
        TABLE_START,
        "| id | name | default severity | summary |",
        "|---|---|---|---|",
    ]
    for meta in catalog.values():
        severity = meta.severity.value + (f" ({meta.severity_note})" if meta.severity_note else "")
        rows.append(f"| [{meta.id}](docs/rules/{meta.id}.md) | {meta.name} | {severity} | {meta.summary} |")
    rows.append(TABLE_END)
    return "\n".join(rows)
