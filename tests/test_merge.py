"""Multi-file merge, extends, include, profiles, `.env` reading and stack discovery."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from xgen_audit.compose.dotenv import compose_selection, parse_dotenv
from xgen_audit.compose.merge import (
    apply_profiles,
    load_compose,
    merge_trees,
    parse_port_text,
    parse_volume_text,
    PortBinding,
)
from xgen_audit.compose.stacks import (
    DEVELOPMENT,
    PRODUCTION,
    discover_stacks,
    load_stack,
    stack_from_files,
    stacks_from_config,
)
from xgen_audit.parse.tree import YMap, YSeq, to_plain
from xgen_audit.parse.yaml_reader import read_yaml_file

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stacks"


def _tree(text: str, name: str):
    return read_yaml_file(text.encode(), name).root


def _write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def _service(root: YMap, name: str) -> YMap:
    service = root.get("services").get(name)
    assert isinstance(service, YMap)
    return service


def test_scalar_override_keeps_origin() -> None:
    base = _tree("services:\n  r:\n    image: redis:6\n    restart: always\n", "a.yml")
    override = _tree("services:\n  r:\n    image: redis:7\n", "b.yml")
    root, problems = merge_trees([base, override])
    service = _service(root, "r")
    assert problems == []
    assert service.get("image").value == "redis:7"
    assert service.get("image").loc.file == "b.yml"
    assert service.get("image").loc.line == 3
    assert service.get("restart").loc.file == "a.yml"


def test_ports_concatenate_and_dedupe() -> None:
    base = _tree('services:\n  r:\n    ports: ["6379:6379", "8001:8001"]\n', "a.yml")
    override = _tree(
        'services:\n  r:\n    ports: ["127.0.0.1:6379:6379", {target: 8001, published: "8001"}]\n',
        "b.yml",
    )
    root, _ = merge_trees([base, override])
    ports = _service(root, "r").get("ports")
    texts = [to_plain(item) for item in ports.items]
    assert texts == ["6379:6379", {"target": 8001, "published": "8001"}, "127.0.0.1:6379:6379"]
    assert ports.items[1].loc.file == "b.yml"


def test_volumes_dedupe_by_target() -> None:
    base = _tree("services:\n  r:\n    volumes: ['./data:/data', 'logs:/logs']\n", "a.yml")
    override = _tree("services:\n  r:\n    volumes: ['redis-data:/data']\n", "b.yml")
    root, _ = merge_trees([base, override])
    volumes = [to_plain(item) for item in _service(root, "r").get("volumes").items]
    assert volumes == ["redis-data:/data", "logs:/logs"]


def test_environment_list_and_map_merge() -> None:
    base = _tree("services:\n  w:\n    environment: [A=1, B=2]\n", "a.yml")
    override = _tree("services:\n  w:\n    environment:\n      B: '3'\n      C:\n", "b.yml")
    root, _ = merge_trees([base, override])
    environment = _service(root, "w").get("environment")
    assert to_plain(environment) == {"A": "1", "B": "3", "C": None}
    assert environment.get("A").loc.file == "a.yml"
    assert environment.get("B").loc.file == "b.yml"


def test_command_is_replaced() -> None:
    base = _tree("services:\n  w:\n    command: [celery, worker]\n", "a.yml")
    override = _tree("services:\n  w:\n    command: celery worker -l debug\n", "b.yml")
    root, _ = merge_trees([base, override])
    assert _service(root, "w").get("command").value == "celery worker -l debug"


def test_null_override_keeps_base() -> None:
    base = _tree("services:\n  w:\n    image: app\n", "a.yml")
    override = _tree("services:\n  w:\n    image:\n", "b.yml")
    root, _ = merge_trees([base, override])
    assert _service(root, "w").get("image").value == "app"


def test_depends_on_short_to_long() -> None:
    base = _tree("services:\n  w:\n    depends_on: [redis, db]\n", "a.yml")
    override = _tree(
        "services:\n  w:\n    depends_on:\n      redis:\n        condition: service_healthy\n",
        "b.yml",
    )
    root, _ = merge_trees([base, override])
    assert to_plain(_service(root, "w").get("depends_on")) == {
        "redis": {"condition": "service_healthy", "required": True},
        "db": {"condition": "service_started", "required": True},
    }


def test_logging_driver_change_replaces() -> None:
    base = _tree("services:\n  w:\n    logging: {driver: json-file, options: {max-size: 1m}}\n", "a")
    same = _tree("services:\n  w:\n    logging: {options: {max-file: '3'}}\n", "b")
    other = _tree("services:\n  w:\n    logging: {driver: syslog}\n", "c")
    merged, _ = merge_trees([base, same])
    replaced, _ = merge_trees([base, other])
    assert to_plain(_service(merged, "w").get("logging")) == {
        "driver": "json-file",
        "options": {"max-size": "1m", "max-file": "3"},
    }
    assert to_plain(_service(replaced, "w").get("logging")) == {"driver": "syslog"}


def test_build_string_becomes_context() -> None:
    base = _tree("services:\n  w:\n    build: ./app\n", "a")
    override = _tree("services:\n  w:\n    build: {target: prod}\n", "b")
    root, _ = merge_trees([base, override])
    assert to_plain(_service(root, "w").get("build")) == {"context": "./app", "target": "prod"}


def test_reset_removes_and_override_replaces() -> None:
    base = _tree('services:\n  r:\n    ports: ["6379:6379"]\n    volumes: ["./d:/data"]\n', "a")
    override = _tree(
        "services:\n  r:\n    ports: !reset []\n    volumes: !override ['redis:/data']\n", "b"
    )
    root, _ = merge_trees([base, override])
    service = _service(root, "r")
    assert "ports" not in service
    volumes = service.get("volumes")
    assert isinstance(volumes, YSeq)
    assert volumes.tag != "!override"
    assert [to_plain(item) for item in volumes.items] == ["redis:/data"]


def test_type_mismatch_is_problem() -> None:
    base = _tree("services:\n  r:\n    x-opts: [a]\n", "a")
    override = _tree("services:\n  r:\n    x-opts: {b: 1}\n", "b")
    root, problems = merge_trees([base, override])
    assert len(problems) == 1
    assert "cannot override services.r.x-opts" in problems[0].message
    assert problems[0].loc.file == "b"
    assert to_plain(_service(root, "r").get("x-opts")) == ["a"]


def test_merge_leaves_inputs_unchanged() -> None:
    base = _tree("services:\n  r:\n    ports: ['1:1']\n", "a")
    override = _tree("services:\n  r:\n    ports: ['2:2']\n", "b")
    merge_trees([base, override])
    assert to_plain(base) == {"services": {"r": {"ports": ["1:1"]}}}


def test_profiles_drop_inactive_services() -> None:
    root = _tree(
        "services:\n  a: {image: x}\n  b: {image: x, profiles: [debug]}\n"
        "  c: {image: x, profiles: [tools, debug]}\n",
        "f",
    )
    kept, dropped = apply_profiles(root, [])
    assert list(kept.get("services").entries) == ["a"]
    assert dropped == {"b": ("debug",), "c": ("tools", "debug")}
    kept, dropped = apply_profiles(root, ["tools"])
    assert list(kept.get("services").entries) == ["a", "c"]
    assert dropped == {"b": ("debug",)}


def test_extends_other_file_and_chain(tmp_path: Path) -> None:
    _write(tmp_path, "lib/base.yml", "services:\n  b:\n    image: redis\n    volumes: ['./conf:/c']\n")
    main = _write(
        tmp_path,
        "compose.yaml",
        "services:\n  r:\n    extends: {file: lib/base.yml, service: b}\n    command: x\n"
        "  s:\n    extends: r\n",
    )
    result = load_compose([main], {})
    assert result.problems == []
    redis = _service(result.root, "r")
    assert "extends" not in redis
    assert redis.get("image").loc.file.endswith("base.yml")
    assert to_plain(redis.get("volumes")) == [f"{tmp_path / 'lib' / 'conf'}:/c"]
    second = _service(result.root, "s")
    assert second.get("command").value == "x"
    assert second.get("image").value == "redis"


def test_extends_cycle_is_problem(tmp_path: Path) -> None:
    main = _write(
        tmp_path,
        "compose.yaml",
        "services:\n  a:\n    extends: b\n  b:\n    extends: a\n",
    )
    result = load_compose([main], {})
    assert any("extends cycle" in problem.message for problem in result.problems)


def test_extends_missing_file_is_problem(tmp_path: Path) -> None:
    main = _write(
        tmp_path, "compose.yaml", "services:\n  a:\n    extends: {file: nope.yml, service: x}\n"
    )
    result = load_compose([main], {})
    assert len(result.problems) == 1
    assert "file not found" in result.problems[0].message
    assert result.problems[0].loc.line == 3


def test_include_uses_own_env_file(tmp_path: Path) -> None:
    _write(tmp_path, "sub/compose.yaml", 'services:\n  c:\n    image: "redis:${TAG}"\n')
    _write(tmp_path, "sub/.env", "TAG=7\n")
    main = _write(tmp_path, "compose.yaml", "include: [sub/compose.yaml]\nservices:\n  w: {image: x}\n")
    result = load_compose([main], {})
    assert result.problems == []
    assert _service(result.root, "c").get("image").value == "redis:7"
    assert "include" not in result.root


def test_include_cycle_is_problem(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.yml", "include: [b.yml]\nservices: {}\n")
    _write(tmp_path, "b.yml", "include: [a.yml]\nservices: {}\n")
    result = load_compose([first], {})
    assert any("include cycle" in problem.message for problem in result.problems)


def test_invalid_yaml_is_problem(tmp_path: Path) -> None:
    path = _write(tmp_path, "compose.yaml", "services:\n  a: [\n")
    result = load_compose([path], {})
    assert len(result.problems) == 1
    assert result.problems[0].loc.file == path


def test_interpolation_problems_located(tmp_path: Path) -> None:
    path = _write(tmp_path, "compose.yaml", 'services:\n  r:\n    ports: ["${IP}:6379:6379"]\n')
    result = load_compose([path], {})
    assert [(p.variable, p.loc.line) for p in result.interpolation_problems] == [("IP", 3)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6379", [PortBinding("", "", 6379, "tcp")]),
        ("127.0.0.1:6379:6379", [PortBinding("127.0.0.1", "6379", 6379, "tcp")]),
        ("::1:6379:6379", [PortBinding("::1", "6379", 6379, "tcp")]),
        ("[::1]:6379:6379/udp", [PortBinding("::1", "6379", 6379, "udp")]),
        ("8000-9000:80", [PortBinding("", "8000-9000", 80, "tcp")]),
        ("127.0.0.1::6379", [PortBinding("127.0.0.1", "", 6379, "tcp")]),
        (
            "7000-7001:7000-7001",
            [PortBinding("", "7000", 7000, "tcp"), PortBinding("", "7001", 7001, "tcp")],
        ),
        ("6379/http", None),
    ],
)
def test_parse_port_text(text: str, expected) -> None:
    assert parse_port_text(text) == expected


@pytest.mark.parametrize(
    ("text", "kind", "source", "target"),
    [
        ("/data", "volume", "", "/data"),
        ("data:/data", "volume", "data", "/data"),
        ("./data:/data:ro", "bind", "./data", "/data"),
        ("~/x:/x", "bind", "~/x", "/x"),
        ("/srv/redis:/data/", "bind", "/srv/redis", "/data"),
    ],
)
def test_parse_volume_text(text: str, kind: str, source: str, target: str) -> None:
    mount = parse_volume_text(text)
    assert mount is not None
    assert mount.type == kind
    assert mount.source == source
    assert mount.target == target


def test_dotenv_forms() -> None:
    text = (
        "# comment\nA=plain  # note\nB=x#y\nexport C=exp\nD='lit $A'\n"
        'E="dq $A \\$A\\n"\nF=${OS_ONLY}\nG\n'
    )
    parsed = parse_dotenv(text, ".env", {"OS_ONLY": "os", "G": "g"})
    values = parsed.values
    assert values["A"] == "plain"
    assert values["B"] == "x#y"
    assert values["C"] == "exp"
    assert values["D"] == "lit $A"
    assert values["E"] == "dq plain $A\n"
    assert values["F"] == "os"
    assert values["G"] == "g"
    assert parsed.line_of("C") == 4
    assert parsed.problems == []


def test_dotenv_invalid_line() -> None:
    parsed = parse_dotenv("=oops\nOK=1\n")
    assert parsed.values == {"OK": "1"}
    assert parsed.problems[0].line == 1


def test_compose_selection_separator() -> None:
    selection = compose_selection(
        {"COMPOSE_FILE": "a.yml;b.yml", "COMPOSE_PATH_SEPARATOR": ";", "COMPOSE_PROFILES": "x, y"}
    )
    assert selection.files == ("a.yml", "b.yml")
    assert selection.profiles == ("x", "y")


def test_discover_prod_reset_fixture() -> None:
    stacks = discover_stacks(FIXTURES / "prod-reset", {})
    assert [(stack.name, stack.environment) for stack in stacks] == [
        ("compose.yaml+compose.override.yml", DEVELOPMENT),
        ("compose.yaml+compose.prod.yaml", PRODUCTION),
    ]


def test_discover_base_alone_is_production(tmp_path: Path) -> None:
    _write(tmp_path, "docker-compose.yml", "services: {}\n")
    _write(tmp_path, "docker-compose.override.yml", "services: {}\n")
    stacks = discover_stacks(tmp_path, {})
    assert [(stack.name, stack.environment) for stack in stacks] == [
        ("docker-compose.yml", PRODUCTION),
        ("docker-compose.yml+docker-compose.override.yml", DEVELOPMENT),
    ]


def test_discover_prefers_compose_yaml(tmp_path: Path) -> None:
    _write(tmp_path, "compose.yaml", "services: {}\n")
    _write(tmp_path, "docker-compose.yml", "services: {}\n")
    stacks = discover_stacks(tmp_path, {})
    assert [stack.files for stack in stacks] == [(str(tmp_path / "compose.yaml"),)]


def test_discover_compose_file_from_env(tmp_path: Path) -> None:
    _write(tmp_path, "compose.yaml", "services: {}\n")
    _write(tmp_path, "a.yml", "services: {}\n")
    _write(tmp_path, ".env", "COMPOSE_FILE=compose.yaml:a.yml\nCOMPOSE_PROFILES=debug\n")
    stacks = discover_stacks(tmp_path, {})
    assert len(stacks) == 1
    assert stacks[0].files == (str(tmp_path / "compose.yaml"), str(tmp_path / "a.yml"))
    assert stacks[0].profiles == ("debug",)


def test_prod_reset_fixture_drops_port() -> None:
    stacks = {stack.environment: stack for stack in discover_stacks(FIXTURES / "prod-reset", {})}
    production = load_stack(stacks[PRODUCTION], {})
    development = load_stack(stacks[DEVELOPMENT], {})
    assert "ports" not in _service(production.merge.root, "redis")
    assert [to_plain(i) for i in _service(production.merge.root, "redis").get("volumes").items] == [
        "redis-data:/data"
    ]
    assert len(_service(development.merge.root, "redis").get("ports").items) == 2


def test_env_port_fixture_uses_dotenv() -> None:
    stack = discover_stacks(FIXTURES / "env-port", {})[0]
    loaded = load_stack(stack, {})
    port = _service(loaded.merge.root, "redis").get("ports").items[0]
    assert port.value == "0.0.0.0:6380:6379"
    assert port.raw == "${REDIS_BIND:-0.0.0.0}:${REDIS_PORT:-6379}:6379"
    assert loaded.variables["REDIS_PORT"] == "6380"


def test_process_env_beats_dotenv() -> None:
    stack = discover_stacks(FIXTURES / "env-port", {})[0]
    loaded = load_stack(stack, {"REDIS_PORT": "7000"})
    port = _service(loaded.merge.root, "redis").get("ports").items[0]
    assert port.value == "0.0.0.0:7000:6379"


def test_debug_profile_reported_dropped() -> None:
    stack = discover_stacks(FIXTURES / "debug-profile", {})[0]
    loaded = load_stack(stack, {})
    assert loaded.merge.dropped_services == {
        "commander": ("debug", "tools"),
        "redis-debug": ("debug",),
    }


def test_stacks_from_config(tmp_path: Path) -> None:
    stacks = stacks_from_config(
        {"prod": {"files": ["a.yml", "b.yml"], "profiles": ["p"]}, "dev": {"files": ["a.yml"], "env": "development"}},
        tmp_path,
    )
    assert [stack.name for stack in stacks] == ["dev", "prod"]
    assert stacks[1].files == (str(tmp_path / "a.yml"), str(tmp_path / "b.yml"))
    assert stacks[1].profiles == ("p",)
    assert stacks[0].environment == DEVELOPMENT


def test_stacks_from_config_rejects_shape() -> None:
    with pytest.raises(ValidationError):
        stacks_from_config({"prod": {"files": []}})


def test_stack_from_files_order(tmp_path: Path) -> None:
    stack = stack_from_files([tmp_path / "b.yml", tmp_path / "a.yml"])
    assert stack.files == (str(tmp_path / "b.yml"), str(tmp_path / "a.yml"))
    assert stack.name == "b.yml+a.yml"
