"""The static Celery reader must agree with what real Celery makes of the same files.

Each case writes a small project into a temporary folder, and the static reader
reads it. Then a subprocess (this test's harness, not the product) imports the
case's own app module with real Celery and prints `app.conf.<name>` for each
setting the rules read. Where the static value is known the two must be equal;
where the case says the value cannot be known statically, the reader must say
unknown; everywhere else it must know the value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from xgen_audit.celery import analyze_celery

RULE_SETTINGS = (
    "broker_connection_retry_on_startup",
    "broker_connection_retry",
    "task_acks_late",
    "task_reject_on_worker_lost",
    "worker_prefetch_multiplier",
    "worker_concurrency",
    "broker_transport_options",
    "result_backend",
    "task_time_limit",
    "broker_url",
)

# Imports the case's app with real Celery and prints the settings as JSON.
HARNESS = textwrap.dedent(
    """
    import json, sys
    from celery.app.utils import find_app
    names = json.loads(sys.argv[2])
    app = find_app(sys.argv[1])
    try:
        values = {name: getattr(app.conf, name) for name in names}
    except Exception as error:
        print(json.dumps({"error": type(error).__name__}))
    else:
        print(json.dumps({"values": values}, default=repr))
    """
)

# A stand-in for `django.conf` (Django is not a dependency): like Django, it
# keeps only the UPPERCASE names of the module named by DJANGO_SETTINGS_MODULE.
FAKE_DJANGO = {
    "django/__init__.py": "VERSION = (5, 2, 0, 'final', 0)\n",
    "django/conf.py": textwrap.dedent(
        """
        import importlib
        import os


        class _Settings:
            def __init__(self):
                module = importlib.import_module(os.environ["DJANGO_SETTINGS_MODULE"])
                for name in dir(module):
                    if name.isupper():
                        setattr(self, name, getattr(module, name))


        class _LazySettings:
            _wrapped = None

            def _load(self):
                if _LazySettings._wrapped is None:
                    _LazySettings._wrapped = _Settings()
                return _LazySettings._wrapped

            def __getattr__(self, name):
                return getattr(self._load(), name)

            def __dir__(self):
                return dir(self._load())


        settings = _LazySettings()
        """
    ),
}


@dataclass
class Case:
    name: str
    files: dict[str, str]
    app: str
    env: dict[str, str] = field(default_factory=dict)
    unknown: frozenset[str] = frozenset()


def app_module(body: str) -> str:
    return "from celery import Celery\n" + textwrap.dedent(body)


CASES = [
    Case(
        "plain config module",
        {
            "proj/__init__.py": "",
            "proj/celery.py": app_module(
                """
                app = Celery("proj")
                app.config_from_object("proj.celeryconfig")
                """
            ),
            "proj/celeryconfig.py": textwrap.dedent(
                """
                broker_url = "redis://redis:6379/0"
                result_backend = "redis://redis:6379/1"
                task_acks_late = True
                task_reject_on_worker_lost = True
                worker_prefetch_multiplier = 1
                broker_transport_options = {"visibility_timeout": 2 * 60 * 60}
                task_time_limit = 30 * 60
                broker_connection_retry_on_startup = True
                """
            ),
        },
        "proj",
    ),
    Case(
        "app level changes win over the module",
        {
            "proj/__init__.py": "",
            "proj/celery.py": app_module(
                """
                app = Celery("proj", broker="redis://ctor:6379/0", backend="redis://ctor:6379/1", worker_concurrency=3)
                app.conf.update(worker_prefetch_multiplier=1)
                app.config_from_object("proj.celeryconfig")
                app.conf.task_acks_late = True
                app.conf["task_time_limit"] = 120
                app.conf.setdefault("worker_concurrency", 9)
                app.conf.setdefault("broker_connection_retry", False)
                app.conf.update({"broker_transport_options": {"visibility_timeout": 43200}})
                """
            ),
            "proj/celeryconfig.py": textwrap.dedent(
                """
                broker_url = "redis://module:6379/0"
                worker_prefetch_multiplier = 8
                worker_concurrency = 16
                task_acks_late = False
                task_time_limit = 60
                """
            ),
        },
        "proj.celery:app",
    ),
    Case(
        "environment overrides broker and backend",
        {
            "worker.py": app_module(
                """
                app = Celery("worker", broker="redis://code:6379/0")
                app.conf.broker_url = "redis://assigned:6379/0"
                app.conf.result_backend = "redis://assigned:6379/1"
                """
            ),
        },
        "worker",
        env={"CELERY_BROKER_URL": "redis://env:6379/0", "CELERY_RESULT_BACKEND": "redis://env:6379/1"},
    ),
    Case(
        "old uppercase names",
        {
            "tasks_app.py": app_module(
                """
                app = Celery("tasks_app")
                app.config_from_object("oldconfig")
                """
            ),
            "oldconfig.py": textwrap.dedent(
                """
                BROKER_URL = "redis://old:6379/0"
                CELERY_RESULT_BACKEND = "redis://old:6379/1"
                CELERY_ACKS_LATE = True
                CELERYD_PREFETCH_MULTIPLIER = 1
                CELERYD_CONCURRENCY = 2
                CELERYD_TASK_TIME_LIMIT = 90
                BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
                BROKER_CONNECTION_RETRY = False
                """
            ),
        },
        "tasks_app",
    ),
    Case(
        "django settings with the CELERY namespace",
        {
            **FAKE_DJANGO,
            "mysite/__init__.py": "from .celery import app as celery_app\n",
            "mysite/celery.py": "import os\n"
            + app_module(
                """
                os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
                app = Celery("mysite")
                app.config_from_object("django.conf:settings", namespace="CELERY")
                """
            ),
            "mysite/settings.py": textwrap.dedent(
                """
                DEBUG = False
                TIME_ZONE = "UTC"
                CELERY_BROKER_URL = "redis://dj:6379/0"
                CELERY_RESULT_BACKEND = "django-db"
                CELERY_TASK_ACKS_LATE = True
                CELERY_WORKER_PREFETCH_MULTIPLIER = 1
                worker_concurrency = 5
                CELERYD_CONCURRENCY = 7
                CELERY_REJECT_ON_WORKER_LOST = True
                CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600 * 4}
                """
            ),
        },
        "mysite",
    ),
    Case(
        "django split settings",
        {
            **FAKE_DJANGO,
            "config/__init__.py": "",
            "config/celery_app.py": "import os\n"
            + app_module(
                """
                os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
                app = Celery("config")
                app.config_from_object("django.conf:settings", namespace="CELERY")
                """
            ),
            "config/settings/__init__.py": "",
            "config/settings/base.py": textwrap.dedent(
                """
                CELERY_BROKER_URL = "redis://base:6379/0"
                CELERY_TASK_ACKS_LATE = False
                CELERY_WORKER_PREFETCH_MULTIPLIER = 4
                CELERY_TASK_TIME_LIMIT = 5 * 60
                CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
                """
            ),
            "config/settings/production.py": textwrap.dedent(
                """
                from .base import *

                CELERY_TASK_ACKS_LATE = True
                CELERY_WORKER_PREFETCH_MULTIPLIER = 1
                CELERY_TASK_TIME_LIMIT = CELERY_TASK_TIME_LIMIT * 2
                """
            ),
            "config/settings/local.py": "from config.settings.base import *\n\nCELERY_TASK_ACKS_LATE = False\n",
        },
        "config.celery_app",
        env={"DJANGO_SETTINGS_MODULE": "config.settings.production"},
    ),
    Case(
        "environment driven values, variables set",
        {
            "envapp.py": app_module(
                """
                import os
                app = Celery("envapp")
                app.config_from_object("envconfig")
                """
            ),
            "envconfig.py": textwrap.dedent(
                """
                import os
                from os import getenv

                broker_url = "redis://" + os.environ.get("REDIS_HOST", "localhost") + ":6379/0"
                task_acks_late = os.environ.get("ACKS_LATE", "False")
                worker_prefetch_multiplier = int(getenv("PREFETCH", "4"))
                worker_concurrency = os.environ["CONCURRENCY"]
                task_reject_on_worker_lost = os.getenv("REJECT", "true").lower() in ("1", "true", "yes")
                broker_transport_options = {"visibility_timeout": int(os.environ.get("VT", 3600))}
                result_backend = os.getenv("RESULT_BACKEND")
                """
            ),
        },
        "envapp",
        env={"REDIS_HOST": "cache", "ACKS_LATE": "False", "PREFETCH": "1", "CONCURRENCY": "6", "REJECT": "no", "VT": "7200"},
    ),
    Case(
        "environment driven values, variables unset",
        {
            "envapp.py": app_module(
                """
                app = Celery("envapp")
                app.config_from_object("envconfig")
                """
            ),
            "envconfig.py": textwrap.dedent(
                """
                import os

                broker_url = "redis://" + os.environ.get("REDIS_HOST", "localhost") + ":6379/0"
                task_acks_late = os.environ.get("ACKS_LATE", "False") == "True"
                worker_prefetch_multiplier = int(os.getenv("PREFETCH", "4"))
                broker_transport_options = {"visibility_timeout": int(os.environ.get("VT", 3600))}
                result_backend = os.getenv("RESULT_BACKEND")
                """
            ),
        },
        "envapp",
    ),
    Case(
        "constructor settings and config_source",
        {
            "ctor.py": app_module(
                """
                app = Celery("ctor", config_source="ctorconfig", task_acks_late=True, changes={"task_time_limit": 45})
                """
            ),
            "ctorconfig.py": "task_acks_late = False\nworker_prefetch_multiplier = 2\n",
        },
        "ctor",
    ),
    Case(
        "config class with a base class",
        {
            "clsapp/__init__.py": "",
            "clsapp/celery.py": app_module(
                """
                app = Celery("clsapp")
                app.config_from_object("clsapp.config:Production")
                """
            ),
            "clsapp/config.py": textwrap.dedent(
                """
                class Base:
                    broker_url = "redis://cls:6379/0"
                    worker_prefetch_multiplier = 4
                    task_time_limit = 100


                class Production(Base):
                    worker_prefetch_multiplier = 1
                    task_acks_late = True
                """
            ),
        },
        "clsapp",
    ),
    Case(
        "config_from_envvar and CELERY_CONFIG_MODULE",
        {
            "byvar.py": app_module(
                """
                app = Celery("byvar")
                app.config_from_envvar("BYVAR_CONFIG")
                """
            ),
            "byvar_settings.py": "worker_concurrency = 4\nbroker_url = 'redis://byvar:6379/0'\n",
        },
        "byvar",
        env={"BYVAR_CONFIG": "byvar_settings"},
    ),
    Case(
        "CELERY_CONFIG_MODULE without config_from_object",
        {
            "noconf.py": app_module('app = Celery("noconf")\n'),
            "envmodule.py": "worker_prefetch_multiplier = 1\ntask_acks_late = True\n",
        },
        "noconf",
        env={"CELERY_CONFIG_MODULE": "envmodule"},
    ),
    Case(
        "values behind if and try are unknown",
        {
            "branchy.py": app_module(
                """
                app = Celery("branchy")
                app.config_from_object("branchy_config")
                """
            ),
            "branchy_config.py": textwrap.dedent(
                """
                import os

                broker_url = "redis://branchy:6379/0"
                if os.environ.get("STAGE") == "prod":
                    task_acks_late = True
                else:
                    task_acks_late = False
                try:
                    worker_concurrency = int(os.environ["WORKERS"])
                except KeyError:
                    worker_concurrency = 2


                def compute_multiplier():
                    return 1


                worker_prefetch_multiplier = compute_multiplier()
                broker_transport_options = {"visibility_timeout": 3600, "fanout_prefix": compute_multiplier()}
                """
            ),
        },
        "branchy",
        unknown=frozenset({"task_acks_late", "worker_concurrency", "worker_prefetch_multiplier", "broker_transport_options"}),
    ),
    Case(
        "star import from outside the project is unknown",
        {
            "starry.py": app_module(
                """
                app = Celery("starry")
                app.config_from_object("starry_config")
                """
            ),
            "starry_config.py": "task_acks_late = True\nfrom json import *\nworker_concurrency = 3\n",
        },
        "starry",
        unknown=frozenset(set(RULE_SETTINGS) - {"worker_concurrency"}),
    ),
]


def write_project(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def run_real_celery(root: Path, app: str, env: dict[str, str]) -> dict:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("CELERY", "DJANGO"))}
    clean.update(env)
    clean["PYTHONPATH"] = str(root)
    completed = subprocess.run(
        [sys.executable, "-c", HARNESS, app, json.dumps(RULE_SETTINGS)],
        cwd=root,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def as_json(value: object) -> object:
    return json.loads(json.dumps(value, default=repr))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_static_reader_agrees_with_celery(case: Case, tmp_path: Path) -> None:
    write_project(tmp_path, case.files)
    analysis = analyze_celery([tmp_path], case.app, case.env)
    real = run_real_celery(tmp_path, case.app, case.env)
    assert "values" in real, f"real Celery failed: {real}"

    assert analysis.app is not None
    for name in RULE_SETTINGS:
        static = analysis.get(name)
        if name in case.unknown:
            assert not static.known, f"{name} should be unknown, got {static.value!r}"
            assert static.reason, f"{name} is unknown without a reason"
            continue
        assert static.known, f"{name} is unknown: {static.reason}"
        assert as_json(static.value) == real["values"][name], f"{name}: static {static.value!r}"


def test_mixed_names_raise_in_celery_and_are_reported(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "mixed.py": app_module('app = Celery("mixed")\napp.config_from_object("mixedconfig")\n'),
            "mixedconfig.py": "broker_url = 'redis://x'\ntask_acks_late = True\nCELERYD_PREFETCH_MULTIPLIER = 1\n",
        },
    )
    real = run_real_celery(tmp_path, "mixed", {})
    analysis = analyze_celery([tmp_path], "mixed", {})
    mixed = [problem for problem in analysis.problems if problem.kind == "mixed-setting-names"]

    assert real.get("error") == "ImproperlyConfigured"
    assert [problem.suggestion for problem in mixed] == ["worker_prefetch_multiplier"]
    assert mixed[0].loc.line == 3


def test_typo_is_ignored_by_celery_and_reported(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "typo.py": app_module('app = Celery("typo")\napp.config_from_object("typoconfig")\n'),
            "typoconfig.py": "task_ack_late = True\n",
        },
    )
    real = run_real_celery(tmp_path, "typo", {})
    analysis = analyze_celery([tmp_path], "typo", {})
    typos = [problem for problem in analysis.problems if problem.kind == "unknown-setting"]

    assert real["values"]["task_acks_late"] is False
    assert analysis.get("task_acks_late").value is False
    assert [problem.suggestion for problem in typos] == ["task_acks_late"]
