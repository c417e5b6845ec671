"""Rule selection with prefix selectors, per-file ignores and severity overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from xgen_audit.findings import Finding, Severity
from xgen_audit.selection import (
    RuleLayer,
    apply_per_file_ignores,
    apply_severity_overrides,
    fold_layers,
    path_matches,
    per_file_ignored,
    relative_posix,
    selected_rules,
    selector_matches,
    specificity,
    unknown_selectors,
)

IDS = ["XG001", "XG004", "XG008", "XG101", "XG102", "XG110", "XG201", "XG601"]


def make_finding(rule: str = "XG110", file: str = "compose.yaml", severity: Severity = Severity.ERROR) -> Finding:
    return Finding(
        rule=rule,
        name="some-rule",
        severity=severity,
        message="something is wrong",
        fix="do the right thing",
        file=file,
        line=3,
        column=5,
    )


def test_selector_matching_and_specificity():
    assert selector_matches("ALL", "XG101")
    assert selector_matches("XG1", "XG101")
    assert selector_matches("XG101", "XG101")
    assert not selector_matches("XG2", "XG101")
    assert specificity("ALL") < specificity("XG") < specificity("XG1") < specificity("XG101")


def test_select_all_returns_every_rule_in_order():
    assert selected_rules(IDS, ["ALL"]) == IDS


def test_select_prefix_limits_to_group():
    assert selected_rules(IDS, ["XG1"]) == ["XG101", "XG102", "XG110"]


def test_specific_ignore_beats_broad_select():
    assert selected_rules(IDS, ["XG1"], ignore=["XG110"]) == ["XG101", "XG102"]


def test_specific_select_beats_broad_ignore():
    assert selected_rules(IDS, ["XG110"], ignore=["XG1"]) == ["XG110"]
    assert selected_rules(IDS, ["XG"], ignore=["XG1"], extend_select=["XG102"]) == [
        "XG001",
        "XG004",
        "XG008",
        "XG102",
        "XG201",
        "XG601",
    ]


def test_ignore_wins_at_equal_specificity():
    assert selected_rules(IDS, ["XG110"], ignore=["XG110"]) == []
    assert selected_rules(IDS, ["XG1"], ignore=["XG1"]) == []


def test_no_select_refines_base():
    base = ["XG101", "XG110"]
    assert selected_rules(IDS, None, extend_select=["XG601"], base=base) == ["XG101", "XG110", "XG601"]
    assert selected_rules(IDS, None, ignore=["XG110"], base=base) == ["XG101"]


def test_no_select_without_base_starts_from_all():
    assert selected_rules(IDS, None, ignore=["XG0"]) == ["XG101", "XG102", "XG110", "XG201", "XG601"]


def test_later_layer_ignore_beats_earlier_specific_select():
    layers = [
        RuleLayer("default", select=("ALL",)),
        RuleLayer("pyproject.toml", select=("XG110", "XG6")),
        RuleLayer("command line", ignore=("XG1",)),
    ]
    assert fold_layers(IDS, layers) == ["XG601"]


def test_later_layer_select_starts_afresh():
    layers = [
        RuleLayer("default", select=("ALL",)),
        RuleLayer("pyproject.toml", ignore=("XG110",)),
        RuleLayer("command line", select=("XG1",)),
    ]
    assert fold_layers(IDS, layers) == ["XG101", "XG102", "XG110"]


def test_fold_without_layers_returns_all():
    assert fold_layers(IDS, []) == IDS


def test_unknown_selectors_listed():
    assert unknown_selectors(["ALL", "XG", "XG1", "XG9", "XG1100", "xg101", "E501"], IDS) == [
        "XG9",
        "XG1100",
        "xg101",
        "E501",
    ]


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("compose.yaml", "compose.yaml", True),
        ("compose.yaml", "deploy/compose.yaml", True),
        ("deploy/compose.yaml", "compose.yaml", False),
        ("*.override.yaml", "deploy/compose.override.yaml", True),
        ("deploy/*.yaml", "deploy/compose.yaml", True),
        ("deploy/*.yaml", "deploy/dev/compose.yaml", False),
        ("deploy/**/*.yaml", "deploy/dev/compose.yaml", True),
        ("deploy/**/*.yaml", "deploy/compose.yaml", True),
        ("**/legacy/*.yml", "a/b/legacy/docker-compose.yml", True),
        ("legacy", "legacy/compose.yaml", True),
        ("legacy/", "src/legacy/compose.yaml", True),
        ("deploy/legacy", "deploy/legacy/compose.yaml", True),
        ("deploy/legacy", "other/deploy/legacy/compose.yaml", False),
        ("compose.?.yaml", "compose.a.yaml", True),
        ("compose.?.yaml", "compose.ab.yaml", False),
        ("compose.[!p]*.yaml", "compose.dev.yaml", True),
        ("compose.[!p]*.yaml", "compose.prod.yaml", False),
        ("./compose.yaml", "./compose.yaml", True),
        ("settings*.py", "proj/settings_prod.py", True),
    ],
)
def test_path_matches(pattern: str, path: str, expected: bool):
    assert path_matches(pattern, path) is expected


def test_per_file_ignored_by_prefix():
    table = {"deploy/dev/*.yaml": ["XG6", "XG110"]}
    assert per_file_ignored("XG601", "deploy/dev/compose.yaml", table)
    assert per_file_ignored("XG110", "deploy/dev/compose.yaml", table)
    assert not per_file_ignored("XG101", "deploy/dev/compose.yaml", table)
    assert not per_file_ignored("XG601", "deploy/prod/compose.yaml", table)


def test_relative_posix_uses_root(tmp_path: Path):
    root = tmp_path / "project"
    (root / "deploy").mkdir(parents=True)
    assert relative_posix("deploy/compose.yaml", root, cwd=root) == "deploy/compose.yaml"
    assert relative_posix("compose.yaml", root, cwd=root / "deploy") == "deploy/compose.yaml"
    assert relative_posix(str(root / "deploy" / "c.yaml"), root) == "deploy/c.yaml"
    outside = str(tmp_path / "elsewhere.yaml")
    assert relative_posix(outside, root) == Path(outside).as_posix()


def test_apply_per_file_ignores_relative_to_root(tmp_path: Path):
    root = tmp_path
    (root / "dev").mkdir()
    dev = make_finding("XG601", "compose.yaml")
    prod = make_finding("XG601", "../compose.yaml")
    kept, ignored = apply_per_file_ignores([dev, prod], {"dev/*.yaml": ["XG601"]}, root, cwd=root / "dev")
    assert ignored == [dev]
    assert kept == [prod]


def test_severity_overrides_change_only_named_rules():
    findings = [make_finding("XG110"), make_finding("XG101")]
    result = apply_severity_overrides(findings, {"XG110": Severity.INFO})
    assert result[0].severity is Severity.INFO
    assert result[1].severity is Severity.ERROR
    assert findings[0].severity is Severity.ERROR
