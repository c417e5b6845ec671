"""`xgen-audit init production`: write a production override for the current stack.

Register it on the main app with:

    app.add_typer(init_app, name="init")

or, to keep a custom group, `group.command("production")(init_production)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


EXIT_OK = 0
EXIT_USAGE = 2

init_app = typer.Typer(help="Write starting files for a production deployment.", no_args_is_help=True)


@init_app.command("production")
def init_production(
    files: Annotated[
        Optional[list[Path]],
        typer.Option("--file", "-f", help="Base compose files of the stack, in Compose's -f order [default: the compose file in the current folder]."),
    ] = None,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Where to write the override [default: docker-compose.prod.yml beside the first base file]."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the override file if it exists.")] = False,
) -> None:
    """Write a production override that drops bind mounts and datastore ports and adds what production needs."""
    # Imported here so that `check` runs do not load the fix machinery (libcst, ruamel round trip).
    from xgen_audit.fix.override import OverrideError, find_base_file, plan_production_override, write_override

    try:
        base = list(files) if files else [find_base_file(Path("."))]
        plan = plan_production_override(base, output)
        write_override(plan, force=force)
    except (OverrideError, FileExistsError) as error:
        typer.echo(f"xgen-audit: error: {error}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except OSError as error:
        typer.echo(f"xgen-audit: error: cannot write the override: {error}", err=True)
        raise typer.Exit(EXIT_USAGE) from None

    typer.echo(f"wrote {plan.output}", err=True)
    for service, changes in plan.changes.items():
        typer.echo(f"  {service}: {'; '.join(changes)}", err=True)
    if plan.todos:
        typer.echo(f"fill the TODO(xgen-audit) placeholders: {', '.join(plan.todos)}", err=True)
    typer.echo("check the merged configuration with:", err=True)
    typer.echo(plan.compose_command)
    raise typer.Exit(EXIT_OK)
