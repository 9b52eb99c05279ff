"""One car's worker: the machine, its executor, its sources and its clock in one task.

The loop: take the next event (mailbox first, then whatever fetch or timer is
due), feed it to :func:`step`, let the executor carry out the effects, wait for
the next thing. While events wait in the mailbox (a burst, a backlog after a
reconnect) their rows are committed together (the executor's group commit);
before the worker waits, everything it handled is committed.

Each event is handled in isolation: an exception while handling one is logged
with the car and the event and the worker goes on (with a fetch scheduled, so it
never stalls). Nothing here can reach another car.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from fleetlog.logbook.writer import CarIdentity, update_identity
from fleetlog.sources.polling import Fetcher, PushFeed
from fleetlog.vehicle import effects as fx
from fleetlog.vehicle.events import (
    Boot,
    Command,
    Event,
    FetchedFull,
    FetchKind,
    TimerFired,
    TimerKind,
    UserCommand,
)
from fleetlog.vehicle.executor import Executor, PendingFetch
from fleetlog.vehicle.machine import CarState, step
from fleetlog.vehicle.pacing import Mailbox, Pacer

log = logging.getLogger(__name__)

#: After an unexpected error with nothing scheduled, look at the car again this much later.
RECOVERY_DELAY = timedelta(seconds=30)


class CarWorker:
    """Runs one car until cancelled."""

    def __init__(
        self,
        *,
        state: CarState,
        executor: Executor,
        fetcher: Fetcher,
        pacer: Pacer,
        engine: sa.Engine | None = None,
        car_id: int | None = None,
        identity: CarIdentity | None = None,
        feed: PushFeed | None = None,
    ) -> None:
        self.state = state
        self.executor = executor
        self.fetcher = fetcher
        self.pacer = pacer
        self.engine = engine
        self.car_id = car_id
        self.identity = identity
        self.feed = feed
        self.mailbox = Mailbox()
        self.events_handled = 0
        self.errors = 0
        self._commands: list[asyncio.Future[fx.CommandResult]] = []
        executor.on_command_result = self._command_answered
        if feed is not None:
            executor.on_stream = lambda on: feed.connect() if on else feed.disconnect()

    @property
    def vin(self) -> str:
        return self.state.vin

    async def run(self) -> None:
        feed_task = None
        self.pacer.join()
        try:
            if self.feed is not None:
                feed_task = asyncio.create_task(self.feed.run(self.mailbox))
            self.handle(Boot())
            while True:
                event = self.mailbox.get()
                if event is not None:
                    self.handle(event, hold=True)
                    continue
                self.executor.flush()
                event = await self._next_due()
                if event is not None:
                    self.handle(event)
        finally:
            self.pacer.leave()
            if feed_task is not None:
                feed_task.cancel()

    async def command(self, command: Command) -> fx.CommandResult:
        """Suspend or resume logging; the machine's answer."""
        future: asyncio.Future[fx.CommandResult] = asyncio.get_running_loop().create_future()
        self._commands.append(future)
        self.mailbox.put(UserCommand(command))
        return await future

    def _command_answered(self, result: fx.CommandResult) -> None:
        if self._commands:
            future = self._commands.pop(0)
            if not future.done():
                future.set_result(result)

    async def _next_due(self) -> Event | None:
        due = self.executor.next_due()
        now = self.pacer.now()
        if due is None or due[0] > now:
            await self.pacer.wait(due[0] if due else None, self.mailbox)
            return None
        what = due[1]
        if isinstance(what, TimerKind):
            self.executor.timers.pop(what, None)
            return TimerFired(what)
        self.executor.fetch = None
        try:
            return await self.fetcher.fetch(what)
        except Exception as exc:  # a fetcher bug must not end the car's task
            self._failed("fetch crashed", exc, kind=what.value)
            return None

    def handle(self, event: Event, *, hold: bool = False) -> None:
        """Feed one event to the machine and carry out what it asks, in isolation.

        `hold`: its rows may be committed with the next events' (:meth:`Executor.execute`).
        """
        now = self.pacer.now()
        try:
            new, effects = step(self.state, event, now)
        except Exception as exc:
            self._failed("machine failed on an event", exc, event=type(event).__name__)
            return
        self.state = new
        self.events_handled += 1
        try:
            self.executor.execute(effects, hold=hold)
            if isinstance(event, FetchedFull):
                self._note_identity(now)
        except Exception as exc:
            self._failed("effects failed", exc, event=type(event).__name__)

    def _note_identity(self, now: datetime) -> None:
        if self.identity is None or self.engine is None or self.car_id is None:
            return
        known = self.identity.with_state(self.state.snapshot)
        if known != self.identity:
            update_identity(self.engine, self.car_id, known, now)
            self.identity = known

    def _failed(self, message: str, exc: BaseException, **context: Any) -> None:
        self.errors += 1
        log.error(
            "%s vin=%s phase=%s %s",
            message,
            self.vin,
            self.state.phase.value,
            " ".join(f"{k}={v}" for k, v in context.items()),
            exc_info=exc,
        )
        if self.executor.fetch is None:
            at = self.pacer.now() + RECOVERY_DELAY
            self.executor.fetch = PendingFetch(FetchKind.LIGHT, at, "recovering")

    def summary(self) -> dict[str, Any]:
        return self.executor.summary
