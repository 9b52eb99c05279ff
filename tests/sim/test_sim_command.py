"""`fleetlog sim` as a user runs it: a real process that prints the environment and serves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fleetlog.sim.command import parse_offset


@pytest.mark.parametrize("mode", ["owner", "fleet", "myteslamate", "teslemetry"])
def test_sim_prints_the_environment_and_serves(tmp_path: Path, mode: str) -> None:
    truth = tmp_path / "truth.json"
    args = ["sim", "--scenario", "city-day", "--speed", "600", "--port", "0", "--mode", mode]
    args += ["--start", "7h", "--truth-out", str(truth)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESLA_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetlog", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        printed: dict[str, str] = {}
        while "FLEETLOG_SIM_URL" not in printed:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "no output"
            name, _, value = line.strip().partition("=")
            printed[name] = value
        assert printed["TESLA_API_HOST"].startswith("http://127.0.0.1:")
        expected_path = "/api/oauth2/v3" if mode in ("myteslamate", "teslemetry") else "/oauth2/v3"
        assert printed["TESLA_AUTH_PATH"] == expected_path
        assert ("TOKEN" in printed) == (mode in ("myteslamate", "teslemetry"))
        bearer = printed.get("TOKEN") or printed["FLEETLOG_ACCESS_TOKEN"]
        r = httpx.get(
            printed["TESLA_API_HOST"] + "/api/1/vehicles",
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=10,
        )
        assert r.status_code == 200 and r.json()["count"] == 1
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    data = json.loads(truth.read_text())
    assert data["scenario"] == "city-day" and data["mode"] == mode
    assert data["now"] >= "2025-05-14T11:00"  # --start 7h from 04:00 UTC
    assert len(data["cars"][0]["drives"]) >= 3


def test_parse_offset() -> None:
    assert parse_offset("1d7h30m").total_seconds() == 86400 + 7 * 3600 + 1800
    assert parse_offset("3600").total_seconds() == 3600
    with pytest.raises(ValueError):
        parse_offset("soon")


async def test_loop_clock_runs_the_world_at_speed() -> None:
    import asyncio

    from fleetlog.sim import SimServer, World, build

    world = World(build("commuter-week", 1))
    start = world.now
    async with SimServer(world, speed=3600.0, tick_s=0.05) as sim:
        await asyncio.sleep(0.3)
        elapsed = (sim.world.now - start).total_seconds()
    assert 600 < elapsed < 3600  # ~0.3 s × 3600 = ~18 simulated minutes, give or take the loop
