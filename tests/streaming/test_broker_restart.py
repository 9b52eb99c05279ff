"""Brokers restarted mid-stream: the consumer reconnects by itself and goes on, the car
workers see the gap (StreamDisconnected, then StreamConnected once resubscribed), and no
observation arrives twice. Private Mosquitto and Redis instances on free ports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import aiomqtt
import pytest
import redis.asyncio as aioredis

from fleetlog.clock import LoopClock
from fleetlog.sources.streaming import Backoff, FeedEvent, StreamHub, TelemetryTarget
from fleetlog.sources.streaming.telemetry import MqttFeed, RedisFeed
from fleetlog.vehicle.events import Observed, StreamConnected, StreamDisconnected

T0 = datetime(2025, 3, 3, 7, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(kind: str, port: int) -> subprocess.Popen[bytes]:
    cmd = (
        ["mosquitto", "-p", str(port)]
        if kind == "mqtt"
        else ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
    )
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def broker(kind: str) -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    binary = "mosquitto" if kind == "mqtt" else "redis-server"
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed")
    port = free_port()
    procs = [_start(kind, port)]
    try:
        yield port, procs
    finally:
        for p in procs:
            p.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)


async def _wait_port(port: int) -> None:
    for _ in range(100):
        with contextlib.suppress(OSError):
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        await asyncio.sleep(0.05)
    raise AssertionError("broker did not start")


async def _publish(kind: str, port: int, i: int) -> None:
    """Odometer value `i` (and, for Redis, a record stamped T0 + i s)."""
    if kind == "mqtt":
        async with aiomqtt.Client("127.0.0.1", port) as c:
            await c.publish("rs/VIN1/v/Odometer", json.dumps(float(i)), qos=1)
        return
    record = {"data": [{"key": "Odometer", "value": {"doubleValue": float(i)}}],
              "createdAt": (T0 + timedelta(seconds=i)).isoformat(), "vin": "VIN1"}  # fmt: skip
    client = aioredis.Redis(port=port)
    try:
        await client.publish("rs_V_{VIN1}", json.dumps(record))
    finally:
        await client.aclose()


@pytest.mark.parametrize("kind", ["mqtt", "redis"])
async def test_restart_mid_stream(kind: str) -> None:
    with broker(kind) as (port, procs):
        await _wait_port(port)
        url = (
            f"mqtt://127.0.0.1:{port}/rs"
            if kind == "mqtt"
            else f"redis://127.0.0.1:{port}/0?namespace=rs"
        )
        hub = StreamHub()
        queue = hub.reader(None)
        cls = MqttFeed if kind == "mqtt" else RedisFeed
        feed = cls(TelemetryTarget.parse(url), hub, clock=LoopClock(epoch=T0), hold_s=0.05,
                   backoff=Backoff(base=0.1, cap=0.5))  # fmt: skip
        hub.add(feed)
        async with hub:
            await asyncio.wait_for(feed.connected.wait(), 5)
            for i in range(1, 11):
                await _publish(kind, port, i)
                await asyncio.sleep(0.02)
            procs[0].terminate()
            procs[0].wait(5)
            await asyncio.sleep(0.3)
            procs.append(_start(kind, port))
            await _wait_port(port)
            await asyncio.wait_for(feed.connected.wait(), 10)
            await asyncio.sleep(0.2)  # the subscription is in place
            for i in range(11, 21):
                await _publish(kind, port, i)
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
        events: list[FeedEvent] = []
        while not queue.empty():
            events.append(queue.get_nowait())
    # The restart reaches the car workers: down once, then up again after resubscribing.
    links = [type(e.event) for e in events if e.vin is None]
    assert links[:3] == [StreamConnected, StreamDisconnected, StreamConnected], links
    odometers = [
        e.event.observation.state.odometer_km for e in events if isinstance(e.event, Observed)
    ]
    values = [round(o / 1.609344) for o in odometers if o is not None]
    assert values == sorted(set(values))  # in order, none twice
    assert set(range(1, 11)) <= set(values) and set(range(11, 21)) <= set(values)
