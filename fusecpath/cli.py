"""The ``fusecpath`` command line: a thin layer over the Python API.

The app is built in a function and plugins load only when a command needs the registry.
Exit codes: 0 ok, 1 failures (including bad input), 2 usage. ``--json`` output is documented in
docs/cli.md and stable.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Annotated, Any

import typer

from fusecpath.errors import FusecpathError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def console():
    from rich.console import Console

    return Console()


def _version_callback(value: bool) -> None:
    if value:
        from fusecpath import __version__

        typer.echo(f"fusecpath {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="fusecpath",
        help="A model zoo and fusion engine for pathology foundation models.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @app.callback()
    def root(
        version: Annotated[
            bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")
        ] = False,
    ) -> None:
        """fusecpath: fuse whichever pathology foundation models you name."""

    models = typer.Typer(help="List and inspect the registered foundation models.", no_args_is_help=True)
    app.add_typer(models, name="models")

    @models.command("list")
    def models_list(
        level: Annotated[str | None, typer.Option(help="Only 'patch' or 'slide' models.")] = None,
        all_: Annotated[bool, typer.Option("--all", help="Also catalogue models whose plugin is not installed.")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """List registered models (without importing torch)."""
        from fusecpath.api import describe_encoders

        if level not in (None, "patch", "slide"):
            raise typer.BadParameter("use 'patch' or 'slide'", param_hint="--level")
        rows = describe_encoders(level=level, include_catalogue=all_)
        if as_json:
            print_json(rows)
            return
        from rich.table import Table

        table = Table("name", "level", "dim", "licence", "gated", "source", "plugin")
        for row in rows:
            style = None if row["installed"] else "dim"
            plugin = row["plugin"] if row["installed"] else f"{row['plugin']} ({row['install']})"
            table.add_row(row["name"], row["level"], str(row["embed_dim"]), row["license"],
                          "yes" if row["gated"] else "", row["source"], plugin, style=style)
        console().print(table)

    @models.command("info")
    def models_info(name: str, as_json: JsonOpt = False) -> None:
        """Everything about one model: spec, weights, licence, gating, plugin, missing packages."""
        from fusecpath.api import describe_encoder

        info = describe_encoder(name)
        if as_json:
            print_json(info)
            return
        out = console()
        for key, value in info.items():
            if value not in (None, "", [], {}, ()):
                out.print(f"[bold]{key}[/bold]: {value}", highlight=False)

    @app.command("plugins")
    def plugins(as_json: JsonOpt = False) -> None:
        """List the loaded plugins: distribution, version, hooks and models."""
        from fusecpath.api import describe_plugins

        rows = describe_plugins()
        if as_json:
            print_json(rows)
            return
        from rich.table import Table

        table = Table("distribution", "version", "hooks", "models")
        for row in rows:
            table.add_row(row["distribution"], row["version"] or "", ", ".join(row["hooks"]),
                          ", ".join(row["models"]))
        console().print(table)

    return app


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"fusecpath: warning: {message}\n"


def main(argv: list[str] | None = None) -> None:
    warnings.formatwarning = _format_warning
    app = build_app()
    try:
        app(args=argv, prog_name="fusecpath")
    except FusecpathError as exc:
        typer.echo(f"fusecpath: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("fusecpath: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
