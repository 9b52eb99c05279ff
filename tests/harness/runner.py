"""Run a simulated scenario through fleetlog in virtual time and collect what was stored.

The simulator serves real HTTP on loopback; fleetlog's real client, machine,
worker and logbook talk to it. One :class:`ManualClock` is shared: the
:class:`VirtualPacer` moves it (and the simulated world) to the next fetch or
timer as soon as every car's worker waits, so a simulated day takes seconds.

Sources plug in through :class:`SourceMode`: ``polling`` is the REST client alone;
``myteslamate`` adds MyTeslaMate's websocket (``TESLA_WSS_HOST``, ``TESLA_WSS_USE_VIN``),
``mqtt`` Fleet Telemetry through a private Mosquitto (``FLEETLOG_TELEMETRY``) and
``teslemetry`` Teslemetry's SSE (``FLEETLOG_TESLEMETRY_STREAM_URL``). Pushed feeds are
built by ``fleetlog.vehicle.feeds.push_feeds`` from the settings, as ``fleetlog run``
does. Pushed data travels over real sockets, so while a car is awake virtual time moves
in steps of at most ``PUSH_STEP_S`` and waits after each until the pushes have landed.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
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
from fleetlog.sources.streaming import FeedEvent, StaticCredentials, StreamHub
from fleetlog.sources.streaming.profiles import PROFILES, fleet_telemetry_config
from fleetlog.sources.tesla import Ledger, open_account, sign_in_with_tokens
from fleetlog.vehicle.feeds import push_feeds
from fleetlog.vehicle.pacing import VirtualPacer
from fleetlog.vehicle.settings import Timing

ENCRYPTION_KEY = "fidelity-harness-key"

#: Longest virtual-time step while a car is awake (pushed data is stamped at arrival on MQTT).
PUSH_STEP_S = 15.0


@dataclass(frozen=True, slots=True)
class SourceMode:
    """How fleetlog hears the car: the sim's cloud mode and which pushed source."""

    name: str
    cloud_mode: str = "fleet"
    feeds: Callable[[SimServer], FeedFactory | None] = field(default=lambda _sim: None)
    telemetry: str | None = None  # "mqtt": the sim dispatches to a private Mosquitto
    sse: bool = False
    pushed: bool = False


POLLING = SourceMode("polling")
MYTESLAMATE = SourceMode("myteslamate", cloud_mode="myteslamate", pushed=True)
MQTT = SourceMode("mqtt", telemetry="mqtt", pushed=True)
TESLEMETRY = SourceMode("teslemetry", cloud_mode="teslemetry", sse=True, pushed=True)
MODES = {m.name: m for m in (POLLING, MYTESLAMATE, MQTT, TESLEMETRY)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def mosquitto() -> AsyncIterator[str]:
    """A private Mosquitto on a free port: its mqtt:// URL."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            await asyncio.sleep(0.05)
        yield f"mqtt://127.0.0.1:{port}/telemetry"
    finally:
        proc.terminate()
        proc.wait(5)


async def _configure_telemetry(sim: SimServer, vins: list[str]) -> None:
    """What a fleetlog user does once: ask the cars for telemetry (the balanced profile)."""
    import httpx

    token = sim.world.initial_tokens().access_token
    config = fleet_telemetry_config(PROFILES["balanced"], hostname="telemetry.example.com")
    async with httpx.AsyncClient(
        base_url=sim.base_url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        answer = await client.post(
            "/api/1/vehicles/fleet_telemetry_config", json={"vins": vins, "config": config}
        )
        answer.raise_for_status()


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
    signals: int = 0
    pushed_events: int = 0


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
    async with contextlib.AsyncExitStack() as stack:
        telemetry = []
        if source.telemetry == "mqtt":
            telemetry.append(await stack.enter_async_context(mosquitto()))
        sim = await stack.enter_async_context(
            SimServer(world, clock=clock, faults=faults, telemetry=telemetry)
        )
        env = {k: v for k, v in sim.env.items() if not k.startswith("FLEETLOG_")}
        env.update(ENCRYPTION_KEY=ENCRYPTION_KEY, FLEETLOG_DATA_DIR=str(tmp))
        if telemetry:
            env["FLEETLOG_TELEMETRY"] = sim.env["FLEETLOG_TELEMETRY"]
            await _configure_telemetry(sim, [c.spec.vin for c in world.cars])
        if source.sse:
            env["FLEETLOG_TESLEMETRY_STREAM_URL"] = sim.base_url  # the feed adds /sse/{vin}
        settings = load_settings(env)
        await sign_in_with_tokens(
            settings,
            engine,
            access_token=sim.env["FLEETLOG_ACCESS_TOKEN"],
            refresh_token=sim.env["FLEETLOG_REFRESH_TOKEN"],
            clock=clock,
        )
        hub = StreamHub()
        landed = hub.reader(None)
        pushed_events = 0

        def awake(_now: datetime) -> float | None:
            if not source.pushed:
                return None
            return PUSH_STEP_S if any(c.state == "online" for c in world.cars) else None

        async def settle() -> None:
            # wait until what this step pushed has reached the cars' mailboxes
            nonlocal pushed_events
            if not source.pushed or not any(c.state == "online" for c in world.cars):
                return
            await sim.flush()
            quiet = 0
            while quiet < 2:
                await asyncio.sleep(0.004)
                n = landed.qsize()
                while not landed.empty():
                    landed.get_nowait()
                pushed_events += n
                quiet = quiet + 1 if n == 0 else 0

        pacer = VirtualPacer(
            clock,
            end=end,
            on_advance=lambda _now: sim.sync(),
            max_step=awake if source.pushed else None,
            settle=settle if source.pushed else None,
        )
        account = await open_account(settings, engine, clock=clock)
        fleet = Fleet()
        try:
            vehicles = await account.client.products()
            feeds = source.feeds(sim)
            if feeds is None and source.pushed:
                token = settings.token or sim.env["FLEETLOG_ACCESS_TOKEN"]
                feeds = push_feeds(
                    settings, vehicles, StaticCredentials(token), hub, clock=clock, hold_s=0.0
                )
                await hub.start()
            parts = Parts(
                engine,
                account.client,
                pacer,
                timing=replace(
                    Timing.from_settings(settings), paced=account.governor.policy.priced
                ),
                feeds=feeds,
            )
            await fleet.start(parts, vehicles)
            if on_ready is not None:
                while len(fleet.workers) < len(vehicles):
                    await asyncio.sleep(0)
                on_ready(fleet)
            await pacer.finished.wait()
        finally:
            await fleet.stop()
            await hub.stop()
            await account.aclose()
        truth = sim.truth()
    _ = FeedEvent  # (the hub's item type, for readers of this module)
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
        signals=_signals(truth),
        pushed_events=pushed_events,
    )


def _signals(truth: dict[str, Any]) -> int:
    """Streaming signals the simulator billed (Fleet Telemetry: one per datum sent)."""
    by = truth.get("ledger", {}).get("by_category", {})
    return int(by.get("signals", {}).get("calls", 0))
