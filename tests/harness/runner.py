"""Run a simulated scenario through fleetlog in virtual time and collect what was stored.

The simulator serves real HTTP on loopback; fleetlog's real client, machine,
worker and logbook talk to it. One :class:`ManualClock` is shared: the
:class:`VirtualPacer` moves it (and the simulated world) to the next fetch or
timer as soon as every car's worker waits, so a simulated day takes seconds.

Sources plug in through :class:`SourceMode`: ``polling`` is the REST client alone;
the streaming, telemetry and SSE issues add their feed factories here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from fleetlog.clock import ManualClock
from fleetlog.config import load_settings
from fleetlog.runtime import FeedFactory, Fleet, Parts
from fleetlog.sim.scenarios import build
from fleetlog.sim.server import Faults, SimServer
from fleetlog.sim.world import CloudOptions, World
from fleetlog.sources.tesla import Ledger, open_account, sign_in_with_tokens
from fleetlog.vehicle.pacing import VirtualPacer
from fleetlog.vehicle.settings import Timing

ENCRYPTION_KEY = "fidelity-harness-key"


@dataclass(frozen=True, slots=True)
class SourceMode:
    """How fleetlog hears the car: the sim's cloud mode and the per-car pushed feed."""

    name: str
    cloud_mode: str = "fleet"
    feeds: Callable[[SimServer], FeedFactory | None] = field(default=lambda _sim: None)


POLLING = SourceMode("polling")


@dataclass(slots=True)
class Run:
    scenario: str
    source: str
    start: datetime
    end: datetime
    truth: dict[str, Any]
    wall_s: float
    paid_calls: int
    cost_usd: float
    calls: int
    worker_errors: int


async def run_scenario(
    scenario: str,
    engine: sa.Engine,
    tmp: Path,
    *,
    source: SourceMode = POLLING,
    start: timedelta = timedelta(0),
    duration: timedelta | None = None,
    seed: int = 1,
    cars: int = 2,
    faults: Faults | None = None,
    on_ready: Callable[[Fleet], None] | None = None,
) -> Run:
    """Run `scenario` from `start` for `duration` (default: to its end) into `engine`."""
    world = World(build(scenario, seed, cars=cars), CloudOptions(mode=source.cloud_mode, seed=seed))  # type: ignore[arg-type]
    begin = world.scenario.start + start
    world.advance(begin)
    end = begin + duration if duration is not None else world.scenario.end
    clock = ManualClock(begin)
    wall = time.perf_counter()
    async with SimServer(world, clock=clock, faults=faults) as sim:
        env = {k: v for k, v in sim.env.items() if not k.startswith("FLEETLOG_")}
        env.update(ENCRYPTION_KEY=ENCRYPTION_KEY, FLEETLOG_DATA_DIR=str(tmp))
        settings = load_settings(env)
        await sign_in_with_tokens(
            settings,
            engine,
            access_token=sim.env["FLEETLOG_ACCESS_TOKEN"],
            refresh_token=sim.env["FLEETLOG_REFRESH_TOKEN"],
            clock=clock,
        )
        pacer = VirtualPacer(clock, end=end, on_advance=lambda _now: sim.sync())
        account = await open_account(settings, engine, clock=clock)
        fleet = Fleet()
        try:
            vehicles = await account.client.products()
            parts = Parts(
                engine,
                account.client,
                pacer,
                timing=replace(
                    Timing.from_settings(settings), paced=account.governor.policy.priced
                ),
                feeds=source.feeds(sim),
            )
            await fleet.start(parts, vehicles)
            if on_ready is not None:
                while len(fleet.workers) < len(vehicles):
                    await asyncio.sleep(0)
                on_ready(fleet)
            await pacer.finished.wait()
        finally:
            await fleet.stop()
            await account.aclose()
        truth = sim.truth()
    totals = Ledger(engine).totals(by="month", per="account")
    return Run(
        scenario=scenario,
        source=source.name,
        start=begin,
        end=end,
        truth=truth,
        wall_s=time.perf_counter() - wall,
        paid_calls=sum(t.billed for t in totals),
        cost_usd=sum(t.cost_usd for t in totals),
        calls=sum(t.requests for t in totals),
        worker_errors=sum(w.errors for w in fleet.workers.values()),
    )
