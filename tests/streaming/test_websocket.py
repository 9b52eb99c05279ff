"""The streaming websocket client against the simulator's ``/streaming/`` (owner mode, which
sends TeslaMate's ``data:error`` messages): the watchdog, ``vehicle_disconnected`` with its
backoff, "Vehicle is offline", a rejected token refreshed, ``data:unsubscribe`` on stop, and
the self-signed TLS endpoint with and without ``TESLA_WSS_TLS_ACCEPT_INVALID_CERTS``.

Waits that are tens of seconds in production (watchdog 30 s, resubscribe 15 s) are scaled
down through the feed's own parameters; everything else is the real client on real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from itertools import pairwise
from typing import Any

import httpx
import pytest

from fleetlog.clock import ManualClock
from fleetlog.model.observation import Connectivity
from fleetlog.sim.scenarios import build
from fleetlog.sim.server import SimServer
from fleetlog.sim.world import CloudOptions, World
from fleetlog.sources.streaming import (
    Backoff,
    FeedEvent,
    KeeperCredentials,
    StaticCredentials,
    StreamHub,
    WebsocketFeed,
)
from fleetlog.sources.streaming.feed import Credentials
from fleetlog.sources.streaming.websocket import resubscribe_delay
from fleetlog.vehicle.events import CarConnectivity, Observed, StreamConnected, StreamDisconnected

Frames = list[tuple[float, dict[str, Any]]]

# commuter-week starts Sunday 23:00 UTC: online for 15 min, then asleep until 06:48:20.
ONLINE_AT = 60
ASLEEP_AT = 3_600
WAKES_AT = 28_100  # 06:48:20 is 27_500 s in; the first drive starts 60 s later
# city-day starts 04:00 UTC: online at 17:45, offline (a garage) from 17:46:40.
CITY_ONLINE_AT = 13 * 3_600 + 45 * 60 + 30
CITY_OFFLINE_AT = 14 * 3_600


@asynccontextmanager
async def owner_sim(scenario: str = "commuter-week", **kw: Any) -> AsyncIterator[SimServer]:
    world = World(build(scenario, 1), CloudOptions(mode="owner"))
    async with SimServer(world, clock=ManualClock(world.now), **kw) as sim:
        yield sim


def spy_frames(sim: SimServer) -> Frames:
    """Every frame the simulator's websocket receives, with the loop time (a passthrough)."""
    service = sim.streaming
    assert service is not None
    original = service._on_frame
    seen: Frames = []

    def record(sock: Any, frame: dict[str, Any]) -> None:
        seen.append((asyncio.get_running_loop().time(), frame))
        original(sock, frame)

    service._on_frame = record  # type: ignore[method-assign]
    return seen


def feed_for(
    sim: SimServer, hub: StreamHub, credentials: Credentials | None = None, **kw: Any
) -> WebsocketFeed:
    car = sim.world.cars[0].spec
    return WebsocketFeed(
        url=sim.env["TESLA_WSS_HOST"] + "/streaming/", vin=car.vin, tag=str(car.vehicle_id),
        # a token issued now: the printed one expires after 8 h of simulated time
        credentials=credentials or StaticCredentials(sim.world.initial_tokens().access_token),
        outlet=hub, clock=sim.clock, backoff=Backoff(base=0.05, cap=0.2), **kw,
    )  # fmt: skip


async def until(
    queue: asyncio.Queue[FeedEvent], wanted: Callable[[FeedEvent], bool], seen: list[FeedEvent]
) -> FeedEvent:
    """Read `queue` (collecting into `seen`) until an event `wanted` arrives (5 s at most)."""
    async with asyncio.timeout(5):
        while True:
            item = await queue.get()
            seen.append(item)
            if wanted(item):
                return item


def is_(kind: type) -> Callable[[FeedEvent], bool]:
    return lambda item: isinstance(item.event, kind)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record's message and raw structured fields (before any redaction)."""
    return "\n".join(f"{r.getMessage()} {getattr(r, 'fields', {})}" for r in caplog.records)


def subscribes(frames: Frames) -> Frames:
    return [(t, f) for t, f in frames if f.get("msg_type") == "data:subscribe_oauth"]


async def test_watchdog_closes_a_silent_socket_and_reconnects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with owner_sim() as sim:
        await sim.advance(ONLINE_AT)
        frames = spy_frames(sim)
        hub = StreamHub()
        queue = hub.reader(None)
        hub.add(feed_for(sim, hub, watchdog_s=0.3))
        seen: list[FeedEvent] = []
        async with hub:
            # The subscribe answers with one row; then the clock stands still: silence.
            await until(queue, is_(StreamConnected), seen)
            started = asyncio.get_running_loop().time()
            await until(queue, is_(StreamDisconnected), seen)
            silent_for = asyncio.get_running_loop().time() - started
            await until(queue, is_(StreamConnected), seen)
            await until(queue, is_(Observed), seen)
    assert 0.25 <= silent_for < 1.5
    assert "stream silent, reconnecting" in logged(caplog)
    assert len(subscribes(frames)) >= 2  # a new socket, subscribed again
    assert sum(isinstance(e.event, Observed) for e in seen) >= 2


async def test_vehicle_disconnected_resubscribes_with_backoff_until_the_car_streams() -> None:
    asked: list[tuple[int, bool]] = []

    def scaled(disconnects: int, in_gear: bool) -> float:
        asked.append((disconnects, in_gear))
        return resubscribe_delay(disconnects, in_gear) / 100  # 15 s → 0.15 s

    async with owner_sim() as sim:
        await sim.advance(ASLEEP_AT)
        frames = spy_frames(sim)
        hub = StreamHub()
        queue = hub.reader(None)
        hub.add(feed_for(sim, hub, watchdog_s=5.0, resubscribe=scaled))
        seen: list[FeedEvent] = []
        async with hub:
            for _ in range(50):  # three answers of vehicle_disconnected while it sleeps
                if len(asked) >= 3:
                    break
                await asyncio.sleep(0.05)
            await sim.advance(WAKES_AT - ASLEEP_AT)  # the car wakes for the commute
            await until(queue, is_(StreamConnected), seen)
            subs_while_streaming = len(subscribes(frames))
            await sim.advance(5)
            await until(queue, is_(Observed), seen)
            await asyncio.sleep(0.4)
    # Parked (not in gear): 2^n s clamped to [15, 30], counted up per disconnect.
    assert asked[:3] == [(0, False), (1, False), (2, False)]
    times = [t for t, _ in subscribes(frames)]
    assert len(times) >= 4
    gaps = [b - a for a, b in pairwise(times)][:3]
    assert all(g >= 0.14 for g in gaps), gaps
    # Once rows flow the same socket stays subscribed: no more resubscribes.
    assert len(subscribes(frames)) == subs_while_streaming
    # One socket throughout: resubscribing is a message, not a reconnect.
    assert not any(isinstance(e.event, StreamDisconnected) for e in seen)


def test_resubscribe_delay_follows_teslamate() -> None:
    assert [round(resubscribe_delay(n, True), 3) for n in (0, 1, 2, 8, 9)] == [
        1.0, 1.3, 1.69, 8.0, 8.0
    ]  # fmt: skip
    assert [resubscribe_delay(n, False) for n in (0, 3, 4, 5, 9)] == [15, 15, 16, 30, 30]


async def test_vehicle_offline_reaches_the_car_worker() -> None:
    async with owner_sim("city-day") as sim:
        await sim.advance(CITY_ONLINE_AT)
        vin = sim.world.cars[0].spec.vin
        hub = StreamHub()
        hub.add(feed_for(sim, hub, watchdog_s=5.0))
        got: list[FeedEvent] = []

        async def worker() -> None:  # reads as the car worker does
            async for item in hub.events(vin):
                got.append(item)
                if isinstance(item.event, CarConnectivity):
                    return

        async with hub:
            reading = asyncio.create_task(worker())
            for _ in range(100):
                if any(isinstance(e.event, StreamConnected) for e in got):
                    break
                await asyncio.sleep(0.02)
            await sim.advance(CITY_OFFLINE_AT - CITY_ONLINE_AT)  # into the garage
            await asyncio.wait_for(reading, 5)
    offline = got[-1].event
    assert isinstance(offline, CarConnectivity)
    assert offline.connectivity is Connectivity.OFFLINE
    assert any(isinstance(e.event, Observed) for e in got)


async def test_rejected_token_is_refreshed_and_the_new_one_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    stale = "stale-access-token-4f1c9e"
    async with owner_sim() as sim:
        await sim.advance(ONLINE_AT)
        frames = spy_frames(sim)
        current = [stale]
        rejected: list[str] = []

        async def refresh(bad: str) -> None:  # the keeper's refresh, over real HTTP
            rejected.append(bad)
            form = {"grant_type": "refresh_token", "client_id": sim.env["TESLA_AUTH_CLIENT_ID"],
                    "refresh_token": sim.env["FLEETLOG_REFRESH_TOKEN"]}  # fmt: skip
            async with httpx.AsyncClient(base_url=sim.env["TESLA_AUTH_HOST"]) as http:
                answer = await http.post(sim.env["TESLA_AUTH_PATH"] + "/token", data=form)
            answer.raise_for_status()
            current[0] = answer.json()["access_token"]

        credentials = KeeperCredentials(lambda: current[0], refresh)
        hub = StreamHub()
        queue = hub.reader(None)
        hub.add(feed_for(sim, hub, credentials, watchdog_s=5.0))
        seen: list[FeedEvent] = []
        async with hub:
            await until(queue, is_(Observed), seen)
    fresh = current[0]
    assert rejected == [stale] and fresh != stale
    tokens = [f["token"] for _, f in subscribes(frames)]
    assert tokens == [stale, fresh]  # reconnected with the new token, the old one never again
    text = logged(caplog)
    assert "stream token rejected" in text
    assert stale not in text and fresh not in text


async def test_a_fixed_token_is_not_refreshed() -> None:
    async with owner_sim() as sim:
        await sim.advance(ONLINE_AT)
        frames = spy_frames(sim)
        calls: list[str] = []

        async def refresh(bad: str) -> None:
            calls.append(bad)

        credentials = KeeperCredentials(lambda: "unused", refresh, fixed="a-wrong-TOKEN")
        hub = StreamHub()
        hub.add(feed_for(sim, hub, credentials, watchdog_s=5.0))
        async with hub:
            await asyncio.sleep(0.5)
    assert calls == []
    # Backing off between tries (0.05, 0.1, 0.2 s …), not hammering the server.
    assert 2 <= len(subscribes(frames)) <= 8


async def test_stop_unsubscribes() -> None:
    async with owner_sim() as sim:
        await sim.advance(ONLINE_AT)
        frames = spy_frames(sim)
        hub = StreamHub()
        queue = hub.reader(None)
        hub.add(feed_for(sim, hub, watchdog_s=5.0))
        await hub.start()
        await until(queue, is_(StreamConnected), [])
        await hub.stop()
        await asyncio.sleep(0.05)
    kinds = [f["msg_type"] for _, f in frames]
    assert kinds == ["data:subscribe_oauth", "data:unsubscribe"]
    assert frames[-1][1]["tag"] == str(sim.world.cars[0].spec.vehicle_id)


@pytest.mark.parametrize("accept_invalid", [True, False], ids=["accept-invalid", "verify"])
async def test_self_signed_tls(accept_invalid: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with owner_sim(streaming_tls=True) as sim:
        assert sim.env["TESLA_WSS_HOST"].startswith("wss://")
        await sim.advance(ONLINE_AT)
        hub = StreamHub()
        queue = hub.reader(None)
        hub.add(feed_for(sim, hub, accept_invalid_certs=accept_invalid, watchdog_s=5.0))
        seen: list[FeedEvent] = []
        async with hub:
            if accept_invalid:
                await until(queue, is_(Observed), seen)
            else:
                await asyncio.sleep(0.6)
                while not queue.empty():
                    seen.append(queue.get_nowait())
    if accept_invalid:
        assert any(isinstance(e.event, StreamConnected) for e in seen)
    else:
        assert seen == []
        text = logged(caplog)
        assert "stream connection failed" in text
        assert "CERTIFICATE_VERIFY_FAILED" in text


async def test_a_swallowed_cancel_still_stops_the_feed() -> None:
    """Python 3.11's ``wait_for`` returns a frame that completes as the task is cancelled and
    drops the cancel; the feed must stop anyway (it read on forever, and ``fleetlog run``
    hung on SIGTERM: outage and crash suites). The cancel is swallowed here on purpose."""
    async with owner_sim() as sim:
        await sim.advance(ONLINE_AT)
        frames = spy_frames(sim)
        feed = feed_for(sim, StreamHub())

        async def cancel_swallowed_then_run() -> None:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):  # as 3.11's wait_for can
                await asyncio.sleep(0)
            await feed.run()

        task = asyncio.create_task(cancel_swallowed_then_run())
        done, _ = await asyncio.wait({task}, timeout=10)  # a guard, not a measurement
        if not done:
            task.cancel()
        assert done and task.cancelled()
        assert subscribes(frames) == []  # it did not connect and read on
