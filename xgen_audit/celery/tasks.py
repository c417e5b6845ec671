"""Tasks, task base classes and the task calls that some rules care about.

Every Python file under the search roots is read, because tasks usually live in
modules that the worker finds through `include=`, `imports` or
`autodiscover_tasks()`, which name packages rather than files.
"""

from __future__ import annotations

import ast
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xgen_audit.celery.evaluate import Context, ModuleEval
from xgen_audit.celery.locate import iter_python_files, module_name_for
from xgen_audit.celery.model import CodeUse, OptionValue, TaskClassInfo, TaskInfo
from xgen_audit.celery.source import ParsedFile, read_python
from xgen_audit.celery.values import AppObj, ClassObj, Scope

# Task class attributes that rules read (celery.app.task.Task).
TASK_CLASS_OPTIONS = frozenset(
    {
        "acks_late",
        "acks_on_failure_or_timeout",
        "reject_on_worker_lost",
        "retry_on_worker_lost",
        "autoretry_for",
        "max_retries",
        "default_retry_delay",
        "retry_backoff",
        "retry_backoff_max",
        "retry_jitter",
        "time_limit",
        "soft_time_limit",
        "track_started",
        "ignore_result",
        "rate_limit",
        "expires",
        "typing",
    }
)

log = logging.getLogger(__name__)

# Reading every file of a very large build context (a monorepo, a vendored
# virtualenv) would take minutes, so the scan stops after this many seconds.
TASK_SCAN_SECONDS = 20.0

# Files without any of these words define no task and make no task call.
TASK_WORDS = (b"task", b"Task", b"AsyncResult", b"countdown", b"eta=", b"delay(")

COUNTDOWN_METHODS = frozenset({"apply_async", "retry", "set", "send_task", "signature", "subtask"})
SENDING_METHODS = frozenset({"delay", "apply_async", "send_task"})
RESULT_ATTRIBUTES = frozenset({"state", "status", "result", "info", "traceback"})
RESULT_METHODS = frozenset({"get", "ready", "successful", "failed", "wait", "forget", "collect"})


@dataclass
class TaskScan:
    tasks: list[TaskInfo] = field(default_factory=list)
    task_classes: list[TaskClassInfo] = field(default_factory=list)
    countdown_uses: list[CodeUse] = field(default_factory=list)
    result_reads: list[CodeUse] = field(default_factory=list)


def scan_tasks(ctx: Context, roots: list[Path], app: AppObj | None) -> TaskScan:
    """Collect tasks and task calls from the project's files (problems in them are not reported)."""
    # A separate context keeps syntax errors of unrelated files out of the app's problems.
    task_ctx = Context(roots, dict(ctx.environ), base_dir=ctx.base_dir)
    task_ctx.parsed = dict(ctx.parsed)
    scan = TaskScan()
    app_base = task_cls_options(task_ctx, app)

    seen: set[Path] = set()
    deadline = time.monotonic() + TASK_SCAN_SECONDS
    for root in roots:
        for path in iter_python_files(root):
            if time.monotonic() > deadline:
                # NOTE: tasks in files after this point are not seen.
                log.warning("task scan stopped after %.0f s at %s", TASK_SCAN_SECONDS, path)
                return scan
            resolved = path.resolve()
            if resolved in seen or not mentions_tasks(path):
                continue
            seen.add(resolved)
            parsed = task_ctx.parsed.get(path)
            if parsed is None:
                parsed, _ = read_python(path, task_ctx.display(path))
                task_ctx.parsed[path] = parsed
            if parsed is None:
                continue
            scan_file(task_ctx, parsed, path, roots, app_base, scan)
    return scan


def mentions_tasks(path: Path) -> bool:
    try:
        data = path.read_bytes() if path.stat().st_size <= 2 * 1024 * 1024 else b""
    except OSError:
        return False
    return any(word in data for word in TASK_WORDS)


def task_cls_options(ctx: Context, app: AppObj | None) -> dict[str, OptionValue]:
    """Options of the app-wide base task class (`Celery(task_cls=...)`)."""
    if app is None or app.task_cls is None:
        return {}
    value = app.task_cls.value
    if isinstance(value, str):
        module_name, _, attr = value.partition(":") if ":" in value else value.rpartition(".")
        module = ctx.load_module(module_name)
        binding = module.scope.get(attr) if module is not None else None
        value = binding.ev.value if binding is not None else None
    if isinstance(value, ClassObj):
        return {name: OptionValue(option.value, option.loc, "task_cls", option.text) for name, option in class_options(value).items()}
    return {}


def scan_file(ctx: Context, parsed: ParsedFile, path: Path, roots: list[Path], app_base: dict[str, OptionValue], scan: TaskScan) -> None:
    evaluator = module_evaluator(ctx, parsed, path, roots)

    for node in parsed.tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            task = task_from_function(evaluator, node, app_base)
            if task is not None:
                scan.tasks.append(task)
        elif isinstance(node, ast.ClassDef):
            info = task_class_info(evaluator, node)
            if info is not None:
                scan.task_classes.append(info)

    for node in ast.walk(parsed.tree):
        if isinstance(node, ast.Call):
            countdown_use(parsed, node, scan)
    find_result_reads(parsed, scan)


def module_evaluator(ctx: Context, parsed: ParsedFile, path: Path, roots: list[Path]) -> ModuleEval:
    dotted = module_name_for(path, roots)
    if dotted is not None:
        module = ctx.load_module(dotted)
        if module is not None and module.file is not None:
            return ModuleEval(ctx, parsed, dotted, path.name == "__init__.py", module.scope)
    scope = Scope()
    evaluator = ModuleEval(ctx, parsed, dotted or path.stem, path.name == "__init__.py", scope)
    evaluator.run()
    return evaluator


def decorator_kind(decorator: ast.expr) -> str | None:
    """Return `shared_task`, `<name>.task` and the like for a task decorator, else None."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Name) and target.id in ("shared_task", "task"):
        return target.id
    if isinstance(target, ast.Attribute) and target.attr in ("task", "shared_task"):
        owner = ast.unparse(target.value) if isinstance(target.value, (ast.Name, ast.Attribute)) else "?"
        return f"{owner}.{target.attr}"
    return None


def task_from_function(evaluator: ModuleEval, node: ast.FunctionDef | ast.AsyncFunctionDef, app_base: dict[str, OptionValue]) -> TaskInfo | None:
    parsed = evaluator.parsed
    for decorator in node.decorator_list:
        kind = decorator_kind(decorator)
        if kind is None:
            continue
        task = TaskInfo(f"{evaluator.module}.{node.name}", parsed.loc(node), kind)
        options: dict[str, OptionValue] = {}
        base_options: dict[str, OptionValue] = {}
        if isinstance(decorator, ast.Call):
            for keyword in decorator.keywords:
                if keyword.arg is None:
                    continue
                value = evaluator.expr(keyword.value)
                text = parsed.segment(keyword.value)
                stored = value.value.name if isinstance(value.value, ClassObj) else value.value
                options[keyword.arg] = OptionValue(stored, parsed.loc(keyword.value), "decorator", text)
                if keyword.arg == "name" and isinstance(value.value, str):
                    task.name = value.value
                if keyword.arg == "base":
                    task.base = text
                    if isinstance(value.value, ClassObj):
                        base_options = class_options(value.value)
        merged = dict(app_base if task.base is None else {})
        merged.update(base_options)
        merged.update(options)
        task.options = merged
        return task
    return None


def is_task_class(value: Any, depth: int = 0) -> bool:
    if depth > 10:
        return False
    if isinstance(value, ClassObj):
        return any(is_task_class(base, depth + 1) for base in value.bases)
    path = getattr(value, "path", None)
    return isinstance(path, str) and path.startswith("celery") and path.endswith("Task")


def class_options(cls: ClassObj, depth: int = 0) -> dict[str, OptionValue]:
    """Task options set as class attributes, base classes first."""
    options: dict[str, OptionValue] = {}
    if depth < 10:
        for base in cls.bases:
            if isinstance(base, ClassObj):
                options.update(class_options(base, depth + 1))
    for name, binding in cls.scope.bindings.items():
        if name in TASK_CLASS_OPTIONS:
            options[name] = OptionValue(binding.ev.value, binding.loc, "base", "")
    return options


def task_class_info(evaluator: ModuleEval, node: ast.ClassDef) -> TaskClassInfo | None:
    binding = evaluator.scope.get(node.name)
    cls = binding.ev.value if binding is not None else None
    if not isinstance(cls, ClassObj):
        evaluator.class_def(node)
        binding = evaluator.scope.get(node.name)
        cls = binding.ev.value if binding is not None else None
    if not isinstance(cls, ClassObj) or not is_task_class(cls):
        textual = any(ast.unparse(base).split(".")[-1] == "Task" for base in node.bases)
        if not textual or not isinstance(cls, ClassObj):
            return None
    return TaskClassInfo(node.name, evaluator.module, evaluator.parsed.loc(node), class_options(cls))


def countdown_use(parsed: ParsedFile, node: ast.Call, scan: TaskScan) -> None:
    if not isinstance(node.func, ast.Attribute) or node.func.attr not in COUNTDOWN_METHODS:
        return
    for keyword in node.keywords:
        if keyword.arg in ("countdown", "eta") and not (isinstance(keyword.value, ast.Constant) and keyword.value.value is None):
            kind = f"{node.func.attr}({keyword.arg}=...)"
            scan.countdown_uses.append(CodeUse(kind, parsed.loc(keyword.value), parsed.segment(node)))


def find_result_reads(parsed: ParsedFile, scan: TaskScan) -> None:
    """Record `AsyncResult(...)` and reads of results returned by `delay()`/`apply_async()`."""
    scopes: list[ast.AST] = [parsed.tree]
    scopes += [node for node in ast.walk(parsed.tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    recorded: set[tuple[int, int]] = set()

    def record(kind: str, node: ast.AST) -> None:
        key = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
        if key not in recorded:
            recorded.add(key)
            scan.result_reads.append(CodeUse(kind, parsed.loc(node), parsed.segment(node)))

    for scope in scopes:
        result_names: set[str] = set()
        for node in walk_scope(scope):
            if isinstance(node, ast.Assign) and produces_result(node.value):
                result_names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        for node in walk_scope(scope):
            if isinstance(node, ast.Call) and call_name(node) == "AsyncResult":
                record("AsyncResult", node)
            if not isinstance(node, ast.Attribute):
                continue
            holder = node.value
            is_result = produces_result(holder) or (isinstance(holder, ast.Name) and holder.id in result_names)
            if is_result and (node.attr in RESULT_ATTRIBUTES or node.attr in RESULT_METHODS):
                record(f".{node.attr}", node)


def walk_scope(scope: ast.AST):
    """Walk a module or function body without entering nested functions."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        stack.extend(ast.iter_child_nodes(node))


def call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def produces_result(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and call_name(node) in (SENDING_METHODS | {"AsyncResult"})

