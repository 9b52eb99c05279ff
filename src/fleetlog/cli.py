"""The `fleetlog` command line.

Each command is a thin shell: it reads settings, builds the parts it needs and
hands over to the module that does the work.
"""

from __future__ import annotations

import typer

from fleetlog import __version__

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
