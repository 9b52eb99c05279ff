"""``fleetlog demo``: the simulator and the logger together on SQLite, no Tesla account needed.

The simulated car runs `speed`× real time (60: an hour a minute) from a busy
point of the scenario, so a drive shows up within seconds and a charge within
about a minute. The logger is the real one: the REST client over loopback HTTP,
the budget governor, the car machine, the logbook on SQLite. A status line shows
the car's state and what has been recorded so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa

from fleetlog.config import load_settings
from fleetlog.runtime import Fleet, Parts, list_cars, stop_on_signals
from fleetlog.sim.command import SimSettings, make_server
from fleetlog.sim.world import Mode
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
    port: int = 0


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


async def run_demo(options: DemoOptions, out: TextIO = sys.stdout) -> Tally:
    """Run the simulator and the logger until Ctrl-C or `duration_s`; the final tally."""
    data_dir = options.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = data_dir / "fleetlog-demo.sqlite3"
    for stale in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        stale.unlink(missing_ok=True)  # each demo starts the story afresh
    start = options.start if options.start is not None else BUSY_START.get(options.scenario)
    sim_settings = SimSettings(
        scenario=options.scenario,
        mode=options.mode,
        speed=options.speed,
        port=options.port,
        start=start or timedelta(0),
        billing_limit_usd=None,
    )
    server = make_server(sim_settings)
    engine = make_engine(f"sqlite:///{db_path}")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    upgrade(engine)
    stop = asyncio.Event()
    stop_on_signals(stop)
    latest: dict[str, Any] = {}
    async with server as sim:
        env = {k: v for k, v in sim.env.items() if not k.startswith("FLEETLOG_")}
        env.update(FLEETLOG_DATA_DIR=str(data_dir), FLEETLOG_DATABASE_URL=f"sqlite:///{db_path}")
        settings = load_settings(env)
        await sign_in_with_tokens(
            settings,
            engine,
            access_token=sim.env["FLEETLOG_ACCESS_TOKEN"],
            refresh_token=sim.env["FLEETLOG_REFRESH_TOKEN"],
            clock=sim.clock,
        )
        print(
            f"fleetlog demo: {options.scenario} at {options.speed:g}× real time "
            f"({options.mode} API, simulated)",
            file=out,
        )
        print(f"  database   {db_path}", file=out)
        print(f"  simulator  {sim.base_url}  (ground truth: {sim.base_url}/_sim/truth)", file=out)
        print(
            f"  look       FLEETLOG_DATABASE_URL=sqlite:///{db_path} fleetlog status",
            file=out,
        )
        print("  stop       Ctrl-C", file=out, flush=True)
        account = await open_account(settings, engine, clock=sim.clock)
        fleet = Fleet()
        ticker: asyncio.Task[None] | None = None
        try:
            vehicles = await list_cars(account.client, stop)
            if vehicles:
                parts = Parts(
                    engine,
                    account.client,
                    LoopPacer(sim.clock, options.speed),
                    timing=Timing.from_settings(settings),
                    on_summary=lambda _vin, s: latest.update(s),
                )
                await fleet.start(parts, vehicles)
                ticker = asyncio.create_task(_report(sim.clock, engine, latest, options, out))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), options.duration_s or None)
        finally:
            if ticker is not None:
                await cancel_and_wait(ticker)
            await fleet.stop()
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
