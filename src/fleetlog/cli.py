"""The `fleetlog` command line.

Each command is a thin shell: it reads settings, builds the parts it needs and
hands over to the module that does the work.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.table import Table

from fleetlog import __version__
from fleetlog.config import SETTINGS, ConfigError, Settings, load_settings
from fleetlog.logs import configure_logging

app = typer.Typer(
    name="fleetlog",
    help="Self-hosted data logger for Tesla vehicles (a drop-in successor to TeslaMate).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fleetlog {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """fleetlog: drives, charges, sleep, updates and costs of your Tesla, in your own database."""


config_app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _settings() -> Settings:
    """Load settings or exit with the list of what to fix (exit code 2)."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None
    configure_logging(settings.log_level, settings.secret_values())
    return settings


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn expected failures into one clear line on stderr and exit code 1."""
    try:
        yield
    except typer.Exit:
        raise
    except Exception as exc:  # the shell's last line of defence; the message is the help
        if getattr(exc, "user_facing", False) or type(exc).__module__.startswith("fleetlog"):
            typer.echo(f"fleetlog: {exc}", err=True)
            raise typer.Exit(code=1) from None
        raise


@config_app.command("show")
def config_show(
    all_: bool = typer.Option(False, "--all", help="Also list settings left at their default."),
) -> None:
    """Print the effective settings, secrets masked."""
    settings = _settings()
    table = Table("setting", "value", "from", box=None, pad_edge=False)
    shown = settings.display()
    for s in SETTINGS:
        origin = settings.sources.get(s.attr, "default")
        if all_ or origin == "env":
            table.add_row(s.env, shown[s.env], origin)
    table.add_row("(database)", settings.database_url_masked, "derived")
    table.add_row("(data directory)", str(settings.data_path), "derived")
    table.add_row("(mqtt)", "on" if settings.mqtt_enabled else "off", "derived")
    Console(file=sys.stdout, width=200, soft_wrap=True).print(table)


def _not_yet(command: str) -> None:
    typer.echo(f"fleetlog {command}: not available yet in {__version__}.", err=True)
    raise typer.Exit(code=2)


@app.command()
def run() -> None:
    """Run the logger for every enabled car (not available yet)."""
    _not_yet("run")


@app.command()
def sim() -> None:
    """Run the Tesla cloud simulator (not available yet)."""
    _not_yet("sim")


@app.command()
def login() -> None:
    """Sign in to Tesla or a provider and store the tokens (not available yet)."""
    _not_yet("login")


def main() -> None:
    """Console-script entry point."""
    app()
