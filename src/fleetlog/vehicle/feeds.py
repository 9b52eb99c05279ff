"""Pushed data for the car workers: the stream hub's events into each car's mailbox.

:func:`push_feeds` builds what the settings name (``sources.streaming.build_feeds``):
telemetry consumers and SSE streams are always on (the car pushes when it is awake
and costs nothing when it is not), so the hub runs them from the start. A legacy /
MyTeslaMate websocket is per car and follows the machine, as in TeslaMate: the
machine's ``ConnectStream`` subscribes it (online, driving, suspended, charging,
and while probing a wake) and ``DisconnectStream`` closes it (asleep, offline,
updating), so a sleeping car is never held on a subscription.

Which feed a car gets (what the machine may trust pushed data with):

* ``FLEETLOG_TELEMETRY`` or ``FLEETLOG_TESLEMETRY_STREAM_URL`` → ``Feed.TELEMETRY``
  (gear, charge state and connectivity are pushed);
* else ``TESLA_WSS_HOST`` → ``Feed.STREAM`` (drive fields only);
* else polling only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from fleetlog.sources.streaming import (
    CarRef,
    Credentials,
    FeedEvent,
    StreamHub,
    WebsocketFeed,
    build_feeds,
)
from fleetlog.sources.tesla import Vehicle
from fleetlog.vehicle.pacing import Mailbox
from fleetlog.vehicle.settings import Feed


class _Runnable(Protocol):
    async def run(self) -> None: ...


class HubFeed:
    """One car's pushed data, read from the hub (a ``sources.polling.PushFeed``).

    The reader is registered at construction, so nothing pushed before the worker
    starts reading is lost. `socket`, when given, is run only between the machine's
    ``connect`` and ``disconnect``.
    """

    def __init__(
        self, hub: StreamHub, vin: str, feed: Feed, socket: _Runnable | None = None
    ) -> None:
        self.feed = feed
        self.vin = vin
        self.socket = socket
        self._queue: asyncio.Queue[FeedEvent] = hub.reader(vin)
        self._task: asyncio.Task[None] | None = None

    async def run(self, mailbox: Mailbox) -> None:
        try:
            while True:
                item = await self._queue.get()
                mailbox.put(item.event)
        finally:
            self.disconnect()

    def connect(self) -> None:
        if self.socket is not None and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(
                self.socket.run(), name=f"stream:{self.vin}"
            )

    def disconnect(self) -> None:
        if self._task is not None:
            self._task.cancel()  # the websocket unsubscribes on the way out
            self._task = None

    @property
    def connected(self) -> bool:
        return self._task is not None and not self._task.done()


def push_feeds(
    settings: Any,
    vehicles: Iterable[Vehicle],
    credentials: Credentials,
    hub: StreamHub,
    **build: Any,
) -> Callable[[Vehicle], HubFeed | None]:
    """Build the configured feeds; those always on are added to `hub`. Returns the
    per-car factory for ``runtime.Parts.feeds``."""
    vehicles = list(vehicles)
    websocket = bool(settings.tesla_wss_host)
    cars = [CarRef(v.vin, v.vehicle_id, stream=websocket) for v in vehicles]
    feeds = build_feeds(settings, cars, credentials, hub, **build)
    sockets: dict[str, WebsocketFeed] = {}
    pushed = False
    for f in feeds:
        if isinstance(f, WebsocketFeed):
            sockets[f.vin] = f
        else:
            hub.add(f)
            pushed = True

    def factory(vehicle: Vehicle) -> HubFeed | None:
        if pushed:
            return HubFeed(hub, vehicle.vin, Feed.TELEMETRY)
        socket = sockets.get(vehicle.vin)
        if socket is not None:
            return HubFeed(hub, vehicle.vin, Feed.STREAM, socket)
        return None

    return factory


async def stop_feed(feed: HubFeed) -> None:
    """Disconnect a car's websocket and wait for it to unsubscribe."""
    task = feed._task
    feed.disconnect()
    if task is not None:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def account_credentials(account: Any, settings: Any) -> Credentials:
    """The stream token: ``TOKEN`` when set (as TeslaMate), else the account's access
    token, refreshed through the token keeper when a stream rejects it."""
    from fleetlog.sources.streaming import KeeperCredentials

    keeper = account.keeper

    async def refresh(bad: str) -> object:
        return await keeper.refresh(reason="stream token rejected", spent_access=bad)

    return KeeperCredentials(lambda: keeper.access_token, refresh, fixed=settings.token)
