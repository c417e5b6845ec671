"""Run `xgen-audit check` over the labelled corpus of real compose files and compare.

The corpus lives in ../shared/corpus/compose beside the repository, with hand-made
labels in LABELS.tsv. Each label column maps to one rule's verdict for the file:

| column | rule | expected verdict |
|---|---|---|
| redis_named_volume | XG101 | pass / fail / na -> not_applicable |
| redis_port_published | XG110 | yes -> fail, no -> pass, na -> not_applicable |
| worker_concurrency_set | XG301 | yes -> pass, no -> fail, na -> not_applicable |
| worker_logfile | XG501 | yes -> fail, no -> pass, na -> not_applicable |
| bind_mounts | XG601 | the number of findings |
| healthcheck_on_redis + depends_on_condition_healthy | XG202 | both yes -> pass, either no -> fail, depends na -> not_applicable |

Files are judged alone, as the labels are. Where the tool and a label differ for a
reason that is not a tool bug, the case is listed in KNOWN_DIFFERENCES with why.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xgen_audit.cli.app import app

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "compose"

pytestmark = pytest.mark.skipif(
    not (CORPUS / "LABELS.tsv").is_file(),
    reason=f"labelled corpus not found at {CORPUS} (it sits in ../shared beside the repository)",
)

WORKER_COLUMNS = ("worker_concurrency_set", "worker_logfile")
HIDDEN_WORKER_COLUMNS = (*WORKER_COLUMNS, "broker_readiness")

# Why the tool's verdict differs from a label, with the (file prefix, columns) it covers.
_DIFFERENCE_GROUPS: list[tuple[str, list[str], tuple[str, ...]]] = [
    (
        "the worker's options live in a start script or an image command that the corpus "
        "does not include, so the tool says unknown; the label counts only what the compose "
        "file shows",
        ["002", "003", "005", "006", "007", "012", "013", "017", "026", "027", "028", "031",
         "041", "042", "043", "044", "045", "046", "047", "053", "055"],
        WORKER_COLUMNS,
    ),
    (
        "nothing in the compose file shows that the service runs Celery (the image's "
        "entrypoint, supervisord or an unnamed script starts it), so the rules do not apply",
        ["004", "009", "010", "011", "019", "020", "021", "024", "029"],
        HIDDEN_WORKER_COLUMNS,
    ),
    (
        "the Redis service comes from an include or extends target that the corpus stores "
        "under another name (008, 036), so the file Compose would read is not found",
        ["007", "037"],
        ("redis_named_volume", "redis_port_published", "broker_readiness"),
    ),
    (
        "the override's redis entry only adds ports; without the base file's image the tool "
        "cannot tell it runs Redis",
        ["013"],
        ("redis_port_published", "broker_readiness"),
    ),
    (
        "the worker waits for airflow-init, which waits for Redis to be healthy, so Redis is "
        "healthy before the worker starts; the label counts only a direct dependency",
        ["052"],
        ("broker_readiness",),
    ),
    (
        "some services sit behind a profile that is not active, so Compose does not deploy "
        "them and their bind mounts are not counted; the label counts every service "
        "(`--profile '*'` checks them all)",
        ["006", "023", "034", "048"],
        ("bind_mounts",),
    ),
    (
        "a cookiecutter template whose Jinja placeholders make it invalid YAML (XG001); "
        "the labels were read from the text",
        ["035"],
        ("redis_named_volume", "redis_port_published", "worker_concurrency_set",
         "worker_logfile", "bind_mounts", "broker_readiness"),
    ),
]


def _known_differences() -> dict[tuple[str, str], str]:
    names = sorted(path.name for path in CORPUS.glob("*.yml"))
    differences: dict[tuple[str, str], str] = {}
    for reason, prefixes, columns in _DIFFERENCE_GROUPS:
        for prefix in prefixes:
            name = next(name for name in names if name.startswith(prefix + "-"))
            for column in columns:
                differences[(name, column)] = reason
    return differences


# (file, column) -> why the tool's verdict differs from the label.
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = _known_differences() if CORPUS.is_dir() else {}


def _labels() -> list[dict[str, str]]:
    with open(CORPUS / "LABELS.tsv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _expected(label: dict[str, str]) -> dict[str, object]:
    status = {"pass": "pass", "fail": "fail", "na": "not_applicable"}
    yes_fails = {"yes": "fail", "no": "pass", "na": "not_applicable"}
    yes_passes = {"yes": "pass", "no": "fail", "na": "not_applicable"}
    expected: dict[str, object] = {
        "redis_named_volume": status[label["redis_named_volume"]],
        "redis_port_published": yes_fails[label["redis_port_published"]],
        "worker_concurrency_set": yes_passes[label["worker_concurrency_set"]],
        "worker_logfile": yes_fails[label["worker_logfile"]],
        "bind_mounts": int(label["bind_mounts"]),
    }
    healthy, depends = label["healthcheck_on_redis"], label["depends_on_condition_healthy"]
    if depends == "na":
        expected["broker_readiness"] = "not_applicable"
    else:
        expected["broker_readiness"] = "pass" if healthy == "yes" and depends == "yes" else "fail"
    return expected


def _actual(report: dict) -> dict[str, object]:
    status = {check["rule"]: check["status"] for check in report["checks"]}
    return {
        "redis_named_volume": status.get("XG101"),
        "redis_port_published": status.get("XG110"),
        "worker_concurrency_set": status.get("XG301"),
        "worker_logfile": status.get("XG501"),
        "bind_mounts": sum(1 for finding in report["findings"] if finding["rule"] == "XG601"),
        "broker_readiness": status.get("XG202"),
    }


def _check(path: Path) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["check", "--format", "json", str(path)])
    return result.exit_code, (json.loads(result.stdout) if result.stdout else {})


@pytest.fixture(scope="module")
def reports() -> dict[str, tuple[int, dict]]:
    return {label["file"]: _check(CORPUS / label["file"]) for label in _labels()}


def test_every_corpus_file_checked(reports):
    files = sorted(path.name for path in CORPUS.glob("*.yml"))
    assert files, "the corpus folder has no compose files"
    for name in files:
        exit_code, report = reports.get(name) or _check(CORPUS / name)
        assert exit_code in (0, 1), f"{name}: exit code {exit_code}"
        assert report["checks"], f"{name}: no checks reported"


def test_corpus_agrees_with_labels(reports):
    disagreements = []
    for label in _labels():
        _exit_code, report = reports[label["file"]]
        expected = _expected(label)
        actual = _actual(report)
        for column, want in expected.items():
            if actual[column] != want and (label["file"], column) not in KNOWN_DIFFERENCES:
                disagreements.append(f"{label['file']} {column}: label {want}, tool {actual[column]}")
    assert disagreements == []


def test_known_differences_still_differ(reports):
    """An entry that agrees again is stale and must be removed from the list."""
    labels = {label["file"]: label for label in _labels()}
    stale = [
        f"{name} {column}"
        for (name, column) in KNOWN_DIFFERENCES
        if _actual(reports[name][1])[column] == _expected(labels[name])[column]
    ]
    assert stale == []


def test_agreement_figures(reports):
    """Count the label cells the tool agrees with; the figure goes in the release notes."""
    labels = _labels()
    cells = len(labels) * len(_expected(labels[0]))
    differing = sum(
        1
        for label in labels
        for column, want in _expected(label).items()
        if _actual(reports[label["file"]][1])[column] != want
    )
    assert differing == len(KNOWN_DIFFERENCES)
    assert cells - differing > 0.7 * cells


def test_findings_are_located(reports):
    for name, (_exit_code, report) in reports.items():
        for finding in report["findings"]:
            assert finding["line"] >= 1, f"{name}: {finding}"
            assert finding["column"] >= 1, f"{name}: {finding}"
            assert finding["file"].endswith(name)
