"""The `xgen-audit` command line: check, rules, rule.

Exit codes: 0 when no finding is at or above `--fail-on`, 1 when one is, 2 for a
usage error (a missing path, a bad option or value).
"""

from __future__ import annotations

import json
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
    SARIF = "sarif"
    GITHUB = "github"
    JUNIT = "junit"
    GITLAB = "gitlab"


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


class _StdinFile:
    """Standard input saved to a private temporary folder under the name the user gave.

    The name decides the environment (a `dev` name is development) and appears in
    every location, so findings read as if the file had been checked in place.
    """

    def __init__(self, display_name: str):
        import tempfile

        self.display_name = display_name
        self.folder = tempfile.TemporaryDirectory(prefix="xgen-audit-stdin-")
        self.path = Path(self.folder.name) / Path(display_name).name
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8")
        self.path.write_bytes(data)

    def rename_results(self, outcome) -> None:
        from xgen_audit.discovery import display_path

        shown = display_path(self.path)

        def rename(item):
            return item.model_copy(update={"file": self.display_name}) if item.file == shown else item

        result = outcome.result
        result.findings = [rename(finding) for finding in result.findings]
        result.checks = [rename(check) for check in result.checks]
        result.files = [self.display_name if name == shown else name for name in result.files]
        for unit in result.units:
            unit.files = [self.display_name if name == shown else name for name in unit.files]

    def close(self) -> None:
        self.folder.cleanup()


def _stdin_to_temporary_file(display_name: str) -> _StdinFile:
    return _StdinFile(display_name)


def _split_selectors(values: list[str] | None) -> list[str] | None:
    """Accept `--select XG1,XG2` as well as repeated `--select` options."""
    if values is None:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


@app.command()
def check(
    paths: Annotated[
        Optional[list[Path]],
        typer.Argument(help="Compose files or folders to check (default: the current folder, or the configured stacks)."),
    ] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.TEXT,
    fail_on: Annotated[
        Optional[FailOn],
        typer.Option("--fail-on", help="Exit with 1 when a finding has this severity or a higher one (default: warning)."),
    ] = None,
    environment: Annotated[
        Optional[Environment],
        typer.Option("--env", help="Check every stack and file as this environment instead of guessing from names."),
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
        Optional[list[str]], typer.Option("--profile", help="Activate a Compose profile (repeatable; '*' for all).")
    ] = None,
    env_files: Annotated[
        Optional[list[Path]],
        typer.Option("--env-file", help="Read interpolation variables from this file instead of the stack's .env."),
    ] = None,
    use_environment: Annotated[
        bool,
        typer.Option("--use-environment", help="Also take interpolation variables from this process's environment."),
    ] = False,
    stack_names: Annotated[
        Optional[list[str]], typer.Option("--stack", help="Check only this configured stack (repeatable).")
    ] = None,
    config_file: Annotated[
        Optional[Path], typer.Option("--config", help="Read settings from this file instead of searching for one.")
    ] = None,
    isolated: Annotated[bool, typer.Option("--isolated", help="Ignore every configuration file.")] = False,
    select: Annotated[
        Optional[list[str]], typer.Option("--select", help="Run only these rules: ids or prefixes such as XG1.")
    ] = None,
    extend_select: Annotated[
        Optional[list[str]], typer.Option("--extend-select", help="Run these rules as well as the selected ones.")
    ] = None,
    ignore: Annotated[Optional[list[str]], typer.Option("--ignore", help="Do not run these rules (ids or prefixes).")] = None,
    exclude: Annotated[
        Optional[list[str]], typer.Option("--exclude", help="Skip files matching these globs (replaces the configured list).")
    ] = None,
    show_settings: Annotated[
        bool, typer.Option("--show-settings", help="Print the resolved settings and where each came from, then exit.")
    ] = False,
    statistics: Annotated[bool, typer.Option("--statistics", help="Print the number of findings per rule instead.")] = False,
    baseline_file: Annotated[
        Optional[Path], typer.Option("--baseline", help="Report only findings that are not in this baseline file.")
    ] = None,
    write_baseline_file: Annotated[
        Optional[Path], typer.Option("--write-baseline", help="Record today's findings in this baseline file and exit 0.")
    ] = None,
    no_suppressions: Annotated[
        bool, typer.Option("--no-inline-suppressions", help="Ignore `# xgen-audit: ignore` comments.")
    ] = False,
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="Exit with 0 even when findings fail the run.")] = False,
    celery_app: Annotated[
        Optional[str],
        typer.Option("--celery-app", help="The Celery app as `package.module:app`, found under the project (never imported)."),
    ] = None,
    stdin_filename: Annotated[
        Optional[str],
        typer.Option("--stdin-filename", help="With PATH `-`: the file name to report and to guess the environment from."),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=0, help="Check stacks and files in this many processes (0: one per CPU).")
    ] = 1,
    fix: Annotated[bool, typer.Option("--fix", help="Apply the safe fixes, then report what is left.")] = False,
    unsafe_fixes: Annotated[
        bool, typer.Option("--unsafe-fixes", help="With --fix or --diff: include fixes that change behaviour.")
    ] = False,
    diff: Annotated[
        bool, typer.Option("--diff", help="Print the unified diff of what --fix would change; change nothing.")
    ] = False,
) -> None:
    """Check compose stacks and files; report findings, a checklist per stack or file, and counts."""
    from xgen_audit.baseline import BaselineError, load_baseline, write_baseline
    from xgen_audit.config import ConfigError, apply_cli_overrides, load_settings
    from xgen_audit.pipeline import RunRequest, UnknownStack, run
    from xgen_audit.rules_meta import load_catalog

    targets = list(paths or [])
    stdin_file = None
    if any(str(target) == "-" for target in targets):
        if len(targets) > 1 or files:
            raise _usage_error("`-` reads one compose document from stdin and cannot be combined with other paths")
        stdin_file = _stdin_to_temporary_file(stdin_filename or "compose.yaml")
        targets = [stdin_file.path]
    elif stdin_filename is not None:
        raise _usage_error("--stdin-filename only applies when PATH is `-`")
    if stdin_file is not None and (fix or diff):
        raise _usage_error("--fix and --diff need files on disk, not standard input")
    for target in [*targets, *(files or []), *(env_files or [])]:
        if target.is_symlink() and not target.exists():
            raise _usage_error(f"cannot follow {target}: a broken or looping symbolic link")
        if not target.exists():
            raise _usage_error(f"path not found: {target}")

    try:
        start = Path(".")
        if targets:
            start = targets[0]
        elif files:
            start = files[0]
        settings = load_settings(start=start, config_file=config_file, isolated=isolated)
        settings = apply_cli_overrides(
            settings,
            select=_split_selectors(select),
            ignore=_split_selectors(ignore),
            extend_select=_split_selectors(extend_select),
            fail_on=fail_on.value if fail_on else None,
            exclude=exclude,
        )
        baseline = load_baseline(baseline_file) if baseline_file is not None else None
    except ConfigError as error:
        raise _usage_error(str(error)) from None

    if show_settings:
        for row in settings.describe():
            typer.echo(f"{row.key} = {json.dumps(row.value, sort_keys=True)}  # {row.source}")
        raise typer.Exit(EXIT_OK)

    request = RunRequest(
        paths=targets,
        settings=settings,
        environment=environment.value if environment else None,
        files=list(files or []),
        profiles=list(profiles or []),
        env_files=list(env_files) if env_files else None,
        use_environment=use_environment,
        stack_names=list(stack_names or []),
        honour_suppressions=not no_suppressions,
        baseline=baseline,
        celery_app=celery_app,
        jobs=jobs or (os.cpu_count() or 1),
    )
    try:
        outcome = run(request)
    except UnknownStack as error:
        raise _usage_error(str(error)) from None
    finally:
        if stdin_file is not None:
            stdin_file.close()
    if stdin_file is not None:
        stdin_file.rename_results(outcome)
    result = outcome.result
    if not result.units:
        logging.getLogger("xgen_audit").warning("no compose files found in %s", ", ".join(map(str, targets or ["."])))

    if fix or diff:
        outcome = _fix(request, outcome, unsafe_fixes, diff)
        result = outcome.result

    if write_baseline_file is not None:
        try:
            written = write_baseline(result.findings, write_baseline_file, outcome.files_text, settings.project_root)
        except BaselineError as error:
            raise _usage_error(str(error)) from None
        typer.echo(f"wrote {len(written.entries)} baseline entries to {write_baseline_file}", err=True)
        raise typer.Exit(EXIT_OK)

    exit_code = EXIT_OK if exit_zero else outcome.exit_code(settings.fail_on)
    _write_report(outcome, output_format, output, quiet, statistics, color, exit_code, load_catalog())
    for entry in outcome.stale_baseline:
        logging.getLogger("xgen_audit").warning(
            "baseline entry no longer occurs: %s in %s (service %s)", entry.rule, entry.file, entry.service or "-"
        )
    raise typer.Exit(exit_code)


def _fix(request, outcome, unsafe: bool, diff_only: bool):
    """Apply (or with diff_only, print) the fixes; return the outcome of a fresh check."""
    from xgen_audit.fix import apply_edits, plan_fixes, unified_diff, verify_edits
    from xgen_audit.pipeline import run

    edits = plan_fixes(outcome.result.findings, unsafe=unsafe, files_text=outcome.files_text)
    if diff_only:
        text = unified_diff(verify_edits(edits))
        typer.echo(text, nl=False)
        raise typer.Exit(EXIT_FINDINGS if text else EXIT_OK)
    report = apply_edits(edits)
    for path in report.written:
        typer.echo(f"fixed {path}", err=True)
    for skipped in report.skipped:
        typer.echo(f"left {skipped.path} unchanged: {skipped.reason}", err=True)
    for item in report.not_fixed:
        finding = item.finding
        typer.echo(f"not fixed: {finding.file}:{finding.line}: {finding.rule}: {item.reason}", err=True)
    typer.echo(f"{len(report.fixed)} fixed, {len(report.not_fixed)} not fixed", err=True)
    return run(request)


def _render(outcome, output_format: OutputFormat, catalog, exit_code: int) -> str:
    result = outcome.result
    if output_format is OutputFormat.JSON:
        from xgen_audit.output.json_format import render_json

        return render_json(result, exit_code)
    if output_format is OutputFormat.SARIF:
        from xgen_audit.output.sarif import render_sarif

        return render_sarif(result.findings, result.checks, catalog, __version__, files_text=outcome.files_text)
    if output_format is OutputFormat.GITHUB:
        from xgen_audit.output.github import render_github

        return render_github(result.findings)
    if output_format is OutputFormat.JUNIT:
        from xgen_audit.output.junit import render_junit

        return render_junit(result.findings, result.checks)
    from xgen_audit.output.gitlab import render_gitlab

    return render_gitlab(result.findings, outcome.files_text)


def _write_report(outcome, output_format, output, quiet, statistics, color, exit_code, catalog) -> None:
    stream = sys.stdout
    handle = None
    if output is not None:
        try:
            handle = open(output, "w", encoding="utf-8")
        except OSError as error:
            raise _usage_error(f"cannot write {output}: {error.strerror}") from None
        stream = handle
    try:
        if statistics:
            from xgen_audit.output import render_statistics

            stream.write(render_statistics(outcome.result.findings))
        elif output_format is OutputFormat.TEXT:
            from xgen_audit.output.text import render_text

            console = _console(stream, ColorMode.NEVER if handle is not None else color)
            render_text(console, outcome.result, quiet)
        else:
            stream.write(_render(outcome, output_format, catalog, exit_code))
    finally:
        if handle is not None:
            handle.close()


@app.command("rules")
def list_rules(
    output_format: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.TEXT,
) -> None:
    """List every rule: id, name, default severity, area and summary."""
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


def _register_init() -> None:
    from xgen_audit.cli.init_cmd import init_app

    app.add_typer(init_app, name="init")


_register_init()


def main() -> None:
    app()
