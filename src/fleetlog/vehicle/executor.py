"""The executor: carries out one step's effects for one car.

Database effects go to the car's :class:`CarLogbook` as one batch (one
transaction). A batch that cannot be written is kept and written again before
the next one, in order, so a database that is briefly away loses nothing; only a
batch the database keeps *refusing* (a data error, not a connection error) is
given up after a few attempts, logged with what it held, so one bad row cannot
stop the car's logbook for good.

Group commit: a step executed with ``hold=True`` (the worker does so while more
events wait in its mailbox) leaves its batch unsaved until :meth:`Executor.flush`,
or until :attr:`Executor.hold_steps` steps or :attr:`Executor.hold_s` seconds are
held; then all of them go in one transaction, in order. Each step is still stored
whole or not at all, and steps are stored in the order they happened, so a crash
loses at most the last held steps, exactly as if it had come that much earlier:
what the database holds is always a state the next start resumes from. The
commit per step (a disk flush on PostgreSQL) was most of the cost of a burst.

Everything else is bookkeeping the worker reads: the one pending fetch, the
armed timers, the stream wish, the latest summary, command answers, log lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from fleetlog.logbook.writer import DB_EFFECTS, CarLogbook
from fleetlog.logs import log_event
from fleetlog.vehicle import effects as fx
from fleetlog.vehicle.events import FetchKind, TimerKind

log = logging.getLogger(__name__)

#: A batch refused this many times for a reason other than the connection is dropped.
MAX_REFUSALS = 5

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


@dataclass(frozen=True, slots=True)
class PendingFetch:
    kind: FetchKind
    at: datetime
    reason: str


@dataclass(slots=True)
class _Batch:
    effects: list[fx.Effect]
    refusals: int = 0
    since: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class Executor:
    """One car's effects, carried out. `on_*` hooks connect the outside (MQTT, web, feed)."""

    vin: str
    logbook: CarLogbook
    on_summary: Callable[[dict[str, Any]], None] | None = None
    on_stream: Callable[[bool], None] | None = None
    on_command_result: Callable[[fx.CommandResult], None] | None = None
    fetch: PendingFetch | None = None
    timers: dict[TimerKind, datetime] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    unsaved: list[_Batch] = field(default_factory=list)
    #: At most this many held steps wait for their commit …
    hold_steps: int = 500
    #: … and none of them longer than this (seconds, monotonic).
    hold_s: float = 0.25

    def execute(self, effects: Sequence[fx.Effect], *, hold: bool = False) -> None:
        """Carry out one step's effects, in order.

        `hold`: the step's rows may wait to be committed with the next steps' (see the
        module's notes); the other effects are carried out at once either way.
        """
        stored: list[fx.Effect] = [e for e in effects if isinstance(e, DB_EFFECTS)]
        if stored:
            self.unsaved.append(_Batch(stored))
        if not hold or self._commit_due():
            self.flush()
        for e in effects:
            match e:
                case fx.ScheduleFetch(kind=kind, at=at, reason=reason):
                    self.fetch = PendingFetch(kind, at, reason)
                case fx.SetTimer(timer=timer, at=at):
                    self.timers[timer] = at
                case fx.CancelTimer(timer=timer):
                    self.timers.pop(timer, None)
                case fx.PublishSummary(summary=summary):
                    self.summary = summary
                    if self.on_summary is not None:
                        self.on_summary(summary)
                case fx.ConnectStream():
                    if self.on_stream is not None:
                        self.on_stream(True)
                case fx.DisconnectStream():
                    if self.on_stream is not None:
                        self.on_stream(False)
                case fx.CommandResult():
                    if self.on_command_result is not None:
                        self.on_command_result(e)
                case fx.Log(message=message, level=level, fields=fields):
                    log_event(
                        log, _LEVELS.get(level, logging.INFO), message, vin=self.vin, **fields
                    )
                case _:
                    pass

    def _commit_due(self) -> bool:
        if not self.unsaved:
            return False
        held_for = time.monotonic() - self.unsaved[0].since
        return len(self.unsaved) >= self.hold_steps or held_for >= self.hold_s

    def flush(self) -> bool:
        """Write what is unsaved, oldest first; True when nothing is left."""
        if len(self.unsaved) > 1:
            try:
                self.logbook.apply_steps([b.effects for b in self.unsaved])
            except sa.exc.OperationalError as exc:
                self._unavailable(exc)
                return False
            except Exception:
                pass  # one step is refused: found below, one transaction per step
            else:
                self.unsaved.clear()
                return True
        while self.unsaved:
            batch = self.unsaved[0]
            try:
                self.logbook.apply(batch.effects)
            except sa.exc.OperationalError as exc:
                self._unavailable(exc)
                return False
            except Exception as exc:
                batch.refusals += 1
                give_up = batch.refusals >= MAX_REFUSALS
                log_event(
                    log,
                    logging.ERROR,
                    "rows given up" if give_up else "rows not written, will retry",
                    vin=self.vin,
                    effects=",".join(type(e).__name__ for e in batch.effects),
                    attempt=batch.refusals,
                    error=_first_line(exc),
                )
                if not give_up:
                    return False
            self.unsaved.pop(0)
        return True

    def _unavailable(self, exc: sa.exc.OperationalError) -> None:
        # the database is away: keep everything, try again at the next step
        log_event(
            log,
            logging.ERROR,
            "database unavailable, keeping the car's rows to write later",
            vin=self.vin,
            waiting=len(self.unsaved),
            error=_first_line(exc),
        )

    def next_due(self) -> tuple[datetime, FetchKind | TimerKind] | None:
        """The earliest pending fetch or timer."""
        candidates: list[tuple[datetime, FetchKind | TimerKind]] = [
            (at, timer) for timer, at in self.timers.items()
        ]
        if self.fetch is not None:
            candidates.append((self.fetch.at, self.fetch.kind))
        return min(candidates, key=lambda c: c[0]) if candidates else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
