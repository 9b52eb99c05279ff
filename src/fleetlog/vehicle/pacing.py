"""Waiting for the next thing to do: a car's mailbox and the pacer that sleeps between events.

A worker waits for one of two things: the time of its next fetch or timer, or an
event in its :class:`Mailbox` (pushed data, a user command). The :class:`Pacer`
does the waiting, so the same worker runs

* live (:class:`LoopPacer`): the event loop's clock, optionally sped up to match
  a simulator running N× real time (the demo);
* in virtual time (:class:`VirtualPacer`): a :class:`ManualClock` that jumps to the
  next deadline as soon as *every* worker is waiting. Nothing else moves time, so
  a simulated week runs as fast as the HTTP calls and database writes allow, and
  runs the same way every time (the fidelity harness).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from fleetlog.clock import Clock, ManualClock
from fleetlog.vehicle.events import Event


class Mailbox:
    """The events pushed to one car, in arrival order."""

    def __init__(self) -> None:
        self._items: deque[Event] = deque()
        self._listener: Callable[[], None] | None = None

    def put(self, event: Event) -> None:
        self._items.append(event)
        if self._listener is not None:
            listener, self._listener = self._listener, None
            listener()

    def get(self) -> Event | None:
        return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        return len(self._items)

    def listen(self, callback: Callable[[], None] | None) -> None:
        """Call `callback` (once) at the next put; ``None`` stops listening."""
        self._listener = callback


class Pacer(Protocol):
    """The clock a worker lives by, and how it waits."""

    def now(self) -> datetime: ...

    async def wait(self, until: datetime | None, mailbox: Mailbox) -> None:
        """Return at `until` (never, if None) or as soon as `mailbox` holds an event."""
        ...

    def join(self) -> None:
        """A worker starts taking part."""
        ...

    def leave(self) -> None:
        """A worker stops taking part."""
        ...


class LoopPacer:
    """Waits on the event loop. `speed` is simulated seconds per loop second (1 = live)."""

    def __init__(self, clock: Clock, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.clock = clock
        self.speed = speed

    def now(self) -> datetime:
        return self.clock.now()

    def join(self) -> None:
        pass

    def leave(self) -> None:
        pass

    async def wait(self, until: datetime | None, mailbox: Mailbox) -> None:
        if len(mailbox):
            return
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not woken.done():
                woken.set_result(None)

        mailbox.listen(wake)
        timer = None
        if until is not None:
            delay = max(0.0, (until - self.clock.now()).total_seconds() / self.speed)
            timer = loop.call_later(delay, wake)
        try:
            await woken
        finally:
            mailbox.listen(None)
            if timer is not None:
                timer.cancel()


class VirtualPacer:
    """Virtual time: when every worker waits, the clock jumps to the earliest deadline.

    `on_advance(now)` runs after each jump (the harness moves the simulator there).
    Past `end` nothing is woken any more and :attr:`finished` is set.

    Pushed data travels over real sockets: `max_step(now)` (seconds, or None for no
    limit) caps a jump while something is pushed, and `settle()` is awaited after a
    jump before anyone is woken, so what the jump pushed has reached the mailboxes.
    """

    def __init__(
        self,
        clock: ManualClock,
        *,
        end: datetime,
        on_advance: Callable[[datetime], None] | None = None,
        max_step: Callable[[datetime], float | None] | None = None,
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.clock = clock
        self.end = end
        self.on_advance = on_advance
        self.max_step = max_step
        self.settle = settle
        self._settling = False
        self.finished = asyncio.Event()
        self._members = 0
        self._sleepers: dict[int, tuple[datetime | None, asyncio.Future[None]]] = {}
        self._next_id = 0
        self._check_pending = False

    def now(self) -> datetime:
        return self.clock.now()

    def join(self) -> None:
        self._members += 1

    def leave(self) -> None:
        self._members -= 1
        self._schedule_check()

    async def wait(self, until: datetime | None, mailbox: Mailbox) -> None:
        if len(mailbox):
            return
        if until is not None and until <= self.clock.now():
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        key = self._next_id
        self._next_id += 1
        self._sleepers[key] = (until, woken)

        def wake() -> None:
            self._sleepers.pop(key, None)
            if not woken.done():
                woken.set_result(None)

        mailbox.listen(wake)
        self._schedule_check()
        try:
            await woken
        finally:
            mailbox.listen(None)
            self._sleepers.pop(key, None)

    def _schedule_check(self) -> None:
        if not self._check_pending:
            self._check_pending = True
            asyncio.get_running_loop().call_soon(self._check)

    def _check(self) -> None:
        self._check_pending = False
        if self._settling:
            return
        if self._members <= 0 or len(self._sleepers) < self._members:
            return  # someone is still working (an HTTP call, a write)
        deadlines = [u for u, _ in self._sleepers.values() if u is not None]
        if not deadlines or min(deadlines) > self.end:
            self.finished.set()
            return
        target = min(deadlines)
        now = self.clock.now()
        cap = self.max_step(now) if self.max_step is not None else None
        if cap is not None:
            target = min(target, now + timedelta(seconds=cap))
        if target > now:
            self.clock.advance((target - now).total_seconds())
            if self.on_advance is not None:
                self.on_advance(self.clock.now())
            if self.settle is not None:
                self._settling = True
                asyncio.get_running_loop().create_task(self._settle_then_wake())
                return
        self._wake_due()

    async def _settle_then_wake(self) -> None:
        try:
            assert self.settle is not None
            await self.settle()
        finally:
            self._settling = False
            self._wake_due()

    def _wake_due(self) -> None:
        now = self.clock.now()
        woken = False
        for key, (until, fut) in list(self._sleepers.items()):
            if until is not None and until <= now:
                del self._sleepers[key]
                if not fut.done():
                    fut.set_result(None)
                    woken = True
        if not woken:
            self._schedule_check()  # a capped step woke nobody: take the next one


async def cancel_and_wait(task: asyncio.Task[object]) -> None:
    """Cancel `task` and wait until it has finished (its exception is not re-raised)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
