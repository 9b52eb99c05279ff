"""``fleetlog demo`` as a user runs it: a subprocess, its web app, its MQTT topics.

While the demo runs, its web app answers on the port it printed and shows the car and
its drives; a subscriber on Mosquitto sees TeslaMate's topic set for the car, and after
the run the retained values match the database the demo wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import httpx
import pytest
import sqlalchemy as sa

from fleetlog.places import geofence_at
from fleetlog.publish import FLEETLOG_KEYS, TESLAMATE_KEYS
from fleetlog.store import make_engine
from fleetlog.store import tables as t

#: TeslaMate keys the demo's polling cannot fill: elevation, which Tesla's vehicle_data
#: does not carry (polling has none; TeslaMate takes it from SRTM). docs/mqtt.md says so.
NOT_YET = frozenset({"elevation"})
DURATION_S = 40


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "TESLA_", "MQTT_", "FLEETLOG_", "TOKEN", "PORT"))
    }
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


async def _demo(tmp: Path, *args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleetlog",
        "demo",
        "--data-dir",
        str(tmp / "demo"),
        *args,
        stdout=(tmp / "stdout.txt").open("w"),
        stderr=(tmp / "stderr.txt").open("w"),
        env=env,
    )


async def _printed_url(tmp: Path, proc: asyncio.subprocess.Process) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"web app\s+(http://\S+)", (tmp / "stdout.txt").read_text())
        if found:
            return found.group(1)
        if proc.returncode is not None:
            break
        await asyncio.sleep(0.1)
    raise AssertionError((tmp / "stdout.txt").read_text() + (tmp / "stderr.txt").read_text())


async def _retained(port: int, topic_filter: str, quiet: float = 0.5) -> dict[str, str]:
    out: dict[str, str] = {}
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic_filter, qos=1)
        while True:
            try:
                m = await asyncio.wait_for(anext(client.messages), quiet)
            except TimeoutError:
                return out
            if m.retain:
                out[str(m.topic)] = m.payload.decode() if isinstance(m.payload, bytes) else ""


async def test_demo_serves_the_web_app_and_publishes_teslamates_topics(
    tmp_path: Path, mosquitto: int
) -> None:
    namespace = f"demo{secrets.token_hex(4)}"
    port = _free_port()
    live: dict[str, str] = {}
    async with aiomqtt.Client("127.0.0.1", mosquitto) as listener:
        await listener.subscribe(f"teslamate/{namespace}/cars/#", qos=1)

        async def listen() -> None:
            async for m in listener.messages:
                payload = m.payload.decode() if isinstance(m.payload, bytes) else ""
                live[str(m.topic)] = payload

        listening = asyncio.create_task(listen())
        started = time.monotonic()
        proc = await _demo(
            tmp_path,
            "--duration",
            str(DURATION_S),
            "--port",
            str(port),
            env=_env(MQTT_HOST="127.0.0.1", MQTT_NAMESPACE=namespace),
        )
        try:
            url = await _printed_url(tmp_path, proc)
            assert url == f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                drives: list[dict[str, object]] = []
                while not drives and time.monotonic() - started < DURATION_S - 5:
                    await asyncio.sleep(0.5)
                    drives = (await http.get("/api/drives")).json()["drives"]
                first_drive_s = time.monotonic() - started
                print(f"first drive in the web app after {first_drive_s:.1f} s")
                assert drives, "no drive in the web app"
                assert first_drive_s < 60
                cars = (await http.get("/api/cars")).json()
                assert [c["name"] for c in cars] == ["Daily Driver"]
                assert cars[0]["live"] is True
                page = await http.get("/")
                assert page.status_code == 200 and "Daily Driver" in page.text
                listed = await http.get("/drives")
                assert listed.status_code == 200
                assert f"/drives/{drives[0]['id']}" in listed.text
                assert (await http.get("/api/budget")).json()["governor"]["priced"] is False
                account = (await http.get("/api/tesla/account")).json()
                assert account["health"]["signed_in"] is True  # the running logger's health
                assert account["health"]["needs_login"] is False
                suspend = await http.put(f"/api/car/{cars[0]['id']}/logging/suspend")
                assert suspend.status_code in (204, 412)
                if suspend.status_code == 412:
                    assert suspend.json()["error"]
                resume = await http.put(f"/api/car/{cars[0]['id']}/logging/resume")
                assert resume.status_code == 204
            assert await asyncio.wait_for(proc.wait(), DURATION_S + 30) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await asyncio.sleep(0.5)
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await listening
    out = (tmp_path / "stdout.txt").read_text()
    assert "fleetlog demo stopped:" in out

    engine = make_engine(f"sqlite:///{tmp_path / 'demo' / 'fleetlog-demo.sqlite3'}")
    try:
        with engine.connect() as conn:
            car = conn.execute(sa.select(t.cars)).one()
            pos = conn.execute(
                sa.select(t.positions).order_by(t.positions.c.date.desc()).limit(1)
            ).one()
            state = conn.execute(sa.select(t.states).where(t.states.c.end_date.is_(None))).one()
            fence = geofence_at(conn, float(pos.latitude), float(pos.longitude))
            drive_count = conn.execute(sa.select(sa.func.count()).select_from(t.drives)).scalar()
    finally:
        engine.dispose()
    assert drive_count

    base = f"teslamate/{namespace}/cars/{car.id}/"
    seen = {topic.removeprefix(base) for topic in live if topic.startswith(base)}
    wanted = (set(TESLAMATE_KEYS) - NOT_YET) | set(FLEETLOG_KEYS)
    assert seen == wanted, (sorted(wanted - seen), sorted(seen - wanted))

    # after the run: what a new subscriber gets is what the database says
    kept = {k.removeprefix(base): v for k, v in (await _retained(mosquitto, f"{base}#")).items()}
    assert "healthy" not in kept  # never retained
    assert kept["display_name"] == car.name
    assert float(kept["odometer"]) == round(float(pos.odometer), 2)
    assert int(kept["battery_level"]) == pos.battery_level
    assert float(kept["latitude"]) == pytest.approx(float(pos.latitude), abs=1e-5)
    assert float(kept["longitude"]) == pytest.approx(float(pos.longitude), abs=1e-5)
    assert kept.get("geofence", "") == (fence.name if fence else "")
    row = kept["state"] if kept["state"] in ("asleep", "offline") else "online"
    assert state.state == row
    # `since` is when the car's phase began (after a drive: parked), inside the states row
    since = datetime.fromisoformat(kept["since"].replace("Z", "+00:00"))
    assert since >= state.start_date.replace(tzinfo=UTC)
    assert kept["api_budget_state"] == "unpriced"
    assert kept["feed"] == "none" and kept["telemetry_connected"] == "false"


async def test_demo_takes_a_free_port_when_its_own_is_busy(tmp_path: Path) -> None:
    with _taken_port() as busy:
        proc = await _demo(tmp_path, "--duration", "3", "--port", str(busy), env=_env())
        url = await _printed_url(tmp_path, proc)
        assert url != f"http://127.0.0.1:{busy}"
        assert f"port {busy} was busy" in (tmp_path / "stdout.txt").read_text()
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            assert (await http.get("/api/cars")).status_code == 200
        assert await asyncio.wait_for(proc.wait(), 60) == 0
