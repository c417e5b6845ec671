"""Tests of the static Celery reader: app lookup, values, locations, tasks, problems and limits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xgen_audit.celery import analyze_celery, settings_table
from xgen_audit.parse.tree import Loc

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "celery"
REPO = Path(__file__).resolve().parent.parent


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def simple_project(tmp_path: Path, config: str, app_extra: str = "") -> Path:
    return write(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/celery.py": "from celery import Celery\n\napp = Celery('proj')\napp.config_from_object('proj.celeryconfig')\n"
            + textwrap.dedent(app_extra),
            "proj/celeryconfig.py": config,
        },
    )


# ---- settings table -------------------------------------------------------------


def test_table_maps_irregular_old_names() -> None:
    table = settings_table()

    assert table.to_old["task_acks_late"] == "CELERY_ACKS_LATE"
    assert table.to_old["worker_prefetch_multiplier"] == "CELERYD_PREFETCH_MULTIPLIER"
    assert table.to_old["result_expires"] == "CELERY_TASK_RESULT_EXPIRES"
    assert table.to_new["CELERYD_TASK_TIME_LIMIT"] == "task_time_limit"
    assert table.defaults["worker_prefetch_multiplier"] == 4
    assert "broker_connection_retry_on_startup" in table.new_names


def test_table_matches_installed_celery() -> None:
    from celery.app.defaults import SETTING_KEYS

    assert settings_table().new_names == frozenset(SETTING_KEYS)


def test_importing_package_does_not_import_celery() -> None:
    code = "import sys, xgen_audit.celery; print('celery' in sys.modules, 'celery.app.defaults' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                               env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["False", "False"]


# ---- finding the app ------------------------------------------------------------


@pytest.mark.parametrize("spec", ["proj", "proj.celery", "proj.celery:app", "proj.celery.app", None])
def test_app_found_for_each_spelling(spec: str | None) -> None:
    analysis = analyze_celery([FIXTURES / "plain"], spec, {})

    assert analysis.app is not None
    assert analysis.app.module == "proj.celery"
    assert analysis.app.loc == Loc("proj/celery.py", 5, 7)


def test_app_named_celery_in_package_init(tmp_path: Path) -> None:
    write(tmp_path, {"shop/__init__.py": "from celery import Celery\ncelery = Celery('shop', broker='redis://a')\n"})

    analysis = analyze_celery([tmp_path], "shop", {})

    assert analysis.app is not None
    assert analysis.app.variable == "celery"
    assert analysis.get("broker_url").value == "redis://a"


def test_first_celery_instance_in_module(tmp_path: Path) -> None:
    write(tmp_path, {"tasks.py": "import celery\nworker_app = celery.Celery('tasks', backend='redis://b')\n"})

    analysis = analyze_celery([tmp_path], "tasks", {})

    assert analysis.app is not None
    assert analysis.app.variable == "worker_app"
    assert analysis.get("result_backend").value == "redis://b"


def test_second_root_is_searched(tmp_path: Path) -> None:
    write(tmp_path / "src", {"svc/celery_app.py": "from celery import Celery\napp = Celery('svc')\n"})

    analysis = analyze_celery([tmp_path, tmp_path / "src"], "svc.celery_app", {})

    assert analysis.app is not None
    assert analysis.app.module == "svc.celery_app"
    assert analysis.app.file == "src/svc/celery_app.py"


def test_search_skips_virtualenv(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".venv/lib/site-packages/other/celery.py": "from celery import Celery\napp = Celery('other')\n",
            "mine/worker.py": "from celery import Celery\napp = Celery('mine')\n",
        },
    )

    analysis = analyze_celery([tmp_path], None, {})

    assert analysis.app is not None
    assert analysis.app.module == "mine.worker"


def test_missing_app_module_is_a_problem(tmp_path: Path) -> None:
    analysis = analyze_celery([tmp_path], "nothere", {})

    assert analysis.app is None
    assert [problem.kind for problem in analysis.problems] == ["module-not-found"]
    assert analysis.get("task_acks_late").value is False


# ---- values and precedence ------------------------------------------------------


def test_plain_fixture_values() -> None:
    analysis = analyze_celery([FIXTURES / "plain"], "proj", {"CONCURRENCY": "8"})

    assert analysis.get("worker_prefetch_multiplier").value == 1
    assert analysis.get("worker_prefetch_multiplier").loc == Loc("proj/celery.py", 7, 44)
    assert analysis.get("task_acks_late").loc == Loc("proj/celeryconfig.py", 7, 1)
    assert analysis.get("broker_transport_options").value == {"visibility_timeout": 7200}
    assert analysis.get("worker_concurrency").value == 8
    assert analysis.config_module == "proj.celeryconfig"


def test_env_value_records_variable() -> None:
    analysis = analyze_celery([FIXTURES / "plain"], "proj", {"CONCURRENCY": "8"})
    concurrency = analysis.get("worker_concurrency")
    broker = analysis.get("broker_url")

    assert concurrency.env_var == "CONCURRENCY"
    assert concurrency.from_default_of_env is False
    assert broker.env_var == "REDIS_HOST"
    assert broker.from_default_of_env is True
    assert broker.value == "redis://redis:6379/0"


def test_env_passthrough_is_unknown(tmp_path: Path) -> None:
    simple_project(tmp_path, "import os\nworker_concurrency = os.environ.get('WORKERS', '2')\n")

    analysis = analyze_celery([tmp_path], "proj", {"WORKERS": None})
    concurrency = analysis.get("worker_concurrency")

    assert concurrency.known is False
    assert concurrency.env_var == "WORKERS"
    assert "host environment" in (concurrency.reason or "")


def test_string_false_from_environment_stays_string(tmp_path: Path) -> None:
    simple_project(tmp_path, "import os\nbroker_connection_retry_on_startup = os.getenv('RETRY', 'true')\n")

    analysis = analyze_celery([tmp_path], "proj", {"RETRY": "False"})

    assert analysis.get("broker_connection_retry_on_startup").value == "False"


def test_missing_required_env_is_unknown(tmp_path: Path) -> None:
    simple_project(tmp_path, "import os\nbroker_url = os.environ['BROKER']\n")

    analysis = analyze_celery([tmp_path], "proj", {})
    broker = analysis.get("broker_url")

    assert broker.known is False
    assert "KeyError" in (broker.reason or "")


def test_celery_env_var_overrides_everything(tmp_path: Path) -> None:
    simple_project(tmp_path, "broker_url = 'redis://module'\n", "app.conf.broker_url = 'redis://app'\n")

    analysis = analyze_celery([tmp_path], "proj", {"CELERY_BROKER_URL": "redis://env"})
    broker = analysis.get("broker_url")

    assert broker.value == "redis://env"
    assert broker.source == "env"
    assert broker.env_var == "CELERY_BROKER_URL"


def test_unset_setting_points_at_config_call(tmp_path: Path) -> None:
    simple_project(tmp_path, "task_acks_late = True\n")

    analysis = analyze_celery([tmp_path], "proj", {})
    retry = analysis.get("broker_connection_retry_on_startup")

    assert retry.source == "default"
    assert retry.value is None
    assert retry.loc == Loc("proj/celery.py", 4, 1)


def test_django_environ_and_decouple_defaults() -> None:
    analysis = analyze_celery([FIXTURES / "django_split"], "config", {})

    assert analysis.config_module == "config.settings.production"
    assert analysis.namespace == "CELERY"
    assert analysis.get("task_acks_late").value is False
    assert analysis.get("worker_prefetch_multiplier").value == 1
    assert analysis.get("broker_transport_options").value == {"visibility_timeout": 43200}
    assert analysis.get("task_reject_on_worker_lost").value is False
    assert analysis.get("task_reject_on_worker_lost").from_default_of_env is True


def test_django_environ_and_decouple_casts() -> None:
    env = {"CELERY_ACKS": "yes", "REJECT_LOST": "on", "VISIBILITY_TIMEOUT": "600", "DJANGO_SETTINGS_MODULE": "config.settings.production"}

    analysis = analyze_celery([FIXTURES / "django_split"], "config", env)

    assert analysis.get("task_acks_late").value is True
    assert analysis.get("task_reject_on_worker_lost").value is True
    assert analysis.get("broker_transport_options").value == {"visibility_timeout": 600}


def test_django_settings_module_from_environment_wins() -> None:
    env = {"DJANGO_SETTINGS_MODULE": "config.settings.base", "PREFETCH": "2"}

    analysis = analyze_celery([FIXTURES / "django_split"], "config", env)

    assert analysis.config_module == "config.settings.base"
    assert analysis.get("worker_prefetch_multiplier").value == 2


def test_django_lowercase_names_are_ignored(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "site/celery.py": """\
                import os
                from celery import Celery
                os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site.settings')
                app = Celery('site')
                app.config_from_object('django.conf:settings', namespace='CELERY')
                """,
            "site/settings.py": "task_acks_late = True\nCELERY_WORKER_CONCURRENCY = 3\n",
        },
    )

    analysis = analyze_celery([tmp_path], "site.celery", {})

    assert analysis.get("task_acks_late").value is False
    assert analysis.get("worker_concurrency").value == 3


def test_settings_module_named_in_manage_py(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "manage.py": "import os\ndef main():\n    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'web.settings')\n",
            "web/celery.py": "from celery import Celery\napp = Celery('web', namespace='CELERY')\napp.config_from_object('django.conf:settings')\n",
            "web/settings.py": "CELERY_TASK_ACKS_LATE = True\n",
        },
    )

    analysis = analyze_celery([tmp_path], "web", {})

    assert analysis.get("task_acks_late").value is True


def test_class_attribute_config_and_dict_update(tmp_path: Path) -> None:
    simple_project(
        tmp_path,
        "OPTIONS = {'visibility_timeout': 100}\nOPTIONS['visibility_timeout'] = 900\nbroker_transport_options = OPTIONS\n",
        "app.conf.update({'task_acks_late': True})\n",
    )

    analysis = analyze_celery([tmp_path], "proj", {})

    assert analysis.get("broker_transport_options").value == {"visibility_timeout": 900}
    assert analysis.get("task_acks_late").loc == Loc("proj/celery.py", 5, 18)


def test_timedelta_and_fstring(tmp_path: Path) -> None:
    simple_project(
        tmp_path,
        "from datetime import timedelta\nHOST = 'r'\nresult_expires = timedelta(hours=2)\nbroker_url = f'redis://{HOST}:{6379}/0'\n",
    )

    analysis = analyze_celery([tmp_path], "proj", {})

    assert analysis.get("result_expires").value.total_seconds() == 7200
    assert analysis.get("broker_url").value == "redis://r:6379/0"


def test_column_counts_characters(tmp_path: Path) -> None:
    simple_project(tmp_path, "x = {'é': 1}; task_acks_late = True\n")

    analysis = analyze_celery([tmp_path], "proj", {})

    assert analysis.get("task_acks_late").loc == Loc("proj/celeryconfig.py", 1, 15)


# ---- unknown values -------------------------------------------------------------


def test_value_in_if_is_unknown_with_location(tmp_path: Path) -> None:
    simple_project(tmp_path, "import os\nif os.environ.get('PROD'):\n    worker_concurrency = 8\n")

    analysis = analyze_celery([tmp_path], "proj", {})
    concurrency = analysis.get("worker_concurrency")

    assert concurrency.known is False
    assert "`if` block at line 2" in (concurrency.reason or "")
    assert concurrency.loc == Loc("proj/celeryconfig.py", 3, 5)


def test_missing_config_module_is_unknown(tmp_path: Path) -> None:
    write(tmp_path, {"w.py": "from celery import Celery\napp = Celery('w')\napp.config_from_object('gone.settings')\n"})

    analysis = analyze_celery([tmp_path], "w", {})

    assert analysis.get("task_acks_late").known is False
    assert [problem.kind for problem in analysis.problems] == ["module-not-found"]
    assert analysis.problems[0].loc == Loc("w.py", 3, 1)


def test_unresolved_star_import_in_try_is_skipped(tmp_path: Path) -> None:
    simple_project(tmp_path, "task_acks_late = True\ntry:\n    from .local import *\nexcept ImportError:\n    pass\n")

    analysis = analyze_celery([tmp_path], "proj", {})

    assert analysis.get("task_acks_late").value is True


def test_conf_update_with_unknown_mapping_taints(tmp_path: Path) -> None:
    simple_project(tmp_path, "task_acks_late = True\n", "from somewhere import EXTRA\napp.conf.update(EXTRA)\n")

    analysis = analyze_celery([tmp_path], "proj", {})

    assert analysis.get("task_acks_late").known is False


# ---- tasks ----------------------------------------------------------------------


def test_task_options_merge_base_class() -> None:
    analysis = analyze_celery([FIXTURES / "plain"], "proj", {})
    export = next(task for task in analysis.tasks if task.name == "proj.tasks.export")

    assert export.options["acks_late"].value is True
    assert export.options["acks_late"].origin == "base"
    assert export.options["max_retries"].value == 5
    assert export.options["autoretry_for"].text == "(ConnectionError,)"
    assert export.base == "LongTask"


def test_bare_shared_task_and_task_class() -> None:
    analysis = analyze_celery([FIXTURES / "plain"], "proj", {})

    assert [task.name for task in analysis.tasks] == ["proj.tasks.export", "proj.tasks.ping"]
    assert [cls.name for cls in analysis.task_classes] == ["LongTask"]
    assert analysis.task_classes[0].options["reject_on_worker_lost"].value is True


def test_countdown_and_result_reads() -> None:
    analysis = analyze_celery([FIXTURES / "plain"], "proj", {})

    assert [use.kind for use in analysis.countdown_uses] == ["apply_async(countdown=...)"]
    assert analysis.countdown_uses[0].loc == Loc("proj/tasks.py", 23, 48)
    assert [use.kind for use in analysis.result_reads] == [".get"]


def test_result_state_and_eta() -> None:
    analysis = analyze_celery([FIXTURES / "django_split"], "config", {})

    assert [use.kind for use in analysis.result_reads] == [".state"]
    assert analysis.countdown_uses == []
    assert analysis.tasks[0].options["time_limit"].value == 120


def test_app_task_cls_options(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "tc.py": """\
                from celery import Celery, Task

                class Base(Task):
                    acks_late = True

                app = Celery('tc', task_cls=Base)

                @app.task
                def work():
                    pass

                def go():
                    work.s().set(countdown=5)
                    r = work.apply_async(eta=when())
                    return r.ready()
                """,
        },
    )

    analysis = analyze_celery([tmp_path], "tc", {})

    assert analysis.tasks[0].options["acks_late"].origin == "task_cls"
    assert [use.kind for use in analysis.countdown_uses] == ["set(countdown=...)", "apply_async(eta=...)"]
    assert [use.kind for use in analysis.result_reads] == [".ready"]


# ---- problems -------------------------------------------------------------------


def test_syntax_error_location() -> None:
    analysis = analyze_celery([FIXTURES / "broken"], None, {})
    errors = [problem for problem in analysis.problems if problem.kind == "syntax-error"]

    assert len(errors) == 1
    assert errors[0].rule == "XG004"
    assert errors[0].loc == Loc("app/settings.py", 2, 18)
    assert analysis.get("broker_url").known is False


def test_namespace_typo_suggestion() -> None:
    analysis = analyze_celery([FIXTURES / "django_split"], "config", {})
    typos = [problem for problem in analysis.problems if problem.kind == "unknown-setting"]

    assert [problem.suggestion for problem in typos] == ["CELERY_TASK_ACKS_LATE"]
    assert typos[0].rule == "XG005"
    assert typos[0].loc == Loc("config/settings/base.py", 11, 1)


def test_helpers_and_django_settings_not_flagged(tmp_path: Path) -> None:
    simple_project(
        tmp_path,
        "import os\nfrom kombu import Queue\nREDIS_HOST = 'r'\n_private = 1\ndef helper():\n    pass\nWorker_Concurrency = 2\n",
    )

    analysis = analyze_celery([tmp_path], "proj", {})
    typos = [(problem.loc.line, problem.suggestion) for problem in analysis.problems if problem.kind == "unknown-setting"]

    assert typos == [(7, "worker_concurrency")]


def test_mixed_names_old_majority(tmp_path: Path) -> None:
    simple_project(tmp_path, "BROKER_URL = 'x'\nCELERY_ACKS_LATE = True\nCELERYD_CONCURRENCY = 2\nworker_prefetch_multiplier = 1\n")

    analysis = analyze_celery([tmp_path], "proj", {})
    mixed = [problem for problem in analysis.problems if problem.kind == "mixed-setting-names"]

    assert [problem.suggestion for problem in mixed] == ["CELERYD_PREFETCH_MULTIPLIER"]
    assert mixed[0].rule == "XG006"


def test_mixed_names_tie_prefers_new(tmp_path: Path) -> None:
    simple_project(tmp_path, "BROKER_URL = 'x'\ntask_acks_late = True\n")

    analysis = analyze_celery([tmp_path], "proj", {})
    mixed = [problem.suggestion for problem in analysis.problems if problem.kind == "mixed-setting-names"]

    assert mixed == ["broker_url"]


def test_both_spellings_are_not_mixing(tmp_path: Path) -> None:
    simple_project(tmp_path, "BROKER_URL = 'x'\nbroker_url = 'x'\ntask_acks_late = True\n")

    analysis = analyze_celery([tmp_path], "proj", {})

    assert [problem for problem in analysis.problems if problem.kind == "mixed-setting-names"] == []


def test_namespace_skips_mixing(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "n.py": "from celery import Celery\napp = Celery('n')\napp.config_from_object('ncfg', namespace='CELERY')\n",
            "ncfg.py": "BROKER_URL = 'x'\nCELERY_TASK_ACKS_LATE = True\nCELERY_WORKER_CONCURRENCY = 2\n",
        },
    )

    analysis = analyze_celery([tmp_path], "n", {})

    assert [problem for problem in analysis.problems if problem.kind == "mixed-setting-names"] == []
    assert analysis.get("broker_url").value == "x"


def test_several_config_sources_reported(tmp_path: Path) -> None:
    simple_project(tmp_path, "task_acks_late = True\n", "app.config_from_object('proj.other')\n")
    write(tmp_path, {"proj/other.py": "worker_concurrency = 2\n"})

    analysis = analyze_celery([tmp_path], "proj", {})

    assert analysis.get("task_acks_late").value is False
    assert analysis.get("worker_concurrency").value == 2
    assert "several-config-sources" in [problem.kind for problem in analysis.problems]


# ---- guard rails ----------------------------------------------------------------


def test_large_file_is_unreadable(tmp_path: Path) -> None:
    simple_project(tmp_path, "# padding\n" + "x = 1\n" * 400_000)

    analysis = analyze_celery([tmp_path], "proj", {})

    assert [problem.kind for problem in analysis.problems] == ["unreadable"]
    assert analysis.get("task_acks_late").known is False


def test_non_utf8_file_is_unreadable(tmp_path: Path) -> None:
    simple_project(tmp_path, "")
    (tmp_path / "proj" / "celeryconfig.py").write_bytes(b"broker_url = '\xff\xfe'\n")

    analysis = analyze_celery([tmp_path], "proj", {})

    assert [problem.kind for problem in analysis.problems] == ["unreadable"]
    assert "UTF-8" in analysis.problems[0].message


def test_import_cycle_terminates(tmp_path: Path) -> None:
    simple_project(tmp_path, "from proj.a import *\ntask_acks_late = True\n")
    write(tmp_path, {"proj/a.py": "from proj.celeryconfig import *\nfrom proj.a import *\nworker_concurrency = 3\n"})

    analysis = analyze_celery([tmp_path], "proj", {})

    assert analysis.get("task_acks_late").value is True
    assert analysis.get("worker_concurrency").value == 3


@pytest.mark.parametrize(
    "source",
    [
        "worker_concurrency = 'a' * 10**9\n",
        "worker_concurrency = 10 ** 10 ** 8\n",
        "worker_concurrency = " + "-" * 5000 + "1\n",
        "worker_concurrency = " + "+".join(["1"] * 100_000) + "\n",
        "worker_concurrency = " + "[" * 80 + "]" * 80 + "\n",
        "worker_concurrency = int('9' * 5000)\n",
        "worker_concurrency = f'{1:>999999999}'\n",
        "worker_concurrency, x = 1\n",
        "worker_concurrency = 1 / 0\n",
        "import os\nworker_concurrency = os.environ[os.getenv('X')]\n",
        "del x\nworker_concurrency: int\nasync def f():\n    pass\nmatch 1:\n    case 1:\n        worker_concurrency = 2\n",
    ],
)
def test_hostile_values_are_unknown(tmp_path: Path, source: str) -> None:
    simple_project(tmp_path, source)

    analysis = analyze_celery([tmp_path], "proj", {})
    concurrency = analysis.get("worker_concurrency")

    assert concurrency.known is False
    assert concurrency.reason


def test_deep_parentheses_still_evaluate(tmp_path: Path) -> None:
    simple_project(tmp_path, "worker_concurrency = " + "(" * 150 + "1" + ")" * 150 + "\n")

    analysis = analyze_celery([tmp_path], "proj", {})

    assert analysis.get("worker_concurrency").value == 1


def test_config_from_imported_module_object(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/settings.py": "worker_prefetch_multiplier = 1\n",
            "pkg/app.py": "from celery import Celery\nfrom pkg import settings\napp = Celery('pkg')\napp.config_from_object(settings)\n",
        },
    )

    analysis = analyze_celery([tmp_path], "pkg.app", {})

    assert analysis.config_module == "pkg.settings"
    assert analysis.get("worker_prefetch_multiplier").value == 1
    assert analysis.get("worker_prefetch_multiplier").loc == Loc("pkg/settings.py", 1, 1)


def test_old_name_reads_through_get() -> None:
    analysis = analyze_celery([FIXTURES / "plain"], "proj", {})

    assert analysis.get("CELERY_ACKS_LATE").name == "task_acks_late"
    assert analysis.get("CELERY_ACKS_LATE").value is True
