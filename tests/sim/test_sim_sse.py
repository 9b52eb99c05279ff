"""Teslemetry's Server-Sent Events stream, read with an ordinary HTTP client (aiohttp)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from fleetlog.clock import ManualClock
from fleetlog.sim.scenarios import build
from fleetlog.sim.server import SimServer
from fleetlog.sim.world import CloudOptions, World

DRIVING = 28_200


@asynccontextmanager
async def teslemetry() -> AsyncIterator[tuple[SimServer, aiohttp.ClientSession]]:
    world = World(build("commuter-week", 1, cars=2), CloudOptions(mode="teslemetry"))
    async with SimServer(world, clock=ManualClock(world.now)) as sim:
        headers = {"Authorization": f"Bearer {sim.env['TOKEN']}"}
        async with aiohttp.ClientSession(base_url=sim.base_url, headers=headers) as session:
            yield sim, session


async def read(resp: aiohttp.ClientResponse, idle_s: float = 0.3) -> list[str]:
    """Raw lines until the stream is quiet for `idle_s`."""
    lines: list[str] = []
    while True:
        try:
            raw = await asyncio.wait_for(resp.content.readline(), idle_s)
        except TimeoutError:
            return lines
        lines.append(raw.decode())


def events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]


async def test_auth_topics_and_unknown_vin() -> None:
    async with teslemetry() as (sim, session):
        async with session.get("/sse", headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401
        for bad in ("", "data,nonsense"):
            async with session.get("/sse", params={"topics": bad}) as r:
                assert r.status == 400
        async with session.get("/sse/5YJ3E7EB0NOTACAR") as r:
            assert r.status == 404
        async with session.get("/sse", params={"token": sim.env["TOKEN"]}) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/event-stream")


async def test_data_state_connectivity_and_keepalive() -> None:
    async with teslemetry() as (sim, session):
        vin = sim.world.cars[0].spec.vin
        async with session.get(f"/sse/{vin}") as resp:
            assert resp.status == 200
            await asyncio.sleep(0.05)
            await sim.advance(DRIVING + 120)
            lines = await read(resp)
    evs = events(lines)
    assert all(e["vin"] == vin for e in evs)  # /sse/{vin}: that car only
    # A bare newline every 10 s of simulated time in between.
    keepalives = sum(1 for a, b in itertools.pairwise(lines) if b == "\n" and a == "\n")
    assert keepalives > 300
    states = [e["state"] for e in evs if "state" in e]
    assert states[:2] == ["asleep", "online"]
    conn = [e for e in evs if "status" in e]
    assert [c["status"] for c in conn][:3] == ["CONNECTED", "DISCONNECTED", "CONNECTED"]
    assert conn[0]["networkInterface"] in ("wifi", "cellular")
    data = [e for e in evs if "data" in e]
    assert all(e["createdAt"].endswith("Z") for e in data)
    merged: dict[str, Any] = {}
    for e in data:
        merged.update(e["data"])
    # Teslemetry configures typed values: enum names with prefix, locations as objects.
    assert "ShiftStateD" in {e["data"].get("Gear") for e in data}
    assert set(merged["Location"]) == {"latitude", "longitude"}
    assert isinstance(merged["Odometer"], float)
    assert merged["DetailedChargeState"].startswith("DetailedChargeState")
    assert "ChargeState" in merged and merged["ChargeState"] in ("Idle", "Enable")


async def test_cache_topics_and_numbers_as_strings() -> None:
    async with teslemetry() as (sim, session):
        vin = sim.world.cars[0].spec.vin
        token = sim.env["FLEETLOG_ACCESS_TOKEN"]
        del token
        # An untyped config (as older firmware sends): numbers arrive as strings.
        config = {
            "hostname": "t.example.com",
            "fields": {"Soc": {"interval_seconds": 1}, "Location": {"interval_seconds": 1}},
            "prefer_typed": False,
        }
        r = await session.post(
            "/api/1/vehicles/fleet_telemetry_config", json={"vins": [vin], "config": config}
        )
        assert r.status == 200
        await sim.advance(DRIVING + 60)
        async with session.get(
            "/sse", params={"topics": "data,connectivity", "cache": "true"}
        ) as resp:
            lines = await read(resp)
    evs = events(lines)
    cached = [e for e in evs if e.get("isCache")]
    assert {e["vin"] for e in cached} == {c.spec.vin for c in sim.world.cars}
    assert not any("state" in e for e in evs)  # not among the topics
    mine = next(e for e in cached if e["vin"] == vin and "data" in e)
    assert isinstance(mine["data"]["Soc"], str)
    float(mine["data"]["Soc"])  # "74.4367"-style: a number in a string
    assert set(mine["data"]["Location"]) == {"latitude", "longitude"}
