"""Set `broker_connection_retry_on_startup = True` in a Celery configuration module (XG201).

The edit works on the source with libcst, which keeps every comment and all
formatting outside the edited statement. It never imports or runs the module.
Places it understands, in the order it looks for them:

- an existing setting: a module-level `broker_connection_retry_on_startup = ...`,
  Django's `CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = ...`,
  `app.conf.broker_connection_retry_on_startup = ...`, or a keyword or dict key
  in `app.conf.update(...)`: its value becomes `True`;
- the statement at the finding's line, when it creates the app
  (`app = Celery(...)`), loads its configuration (`app.config_from_object(...)`),
  calls `app.conf.update(...)` or sets another Celery setting;
- otherwise the file's own style: Django `CELERY_*` settings, lower-case
  settings, an `app.conf.update(...)` call, or the app object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

SETTING = "broker_connection_retry_on_startup"
DJANGO_SETTING = "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP"
_SETTINGS = {SETTING, DJANGO_SETTING}

# Module-level names that mark a file as a Celery configuration module.
_CELERY_PREFIXES = (
    "broker_", "result_", "task_", "worker_", "beat_", "accept_content", "timezone", "enable_utc",
    "imports", "include", "event_", "control_", "security_", "redis_", "cache_backend", "database_",
)
_DJANGO_PREFIX = re.compile(r"^CELERY_[A-Z0-9_]+$")
_CONFIG_LOADERS = {"config_from_object", "config_from_envvar"}


class PythonFixError(Exception):
    """The setting cannot be placed safely; the message gives the reason."""


@dataclass(frozen=True, slots=True)
class PythonEdit:
    """The new source and a description of the change; `changed` is False when it was already True."""

    text: str
    description: str
    changed: bool


def set_retry_on_startup(source: str, line: int | None = None) -> PythonEdit:
    """Return `source` with Celery's `broker_connection_retry_on_startup` set to True.

    `line` is the 1-based line a finding points to, used to choose where a
    missing setting goes. Raise PythonFixError when no suitable place exists.
    """
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        raise PythonFixError(f"the file is not valid Python: {error.message}") from None
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    statements = _module_statements(module, positions)

    changer = _ValueChanger()
    updated = module.visit(changer)
    if changer.found:
        text = updated.code
        if text == source:
            return PythonEdit(source, f"`{changer.names[0]}` is already True", changed=False)
        return PythonEdit(text, f"set `{changer.names[0]}` to True", changed=True)

    placed = _place_missing(module, statements, line)
    return PythonEdit(placed[0], placed[1], changed=True)


@dataclass(frozen=True, slots=True)
class _Statement:
    index: int
    node: cst.BaseStatement
    start: int
    end: int


def _module_statements(module: cst.Module, positions) -> list[_Statement]:
    found = []
    for index, node in enumerate(module.body):
        position = positions[node]
        found.append(_Statement(index, node, position.start.line, position.end.line))
    return found


# ---------------------------------------------------------------------------
# Changing an existing setting


def _is_true(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == "True"


def _true_like(node: cst.BaseExpression) -> cst.Name:
    return cst.Name("True", lpar=getattr(node, "lpar", ()), rpar=getattr(node, "rpar", ()))


def _conf_attribute(node: cst.BaseExpression) -> str | None:
    """`app.conf.NAME` -> NAME."""
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Attribute) and node.value.attr.value == "conf":
        return node.attr.value
    return None


def _is_conf_update(call: cst.Call) -> bool:
    function = call.func
    return (
        isinstance(function, cst.Attribute)
        and function.attr.value == "update"
        and isinstance(function.value, cst.Attribute)
        and function.value.attr.value == "conf"
    )


def _string_value(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString):
        return node.evaluated_value if isinstance(node.evaluated_value, str) else None
    return None


class _ValueChanger(cst.CSTTransformer):
    """Set every existing assignment of the setting to True, wherever it is in the module."""

    def __init__(self) -> None:
        self.found = False
        self.names: list[str] = []

    def _note(self, name: str) -> None:
        self.found = True
        self.names.append(name)

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        for target in updated.targets:
            name = _target_name(target.target)
            if name is not None:
                self._note(name)
                return updated if _is_true(updated.value) else updated.with_changes(value=_true_like(updated.value))
        return updated

    def leave_AnnAssign(self, original: cst.AnnAssign, updated: cst.AnnAssign) -> cst.AnnAssign:
        name = _target_name(updated.target)
        if name is not None and updated.value is not None:
            self._note(name)
            if not _is_true(updated.value):
                return updated.with_changes(value=_true_like(updated.value))
        return updated

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        if not _is_conf_update(updated):
            return updated
        args = list(updated.args)
        for position, arg in enumerate(args):
            if arg.keyword is not None and arg.keyword.value == SETTING:
                self._note(SETTING)
                if not _is_true(arg.value):
                    args[position] = arg.with_changes(value=_true_like(arg.value))
            elif arg.keyword is None and isinstance(arg.value, cst.Dict):
                args[position] = arg.with_changes(value=self._dict_value(arg.value))
        return updated.with_changes(args=args)

    def _dict_value(self, mapping: cst.Dict) -> cst.Dict:
        elements = list(mapping.elements)
        for position, element in enumerate(elements):
            if isinstance(element, cst.DictElement) and _string_value(element.key) in _SETTINGS:
                self._note(_string_value(element.key) or SETTING)
                if not _is_true(element.value):
                    elements[position] = element.with_changes(value=_true_like(element.value))
        return mapping.with_changes(elements=elements)


def _target_name(target: cst.BaseExpression) -> str | None:
    if isinstance(target, cst.Name) and target.value in _SETTINGS:
        return target.value
    if _conf_attribute(target) == SETTING:
        return SETTING
    return None


# ---------------------------------------------------------------------------
# Adding a missing setting


def _place_missing(module: cst.Module, statements: list[_Statement], line: int | None) -> tuple[str, str]:
    at_line = next((item for item in statements if line is not None and item.start <= line <= item.end), None)
    if at_line is not None:
        placed = _place_at(module, statements, at_line)
        if placed is not None:
            return placed

    django = [item for item in statements if _assigned_name(item.node, _DJANGO_PREFIX.match)]
    if django:
        return _insert_after(module, django[-1], f"{DJANGO_SETTING} = True"), f"added `{DJANGO_SETTING} = True`"
    apps = [item for item in statements if _app_name(item.node)]
    lower = [item for item in statements if _assigned_name(item.node, _is_celery_name)]
    if lower and not apps:
        return _insert_after(module, lower[-1], f"{SETTING} = True"), f"added `{SETTING} = True`"
    updates = [item for item in statements if _conf_update_call(item.node) is not None]
    if updates:
        return _add_keyword(module, updates[-1]), f"added `{SETTING}=True` to `conf.update(...)`"
    if apps:
        return _insert_conf_attribute(module, statements, apps[-1])
    raise PythonFixError(
        "found no Celery app, `conf.update(...)` call or settings in this module; "
        f"set `{SETTING} = True` where the app's configuration is defined"
    )


def _place_at(module: cst.Module, statements: list[_Statement], statement: _Statement) -> tuple[str, str] | None:
    if _conf_update_call(statement.node) is not None:
        return _add_keyword(module, statement), f"added `{SETTING}=True` to `conf.update(...)`"
    if _app_name(statement.node) or _config_loader(statement.node):
        return _insert_conf_attribute(module, statements, statement)
    if _assigned_name(statement.node, _DJANGO_PREFIX.match):
        return _insert_after(module, statement, f"{DJANGO_SETTING} = True"), f"added `{DJANGO_SETTING} = True`"
    if _assigned_name(statement.node, _is_celery_name):
        return _insert_after(module, statement, f"{SETTING} = True"), f"added `{SETTING} = True`"
    return None


def _is_celery_name(name: str) -> bool:
    return name.startswith(_CELERY_PREFIXES)


def _single(node: cst.BaseStatement) -> cst.BaseSmallStatement | None:
    if isinstance(node, cst.SimpleStatementLine) and len(node.body) == 1:
        return node.body[0]
    return None


def _assigned_name(node: cst.BaseStatement, accept) -> str | None:
    small = _single(node)
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        target = small.targets[0].target
    elif isinstance(small, cst.AnnAssign):
        target = small.target
    else:
        return None
    if isinstance(target, cst.Name) and accept(target.value):
        return target.value
    return None


def _app_name(node: cst.BaseStatement) -> str | None:
    """`app = Celery(...)` (or `celery.Celery(...)`) -> `app`."""
    small = _single(node)
    if not isinstance(small, cst.Assign) or len(small.targets) != 1 or not isinstance(small.value, cst.Call):
        return None
    function = small.value.func
    called = function.attr.value if isinstance(function, cst.Attribute) else getattr(function, "value", None)
    target = small.targets[0].target
    if called == "Celery" and isinstance(target, cst.Name):
        return target.value
    return None


def _config_loader(node: cst.BaseStatement) -> str | None:
    """`app.config_from_object(...)` -> `app`."""
    small = _single(node)
    if not isinstance(small, cst.Expr) or not isinstance(small.value, cst.Call):
        return None
    function = small.value.func
    if isinstance(function, cst.Attribute) and function.attr.value in _CONFIG_LOADERS and isinstance(function.value, cst.Name):
        return function.value.value
    return None


def _conf_update_call(node: cst.BaseStatement) -> cst.Call | None:
    small = _single(node)
    if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call) and _is_conf_update(small.value):
        return small.value
    return None


def _insert_after(module: cst.Module, statement: _Statement, code: str) -> str:
    new = cst.parse_statement(code + "\n", config=module.config_for_parsing)
    body = list(module.body)
    body.insert(statement.index + 1, new)
    return module.with_changes(body=body).code


def _insert_conf_attribute(module: cst.Module, statements: list[_Statement], statement: _Statement) -> tuple[str, str]:
    """Add `app.conf.broker_connection_retry_on_startup = True` after the app's last config load.

    `config_from_object` replaces the configuration set before it, so the line
    goes after the last such call for the app, or after the app is created.
    """
    app = _app_name(statement.node) or _config_loader(statement.node)
    assert app is not None
    later = [item for item in statements if item.index >= statement.index and _config_loader(item.node) == app]
    anchor = later[-1] if later else statement
    code = f"{app}.conf.{SETTING} = True"
    return _insert_after(module, anchor, code), f"added `{code}`"


def _add_keyword(module: cst.Module, statement: _Statement) -> str:
    """Add the setting to a `conf.update(...)` call as the call already passes its settings."""
    call = _conf_update_call(statement.node)
    assert call is not None
    args = list(call.args)
    dicts = [arg for arg in args if arg.keyword is None and isinstance(arg.value, cst.Dict)]
    if dicts and not any(arg.keyword is not None for arg in args):
        mapping = dicts[-1].value
        quote = _quote_of(mapping)
        element = cst.DictElement(cst.SimpleString(f"{quote}{SETTING}{quote}"), cst.Name("True"))
        new_mapping = mapping.with_changes(elements=_appended(list(mapping.elements), element, mapping.lbrace.whitespace_after))
        new_call = call.with_changes(args=[arg if arg is not dicts[-1] else arg.with_changes(value=new_mapping) for arg in args])
    else:
        keyword = cst.Arg(
            value=cst.Name("True"),
            keyword=cst.Name(SETTING),
            equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
        )
        new_call = call.with_changes(args=_appended(args, keyword, call.whitespace_before_args))
    line = statement.node
    assert isinstance(line, cst.SimpleStatementLine)
    expression = line.body[0]
    assert isinstance(expression, cst.Expr)
    new_line = line.with_changes(body=[expression.with_changes(value=new_call)])
    body = list(module.body)
    body[statement.index] = new_line
    return module.with_changes(body=body).code


def _quote_of(mapping: cst.Dict) -> str:
    for element in mapping.elements:
        if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString):
            return element.key.quote
    return '"'


def _appended(items: list, new, opening: cst.BaseParenthesizableWhitespace):
    """Append to call arguments or dict elements, copying the separator the others use.

    `opening` is the whitespace after the opening bracket. A call written one
    argument per line gets the new one on its own line, with a trailing comma
    when the call had one.
    """
    if not items:
        return [new]
    last = items[-1]
    trailing = last.comma
    if len(items) >= 2 and isinstance(items[-2].comma, cst.Comma):
        separator = items[-2].comma
    elif isinstance(opening, cst.ParenthesizedWhitespace):
        separator = cst.Comma(whitespace_after=opening)
    else:
        separator = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    if isinstance(last, cst.Arg):
        # Whitespace before the closing bracket moves to the new last argument.
        moved = last.whitespace_after_arg
        return [
            *items[:-1],
            last.with_changes(comma=separator, whitespace_after_arg=cst.SimpleWhitespace("")),
            new.with_changes(comma=trailing, whitespace_after_arg=moved),
        ]
    return [*items[:-1], last.with_changes(comma=separator), new.with_changes(comma=trailing)]
