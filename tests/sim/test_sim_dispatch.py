"""fleet-telemetry's dispatchers against real brokers: MQTT (Mosquitto), ZMQ, Redis.

Each test has its own MQTT topic base / Redis namespace, so tests running at the same time
against the same Mosquitto and Redis do not see each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import httpx
import pytest
import redis.asyncio as aioredis
import zmq
import zmq.asyncio
from tesla_protocol.telemetry import (
    vehicle_alert_pb2,
    vehicle_connectivity_pb2,
    vehicle_data_pb2,
    vehicle_error_pb2,
)

from fleetlog.clock import ManualClock
from fleetlog.sim.dispatch import Target
from fleetlog.sim.scenarios import build
from fleetlog.sim.server import SimServer
from fleetlog.sim.world import CloudOptions, World

DRIVING = 28_200  # s into the commuter week: the first commute is under way
FIELDS = {
    "VehicleSpeed": {"interval_seconds": 1},
    "Odometer": {"interval_seconds": 10},
    "Location": {"interval_seconds": 1},
    "Gear": {"interval_seconds": 1},
    "DetailedChargeState": {"interval_seconds": 1},
    "Bogus": {"interval_seconds": 1},
}


@asynccontextmanager
async def telemetry_sim(url: str, **config: Any) -> AsyncIterator[SimServer]:
    world = World(build("commuter-week", 1, cars=1), CloudOptions(mode="fleet"))
    async with SimServer(world, clock=ManualClock(world.now), telemetry=[url]) as sim:
        token = sim.world.initial_tokens().access_token
        async with httpx.AsyncClient(
            base_url=sim.base_url, headers={"Authorization": f"Bearer {token}"}
        ) as c:
            body = {
                "vins": [world.cars[0].spec.vin],
                "config": {"hostname": "t.example.com", "fields": FIELDS, **config},
            }
            r = await c.post("/api/1/vehicles/fleet_telemetry_config", json=body)
            assert r.status_code == 200
        yield sim


def test_target_urls_parse_and_print() -> None:
    t = Target.parse("mqtt://127.0.0.1:1883/telemetry")
    assert (t.scheme, t.host, t.port, t.topic_base) == ("mqtt", "127.0.0.1", 1883, "telemetry")
    assert t.url == "mqtt://127.0.0.1:1883/telemetry"
    t = Target.parse("redis://127.0.0.1:6379/0?namespace=tesla")
    assert (t.db, t.namespace, t.encoding) == (0, "tesla", "protobuf")
    assert t.url == "redis://127.0.0.1:6379/0?namespace=tesla"
    t = Target.parse("zmq://127.0.0.1:5284?encoding=json&records=V,connectivity")
    assert t.records == ("V", "connectivity") and t.encoding == "json"
    assert t.url == "zmq://127.0.0.1:5284?namespace=tesla&encoding=json&records=V,connectivity"
    for bad in ("kafka://x:1", "zmq://x:1?encoding=xml", "mqtt://x:1/b?records=W"):
        with pytest.raises(ValueError):
            Target.parse(bad)


async def test_mqtt_topics_and_payloads() -> None:
    base = f"fleetlog-test-{uuid.uuid4().hex[:10]}"
    got: list[tuple[str, Any]] = []
    async with aiomqtt.Client("127.0.0.1", 1883) as client:
        await client.subscribe(f"{base}/#")
        async with telemetry_sim(
            f"mqtt://127.0.0.1:1883/{base}", prefer_typed=True, alert_types=["customer"]
        ) as sim:
            assert sim.env["FLEETLOG_TELEMETRY"] == f"mqtt://127.0.0.1:1883/{base}"
            await sim.advance(DRIVING + 120)
            await sim.flush()
            vin = sim.world.cars[0].spec.vin
            signals = sim.world.ledger.to_json()["by_category"]["signals"]["billed"]

            async def collect() -> None:
                async for message in client.messages:
                    payload = message.payload
                    assert isinstance(payload, bytes)
                    got.append((str(message.topic), json.loads(payload)))
                    if len(got) >= signals + 4:  # + connectivity x3 and the error
                        return

            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(collect(), 2.0)
    topics = {t for t, _ in got}
    assert f"{base}/{vin}/v/VehicleSpeed" in topics
    assert f"{base}/{vin}/connectivity" in topics
    assert f"{base}/{vin}/errors/unknown_field" in topics
    v = [(t, p) for t, p in got if "/v/" in t]
    assert len(v) == signals  # one message per field per record: every billed signal
    speeds = [p for t, p in v if t.endswith("/VehicleSpeed")]
    assert None in speeds  # invalid (parked) is null
    assert any(isinstance(p, float) and p > 5 for p in speeds)
    locations = [p for t, p in v if t.endswith("/Location")]
    assert set(locations[-1]) == {"latitude", "longitude"}
    assert "ShiftStateD" in [p for t, p in v if t.endswith("/Gear")]
    conn = [p for t, p in got if t.endswith("/connectivity")]
    assert [c["Status"] for c in conn][:3] == ["CONNECTED", "DISCONNECTED", "CONNECTED"]
    assert set(conn[0]) == {"ConnectionId", "Status", "CreatedAt"}
    assert conn[0]["CreatedAt"].endswith("Z")
    err = next(p for t, p in got if t.endswith("/errors/unknown_field"))
    assert set(err) == {"Body", "Tags", "CreatedAt"} and err["Tags"]["field_name"] == "Bogus"


async def test_mqtt_alerts_current_and_history() -> None:
    base = f"fleetlog-test-{uuid.uuid4().hex[:10]}"
    got: list[tuple[str, Any]] = []
    async with aiomqtt.Client("127.0.0.1", 1883) as client:
        await client.subscribe(f"{base}/+/alerts/#")
        url = f"mqtt://127.0.0.1:1883/{base}?records=alerts"
        async with telemetry_sim(url, alert_types=["customer"]) as sim:
            await sim.advance(4 * 86_400)  # the supermarket with sentry on
            await sim.flush()

            async def collect() -> None:
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    got.append((str(message.topic), json.loads(message.payload)))

            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(collect(), 0.5)
    current = [p for t, p in got if t.endswith("/current")]
    history = [p for t, p in got if t.endswith("/history")]
    assert current and history
    assert set(current[0]) == {"StartedAt", "Audiences"}
    assert any("EndedAt" in c for c in current)
    assert isinstance(history[-1], list) and all("StartedAt" in h for h in history[-1])


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
async def test_zmq_multipart_in_both_encodings(encoding: str) -> None:
    ctx = zmq.asyncio.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    try:
        async with telemetry_sim(f"zmq://127.0.0.1:0?encoding={encoding}&namespace=fl") as sim:
            url = sim.env["FLEETLOG_TELEMETRY"]
            target = Target.parse(url)
            assert target.port != 0
            sub.connect(f"tcp://127.0.0.1:{target.port}")
            await asyncio.sleep(0.3)  # a PUB socket drops what it sends before SUB joins
            await sim.advance(DRIVING + 60)
            await sim.flush()
            frames: list[list[bytes]] = []
            while await sub.poll(300):
                frames.append(await sub.recv_multipart())
    finally:
        sub.close()
        ctx.term()
    topics = [f[0].decode() for f in frames]
    assert {"fl_V", "fl_connectivity", "fl_errors"} <= set(topics)
    assert all(len(f) == 2 for f in frames)
    v = [f[1] for f in frames if f[0] == b"fl_V"]
    if encoding == "protobuf":
        payload = vehicle_data_pb2.Payload()
        payload.ParseFromString(v[-1])
        assert payload.vin == sim.world.cars[0].spec.vin
        assert payload.created_at.seconds > 0
        names = {vehicle_data_pb2.Field.Name(d.key) for p in v for d in _parse(p).data}
        assert {"VehicleSpeed", "Location", "Gear"} <= names
        conn = vehicle_connectivity_pb2.VehicleConnectivity()
        conn.ParseFromString(next(f[1] for f in frames if f[0] == b"fl_connectivity"))
        assert vehicle_connectivity_pb2.ConnectivityEvent.Name(conn.status) == "CONNECTED"
        errors = vehicle_error_pb2.VehicleErrors()
        errors.ParseFromString(next(f[1] for f in frames if f[0] == b"fl_errors"))
        assert errors.errors[0].tags["field_name"] == "Bogus"
        assert vehicle_alert_pb2.VehicleAlerts  # the schema ships alerts too
    else:
        body = json.loads(v[0])
        assert set(body) == {"data", "createdAt", "vin", "isResend"}
        assert body["createdAt"].endswith("Z")
        values = {d["key"]: d["value"] for b in v for d in json.loads(b)["data"]}
        # Untyped by default: numbers are strings; the server made Location a locationValue.
        assert "stringValue" in values["Odometer"]
        assert "locationValue" in values["Location"]
        assert values["DetailedChargeState"] == {
            "detailedChargeStateValue": "DetailedChargeStateDisconnected"
        }
        conn_json = json.loads(next(f[1] for f in frames if f[0] == b"fl_connectivity"))
        assert set(conn_json) == {"vin", "connectionId", "status", "createdAt", "networkInterface"}


def _parse(raw: bytes) -> vehicle_data_pb2.Payload:
    payload = vehicle_data_pb2.Payload()
    payload.ParseFromString(raw)
    return payload


async def test_redis_channels_per_vin() -> None:
    ns = f"fltest{uuid.uuid4().hex[:10]}"
    r = aioredis.Redis(host="127.0.0.1", port=6379)
    pubsub = r.pubsub()
    await pubsub.psubscribe(f"{ns}_*")
    try:
        async with telemetry_sim(f"redis://127.0.0.1:6379/0?namespace={ns}") as sim:
            assert sim.env["FLEETLOG_TELEMETRY"] == f"redis://127.0.0.1:6379/0?namespace={ns}"
            await sim.advance(DRIVING + 60)
            await sim.flush()
            vin = sim.world.cars[0].spec.vin
            messages: list[tuple[str, bytes]] = []
            idle = 0
            while idle < 3:  # a subscribe confirmation also reads as None
                m = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if m is None:
                    idle += 1
                    continue
                idle = 0
                messages.append((m["channel"].decode(), m["data"]))
    finally:
        await pubsub.aclose()
        await r.aclose()
    channels = {c for c, _ in messages}
    assert f"{ns}_V_{{{vin}}}" in channels
    assert f"{ns}_connectivity_{{{vin}}}" in channels
    payloads = [_parse(d) for c, d in messages if c == f"{ns}_V_{{{vin}}}"]
    signals = sim.world.ledger.to_json()["by_category"]["signals"]["billed"]
    assert sum(len(p.data) for p in payloads) == signals
