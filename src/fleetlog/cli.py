"""The `fleetlog` command line.

Each command is a thin shell: it reads settings, builds the parts it needs and
hands over to the module that does the work.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
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


def _engine(settings: Settings, url: str | None = None) -> sa.Engine:
    from fleetlog.store import make_engine

    return make_engine(
        url or settings.database_url,
        pool_size=settings.database_pool_size,
        timeout_s=settings.database_timeout_ms / 1000.0,
    )


def _quiet_alembic() -> None:
    # Alembic narrates every step at INFO; fleetlog prints its own one-line summary.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _migrate(engine: sa.Engine, *, adopt_teslamate: bool = False) -> None:
    from fleetlog.store import upgrade

    _quiet_alembic()
    report = upgrade(engine, adopt_teslamate=adopt_teslamate)
    typer.echo(report.summary())
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)


def _print_status(engine: sa.Engine) -> None:
    from fleetlog.store import database_status

    status = database_status(engine)
    console = Console(file=sys.stdout, width=120, soft_wrap=True)
    console.print(f"database  {status.url}  ({status.backend})")
    state = "up to date" if status.up_to_date else f"behind (head {status.head})"
    console.print(f"schema    revision {status.revision}  {state}")
    if status.teslamate_detected:
        console.print("teslamate this is an adopted TeslaMate database")
    table = Table("table", "rows", box=None, pad_edge=False)
    for name, count in sorted(status.row_counts.items()):
        table.add_row(name, str(count))
    console.print(table)


@app.command()
def migrate(
    adopt_teslamate: bool = typer.Option(
        False,
        "--adopt-teslamate",
        help="Allow fleetlog to add its own tables to an existing TeslaMate database "
        "(TeslaMate's tables are never changed).",
    ),
) -> None:
    """Create or upgrade the database schema (idempotent; run and demo do it on start)."""
    settings = _settings()
    with _user_errors():
        _migrate(_engine(settings), adopt_teslamate=adopt_teslamate)


@app.command()
def status() -> None:
    """Show the database, its schema revision and the row count of every table."""
    settings = _settings()
    with _user_errors():
        _print_status(_engine(settings))


@app.command()
def demo(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the demo keeps its SQLite database.")
    ] = Path("demo-data"),
    scenario: Annotated[
        str, typer.Option(help="commuter-week, road-trip, city-day, cold-week or fleet.")
    ] = "commuter-week",
    mode: Annotated[
        str, typer.Option(help="owner (free polling) or fleet (paid: the budget at work).")
    ] = "owner",
    speed: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 60.0,
    start: Annotated[
        str, typer.Option(help="Where in the scenario to begin, e.g. 1d19h (default: busy).")
    ] = "",
    duration: Annotated[
        float, typer.Option(help="Stop after this many real seconds (0: run until Ctrl-C).")
    ] = 0.0,
    every: Annotated[float, typer.Option(help="Seconds between status lines.")] = 5.0,
) -> None:
    """Simulator + logger on SQLite: a simulated car logged live, no Tesla account needed."""
    import asyncio

    from fleetlog.demo import DemoOptions, run_demo
    from fleetlog.sim.command import parse_offset

    settings = _settings()
    if settings.sources.get("log_level") != "env":
        # the status line tells the story; FLEETLOG_LOG_LEVEL=INFO shows every transition
        logging.getLogger("fleetlog").setLevel(logging.WARNING)
    if mode not in ("owner", "fleet"):
        typer.echo(f"fleetlog demo: unknown mode {mode!r}; choose owner or fleet", err=True)
        raise typer.Exit(code=2)
    try:
        offset = parse_offset(start) if start else None
    except ValueError as exc:
        typer.echo(f"fleetlog demo: --start: {exc}", err=True)
        raise typer.Exit(code=2) from None
    options = DemoOptions(
        data_dir=data_dir,
        scenario=scenario,
        mode="owner" if mode == "owner" else "fleet",
        speed=speed,
        start=offset,
        duration_s=duration,
        every_s=every,
    )
    with _user_errors():
        asyncio.run(run_demo(options))


def _not_yet(command: str) -> None:
    typer.echo(f"fleetlog {command}: not available yet in {__version__}.", err=True)
    raise typer.Exit(code=2)


@app.command()
def run(
    sim_url: Annotated[
        str,
        typer.Option(
            "--sim-url",
            hidden=True,
            help="Follow the clock of a fleetlog simulator (its FLEETLOG_SIM_URL).",
        ),
    ] = "",
) -> None:
    """Log every enabled car until SIGINT/SIGTERM (migrates the database first)."""
    import asyncio

    from fleetlog.clock import Clock, LoopClock
    from fleetlog.runtime import serve, sim_clock
    from fleetlog.vehicle.pacing import LoopPacer

    settings = _settings()
    with _user_errors():
        engine = _engine(settings)
        _migrate(engine)
        clock: Clock = LoopClock()
        speed = 1.0
        if sim_url:
            clock, speed = sim_clock(sim_url)
        asyncio.run(serve(settings, engine, clock=clock, pacer=LoopPacer(clock, speed)))


@app.command()
def sim(
    scenario: str = typer.Option(
        "commuter-week", help="commuter-week, road-trip, city-day, cold-week or fleet."
    ),
    mode: str = typer.Option("fleet", help="owner, fleet, myteslamate or teslemetry."),
    speed: float = typer.Option(1.0, help="Simulated seconds per real second."),
    port: int = typer.Option(8780, help="Port (fleet mode: NA here, EU on port+1)."),
    seed: int = typer.Option(1, help="Random seed: the same seed gives the same scenario."),
    start: str = typer.Option("0", help="Where in the scenario to begin, e.g. 1d7h30m."),
    truth_out: str = typer.Option("", help="Write the ground truth JSON here on exit."),
    cars: int = typer.Option(10, help="Number of cars (fleet scenario)."),
    daily_quota: int = typer.Option(0, help="Per-car daily vehicle_data quota (0 = none)."),
    billing_limit: float = typer.Option(10.0, help="Monthly billing limit in USD (0 = none)."),
    latency: float = typer.Option(0.0, help="Fault: seconds added to every API answer."),
    error_rate: float = typer.Option(0.0, help="Fault: share of API answers that are 5xx."),
    drop_rate: float = typer.Option(0.0, help="Fault: share of API requests dropped."),
    malformed_rate: float = typer.Option(0.0, help="Fault: share of 200s with a cut-off body."),
) -> None:
    """Run the Tesla cloud simulator on loopback and print the variables that point at it."""
    from pathlib import Path

    from fleetlog.sim.command import SimSettings, parse_offset, run
    from fleetlog.sim.server import Faults
    from fleetlog.sim.world import MODES

    if mode not in MODES:
        typer.echo(f"fleetlog sim: unknown mode {mode!r}; choose {', '.join(MODES)}", err=True)
        raise typer.Exit(code=2)
    try:
        offset = parse_offset(start)
    except ValueError as exc:
        typer.echo(f"fleetlog sim: --start: {exc}", err=True)
        raise typer.Exit(code=2) from None
    settings = SimSettings(
        scenario=scenario,
        mode=next(m for m in MODES if m == mode),
        speed=speed,
        port=port,
        seed=seed,
        cars=cars,
        start=offset,
        truth_out=Path(truth_out) if truth_out else None,
        daily_data_quota=daily_quota or None,
        billing_limit_usd=billing_limit or None,
        faults=Faults(latency, error_rate, drop_rate, malformed_rate, seed),
    )
    try:
        run(settings)
    except ValueError as exc:
        typer.echo(f"fleetlog sim: {exc}", err=True)
        raise typer.Exit(code=2) from None


login_app = typer.Typer(
    help="Sign in to Tesla or a provider and store the tokens (encrypted, in the database).",
    invoke_without_command=True,
)
app.add_typer(login_app, name="login")


def _login_engine(settings: Settings) -> sa.Engine:
    from fleetlog.store import upgrade

    engine = _engine(settings)
    upgrade(engine)  # the tokens table must exist; a TeslaMate database must be adopted first
    return engine


def _print_signed_in(signed: object) -> None:
    from fleetlog.sources.tesla import SignedIn

    assert isinstance(signed, SignedIn)
    typer.echo(f"Signed in ({signed.mode.value}, {signed.api_base}).")
    for car in signed.vehicles:
        typer.echo(f"  {car.display_name or '(no name)'}  {car.vin}  {car.state}")
    if signed.advice:
        typer.echo("Add to your environment so `fleetlog run` uses this app:")
        for line in signed.advice:
            typer.echo(f"  {line}")


@login_app.callback()
def login(ctx: typer.Context) -> None:
    """Store an access + refresh token pair (with TOKEN set: the provider sign-in).

    The tokens are read from FLEETLOG_ACCESS_TOKEN / FLEETLOG_REFRESH_TOKEN when set,
    else asked for (input hidden). They are never accepted as arguments, which other
    users could read in the process list.
    """
    if ctx.invoked_subcommand is not None:
        return
    import asyncio
    import os

    from fleetlog.clock import LoopClock
    from fleetlog.sources.tesla import sign_in_with_provider, sign_in_with_tokens

    settings = _settings()
    with _user_errors():
        engine = _login_engine(settings)
        if settings.token:
            signed = asyncio.run(sign_in_with_provider(settings, engine, clock=LoopClock()))
        else:
            access = os.environ.get("FLEETLOG_ACCESS_TOKEN") or typer.prompt(
                "Access token", hide_input=True
            )
            refresh = os.environ.get("FLEETLOG_REFRESH_TOKEN") or typer.prompt(
                "Refresh token", hide_input=True
            )
            signed = asyncio.run(
                sign_in_with_tokens(
                    settings, engine, access_token=access, refresh_token=refresh, clock=LoopClock()
                )
            )
        _print_signed_in(signed)


@login_app.command("fleet")
def login_fleet(
    client_id: Annotated[str, typer.Option(help="Your app's client ID (developer.tesla.com).")],
    redirect_uri: Annotated[str, typer.Option(help="A redirect URI registered with the app.")],
    region: Annotated[
        str | None, typer.Option(help="na, eu or cn; default: detected after sign-in.")
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(help="The app's client secret (default: asked for, input hidden)."),
    ] = None,
) -> None:
    """Sign in with your own Fleet API app (authorization-code flow), see docs/fleet-api.md."""
    import asyncio

    from fleetlog.clock import LoopClock
    from fleetlog.sources.tesla import FleetSignIn

    settings = _settings()
    with _user_errors():
        engine = _login_engine(settings)
        secret = client_secret or typer.prompt("Client secret", hide_input=True)
        flow = FleetSignIn(
            settings,
            engine,
            client_id=client_id,
            client_secret=secret,
            redirect_uri=redirect_uri,
            clock=LoopClock(),
            region=region,
        )
        typer.echo("Open this URL, sign in and allow the requested access:\n")
        typer.echo(flow.authorize_url() + "\n")
        pasted = typer.prompt("Paste the address your browser was sent to (or the code)")
        _print_signed_in(asyncio.run(flow.finish(pasted)))


def main() -> None:
    """Console-script entry point."""
    app()
