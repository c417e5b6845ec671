"""Variable interpolation in compose files, with the syntax of compose-go's template package.

Supported forms: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`,
`${VAR?message}`, `${VAR:+alternative}`, `${VAR+alternative}` and `$$` for a literal `$`.
The default, alternative and message parts are interpolated themselves, so defaults nest.
A `$` followed by anything else (`$1`, `$ `) stays as written. A `${` whose body is not a
variable name (`${1}`) is an "invalid interpolation format" error, as in Compose.

`interpolate_tree` applies this to every string value of a located tree. Keys are never
interpolated, which is also what Compose does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from xgen_audit.parse.tree import Loc, YEntry, YMap, YNode, YScalar, YSeq

_NAME_RE = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")

# Operators after the variable name inside braces, longest first so `:-` is not read as `:`.
_OPERATORS = (":?", ":-", ":+", "?", "-", "+")

PROBLEM_UNSET = "unset"
PROBLEM_REQUIRED = "required"
PROBLEM_INVALID = "invalid"


@dataclass(slots=True)
class InterpolationResult:
    """The outcome of interpolating one string.

    `unresolved` names variables that were unset and had no default: Compose substitutes an
    empty string for them and prints a warning. `errors` contains the messages that make Compose
    stop (a required variable without a value, an invalid `${...}` body).
    """

    value: str
    unresolved: tuple[str, ...] = ()
    errors: list[str] = field(default_factory=list)
    used: tuple[str, ...] = ()
    changed: bool = False
    # (variable, message) pairs behind `errors`; the variable is "" for a format error.
    error_details: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class InterpolationProblem:
    """A variable that is missing or a `${...}` that Compose cannot read, at a position.

    `kind` is "unset" (Compose warns and uses ""), "required" (`${X:?}` without a value;
    Compose stops) or "invalid" (bad syntax; Compose stops). `variable` is "" for "invalid".
    """

    loc: Loc
    variable: str
    message: str
    kind: str


class _State:
    """Variables and errors collected by one `interpolate_text` call across nested expressions."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.unresolved: list[str] = []
        self.used: list[str] = []
        self.errors: list[tuple[str, str]] = []

    def note_used(self, name: str) -> None:
        if name not in self.used:
            self.used.append(name)

    def note_unresolved(self, name: str) -> None:
        if name not in self.unresolved:
            self.unresolved.append(name)


def interpolate_text(text: str, env: Mapping[str, str]) -> InterpolationResult:
    """Interpolate `text` with the variables in `env`, as Compose does."""
    state = _State(env)
    value = _substitute(text, state)
    return InterpolationResult(
        value=value,
        unresolved=tuple(state.unresolved),
        errors=[message for _, message in state.errors],
        used=tuple(state.used),
        changed=value != text,
        error_details=list(state.errors),
    )


def _substitute(text: str, state: _State) -> str:
    if "$" not in text:
        return text

    out: list[str] = []
    index = 0
    length = len(text)
    while index < length:
        dollar = text.find("$", index)
        if dollar < 0:
            out.append(text[index:])
            break
        out.append(text[index:dollar])
        following = text[dollar + 1] if dollar + 1 < length else ""

        if following == "$":
            # `$$` is a literal `$`; scanning resumes after both, so `$$HOME` stays `$HOME`.
            out.append("$")
            index = dollar + 2
            continue

        if following == "{":
            close = _closing_brace(text, dollar)
            if close < 0:
                state.errors.append(("", _invalid_message(text[dollar:])))
                out.append(text[dollar:])
                break
            out.append(_expand_braced(text[dollar + 2 : close], text[dollar : close + 1], state))
            index = close + 1
            continue

        match = _NAME_RE.match(text, dollar + 1)
        if match is None:
            out.append("$")
            index = dollar + 1
            continue
        out.append(_lookup(match.group(0), state))
        index = match.end()

    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """Return the index of the `}` that closes the `${` at `start`, or -1.

    Only `${` opens a level, as in compose-go, so a lone `{` inside a default is plain text.
    """
    depth = 0
    index = start
    while index < len(text):
        if text.startswith("${", index):
            depth += 1
            index += 2
            continue
        if text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return -1


def _invalid_message(expression: str) -> str:
    return (
        f"invalid interpolation format {expression!r}: a '${{' must be followed by a variable "
        "name and an optional :-, -, :?, ?, :+ or + part; write $$ for a literal $"
    )


def _expand_braced(body: str, expression: str, state: _State) -> str:
    match = _NAME_RE.match(body)
    if match is None:
        state.errors.append(("", _invalid_message(expression)))
        return ""
    name = match.group(0)
    rest = body[match.end() :]
    if rest == "":
        return _lookup(name, state)

    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        state.errors.append(("", _invalid_message(expression)))
        return ""
    argument = rest[len(operator) :]

    state.note_used(name)
    value = state.env.get(name)
    is_set = value is not None
    is_set_and_non_empty = bool(value)

    if operator in (":-", "-"):
        use_value = is_set_and_non_empty if operator == ":-" else is_set
        return value if use_value else _substitute(argument, state)

    if operator in (":?", "?"):
        has_value = is_set_and_non_empty if operator == ":?" else is_set
        if has_value:
            return value
        detail = _substitute(argument, state)
        message = f"required variable {name} is missing a value"
        if detail:
            message += f": {detail}"
        state.errors.append((name, message))
        return ""

    use_alternative = is_set_and_non_empty if operator == ":+" else is_set
    if use_alternative:
        return _substitute(argument, state)
    return value or ""


def _lookup(name: str, state: _State) -> str:
    state.note_used(name)
    value = state.env.get(name)
    if value is None:
        state.note_unresolved(name)
        return ""
    return value


def interpolate_tree(
    node: YNode | None, env: Mapping[str, str]
) -> tuple[YNode | None, list[InterpolationProblem]]:
    """Return a copy of the tree with every string value interpolated, and the problems found.

    The input tree is left unchanged because aliases share nodes between places. A node that
    appears several times through aliases is interpolated once and shared again in the copy,
    which keeps alias-heavy documents fast. Problems are sorted by position.
    """
    problems: list[InterpolationProblem] = []
    memo: dict[int, YNode] = {}
    copy = None if node is None else _copy_node(node, env, memo, problems)
    problems.sort(key=lambda problem: (problem.loc, problem.variable, problem.message))
    return copy, problems


def _copy_node(
    node: YNode, env: Mapping[str, str], memo: dict[int, YNode], problems: list[InterpolationProblem]
) -> YNode:
    known = memo.get(id(node))
    if known is not None:
        return known

    if isinstance(node, YScalar):
        copy: YNode = _copy_scalar(node, env, problems)
    elif isinstance(node, YSeq):
        copy = YSeq(items=[], loc=node.loc, tag=node.tag)
        memo[id(node)] = copy
        copy.items = [_copy_node(item, env, memo, problems) for item in node.items]
    else:
        copy = YMap(entries={}, loc=node.loc, tag=node.tag)
        memo[id(node)] = copy
        copy.entries = {
            key: YEntry(entry.key, entry.key_loc, _copy_node(entry.value, env, memo, problems))
            for key, entry in node.entries.items()
        }
    memo[id(node)] = copy
    return copy


def _copy_scalar(
    node: YScalar, env: Mapping[str, str], problems: list[InterpolationProblem]
) -> YScalar:
    if not isinstance(node.value, str) or "$" not in node.value:
        return node

    result = interpolate_text(node.value, env)
    for name in result.unresolved:
        problems.append(
            InterpolationProblem(
                node.loc,
                name,
                f"variable {name} is not set; Compose substitutes an empty string",
                PROBLEM_UNSET,
            )
        )
    for name, message in result.error_details:
        kind = PROBLEM_REQUIRED if name else PROBLEM_INVALID
        problems.append(InterpolationProblem(node.loc, name, message, kind))

    return YScalar(
        value=result.value,
        loc=node.loc,
        raw=node.raw,
        style=node.style,
        tag=node.tag,
        unresolved=result.unresolved,
        interpolated=True,
    )


# Casts that Compose applies to some interpolated strings (ports[].target, deploy.replicas,
# read_only, ...). They follow compose-go's loader: integers in base 10, floats for `cpus`,
# and booleans that also accept y/yes/on and n/no/off (Compose warns about those).
_TRUE_WORDS = frozenset({"y", "yes", "true", "on"})
_FALSE_WORDS = frozenset({"n", "no", "false", "off"})


def cast_int(text: str) -> int | None:
    """Return `text` as an integer the way Compose casts it, or None when it is not one."""
    stripped = text.strip()
    if not re.fullmatch(r"[-+]?[0-9]+", stripped):
        return None
    return int(stripped)


def cast_float(text: str) -> float | None:
    """Return `text` as a float (used for `cpus`), or None when it is not a number."""
    try:
        return float(text.strip())
    except ValueError:
        return None


def cast_bool(text: str) -> bool | None:
    """Return `text` as a boolean the way Compose casts it, or None when it is not one."""
    lowered = text.strip().lower()
    if lowered in _TRUE_WORDS:
        return True
    if lowered in _FALSE_WORDS:
        return False
    return None
