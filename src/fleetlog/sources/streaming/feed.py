"""What every pushed source hands the car workers, and how it keeps going.

A *feed* is one connection (a websocket per car, one MQTT/ZMQ/Redis consumer for the
fleet, one SSE stream per car). It runs until cancelled, reconnecting forever with a
capped, jittered backoff, and passes :class:`FeedEvent` values to an :class:`Outlet`
without ever waiting on it, so a slow consumer or a dead broker stalls only its own feed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fleetlog.clock import Clock
from fleetlog.logs import log_event
from fleetlog.model.observation import Connectivity, Observation
from fleetlog.sources.streaming.fields import Plain
from fleetlog.sources.streaming.records import (
    ConnectivityRecord,
    FrameError,
    Notice,
    Record,
    VRecord,
    excerpt,
)
from fleetlog.sources.streaming.sequencer import Sequencer
from fleetlog.vehicle.events import CarConnectivity, Observed, StreamConnected, StreamDisconnected

log = logging.getLogger(__name__)

CarEvent = Observed | CarConnectivity | StreamConnected | StreamDisconnected


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """An event for the car `vin` (None: for every car the feed covers) from feed `feed`."""

    feed: str
    vin: str | None
    event: CarEvent


class Outlet(Protocol):
    """Where a feed puts what it read; both calls return at once."""

    def event(self, item: FeedEvent) -> None: ...

    def notice(self, item: Notice, feed: str) -> None: ...


class Backoff:
    """Capped exponential delays with jitter: ``base·factor^n``, at most ``cap``, ×[1-j, 1]."""

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 30.0,
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        self.base, self.cap, self.factor, self.jitter = base, cap, factor, jitter
        self.attempts = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        raw = min(self.cap, self.base * self.factor**self.attempts)
        self.attempts += 1
        # jitter spreads the reconnects of many workers after a broker restart
        return raw * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        self.attempts = 0


class Credentials(Protocol):
    """The token a streaming endpoint wants, and a way to get a fresh one."""

    def token(self) -> str: ...

    async def refresh(self, rejected: str) -> None: ...


@dataclass(frozen=True, slots=True)
class StaticCredentials:
    """A fixed token (TOKEN, a Teslemetry key): refreshing cannot help, so it only waits."""

    value: str

    def token(self) -> str:
        return self.value

    async def refresh(self, rejected: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class KeeperCredentials:
    """The account's access token from the token keeper; TOKEN wins when set (TeslaMate)."""

    access_token: Callable[[], str]
    refresh_access: Callable[[str], Awaitable[object]]
    fixed: str | None = None

    def token(self) -> str:
        return self.fixed or self.access_token()

    async def refresh(self, rejected: str) -> None:
        if not self.fixed:
            await self.refresh_access(rejected)


def connectivity_of(status: str) -> Connectivity | None:
    """Telemetry ``CONNECTED``/``DISCONNECTED`` and Teslemetry's states, any case."""
    value = status.strip().lower()
    if value in ("connected", "online"):
        return Connectivity.ONLINE
    if value in ("disconnected", "offline"):
        return Connectivity.OFFLINE
    if value == "asleep":
        return Connectivity.ASLEEP
    return None


class RecordIngest:
    """Turns decoded telemetry records into feed events; never raises.

    Shared by the MQTT, ZMQ, Redis and SSE feeds: V records go through a
    :class:`Sequencer` (so call :meth:`flush` as :meth:`due` says), connectivity
    becomes :class:`CarConnectivity`, alerts and errors go to the outlet's notices.
    """

    def __init__(
        self, feed: str, outlet: Outlet, sequencer: Sequencer, clock: Clock, vins: frozenset[str]
    ) -> None:
        self.feed = feed
        self._outlet = outlet
        self._sequencer = sequencer
        self._clock = clock
        self._vins = vins  # empty: every VIN the source sends

    def wants(self, vin: str) -> bool:
        return not self._vins or vin in self._vins

    def records(self, records: list[Record], *, vin_hint: str = "") -> None:
        now = self._clock.now()
        for record in records:
            vin = record.vin or vin_hint
            if not vin or not self.wants(vin):
                continue
            if isinstance(record, VRecord):
                if record.vin != vin:
                    record = VRecord(vin, record.created_at, record.data, record.is_resend)
                self._sequencer.add(record, now)
                for problem in record.problems:
                    self.bad(problem, b"", vin=vin)
            elif isinstance(record, ConnectivityRecord):
                self.connectivity(vin, record.status, record.created_at or now)
            else:
                if record.vin != vin:
                    record = Notice(
                        vin, record.kind, record.name, record.at, record.ended_at,
                        record.audiences, record.tags, record.body,
                    )  # fmt: skip
                self._outlet.notice(record, self.feed)

    def connectivity(self, vin: str, status: str, at: datetime) -> None:
        state = connectivity_of(status)
        if state is None:
            log_event(log, logging.INFO, "telemetry connectivity ignored", feed=self.feed,
                      vin=vin, status=status[:20])  # fmt: skip
            return
        self._outlet.event(FeedEvent(self.feed, vin, CarConnectivity(state, at)))

    def observation(self, observation: Observation, *, full_frame: bool = False) -> None:
        self._outlet.event(FeedEvent(self.feed, observation.vin, Observed(observation, full_frame)))

    def known_fields(self, vin: str) -> dict[str, Plain]:
        return self._sequencer.known_fields(vin)

    def due(self) -> datetime | None:
        return self._sequencer.next_due()

    def flush(self, *, everything: bool = False) -> None:
        for released in self._sequencer.release(self._clock.now(), everything=everything):
            for problem in released.problems:
                self.bad(problem, b"", vin=released.vin)
            if released.observation is not None:
                self.observation(released.observation)

    async def keep_flushing(self, idle_s: float) -> None:
        """Release held records as they come due, until cancelled."""
        while True:
            due = self.due()
            wait = idle_s if due is None else (due - self._clock.now()).total_seconds()
            await asyncio.sleep(max(0.01, wait))
            self.flush()

    def bad(self, problem: str, payload: bytes | str, **context: object) -> None:
        """Log a frame or field that was skipped, with a short excerpt."""
        fields = {"feed": self.feed, **context, "problem": problem[:160]}
        if payload:
            fields["excerpt"] = excerpt(payload)
        log_event(log, logging.WARNING, "stream frame skipped", **fields)

    def decode(self, decode: Callable[[], list[Record]], payload: bytes, **context: object) -> None:
        """Run `decode` and ingest its records; a bad frame is logged and skipped."""
        try:
            records = decode()
        except FrameError as exc:
            self.bad(str(exc), payload, **context)
            return
        except Exception as exc:  # a decoder bug must not stop the feed: skip the frame
            self.bad(f"{type(exc).__name__}: {exc}", payload, **context)
            return
        self.records(records, vin_hint=str(context.get("vin", "")))
