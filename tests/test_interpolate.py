"""Interpolation of strings and located trees, checked against Compose's documented results."""

from __future__ import annotations

import time

import pytest

from xgen_audit.compose.interpolate import (
    PROBLEM_INVALID,
    PROBLEM_REQUIRED,
    PROBLEM_UNSET,
    cast_bool,
    cast_float,
    cast_int,
    interpolate_text,
    interpolate_tree,
)
from xgen_audit.parse.tree import TAG_INT, TAG_STR, YMap, YScalar, YSeq
from xgen_audit.parse.yaml_reader import read_yaml_file

ENV = {"A": "aval", "EMPTY": "", "PORT": "6380"}

# Expected values were taken from `docker compose config` (v2.40) with A=aval and EMPTY="".
CASES = [
    ("$A", "aval"),
    ("${A}", "aval"),
    ("${UNSET:-def}", "def"),
    ("${EMPTY:-def}", "def"),
    ("${EMPTY-def}", ""),
    ("${UNSET-def}", "def"),
    ("${A:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET+alt}", ""),
    ("$$A and $$$A", "$A and $aval"),
    ("$1 $ x$", "$1 $ x$"),
    ("${UNSET:-${OTHER:-inner}}", "inner"),
    ("${UNSET:-{x}}", "{x}"),
    ("${A}}", "aval}"),
    ("${UNSET-x:?y}", "x:?y"),
    ("${UNSET:-a}b${A}", "abaval"),
    ("${A}_B", "aval_B"),
    ("${UNSET:-$A}", "aval"),
    ("${UNSET:-${A}x}y", "avalxy"),
    ("$$$$", "$$"),
    ("${a:-lower}", "lower"),
    ("${_x1:-underscore}", "underscore"),
    ("${PORT:-6379}:6379", "6380:6379"),
    ("no dollar", "no dollar"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_interpolate_text_value(text: str, expected: str) -> None:
    result = interpolate_text(text, ENV)
    assert result.value == expected
    assert result.errors == []


def test_unset_variable_is_unresolved() -> None:
    result = interpolate_text("${BIND_IP}:6379:6379", ENV)
    assert result.value == ":6379:6379"
    assert result.unresolved == ("BIND_IP",)
    assert result.changed


def test_name_is_greedy_for_bare_form() -> None:
    result = interpolate_text("$A_B", ENV)
    assert result.value == ""
    assert result.unresolved == ("A_B",)


def test_default_hides_unset_variable() -> None:
    result = interpolate_text("${REDIS_PORT:-6379}", {})
    assert result.unresolved == ()
    assert result.used == ("REDIS_PORT",)


def test_nested_default_reports_inner_unset() -> None:
    result = interpolate_text("${X:-${Y}}", {})
    assert result.value == ""
    assert result.unresolved == ("Y",)
    assert result.used == ("X", "Y")


def test_required_unset_is_error() -> None:
    result = interpolate_text("${U?need it}", ENV)
    assert result.value == ""
    assert result.errors == ["required variable U is missing a value: need it"]


def test_required_colon_rejects_empty() -> None:
    result = interpolate_text("${EMPTY:?}", ENV)
    assert result.errors == ["required variable EMPTY is missing a value"]


def test_required_plain_accepts_empty() -> None:
    result = interpolate_text("${EMPTY?}", ENV)
    assert result.value == ""
    assert result.errors == []


def test_required_message_is_interpolated() -> None:
    result = interpolate_text("${EMPTY:?need $A}", ENV)
    assert result.errors == ["required variable EMPTY is missing a value: need aval"]


@pytest.mark.parametrize("text", ["${1}", "${A", "${A:x}", "x${}", "${-x}"])
def test_invalid_format_is_error(text: str) -> None:
    result = interpolate_text(text, ENV)
    assert len(result.errors) == 1
    assert "invalid interpolation format" in result.errors[0]


def test_unchanged_text_reports_not_changed() -> None:
    result = interpolate_text("plain", ENV)
    assert not result.changed
    assert result.used == ()


def _parse(text: str):
    return read_yaml_file(text.encode(), "compose.yaml").root


def test_tree_interpolates_values_not_keys() -> None:
    root = _parse('services:\n  r:\n    image: "redis:${TAG:-7}"\n    labels:\n      $A: "$A"\n')
    copy, problems = interpolate_tree(root, ENV)
    service = copy.get("services").get("r")
    image = service.get("image")
    assert image.value == "redis:7"
    assert image.raw == "redis:${TAG:-7}"
    assert image.interpolated
    assert image.style == '"'
    labels = service.get("labels")
    assert list(labels.entries) == ["$A"]
    assert labels.get("$A").value == "aval"
    assert problems == []


def test_tree_leaves_input_unchanged() -> None:
    root = _parse("x: $A\n")
    copy, _ = interpolate_tree(root, ENV)
    assert root.get("x").value == "$A"
    assert not root.get("x").interpolated
    assert copy.get("x").value == "aval"
    assert copy is not root


def test_tree_keeps_non_strings() -> None:
    root = _parse("port: 6379\n")
    copy, _ = interpolate_tree(root, ENV)
    port = copy.get("port")
    assert port.value == 6379
    assert port.tag == TAG_INT


def test_tree_problem_positions() -> None:
    root = _parse("a: ok\nb:\n  - ${MISSING}\n  - ${REQ:?set REQ}\n  - ${1}\n")
    _, problems = interpolate_tree(root, {})
    kinds = [(p.kind, p.variable, p.loc.line, p.loc.column) for p in problems]
    assert kinds == [
        (PROBLEM_UNSET, "MISSING", 3, 5),
        (PROBLEM_REQUIRED, "REQ", 4, 5),
        (PROBLEM_INVALID, "", 5, 5),
    ]


def test_tree_unresolved_on_scalar() -> None:
    root = _parse('p: "${BIND}:6379:6379"\n')
    copy, _ = interpolate_tree(root, {})
    scalar = copy.get("p")
    assert scalar.value == ":6379:6379"
    assert scalar.unresolved == ("BIND",)
    assert scalar.tag == TAG_STR


def test_tree_shares_aliased_nodes() -> None:
    root = _parse("a: &x\n  v: $A\nb: *x\n")
    copy, problems = interpolate_tree(root, ENV)
    assert copy.get("a") is copy.get("b")
    assert copy.get("a").get("v").value == "aval"
    assert problems == []


def test_tree_reports_aliased_problem_once() -> None:
    root = _parse("a: &x\n  v: $NOPE\nb: *x\nc: *x\n")
    _, problems = interpolate_tree(root, {})
    assert len(problems) == 1


def test_tree_alias_bomb_is_fast() -> None:
    lines = ['a0: &a0 ["$X", "$X", "$X", "$X", "$X", "$X", "$X", "$X", "$X"]']
    for level in range(1, 6):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    root = _parse("\n".join(lines) + "\n")
    start = time.perf_counter()
    copy, problems = interpolate_tree(root, {"X": "y"})
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    assert isinstance(copy, YMap)
    leaf = copy.get("a5").items[0].items[0].items[0].items[0].items[0].items[0]
    assert isinstance(leaf, YScalar)
    assert leaf.value == "y"
    assert problems == []


def test_tree_none_root() -> None:
    copy, problems = interpolate_tree(None, ENV)
    assert copy is None
    assert problems == []


def test_tree_keeps_reset_tag() -> None:
    root = _parse("ports: !reset []\nimage: !override ${IMG:-redis}\n")
    copy, _ = interpolate_tree(root, {})
    assert isinstance(copy.get("ports"), YSeq)
    assert copy.get("ports").tag == "!reset"
    assert copy.get("image").tag == "!override"
    assert copy.get("image").value == "redis"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3", 3), (" 12 ", 12), ("-1", -1), ("1.5", None), ("x", None), ("", None)],
)
def test_cast_int(text: str, expected: int | None) -> None:
    assert cast_int(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("YES", True), ("on", True), ("no", False), ("False", False), ("2", None)],
)
def test_cast_bool(text: str, expected: bool | None) -> None:
    assert cast_bool(text) == expected


def test_cast_float() -> None:
    assert cast_float("0.5") == 0.5
    assert cast_float("half") is None
