"""The logger at run time: one isolated worker per enabled car, supervised.

:func:`run_logger` is what ``fleetlog run`` and ``fleetlog demo`` run: sign in
(tokens from the vault), list the cars (free), register each in ``cars``, resume
what the database says was open, and run a :class:`CarWorker` per enabled car
until asked to stop. A worker whose task dies (a bug past the per-event guard)
is logged and restarted from the database after a pause; other cars never
notice. Stopping cancels the workers between steps: every step's rows are
committed whole, and what is open (a drive, a charge, the current state) stays
open for the next start to resume.

Sources: polling (the REST client) is always there; pushed feeds come per car
from a :data:`FeedFactory` (none yet: the streaming and telemetry issues add them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

import httpx
import sqlalchemy as sa

from fleetlog.clock import Clock, LoopClock
from fleetlog.logbook.resume import read_open_rows, resume
from fleetlog.logbook.writer import (
    CarIdentity,
    CarLogbook,
    ChargeCost,
    Places,
    register_car,
)
from fleetlog.logs import log_event
from fleetlog.sources.polling import PushFeed, RestFetcher
from fleetlog.sources.streaming import NoticeTable, StreamHub
from fleetlog.sources.tesla import TeslaAccount, TeslaClient, TeslaError, Vehicle, open_account
from fleetlog.vehicle import effects as fx
from fleetlog.vehicle import policy
from fleetlog.vehicle.events import Command
from fleetlog.vehicle.executor import Executor
from fleetlog.vehicle.feeds import account_credentials, push_feeds
from fleetlog.vehicle.machine import CarState
from fleetlog.vehicle.pacing import Pacer, cancel_and_wait
from fleetlog.vehicle.settings import Feed, Timing
from fleetlog.vehicle.worker import CarWorker

log = logging.getLogger(__name__)

FeedFactory = Callable[[Vehicle], PushFeed | None]
"""A car's pushed feed, or None for polling only."""

SummaryHook = Callable[[str, dict[str, Any]], None]
"""Called with (vin, summary) whenever a car's summary changes."""

CarHook = Callable[[int, Vehicle, bool], None]
"""Called with (car_id, vehicle, enabled) each time a car is registered in ``cars``."""

#: Pause before a crashed worker is started again.
RESTART_DELAY_S = 10.0
#: Pause between attempts to list the cars when Tesla does not answer.
LIST_RETRY_S = 30.0


@dataclass(slots=True)
class Parts:
    """What every car's worker shares."""

    engine: sa.Engine
    client: TeslaClient
    pacer: Pacer
    timing: Timing = field(default_factory=Timing)
    places: Places | None = None
    costs: ChargeCost | None = None
    feeds: FeedFactory | None = None
    on_summary: SummaryHook | None = None
    on_car: CarHook | None = None


@dataclass(frozen=True, slots=True)
class Attachments:
    """What the services beside the workers plug into them (``fleetlog.services``).

    Places and costs go into every car's logbook; ``on_summary`` joins any summary hook
    already there; ``on_car`` hears each registration; ``on_listed`` the account's cars.
    """

    places: Places | None = None
    costs: ChargeCost | None = None
    on_summary: SummaryHook | None = None
    on_car: CarHook | None = None
    on_listed: Callable[[list[Vehicle]], None] | None = None

    def plug(self, parts: Parts) -> Parts:
        """`parts` with these attachments (a new object; `parts` is left as it was)."""
        return replace(
            parts,
            places=self.places or parts.places,
            costs=self.costs or parts.costs,
            on_summary=_both(parts.on_summary, self.on_summary),
            on_car=self.on_car or parts.on_car,
        )


class Services(Protocol):
    """What ``run``/``demo`` start beside the workers (``fleetlog.services.Services``)."""

    def attachments(self) -> Attachments: ...

    async def start(self, fleet: Fleet, account: TeslaAccount) -> None: ...

    async def stop(self) -> None: ...


def _both(first: SummaryHook | None, second: SummaryHook | None) -> SummaryHook | None:
    if first is None or second is None:
        return first or second

    def hook(vin: str, summary: dict[str, Any]) -> None:
        first(vin, summary)
        second(vin, summary)

    return hook


def build_worker(parts: Parts, vehicle: Vehicle) -> CarWorker | None:
    """Register the car, resume its open rows and build its worker (None when disabled)."""
    identity = CarIdentity(
        eid=vehicle.id, vid=vehicle.vehicle_id, vin=vehicle.vin, name=vehicle.display_name
    )
    car = register_car(parts.engine, identity, parts.pacer.now())
    if parts.on_car is not None:
        parts.on_car(car.car_id, vehicle, car.settings.enabled)
    if not car.settings.enabled:
        log_event(log, logging.INFO, "car disabled, not logging", vin=vehicle.vin)
        return None
    feed = parts.feeds(vehicle) if parts.feeds is not None else None
    pushed = feed.feed if feed is not None else Feed.NONE
    initial = CarState(
        vehicle.vin,
        settings=car.settings,
        timing=parts.timing,
        feed=policy.feed_for(pushed, car.settings),  # use_streaming_api
        pushed=pushed,
    )
    state, refs = resume(initial, read_open_rows(parts.engine, car.car_id))
    logbook = CarLogbook(
        parts.engine, car.car_id, refs=refs, places=parts.places, costs=parts.costs
    )
    hook = parts.on_summary
    executor = Executor(
        vehicle.vin,
        logbook,
        on_summary=(lambda s: hook(vehicle.vin, s)) if hook is not None else None,
    )
    fetcher = RestFetcher(parts.client, vehicle.id, vehicle.vin, parts.pacer)
    return CarWorker(
        state=state,
        executor=executor,
        fetcher=fetcher,
        pacer=parts.pacer,
        engine=parts.engine,
        car_id=car.car_id,
        identity=identity,
        feed=feed,
    )


async def supervise(parts: Parts, vehicle: Vehicle, workers: dict[str, CarWorker]) -> None:
    """Run one car's worker forever, restarting it from the database if it dies."""
    while True:
        try:
            worker = build_worker(parts, vehicle)
            if worker is None:
                return
            workers[vehicle.vin] = worker
            await worker.run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("car worker died, restarting vin=%s", vehicle.vin)
            await asyncio.sleep(RESTART_DELAY_S)


async def list_cars(client: TeslaClient, stop: asyncio.Event) -> list[Vehicle] | None:
    """The account's cars (free); retried while Tesla does not answer, None if stopped."""
    while not stop.is_set():
        try:
            return await client.products()
        except TeslaError as exc:
            log_event(log, logging.WARNING, "cannot list the cars yet", error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), LIST_RETRY_S)
    return None


@dataclass(slots=True)
class Fleet:
    """The running workers, for status lines, the web app and tests."""

    workers: dict[str, CarWorker] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, parts: Parts, vehicles: list[Vehicle]) -> None:
        for vehicle in vehicles:
            task = asyncio.create_task(
                supervise(parts, vehicle, self.workers), name=f"car:{vehicle.vin}"
            )
            self.tasks.append(task)

    async def stop(self) -> None:
        for task in self.tasks:
            await cancel_and_wait(task)
        self.tasks.clear()

    async def command(self, car_id: int, command: Command) -> fx.CommandResult | None:
        """Hand a user command to the car's worker; its machine's answer (None: not running)."""
        for worker in self.workers.values():
            if worker.car_id == car_id:
                return await worker.command(command)
        return None


async def run_logger(
    account: TeslaAccount,
    engine: sa.Engine,
    *,
    pacer: Pacer,
    clock: Clock,
    stop: asyncio.Event,
    timing: Timing | None = None,
    feeds: FeedFactory | None = None,
    on_summary: SummaryHook | None = None,
    fleet: Fleet | None = None,
    keep_tokens_fresh: bool = True,
    attach: Attachments | None = None,
    settings: Any = None,
) -> Fleet:
    """List the cars and run them until `stop` is set; returns the (stopped) fleet.

    With `settings` (and no `feeds` given) the pushed feeds they name run beside
    polling (``fleetlog.vehicle.feeds``)."""
    fleet = fleet if fleet is not None else Fleet()
    keeper_task = asyncio.create_task(account.keeper.run()) if keep_tokens_fresh else None
    hub: StreamHub | None = None
    try:
        vehicles = await list_cars(account.client, stop)
        if vehicles is None:
            return fleet
        log_event(log, logging.INFO, "cars listed", count=len(vehicles))
        if feeds is None and settings is not None:
            hub = StreamHub(notices=NoticeTable(engine, clock))
            feeds = push_feeds(
                settings, vehicles, account_credentials(account, settings), hub, clock=clock
            )
            await hub.start()
        timing = timing or Timing()
        # a priced API (Fleet, Teslemetry): paid calls go where they matter
        timing = replace(timing, paced=account.governor.policy.priced)
        parts = Parts(
            engine,
            account.client,
            pacer,
            timing=timing,
            feeds=feeds,
            on_summary=on_summary,
        )
        if attach is not None:
            parts = attach.plug(parts)
            if attach.on_listed is not None:
                attach.on_listed(vehicles)
        await fleet.start(parts, vehicles)
        await stop.wait()
    finally:
        await fleet.stop()
        if hub is not None:
            await hub.stop()
        if keeper_task is not None:
            await cancel_and_wait(keeper_task)
        log_event(log, logging.INFO, "logger stopped", at=clock.now().isoformat())
    return fleet


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set `stop` (a graceful shutdown) instead of killing the loop."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def serve(
    settings: Any,
    engine: sa.Engine,
    *,
    clock: Clock,
    pacer: Pacer,
    stop: asyncio.Event | None = None,
    on_summary: SummaryHook | None = None,
    fleet: Fleet | None = None,
    services: Services | None = None,
) -> Fleet:
    """``fleetlog run``: sign in from the vault and log every enabled car until stopped.

    `services` (MQTT, the web app, address repair) start once signed in and stop last.
    """
    stop = stop if stop is not None else asyncio.Event()
    stop_on_signals(stop)
    account = await open_account(settings, engine, clock=clock)
    fleet = fleet if fleet is not None else Fleet()
    try:
        if services is not None:
            await services.start(fleet, account)
        return await run_logger(
            account,
            engine,
            pacer=pacer,
            clock=clock,
            stop=stop,
            timing=Timing.from_settings(settings),
            on_summary=on_summary,
            fleet=fleet,
            attach=services.attachments() if services is not None else None,
            settings=settings,
        )
    finally:
        if services is not None:
            await services.stop()
        await account.aclose()


def sim_clock(sim_url: str) -> tuple[LoopClock, float]:
    """A clock that runs with a fleetlog simulator's (its now and speed, read once)."""
    answer = httpx.get(sim_url.rstrip("/") + "/clock", timeout=10).json()
    speed = float(answer.get("speed") or 1.0)
    now = datetime.fromisoformat(str(answer["now"]).replace("Z", "+00:00"))
    clock = LoopClock(epoch=now, speed=speed)
    # anchored now (the loop's clock is time.monotonic too), not at first use in the loop:
    # the start-up in between would leave the logger behind the simulator by its length
    # × speed (35 simulated minutes for a 7 s start at 300×: drives stamped too early)
    clock.monotonic()
    return clock, speed
