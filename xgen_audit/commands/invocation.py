"""Find the Celery processes a service runs, and read their options.

A service's effective command line is its `entrypoint` followed by its `command`.
This module looks through the wrappers people put around Celery (`sh -c "..."`,
`bash -c`, `exec`, `env`, `python -m celery`, watchmedo and watchfiles
reloaders, `poetry run`, start scripts copied into the image) and parses each
`celery ... worker|beat|flower|multi` it finds with Celery's own option table.
Airflow's `airflow celery worker` is read with Airflow's option names.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from xgen_audit.commands.cli_tables import CommandTable, OptionSpec, load_tables
from xgen_audit.parse.tree import Loc

Role = Literal["worker", "beat", "flower"]


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    loc: Loc
    unresolved: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OptionValue:
    """An option's value and where it was set: on the command line or in the environment."""

    value: str
    loc: Loc
    source: Literal["argument", "environment"] = "argument"
    flag: str = ""
    unresolved: tuple[str, ...] = ()


@dataclass(slots=True)
class Invocation:
    role: Role
    loc: Loc
    dialect: Literal["celery", "airflow"] = "celery"
    options: dict[str, OptionValue] = field(default_factory=dict)
    global_options: dict[str, OptionValue] = field(default_factory=dict)
    unknown_options: list[Token] = field(default_factory=list)
    script: str | None = None
    # Set when the process was recognised by name only (a start script that could
    # not be read): its options are then unknown.
    unknown_reason: str | None = None


ScriptReader = Callable[[str], "tuple[list[list[Token]], str | None]"]
"""Return the commands of a start script (each a token list), or a reason it cannot be read."""

_SHELLS = {"sh", "bash", "ash", "dash", "zsh", "ksh"}
_PLAIN_WRAPPERS = {"exec", "nohup", "time", "tini", "dumb-init", "chpst", "catatonit", "ddtrace-run"}
_USER_WRAPPERS = {"gosu", "su-exec"}
_RUNNERS = {"poetry", "pipenv", "uv", "pdm", "hatch", "rye"}
_CELERY_ROLES = {"worker": "worker", "beat": "beat", "flower": "flower", "multi": "worker"}
_WATCHMEDO_VALUE_OPTIONS = {
    "-d", "--directory", "-p", "--pattern", "--patterns", "-i", "--ignore-pattern", "--ignore-patterns",
    "--signal", "--kill-after", "--interval", "--debounce-interval",
}
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_MAX_DEPTH = 8

# Airflow is not a dependency, so its worker options are listed here (Airflow 2.x
# `airflow celery worker`). Its `-l` is the log file, not the log level.
_AIRFLOW_WORKER = (
    OptionSpec("concurrency", ("-c", "--concurrency"), True),
    OptionSpec("autoscale", ("-a", "--autoscale"), True),
    OptionSpec("logfile", ("-l", "--log-file"), True),
    OptionSpec("queues", ("-q", "--queues"), True),
    OptionSpec("hostname", ("-H", "--celery-hostname"), True),
    OptionSpec("pidfile", ("--pid",), True),
    OptionSpec("daemon", ("-D", "--daemon"), False),
    OptionSpec("stdout", ("--stdout",), True),
    OptionSpec("stderr", ("--stderr",), True),
    OptionSpec("umask", ("-u", "--umask"), True),
    OptionSpec("skip_serve_logs", ("-s", "--skip-serve-logs"), False),
    OptionSpec("without_gossip", ("--without-gossip",), False),
    OptionSpec("without_mingle", ("--without-mingle",), False),
)
AIRFLOW_ENV = {"concurrency": "AIRFLOW__CELERY__WORKER_CONCURRENCY", "autoscale": "AIRFLOW__CELERY__WORKER_AUTOSCALE"}


def find_invocations(
    tokens: Sequence[Token],
    read_script: ScriptReader | None = None,
    airflow_image: bool = False,
    celery_hint: bool = False,
) -> list[Invocation]:
    """Return every Celery process started by this command line.

    `celery_hint` means the service shows other signs of running Celery (CELERY_*
    variables, a `celery inspect` healthcheck). With it, a start script or an
    image command named like `worker` or `beat` that cannot be read is reported
    as a Celery process whose options are unknown.
    """
    found: list[Invocation] = []
    scanner = _Scanner(read_script, airflow_image, celery_hint, found)
    scanner.scan(list(tokens), depth=0, script=None)
    return found


class _Scanner:
    def __init__(self, read_script, airflow_image, celery_hint, found):
        self.read_script = read_script
        self.airflow_image = airflow_image
        self.celery_hint = celery_hint
        self.found = found

    def scan(self, tokens: list[Token], depth: int, script: str | None) -> None:
        if depth > _MAX_DEPTH:
            return
        tokens = _strip_wrappers(tokens)
        if not tokens:
            return
        if any(char.isspace() for char in tokens[0].text.strip()):
            # A one-item list such as ["celery -A proj worker"] only runs through an
            # image entrypoint that hands it to a shell, so read it as a shell string.
            commands = split_shell(tokens[0].text, tokens[0].loc)
            if commands:
                commands[-1].extend(tokens[1:])
            for command in commands:
                self.scan(command, depth + 1, script)
            return
        head = os.path.basename(tokens[0].text)
        handler = self._handlers().get(head)
        if handler is not None:
            handler(tokens, depth, script)
        elif head.startswith("python") and len(tokens) > 2 and tokens[1].text == "-m":
            self._python_module(tokens, depth, script)
        elif self.airflow_image and head == "worker":
            _parse_airflow(tokens[1:], tokens[0].loc, self.found, script)
        else:
            self._other(tokens, depth, script)

    def _handlers(self):
        handlers = {name: self._shell for name in _SHELLS}
        handlers.update(
            {
                "watchmedo": lambda tokens, depth, script: self.scan(_after_watchmedo(tokens[1:]), depth + 1, script),
                "watchfiles": self._watchfiles,
                "celery": self._celery,
                "airflow": self._airflow,
                "source": lambda *args: None,
                ".": lambda *args: None,
            }
        )
        return handlers

    def _shell(self, tokens, depth, script) -> None:
        command_string = _shell_command_string(tokens)
        if command_string is not None:
            for command in split_shell(command_string.text, command_string.loc):
                self.scan(command, depth + 1, script)
            return
        # `bash /srv/entrypoint_worker.bash`: the shell runs a script file.
        arguments = [token for token in tokens[1:] if not token.text.startswith("-")]
        if arguments:
            self._script(arguments[0], arguments[1:], depth, script)

    def _python_module(self, tokens, depth, script) -> None:
        module = tokens[2].text
        if module == "celery":
            _parse_celery(tokens[2:], self.found, script)
        elif module in ("watchfiles", "watchmedo"):
            self.scan([Token(module, tokens[2].loc), *tokens[3:]], depth + 1, script)

    def _watchfiles(self, tokens, depth, script) -> None:
        target = next((token for token in tokens[1:] if not token.text.startswith("-")), None)
        if target is not None:
            for command in split_shell(target.text, target.loc):
                self.scan(command, depth + 1, script)

    def _celery(self, tokens, depth, script) -> None:
        if self.airflow_image and len(tokens) > 1 and tokens[1].text == "worker":
            _parse_airflow(tokens[2:], tokens[0].loc, self.found, script)
        elif len(tokens) == 1 and self.celery_hint:
            self._guess(tokens[0], "celery", "runs `celery` with no sub-command; the image's entrypoint adds the rest")
        else:
            _parse_celery(tokens, self.found, script)

    def _airflow(self, tokens, depth, script) -> None:
        rest = tokens[1:]
        if rest and rest[0].text == "celery":
            rest = rest[1:]
        if rest and rest[0].text == "worker":
            _parse_airflow(rest[1:], tokens[0].loc, self.found, script)

    def _other(self, tokens, depth, script) -> None:
        texts = [token.text for token in tokens]
        # Django-style wrappers run Celery's CLI as a sub-command:
        # `nautobot-server celery worker`, `python manage.py celery worker`.
        if "celery" in texts[1:]:
            start = texts.index("celery", 1)
            if any(text in _CELERY_ROLES for text in texts[start + 1:]):
                _parse_celery(tokens[start:], self.found, script)
                return
        # `wait-for-it.sh db:5432 -- celery ...`, `dockerize -wait ... -- cmd`.
        if "--" in texts[1:]:
            self.scan(tokens[texts.index("--", 1) + 1:], depth + 1, script)
            return
        if _looks_like_script(tokens[0].text):
            self._script(tokens[0], tokens[1:], depth, script)
        elif depth == 0:
            reason = f"`{tokens[0].text}` is handled by the image's entrypoint, which is not in the compose file"
            self._guess(tokens[0], " ".join(texts[:2]), reason)

    def _script(self, token: Token, arguments: list[Token], depth: int, script: str | None) -> None:
        if self.read_script is None:
            commands, reason = [], "start scripts are not read here"
        else:
            commands, reason = self.read_script(token.text)
        before = len(self.found)
        for command in commands:
            self.scan(command, depth + 1, token.text)
        if len(self.found) == before and reason is not None:
            first_argument = arguments[0].text if arguments else ""
            self._guess(token, f"{os.path.basename(token.text)} {first_argument}", reason, script=token.text)

    def _guess(self, token: Token, name: str, reason: str, script: str | None = None) -> None:
        role = _role_from_name(name.lower(), self.celery_hint)
        if role is not None:
            self.found.append(Invocation(role=role, loc=token.loc, script=script, unknown_reason=reason))


def _strip_wrappers(tokens: list[Token]) -> list[Token]:
    """Drop variable assignments and commands that only wrap the real one."""
    index = 0
    while index < len(tokens):
        text = tokens[index].text
        name = os.path.basename(text)
        if _ENV_ASSIGNMENT.match(text) or text == "--":
            index += 1
        elif name in _PLAIN_WRAPPERS or name == "env":
            index += 1
            while index < len(tokens) and tokens[index].text.startswith("-") and tokens[index].text != "--":
                index += 1
        elif name in _USER_WRAPPERS:
            index += 2
        elif name in _RUNNERS and index + 1 < len(tokens) and tokens[index + 1].text == "run":
            index += 2
        elif name == "newrelic-admin" and index + 1 < len(tokens) and tokens[index + 1].text == "run-program":
            index += 2
        elif name == "opentelemetry-instrument":
            index += 1
            while index < len(tokens) and tokens[index].text.startswith("--"):
                index += 1 if "=" in tokens[index].text else 2
        else:
            break
    return tokens[index:]


def _shell_command_string(tokens: list[Token]) -> Token | None:
    """Return the script given to `sh -c`, also in clusters such as `-ec` or `-exc`."""
    index = 1
    while index < len(tokens) and tokens[index].text.startswith("-"):
        flags = tokens[index].text
        if not flags.startswith("--") and "c" in flags[1:]:
            return tokens[index + 1] if index + 1 < len(tokens) else None
        index += 1
    return None


def _after_watchmedo(tokens: list[Token]) -> list[Token]:
    if tokens and tokens[0].text in ("auto-restart", "shell-command"):
        tokens = tokens[1:]
    index = 0
    while index < len(tokens):
        text = tokens[index].text
        if text == "--":
            return tokens[index + 1:]
        if text.startswith("-"):
            index += 2 if text in _WATCHMEDO_VALUE_OPTIONS else 1
            continue
        return tokens[index:]
    return []


def _looks_like_script(text: str) -> bool:
    return text.endswith(".sh") or text.startswith(("/", "./", "../")) and not text.endswith((".py", ".conf"))


def _role_from_name(name: str, celery_hint: bool) -> Role | None:
    """Guess the Celery role from a script or command name such as /start-celeryworker.

    Without "celery" in the name, only a service with other signs of Celery counts.
    """
    if "celery" not in name and not celery_hint:
        return None
    if "beat" in name:
        return "beat"
    if "flower" in name:
        return "flower"
    if "worker" in name or "celery" in name:
        return "worker"
    return None


def parse_options(
    tokens: Sequence[Token], table: dict[str, OptionSpec], interspersed: bool = True
) -> tuple[dict[str, OptionValue], list[Token], list[Token]]:
    """Parse options as click does: `-c4`, `-c 4`, `--concurrency=4`, flag clusters.

    Returns (options by Python name, positional tokens, unknown option tokens).
    A repeated option keeps its last value, as click does.
    """
    options: dict[str, OptionValue] = {}
    positional: list[Token] = []
    unknown: list[Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        text = token.text
        if text == "--":
            positional.extend(tokens[index + 1:])
            break
        if text.startswith("--"):
            flag, equals, value = text.partition("=")
            spec = table.get(flag)
            if spec is None:
                unknown.append(token)
            elif spec.takes_value:
                if not equals:
                    index += 1
                    value = tokens[index].text if index < len(tokens) else ""
                    unresolved = tokens[index].unresolved if index < len(tokens) else token.unresolved
                else:
                    unresolved = token.unresolved
                options[spec.name] = OptionValue(value, token.loc, flag=flag, unresolved=unresolved)
            else:
                options[spec.name] = OptionValue("true", token.loc, flag=flag)
        elif text.startswith("-") and len(text) > 1:
            index = _parse_short_cluster(tokens, index, table, options, unknown)
        else:
            positional.append(token)
            if not interspersed:
                positional.extend(tokens[index + 1:])
                break
        index += 1
    return options, positional, unknown


def _parse_short_cluster(tokens, index, table, options, unknown) -> int:
    token = tokens[index]
    text = token.text
    position = 1
    while position < len(text):
        flag = "-" + text[position]
        spec = table.get(flag)
        if spec is None:
            unknown.append(token)
            return index
        if spec.takes_value:
            rest = text[position + 1:]
            if rest:
                options[spec.name] = OptionValue(rest, token.loc, flag=flag, unresolved=token.unresolved)
            else:
                index += 1
                value = tokens[index].text if index < len(tokens) else ""
                unresolved = tokens[index].unresolved if index < len(tokens) else token.unresolved
                options[spec.name] = OptionValue(value, token.loc, flag=flag, unresolved=unresolved)
            return index
        options[spec.name] = OptionValue("true", token.loc, flag=flag)
        position += 1
    return index


def _parse_celery(tokens: list[Token], found: list[Invocation], script: str | None) -> None:
    tables = load_tables()
    global_options, rest, unknown = parse_options(tokens[1:], tables["celery"].by_flag(), interspersed=False)
    if not rest:
        return
    subcommand = rest[0].text
    role = _CELERY_ROLES.get(subcommand)
    if role is None:
        return
    arguments = rest[1:]
    if subcommand == "multi":
        # `celery multi start w1 w2 -c 4 ...`: the action and node names come first.
        arguments = [token for token in arguments if token.text.startswith("-") or not token.text.isidentifier()]
    table: CommandTable | None = None
    if role == "beat":
        table = tables["beat"]
    elif role == "worker":
        table = tables["worker"]
    options: dict[str, OptionValue] = {}
    if table is not None:
        options, _positional, unknown_sub = parse_options(arguments, table.by_flag())
        unknown = unknown + unknown_sub
    found.append(
        Invocation(
            role=role,
            loc=tokens[0].loc,
            options=options,
            global_options=global_options,
            unknown_options=unknown,
            script=script,
        )
    )


def _parse_airflow(arguments: list[Token], loc: Loc, found: list[Invocation], script: str | None) -> None:
    table = {flag: spec for spec in _AIRFLOW_WORKER for flag in spec.opts}
    options, _positional, unknown = parse_options(arguments, table)
    found.append(
        Invocation(role="worker", loc=loc, dialect="airflow", options=options, unknown_options=unknown, script=script)
    )


_OPERATORS = {"&&", "||", ";", "|", "&", ";;", "(", ")", "\n"}


def split_shell(script: str, loc: Loc, line_offset: int = 0) -> list[list[Token]]:
    """Split a shell script string into simple commands of located words.

    Words keep the position of the script string itself, moved to the line they are
    on when the string spans lines.
    """
    commands: list[list[Token]] = []
    for number, line in enumerate(_logical_lines(script)):
        line_loc = loc if number == 0 and line_offset == 0 else Loc(loc.file, loc.line + number + line_offset, loc.column)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[Token] = []
        try:
            for word in lexer:
                if word in _OPERATORS or set(word) <= set(";&|()"):
                    if current:
                        commands.append(current)
                    current = []
                    continue
                current.append(Token(word, line_loc))
        except ValueError:
            # Unbalanced quotes: keep what was read, the rest cannot be split.
            pass
        if current:
            commands.append(current)
    return commands


def _logical_lines(script: str) -> list[str]:
    """Join backslash-continued lines at the line where they start.

    The continued lines become empty entries, so an entry's index is still its line.
    """
    lines: list[str] = []
    pending: str | None = None
    start = 0
    for raw in script.splitlines():
        if pending is None:
            start = len(lines)
            pending = ""
        lines.append("")
        stripped = raw.rstrip()
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines[start] = pending + raw
        pending = None
    if pending:
        lines[start] = pending
    return lines
