"""The whole runtime in one process against the simulator: workers plus ``fleetlog.services``.

`running(...)` is what ``fleetlog run`` does (sign-in, car list, one worker per car, the
services beside them) with the simulator in place of Tesla, either in virtual time
(``speed=None``: a ManualClock the VirtualPacer moves; runs until `duration` of simulated
time has passed) or in real time at `speed`× (the demo's LoopPacer on the simulator's clock).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from fleetlog.clock import Clock, ManualClock
from fleetlog.config import load_settings
from fleetlog.places import GeofenceSpec, create_geofence
from fleetlog.runtime import Fleet, Parts
from fleetlog.services import Services
from fleetlog.sim.scenarios import build
from fleetlog.sim.server import SimServer
from fleetlog.sim.world import CloudOptions, World
from fleetlog.sources.tesla import open_account, sign_in_with_tokens
from fleetlog.store import tables as t
from fleetlog.vehicle.pacing import LoopPacer, Pacer, VirtualPacer
from fleetlog.vehicle.settings import Timing

#: commuter-week, Tuesday 18:00 UTC: to the supermarket, back home, an AC charge at home.
BUSY = timedelta(days=1, hours=19)
HOME_PRICE = Decimal("0.30")


@dataclass
class Live:
    engine: sa.Engine
    sim: SimServer
    fleet: Fleet
    services: Services
    clock: Clock
    home_id: int
    done: asyncio.Event

    def car_id(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(t.cars.c.id)).scalar_one())


def draw_home(engine: sa.Engine, world: World) -> int:
    home = world.scenario.cars[0].home.point
    with engine.begin() as conn:
        fence, _ = create_geofence(
            conn, GeofenceSpec("Home", home.lat, home.lng, radius=100, cost_per_unit=HOME_PRICE)
        )
    return fence.id


@contextlib.asynccontextmanager
async def running(
    engine: sa.Engine,
    tmp: Path,
    *,
    speed: float | None,
    duration: timedelta,
    web: bool = False,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Live]:
    """The runtime with its services on `engine`; yields once the workers run."""
    world = World(build("commuter-week", 1), CloudOptions(mode="owner", billing_limit_usd=None))
    begin = world.scenario.start + BUSY
    world.advance(begin)
    home_id = draw_home(engine, world)
    manual = ManualClock(begin) if speed is None else None
    async with SimServer(world, clock=manual, speed=speed or 1.0) as sim:
        values = {k: v for k, v in sim.env.items() if not k.startswith("FLEETLOG_")}
        values.update(ENCRYPTION_KEY="integration-key", FLEETLOG_DATA_DIR=str(tmp))
        values.update(env or {})
        settings = load_settings(values)
        clock: Clock = manual if manual is not None else sim.clock
        await sign_in_with_tokens(
            settings,
            engine,
            access_token=sim.env["FLEETLOG_ACCESS_TOKEN"],
            refresh_token=sim.env["FLEETLOG_REFRESH_TOKEN"],
            clock=clock,
        )
        pacer: Pacer
        done = asyncio.Event()
        if manual is not None:
            virtual = VirtualPacer(manual, end=begin + duration, on_advance=lambda _n: sim.sync())
            done = virtual.finished
            pacer = virtual
        else:
            pacer = LoopPacer(clock, speed or 1.0)
        account = await open_account(settings, engine, clock=clock)
        fleet = Fleet()
        services = Services(settings, engine, clock, web=web, web_port=0)
        try:
            await services.start(fleet, account)
            vehicles = await account.client.products()
            parts = Parts(engine, account.client, pacer, timing=Timing.from_settings(settings))
            services.on_listed(vehicles)
            await fleet.start(services.attachments().plug(parts), vehicles)
            while len(fleet.workers) < len(vehicles):
                await asyncio.sleep(0.01)
            yield Live(engine, sim, fleet, services, clock, home_id, done)
        finally:
            await fleet.stop()
            await services.stop()
            await account.aclose()
