"""The `xgen-audit` command line: check, rules, rule.

Exit codes: 0 when no finding is at or above `--fail-on`, 1 when one is, 2 for a
usage error (a missing path, a bad option or value).
"""

from __future__ import annotations

import logging
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from xgen_audit import __version__

app = typer.Typer(
    name="xgen-audit",
    help="Check Docker Compose + Celery + Redis deployments against a production hardening plan.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


class OutputFormat(str, Enum):
    TEXT = "text"
    JSON = "json"


class FailOn(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Environment(str, Enum):
    PRODUCTION = "production"
    DEVELOPMENT = "development"


class ColorMode(str, Enum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


def _usage_error(message: str) -> typer.Exit:
    typer.echo(f"xgen-audit: error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"xgen-audit {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")] = False,
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        stream=sys.stderr,
        format="xgen-audit: %(levelname)s: %(message)s",
    )


def _console(output, color: ColorMode):
    from rich.console import Console

    if color is ColorMode.NEVER or (color is ColorMode.AUTO and os.environ.get("NO_COLOR")):
        return Console(file=output, no_color=True, color_system=None, highlight=False)
    if color is ColorMode.ALWAYS:
        return Console(file=output, force_terminal=True, highlight=False)
    return Console(file=output, highlight=False)


@app.command()
def check(
    paths: Annotated[
        Optional[list[Path]],
        typer.Argument(help="Compose files or folders to check (default: the current folder)."),
    ] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.TEXT,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit with 1 when a finding has this severity or a higher one.")
    ] = FailOn.WARNING,
    environment: Annotated[
        Optional[Environment],
        typer.Option("--env", help="Check every file as this environment instead of guessing from file names."),
    ] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Write the report to this file instead of stdout.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print findings only (text format).")] = False,
    color: Annotated[ColorMode, typer.Option("--color", help="Colour text output (NO_COLOR turns auto off).")] = ColorMode.AUTO,
    files: Annotated[
        Optional[list[Path]],
        typer.Option("--file", "-f", help="Check these compose files merged as one stack, in Compose's -f order."),
    ] = None,
    profiles: Annotated[
        Optional[list[str]], typer.Option("--profile", help="Activate a Compose profile (repeatable).")
    ] = None,
    env_files: Annotated[
        Optional[list[Path]],
        typer.Option("--env-file", help="Read interpolation variables from this file instead of the stack's .env."),
    ] = None,
    use_environment: Annotated[
        bool,
        typer.Option("--use-environment", help="Also take interpolation variables from this process's environment."),
    ] = False,
) -> None:
    """Check compose stacks and files; report findings, a checklist per stack or file, and counts."""
    from xgen_audit.audit import AuditOptions, audit_paths
    from xgen_audit.findings import Severity
    from xgen_audit.rules_meta import load_catalog

    targets = paths or ([] if files else [Path(".")])
    for target in [*targets, *(files or []), *(env_files or [])]:
        if not target.exists():
            raise _usage_error(f"path not found: {target}")

    options = AuditOptions(
        environment=environment.value if environment else None,
        files=list(files or []),
        profiles=list(profiles or []),
        env_files=list(env_files) if env_files else None,
        use_environment=use_environment,
    )
    result = audit_paths(targets, options)
    if not result.units:
        logging.getLogger("xgen_audit").warning("no compose files found in %s", ", ".join(map(str, targets)))

    threshold = Severity(fail_on.value).rank
    failed = any(finding.severity.rank >= threshold for finding in result.findings)
    exit_code = EXIT_FINDINGS if failed else EXIT_OK

    _write_report(result, output_format, output, quiet, color, exit_code, load_catalog())
    raise typer.Exit(exit_code)


def _write_report(result, output_format, output, quiet, color, exit_code, catalog) -> None:
    stream = sys.stdout
    handle = None
    if output is not None:
        try:
            handle = open(output, "w", encoding="utf-8")
        except OSError as error:
            raise _usage_error(f"cannot write {output}: {error.strerror}") from None
        stream = handle
    try:
        if output_format is OutputFormat.JSON:
            from xgen_audit.output.json_format import render_json

            stream.write(render_json(result, exit_code))
        else:
            from xgen_audit.output.text import render_text

            console = _console(stream, ColorMode.NEVER if handle is not None else color)
            render_text(console, result, quiet)
    finally:
        if handle is not None:
            handle.close()


@app.command("rules")
def list_rules(
    output_format: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.TEXT,
) -> None:
    """List every rule: id, name, default severity, area and summary."""
    import json

    from xgen_audit.rules_meta import load_catalog

    catalog = load_catalog()
    if output_format is OutputFormat.JSON:
        typer.echo(json.dumps([meta.model_dump(mode="json") for meta in catalog.values()], indent=2))
        return
    for meta in catalog.values():
        typer.echo(f"{meta.id}  {meta.name:<28} {meta.severity.value:<8} {meta.area.value:<8} {meta.summary}")


@app.command("rule")
def show_rule(rule_id: Annotated[str, typer.Argument(help="A rule id such as XG110.")]) -> None:
    """Explain one rule: what it checks, why, and a failing and a fixed example."""
    from xgen_audit.docs import rule_page
    from xgen_audit.rules_meta import load_catalog

    catalog = load_catalog()
    meta = catalog.get(rule_id.upper())
    if meta is None:
        raise _usage_error(f"unknown rule {rule_id!r}; `xgen-audit rules` lists the rules")
    typer.echo(rule_page(meta), nl=False)


def main() -> None:
    app()
