"""Rule documentation generated from the catalogue: one page per rule and the README table."""

from __future__ import annotations

from pathlib import Path

from xgen_audit.rules_meta import RuleMeta, load_catalog

TABLE_START = "<!-- rules-table:start -->"
TABLE_END = "<!-- rules-table:end -->"
CONFIG_START = "<!-- config-table:start -->"
CONFIG_END = "<!-- config-table:end -->"


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


def config_table() -> str:
    """Return the Markdown reference of the configuration keys, from the pydantic model."""
    from xgen_audit.config import FileConfig

    schema = FileConfig.model_json_schema(by_alias=True)
    definitions = schema.get("$defs", {})
    rows = [CONFIG_START, "| key | type | meaning |", "|---|---|---|"]
    for key, prop in schema["properties"].items():
        rows.append(f"| `{key}` | {_schema_type(prop, definitions)} | {prop.get('description', '')} |")
    rows.append(CONFIG_END)
    return "\n".join(rows)


def _schema_type(prop: dict, definitions: dict) -> str:
    """Name a JSON-schema type the way a TOML user reads it."""
    options = [item for item in prop.get("anyOf", [prop]) if item.get("type") != "null"]
    if not options:
        return "any"
    item = options[0]
    if "$ref" in item:
        item = definitions.get(item["$ref"].split("/")[-1], {})
    if "enum" in item:
        return "one of " + ", ".join(f"`{value}`" for value in item["enum"])
    kind = item.get("type")
    if kind == "array":
        return "list of " + _schema_type(item.get("items", {}), definitions).replace("string", "strings")
    if kind == "object":
        return "table"
    return {"string": "string", "integer": "integer", "boolean": "boolean"}.get(kind, str(kind))


def _replace_between(text: str, start_marker: str, end_marker: str, content: str, where: Path) -> str:
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < 0:
        raise ValueError(f"{where} has no {start_marker} ... {end_marker} markers")
    return text[:start] + content + text[end + len(end_marker):]


def write_docs(root: Path) -> list[Path]:
    """Write docs/rules/<ID>.md and the README's rule table; return the files changed."""
    catalog = load_catalog()
    changed: list[Path] = []
    rules_folder = root / "docs" / "rules"
    rules_folder.mkdir(parents=True, exist_ok=True)
    for meta in catalog.values():
        page = rules_folder / f"{meta.id}.md"
        if _write_if_changed(page, rule_page(meta)):
            changed.append(page)
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    updated = _replace_between(text, TABLE_START, TABLE_END, rules_table(catalog), readme)
    updated = _replace_between(updated, CONFIG_START, CONFIG_END, config_table(), readme)
    if _write_if_changed(readme, updated):
        changed.append(readme)
    return changed


def _write_if_changed(path: Path, content: str) -> bool:
    if path.is_file() and path.read_text(encoding="utf-8") == content:
        return False
    path.write_text(content, encoding="utf-8")
    return True


if __name__ == "__main__":
    for written in write_docs(Path(__file__).resolve().parents[1]):
        print(f"wrote {written}")
