"""The clock seam: the one place that knows what "now" is.

Nothing in fleetlog's core reads wall time. Code that needs the time takes a
:class:`Clock`; the event-loop clock is the default, so a virtual-time loop
(tests, fast-forwarded simulations) moves every timer and every "now" at once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """A source of the current UTC time and of monotonic seconds."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (for intervals and timers)."""
        ...


@dataclass(slots=True)
class LoopClock:
    """UTC time anchored at `epoch` that advances with the running event loop's clock.

    `speed` scales elapsed loop time, so `LoopClock(speed=60)` runs an hour a minute.
    The anchor is taken on first use inside a loop; a virtual-time loop therefore
    fast-forwards "now" along with its timers.
    """

    epoch: datetime = field(default_factory=lambda: datetime.now(UTC))
    speed: float = 1.0
    _loop_start: float | None = None

    def _loop_time(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    def monotonic(self) -> float:
        t = self._loop_time()
        if self._loop_start is None:
            self._loop_start = t
        return (t - self._loop_start) * self.speed

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=self.monotonic())


@dataclass(slots=True)
class ManualClock:
    """A clock that moves only when told to: for pure tests and replays."""

    current: datetime
    _mono: float = 0.0

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` (never backwards)."""
        if seconds < 0:
            raise ValueError("a clock never moves backwards")
        self.current += timedelta(seconds=seconds)
        self._mono += seconds
