"""The `fleetlog` command line.

Each command is a thin shell: it reads settings, builds the parts it needs and
hands over to the module that does the work.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from fleetlog import __version__
from fleetlog.config import SETTINGS, ConfigError, Settings, load_settings
from fleetlog.logs import configure_logging

if TYPE_CHECKING:
    from fleetlog.importers.progress import RichProgress

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


def _migrated_engine(settings: Settings) -> sa.Engine:
    """The configured database, brought to the current schema quietly."""
    from fleetlog.store import upgrade

    _quiet_alembic()
    engine = _engine(settings)
    upgrade(engine)
    return engine


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
    port: Annotated[
        int | None,
        typer.Option(help="Web app port (default: PORT, 4000); a free one is taken if busy."),
    ] = None,
) -> None:
    """Simulator + logger + web app on SQLite: a simulated car logged live, no Tesla account."""
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
        web_port=int(settings.port) if port is None else port,
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
    from fleetlog.services import Services
    from fleetlog.vehicle.pacing import LoopPacer

    settings = _settings()
    with _user_errors():
        engine = _engine(settings)
        _migrate(engine)
        clock: Clock = LoopClock()
        speed = 1.0
        if sim_url:
            clock, speed = sim_clock(sim_url)
        services = Services(settings, engine, clock)
        asyncio.run(
            serve(
                settings,
                engine,
                clock=clock,
                pacer=LoopPacer(clock, speed),
                services=services,
            )
        )


@app.command()
def web(
    seed_days: Annotated[
        int,
        typer.Option(
            "--seed-days",
            help="First fill an empty database with this many days of generated history "
            "(two cars), to try the pages without a car.",
        ),
    ] = 0,
) -> None:
    """Serve the web app alone (no logger in this process) on PORT and HTTP_BINDING_ADDRESS."""
    import uvicorn

    from fleetlog.web import create_app
    from fleetlog.web.seed import seed

    settings = _settings()
    with _user_errors():
        engine = _engine(settings)
        _migrate(engine)
        if seed_days:
            report = seed(engine, days=seed_days)
            typer.echo(f"seeded {report.drives} drives and {report.charges} charges")
        application = create_app(settings, engine)
        binding = str(settings.http_binding_address)
        where = {"uds": binding} if binding.startswith("/") else {"host": binding}
        uvicorn.run(
            application,
            port=int(settings.port),
            root_path=str(settings.url_path).rstrip("/"),
            proxy_headers=True,
            log_level="warning",
            **where,  # type: ignore[arg-type]
        )


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
    telemetry: list[str] = typer.Option(  # noqa: B008
        [],
        help="Fleet Telemetry output, repeatable: mqtt://host:1883/<topic_base>, "
        "zmq://host:5284, redis://host:6379/0?namespace=tesla (?encoding=json).",
    ),
    streaming_tls: bool = typer.Option(
        False, help="Serve the streaming websocket over TLS (self-signed, wss://)."
    ),
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
        faults=Faults(
            latency_s=latency,
            error_rate=error_rate,
            drop_rate=drop_rate,
            malformed_rate=malformed_rate,
            seed=seed,
        ),
        telemetry=tuple(telemetry),
        streaming_tls=streaming_tls,
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


# --- places and costs: geofences, tariffs, charge cost -------------------------------------

geofence_app = typer.Typer(
    help="Named circles that label drives and charges and set what charging costs there.",
    no_args_is_help=True,
)
app.add_typer(geofence_app, name="geofence")
tariff_app = typer.Typer(
    help="Time-of-use charging prices per geofence, and the cost of single charges.",
    no_args_is_help=True,
)
app.add_typer(tariff_app, name="tariff")


def _places_engine(settings: Settings) -> sa.Engine:
    # a TeslaMate database must have been adopted first (fleetlog migrate --adopt-teslamate)
    return _migrated_engine(settings)


def _money(text: str | None) -> Decimal | None:
    from fleetlog.costs.tariff import parse_price

    return None if text is None or text == "" else parse_price(text)


def _print_relabelled(relabelled: object) -> None:
    from fleetlog.places import Relabelled

    assert isinstance(relabelled, Relabelled)
    typer.echo(
        f"relabelled {relabelled.drive_starts} drive start(s), {relabelled.drive_ends} drive "
        f"end(s), {relabelled.charges} charge(s)"
    )


def _print_cost_changes(changes: Sequence[object], *, applied: bool) -> None:
    from fleetlog.costs import CostChange

    table = Table("charge", "started (UTC)", "old cost", "new cost", box=None, pad_edge=False)
    for change in changes:
        assert isinstance(change, CostChange)
        table.add_row(
            str(change.process_id),
            change.start_date.strftime("%Y-%m-%d %H:%M"),
            "—" if change.old is None else str(change.old),
            "—" if change.new is None else str(change.new),
        )
    if changes:
        Console(file=sys.stdout, width=120, soft_wrap=True).print(table)
    verb = "changed" if applied else "would change (dry run, nothing written)"
    typer.echo(f"{len(changes)} charge cost(s) {verb}")


@geofence_app.command("list")
def geofence_list() -> None:
    """List the geofences with their billing."""
    from fleetlog.costs import get_tariff
    from fleetlog.places import list_geofences

    settings = _settings()
    with _user_errors(), _places_engine(settings).connect() as conn:
        table = Table(
            "id", "name", "latitude", "longitude", "radius m", "billing", "per unit", "fee",
            "tariff", box=None, pad_edge=False,
        )  # fmt: skip
        for f in list_geofences(conn):
            tariff = get_tariff(conn, f.id)
            table.add_row(
                str(f.id), f.name, f"{f.latitude:.6f}", f"{f.longitude:.6f}", str(f.radius),
                f.billing_type,
                "—" if f.cost_per_unit is None else str(f.cost_per_unit),
                "—" if f.session_fee is None else str(f.session_fee),
                "—" if tariff is None else f"{tariff.currency}, {len(tariff.windows)} window(s)",
            )  # fmt: skip
        Console(file=sys.stdout, width=160, soft_wrap=True).print(table)


@geofence_app.command("add")
def geofence_add(
    name: Annotated[str, typer.Argument(help="Display name, e.g. Home.")],
    lat: Annotated[float, typer.Option(help="Latitude of the centre.")],
    lon: Annotated[float, typer.Option(help="Longitude of the centre.")],
    radius: Annotated[int, typer.Option(help="Radius in metres (1–4999).")] = 25,
    billing: Annotated[str, typer.Option(help="per_kwh or per_minute.")] = "per_kwh",
    cost_per_unit: Annotated[str | None, typer.Option(help="Price per kWh or minute.")] = None,
    session_fee: Annotated[str | None, typer.Option(help="Fee per charging session.")] = None,
) -> None:
    """Add a geofence; past drives and charges inside it are labelled with it."""
    from fleetlog.places import GeofenceSpec, create_geofence

    settings = _settings()
    with _user_errors(), _places_engine(settings).begin() as conn:
        spec = GeofenceSpec(
            name, lat, lon, radius, billing,  # type: ignore[arg-type]  # validated
            _money(cost_per_unit), _money(session_fee),
        )  # fmt: skip
        fence, relabelled = create_geofence(conn, spec)
        typer.echo(f"added geofence {fence.id} {fence.name!r}")
        _print_relabelled(relabelled)


@geofence_app.command("edit")
def geofence_edit(
    geofence: Annotated[str, typer.Argument(help="Id or name.")],
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    lat: Annotated[float | None, typer.Option(help="New latitude.")] = None,
    lon: Annotated[float | None, typer.Option(help="New longitude.")] = None,
    radius: Annotated[int | None, typer.Option(help="New radius in metres.")] = None,
    billing: Annotated[str | None, typer.Option(help="per_kwh or per_minute.")] = None,
    cost_per_unit: Annotated[str | None, typer.Option(help="Price ('' clears).")] = None,
    session_fee: Annotated[str | None, typer.Option(help="Session fee ('' clears).")] = None,
    recompute_costs: Annotated[
        bool, typer.Option(help="Also price the charges at this geofence again.")
    ] = False,
) -> None:
    """Change a geofence; drives and charges around its old and new circle are relabelled."""
    from dataclasses import replace

    from fleetlog.costs import recompute_costs as recompute
    from fleetlog.places import find_geofence, spec_of, update_geofence

    settings = _settings()
    with _user_errors(), _places_engine(settings).begin() as conn:
        fence = find_geofence(conn, geofence)
        spec = spec_of(fence)
        changes: dict[str, object] = {
            k: v
            for k, v in {"name": name, "latitude": lat, "longitude": lon, "radius": radius,
                         "billing_type": billing}.items()
            if v is not None
        }  # fmt: skip
        if cost_per_unit is not None:
            changes["cost_per_unit"] = _money(cost_per_unit)
        if session_fee is not None:
            changes["session_fee"] = _money(session_fee)
        fence, relabelled = update_geofence(conn, fence.id, replace(spec, **changes))  # type: ignore[arg-type]
        typer.echo(f"updated geofence {fence.id} {fence.name!r}")
        _print_relabelled(relabelled)
        if recompute_costs or relabelled.charges:
            ids = None if recompute_costs else list(relabelled.charge_ids)
            cost_changes = recompute(
                conn,
                geofence_id=fence.id if recompute_costs else None,
                process_ids=ids,
                default_time_zone=settings.tz,
            )
            _print_cost_changes(cost_changes, applied=True)


@geofence_app.command("remove")
def geofence_remove(geofence: Annotated[str, typer.Argument(help="Id or name.")]) -> None:
    """Delete a geofence; what it labelled falls to an overlapping one or to none."""
    from fleetlog.places import delete_geofence, find_geofence

    settings = _settings()
    with _user_errors(), _places_engine(settings).begin() as conn:
        fence = find_geofence(conn, geofence)
        relabelled = delete_geofence(conn, fence.id)
        typer.echo(f"removed geofence {fence.id} {fence.name!r}")
        _print_relabelled(relabelled)


@tariff_app.command("show")
def tariff_show(geofence: Annotated[str, typer.Argument(help="Geofence id or name.")]) -> None:
    """Show a geofence's tariff, one window per line in the order they apply."""
    from fleetlog.costs import format_window, get_tariff
    from fleetlog.places import find_geofence

    settings = _settings()
    with _user_errors(), _places_engine(settings).connect() as conn:
        fence = find_geofence(conn, geofence)
        tariff = get_tariff(conn, fence.id)
        if tariff is None:
            price = fence.cost_per_unit if fence.cost_per_unit is not None else "none"
            typer.echo(f"{fence.name}: no tariff; flat {fence.billing_type} price {price}")
            return
        typer.echo(
            f"{fence.name}: {tariff.currency}, {fence.billing_type}, time zone "
            f"{tariff.time_zone or settings.tz + ' (TZ)'}"
        )
        for window in tariff.windows:
            typer.echo(f"  --window '{format_window(window)}'")
        default = tariff.default_price if tariff.default_price is not None else fence.cost_per_unit
        typer.echo(f"  otherwise {default if default is not None else 'unpriced'}")
        if fence.session_fee is not None:
            typer.echo(f"  plus a session fee of {fence.session_fee}")


def _tariff_change(
    settings: Settings, geofence: str, dry_run: bool, change: Callable[[sa.Connection, int], object]
) -> None:
    """Run `change(conn, geofence_id)`, reprice the geofence's charges; roll back on dry run."""
    from fleetlog.costs import recompute_costs
    from fleetlog.places import find_geofence

    engine = _places_engine(settings)
    with engine.connect() as conn:
        transaction = conn.begin()
        fence = find_geofence(conn, geofence)
        change(conn, fence.id)
        changes = recompute_costs(conn, geofence_id=fence.id, default_time_zone=settings.tz)
        _print_cost_changes(changes, applied=not dry_run)
        if dry_run:
            transaction.rollback()
        else:
            transaction.commit()


@tariff_app.command("set")
def tariff_set(
    geofence: Annotated[str, typer.Argument(help="Geofence id or name.")],
    window: Annotated[
        list[str],
        typer.Option(
            help="[MM-DD..MM-DD] DAYS HH:MM-HH:MM PRICE, e.g. 'mon-fri 22:00-06:00 0.21'; "
            "repeat it; the first window that matches sets the price."
        ),
    ],
    currency: Annotated[str, typer.Option(help="Three-letter currency code, e.g. EUR.")],
    tz: Annotated[str | None, typer.Option(help="Time zone of the windows (default: TZ).")] = None,
    default_price: Annotated[
        str | None, typer.Option(help="Price outside every window (default: cost per unit).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Show the cost changes, write nothing.")] = False,
) -> None:
    """Give a geofence a time-of-use tariff and price its past charges again."""
    from fleetlog.costs import Tariff, set_tariff, windows_of

    settings = _settings()
    with _user_errors():
        tariff = Tariff(
            currency=currency.upper(),
            windows=windows_of(window),
            default_price=_money(default_price),
            time_zone=tz,
        )
        _tariff_change(
            settings, geofence, dry_run, lambda conn, fence_id: set_tariff(conn, fence_id, tariff)
        )


@tariff_app.command("clear")
def tariff_clear(
    geofence: Annotated[str, typer.Argument(help="Geofence id or name.")],
    dry_run: Annotated[bool, typer.Option(help="Show the cost changes, write nothing.")] = False,
) -> None:
    """Remove a geofence's tariff (flat billing again) and price its charges again."""
    from fleetlog.costs import delete_tariff

    settings = _settings()
    with _user_errors():
        _tariff_change(
            settings, geofence, dry_run, lambda conn, fence_id: delete_tariff(conn, fence_id)
        )


@tariff_app.command("recompute")
def tariff_recompute(
    geofence: Annotated[str, typer.Argument(help="Geofence id or name.")],
    dry_run: Annotated[bool, typer.Option(help="Show the cost changes, write nothing.")] = False,
) -> None:
    """Price every closed charge at a geofence again (charges with a manual cost excepted)."""
    settings = _settings()
    with _user_errors():
        _tariff_change(settings, geofence, dry_run, lambda conn, fence_id: None)


@tariff_app.command("charge-cost")
def tariff_charge_cost(
    charge: Annotated[int, typer.Argument(help="Charging process id.")],
    amount: Annotated[str | None, typer.Option(help="The total cost.")] = None,
    per_kwh: Annotated[str | None, typer.Option(help="A price per kWh.")] = None,
    per_minute: Annotated[str | None, typer.Option(help="A price per minute.")] = None,
    clear: Annotated[bool, typer.Option(help="Forget the manual cost.")] = False,
) -> None:
    """Set what one charge cost by hand (kept when tariffs change), or clear it."""
    from fleetlog.costs import clear_manual_cost, set_manual_cost

    given = {"absolute": amount, "per_kwh": per_kwh, "per_minute": per_minute}
    chosen = [(kind, value) for kind, value in given.items() if value is not None]
    if len(chosen) + int(clear) != 1:
        typer.echo("give exactly one of --amount, --per-kwh, --per-minute, --clear", err=True)
        raise typer.Exit(code=2)
    settings = _settings()
    with _user_errors(), _places_engine(settings).begin() as conn:
        if clear:
            cost = clear_manual_cost(conn, charge, default_time_zone=settings.tz)
        else:
            kind, value = chosen[0]
            price = _money(value)
            assert price is not None
            cost = set_manual_cost(conn, charge, kind, price)
        typer.echo(f"charge {charge} cost {'unknown' if cost is None else cost}")


telemetry_app = typer.Typer(help="Fleet Telemetry: the field configuration and its status.")
app.add_typer(telemetry_app, name="telemetry")


@telemetry_app.command("config")
def telemetry_config(
    vin: Annotated[list[str], typer.Option("--vin", help="Car(s) to configure.")],
    hostname: Annotated[str, typer.Option(help="Your fleet-telemetry server's host name.")] = (
        "telemetry.example.com"
    ),
    port: Annotated[int, typer.Option(help="Its port.")] = 443,
    ca_file: Annotated[Path | None, typer.Option(help="PEM chain the car checks.")] = None,
    profile: Annotated[str, typer.Option(help="economy, balanced or precise.")] = "balanced",
    apply: Annotated[bool, typer.Option("--apply", help="POST it through --proxy.")] = False,
    proxy: Annotated[
        str | None, typer.Option(help="A vehicle-command proxy that signs (tesla-http-proxy).")
    ] = None,
) -> None:
    """Print the fields a logger needs (every profile with its monthly cost); --apply sends it."""
    import json

    from fleetlog.sources.streaming.profiles import PROFILES, fleet_telemetry_config

    if profile not in PROFILES:
        typer.echo(f"unknown profile {profile!r}; choose {', '.join(PROFILES)}", err=True)
        raise typer.Exit(code=2)
    for p in PROFILES.values():
        mark = "*" if p.name == profile else " "
        typer.echo(
            f"{mark} {p.name:9} ~{p.signals_per_day():>7,.0f} signals/day  "
            f"~${p.monthly_usd():.2f}/month per car  {p.summary}",
            err=True,
        )
    ca = ca_file.read_text() if ca_file else ""
    config = fleet_telemetry_config(PROFILES[profile], hostname=hostname, port=port, ca=ca)
    body = {"vins": vin, "config": config}
    typer.echo(json.dumps(body, indent=2))
    if not apply:
        return
    if not proxy:
        typer.echo("--apply needs --proxy https://… (a proxy that signs the config)", err=True)
        raise typer.Exit(code=2)
    import os

    import httpx

    settings = _settings()
    token = settings.token or os.environ.get("FLEETLOG_ACCESS_TOKEN")
    if not token:
        typer.echo("set TOKEN or FLEETLOG_ACCESS_TOKEN for the proxy", err=True)
        raise typer.Exit(code=2)
    response = httpx.post(
        proxy.rstrip("/") + "/api/1/vehicles/fleet_telemetry_config",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=False,  # tesla-http-proxy serves a self-signed certificate by default
        timeout=30,
    )
    typer.echo(f"{response.status_code} {response.text[:500]}", err=True)
    if response.status_code >= 400:
        raise typer.Exit(code=1)


@telemetry_app.command("status")
def telemetry_status(
    vin: Annotated[list[str], typer.Option("--vin", help="Car(s) to check.")],
) -> None:
    """synced, config, limit_reached, key_paired and fleet_telemetry_errors per car."""
    import asyncio
    import json

    from fleetlog.clock import LoopClock
    from fleetlog.sources.tesla import open_account

    settings = _settings()

    async def check() -> None:
        engine = _engine(settings)
        async with await open_account(settings, engine, clock=LoopClock()) as account:
            client = account.client
            status = await client.fleet_status(vin)
            paired = set(status.get("key_paired_vins") or [])
            for v in vin:
                config = await client.fleet_telemetry_config(v)
                errors = await client.fleet_telemetry_errors(v)
                typer.echo(
                    json.dumps(
                        {
                            "vin": v,
                            "synced": config.get("synced"),
                            "limit_reached": config.get("limit_reached"),
                            "key_paired": v in paired,
                            "config": config.get("config"),
                            "fleet_telemetry_errors": errors,
                        },
                        indent=2,
                    )
                )

    with _user_errors():
        asyncio.run(check())


import_app = typer.Typer(
    help="Bring history in: TeslaFi CSV exports, a TeslaMate database, a fleetlog JSON export.",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")
export_app = typer.Typer(
    help="Take history out: GPX per drive, drives/charges CSV, a full JSON export.",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")


def _history_engine(settings: Settings) -> sa.Engine:
    """The configured database, migrated (an import or export never meets an old schema)."""
    # one line per machine transition would bury the progress bar
    logging.getLogger("fleetlog.vehicle.executor").setLevel(logging.WARNING)
    return _migrated_engine(settings)


@import_app.command("teslafi")
def import_teslafi_command(
    directory: Annotated[Path, typer.Argument(help="Directory of TeslaFi<M><YYYY>.csv files.")],
    tz: str = typer.Option(..., "--tz", help="Time zone of the CSV's Date column (IANA name)."),
) -> None:
    """Replay TeslaFi's monthly CSV exports through the car machine (resumable)."""
    from fleetlog.importers import runs
    from fleetlog.importers.progress import RichProgress
    from fleetlog.importers.teslafi import import_teslafi

    settings = _settings()
    with _user_errors():
        engine = _history_engine(settings)
        with RichProgress() as progress:
            report = import_teslafi(engine, directory, tz, progress=progress)
        typer.echo(report.summary())
        rejected = runs.rejections(engine, report.run_id)
        if rejected:
            table = Table("file", "row", "reason", "fields", box=None, pad_edge=False)
            for r in rejected[:50]:
                table.add_row(r.file_name, str(r.row), r.reason, ",".join(r.fields))
            Console(file=sys.stdout, width=120).print(table)
            if len(rejected) > 50:
                typer.echo(
                    f"… {len(rejected) - 50} more in import_rejections (run {report.run_id})"
                )


@import_app.command("teslamate")
def import_teslamate_command(
    source: Annotated[str, typer.Argument(help="URL of the TeslaMate (or fleetlog) database.")],
) -> None:
    """Copy a TeslaMate database into this (fresh) database: every table, ids kept."""
    from fleetlog.importers.progress import RichProgress
    from fleetlog.importers.teslamate import import_teslamate

    settings = _settings()
    with _user_errors():
        engine = _history_engine(settings)
        with RichProgress() as progress:
            report = import_teslamate(source, engine, progress=progress)
        typer.echo(report.summary())


@import_app.command("json")
def import_json_command(
    file: Annotated[Path, typer.Argument(help="A file written by `fleetlog export json`.")],
) -> None:
    """Load a full JSON export into this (fresh) database."""
    from fleetlog.export.full_json import JsonSource
    from fleetlog.importers import runs
    from fleetlog.importers.progress import RichProgress
    from fleetlog.importers.table_copy import copy_logbook

    settings = _settings()
    with _user_errors():
        engine = _history_engine(settings)
        source = JsonSource(file)
        with RichProgress() as progress:
            key = runs.source_key("json", str(file.resolve()))
            report = copy_logbook(source, engine, key, progress=progress)
        typer.echo(report.summary())


@export_app.command("gpx")
def export_gpx_command(
    drive: Annotated[int, typer.Argument(help="Drive id.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default: stdout).")
    ] = None,
) -> None:
    """One drive as a GPX 1.1 track."""
    from fleetlog.export.gpx import gpx_for_drive

    settings = _settings()
    with _user_errors():
        text = gpx_for_drive(_history_engine(settings), drive)
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
            typer.echo(f"wrote {output}")


def _csv_export(
    kind: str, output: Path | None, car: int | None, since: str | None, until: str | None, tz: str
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from fleetlog.export.logbook_csv import write_charges_csv, write_drives_csv

    settings = _settings()
    with _user_errors():
        zone = ZoneInfo(tz)
        start = datetime.fromisoformat(since).replace(tzinfo=zone) if since else None
        end = datetime.fromisoformat(until).replace(tzinfo=zone) if until else None
        writer = write_drives_csv if kind == "drives" else write_charges_csv
        engine = _history_engine(settings)
        if output is None:
            n = writer(engine, sys.stdout, car_id=car, since=start, until=end, tz=tz)
        else:
            with output.open("w", newline="", encoding="utf-8") as fh:
                n = writer(engine, fh, car_id=car, since=start, until=end, tz=tz)
            typer.echo(f"wrote {n} {kind} to {output}")


@export_app.command("drives")
def export_drives_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default: stdout).")
    ] = None,
    car: int | None = typer.Option(None, "--car", help="Only this car id."),
    since: str | None = typer.Option(None, "--from", help="Local date/time, e.g. 2024-01-01."),
    until: str | None = typer.Option(None, "--to", help="Local date/time (exclusive)."),
    tz: str = typer.Option("UTC", "--tz", help="Time zone for the times in the file."),
) -> None:
    """Drives as CSV: a mileage log (with an empty purpose column)."""
    _csv_export("drives", output, car, since, until, tz)


@export_app.command("charges")
def export_charges_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default: stdout).")
    ] = None,
    car: int | None = typer.Option(None, "--car", help="Only this car id."),
    since: str | None = typer.Option(None, "--from", help="Local date/time, e.g. 2024-01-01."),
    until: str | None = typer.Option(None, "--to", help="Local date/time (exclusive)."),
    tz: str = typer.Option("UTC", "--tz", help="Time zone for the times in the file."),
) -> None:
    """Charging processes as CSV (energy, place, cost)."""
    _csv_export("charges", output, car, since, until, tz)


@export_app.command("json")
def export_json_command(
    output: Annotated[Path, typer.Argument(help="File to write (.jsonl, or .jsonl.gz).")],
) -> None:
    """Every logbook table as JSON Lines (load it again with `fleetlog import json`)."""
    from fleetlog.export.full_json import export_json
    from fleetlog.importers.progress import RichProgress

    settings = _settings()
    with _user_errors():
        engine = _history_engine(settings)
        with RichProgress() as progress:
            report = export_json(engine, output, progress=progress)
        typer.echo(report.summary())


def _backup_progress() -> tuple[RichProgress, Callable[[int, int, str], None]]:
    """A progress bar and the (done, total, stage) hook the backup module calls."""
    from fleetlog.importers.progress import RichProgress

    bar = RichProgress()
    stages: dict[str, int] = {}

    def hook(done: int, total: int, stage: str) -> None:
        if stage not in stages:
            bar.start(total, stage)
            stages[stage] = 0
        bar.advance(max(done - stages[stage], 0))
        stages[stage] = max(done, stages[stage])

    return bar, hook


@app.command()
def backup(
    destination: Annotated[
        Path, typer.Argument(help="Directory (a dated file is made in it) or file name.")
    ] = Path("."),
) -> None:
    """Back the database up and verify the copy (checksum, scratch restore, row counts)."""
    from fleetlog.store.backup import backup as make_backup

    settings = _settings()
    with _user_errors():
        bar, hook = _backup_progress()
        with bar:
            result = make_backup(_engine(settings), destination, progress=hook)
        typer.echo(result.summary())
        typer.echo(f"manifest {result.manifest_path}")


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(help="A backup made by `fleetlog backup`.")],
    force: bool = typer.Option(
        False, "--force", help="Overwrite a database that already holds data."
    ),
) -> None:
    """Restore a backup into the configured database (refuses a non-empty one)."""
    from fleetlog.store.backup import restore as do_restore

    settings = _settings()
    with _user_errors():
        bar, hook = _backup_progress()
        with bar:
            result = do_restore(_engine(settings), file, force=force, progress=hook)
        typer.echo(result.summary())


def main() -> None:
    """Console-script entry point."""
    app()
