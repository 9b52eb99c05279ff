"""Teslemetry's SSE client against the simulator (teslemetry mode): a silent stream is
replaced after the keep-alive timeout, a rejected token is reported clearly and retried
with a growing backoff (never logged), and ``state`` events become the car's connectivity.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

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
    SseFeed,
    StaticCredentials,
    StreamHub,
)
from fleetlog.sources.streaming.feed import Credentials
from fleetlog.vehicle.events import CarConnectivity, Observed, StreamConnected, StreamDisconnected


@asynccontextmanager
async def teslemetry_sim(scenario: str = "city-day") -> AsyncIterator[SimServer]:
    world = World(build(scenario, 1), CloudOptions(mode="teslemetry"))
    async with SimServer(world, clock=ManualClock(world.now)) as sim:
        yield sim


def sse_feed(sim: SimServer, hub: StreamHub, credentials: Credentials, **kw: Any) -> SseFeed:
    return SseFeed(
        base_url=sim.base_url, vin=sim.world.cars[0].spec.vin, credentials=credentials,
        outlet=hub, clock=sim.clock, hold_s=0.05, **kw,
    )  # fmt: skip


def drain(queue: asyncio.Queue[FeedEvent]) -> list[FeedEvent]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record's message and raw structured fields (before any redaction)."""
    return "\n".join(f"{r.getMessage()} {getattr(r, 'fields', {})}" for r in caplog.records)


async def test_silent_stream_is_replaced_after_the_keepalive_timeout() -> None:
    async with teslemetry_sim() as sim:
        hub = StreamHub()
        queue = hub.reader(None)
        hub.add(
            sse_feed(
                sim,
                hub,
                StaticCredentials(sim.env["TOKEN"]),
                keepalive_timeout_s=0.3,
                backoff=Backoff(base=0.05, cap=0.1),
            )
        )
        async with hub:
            # Simulated time stands still: not even the 10 s keep-alive newline comes.
            await asyncio.sleep(1.0)
            links = [type(e.event) for e in drain(queue)]
            # …and with keep-alives flowing (every 10 s simulated) the stream stays.
            for _ in range(8):
                await sim.advance(10)
                await asyncio.sleep(0.1)
            steady = [type(e.event) for e in drain(queue)]
    assert links[:3] == [StreamConnected, StreamDisconnected, StreamConnected], links
    assert links.count(StreamDisconnected) <= 3  # 0.3 s timeout + backoff per round
    assert StreamDisconnected not in steady[1:], steady


async def test_rejected_token_backs_off_and_is_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    wrong = "tlm-wrong-token-5d2a77"
    async with teslemetry_sim() as sim:
        hub = StreamHub()
        queue = hub.reader(None)
        backoff = Backoff(base=0.05, cap=1.0, jitter=0.0)
        hub.add(sse_feed(sim, hub, StaticCredentials(wrong), backoff=backoff))
        async with hub:
            await asyncio.sleep(1.0)
    refused = [r for r in caplog.records if r.getMessage().startswith("sse token rejected")]
    assert 3 <= len(refused) <= 6  # 0.05, 0.1, 0.2, 0.4 s apart: not a tight loop
    gaps = [b.created - a.created for a, b in pairwise(refused)]
    assert gaps == sorted(gaps) and gaps[0] >= 0.04, gaps
    assert refused[0].levelno == logging.ERROR and "check TOKEN" in refused[0].getMessage()
    assert "invalid" in str(getattr(refused[0], "fields", {}))  # the server's reason
    assert wrong not in logged(caplog)
    assert not any(isinstance(e.event, StreamConnected) for e in drain(queue))


async def test_rejected_token_is_refreshed() -> None:
    async with teslemetry_sim() as sim:
        current = ["tlm-stale-token"]
        rejected: list[str] = []

        async def refresh(bad: str) -> None:
            rejected.append(bad)
            current[0] = sim.env["TOKEN"]

        hub = StreamHub()
        queue = hub.reader(None)
        credentials = KeeperCredentials(lambda: current[0], refresh)
        hub.add(sse_feed(sim, hub, credentials, backoff=Backoff(base=0.05, cap=0.1)))
        async with hub:
            await asyncio.sleep(0.4)
            events = drain(queue)
    assert rejected == ["tlm-stale-token"]
    assert [type(e.event) for e in events] == [StreamConnected]


async def test_state_events_become_connectivity() -> None:
    async with teslemetry_sim() as sim:
        start = sim.world.now
        hub = StreamHub()
        queue = hub.reader(None)
        hub.add(sse_feed(sim, hub, StaticCredentials(sim.env["TOKEN"])))
        async with hub:
            await asyncio.sleep(0.2)
            # city-day: asleep 04:15, online 06:34:09, …, offline in a garage 17:46:40.
            for hours in (1, 3, 14):
                await sim.advance(start + timedelta(hours=hours) - sim.world.now)
                await sim.flush()
                await asyncio.sleep(0.3)
            await sim.advance(1)
            await asyncio.sleep(0.2)
            events = drain(queue)
        truth = sim.truth()["cars"][0]["states"]
    seen = [
        (e.event.connectivity, e.event.at) for e in events if isinstance(e.event, CarConnectivity)
    ]
    expected = {
        (Connectivity(s["state"]), datetime.fromisoformat(s["start"]))
        for s in truth
        if start < datetime.fromisoformat(s["start"]) <= start + timedelta(hours=14)
    }
    assert {Connectivity.ASLEEP, Connectivity.ONLINE, Connectivity.OFFLINE} <= {
        c for c, _ in expected
    }
    assert expected <= set(seen), sorted(expected - set(seen))
    assert any(isinstance(e.event, Observed) for e in events)
