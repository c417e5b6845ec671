"""Work out every setting of a project's Celery app without importing the project.

`analyze_celery` finds the app the way `celery -A` does and reads the modules
that configure it with `ast`. It merges the sources in Celery's order, highest
first: the CELERY_BROKER_URL / CELERY_RESULT_BACKEND environment variables,
values set on the app (constructor keywords, `app.conf` changes), mappings from
`app.add_defaults()`, the configuration object, then Celery's defaults.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xgen_audit.celery.evaluate import Context
from xgen_audit.celery.locate import find_module, iter_python_files, module_name_for
from xgen_audit.celery.model import (
    AppInfo,
    CeleryAnalysis,
    Problem,
    SettingValue,
    Unknown,
    contains_unknown,
)
from xgen_audit.celery.settings_table import SettingsTable, settings_table
from xgen_audit.celery.tasks import scan_tasks
from xgen_audit.celery.values import AppObj, Binding, ClassObj, ConfigOp, Ev, Scope, UserModule, is_data
from xgen_audit.parse.tree import Loc

log = logging.getLogger(__name__)

DJANGO_SETTINGS_SPECS = ("django.conf:settings", "django.conf.settings")

# Properties of celery.app.utils.Settings that read an environment variable first (celery 5.7).
ENV_OVERRIDES = {
    "broker_url": "CELERY_BROKER_URL",
    "broker_read_url": "CELERY_BROKER_READ_URL",
    "broker_write_url": "CELERY_BROKER_WRITE_URL",
    "result_backend": "CELERY_RESULT_BACKEND",
}


@dataclass
class Entry:
    ev: Ev
    loc: Loc
    written_as: str


@dataclass
class Layer:
    """One configuration source in Celery's lookup chain: keys as written, plus a taint."""

    name: str
    entries: dict[str, Entry] = field(default_factory=dict)
    taint: Unknown | None = None


@dataclass
class ConfigObject:
    """The object `config_from_object` would load: its names, or why it cannot be read."""

    scope: Scope | None
    module: str | None
    uppercase_only: bool = False
    taint: Unknown | None = None


def analyze_celery(
    roots: list[Path],
    app_spec: str | None,
    environ: Mapping[str, str | None],
    service: str | None = None,
    base_dir: Path | None = None,
) -> CeleryAnalysis:
    """Read the Celery app of a project statically and return every setting's effective value.

    `roots` are the folders Python would import from (a project folder, or a
    compose service's build context mapped to its working directory), tried in
    order. `app_spec` is the `-A/--app` value or None to search for a
    `Celery(...)` assignment. `environ` is the environment the worker runs with;
    a variable mapped to None is set but its value is not known. File names in
    locations are relative to `base_dir` when given, else to the first root
    that contains the file. Never raises: problems come back in
    `CeleryAnalysis.problems`.
    """
    table = settings_table()
    search_roots = [Path(root) for root in roots if Path(root).is_dir()]
    ctx = Context(search_roots, dict(environ), base_dir=base_dir)
    analysis = CeleryAnalysis(None, None, None, None, service=service, celery_version=table.celery_version)

    try:
        app = find_app(ctx, app_spec)
        if app is not None:
            read_app(ctx, app, table, analysis)
        else:
            fill_defaults(analysis, table, None)
        tasks = scan_tasks(ctx, search_roots, app)
        analysis.tasks = tasks.tasks
        analysis.task_classes = tasks.task_classes
        analysis.countdown_uses = tasks.countdown_uses
        analysis.result_reads = tasks.result_reads
    except Exception as error:  # noqa: BLE001 - a reader bug must not stop the other rules
        log.warning("reading the Celery configuration failed: %r", error, exc_info=log.isEnabledFor(logging.DEBUG))
        place = analysis.config_loc or Loc(search_roots[0].as_posix() if search_roots else ".", 1, 1)
        message = f"reading the Celery configuration failed ({type(error).__name__}); values are unknown"
        analysis.problems.append(Problem("unreadable", message, place))

    analysis.problems = ctx.problems + [p for p in analysis.problems if p not in ctx.problems]
    analysis.files_read = list(ctx.files_read)
    return analysis


# ---- finding the app ---------------------------------------------------------------


def find_app(ctx: Context, app_spec: str | None) -> AppObj | None:
    """Find the app like Celery's find_app: `module:attr`, `module.attr`, or a module's app."""
    if not app_spec:
        return search_app(ctx)
    spec = app_spec.strip()
    if ":" in spec:
        module_name, _, attr_path = spec.partition(":")
        module = ctx.load_module(module_name)
        found = follow_attributes(ctx, module, attr_path) if module is not None else None
    else:
        found = None
        module = ctx.load_module(spec)
        if module is not None:
            found = app_in_module(ctx, module, spec)
        elif "." in spec:
            module_name, _, attr = spec.rpartition(".")
            parent = ctx.load_module(module_name)
            if parent is not None:
                found = follow_attributes(ctx, parent, attr)
                module = parent
    if found is None:
        report_missing_app(ctx, spec, module)
    return found


def report_missing_app(ctx: Context, spec: str, module: UserModule | None) -> None:
    if module is not None and module.loc is not None:
        where = module.loc
    else:
        where = Loc(ctx.roots[0].as_posix() if ctx.roots else ".", 1, 1)
    if module is None:
        searched = ", ".join(root.as_posix() for root in ctx.roots) or "the project"
        message = f"app module `{spec}` (from -A/--app) was not found under {searched}"
        ctx.problems.append(Problem("module-not-found", message, where))
    else:
        message = f"`{spec}` has no Celery app: no `app`, `celery` or other `Celery(...)` variable"
        ctx.problems.append(Problem("app-not-found", message, where))


def follow_attributes(ctx: Context, module: UserModule, attr_path: str) -> AppObj | None:
    value: Any = module
    for attr in attr_path.split("."):
        if isinstance(value, UserModule):
            binding = value.scope.get(attr)
            value = binding.ev.value if binding is not None else ctx.load_module(f"{value.name}.{attr}")
        else:
            return None
    if isinstance(value, UserModule):
        return app_in_module(ctx, value, value.name)
    return value if isinstance(value, AppObj) else None


def app_in_module(ctx: Context, module: UserModule, spec: str, depth: int = 0) -> AppObj | None:
    for name in ("app", "celery"):
        binding = module.scope.get(name)
        if binding is not None and isinstance(binding.ev.value, AppObj):
            return binding.ev.value
    if module.is_package and depth < 3:
        submodule = ctx.load_module(f"{spec}.celery")
        if submodule is not None:
            found = app_in_module(ctx, submodule, f"{spec}.celery", depth + 1)
            if found is not None:
                return found
    for binding in module.scope.bindings.values():
        if isinstance(binding.ev.value, AppObj):
            return binding.ev.value
    return None


def search_app(ctx: Context) -> AppObj | None:
    """Without -A: take the first module-level `Celery(...)` assignment in the project's files."""
    candidates: list[Path] = []
    for root in ctx.roots:
        for path in iter_python_files(root):
            try:
                if path.stat().st_size > 2 * 1024 * 1024 or b"Celery(" not in path.read_bytes():
                    continue
            except OSError:
                continue
            candidates.append(path)
    # Files named like an app module come first, as they are what `-A proj` would load.
    candidates.sort(key=lambda path: (path.name not in ("celery.py", "celery_app.py", "worker.py"), len(path.parts), path.as_posix()))
    for path in candidates:
        parsed = ctx.parse(path)
        if parsed is None or not has_celery_assignment(parsed.tree):
            continue
        dotted = module_name_for(path, ctx.roots)
        if dotted is None:
            continue
        module = ctx.load_module(dotted)
        if module is None:
            continue
        found = app_in_module(ctx, module, dotted)
        if found is not None:
            return found
    place = Loc(ctx.roots[0].as_posix() if ctx.roots else ".", 1, 1)
    ctx.problems.append(Problem("app-not-found", "no `Celery(...)` assignment found in the project's Python files", place))
    return None


def has_celery_assignment(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Name) and func.id == "Celery":
                return True
            if isinstance(func, ast.Attribute) and func.attr == "Celery":
                return True
    return False


# ---- reading the configuration ---------------------------------------------------


def read_app(ctx: Context, app: AppObj, table: SettingsTable, analysis: CeleryAnalysis) -> None:
    analysis.app = AppInfo(app.module, app.file, app.variable or "", app.loc)
    analysis.config_loc = app.config_loc or app.loc
    prefix, namespace_unknown = namespace_prefix(app)
    analysis.namespace = prefix.rstrip("_") if prefix else None

    config = load_config_object(ctx, app, analysis)
    analysis.config_module = config.module
    if len(app.sources) > 1:
        message = f"the configuration is loaded {len(app.sources)} times, and Celery uses only the last call"
        analysis.problems.append(Problem("several-config-sources", message, app.sources[-1].loc))
    if isinstance(app.task_cls, Ev):
        task_cls = app.task_cls.value
        analysis.task_cls = task_cls if isinstance(task_cls, str) else getattr(task_cls, "name", None)

    layers = [
        ops_layer("app", app.ops),
        ops_layer("add_defaults", app.defaults_ops),
        config_layer(config),
    ]
    if namespace_unknown is not None:
        for layer in layers:
            layer.taint = layer.taint or namespace_unknown

    for name in sorted(table.new_names):
        analysis.settings[name] = resolve_setting(ctx, name, prefix, layers, table, analysis.config_loc)

    check_unknown_names(app, config, prefix, table, analysis)
    if prefix is None and namespace_unknown is None:
        check_mixed_names(app, config, table, analysis)


def namespace_prefix(app: AppObj) -> tuple[str | None, Unknown | None]:
    if app.namespace is None:
        return None, None
    value = app.namespace.value
    if isinstance(value, str) and value:
        return value.rstrip("_") + "_", None
    if value is None or value == "":
        return None, None
    reason = value if isinstance(value, Unknown) else Unknown("the namespace cannot be known statically")
    return None, reason


def load_config_object(ctx: Context, app: AppObj, analysis: CeleryAnalysis) -> ConfigObject:
    """Return what the last config source (or CELERY_CONFIG_MODULE) points at."""
    if not app.sources:
        from_env = ctx.environ.get("CELERY_CONFIG_MODULE")
        if "CELERY_CONFIG_MODULE" in ctx.environ and from_env is None:
            return ConfigObject(None, None, taint=Unknown("CELERY_CONFIG_MODULE comes from the host environment"))
        if not from_env:
            return ConfigObject(None, None)
        return config_from_string(ctx, from_env, app.loc, silent=False)

    source = app.sources[-1]
    value = source.ev.value
    if source.kind == "envvar":
        if not isinstance(value, str):
            return ConfigObject(None, None, taint=Unknown("the variable named in config_from_envvar() cannot be known", source.loc))
        if value not in ctx.environ:
            if source.silent:
                return ConfigObject(None, None)
            reason = f"{value} is not set, so config_from_envvar({value!r}) raises ImproperlyConfigured"
            return ConfigObject(None, None, taint=Unknown(reason, source.loc))
        target = ctx.environ[value]
        if target is None:
            return ConfigObject(None, None, taint=Unknown(f"{value} comes from the host environment", source.loc))
        return config_from_string(ctx, target, source.loc, source.silent)
    if isinstance(value, str):
        return config_from_string(ctx, value, source.loc, source.silent)
    if isinstance(value, UserModule):
        return ConfigObject(value.scope, value.name)
    if isinstance(value, ClassObj):
        return ConfigObject(class_scope(value), f"{value.module}:{value.name}")
    if isinstance(value, dict):
        scope = Scope()
        for key, item in value.items():
            if isinstance(key, str):
                scope.bind(key, Binding(Ev(item, source.ev.envs), source.loc))
        return ConfigObject(scope, None)
    if isinstance(value, Unknown):
        return ConfigObject(None, None, taint=value)
    reason = f"the configuration object at line {source.loc.line} cannot be read statically"
    return ConfigObject(None, None, taint=Unknown(reason, source.loc))


def class_scope(cls: ClassObj, depth: int = 0) -> Scope:
    """Merge a config class's attributes over those of its base classes."""
    merged = Scope()
    if depth < 10:
        for base in cls.bases:
            if isinstance(base, ClassObj):
                for name, binding in class_scope(base, depth + 1).bindings.items():
                    merged.bind(name, binding)
    for name, binding in cls.scope.bindings.items():
        merged.bind(name, binding)
    return merged


def config_from_string(ctx: Context, spec: str, loc: Loc, silent: bool) -> ConfigObject:
    """Follow `config_from_object('pkg.mod')`, `'pkg.mod:Obj'`, `'pkg.mod.Obj'` or Django's settings."""
    if spec in DJANGO_SETTINGS_SPECS:
        return django_settings(ctx, loc)
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
    else:
        module_name, attr = spec, ""
        if find_module(spec, ctx.roots) is None and "." in spec:
            module_name, _, attr = spec.rpartition(".")
    module = ctx.load_module(module_name)
    if module is None or (module.file is None and not attr):
        if silent:
            return ConfigObject(None, None)
        message = f"configuration module `{spec}` was not found under the search roots"
        ctx.problems.append(Problem("module-not-found", message, loc))
        return ConfigObject(None, spec, taint=Unknown(message, loc))
    if not attr:
        return ConfigObject(module.scope, module.name)
    binding = module.scope.get(attr)
    target = binding.ev.value if binding is not None else None
    if isinstance(target, ClassObj):
        return ConfigObject(class_scope(target), f"{module.name}:{attr}")
    if isinstance(target, UserModule):
        return ConfigObject(target.scope, target.name)
    reason = f"`{attr}` in {module.file or module.name} is not a class or module that can be read statically"
    return ConfigObject(None, spec, taint=Unknown(reason, loc))


def django_settings(ctx: Context, loc: Loc) -> ConfigObject:
    """Django settings: DJANGO_SETTINGS_MODULE's module, of which Django keeps UPPERCASE names only."""
    if "DJANGO_SETTINGS_MODULE" in ctx.environ and ctx.environ["DJANGO_SETTINGS_MODULE"] is None:
        reason = "DJANGO_SETTINGS_MODULE comes from the host environment, so the settings module is not known"
        return ConfigObject(None, None, uppercase_only=True, taint=Unknown(reason, loc))
    module_name = ctx.environ.get("DJANGO_SETTINGS_MODULE") or settings_module_from_manage_py(ctx)
    if not module_name:
        reason = "DJANGO_SETTINGS_MODULE is not set, so the Django settings module is not known"
        return ConfigObject(None, None, uppercase_only=True, taint=Unknown(reason, loc))
    module = ctx.load_module(module_name)
    if module is None or module.file is None:
        message = f"Django settings module `{module_name}` was not found under the search roots"
        ctx.problems.append(Problem("module-not-found", message, loc))
        return ConfigObject(None, module_name, uppercase_only=True, taint=Unknown(message, loc))
    return ConfigObject(module.scope, module.name, uppercase_only=True)


def settings_module_from_manage_py(ctx: Context) -> str | None:
    """Find `os.environ.setdefault('DJANGO_SETTINGS_MODULE', '...')` in a manage.py under the roots."""
    for root in ctx.roots:
        for candidate in (root / "manage.py", *sorted(root.glob("*/manage.py"))):
            if not candidate.is_file():
                continue
            parsed = ctx.parse(candidate)
            if parsed is None:
                continue
            for node in ast.walk(parsed.tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "setdefault"
                    and len(node.args) == 2
                    and isinstance(node.args[0], ast.Constant)
                    and node.args[0].value == "DJANGO_SETTINGS_MODULE"
                    and isinstance(node.args[1], ast.Constant)
                    and isinstance(node.args[1].value, str)
                ):
                    return node.args[1].value
    return None


# ---- layers and lookup -----------------------------------------------------------


def ops_layer(name: str, ops: list[ConfigOp]) -> Layer:
    layer = Layer(name)
    for op in ops:
        if op.kind == "taint":
            reason = op.ev.value if isinstance(op.ev.value, Unknown) else Unknown("app configuration cannot be read", op.loc)
            for key, entry in layer.entries.items():
                layer.entries[key] = Entry(Ev(reason, entry.ev.envs), entry.loc, entry.written_as)
            layer.taint = reason
        elif op.kind == "setdefault":
            layer.entries.setdefault(op.key, Entry(op.ev, op.loc, op.key))
        else:
            layer.entries.pop(op.key, None)
            layer.entries[op.key] = Entry(op.ev, op.loc, op.key)
    return layer


def config_layer(config: ConfigObject) -> Layer:
    layer = Layer("config", taint=config.taint)
    if config.scope is None:
        return layer
    for key, binding in config.scope.bindings.items():
        if config.uppercase_only and not key.isupper():
            continue
        layer.entries[key] = Entry(binding.ev, binding.loc, key)
    if config.scope.taint is not None:
        layer.taint = config.scope.taint
    return layer


def lookup_keys(name: str, prefix: str | None, table: SettingsTable) -> list[str]:
    """Keys Celery's ConfigurationView tries, in order: prefixed, plain new name, old name."""
    keys: list[str] = []
    if prefix:
        prefixed = name if name.startswith(prefix) else prefix + name
        keys.append(prefixed.upper() if prefix.isupper() else prefixed.lower())
    keys.extend([name, table.new_name(name), table.old_name(name)])
    ordered: list[str] = []
    for key in keys:
        if key not in ordered:
            ordered.append(key)
    return ordered


def lookup(name: str, prefix: str | None, layers: list[Layer], table: SettingsTable) -> Entry | Unknown | None:
    keys = lookup_keys(name, prefix, table)
    for layer in layers:
        for key in keys:
            if key in layer.entries:
                return layer.entries[key]
        if layer.taint is not None:
            return layer.taint
    return None


def resolve_setting(
    ctx: Context, name: str, prefix: str | None, layers: list[Layer], table: SettingsTable, missing_loc: Loc | None
) -> SettingValue:
    env_var = ENV_OVERRIDES.get(name)
    if env_var is not None and env_var in ctx.environ:
        raw = ctx.environ[env_var]
        if raw is None:
            reason = f"{env_var} comes from the host environment and overrides this setting; its value is not known"
            return SettingValue(name, None, False, reason, missing_loc, env_var, False, "env")
        if raw:
            return SettingValue(name, raw, True, None, missing_loc, env_var, False, "env")

    found = lookup(name, prefix, layers, table)
    if name == "broker_url" and isinstance(found, Entry) and found.ev.known and found.ev.value is None:
        found = lookup("broker_host", prefix, layers, table) or found
    if name in ("broker_read_url", "broker_write_url") and (found is None or (isinstance(found, Entry) and not found.ev.value)):
        return resolve_setting(ctx, "broker_url", prefix, layers, table, missing_loc)

    if found is None:
        return SettingValue(name, table.defaults.get(name), True, None, missing_loc, source="default")
    if isinstance(found, Unknown):
        return SettingValue(name, found, False, found.reason, found.loc or missing_loc, source="set")
    return entry_value(name, found)


def entry_value(name: str, entry: Entry) -> SettingValue:
    value = entry.ev.value
    known = entry.ev.known
    reason = None
    if isinstance(value, Unknown):
        reason = value.reason
    elif not known:
        nested = first_unknown(value)
        reason = f"part of the value cannot be known: {nested.reason}" if nested else "the value cannot be known statically"
    env_var = entry.ev.envs[0].var if entry.ev.envs else None
    from_default = bool(entry.ev.envs) and not entry.ev.envs[0].from_env
    return SettingValue(name, value, known, reason, entry.loc, env_var, from_default, "set", entry.written_as)


def first_unknown(value: Any, depth: int = 0) -> Unknown | None:
    if isinstance(value, Unknown):
        return value
    if depth > 100:
        return Unknown("the value nests too deeply to check")
    items: list[Any] = []
    if isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    for item in items:
        found = first_unknown(item, depth + 1)
        if found is not None:
            return found
    return None


def fill_defaults(analysis: CeleryAnalysis, table: SettingsTable, loc: Loc | None) -> None:
    for name in sorted(table.new_names):
        analysis.settings[name] = SettingValue(name, table.defaults.get(name), True, None, loc, source="default")


# ---- problems with setting names ----------------------------------------------


def looks_like_setting(name: str, binding: Binding) -> bool:
    """Skip private names, imports, modules and callables: they are not meant as settings."""
    if name.startswith("_") or binding.kind != "value":
        return False
    value = binding.ev.value
    return is_data(value) or isinstance(value, Unknown) or contains_unknown(value)


def check_unknown_names(app: AppObj, config: ConfigObject, prefix: str | None, table: SettingsTable, analysis: CeleryAnalysis) -> None:
    seen: set[tuple[str, Loc]] = set()
    candidates: list[tuple[str, Loc]] = []
    if config.scope is not None:
        for key, binding in config.scope.bindings.items():
            if config.uppercase_only and not key.isupper():
                continue
            if looks_like_setting(key, binding):
                candidates.append((key, binding.loc))
    for op in app.ops:
        if op.kind != "taint":
            candidates.append((op.key, op.loc))

    for key, loc in candidates:
        if (key, loc) in seen:
            continue
        seen.add((key, loc))
        suggestion = suggest_setting(key, prefix, table, strict=config.uppercase_only)
        if suggestion is None:
            continue
        if suggestion == key:
            continue
        message = f"`{key}` is not a Celery setting, so Celery ignores it"
        analysis.problems.append(Problem("unknown-setting", message, loc, suggestion, "XG005"))


def suggest_setting(key: str, prefix: str | None, table: SettingsTable, strict: bool) -> str | None:
    """Return the closest valid name for an unknown `key`, `key` itself when valid, or None.

    With a namespace, only names that carry the prefix count; for Django settings
    (`strict`) other names are Django's own settings.
    """
    if prefix:
        cased_prefix = prefix.upper() if prefix.isupper() else prefix.lower()
        if key.startswith(cased_prefix):
            rest = key[len(cased_prefix):]
            if rest.lower() in table.new_names or key in table.old_names:
                return key
            pool = [cased_prefix + (name.upper() if prefix.isupper() else name) for name in table.new_names]
            pool += [old for old in table.old_names if old.startswith(cased_prefix)]
            return table.closest(key, pool)
        if strict:
            return None
    if table.is_setting(key):
        return key
    return table.closest(key)


def check_mixed_names(app: AppObj, config: ConfigObject, table: SettingsTable, analysis: CeleryAnalysis) -> None:
    """Report old and new names used together, as Celery's detect_settings raises for them."""
    keys: dict[str, Loc] = {}
    if config.scope is not None:
        for key, binding in config.scope.bindings.items():
            keys[key] = binding.loc
    elif config.taint is None:
        for op in app.ops:
            if op.kind != "taint" and not op.auto:
                keys.setdefault(op.key, op.loc)
    have = set(keys)
    new = have & table.new_names
    old = have & table.old_names
    if not new or not old:
        return
    old_wins = len(old) > len(new)
    minority, convert = (new, table.to_old) if old_wins else (old, table.to_new)
    style = "old UPPERCASE" if old_wins else "new lowercase"
    for key in sorted(minority):
        replacement = convert.get(key, key)
        if replacement in have:
            continue
        message = f"`{key}` breaks the {style} style of the other names, so Celery raises ImproperlyConfigured"
        analysis.problems.append(Problem("mixed-setting-names", message, keys[key], replacement, "XG006"))
