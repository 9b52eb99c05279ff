"""What the web app needs from the running logger: live summaries and suspend/resume.

The web app never imports the worker. The runtime (``fleetlog run`` / ``fleetlog demo``) hands
``create_app(..., live=...)`` an object that satisfies :class:`LiveCars`. The simplest way is
:class:`LiveBoard`, which implements the protocol in memory: the runtime calls
``board.publish(car_id, summary)`` whenever a car's summary changes (the same dict that goes to
MQTT, :func:`fleetlog.vehicle.summary.summary`), and registers what suspend and resume do::

    board = LiveBoard()
    board.on_suspend = worker_registry.suspend   # async (car_id) -> Outcome
    board.on_resume = worker_registry.resume
    board.budget = lambda: governor.state(clock.now()).as_dict()
    app = create_app(settings, engine, live=board)
    ...
    board.publish(car.id, summary(state) | {"stream_connected": True})

Extra summary keys the cars page shows when present (beyond TeslaMate's topics):
``stream_connected`` (bool: streaming/telemetry link up), ``source`` (e.g. "telemetry",
"polling"), ``logging`` ("enabled"/"suspended").

Without a runtime (``fleetlog web`` on its own) the app shows what the database last recorded
and answers suspend/resume with 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to suspend or resume: done, or refused with a reason users can read."""

    ok: bool
    reason: str | None = None


@runtime_checkable
class LiveCars(Protocol):
    """The runtime's side of the web app (see the module docstring)."""

    def summary(self, car_id: int) -> Mapping[str, Any] | None:
        """The car's latest summary, or None when the runtime has none yet."""
        ...

    def subscribe(self) -> AsyncIterator[tuple[int, Mapping[str, Any]]]:
        """Every later summary change as (car_id, summary), until the consumer stops."""
        ...

    async def suspend_logging(self, car_id: int) -> Outcome:
        """Let the car fall asleep (TeslaMate's "try to sleep"); refuse with a reason if not."""
        ...

    async def resume_logging(self, car_id: int) -> Outcome:
        """Back to normal polling now."""
        ...

    def budget_state(self) -> Mapping[str, Any] | None:
        """The Tesla API budget governor's state (``BudgetState.as_dict()``), if any."""
        ...


Handler = Callable[[int], Awaitable[Outcome]]


async def _refuse(_car_id: int) -> Outcome:
    return Outcome(False, "the logger is not running in this process")


class LiveBoard:
    """An in-memory :class:`LiveCars`: the runtime publishes, web clients subscribe."""

    def __init__(self, queue_size: int = 64) -> None:
        self._latest: dict[int, Mapping[str, Any]] = {}
        self._subscribers: set[asyncio.Queue[tuple[int, Mapping[str, Any]]]] = set()
        self._queue_size = queue_size
        self.on_suspend: Handler = _refuse
        self.on_resume: Handler = _refuse
        self.budget: Callable[[], Mapping[str, Any] | None] = lambda: None
        # Optional: the account's sign-in health (``TeslaAccount.health(clock)``), shown on
        # the Tesla account page. Not part of :class:`LiveCars`; the web app asks for it only
        # when the live object has ``account_state``.
        self.account: Callable[[], Mapping[str, Any] | None] = lambda: None

    def publish(self, car_id: int, summary: Mapping[str, Any]) -> None:
        """Record the car's new summary and hand it to every subscriber (never blocks)."""
        self._latest[car_id] = dict(summary)
        for queue in list(self._subscribers):
            if queue.full():
                # A slow browser tab must not hold the logger up: drop its oldest update,
                # the newest summary is complete in itself.
                queue.get_nowait()
            queue.put_nowait((car_id, self._latest[car_id]))

    def summary(self, car_id: int) -> Mapping[str, Any] | None:
        return self._latest.get(car_id)

    async def subscribe(self) -> AsyncIterator[tuple[int, Mapping[str, Any]]]:
        queue: asyncio.Queue[tuple[int, Mapping[str, Any]]] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)

    async def suspend_logging(self, car_id: int) -> Outcome:
        return await self.on_suspend(car_id)

    async def resume_logging(self, car_id: int) -> Outcome:
        return await self.on_resume(car_id)

    def budget_state(self) -> Mapping[str, Any] | None:
        return self.budget()

    def account_state(self) -> Mapping[str, Any] | None:
        return self.account()
