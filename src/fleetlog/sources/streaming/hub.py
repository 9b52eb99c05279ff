"""The streaming sources of one fleetlog process, and the one place car workers read them.

::

    hub = StreamHub(notices=NoticeTable(engine))
    for feed in build_feeds(settings, cars, credentials, hub):
        hub.add(feed)
    async with hub:                                  # starts every feed as its own task
        async for item in hub.events(vin):           # FeedEvent(feed, vin, event)
            state, todo = step(state, item.event, now)

Feeds never wait on a reader: each car's events go to an unbounded queue of its own
(a warning is logged when one grows past ``backlog_warning``), so a slow car worker
delays only itself and a stuck feed delays only its cars. Feed-wide events
(``StreamConnected``/``StreamDisconnected`` of a fleet consumer, ``vin=None``) go to
every reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa

from fleetlog.clock import Clock, LoopClock
from fleetlog.config import Settings
from fleetlog.logs import log_event
from fleetlog.sources.streaming.feed import Credentials, FeedEvent, StaticCredentials
from fleetlog.sources.streaming.records import Notice
from fleetlog.sources.streaming.sse import SseFeed
from fleetlog.sources.streaming.telemetry import TelemetryTarget, telemetry_feed
from fleetlog.sources.streaming.websocket import Dialect, WebsocketFeed

log = logging.getLogger(__name__)

TESLA_WSS_HOST = "wss://streaming.vn.teslamotors.com"


class Feed(Protocol):
    name: str

    async def run(self) -> None: ...


class NoticeSink(Protocol):
    def write(self, notices: Sequence[tuple[str, Notice]]) -> None: ...


class NoticeTable:
    """Stores alerts and errors in ``fleetlog_telemetry_notices`` (one row per notice).

    A notice seen again (MQTT's alert history, a redelivery) is not stored twice; an
    alert's end, when it arrives later, is written into its row.
    """

    def __init__(self, engine: sa.Engine, clock: Clock | None = None) -> None:
        self._engine = engine
        self._clock = clock or LoopClock()

    def write(self, notices: Sequence[tuple[str, Notice]]) -> None:
        from fleetlog.store.tables import telemetry_notices as t

        inserted_at = _naive(self._clock.now())
        with self._engine.begin() as conn:
            for source, n in notices:
                at = _naive(n.at or self._clock.now())
                key = (t.c.vin == n.vin) & (t.c.kind == n.kind) & (t.c.name == n.name[:255])
                key = key & (t.c.at == at)
                row = conn.execute(sa.select(t.c.id, t.c.ended_at).where(key)).first()
                if row is None:
                    conn.execute(
                        t.insert().values(
                            vin=n.vin[:32], kind=n.kind, name=n.name[:255], at=at,
                            ended_at=_naive(n.ended_at) if n.ended_at else None,
                            audiences=",".join(n.audiences)[:255],
                            tags=json.dumps(dict(n.tags), sort_keys=True), body=n.body,
                            source=source[:255], inserted_at=inserted_at,
                        )
                    )  # fmt: skip
                elif n.ended_at is not None and row.ended_at is None:
                    conn.execute(
                        t.update().where(t.c.id == row.id).values(ended_at=_naive(n.ended_at))
                    )


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


class StreamHub:
    """Runs feeds as tasks and hands their events to readers per VIN (see module docstring)."""

    def __init__(self, *, notices: NoticeSink | None = None, backlog_warning: int = 10_000) -> None:
        self._feeds: list[Feed] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._readers: dict[str | None, list[asyncio.Queue[FeedEvent]]] = {}
        self._notices = notices
        self._pending_notices: list[tuple[str, Notice]] = []
        self._notice_task: asyncio.Task[None] | None = None
        self._notice_wake = asyncio.Event()
        self._backlog_warning = backlog_warning

    # --- the Outlet side (called by feeds; never blocks) ---

    def event(self, item: FeedEvent) -> None:
        targets = list(self._readers.get(None, ()))
        if item.vin is None:
            targets = [q for queues in self._readers.values() for q in queues]
        else:
            targets += self._readers.get(item.vin, ())
        for queue in targets:
            queue.put_nowait(item)
            if queue.qsize() == self._backlog_warning:
                log_event(log, logging.WARNING, "stream reader falling behind", vin=item.vin,
                          backlog=queue.qsize())  # fmt: skip

    def notice(self, item: Notice, feed: str) -> None:
        if self._notices is None:
            log_event(log, logging.INFO, "telemetry notice", vin=item.vin, kind=item.kind,
                      name=item.name)  # fmt: skip
            return
        self._pending_notices.append((feed, item))
        self._notice_wake.set()

    # --- running ---

    def add(self, feed: Feed) -> None:
        self._feeds.append(feed)
        if self._tasks:
            self._tasks.append(asyncio.create_task(self._run(feed), name=feed.name))

    async def start(self) -> None:
        for feed in self._feeds:
            self._tasks.append(asyncio.create_task(self._run(feed), name=feed.name))
        if self._notices is not None:
            self._notice_task = asyncio.create_task(self._write_notices())

    async def _run(self, feed: Feed) -> None:
        try:
            await feed.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # feeds handle their own errors; this is the last net
            log_event(log, logging.ERROR, "stream feed crashed", feed=feed.name,
                      error=f"{type(exc).__name__}: {str(exc)[:160]}")  # fmt: skip

    async def stop(self) -> None:
        """Cancel every feed (websockets unsubscribe on the way) and store pending notices."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._notice_task is not None:
            self._notice_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._notice_task
            self._notice_task = None
            await self._flush_notices()

    async def __aenter__(self) -> StreamHub:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _write_notices(self) -> None:
        while True:
            await self._notice_wake.wait()
            self._notice_wake.clear()
            await self._flush_notices()

    async def _flush_notices(self) -> None:
        batch, self._pending_notices = self._pending_notices, []
        if not batch or self._notices is None:
            return
        try:
            await asyncio.to_thread(self._notices.write, batch)
        except Exception as exc:  # the database is down: keep them for the next round
            self._pending_notices[:0] = batch
            log_event(log, logging.WARNING, "telemetry notices not stored yet", count=len(batch),
                      error=type(exc).__name__)  # fmt: skip
            await asyncio.sleep(5.0)
            self._notice_wake.set()

    # --- reading ---

    async def events(self, vin: str | None = None) -> AsyncIterator[FeedEvent]:
        """Every event for `vin` (None: for every car), as long as the caller reads."""
        queue: asyncio.Queue[FeedEvent] = asyncio.Queue()
        self._readers.setdefault(vin, []).append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._readers[vin].remove(queue)

    def reader(self, vin: str | None = None) -> asyncio.Queue[FeedEvent]:
        """A queue that receives every event for `vin` from now on (see :meth:`events`)."""
        queue: asyncio.Queue[FeedEvent] = asyncio.Queue()
        self._readers.setdefault(vin, []).append(queue)
        return queue


@dataclass(frozen=True, slots=True)
class CarRef:
    """What the feeds need to know of one car."""

    vin: str
    vehicle_id: int | None = None  # the legacy stream's tag
    stream: bool = False  # open the streaming websocket (TeslaMate's use_streaming_api)


def telemetry_targets(settings: Settings) -> list[TelemetryTarget]:
    """The dispatchers named by ``FLEETLOG_TELEMETRY`` (raises ValueError)."""
    raw: str | None = settings.telemetry
    if not raw:
        return []
    group: str | None = settings.telemetry_shared_group
    return [TelemetryTarget.parse(url, group=group) for url in raw.split(",") if url.strip()]


def build_feeds(
    settings: Settings,
    cars: Iterable[CarRef],
    credentials: Credentials,
    hub: StreamHub,
    *,
    clock: Clock | None = None,
    hold_s: float = 0.5,
) -> list[Any]:
    """Every feed the settings ask for, not started; add them to `hub`.

    - ``FLEETLOG_TELEMETRY``: one consumer per URL, for the VINs of `cars`;
    - cars with ``stream=True``: a websocket each at ``TESLA_WSS_HOST/streaming/``;
    - ``FLEETLOG_TESLEMETRY_STREAM_URL``: an SSE stream per car, with ``TOKEN``.
    """
    cars = list(cars)
    vins = [c.vin for c in cars]
    targets = telemetry_targets(settings)
    feeds: list[Any] = [
        telemetry_feed(t, hub, vins=vins, clock=clock, hold_s=hold_s) for t in targets
    ]
    host = settings.tesla_wss_host or TESLA_WSS_HOST
    use_vin = bool(settings.tesla_wss_use_vin)
    for car in cars:
        if not car.stream:
            continue
        tag = car.vin if use_vin or car.vehicle_id is None else str(car.vehicle_id)
        feeds.append(
            WebsocketFeed(
                url=f"{host.rstrip('/')}/streaming/", vin=car.vin, tag=tag,
                credentials=credentials, outlet=hub,
                dialect=Dialect.MYTESLAMATE if use_vin else Dialect.TESLA,
                accept_invalid_certs=bool(settings.tesla_wss_tls_accept_invalid_certs),
                clock=clock,
            )
        )  # fmt: skip
    sse_url: str | None = settings.teslemetry_stream_url
    if sse_url:
        token: str | None = settings.token
        sse_credentials = StaticCredentials(token) if token else credentials
        for v in vins:
            feeds.append(
                SseFeed(base_url=sse_url, vin=v, credentials=sse_credentials, outlet=hub,
                        clock=clock, hold_s=hold_s)
            )  # fmt: skip
    return feeds
