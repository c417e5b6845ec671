"""Inline suppression comments: finding comments, parsing directives, applying them, XG008."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.error import YAMLError

from xgen_audit.findings import Finding, Severity
from xgen_audit.rules_meta import load_catalog
from xgen_audit.suppressions import (
    META_RULE,
    apply_suppressions,
    first_content_line,
    parse_suppressions,
    python_comments,
    yaml_comments,
)

KNOWN = ["XG001", "XG004", "XG008", "XG101", "XG110", "XG601"]
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "compose"


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def finding(rule: str, line: int, file: str = "compose.yaml", column: int = 5) -> Finding:
    return Finding(
        rule=rule,
        name="some-rule",
        severity=Severity.ERROR,
        message=f"{rule} fails here",
        fix="fix it",
        file=file,
        line=line,
        column=column,
    )


def comment_texts(comments) -> list[tuple[int, str]]:
    return [(comment.line, comment.text) for comment in comments]


# Finding comments in YAML


def test_yaml_hash_in_quotes_is_not_comment():
    text = dedent(
        """
        a: "x # not a comment"
        b: 'it''s # not either'  # real one
        c: it's # real two
        """
    )
    assert comment_texts(yaml_comments(text)) == [(2, "# real one"), (3, "# real two")]


def test_yaml_hash_without_space_is_not_comment():
    text = "url: http://example.com/#fragment\nkey: value#tail\n"
    assert yaml_comments(text) == []


def test_yaml_block_scalar_content_is_not_comment():
    text = dedent(
        """
        command: |  # header comment
          # script line, not a comment
          echo hi # also content
        next: 1  # after the block
        """
    )
    assert comment_texts(yaml_comments(text)) == [(1, "# header comment"), (4, "# after the block")]


def test_yaml_block_scalar_in_sequence_item():
    text = dedent(
        """
        - name: a
          script: >-
            run # content
          other: 2 # comment
        """
    )
    assert comment_texts(yaml_comments(text)) == [(4, "# comment")]


def test_yaml_multiline_double_quoted():
    text = dedent(
        """
        a: "first line
          # inside the string
          last" # comment
        """
    )
    assert comment_texts(yaml_comments(text)) == [(3, "# comment")]


def test_yaml_flow_collections():
    text = 'ports: ["6379:6379", "a#b", \'c # d\'] # comment\n'
    assert comment_texts(yaml_comments(text)) == [(1, "# comment")]


def test_yaml_own_line_flag_and_column():
    text = "  # own line\nkey: v  # trailing\n"
    comments = yaml_comments(text)
    assert comments[0].own_line is True
    assert comments[0].column == 3
    assert comments[1].own_line is False
    assert comments[1].column == 9


def test_yaml_document_marker_then_quoted():
    text = "--- 'a # b'  # comment\n"
    assert comment_texts(yaml_comments(text)) == [(1, "# comment")]


def test_yaml_anchor_and_tag_before_quoted():
    text = "a: &x 'q # q'  # c1\nb: !!str \"r # r\"  # c2\n"
    assert comment_texts(yaml_comments(text)) == [(1, "# c1"), (2, "# c2")]


class _TagKeepingConstructor(SafeConstructor):
    """Safe constructor that keeps compose's `!reset` and `!override` tags as (tag, value) pairs."""


def _construct_tagged(constructor: SafeConstructor, node: Node):
    if isinstance(node, MappingNode):
        value = constructor.construct_mapping(node, deep=True)
    elif isinstance(node, SequenceNode):
        value = constructor.construct_sequence(node, deep=True)
    else:
        value = constructor.construct_scalar(node)
    return (str(node.tag), value)


for _tag in ("!reset", "!override"):
    _TagKeepingConstructor.add_constructor(_tag, _construct_tagged)


def _load(text: str):
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = _TagKeepingConstructor
    return yaml.load(io.StringIO(text))


def _hash_positions(line: str) -> list[int]:
    return [i for i, char in enumerate(line) if char == "#" and (i == 0 or line[i - 1] in " \t")]


def _strip_at(lines: list[str], number: int, column: int) -> str:
    changed = list(lines)
    changed[number - 1] = changed[number - 1][:column]
    return "\n".join(changed) + "\n"


def check_scanner_against_parser(text: str) -> None:
    """Every `#` the scanner calls a comment can be cut without changing the data, and no other can."""
    try:
        original = _load(text)
    except YAMLError:
        pytest.skip("the document does not parse, so the parser cannot judge the scanner")
    lines = text.splitlines()
    found = {(comment.line, comment.column - 1) for comment in yaml_comments(text)}
    for number, line in enumerate(lines, start=1):
        for column in _hash_positions(line):
            stripped = _strip_at(lines, number, column)
            try:
                same = _load(stripped) == original
            except YAMLError:
                same = False
            if (number, column) in found:
                assert same, f"line {number} column {column + 1}: a `#` taken as comment is data"
            else:
                assert not same, f"line {number} column {column + 1}: a comment was missed"


HANDMADE = [
    dedent(
        """
        # leading
        services:
          redis:
            image: "redis:7" # trailing
            command: ["redis-server", "--save", "60 1"] # flags
            healthcheck:
              test: |
                redis-cli ping # not a comment
              interval: 5s # comment
          worker:
            command: 'sh -c "echo # x"' # real
            environment:
              - URL=redis://redis:6379/0#frag
              - NOTE=it's # fine
        """
    ),
    dedent(
        """
        x-common: &common
          restart: unless-stopped # why
        services:
          web:
            <<: *common
            command: >
              gunicorn app # still content
              --bind 0.0.0.0:8000
            labels: {a: "b # c", d: e} # last
        """
    ),
]


@pytest.mark.parametrize("text", HANDMADE)
def test_yaml_scanner_agrees_with_parser(text: str):
    check_scanner_against_parser(text)


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(path for path in CORPUS.iterdir() if path.suffix in (".yml", ".yaml"))


@pytest.mark.skipif(not CORPUS.is_dir(), reason="compose corpus not found next to the repository")
@pytest.mark.parametrize("path", corpus_files(), ids=lambda path: path.name)
def test_yaml_scanner_agrees_with_parser_on_corpus(path: Path):
    check_scanner_against_parser(path.read_text(encoding="utf-8"))


# Finding comments in Python


def test_python_hash_in_strings_is_not_comment():
    text = dedent(
        '''
        broker_url = "redis://redis:6379/0#x"  # real
        doc = """
        # inside a docstring
        """
        name = f"{broker_url}#{doc}"  # second
        '''
    )
    assert comment_texts(python_comments(text)) == [(1, "# real"), (5, "# second")]


def test_python_comments_before_syntax_error_are_kept():
    text = "# first\nx = (\n# second\n"
    assert comment_texts(python_comments(text)) == [(1, "# first"), (3, "# second")]


def test_python_own_line_flag():
    text = "x = 1  # trailing\n    # own\n"
    comments = python_comments(text)
    assert comments[0].own_line is False
    assert comments[1].own_line is True
    assert comments[1].column == 5


# Parsing directives


def test_trailing_directive_covers_its_line():
    parsed = parse_suppressions('ports: ["6379:6379"]  # xgen-audit: ignore XG110 -- CI only\n', "compose.yaml")
    [suppression] = parsed.suppressions
    assert suppression.scope == "line"
    assert suppression.target_line == 1
    assert suppression.rule_ids == ("XG110",)
    assert suppression.reason == "CI only"


def test_own_line_directive_covers_next_line():
    text = "services:\n  # xgen-audit: ignore XG110,XG601 -- dev stack\n  redis: {}\n"
    [suppression] = parse_suppressions(text, "compose.yaml").suppressions
    assert suppression.target_line == 3
    assert suppression.rule_ids == ("XG110", "XG601")


def test_stacked_directives_cover_next_code_line():
    text = dedent(
        """
        services:
          redis:
            # xgen-audit: ignore XG110 -- first
            # xgen-audit: ignore XG601 -- second
            ports: ["6379:6379"]
        """
    )
    targets = [s.target_line for s in parse_suppressions(text, "compose.yaml").suppressions]
    assert targets == [5, 5]


def test_own_line_directive_does_not_skip_blank_line():
    text = "# xgen-audit: ignore XG110 -- reason\n\nports: []\n"
    [suppression] = parse_suppressions(text, "compose.yaml").suppressions
    assert suppression.target_line == 2


def test_ids_separated_by_comma_and_space():
    text = "a: 1  # xgen-audit: ignore XG110, XG601 XG101 -- reason\n"
    [suppression] = parse_suppressions(text, "compose.yaml").suppressions
    assert suppression.rule_ids == ("XG110", "XG601", "XG101")


def test_directive_without_reason_parses_with_none():
    [suppression] = parse_suppressions("a: 1  # xgen-audit: ignore XG110\n", "c.yaml").suppressions
    assert suppression.reason is None
    [empty] = parse_suppressions("a: 1  # xgen-audit: ignore XG110 --   \n", "c.yaml").suppressions
    assert empty.reason is None


def test_ignore_file_in_leading_block():
    text = "#!/usr/bin/env compose\n# xgen-audit: ignore-file XG601 -- laptop only\n\nservices: {}\n"
    [suppression] = parse_suppressions(text, "compose.yaml").suppressions
    assert suppression.scope == "file"
    assert suppression.target_line is None


def test_ignore_file_after_content_is_problem():
    text = "services: {}\n# xgen-audit: ignore-file XG601 -- too late\n"
    parsed = parse_suppressions(text, "compose.yaml")
    assert parsed.suppressions == []
    [problem] = parsed.problems
    assert problem.line == 2
    assert "below the first line of content (line 1)" in problem.message


def test_directive_without_ids_is_problem():
    [problem] = parse_suppressions("a: 1  # xgen-audit: ignore -- reason\n", "c.yaml").problems
    assert "names no rule ids" in problem.message


def test_unknown_directive_is_problem():
    [problem] = parse_suppressions("a: 1  # xgen-audit: disable XG110 -- reason\n", "c.yaml").problems
    assert "unknown xgen-audit directive 'disable'" in problem.message


def test_directive_text_inside_string_is_ignored():
    text = 'command: "echo # xgen-audit: ignore XG110 -- no"\n'
    parsed = parse_suppressions(text, "compose.yaml")
    assert parsed.suppressions == []
    assert parsed.problems == []


def test_python_directive_in_string_is_ignored():
    text = 'x = "# xgen-audit: ignore XG110 -- no"\ny = 1  # xgen-audit: ignore XG601 -- yes\n'
    [suppression] = parse_suppressions(text, "celeryconfig.py").suppressions
    assert suppression.rule_ids == ("XG601",)
    assert suppression.target_line == 2


def test_python_ignore_file_before_docstring():
    text = '# xgen-audit: ignore-file XG601 -- reason\n"""Docstring."""\n# xgen-audit: ignore-file XG110 -- late\n'
    parsed = parse_suppressions(text, "settings.py")
    assert [s.rule_ids for s in parsed.suppressions] == [("XG601",)]
    assert len(parsed.problems) == 1


def test_first_content_line():
    assert first_content_line(["# a", "", "  # b", "key: 1"]) == 4
    assert first_content_line(["# only comments"]) == 2


# Applying suppressions


COMPOSE = dedent(
    """
    services:
      redis:
        image: redis:7
        ports: ["6379:6379"]  # xgen-audit: ignore XG110 -- CI runner only
        # xgen-audit: ignore XG101 -- data is disposable in this stack
        volumes: []
    """
)


def test_apply_suppresses_matching_findings():
    findings = [finding("XG110", 4), finding("XG101", 6), finding("XG601", 4)]
    result = apply_suppressions(findings, {"compose.yaml": COMPOSE}, KNOWN)
    assert [f.rule for f in result.suppressed] == ["XG110", "XG101"]
    assert [f.rule for f in result.kept] == ["XG601"]
    assert result.meta_findings == []


def test_apply_rule_must_match_line():
    findings = [finding("XG110", 3), finding("XG101", 4)]
    result = apply_suppressions(findings, {"compose.yaml": COMPOSE}, KNOWN)
    assert result.suppressed == []
    messages = [m.message for m in result.meta_findings]
    assert len(messages) == 2
    assert "suppression of XG110 is unused: no XG110 finding on line 4" in messages[0]
    assert "suppression of XG101 is unused: no XG101 finding on line 6" in messages[1]


def test_unused_meta_finding_shape():
    result = apply_suppressions([], {"compose.yaml": COMPOSE}, KNOWN)
    first = result.meta_findings[0]
    assert first.rule == META_RULE
    assert first.name == "bad-suppression"
    assert first.severity is Severity.WARNING
    assert first.file == "compose.yaml"
    assert first.line == 4
    assert first.column == 27
    assert first.fix == load_catalog()[META_RULE].fix


def test_unused_skips_rules_not_run():
    result = apply_suppressions([], {"compose.yaml": COMPOSE}, KNOWN, active_ids=["XG101"])
    assert [m.line for m in result.meta_findings] == [5]


def test_missing_reason_suppresses_nothing():
    text = 'ports: ["6379:6379"]  # xgen-audit: ignore XG110\n'
    result = apply_suppressions([finding("XG110", 1)], {"compose.yaml": text}, KNOWN)
    assert [f.rule for f in result.kept] == ["XG110"]
    [meta] = result.meta_findings
    assert "has no reason, so it suppresses nothing" in meta.message


def test_unknown_rule_id_reported_and_others_apply():
    text = 'ports: ["6379:6379"]  # xgen-audit: ignore XG110,XG11O -- typo next to a good id\n'
    result = apply_suppressions([finding("XG110", 1)], {"compose.yaml": text}, KNOWN)
    assert [f.rule for f in result.suppressed] == ["XG110"]
    [meta] = result.meta_findings
    assert "unknown rule id 'XG11O'" in meta.message


@pytest.mark.parametrize(("rule", "name"), [("XG001", "yaml-syntax"), ("XG004", "python-syntax")])
def test_syntax_findings_cannot_be_suppressed(rule: str, name: str):
    path = "celeryconfig.py" if rule == "XG004" else "compose.yaml"
    text = f"# xgen-audit: ignore-file {rule} -- trying anyway\nbroken: [\n"
    result = apply_suppressions([finding(rule, 2, file=path)], {path: text}, KNOWN)
    assert [f.rule for f in result.kept] == [rule]
    assert result.suppressed == []
    [meta] = result.meta_findings
    assert f"{rule} ({name}) cannot be suppressed" in meta.message


def test_meta_rule_cannot_be_suppressed_inline():
    text = "# xgen-audit: ignore-file XG008 -- quiet\nservices: {}\n"
    [meta] = apply_suppressions([], {"compose.yaml": text}, KNOWN).meta_findings
    assert "XG008 (bad-suppression) cannot be suppressed" in meta.message


def test_ignore_file_covers_every_line():
    text = "# xgen-audit: ignore-file XG601 -- laptop stack\nservices:\n  web:\n    volumes: [.:/app]\n"
    findings = [finding("XG601", 4), finding("XG601", 3), finding("XG110", 4)]
    result = apply_suppressions(findings, {"compose.yaml": text}, KNOWN)
    assert len(result.suppressed) == 2
    assert [f.rule for f in result.kept] == ["XG110"]
    assert result.meta_findings == []


def test_unused_ignore_file_reported():
    text = "# xgen-audit: ignore-file XG601 -- laptop stack\nservices: {}\n"
    [meta] = apply_suppressions([], {"compose.yaml": text}, KNOWN).meta_findings
    assert "no XG601 finding in this file" in meta.message


def test_problems_become_meta_findings():
    text = "services: {}  # xgen-audit: ignore -- no ids\n# xgen-audit: ignore-file XG601 -- late\n"
    meta = apply_suppressions([], {"compose.yaml": text}, KNOWN).meta_findings
    assert [m.line for m in meta] == [1, 2]
    assert all(m.rule == META_RULE for m in meta)


def test_findings_in_other_files_are_kept():
    result = apply_suppressions([finding("XG110", 4, file="other.yaml")], {"compose.yaml": COMPOSE}, KNOWN)
    assert [f.file for f in result.kept] == ["other.yaml"]


def test_paths_are_normalised():
    result = apply_suppressions([finding("XG110", 4, file="compose.yaml")], {"./compose.yaml": COMPOSE}, KNOWN)
    assert [f.rule for f in result.suppressed] == ["XG110"]


def test_python_file_suppression():
    text = 'broker_url = "redis://redis:6379/0"  # xgen-audit: ignore XG601 -- tests only\n'
    path = "proj/celeryconfig.py"
    result = apply_suppressions([finding("XG601", 1, file=path)], {path: text}, KNOWN)
    assert len(result.suppressed) == 1
    assert result.meta_findings == []


def test_result_unpacks_as_triple():
    kept, suppressed, meta = apply_suppressions([], {}, KNOWN)
    assert (kept, suppressed, meta) == ([], [], [])


def test_meta_rule_in_catalog():
    meta = load_catalog()[META_RULE]
    assert meta.name == "bad-suppression"
    assert meta.severity is Severity.WARNING
    assert "xgen-audit: ignore" in meta.examples.failing
    assert "xgen-audit: ignore XG110 --" in meta.examples.passing
