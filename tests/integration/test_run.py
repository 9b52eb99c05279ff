"""``fleetlog run`` with its services: the web app on PORT and MQTT, following a simulator.

A subprocess logs the simulated car (``--sim-url``) into SQLite or PostgreSQL; its web app
answers with the live car, its MQTT topics appear on Mosquitto with Home Assistant
discovery (the car's device config; a stale config of a car no longer logged is cleared),
and SIGTERM stops it cleanly (exit 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import time
from datetime import timedelta
from pathlib import Path

import aiomqtt
import httpx
import sqlalchemy as sa

from fleetlog.config import load_settings
from fleetlog.sim.command import SimSettings, make_server
from fleetlog.sources.tesla import sign_in_with_tokens

KEY = "integration-run-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_run_serves_the_web_app_and_mqtt(
    migrated_engine: sa.Engine, db_url: str, tmp_path: Path, mosquitto: int
) -> None:
    namespace = f"run{secrets.token_hex(4)}"
    prefix = f"ha{secrets.token_hex(4)}"
    stale = f"{prefix}/device/teslamate_{namespace}_99/config"
    async with aiomqtt.Client("127.0.0.1", mosquitto) as planter:
        await planter.publish(stale, '{"device":{}}', qos=1, retain=True)
    port = _free_port()
    server = make_server(
        SimSettings(
            scenario="commuter-week",
            mode="owner",
            speed=60,
            port=0,
            start=timedelta(days=1, hours=19),
            billing_limit_usd=None,
        )
    )
    async with server as sim:
        env = {k: v for k, v in sim.env.items() if not k.startswith("FLEETLOG_")}
        env.update(
            ENCRYPTION_KEY=KEY,
            FLEETLOG_DATA_DIR=str(tmp_path),
            FLEETLOG_DATABASE_URL=db_url,
            PORT=str(port),
            MQTT_HOST="127.0.0.1",
            MQTT_PORT=str(mosquitto),
            MQTT_NAMESPACE=namespace,
            MQTT_HOME_ASSISTANT_DISCOVERY="true",
            MQTT_HOME_ASSISTANT_DISCOVERY_PREFIX=prefix,
        )
        await sign_in_with_tokens(
            load_settings(env),
            migrated_engine,
            access_token=sim.env["FLEETLOG_ACCESS_TOKEN"],
            refresh_token=sim.env["FLEETLOG_REFRESH_TOKEN"],
            clock=sim.clock,
        )
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "TESLA_", "MQTT_", "FLEETLOG_", "TOKEN", "PORT"))
        }
        logs = (tmp_path / "run.log").open("wb")
        async with aiomqtt.Client("127.0.0.1", mosquitto) as listener:
            await listener.subscribe(f"teslamate/{namespace}/cars/+/state", qos=1)
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "fleetlog",
                "run",
                "--sim-url",
                sim.env["FLEETLOG_SIM_URL"],
                env={**base, **env},
                stdout=logs,
                stderr=logs,
            )
            try:
                states: list[bytes] = []

                async def known_state() -> None:
                    async for m in listener.messages:
                        states.append(m.payload if isinstance(m.payload, bytes) else b"")
                        if states[-1] in (b"online", b"driving", b"asleep", b"offline"):
                            return

                await asyncio.wait_for(known_state(), 60)
                assert set(states) <= {
                    b"unavailable",
                    b"start",
                    b"online",
                    b"driving",
                    b"asleep",
                    b"offline",
                }
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", timeout=10
                ) as http:
                    deadline = time.monotonic() + 30
                    cars = (await http.get("/api/cars")).json()
                    while not cars[0]["live"] and time.monotonic() < deadline:
                        await asyncio.sleep(0.2)
                        cars = (await http.get("/api/cars")).json()
                    assert cars[0]["live"] is True
                    assert cars[0]["summary"]["display_name"] == "Daily Driver"
                    page = await http.get("/")
                    assert page.status_code == 200 and "Daily Driver" in page.text
                proc.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(proc.wait(), 30) == 0
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                logs.close()
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        raise AssertionError("the web app still listens after the run stopped")
    configs = await _retained(mosquitto, f"{prefix}/device/+/config")
    car_id = cars[0]["id"]
    assert set(configs) == {f"{prefix}/device/teslamate_{namespace}_{car_id}/config"}
    device = json.loads(next(iter(configs.values())))["device"]
    assert device["name"] == "Daily Driver"


async def _retained(port: int, topic_filter: str, quiet: float = 0.5) -> dict[str, str]:
    out: dict[str, str] = {}
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic_filter, qos=1)
        while True:
            try:
                m = await asyncio.wait_for(anext(client.messages), quiet)
            except TimeoutError:
                return out
            if m.retain and isinstance(m.payload, bytes) and m.payload:
                out[str(m.topic)] = m.payload.decode()
