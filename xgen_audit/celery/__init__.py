"""Static reader of Celery configuration: the app, its settings, tasks and task calls.

Nothing here imports or runs the project's code. Importing this package does
not import celery either; the setting table is read from the installed celery
the first time `analyze_celery` (or `settings_table`) is called.
"""

from xgen_audit.celery.analyze import analyze_celery
from xgen_audit.celery.model import (
    AppInfo,
    CeleryAnalysis,
    CodeUse,
    OptionValue,
    Problem,
    SettingValue,
    TaskClassInfo,
    TaskInfo,
    Unknown,
    contains_unknown,
)
from xgen_audit.celery.settings_table import SettingsTable, settings_table

__all__ = [
    "AppInfo",
    "CeleryAnalysis",
    "CodeUse",
    "OptionValue",
    "Problem",
    "SettingValue",
    "SettingsTable",
    "TaskClassInfo",
    "TaskInfo",
    "Unknown",
    "analyze_celery",
    "contains_unknown",
    "settings_table",
]
