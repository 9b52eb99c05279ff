"""``FLEETLOG_TELEMETRY_SHARED_GROUP``: two fleetlog consumers in one MQTT v5 shared group
on Mosquitto split the dispatcher's messages, each message reaching exactly one of them; a
consumer outside the group still gets everything."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiomqtt

from fleetlog.sources.streaming import FeedEvent, StreamHub, TelemetryTarget
from fleetlog.sources.streaming.telemetry import MqttFeed
from fleetlog.vehicle.events import Observed

MESSAGES = 60


def odometers(queue: asyncio.Queue[FeedEvent]) -> list[tuple[str, float]]:
    out = []
    while not queue.empty():
        event = queue.get_nowait().event
        if isinstance(event, Observed) and event.observation.state.odometer_km is not None:
            out.append((event.observation.vin, event.observation.state.odometer_km))
    return out


async def test_two_workers_in_one_group_split_the_messages() -> None:
    base = f"sg{uuid.uuid4().hex[:8]}"
    url = f"mqtt://127.0.0.1:1883/{base}"
    hubs = [StreamHub(), StreamHub(), StreamHub()]
    queues = [hub.reader(None) for hub in hubs]
    group = f"fleetlog{uuid.uuid4().hex[:6]}"
    feeds = [
        MqttFeed(TelemetryTarget.parse(url, group=group), hubs[0], hold_s=0.05),
        MqttFeed(TelemetryTarget.parse(f"{url}?group={group}"), hubs[1], hold_s=0.05),
        MqttFeed(TelemetryTarget.parse(url), hubs[2], hold_s=0.05),  # not in the group
    ]
    assert feeds[0].subscriptions()[0] == f"$share/{group}/{base}/+/v/+"
    for hub, feed in zip(hubs, feeds, strict=True):
        hub.add(feed)
    async with hubs[0], hubs[1], hubs[2]:
        await asyncio.wait_for(asyncio.gather(*(f.connected.wait() for f in feeds)), 5)
        async with aiomqtt.Client("127.0.0.1", 1883) as client:
            # One car per message: the hold gathers a car's values into one observation.
            for i in range(MESSAGES):
                await client.publish(f"{base}/VIN{i:03d}/v/Odometer", json.dumps(i + 1.0), qos=1)
        for _ in range(60):
            await asyncio.sleep(0.05)
            if all(queue.qsize() >= MESSAGES // 4 for queue in queues) and (
                queues[2].qsize() >= MESSAGES
            ):
                break
        await asyncio.sleep(0.2)
    first, second, outside = (odometers(q) for q in queues)
    everything = {f"VIN{i:03d}" for i in range(MESSAGES)}
    assert {v for v, _ in outside} == everything and len(outside) == MESSAGES
    a, b = {v for v, _ in first}, {v for v, _ in second}
    assert len(first) == len(a) and len(second) == len(b)  # none twice within a worker
    assert a.isdisjoint(b)  # none to both
    assert a | b == everything  # none lost
    assert len(a) >= MESSAGES // 4 and len(b) >= MESSAGES // 4  # both take a share
