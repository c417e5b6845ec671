"""Automatic fixes: golden files, layout preservation, safety checks before writing."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xgen_audit.audit import AuditOptions, audit_file
from xgen_audit.config import Settings
from xgen_audit.fix import apply_edits, plan_fixes, unified_diff
from xgen_audit.fix import planner
from xgen_audit.fix.python_fixes import PythonFixError, set_retry_on_startup
from xgen_audit.fix.yamldoc import detect_layout, lines_outside
from xgen_audit.parse.yaml_reader import parse_yaml_text
from xgen_audit.pipeline import RunRequest, run

ROOT = Path(__file__).resolve().parent.parent
FIXES = ROOT / "fixtures" / "fix"
CASES = ["XG003", "XG101", "XG102", "XG110", "XG202", "anchors"]


@pytest.fixture(autouse=True)
def _inside(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def copy_case(name: str, tmp_path: Path) -> Path:
    source = ROOT / "fixtures" / "xgenerator" if name == "xgenerator" else FIXES / name
    target = tmp_path / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.golden"))
    return target


def findings_in(folder: Path):
    outcome = run(RunRequest(paths=[folder], settings=Settings(project_root=folder)))
    return outcome


def fix_folder(folder: Path, unsafe: bool):
    outcome = findings_in(folder)
    edits = plan_fixes(outcome.result.findings, unsafe=unsafe, files_text=outcome.files_text)
    return edits, apply_edits(edits)


def rules_left(folder: Path) -> set[str]:
    return {finding.rule for finding in findings_in(folder).result.findings}


def comments(text: str) -> Counter:
    return Counter(match.strip() for match in re.findall(r"#[^\r\n]*", text))


# ---------------------------------------------------------------------------
# Golden files


@pytest.mark.parametrize("unsafe", [False, True], ids=["safe", "unsafe"])
@pytest.mark.parametrize("case", [*CASES, "xgenerator"])
def test_fix_matches_golden(case, unsafe, tmp_path):
    folder = copy_case(case, tmp_path)
    fix_folder(folder, unsafe)
    golden = FIXES / case / f"after-{'unsafe' if unsafe else 'safe'}.yml.golden"
    assert (folder / "docker-compose.yml").read_text() == golden.read_text()


@pytest.mark.parametrize("unsafe", [False, True], ids=["safe", "unsafe"])
@pytest.mark.parametrize("case", [*CASES, "xgenerator"])
def test_second_run_changes_nothing(case, unsafe, tmp_path):
    folder = copy_case(case, tmp_path)
    fix_folder(folder, unsafe)
    once = (folder / "docker-compose.yml").read_bytes()
    edits, report = fix_folder(folder, unsafe)
    assert not any(edit.changed for edit in edits)
    assert report.written == []
    assert (folder / "docker-compose.yml").read_bytes() == once


def test_safe_fixes_remove_their_findings(tmp_path):
    folder = copy_case("xgenerator", tmp_path)
    assert {"XG101", "XG110", "XG202"} <= rules_left(folder)
    fix_folder(folder, unsafe=False)
    left = rules_left(folder)
    assert "XG101" not in left
    assert "XG110" in left
    assert "XG202" in left


def test_unsafe_fixes_remove_their_findings(tmp_path):
    folder = copy_case("xgenerator", tmp_path)
    fix_folder(folder, unsafe=True)
    left = rules_left(folder)
    assert "XG110" not in left
    assert "XG202" not in left
    assert "XG101" not in left


def test_unsafe_fix_needs_the_flag(tmp_path):
    folder = copy_case("XG110", tmp_path)
    before = (folder / "docker-compose.yml").read_text()
    edits, report = fix_folder(folder, unsafe=False)
    reasons = [item.reason for item in report.not_fixed if item.finding.rule == "XG110"]
    assert reasons
    assert "--unsafe-fixes" in reasons[0]
    assert (folder / "docker-compose.yml").read_text() == before


def test_fixes_carry_rule_safety(tmp_path):
    folder = copy_case("xgenerator", tmp_path)
    _edits, report = fix_folder(folder, unsafe=True)
    safety = {fix.finding.rule: fix.safety for fix in report.fixed}
    assert safety["XG101"] == "safe"
    assert safety["XG110"] == "unsafe"
    assert safety["XG202"] == "unsafe"


def test_anchor_value_is_not_edited(tmp_path):
    folder = copy_case("anchors", tmp_path)
    _edits, report = fix_folder(folder, unsafe=True)
    reasons = [item.reason for item in report.not_fixed if item.finding.rule == "XG110"]
    assert reasons
    assert "merge key" in reasons[0]
    assert '    - "6379:6379"' in (folder / "docker-compose.yml").read_text()


def test_diff_writes_nothing(tmp_path):
    folder = copy_case("xgenerator", tmp_path)
    before = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
    outcome = findings_in(folder)
    diff = unified_diff(plan_fixes(outcome.result.findings, unsafe=True, files_text=outcome.files_text))
    after = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
    assert after == before
    assert diff.startswith("--- a/")
    assert "+      - redis-data:/data" in diff
    assert '-      - "6379:6379"' in diff


# ---------------------------------------------------------------------------
# Line endings and file edges


def test_crlf_file_keeps_crlf(tmp_path):
    folder = copy_case("XG101", tmp_path)
    compose = folder / "docker-compose.yml"
    compose.write_bytes(compose.read_bytes().replace(b"\n", b"\r\n"))
    fix_folder(folder, unsafe=False)
    data = compose.read_bytes()
    golden = (FIXES / "XG101" / "after-safe.yml.golden").read_bytes()
    assert data == golden.replace(b"\n", b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_missing_final_newline_stays_missing(tmp_path):
    folder = copy_case("XG003", tmp_path)
    compose = folder / "docker-compose.yml"
    compose.write_text(compose.read_text().rstrip("\n"))
    fix_folder(folder, unsafe=False)
    golden = (FIXES / "XG003" / "after-safe.yml.golden").read_text()
    assert compose.read_text() == golden.rstrip("\n")


def test_mixed_line_endings_rejected(tmp_path):
    folder = copy_case("XG003", tmp_path)
    compose = folder / "docker-compose.yml"
    compose.write_bytes(compose.read_bytes().replace(b"\n", b"\r\n", 2))
    before = compose.read_bytes()
    _edits, report = fix_folder(folder, unsafe=False)
    assert report.written == []
    assert any("line endings" in item.reason for item in report.skipped)
    assert compose.read_bytes() == before


def test_layout_detects_dash_at_key_level():
    layout = detect_layout("services:\n    redis:\n        ports:\n        - 1:1\n")
    assert layout.mapping == 4
    assert layout.offset == 0
    assert layout.sequence == 2


def test_fix_keeps_four_space_indentation(tmp_path):
    folder = tmp_path / "four"
    folder.mkdir()
    compose = folder / "docker-compose.yml"
    compose.write_text("services:\n    redis:\n        image: redis:7\n        ports:\n        - 127.0.0.1:6379:6379\n")
    fix_folder(folder, unsafe=False)
    assert compose.read_text() == (
        "services:\n    redis:\n        image: redis:7\n        ports:\n        - 127.0.0.1:6379:6379\n"
        "        volumes:\n        - redis-data:/data\nvolumes:\n    redis-data:\n"
    )


# ---------------------------------------------------------------------------
# Refusals: read-only files, results that do not parse or do not fix


def test_read_only_file_untouched(tmp_path, monkeypatch):
    folder = copy_case("XG003", tmp_path)
    compose = folder / "docker-compose.yml"
    before = compose.read_bytes()
    compose.chmod(0o444)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # root may write a mode-444 file, so the permission check is made to return what a user gets.
        real_access = os.access
        monkeypatch.setattr(
            planner.os,
            "access",
            lambda path, mode: False if mode == os.W_OK and Path(path).name == compose.name else real_access(path, mode),
        )
    _edits, report = fix_folder(folder, unsafe=False)
    assert report.written == []
    assert [Path(item.path).name for item in report.skipped] == ["docker-compose.yml"]
    assert "read-only" in report.skipped[0].reason
    assert compose.read_bytes() == before


def test_unparsable_result_left_untouched(tmp_path, monkeypatch):
    folder = copy_case("XG003", tmp_path)
    compose = folder / "docker-compose.yml"
    before = compose.read_bytes()
    real_dump = planner.dump_document
    # Break only the edited line, so that the line check passes and the parse check must catch it.
    monkeypatch.setattr(planner, "dump_document", lambda document: real_dump(document).replace('"22:22"', '"22:22'))
    edits, report = fix_folder(folder, unsafe=False)
    assert edits[0].problem is not None
    assert "would not parse" in edits[0].problem
    assert report.written == []
    assert compose.read_bytes() == before


def test_fix_that_misses_is_left_untouched(tmp_path, monkeypatch):
    from xgen_audit.fix.compose_fixes import FIXERS, FixResult

    def wrong_port(context, finding):
        ports = context.document.root["services"]["sftp"]["ports"]
        ports[0] = "23:23"
        return FixResult("changed the port", [(finding.line, finding.line)])

    monkeypatch.setitem(FIXERS, "XG003", wrong_port)
    folder = copy_case("XG003", tmp_path)
    compose = folder / "docker-compose.yml"
    before = compose.read_bytes()
    _edits, report = fix_folder(folder, unsafe=False)
    assert report.written == []
    assert "did not remove XG003" in report.skipped[0].reason
    assert compose.read_bytes() == before
    assert [path.name for path in folder.iterdir() if "xgen-audit" in path.name] == []


def test_file_changed_since_check_untouched(tmp_path):
    folder = copy_case("XG003", tmp_path)
    outcome = findings_in(folder)
    edits = plan_fixes(outcome.result.findings, files_text=outcome.files_text)
    compose = folder / "docker-compose.yml"
    compose.write_text(compose.read_text() + "# edited meanwhile\n")
    report = apply_edits(edits)
    assert report.written == []
    assert "changed since" in report.skipped[0].reason


def test_lines_outside_regions_reported():
    original = "a\nb\nc\nd\ne\n"
    new = "a\nB\nc\nd\nE\n"
    assert lines_outside(original, new, [(2, 2)]) == [5]
    assert lines_outside(original, new, [(2, 2), (5, 5)]) == []


def test_file_mode_kept(tmp_path):
    folder = copy_case("XG003", tmp_path)
    compose = folder / "docker-compose.yml"
    compose.chmod(0o640)
    _edits, report = fix_folder(folder, unsafe=False)
    assert report.written == ["docker-compose.yml"] or report.written
    assert compose.stat().st_mode & 0o777 == 0o640


# ---------------------------------------------------------------------------
# Property: comments stay, only the intended lines change


_WORDS = st.text(alphabet="abcdefghij klmnop", min_size=1, max_size=12).map(str.strip).filter(bool)


@st.composite
def compose_files(draw):
    """A compose file with comments, blank lines, a flow list, an anchor and a Redis to fix."""
    lines = [f"# {draw(_WORDS)}"] if draw(st.booleans()) else []
    anchor = draw(st.booleans())
    if anchor:
        lines += ["x-common: &common", "  restart: always", ""]
    lines.append("services:")
    count = draw(st.integers(min_value=0, max_value=3))
    for number in range(count):
        lines.append(f"  app{number}:")
        if draw(st.booleans()):
            lines.append(f"    # {draw(_WORDS)}")
        lines.append(f"    image: example/app{number}:1   # {draw(_WORDS)}")
        if anchor and draw(st.booleans()):
            lines.append("    <<: *common")
        if draw(st.booleans()):
            lines.append(f"    command: [\"run\", \"{draw(_WORDS)}\"]")
        if draw(st.booleans()):
            lines.append("    ports:")
            lines.append(f"      - {draw(st.integers(1, 50))}:{draw(st.integers(10, 59))}   # {draw(_WORDS)}")
        if draw(st.booleans()):
            lines.append("")
    lines.append("  redis:")
    lines.append(f"    image: redis:7   # {draw(_WORDS)}")
    if draw(st.booleans()):
        lines.append(f"    # {draw(_WORDS)}")
    if draw(st.booleans()):
        lines.append("")
        lines.append(f"# {draw(_WORDS)}")
    crlf = draw(st.booleans())
    final_newline = draw(st.booleans())
    text = "\n".join(lines) + ("\n" if final_newline else "")
    return text.replace("\n", "\r\n") if crlf else text


@settings(derandomize=True, database=None, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(compose_files())
def test_fixes_keep_comments_and_lines(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "docker-compose.yml"
        path.write_bytes(text.encode())
        edits, report = fix_folder(Path(folder), unsafe=False)
        new = path.read_bytes().decode()

        assert report.skipped == []
        assert comments(new) == comments(text)
        parse_yaml_text(new, "docker-compose.yml")
        assert rules_left(Path(folder)).isdisjoint({"XG003", "XG101"})
        assert ("\r\n" in new) == ("\r\n" in text)
        assert new.endswith("\n") == text.endswith("\n")

        before = text.replace("\r\n", "\n").split("\n")
        after = new.replace("\r\n", "\n").split("\n")
        removed = Counter(before) - Counter(after)
        added = Counter(after) - Counter(before)
        # Only port lines are rewritten (quoted); everything else is added.
        assert all(re.match(r"^      - \d+:\d+   #", line) for line in removed)
        allowed = re.compile(r'^(      - "\d+:\d+"\s+#.*|    volumes:|      - redis-data:/data|volumes:|  redis-data:|)$')
        assert all(allowed.match(line) for line in added), added


# ---------------------------------------------------------------------------
# XG201: broker_connection_retry_on_startup in Celery configuration modules


def test_retry_setting_changed_in_place():
    source = "broker_url = 'redis://redis'\nbroker_connection_retry_on_startup = False  # keep\n"
    edit = set_retry_on_startup(source)
    assert edit.changed
    assert edit.text == "broker_url = 'redis://redis'\nbroker_connection_retry_on_startup = True  # keep\n"


def test_retry_setting_already_true():
    source = "broker_connection_retry_on_startup = True\n"
    edit = set_retry_on_startup(source)
    assert not edit.changed
    assert edit.text == source


def test_retry_setting_added_to_config_module():
    source = (FIXES.parent / "xgenerator" / "app" / "celeryconfig.py").read_text()
    edit = set_retry_on_startup(source)
    assert edit.text == source + "broker_connection_retry_on_startup = True\n"
    assert set_retry_on_startup(edit.text).changed is False


def test_retry_setting_django_style():
    source = "import os\n\nCELERY_BROKER_URL = os.environ['URL']\nCELERY_TASK_ACKS_LATE = True\nDEBUG = False\n"
    edit = set_retry_on_startup(source)
    assert edit.text == (
        "import os\n\nCELERY_BROKER_URL = os.environ['URL']\nCELERY_TASK_ACKS_LATE = True\n"
        "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True\nDEBUG = False\n"
    )


def test_retry_setting_after_config_load():
    source = (FIXES.parent / "xgenerator" / "app" / "celery_app.py").read_text()
    line = source.splitlines().index(next(row for row in source.splitlines() if "Celery(" in row)) + 1
    edit = set_retry_on_startup(source, line)
    assert edit.text == source.replace(
        'app.config_from_object("app.celeryconfig")\n',
        'app.config_from_object("app.celeryconfig")\napp.conf.broker_connection_retry_on_startup = True\n',
    )


def test_retry_keyword_added_to_update_call():
    source = "from celery import Celery\napp = Celery('x')\napp.conf.update(\n    broker_url='redis://',\n    task_acks_late=True,\n)\n"
    edit = set_retry_on_startup(source)
    assert edit.text == (
        "from celery import Celery\napp = Celery('x')\napp.conf.update(\n    broker_url='redis://',\n"
        "    task_acks_late=True,\n    broker_connection_retry_on_startup=True,\n)\n"
    )


def test_retry_keyword_changed_in_update_call():
    source = "app.conf.update(broker_url='redis://', broker_connection_retry_on_startup=False)\n"
    edit = set_retry_on_startup(source)
    assert edit.text == "app.conf.update(broker_url='redis://', broker_connection_retry_on_startup=True)\n"


def test_retry_dict_entry_added_in_quote_style():
    source = "app.conf.update({\n    'broker_url': 'redis://',\n})\n"
    edit = set_retry_on_startup(source)
    assert edit.text == "app.conf.update({\n    'broker_url': 'redis://',\n    'broker_connection_retry_on_startup': True,\n})\n"


def test_retry_setting_without_place_rejected():
    with pytest.raises(PythonFixError):
        set_retry_on_startup("print('hello')\n")


def test_retry_setting_invalid_python_rejected():
    with pytest.raises(PythonFixError):
        set_retry_on_startup("def broken(:\n")


def test_diff_leaves_out_edit_that_writing_refuses(tmp_path, monkeypatch):
    """--diff runs the same checks as --fix, so it never shows an edit --fix would refuse."""
    folder = copy_case("XG003", tmp_path)
    compose = folder / "docker-compose.yml"
    before = compose.read_bytes()
    names_before = sorted(path.name for path in folder.iterdir())
    monkeypatch.setattr(planner, "_recheck", lambda edit, fixed_copy: "the fix did not remove XG003")
    monkeypatch.chdir(folder)
    findings, _checks = audit_file(Path("docker-compose.yml"), AuditOptions())
    edits = plan_fixes(findings, unsafe=False)
    assert unified_diff(edits)
    verified = planner.verify_edits(edits)
    assert unified_diff(verified) == ""
    assert verified[0].problem == "the fix did not remove XG003"
    assert compose.read_bytes() == before
    assert sorted(path.name for path in folder.iterdir()) == names_before
