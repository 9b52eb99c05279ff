"""One commute through every source, against the simulator over real sockets: the merged
observations agree with the car (and so with each other) within unit rounding.

Legacy and MyTeslaMate websockets, Fleet Telemetry over MQTT (Mosquitto), ZMQ and Redis in
protobuf and protojson, typed and untyped, and Teslemetry's SSE. Each test has its own topic
base, namespace and ports.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from fleetlog.clock import ManualClock
from fleetlog.model.observation import VehicleState
from fleetlog.sim.car import Snapshot
from fleetlog.sim.scenarios import build
from fleetlog.sim.server import SimServer
from fleetlog.sim.world import CloudOptions, World
from fleetlog.sources.streaming import (
    FeedEvent,
    SseFeed,
    StaticCredentials,
    StreamHub,
    TelemetryTarget,
    WebsocketFeed,
    telemetry_feed,
)
from fleetlog.sources.streaming.websocket import Dialect
from fleetlog.vehicle.events import Observed

DRIVING = 28_200  # s into the commuter week: the first commute is under way
FIELDS = ("Location", "VehicleSpeed", "Gear", "Odometer", "Soc", "BatteryLevel", "RatedRange",
          "EstBatteryRange", "GpsHeading", "DetailedChargeState")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def sim_in(mode: str, **kw: Any) -> AsyncIterator[SimServer]:
    world = World(build("commuter-week", 1, cars=1), CloudOptions(mode=mode))  # type: ignore[arg-type]
    async with SimServer(world, clock=ManualClock(world.now), **kw) as sim:
        yield sim


async def configure(sim: SimServer, typed: bool) -> None:
    token = sim.world.initial_tokens().access_token
    async with httpx.AsyncClient(
        base_url=sim.base_url, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        body = {
            "vins": [sim.world.cars[0].spec.vin],
            "config": {"hostname": "t.example.com", "prefer_typed": typed,
                       "fields": {f: {"interval_seconds": 1} for f in FIELDS}},
        }  # fmt: skip
        assert (
            await c.post("/api/1/vehicles/fleet_telemetry_config", json=body)
        ).status_code == 200


async def drive(
    sim: SimServer, hub: StreamHub, feed: Any, *, start: float
) -> tuple[list[FeedEvent], Snapshot]:
    """Run `feed` while the car drives five minutes from `start`: its events, the car then."""
    queue = hub.reader(None)
    hub.add(feed)
    pushed = not isinstance(feed, WebsocketFeed)  # a websocket subscribes to an awake car
    if not pushed:
        await sim.advance(start)
    async with hub:
        await asyncio.sleep(0.3)  # connected and subscribed (ZMQ's late joiner included)
        if pushed:
            await sim.advance(start)
        for _ in range(5):
            await sim.advance(60)
            await sim.flush()
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        await sim.advance(2)  # past the hold
        await asyncio.sleep(0.3)
        snap = sim.world.cars[0].snapshot()
    # The simulator's SSE handler notices a gone client only when it writes a keep-alive.
    await sim.advance(20)
    await asyncio.sleep(0.05)
    out: list[FeedEvent] = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out, snap


def merged(events: list[FeedEvent]) -> VehicleState:
    observations = [e.event.observation for e in events if isinstance(e.event, Observed)]
    assert observations, "no observations"
    ats = [o.at for o in observations]
    assert len(ats) > 100
    state = VehicleState()
    for o in observations:
        state = state.merged(o.state)
    return state


def assert_matches_car(state: VehicleState, snap: Snapshot, *, soc: str) -> None:
    assert state.latitude == pytest.approx(snap.position.lat, abs=2e-4)
    assert state.longitude == pytest.approx(snap.position.lng, abs=2e-4)
    assert state.odometer_km == pytest.approx(snap.odometer_km, abs=0.5)
    assert state.rated_range_km == pytest.approx(snap.rated_range_km, abs=2.0)
    level = state.battery_level if soc == "battery" else state.usable_battery_level
    expected = snap.battery_level if soc == "battery" else snap.usable_battery_level
    assert level == pytest.approx(expected, abs=1.0)
    assert state.shift_state == (snap.shift_state or state.shift_state)


@pytest.mark.parametrize("typed", [True, False], ids=["typed", "untyped"])
@pytest.mark.parametrize("encoding", ["protobuf", "json"])
@pytest.mark.parametrize("scheme", ["mqtt", "zmq", "redis"])
async def test_fleet_telemetry(scheme: str, encoding: str, typed: bool) -> None:
    ns = f"fl{uuid.uuid4().hex[:8]}"
    url = {
        "mqtt": f"mqtt://127.0.0.1:1883/{ns}",
        "zmq": f"zmq://127.0.0.1:{free_port()}?namespace={ns}&encoding={encoding}",
        "redis": f"redis://127.0.0.1:6379/0?namespace={ns}&encoding={encoding}",
    }[scheme]
    async with sim_in("fleet", telemetry=[url]) as sim:
        await configure(sim, typed)
        hub = StreamHub()
        feed = telemetry_feed(TelemetryTarget.parse(url), hub, vins=[sim.world.cars[0].spec.vin],
                              clock=sim.clock)  # fmt: skip
        events, snap = await drive(sim, hub, feed, start=DRIVING)
        state = merged(events)
        assert_matches_car(state, snap, soc="usable")
        assert state.battery_level is not None and state.charging_state == "Disconnected"
        assert state.speed_kmh is not None and state.heading is not None


@pytest.mark.parametrize("mode", ["owner", "myteslamate"])
async def test_streaming_websocket(mode: str) -> None:
    async with sim_in(mode) as sim:
        env = sim.env
        car = sim.world.cars[0].spec
        use_vin = mode == "myteslamate"
        hub = StreamHub()
        token = env.get("TOKEN") or env["FLEETLOG_ACCESS_TOKEN"]
        feed = WebsocketFeed(
            url=env["TESLA_WSS_HOST"] + "/streaming/", vin=car.vin,
            tag=car.vin if use_vin else str(car.vehicle_id), credentials=StaticCredentials(token),
            outlet=hub, dialect=Dialect.MYTESLAMATE if use_vin else Dialect.TESLA, clock=sim.clock,
        )  # fmt: skip
        events, snap = await drive(sim, hub, feed, start=DRIVING)
        assert all(e.event.full_frame for e in events if isinstance(e.event, Observed))
        assert_matches_car(merged(events), snap, soc="usable" if use_vin else "battery")


async def test_teslemetry_sse() -> None:
    async with sim_in("teslemetry") as sim:
        hub = StreamHub()
        vin = sim.world.cars[0].spec.vin
        token = StaticCredentials(sim.env["TOKEN"])
        feed = SseFeed(
            base_url=sim.base_url, vin=vin, credentials=token, outlet=hub, clock=sim.clock
        )
        events, snap = await drive(sim, hub, feed, start=DRIVING)
        state = merged(events)
        assert_matches_car(state, snap, soc="usable")
        assert state.battery_level is not None
