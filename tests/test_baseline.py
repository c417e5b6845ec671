"""Baseline files: writing, loading, matching findings that moved, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xgen_audit.baseline import (
    Baseline,
    BaselineError,
    build_baseline,
    dump_baseline,
    filter_with_baseline,
    load_baseline,
    write_baseline,
)
from xgen_audit.config import ConfigError
from xgen_audit.findings import Finding, Severity

COMPOSE = """services:
  redis:
    image: redis:7
    ports: ["6379:6379"]
  cache:
    image: redis:7
    ports: ["6380:6379"]
"""


def finding(
    rule: str, line: int, service: str | None = "redis", file: str = "compose.yaml", message: str = ""
) -> Finding:
    return Finding(
        rule=rule,
        name="some-rule",
        severity=Severity.ERROR,
        message=message or f"{rule} fails",
        fix="fix it",
        file=file,
        line=line,
        column=5,
        service=service,
    )


def test_write_then_load_round_trip(tmp_path: Path):
    path = tmp_path / "baseline.json"
    findings = [finding("XG110", 4), finding("XG101", 2)]
    written = write_baseline(findings, path, {"compose.yaml": COMPOSE})
    loaded = load_baseline(path)
    assert loaded == written
    assert [entry.rule for entry in loaded.entries] == ["XG101", "XG110"]
    assert all(entry.file == "compose.yaml" for entry in loaded.entries)
    assert all(entry.service == "redis" for entry in loaded.entries)


def test_output_is_deterministic(tmp_path: Path):
    findings = [finding("XG110", 4), finding("XG101", 2), finding("XG110", 7, service="cache")]
    first = write_baseline(findings, tmp_path / "a.json", {"compose.yaml": COMPOSE})
    write_baseline(list(reversed(findings)), tmp_path / "b.json", {"compose.yaml": COMPOSE})
    text = (tmp_path / "a.json").read_text(encoding="utf-8")
    assert text == (tmp_path / "b.json").read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert text == dump_baseline(first)
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert list(data["entries"][0]) == sorted(data["entries"][0])
    keys = [(e["rule"], e["file"], e["service"] or "", e["fingerprint"]) for e in data["entries"]]
    assert keys == sorted(keys)


def test_fingerprint_ignores_line_number():
    baseline = build_baseline([finding("XG110", 4)], {"compose.yaml": COMPOSE})
    moved = "# a new comment at the top\nx-common: {}\n" + COMPOSE
    new, matched, stale = filter_with_baseline([finding("XG110", 6)], baseline, {"compose.yaml": moved})
    assert new == []
    assert len(matched) == 1
    assert stale == []


def test_fingerprint_ignores_indent_and_comment():
    baseline = build_baseline([finding("XG110", 4)], {"compose.yaml": COMPOSE})
    edited = COMPOSE.replace(
        '    ports: ["6379:6379"]', '    ports:   ["6379:6379"]   # reviewed, see runbook'
    )
    new, matched, _ = filter_with_baseline([finding("XG110", 4)], baseline, {"compose.yaml": edited})
    assert new == []
    assert len(matched) == 1


def test_changed_line_is_new_and_entry_stale():
    baseline = build_baseline([finding("XG110", 4)], {"compose.yaml": COMPOSE})
    edited = COMPOSE.replace('"6379:6379"', '"16379:6379"')
    new, matched, stale = filter_with_baseline([finding("XG110", 4)], baseline, {"compose.yaml": edited})
    assert len(new) == 1
    assert matched == []
    assert [entry.rule for entry in stale] == ["XG110"]
    assert stale[0].count == 1


def test_service_is_part_of_key():
    baseline = build_baseline([finding("XG110", 4, service="redis")], {"compose.yaml": COMPOSE})
    new, matched, _ = filter_with_baseline([finding("XG110", 4, service="cache")], baseline, {"compose.yaml": COMPOSE})
    assert len(new) == 1
    assert matched == []


def test_rule_is_part_of_key():
    baseline = build_baseline([finding("XG110", 4)], {"compose.yaml": COMPOSE})
    new, _, _ = filter_with_baseline([finding("XG101", 4)], baseline, {"compose.yaml": COMPOSE})
    assert len(new) == 1


def test_file_is_part_of_key():
    baseline = build_baseline([finding("XG110", 4)], {"compose.yaml": COMPOSE, "prod.yaml": COMPOSE})
    new, _, _ = filter_with_baseline(
        [finding("XG110", 4, file="prod.yaml")], baseline, {"compose.yaml": COMPOSE, "prod.yaml": COMPOSE}
    )
    assert len(new) == 1


def test_identical_findings_are_counted():
    text = "a: 1\na: 1\na: 1\n"
    baseline = build_baseline([finding("XG110", 1), finding("XG110", 2)], {"compose.yaml": text})
    assert len(baseline.entries) == 1
    assert baseline.entries[0].count == 2
    current = [finding("XG110", 1), finding("XG110", 2), finding("XG110", 3)]
    new, matched, stale = filter_with_baseline(current, baseline, {"compose.yaml": text})
    assert len(matched) == 2
    assert [f.line for f in new] == [3]
    assert stale == []


def test_partly_matched_entry_reports_remaining_count():
    text = "a: 1\na: 1\n"
    baseline = build_baseline([finding("XG110", 1), finding("XG110", 2)], {"compose.yaml": text})
    _, matched, stale = filter_with_baseline([finding("XG110", 1)], baseline, {"compose.yaml": text})
    assert len(matched) == 1
    assert stale[0].count == 1


def test_without_text_the_message_is_hashed():
    baseline = build_baseline([finding("XG110", 0, message="stack has no redis")], {})
    same, _, _ = filter_with_baseline([finding("XG110", 0, message="stack has no redis")], baseline, None)
    other, _, _ = filter_with_baseline([finding("XG110", 0, message="something else")], baseline, None)
    assert same == []
    assert len(other) == 1


def test_write_reads_files_from_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text(COMPOSE, encoding="utf-8")
    from_disk = write_baseline([finding("XG110", 4)], tmp_path / "b.json")
    given = build_baseline([finding("XG110", 4)], {"compose.yaml": COMPOSE})
    assert from_disk == given


def test_root_makes_absolute_paths_relative(tmp_path: Path):
    absolute = str(tmp_path / "deploy" / "compose.yaml")
    baseline = build_baseline([finding("XG110", 4, file=absolute)], {absolute: COMPOSE}, root=tmp_path)
    assert baseline.entries[0].file == "deploy/compose.yaml"
    new, matched, _ = filter_with_baseline(
        [finding("XG110", 4, file=absolute)], baseline, {absolute: COMPOSE}, root=tmp_path
    )
    assert new == []
    assert len(matched) == 1


# Errors


def test_missing_file(tmp_path: Path):
    with pytest.raises(BaselineError, match="baseline file not found"):
        load_baseline(tmp_path / "missing.json")


def test_invalid_json_names_position(tmp_path: Path):
    path = tmp_path / "baseline.json"
    path.write_text('{"version": 1,\n  "entries": [}\n', encoding="utf-8")
    with pytest.raises(BaselineError) as caught:
        load_baseline(path)
    assert f"{path}:2:" in str(caught.value)
    assert "not valid JSON" in str(caught.value)


def test_wrong_shape(tmp_path: Path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"version": 1, "entries": [{"rule": "XG110", "file": "c.yaml", "fingerprint": "abc"}]}))
    with pytest.raises(BaselineError) as caught:
        load_baseline(path)
    assert "entries.0.fingerprint" in str(caught.value)


def test_unknown_version(tmp_path: Path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"version": 2, "entries": []}))
    with pytest.raises(BaselineError, match="version"):
        load_baseline(path)


def test_extra_key_rejected(tmp_path: Path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"version": 1, "entries": [], "comment": "x"}))
    with pytest.raises(BaselineError, match="comment"):
        load_baseline(path)


def test_not_utf8(tmp_path: Path):
    path = tmp_path / "baseline.json"
    path.write_bytes(b'{"version": 1, "entries": ["\xff"]}')
    with pytest.raises(BaselineError, match="UTF-8"):
        load_baseline(path)


def test_baseline_error_is_config_error(tmp_path: Path):
    with pytest.raises(ConfigError):
        load_baseline(tmp_path / "missing.json")


def test_write_to_missing_folder(tmp_path: Path):
    with pytest.raises(BaselineError, match="cannot write"):
        write_baseline([], tmp_path / "no" / "such" / "b.json", {})


def test_empty_baseline_loads(tmp_path: Path):
    path = tmp_path / "baseline.json"
    write_baseline([], path, {})
    assert load_baseline(path) == Baseline()
