"""The streaming websocket with an ordinary client (``websockets``): legacy Owner API
streaming (tag = vehicle_id) and MyTeslaMate's telemetry-backed rebuild (tag = VIN)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import websockets

from fleetlog.clock import ManualClock
from fleetlog.sim.scenarios import build
from fleetlog.sim.server import SimServer
from fleetlog.sim.streaming import COLUMNS
from fleetlog.sim.world import CloudOptions, World

BOARDING = 28_100
DRIVING = 28_200


@asynccontextmanager
async def sim_in(mode: str, **kw: Any) -> AsyncIterator[SimServer]:
    world = World(build("commuter-week", 1, cars=1), CloudOptions(mode=mode))  # type: ignore[arg-type]
    async with SimServer(world, clock=ManualClock(world.now), **kw) as sim:
        yield sim


async def frames(ws: Any, idle_s: float = 0.2) -> list[dict[str, Any]]:
    """Every frame until the socket is quiet for `idle_s`."""
    out: list[dict[str, Any]] = []
    while True:
        try:
            raw = await asyncio.wait_for(ws.recv(), idle_s)
        except TimeoutError:
            return out
        out.append(json.loads(raw))


def subscribe(token: str, tag: str) -> str:
    return json.dumps(
        {"msg_type": "data:subscribe_oauth", "token": token, "value": COLUMNS, "tag": tag}
    )


async def test_legacy_rows_errors_and_agreement_with_vehicle_data() -> None:
    async with sim_in("owner") as sim:
        env = sim.env
        assert env["TESLA_WSS_HOST"].startswith("ws://127.0.0.1:")
        assert "TESLA_WSS_USE_VIN" not in env
        car = sim.world.cars[0]
        tag = str(car.spec.vehicle_id)
        token = env["FLEETLOG_ACCESS_TOKEN"]
        async with websockets.connect(env["TESLA_WSS_HOST"] + "/streaming/") as ws:
            hello = await frames(ws)
            assert hello == [{"msg_type": "control:hello", "connection_timeout": 30000}]
            await ws.send(subscribe("not-a-token", tag))
            (err,) = await frames(ws)
            assert err["error_type"] == "client_error"
            assert err["value"].startswith("Can't validate token")
            # Online at the start: a row at once; then the car falls asleep.
            await ws.send(subscribe(token, tag))
            first = await frames(ws)
            assert first[0]["msg_type"] == "data:update" and first[0]["tag"] == tag
            await sim.advance(3_600)
            got = await frames(ws)
            assert got[-1] == {
                "msg_type": "data:error",
                "tag": tag,
                "error_type": "vehicle_disconnected",
            }
            # Asleep: subscribing again gets vehicle_disconnected straight away.
            await ws.send(subscribe(token, tag))
            assert (await frames(ws))[0]["error_type"] == "vehicle_disconnected"
            # Driving: a row every simulated second, each agreeing with vehicle_data.
            await sim.advance(DRIVING - 3_600)
            await ws.send(subscribe(token, tag))
            await frames(ws)
            async with httpx.AsyncClient(
                base_url=sim.base_url, headers={"Authorization": f"Bearer {token}"}
            ) as c:
                for _ in range(5):
                    await sim.advance(30)
                    rows = [f["value"].split(",") for f in await frames(ws)]
                    assert len(rows) == 30
                    assert all(len(r) == 13 for r in rows)
                    last = rows[-1]
                    r = await c.get(
                        f"/api/1/vehicles/{car.spec.id}/vehicle_data",
                        params={
                            "endpoints": "drive_state;location_data;charge_state;vehicle_state"
                        },
                    )
                    body = r.json()["response"]
                    drive = body["drive_state"]
                    assert int(last[0]) == drive["timestamp"]
                    assert last[1] == ("" if drive["speed"] is None else str(drive["speed"]))
                    assert abs(float(last[2]) - body["vehicle_state"]["odometer"]) < 0.06
                    assert int(last[3]) == body["charge_state"]["battery_level"]
                    assert abs(float(last[6]) - drive["latitude"]) < 1e-6
                    assert abs(float(last[7]) - drive["longitude"]) < 1e-6
                    assert int(last[8]) == drive["power"]
                    assert last[9] == (drive["shift_state"] or "")
                    assert abs(int(last[10]) - body["charge_state"]["battery_range"]) <= 0.5
                    assert int(last[12]) == drive["heading"]


async def test_legacy_offline_car_is_a_vehicle_error() -> None:
    # Thursday in the underground garage: find when the API first says offline.
    probe = World(build("commuter-week", 1, cars=1), CloudOptions(mode="owner"))
    probe.advance(probe.now + timedelta(days=5))
    states = probe.truth()["cars"][0]["states"]
    offline = next(s for s in states if s["state"] == "offline")
    start = datetime.fromisoformat(offline["start"].replace("Z", "+00:00"))
    async with sim_in("owner") as sim:
        await sim.advance((start - sim.world.now).total_seconds() + 60)
        car = sim.world.cars[0]
        assert car.state == "offline"
        env = sim.env
        async with websockets.connect(env["TESLA_WSS_HOST"] + "/streaming/") as ws:
            await frames(ws)
            token = sim.world.initial_tokens().access_token  # the first one expired days ago
            await ws.send(subscribe(token, str(car.spec.vehicle_id)))
            (err,) = await frames(ws)
            assert err == {
                "msg_type": "data:error",
                "tag": str(car.spec.vehicle_id),
                "error_type": "vehicle_error",
                "value": "Vehicle is offline",
            }


async def test_myteslamate_rows_from_telemetry() -> None:
    async with sim_in("myteslamate") as sim:
        env = sim.env
        assert env["TESLA_WSS_USE_VIN"] == "true"
        vin = sim.world.cars[0].spec.vin
        # The provider configured the car's streaming; MyTeslaMate checks exactly this.
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            r = await c.get(
                f"/api/1/vehicles/{vin}/fleet_telemetry_config", params={"token": env["TOKEN"]}
            )
            cfg = r.json()["response"]
            assert cfg["synced"] and cfg["config"] is not None
        async with websockets.connect(env["TESLA_WSS_HOST"] + "/streaming/") as ws:
            assert await frames(ws) == []  # nothing until a subscribe
            await ws.send(subscribe(env["TOKEN"], vin))
            assert await frames(ws) == [{"msg_type": "control:hello", "connection_timeout": 30000}]
            # Parked with no gear known yet: no rows, but a hello every 10 s.
            await sim.advance(60)
            got = await frames(ws)
            assert [f["msg_type"] for f in got] == ["control:hello"] * 6
            await sim.advance(DRIVING - 60)
            got = await frames(ws)
            rows = [f for f in got if f["msg_type"] == "data:update"]
            assert rows and all(f["tag"] == vin for f in rows)
            cols = [r["value"].split(",") for r in rows]
            assert all(len(c) == 13 for c in cols)
            assert {c[9] for c in cols} <= {"P", "D"} and "D" in {c[9] for c in cols}
            assert all(c[6] and c[7] for c in cols)
            assert all(c[8] == "0" for c in cols)  # not charging: power 0
            times = [int(c[0]) for c in cols]
            assert times == sorted(times)
            moving = [c for c in cols if c[1] not in ("", "0")]
            assert moving and all(int(c[1]) > 0 for c in moving)
            # Untyped values pass through as received (MyTeslaMate's provider config).
            assert all("." in c[2] or c[2].isdigit() for c in cols)
            assert not any(f["msg_type"] == "data:error" for f in got)


async def test_tls_streaming_with_a_self_signed_certificate() -> None:
    async with sim_in("myteslamate", streaming_tls=True) as sim:
        env = sim.env
        assert env["TESLA_WSS_HOST"].startswith("wss://127.0.0.1:")
        assert env["TESLA_WSS_TLS_ACCEPT_INVALID_CERTS"] == "true"
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        async with websockets.connect(env["TESLA_WSS_HOST"] + "/streaming/", ssl=insecure) as ws:
            await ws.send(subscribe(env["TOKEN"], sim.world.cars[0].spec.vin))
            assert (await frames(ws))[0]["msg_type"] == "control:hello"
        strict = ssl.create_default_context()
        try:
            async with websockets.connect(env["TESLA_WSS_HOST"] + "/streaming/", ssl=strict):
                raise AssertionError("a self-signed certificate must not verify")
        except ssl.SSLCertVerificationError:
            pass


async def test_a_client_gone_mid_stream_ends_its_connection_quietly(caplog: Any) -> None:
    async with sim_in("myteslamate") as sim:
        env = sim.env
        vin = sim.world.cars[0].spec.vin
        ws = await websockets.connect(env["TESLA_WSS_HOST"] + "/streaming/")
        await ws.send(subscribe(env["TOKEN"], vin))
        assert await frames(ws) == [{"msg_type": "control:hello", "connection_timeout": 30000}]
        ws.transport.abort()  # gone without a close frame, frames still queued for it
        await sim.advance(DRIVING)
        assert sim.streaming is not None
        while sim.streaming.sockets:
            await asyncio.sleep(0.05)
        assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
