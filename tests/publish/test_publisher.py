"""The publisher against real Mosquitto, fed by the pure machine's scripted day."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

from _day import summaries
from _mqtt import PrivateBroker, Recorder, Space, retained

from fleetlog.publish import (
    TESLAMATE_KEYS,
    CarInfo,
    MqttPublisher,
    car_payloads,
)
from fleetlog.publish.payloads import BUDGET_KEYS
from fleetlog.vehicle.settings import Feed

CAR = 1
VIN = "5YJ3E7EB0KF000001"

# Keys the scripted day never fills (no software update that day): skipped while nil.
NO_SOURCE = {"download_perc", "install_perc", "update_version"}
# ... of which these are published empty (TeslaMate clears them when nil).
CLEARED_NO_SOURCE: set[str] = set()


async def _play(publisher: MqttPublisher, feed: Feed = Feed.NONE) -> dict[str, object]:
    """The summaries as a worker hands them over; the broker keeps up at every phase change."""
    last: dict[str, object] = {}
    for i, (_, summary) in enumerate(summaries(feed)):
        publisher.submit(CAR, summary)
        if summary["state"] != last.get("state") or i % 25 == 0:
            assert await publisher.wait_idle(5)
        last = summary
    assert await publisher.wait_idle(10)
    return last


async def test_scripted_day_publishes_teslamates_topics(space: Space) -> None:
    publisher = MqttPublisher(space.settings(DEFAULT_GEOFENCE="away"))
    base = f"{space.base}/cars/{CAR}"
    async with Recorder(space.port, [f"{space.base}/#"]) as rec:
        await publisher.start()
        try:
            publisher.add_car(CarInfo(CAR, VIN, "Blue Bird"))
            last = await _play(publisher, Feed.TELEMETRY)
            await rec.wait_for(lambda: any(m.payload == "true" for m in rec.on(f"{base}/healthy")))
        finally:
            await publisher.stop()
    latest = rec.latest()
    keys = {topic.removeprefix(f"{base}/") for topic in latest}
    expected = (set(TESLAMATE_KEYS) | {"feed", "telemetry_connected"}) - (
        NO_SOURCE - CLEARED_NO_SOURCE
    )
    assert keys == expected
    # every value is the last summary's, encoded as TeslaMate does; a key that went nil
    # and is not cleared on nil (speed once parked) keeps its last value, as in TeslaMate
    wanted = car_payloads(last, default_geofence="away")
    stale = keys - set(wanted)
    assert all(last.get(k) is None for k in stale), stale
    assert {k: latest[f"{base}/{k}"].payload for k in keys - stale} == wanted
    assert latest[f"{base}/state"].payload == "asleep"
    assert latest[f"{base}/odometer"].payload == "1030.0"
    assert latest[f"{base}/geofence"].payload == "away"
    assert latest[f"{base}/version"].payload == "2026.2.1"
    assert json.loads(latest[f"{base}/location"].payload) == {"latitude": 48.3, "longitude": 11.5}
    assert latest[f"{base}/telemetry_connected"].payload == "true"
    # QoS 1 everywhere; retained everywhere but healthy
    assert {m.qos for m in rec.messages} == {1}
    for m in rec.messages:
        if m.topic == f"{base}/healthy" and m.payload != "":
            assert not m.retain
        else:
            assert m.retain, m.topic
    # only changes were published: one message per distinct consecutive value
    states = [m.payload for m in rec.on(f"{base}/state")]
    assert all(a != b for a, b in itertools.pairwise(states))
    assert states[-1] == "asleep" and "driving" in states and "charging" in states
    # the broker keeps the state for late subscribers, without healthy; an empty
    # retained payload deletes the retained message: that is how nil clears a topic
    kept = await retained(space.port, f"{base}/#")
    assert {k: v for k, v in kept.items() if k.removeprefix(f"{base}/") not in stale} == {
        f"{base}/{k}": v for k, v in wanted.items() if k != "healthy" and v != ""
    }


async def test_a_change_publishes_once(space: Space) -> None:
    publisher = MqttPublisher(space.settings())
    base = f"{space.base}/cars/{CAR}"
    summary: dict[str, object] = dict(summaries()[-1][1])
    async with Recorder(space.port, [f"{space.base}/#"]) as rec:
        await publisher.start()
        try:
            publisher.submit(CAR, summary)
            assert await publisher.wait_idle(5)
            await rec.wait_for(lambda: any(m.payload == "true" for m in rec.on(f"{base}/healthy")))
            before = len(rec.messages)
            publisher.submit(CAR, summary)  # the same again: only healthy goes out
            publisher.submit(CAR, {**summary, "battery_level": 87})
            publisher.submit(CAR, {**summary, "battery_level": 87, "shift_state": None})
            assert await publisher.wait_idle(5)
            await rec.wait_for(lambda: len(rec.on(f"{base}/battery_level")) == 2)
            await asyncio.sleep(0.2)
        finally:
            await publisher.stop()
    after = rec.messages[before:]
    assert {m.topic for m in after} == {f"{base}/battery_level", f"{base}/healthy"}
    assert [m.payload for m in rec.on(f"{base}/battery_level")] == ["88", "87"]
    assert [m.payload for m in rec.on(f"{base}/shift_state")] == [""]  # cleared once, not again


async def test_healthy_heartbeat_and_stale_healthy_cleared(space: Space) -> None:
    base = f"{space.base}/cars/{CAR}"
    publisher = MqttPublisher(space.settings(), heartbeat_s=0.2)
    async with Recorder(space.port, [f"{base}/healthy"]) as rec:
        await publisher.start()
        try:
            publisher.submit(CAR, {"healthy": True, "state": "asleep"})
            await rec.wait_for(lambda: len(rec.on(f"{base}/healthy")) >= 4)
        finally:
            await publisher.stop()
    first, *rest = rec.on(f"{base}/healthy")
    assert (first.payload, first.retain) == ("", True)  # an old retained value removed
    assert {(m.payload, m.retain) for m in rest} == {("true", False)}


async def test_budget_and_hook_by_vin(space: Space) -> None:
    from datetime import UTC, datetime

    from fleetlog.sources.tesla import BudgetPolicy, Governor

    base = f"{space.base}/cars/{CAR}"
    publisher = MqttPublisher(space.settings())
    await publisher.start()
    try:
        publisher.add_car(CarInfo(CAR, VIN))
        publisher.summary_hook()(VIN, {"state": "online", "healthy": True})
        publisher.summary_hook()("UNKNOWN", {"state": "online"})  # logged, ignored
        now = datetime(2026, 3, 10, 12, tzinfo=UTC)
        governor = Governor(BudgetPolicy(), now, spent_this_month=1_500_000)
        publisher.submit_budget(CAR, governor.state(now), vehicle="42")
        assert await publisher.wait_idle(5)
    finally:
        await publisher.stop()
    kept = await retained(space.port, f"{base}/#")
    assert kept[f"{base}/state"] == "online"
    assert kept[f"{base}/api_spend_month"] == "1.5"
    assert kept[f"{base}/api_budget_state"] in {"ok", "paced"}
    assert kept[f"{base}/api_data_calls_today"] == "0"
    published = {k.removeprefix(f"{base}/") for k in kept}
    assert set(BUDGET_KEYS) <= published


async def test_broker_down_at_start_never_blocks(private_broker: PrivateBroker) -> None:
    space = Space(private_broker.port)
    publisher = MqttPublisher(space.settings(), backoff_min_s=0.05, backoff_max_s=0.2)
    await publisher.start()
    try:
        day = summaries()
        t0 = time.perf_counter()
        for _, summary in day:
            publisher.submit(CAR, summary)
        assert time.perf_counter() - t0 < 1.0  # 900 summaries, no broker: no waiting
        assert not publisher.connected
        private_broker.start()
        assert await publisher.wait_idle(5)
        kept = await retained(private_broker.port, f"{space.base}/cars/{CAR}/#")
        assert kept[f"{space.base}/cars/{CAR}/state"] == "asleep"
    finally:
        await publisher.stop()


async def test_broker_restart_during_a_drive(private_broker: PrivateBroker) -> None:
    """Kill the broker mid-drive: submits stay instant; after the restart all is republished."""
    private_broker.start()
    space = Space(private_broker.port)
    base = f"{space.base}/cars/{CAR}"
    publisher = MqttPublisher(space.settings(), backoff_min_s=0.05, backoff_max_s=0.2)
    day = summaries()
    drive = [s for _, s in day if s["state"] == "driving"]
    await publisher.start()
    try:
        for _, summary in day:
            if summary["state"] == "driving":
                break
            publisher.submit(CAR, summary)
        assert await publisher.wait_idle(5)
        connections = publisher.connections
        worst = 0.0
        ticks = 0
        loop_start = time.perf_counter()
        for i, summary in enumerate(drive):
            if i == len(drive) // 3:
                private_broker.stop()
            if i == 2 * len(drive) // 3:
                private_broker.start()
            t = time.perf_counter()
            publisher.submit(CAR, summary)
            worst = max(worst, time.perf_counter() - t)
            ticks += 1
            await asyncio.sleep(0.002)  # the worker's other work between steps
        elapsed = time.perf_counter() - loop_start
        assert worst < 0.05, f"a submit took {worst:.3f}s"
        assert elapsed < 0.002 * ticks + 3.0  # the drive loop never stalled on the broker
        assert await publisher.wait_idle(5)
        assert publisher.connections > connections
        kept = await retained(private_broker.port, f"{base}/#")
    finally:
        await publisher.stop()
    # the restarted broker had nothing (no persistence): everything came from the republish
    wanted = {k: v for k, v in car_payloads(drive[-1]).items() if k != "healthy" and v != ""}
    assert {k.removeprefix(f"{base}/"): v for k, v in kept.items()} == wanted
    assert kept[f"{base}/state"] == "driving"
