"""Output formats: SARIF, GitHub workflow commands, JUnit XML, GitLab Code Quality, statistics.

Each formatter is fed hand-made findings and checks. No installed package ships
the SARIF 2.1.0 schema, so SARIF output is validated against a schema written
here for the properties GitHub code scanning requires or reads.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from urllib.parse import urlparse

import jsonschema
import pytest

from xgen_audit.findings import Check, Finding, Severity, Status
from xgen_audit.output import (
    findings_for_check,
    render_statistics,
    rule_help_url,
    stable_fingerprints,
    statistics,
)
from xgen_audit.output.github import escape_data, escape_property, render_github
from xgen_audit.output.gitlab import build_gitlab, render_gitlab
from xgen_audit.output.junit import render_junit
from xgen_audit.output.sarif import FINGERPRINT_KEY, SRCROOT, build_sarif, render_sarif
from xgen_audit.rules_meta import Examples, RuleMeta, load_catalog

# NOTE: written from GitHub's "SARIF support for code scanning" page, not the
# OASIS schema: it checks what GitHub requires, not all of SARIF 2.1.0.
GITHUB_SARIF_SUBSET = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string"},
        "version": {"const": "2.1.0"},
        "runs": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/run"}},
    },
    "$defs": {
        "text": {
            "type": "object",
            "required": ["text"],
            "properties": {"text": {"type": "string", "minLength": 1}, "markdown": {"type": "string"}},
        },
        "level": {"enum": ["none", "note", "warning", "error"]},
        "run": {
            "type": "object",
            "required": ["tool", "results"],
            "properties": {
                "tool": {
                    "type": "object",
                    "required": ["driver"],
                    "properties": {"driver": {"$ref": "#/$defs/driver"}},
                },
                "results": {"type": "array", "items": {"$ref": "#/$defs/result"}},
                "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                "invocations": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["executionSuccessful"],
                        "properties": {
                            "executionSuccessful": {"type": "boolean"},
                            "toolExecutionNotifications": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["message"],
                                    "properties": {
                                        "message": {"$ref": "#/$defs/text"},
                                        "level": {"$ref": "#/$defs/level"},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
        "driver": {
            "type": "object",
            "required": ["name", "rules"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "version": {"type": "string"},
                "informationUri": {"type": "string"},
                "rules": {"type": "array", "maxItems": 25000, "items": {"$ref": "#/$defs/rule"}},
            },
        },
        "rule": {
            "type": "object",
            "required": ["id", "shortDescription"],
            "properties": {
                "id": {"type": "string", "minLength": 1},
                "name": {"type": "string"},
                "shortDescription": {"$ref": "#/$defs/text"},
                "fullDescription": {"$ref": "#/$defs/text"},
                "help": {"$ref": "#/$defs/text"},
                "helpUri": {"type": "string"},
                "defaultConfiguration": {"type": "object", "properties": {"level": {"$ref": "#/$defs/level"}}},
                "properties": {
                    "type": "object",
                    "properties": {"tags": {"type": "array", "maxItems": 20, "items": {"type": "string"}}},
                },
            },
        },
        "result": {
            "type": "object",
            "required": ["ruleId", "message", "locations"],
            "properties": {
                "ruleId": {"type": "string", "minLength": 1},
                "ruleIndex": {"type": "integer", "minimum": 0},
                "level": {"$ref": "#/$defs/level"},
                "message": {"$ref": "#/$defs/text"},
                "locations": {"type": "array", "minItems": 1, "maxItems": 10, "items": {"$ref": "#/$defs/location"}},
                "partialFingerprints": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "location": {
            "type": "object",
            "required": ["physicalLocation"],
            "properties": {
                "physicalLocation": {
                    "type": "object",
                    "required": ["artifactLocation", "region"],
                    "properties": {
                        "artifactLocation": {
                            "type": "object",
                            "required": ["uri"],
                            "properties": {"uri": {"type": "string", "minLength": 1}, "uriBaseId": {"type": "string"}},
                        },
                        "region": {
                            "type": "object",
                            "required": ["startLine"],
                            "properties": {
                                "startLine": {"type": "integer", "minimum": 1},
                                "startColumn": {"type": "integer", "minimum": 1},
                            },
                        },
                    },
                }
            },
        },
    },
}

XG110 = RuleMeta(
    id="XG110",
    name="redis-port-published",
    area="compose",
    hardening_item=2,
    severity="error",
    tags=["security", "network"],
    summary="A Redis service publishes its port on every host interface.",
    rationale=(
        "Redis has no password by default.\nA published port\nis reachable from the network.\n\nSecond paragraph."
    ),
    fix="Remove the `ports:` entry or bind it to 127.0.0.1.",
    examples=Examples(failing='ports: ["6379:6379"]\n', passing='ports: ["127.0.0.1:6379:6379"]\n'),
)


def catalog() -> dict[str, RuleMeta]:
    return {**load_catalog(), "XG110": XG110}


COMPOSE = 'services:\n  redis:\n    image: redis:7\n    ports: ["6379:6379"]\n    volumes: []\n'


def finding(
    rule: str = "XG110",
    line: int = 4,
    column: int = 5,
    file: str = "compose.yaml",
    severity: Severity = Severity.ERROR,
    message: str = "redis publishes port 6379 on 0.0.0.0",
    service: str | None = "redis",
    stack: str | None = None,
    name: str = "redis-port-published",
) -> Finding:
    return Finding(
        rule=rule,
        name=name,
        severity=severity,
        message=message,
        fix="Bind the port to 127.0.0.1.",
        file=file,
        line=line,
        column=column,
        service=service,
        stack=stack,
    )


def check(
    rule: str = "XG110",
    status: Status = Status.FAIL,
    file: str = "compose.yaml",
    reason: str | None = None,
    stack: str | None = None,
    name: str = "redis-port-published",
) -> Check:
    return Check(rule=rule, name=name, file=file, status=status, reason=reason, stack=stack)


# SARIF


def sample_sarif(**kwargs) -> dict:
    findings = [
        finding(),
        finding("XG101", line=2, column=3, name="redis-data-volume", message="no named volume"),
        finding("XG008", line=1, severity=Severity.WARNING, name="bad-suppression", service=None),
    ]
    checks = [
        check(),
        check("XG101", name="redis-data-volume"),
        check("XG999", Status.UNKNOWN, reason="interpolated", name="future-rule"),
    ]
    return build_sarif(findings, checks, catalog(), "0.1.0", files_text={"compose.yaml": COMPOSE}, **kwargs)


def test_sarif_matches_github_subset():
    jsonschema.validate(sample_sarif(), GITHUB_SARIF_SUBSET)


def test_sarif_real_catalog_rules_valid():
    findings = [finding(rule_id, name=meta.name) for rule_id, meta in load_catalog().items()]
    log = build_sarif(findings, [], load_catalog(), "0.1.0")
    jsonschema.validate(log, GITHUB_SARIF_SUBSET)
    assert [rule["id"] for rule in log["runs"][0]["tool"]["driver"]["rules"]] == list(load_catalog())


def test_sarif_rule_index_points_to_rule():
    run = sample_sarif()["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_sarif_driver_fields():
    driver = sample_sarif()["runs"][0]["tool"]["driver"]
    assert driver["name"] == "xgen-audit"
    assert driver["version"] == "0.1.0"
    assert urlparse(driver["informationUri"]).scheme == "https"
    assert [rule["id"] for rule in driver["rules"]] == ["XG008", "XG101", "XG110", "XG999"]


def test_sarif_rule_descriptor_from_metadata():
    rules = {rule["id"]: rule for rule in sample_sarif()["runs"][0]["tool"]["driver"]["rules"]}
    rule = rules["XG110"]
    assert rule["name"] == "redis-port-published"
    assert rule["shortDescription"]["text"] == XG110.summary
    assert rule["fullDescription"]["text"] == (
        "Redis has no password by default. A published port is reachable from the network.\n\nSecond paragraph."
    )
    assert XG110.fix in rule["help"]["text"]
    assert 'ports: ["6379:6379"]' in rule["help"]["text"]
    assert '```yaml\nports: ["127.0.0.1:6379:6379"]\n```' in rule["help"]["markdown"]
    assert rule["helpUri"] == rule_help_url("XG110")
    assert rule["defaultConfiguration"]["level"] == "error"
    assert rule["properties"]["tags"] == ["compose", "network", "security"]


def test_sarif_rule_missing_from_catalog_gets_minimal_descriptor():
    rules = {rule["id"]: rule for rule in sample_sarif()["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["XG999"] == {"id": "XG999", "name": "future-rule", "shortDescription": {"text": "future-rule"}}


def test_sarif_result_fields():
    results = sample_sarif()["runs"][0]["results"]
    result = next(item for item in results if item["ruleId"] == "XG110")
    assert result["level"] == "error"
    assert result["message"]["text"] == "redis publishes port 6379 on 0.0.0.0\nFix: Bind the port to 127.0.0.1."
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "compose.yaml", "uriBaseId": SRCROOT}
    assert location["region"] == {"startLine": 4, "startColumn": 5}
    assert result["properties"] == {"service": "redis"}
    warning = next(item for item in results if item["ruleId"] == "XG008")
    assert warning["level"] == "warning"
    assert "properties" not in warning


def test_sarif_info_level_is_note():
    log = build_sarif([finding(severity=Severity.INFO)], [], catalog(), "0.1.0")
    assert log["runs"][0]["results"][0]["level"] == "note"


def test_sarif_uri_is_relative_posix_and_encoded():
    log = build_sarif([finding(file="./deploy/my stack/compose.yaml")], [], catalog(), "0.1.0")
    artifact = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": "deploy/my%20stack/compose.yaml", "uriBaseId": SRCROOT}


def test_sarif_absolute_path_becomes_file_uri():
    log = build_sarif([finding(file="/srv/app/compose.yaml")], [], catalog(), "0.1.0")
    artifact = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": "file:///srv/app/compose.yaml"}


def test_sarif_line_zero_clamped_to_one():
    log = build_sarif([finding(line=0, column=0)], [], catalog(), "0.1.0")
    region = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 1, "startColumn": 1}


def test_sarif_fingerprint_survives_line_move():
    before = build_sarif([finding(line=4)], [], catalog(), "0.1.0", files_text={"compose.yaml": COMPOSE})
    moved_text = "# header\n\n" + COMPOSE
    after = build_sarif([finding(line=6)], [], catalog(), "0.1.0", files_text={"compose.yaml": moved_text})
    first = before["runs"][0]["results"][0]["partialFingerprints"][FINGERPRINT_KEY]
    second = after["runs"][0]["results"][0]["partialFingerprints"][FINGERPRINT_KEY]
    assert first == second
    assert re.fullmatch(r"[0-9a-f]{64}", first)


def test_sarif_fingerprint_changes_with_line_content():
    before = build_sarif([finding()], [], catalog(), "0.1.0", files_text={"compose.yaml": COMPOSE})
    changed = COMPOSE.replace("6379:6379", "6380:6379")
    after = build_sarif([finding()], [], catalog(), "0.1.0", files_text={"compose.yaml": changed})
    first = before["runs"][0]["results"][0]["partialFingerprints"]
    second = after["runs"][0]["results"][0]["partialFingerprints"]
    assert first != second


def test_sarif_unknown_checks_become_notifications():
    notifications = sample_sarif()["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert len(notifications) == 1
    assert notifications[0]["descriptor"] == {"id": "XG999"}
    assert "interpolated" in notifications[0]["message"]["text"]


def test_sarif_render_is_deterministic():
    findings = [finding(), finding("XG101", line=2, name="redis-data-volume")]
    first = render_sarif(findings, [check()], catalog(), "0.1.0")
    second = render_sarif(list(reversed(findings)), [check()], catalog(), "0.1.0")
    assert first == second
    assert json.loads(first)["version"] == "2.1.0"


# Fingerprints shared by SARIF and GitLab


def test_stable_fingerprints_unique_for_repeats():
    text = "a: 1\na: 1\n"
    prints = stable_fingerprints([finding(line=1), finding(line=2)], {"compose.yaml": text})
    assert prints[0] != prints[1]
    assert prints[1] == prints[0] + ":2"


# GitHub workflow commands


def test_github_annotation_exact():
    output = render_github([finding()])
    assert output == (
        "::error file=compose.yaml,line=4,col=5,title=XG110 redis-port-published::"
        "redis publishes port 6379 on 0.0.0.0%0AFix: Bind the port to 127.0.0.1.\n"
    )


def test_github_levels():
    lines = render_github(
        [finding(severity=Severity.WARNING, line=1), finding(severity=Severity.INFO, line=2)]
    ).splitlines()
    assert lines[0].startswith("::warning ")
    assert lines[1].startswith("::notice ")


def test_github_escaping():
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a,b:c%") == "a%2Cb%3Ac%25"
    output = render_github([finding(file="dir,1/a:b.yaml", message="100% bad\nreally")])
    assert "file=dir%2C1/a%3Ab.yaml," in output
    assert "::100%25 bad%0Areally%0AFix" in output
    assert output.count("\n") == 1


def test_github_line_zero_omits_position():
    output = render_github([finding(line=0, column=0)])
    assert output.startswith("::error file=compose.yaml,title=XG110 redis-port-published::")


def test_github_sorted_output():
    output = render_github([finding(line=9), finding(line=2)])
    assert [line.split(",")[1] for line in output.splitlines()] == ["line=2", "line=9"]


def test_github_empty():
    assert render_github([]) == ""


# JUnit XML


def parse_junit(text: str) -> ET.Element:
    assert text.startswith("<?xml version='1.0' encoding='utf-8'?>")
    return ET.fromstring(text.split("?>", 1)[1].strip())


def test_junit_cases_and_counts():
    checks = [
        check(),
        check("XG101", Status.PASS, name="redis-data-volume"),
        check("XG201", Status.UNKNOWN, reason="concurrency comes from ${WORKERS}", name="worker-concurrency"),
        check("XG301", Status.NOT_APPLICABLE, name="beat-single"),
    ]
    root = parse_junit(render_junit([finding(), finding(line=5, column=7)], checks))
    assert root.tag == "testsuites"
    assert root.get("tests") == "4"
    assert root.get("failures") == "1"
    assert root.get("skipped") == "2"
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "compose.yaml"
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert set(cases) == {
        "XG101 redis-data-volume",
        "XG110 redis-port-published",
        "XG201 worker-concurrency",
        "XG301 beat-single",
    }
    assert all(case.get("classname") == "compose.yaml" for case in cases.values())

    failure = cases["XG110 redis-port-published"].find("failure")
    assert failure.get("message") == "2 findings"
    assert failure.get("type") == "error"
    assert "compose.yaml:4:5: error XG110 redis publishes port 6379 on 0.0.0.0 [service redis]" in failure.text
    assert "compose.yaml:5:7:" in failure.text

    assert list(cases["XG101 redis-data-volume"]) == []
    skipped = cases["XG201 worker-concurrency"].find("skipped")
    assert skipped.get("message") == "unknown: concurrency comes from ${WORKERS}"
    assert cases["XG301 beat-single"].find("skipped").get("message").startswith("not applicable:")


def test_junit_stack_classname():
    root = parse_junit(render_junit([finding(stack="prod")], [check(stack="prod")]))
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "prod"
    assert suite.find("testcase").get("classname") == "prod"
    assert suite.find("testcase/failure") is not None


def test_junit_failed_check_without_findings_passes():
    root = parse_junit(render_junit([], [check()]))
    case = root.find("testsuite/testcase")
    assert case.find("failure") is None
    assert "suppressed or is in the baseline" in case.find("system-out").text
    assert root.get("failures") == "0"


def test_junit_orphan_findings_get_own_case():
    meta = finding("XG008", line=3, severity=Severity.WARNING, name="bad-suppression", service=None, message="unused")
    root = parse_junit(render_junit([meta], [check("XG101", Status.PASS, name="redis-data-volume")]))
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert cases["XG008 bad-suppression"].find("failure").get("type") == "warning"
    assert root.get("tests") == "2"


def test_junit_single_finding_message_and_control_chars():
    root = parse_junit(render_junit([finding(message="bad\x01value")], [check()]))
    failure = root.find("testsuite/testcase/failure")
    assert failure.get("message") == "bad\ufffdvalue"


def test_junit_multiple_files_sorted():
    findings = [finding(file="b.yaml"), finding(file="a.yaml")]
    checks = [check(file="b.yaml"), check(file="a.yaml")]
    root = parse_junit(render_junit(findings, checks))
    assert [suite.get("name") for suite in root.findall("testsuite")] == ["a.yaml", "b.yaml"]
    for suite in root.findall("testsuite"):
        assert suite.get("failures") == "1"


def test_junit_deterministic():
    findings = [finding(file="b.yaml"), finding(file="a.yaml")]
    checks = [check(file="b.yaml"), check(file="a.yaml")]
    assert render_junit(findings, checks) == render_junit(list(reversed(findings)), list(reversed(checks)))


def test_findings_for_check_matches_file_or_stack():
    file_check = check(file="./compose.yaml")
    stack_check = check(stack="prod", file="compose.yaml")
    in_file = finding()
    in_stack = finding(stack="prod", file="compose.prod.yaml")
    other_rule = finding("XG101")
    assert findings_for_check(file_check, [in_file, in_stack, other_rule]) == [in_file]
    assert findings_for_check(stack_check, [in_file, in_stack, other_rule]) == [in_stack]


# GitLab Code Quality


def test_gitlab_fields():
    [issue] = build_gitlab([finding()], {"compose.yaml": COMPOSE})
    assert issue["check_name"] == "XG110"
    assert issue["description"] == "XG110 (redis-port-published): redis publishes port 6379 on 0.0.0.0"
    assert issue["severity"] == "major"
    assert issue["location"] == {"path": "compose.yaml", "lines": {"begin": 4}}
    assert re.fullmatch(r"[0-9a-f]{32}", issue["fingerprint"])
    assert issue["type"] == "issue"


def test_gitlab_severity_mapping():
    issues = build_gitlab(
        [finding(line=1), finding(line=2, severity=Severity.WARNING), finding(line=3, severity=Severity.INFO)]
    )
    assert [issue["severity"] for issue in issues] == ["major", "minor", "info"]


def test_gitlab_fingerprints_unique_and_stable():
    text = "a: 1\na: 1\n"
    issues = build_gitlab([finding(line=1), finding(line=2)], {"compose.yaml": text})
    assert issues[0]["fingerprint"] != issues[1]["fingerprint"]
    moved = build_gitlab([finding(line=3), finding(line=4)], {"compose.yaml": "\n\n" + text})
    assert [issue["fingerprint"] for issue in moved] == [issue["fingerprint"] for issue in issues]


def test_gitlab_render_is_json_list():
    data = json.loads(render_gitlab([finding(file="./deploy/compose.yaml")]))
    assert isinstance(data, list)
    assert data[0]["location"]["path"] == "deploy/compose.yaml"
    assert json.loads(render_gitlab([])) == []


# Statistics


def test_statistics_counts_and_order():
    findings = [
        finding("XG110"),
        finding("XG101", name="redis-data-volume"),
        finding("XG110", line=5),
        finding("XG008", name="bad-suppression"),
    ]
    rows = statistics(findings)
    assert [(row.rule, row.count) for row in rows] == [("XG110", 2), ("XG008", 1), ("XG101", 1)]
    assert rows[0].name == "redis-port-published"


def test_render_statistics():
    findings = [finding("XG110", line=line) for line in range(1, 11)] + [finding("XG101", name="redis-data-volume")]
    assert render_statistics(findings) == "10  XG110  redis-port-published\n 1  XG101  redis-data-volume\n"
    assert render_statistics([]) == ""


@pytest.mark.parametrize("status", [Status.PASS, Status.FAIL])
def test_sarif_accepts_checks_without_findings(status: Status):
    log = build_sarif([], [check(status=status)], catalog(), "0.1.0")
    jsonschema.validate(log, GITHUB_SARIF_SUBSET)
    assert log["runs"][0]["results"] == []
