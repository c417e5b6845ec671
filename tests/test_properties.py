"""Property tests: no input makes xgen-audit raise, exit with an odd code or write a broken report.

The inputs are compose documents of random shape (wrong types under every key the
rules read, tags, anchors, aliases and merge keys, deep nesting, long lists, odd
scalars), random YAML-like text, random bytes, and random Python source for the
Celery reader.

The examples are derandomized, so every run tries the same inputs. The default
profile keeps the whole module near a minute; `HYPOTHESIS_PROFILE=long` runs many
more examples for a manual search.
"""

from __future__ import annotations

import codecs
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xgen_audit.celery import analyze_celery
from xgen_audit.cli.app import app

settings.register_profile(
    "xgen-default",
    derandomize=True,
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "xgen-long",
    derandomize=True,
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
# The profile applies to this module's tests only, so other modules keep their own settings.
PROFILE = settings.get_profile("xgen-long" if os.environ.get("HYPOTHESIS_PROFILE") == "long" else "xgen-default")

FORMATS = ["text", "json", "sarif", "junit", "github", "gitlab"]
ANCHORS = ["a", "b", "c"]


# ---- a tiny YAML writer for the generated shapes -------------------------------------


class Tagged:
    def __init__(self, tag: str, value: object):
        self.tag = tag
        self.value = value


class Anchored:
    def __init__(self, name: str, value: object):
        self.name = name
        self.value = value


class Alias:
    def __init__(self, name: str):
        self.name = name


def emit(value: object) -> str:
    """Write a value as flow-style YAML."""
    if isinstance(value, Tagged):
        return f"{value.tag} {emit(value.value)}"
    if isinstance(value, Anchored):
        return f"&{value.name} {emit(value.value)}"
    if isinstance(value, Alias):
        return f"*{value.name} "
    if isinstance(value, dict):
        return "{" + ", ".join(f"{emit_key(key)}: {emit(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(emit(item) for item in value) + "]"
    if isinstance(value, Plain):
        return emit_plain(value.text)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if abs(value) == float("inf"):
            return ".inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return quote(value)


def emit_key(key: object) -> str:
    return emit_plain(key.text) if isinstance(key, Plain) else quote(str(key))


def emit_plain(text: str) -> str:
    # Flow indicators and `: ` end a plain scalar inside `[...]` and `{...}`, so such text is quoted.
    return quote(text) if any(char in text for char in ":{}[],#") else text


def quote(text: str) -> str:
    """Write a YAML double-quoted scalar; every character outside printable ASCII is escaped."""
    parts = []
    for char in text:
        code = ord(char)
        if 0x20 <= code < 0x7F and char not in '"\\':
            parts.append(char)
        elif code < 0x10000:
            parts.append(f"\\u{code:04x}")
        else:
            parts.append(f"\\U{code:08x}")
    return '"' + "".join(parts) + '"'


class Plain:
    """A plain (unquoted) scalar, so that YAML resolves it: `yes`, `0777`, `22:22`, `~`."""

    def __init__(self, text: str):
        self.text = text


ODD_PLAIN = [
    "yes", "no", "on", "off", "~", "null", "0777", "0o17", "0x1F", "1e3", ".inf", "-.inf", ".nan",
    "22:22", "8080:80/udp", "127.0.0.1:6379:6379", "0.5", "1_000", "2G", "512m", "-1", "true",
    "${VAR}", "${VAR:-x}", "${VAR:?need it}", "$${ESCAPED}", "${", "${A:-${B}}", "host", "<<",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(ODD_PLAIN).map(Plain),
    st.sampled_from(["${PORT:-80}:80", "redis-server --appendonly yes", "celery -A app worker -c 4", "./data:/data:ro"]),
)


def wrap(children):
    # A node takes one tag and one anchor at most; two of either is a syntax error every time.
    bare = children.filter(lambda value: not isinstance(value, (Tagged, Anchored)))
    return st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=10), children, max_size=5),
        st.builds(Tagged, st.sampled_from(["!reset", "!override", "!custom", "!!str", "!!int", "!!map", "!!seq"]), bare),
        st.builds(Anchored, st.sampled_from(ANCHORS), bare),
    )


junk = st.recursive(st.one_of(scalars, st.sampled_from(ANCHORS).map(Alias)), wrap, max_leaves=20)


def maybe(strategy):
    """A well-typed value for a key, or anything at all."""
    return st.one_of(strategy, junk)


port_long = st.fixed_dictionaries(
    {}, optional={"target": maybe(st.integers(0, 70000)), "published": maybe(st.text(max_size=8)), "host_ip": junk,
                  "protocol": maybe(st.sampled_from(["tcp", "udp"])), "mode": junk}
)
volume_long = st.fixed_dictionaries(
    {}, optional={"type": maybe(st.sampled_from(["bind", "volume", "tmpfs"])), "source": junk, "target": junk,
                  "read_only": junk, "bind": junk, "volume": junk}
)
healthcheck = st.fixed_dictionaries(
    {}, optional={"test": maybe(st.lists(st.text(max_size=10), max_size=4)), "interval": junk, "retries": junk,
                  "disable": junk, "start_period": junk}
)
deploy = st.fixed_dictionaries(
    {}, optional={"resources": maybe(st.fixed_dictionaries({}, optional={"limits": maybe(st.fixed_dictionaries(
        {}, optional={"cpus": junk, "memory": junk})), "reservations": junk})), "replicas": junk}
)
service = st.fixed_dictionaries(
    {},
    optional={
        "image": maybe(st.sampled_from(["redis:7", "valkey/valkey:8", "bitnami/redis", "python:3.12", "${IMG}"])),
        "build": maybe(st.one_of(st.just("."), st.fixed_dictionaries({"context": junk}))),
        "command": maybe(st.one_of(st.text(max_size=40), st.lists(st.text(max_size=10), max_size=8))),
        "entrypoint": junk,
        "ports": maybe(st.lists(st.one_of(scalars, port_long), max_size=6)),
        "expose": maybe(st.lists(scalars, max_size=4)),
        "volumes": maybe(st.lists(st.one_of(scalars, volume_long), max_size=6)),
        "environment": maybe(st.one_of(st.lists(scalars, max_size=5), st.dictionaries(st.text(max_size=10), scalars, max_size=5))),
        "env_file": maybe(st.one_of(st.text(max_size=12), st.lists(junk, max_size=3))),
        "depends_on": maybe(st.one_of(st.lists(st.text(max_size=8), max_size=3),
                                      st.dictionaries(st.text(max_size=8), st.fixed_dictionaries({}, optional={"condition": junk}), max_size=3))),
        "healthcheck": maybe(healthcheck),
        "deploy": maybe(deploy),
        "cpus": junk,
        "mem_limit": junk,
        "logging": maybe(st.fixed_dictionaries({}, optional={"driver": junk, "options": junk})),
        "network_mode": junk,
        "profiles": maybe(st.lists(scalars, max_size=3)),
        "extends": junk,
        "<<": st.sampled_from(ANCHORS).map(Alias),
    },
)
compose_document = st.fixed_dictionaries(
    {},
    optional={
        "services": maybe(st.dictionaries(st.sampled_from(["redis", "worker", "api", "beat", "x"]) | st.text(max_size=6),
                                          maybe(service), max_size=4)),
        "volumes": junk,
        "networks": junk,
        "x-common": st.builds(Anchored, st.sampled_from(ANCHORS), maybe(service)),
        "name": junk,
        "version": junk,
        "include": junk,
    },
)


def deep_document(depth: int, as_list: bool) -> str:
    opening, closing = ("[", "]") if as_list else ("{a: ", "}")
    return "services: {}\nx-deep: " + opening * depth + "1" + closing * depth + "\n"


def long_list_document(count: int) -> str:
    return "services:\n  web:\n    image: nginx\n    ports:\n" + "".join(f"      - \"{i % 65536}:80\"\n" for i in range(count))


# ---- running the command line in-process -------------------------------------------------


def check_output(output_format: str, text: str, exit_code: int) -> None:
    if output_format == "json":
        report = json.loads(text)
        assert isinstance(report["findings"], list)
    elif output_format == "sarif":
        report = json.loads(text)
        assert report["version"] == "2.1.0"
    elif output_format == "gitlab":
        assert isinstance(json.loads(text), list)
    elif output_format == "junit":
        ET.fromstring(text)
    elif output_format == "text":
        assert text.strip() or exit_code == 0


def run_check(data: bytes, output_format: str, name: str = "compose.yaml") -> None:
    folder = Path(tempfile.mkdtemp(prefix="xgen-prop-"))
    try:
        path = folder / name
        path.write_bytes(data)
        result = CliRunner().invoke(app, ["check", "--isolated", "--format", output_format, "--color", "never", str(path)])

        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code in (0, 1, 2)
        check_output(output_format, result.stdout, result.exit_code)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@PROFILE
@given(document=compose_document, output_format=st.sampled_from(FORMATS))
def test_random_compose_documents(document, output_format):
    run_check(emit(document).encode("utf-8"), output_format)


@PROFILE
@given(document=compose_document, output_format=st.sampled_from(FORMATS), override=compose_document)
def test_random_stack_with_override(document, output_format, override):
    folder = Path(tempfile.mkdtemp(prefix="xgen-prop-"))
    try:
        (folder / "compose.yaml").write_text(emit(document), encoding="utf-8")
        (folder / "compose.prod.yaml").write_text(emit(override), encoding="utf-8")
        result = CliRunner().invoke(app, ["check", "--isolated", "--format", output_format, "--color", "never", str(folder)])

        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code in (0, 1, 2)
        check_output(output_format, result.stdout, result.exit_code)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# Each example here runs two large files, so it takes a fifth of the examples.
@settings(parent=PROFILE, max_examples=max(1, PROFILE.max_examples // 5))
@given(
    kind=st.sampled_from(["map", "list"]),
    depth=st.integers(min_value=1, max_value=400),
    count=st.integers(min_value=0, max_value=3000),
    output_format=st.sampled_from(["json", "sarif"]),
)
def test_deep_nesting_and_long_lists(kind, depth, count, output_format):
    run_check(deep_document(depth, kind == "list").encode(), output_format)
    run_check(long_list_document(count).encode(), output_format)


YAML_PIECES = [
    "services:", "\n", "  ", "    ", "- ", ": ", "web", "redis", "image", "ports", "volumes", "command",
    "environment", "<<: ", "&a ", "*a", "*b", "!reset ", "!override ", "!!binary ", "!weird ", "[", "]", "{", "}",
    ",", "'", '"', "#", "\t", "---\n", "...\n", "%YAML 1.2\n", "%TAG ! tag:x,2024:\n", "|", ">-", "? ", "\\",
    "${X}", "${X:?", "$$", "8080:80", "yes", "0777", "~", "\u00e9", "\ufeff", "\x85", "\u2028", "\r", "\x00",
]


@PROFILE
@given(pieces=st.lists(st.sampled_from(YAML_PIECES) | st.text(max_size=4), max_size=60),
       output_format=st.sampled_from(FORMATS))
def test_random_yaml_like_text(pieces, output_format):
    run_check("".join(pieces).encode("utf-8", errors="surrogatepass"), output_format)


BOMS = [b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE]


@PROFILE
@given(bom=st.sampled_from(BOMS), data=st.binary(max_size=300), output_format=st.sampled_from(FORMATS))
def test_random_bytes(bom, data, output_format):
    run_check(bom + data, output_format)


PYTHON_PIECES = [
    "broker_url = ", "result_backend = ", "task_acks_late = ", "worker_prefetch_multiplier = ", "CELERY_",
    "import os\n", "from os import environ\n", "from .base import *\n", "from x import (", "os.environ[",
    "os.environ.get(", "os.getenv(", "'redis://redis:6379/0'", '"json"', "f'{x}'", "1", "True", "None", "-1",
    "[", "]", "{", "}", "(", ")", ":", ",", "\n", "    ", "def f(", "class Config:\n", "if x:\n", "else:\n",
    "lambda: 1", "**", "*", "+", " if 1 else ", "try:\n", "except Exception:\n", "del ", "global ", "async ",
    "await ", "yield ", "import celeryconfig\n", "exec(", "__import__(", "= ", "@d\n", "#", "\\\n", "\t", "\x00",
]


@PROFILE
@given(pieces=st.lists(st.sampled_from(PYTHON_PIECES) | st.text(max_size=4), max_size=60),
       spec=st.sampled_from(["app.celery_app", "app", None, "app.celery_app:app", "app:missing", ""]))
def test_random_celery_config_source(pieces, spec):
    folder = Path(tempfile.mkdtemp(prefix="xgen-prop-"))
    try:
        (folder / "app").mkdir()
        (folder / "app" / "__init__.py").write_text("", encoding="utf-8")
        (folder / "app" / "celery_app.py").write_text(
            "from celery import Celery\napp = Celery('p')\napp.config_from_object('app.celeryconfig')\n", encoding="utf-8"
        )
        (folder / "app" / "celeryconfig.py").write_bytes("".join(pieces).encode("utf-8", errors="surrogatepass"))

        analysis = analyze_celery([folder], spec, {"CELERY_BROKER_URL": None})

        assert isinstance(analysis.problems, list)
        assert isinstance(analysis.files_read, list)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
