"""``fleetlog demo``: simulator, logger and web app together on SQLite, no Tesla account needed.

The simulated car runs `speed`× real time (60: an hour a minute) from a busy
point of the scenario, so a drive shows up within seconds and a charge within
about a minute. The logger is the real one: the REST client over loopback HTTP,
the budget governor, the car machine, the logbook on SQLite, and the services of
``fleetlog run`` (:mod:`fleetlog.services`): the web app on port 4000 (another free
port when that one is taken), places and costs (a priced "Home" geofence is drawn
around each car's home, so drives end there and charges get a cost), address repair,
and MQTT only when ``MQTT_HOST`` is set. A status line shows the car's state and what
has been recorded so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa

from fleetlog.config import load_settings
from fleetlog.places import GeofenceSpec, create_geofence
from fleetlog.runtime import Fleet, Parts, list_cars, stop_on_signals
from fleetlog.services import Services
from fleetlog.sim import scenarios
from fleetlog.sim.scenarios import Scenario
from fleetlog.sim.server import SimServer
from fleetlog.sim.world import CloudOptions, Mode, World
from fleetlog.sources.tesla import Ledger, open_account, sign_in_with_tokens
from fleetlog.store import make_engine, upgrade
from fleetlog.store import tables as t
from fleetlog.vehicle.pacing import LoopPacer, cancel_and_wait
from fleetlog.vehicle.settings import Timing

#: Where each scenario gets busy (offset from its start): a drive within seconds at 60×.
BUSY_START: dict[str, timedelta] = {
    # Tuesday evening: two short drives, then an AC charge at home
    "commuter-week": timedelta(days=1, hours=19),
    "road-trip": timedelta(hours=2, minutes=50),
    "city-day": timedelta(hours=2, minutes=30),
    "cold-week": timedelta(hours=7, minutes=30),
    "fleet": timedelta(hours=7),
}


@dataclass(frozen=True, slots=True)
class DemoOptions:
    data_dir: Path = Path("demo-data")
    scenario: str = "commuter-week"
    mode: Mode = "owner"  # free polling, as TeslaMate users know it; "fleet" shows the budget
    speed: float = 60.0
    start: timedelta | None = None  # None: the scenario's busy point
    duration_s: float = 0.0  # real seconds; 0 = until Ctrl-C
    every_s: float = 5.0  # status line period, real seconds
    port: int = 0  # the simulator's
    web_port: int = 4000  # the web app's; another free one when taken
    web: bool = True


#: The user's settings a demo keeps: how to show and publish, never where data or Tesla is.
PASSED_THROUGH = (
    "MQTT_",
    "DISABLE_MQTT",
    "DEFAULT_GEOFENCE",
    "TZ",
    "HTTP_BINDING_ADDRESS",
    "URL_PATH",
    "CHECK_ORIGIN",
    "VIRTUAL_HOST",
    "FLEETLOG_WEB_",
    "FLEETLOG_GEOCODER",
    "FLEETLOG_NOMINATIM_",
    "NOMINATIM_PROXY",
    "FLEETLOG_ADDRESS_REPAIR_INTERVAL",
    "FLEETLOG_LOG_LEVEL",
)
#: Local time of the scenarios' regions, unless TZ says otherwise.
REGION_TZ = {"eu": "Europe/Berlin", "na": "America/Los_Angeles"}
#: What the demo's home geofences charge per kWh.
HOME_PRICE = Decimal("0.30")


def demo_environment(
    sim_env: Mapping[str, str], environ: Mapping[str, str], region: str
) -> dict[str, str]:
    """The demo's settings: the simulator's Tesla variables plus the user's display ones."""
    env = {k: v for k, v in environ.items() if k.startswith(PASSED_THROUGH)}
    env.setdefault("TZ", REGION_TZ.get(region, "UTC"))
    env.update({k: v for k, v in sim_env.items() if not k.startswith("FLEETLOG_")})
    return env


#: Each scenario built with another start (the same story, on other dates).
_STARTED: dict[str, Callable[[int, datetime], Scenario]] = {
    "commuter-week": lambda seed, start: scenarios.commuter_week(seed, start),
    "road-trip": lambda seed, start: scenarios.road_trip(seed, start),
    "city-day": lambda seed, start: scenarios.city_day(seed, start),
    "cold-week": lambda seed, start: scenarios.cold_week(seed, start),
    "fleet": lambda seed, start: scenarios.fleet(seed, start=start),
}


def recent_scenario(name: str, offset: timedelta, now: datetime, seed: int = 1) -> Scenario:
    """The scenario moved by whole weeks so that `offset` into it falls in the last week.

    The web app shows the last 90 days by default, so a story dated in its original year
    would be out of sight; whole weeks keep its weekdays and times of day.
    """
    scenario = scenarios.build(name, seed)
    weeks = math.floor((now - (scenario.start + offset)) / timedelta(weeks=1))
    if weeks <= 0 or name not in _STARTED:
        return scenario
    return _STARTED[name](seed, scenario.start + timedelta(weeks=weeks))


def draw_home_geofences(engine: sa.Engine, world: World) -> int:
    """A priced "Home" geofence around each car's home (the web app can edit them)."""
    homes: dict[tuple[float, float], str] = {}
    for plan in world.scenario.cars:
        point = (plan.home.point.lat, plan.home.point.lng)
        several = len(world.scenario.cars) > 1
        homes.setdefault(point, f"Home · {plan.spec.display_name}" if several else "Home")
    with engine.begin() as conn:
        for (lat, lng), name in homes.items():
            spec = GeofenceSpec(name, lat, lng, radius=100, cost_per_unit=HOME_PRICE)
            create_geofence(conn, spec)
    return len(homes)


@dataclass(slots=True)
class Tally:
    drives: int = 0
    open_drives: int = 0
    charges: int = 0
    open_charges: int = 0
    positions: int = 0


def tally(engine: sa.Engine) -> Tally:
    with engine.connect() as conn:

        def count(table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(table).where(*where)
                ).scalar_one()
            )

        return Tally(
            drives=count(t.drives, t.drives.c.end_date.is_not(None)),
            open_drives=count(t.drives, t.drives.c.end_date.is_(None)),
            charges=count(t.charging_processes, t.charging_processes.c.end_date.is_not(None)),
            open_charges=count(t.charging_processes, t.charging_processes.c.end_date.is_(None)),
            positions=count(t.positions),
        )


def status_line(now: Any, summary: dict[str, Any], n: Tally, paid: int) -> str:
    state = summary.get("state", "unavailable")
    soc = summary.get("battery_level")
    speed = summary.get("speed")
    parts = [f"[{now:%a %H:%M}]", f"{state:<10}"]
    if soc is not None:
        parts.append(f"{soc}%")
    if speed and state == "driving":
        parts.append(f"{speed:.0f} km/h")
    parts.append(
        f"| drives {n.drives}{' (+1 open)' if n.open_drives else ''}"
        f", charges {n.charges}{' (+1 open)' if n.open_charges else ''}"
        f", positions {n.positions}, paid calls {paid}"
    )
    return " ".join(parts)


async def run_demo(
    options: DemoOptions, out: TextIO = sys.stdout, environ: Mapping[str, str] | None = None
) -> Tally:
    """Run the simulator, logger and web app until Ctrl-C or `duration_s`; the final tally."""
    data_dir = options.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = data_dir / "fleetlog-demo.sqlite3"
    for stale in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        stale.unlink(missing_ok=True)  # each demo starts the story afresh
    start = options.start if options.start is not None else BUSY_START.get(options.scenario)
    offset = start or timedelta(0)
    scenario = recent_scenario(options.scenario, offset, datetime.now(UTC))
    world = World(scenario, CloudOptions(mode=options.mode, billing_limit_usd=None))
    world.advance(scenario.start + offset)
    server = SimServer(world, speed=options.speed, port=options.port)
    engine = make_engine(f"sqlite:///{db_path}")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    upgrade(engine)
    draw_home_geofences(engine, server.world)
    stop = asyncio.Event()
    stop_on_signals(stop)
    latest: dict[str, Any] = {}
    async with server as sim:
        env = demo_environment(
            sim.env,
            os.environ if environ is None else environ,
            sim.world.scenario.region,
        )
        env.update(FLEETLOG_DATA_DIR=str(data_dir), FLEETLOG_DATABASE_URL=f"sqlite:///{db_path}")
        settings = load_settings(env)
        await sign_in_with_tokens(
            settings,
            engine,
            access_token=sim.env["FLEETLOG_ACCESS_TOKEN"],
            refresh_token=sim.env["FLEETLOG_REFRESH_TOKEN"],
            clock=sim.clock,
        )
        account = await open_account(settings, engine, clock=sim.clock)
        fleet = Fleet()
        services = Services(
            settings,
            engine,
            sim.clock,
            web=options.web,
            web_port=options.web_port,
            web_port_fallback=True,
        )
        ticker: asyncio.Task[None] | None = None
        try:
            await services.start(fleet, account)
            print(
                f"fleetlog demo: {options.scenario} at {options.speed:g}× real time "
                f"({options.mode} API, simulated)",
                file=out,
            )
            if services.web is not None:
                busy = services.web.binding.busy_port
                note = f"  (port {busy} was busy, took a free one)" if busy else ""
                print(f"  web app    {services.web.url}{note}", file=out)
            if services.publisher.enabled:
                print(f"  mqtt       {settings.mqtt_host}:{settings.effective_mqtt_port}", file=out)
            print(f"  database   {db_path}", file=out)
            print(
                f"  simulator  {sim.base_url}  (ground truth: {sim.base_url}/_sim/truth)",
                file=out,
            )
            print(
                f"  look       FLEETLOG_DATABASE_URL=sqlite:///{db_path} fleetlog status",
                file=out,
            )
            print("  stop       Ctrl-C", file=out, flush=True)
            vehicles = await list_cars(account.client, stop)
            if vehicles:
                parts = Parts(
                    engine,
                    account.client,
                    LoopPacer(sim.clock, options.speed),
                    timing=Timing.from_settings(settings),
                    on_summary=lambda _vin, s: latest.update(s),
                )
                attach = services.attachments()
                parts = attach.plug(parts)
                services.on_listed(vehicles)
                await fleet.start(parts, vehicles)
                ticker = asyncio.create_task(_report(sim.clock, engine, latest, options, out))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), options.duration_s or None)
        finally:
            if ticker is not None:
                await cancel_and_wait(ticker)
            await fleet.stop()
            await services.stop()
            await account.aclose()
    final = tally(engine)
    print(
        f"fleetlog demo stopped: {final.drives} drives, {final.charges} charges, "
        f"{final.positions} positions in {db_path}",
        file=out,
        flush=True,
    )
    engine.dispose()
    return final


async def _report(
    clock: Any, engine: sa.Engine, latest: dict[str, Any], options: DemoOptions, out: TextIO
) -> None:
    ledger = Ledger(engine)
    while True:
        await asyncio.sleep(options.every_s)
        paid = sum(x.billed for x in ledger.totals(by="month", per="account"))
        print(status_line(clock.now(), latest, tally(engine), paid), file=out, flush=True)
