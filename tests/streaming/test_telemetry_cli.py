"""``fleetlog telemetry config`` and ``status``: the printed body per profile, the cost lines,
``--apply --proxy`` posting to the simulator as the signing proxy, and ``status`` read back
from the simulator (MyTeslaMate mode: ``TOKEN`` signs in, no stored tokens needed)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from fleetlog.cli import app
from fleetlog.clock import ManualClock
from fleetlog.sim.scenarios import build
from fleetlog.sim.server import SimServer
from fleetlog.sim.world import CloudOptions, World
from fleetlog.sources.streaming.profiles import PROFILES
from fleetlog.store import make_engine, upgrade


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_config_prints_the_profile_and_every_cost(name: str) -> None:
    result = CliRunner().invoke(
        app, ["telemetry", "config", "--vin", "V1", "--vin", "V2", "--profile", name,
              "--hostname", "t.example.org", "--port", "4443"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["vins"] == ["V1", "V2"]
    config = body["config"]
    assert (config["hostname"], config["port"], config["ca"]) == ("t.example.org", 4443, "")
    assert config["fields"] == PROFILES[name].config()
    for rule in PROFILES[name].rules:
        spec = config["fields"][rule.name]
        assert spec["interval_seconds"] == rule.interval_s
        assert spec.get("minimum_delta") == rule.minimum_delta
    lines = result.stderr.rstrip("\n").splitlines()
    assert len(lines) == len(PROFILES)
    for profile, line in zip(PROFILES.values(), lines, strict=True):
        match = re.match(
            r"([* ]) (\w+) +~ *([\d,]+) signals/day +~\$(\d+\.\d\d)/month per car", line
        )
        assert match, line
        mark, shown, signals, usd = match.groups()
        assert shown == profile.name and (mark == "*") == (profile.name == name)
        assert int(signals.replace(",", "")) == round(profile.signals_per_day())
        assert float(usd) == pytest.approx(profile.monthly_usd(), abs=0.005)


def test_config_rejects_an_unknown_profile_and_apply_without_proxy() -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["telemetry", "config", "--vin", "V1", "--profile", "cheap"])
    assert bad.exit_code == 2 and "economy" in bad.stderr
    no_proxy = runner.invoke(app, ["telemetry", "config", "--vin", "V1", "--apply"])
    assert no_proxy.exit_code == 2 and "--proxy" in no_proxy.stderr


@pytest.fixture
async def mtm_sim() -> AsyncIterator[SimServer]:
    world = World(build("commuter-week", 1), CloudOptions(mode="myteslamate"))
    async with SimServer(world, clock=ManualClock(world.now)) as sim:
        yield sim


async def invoke(env: dict[str, str], *args: str) -> Result:
    """The command in a thread (it runs its own event loop), against the running simulator."""
    return await asyncio.to_thread(CliRunner().invoke, app, ["telemetry", *args], env=env)


def cli_env(sim: SimServer, tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path}/fleetlog.db"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return {**sim.env, "FLEETLOG_DATABASE_URL": url, "FLEETLOG_DATA_DIR": str(tmp_path),
            "ENCRYPTION_KEY": "test-key"}  # fmt: skip


async def test_apply_through_the_proxy_then_status(mtm_sim: SimServer, tmp_path: Path) -> None:
    sim = mtm_sim
    vin = sim.world.cars[0].spec.vin
    env = cli_env(sim, tmp_path)
    applied = await invoke(env, "config", "--vin", vin, "--profile", "economy", "--apply",
                           "--proxy", sim.base_url)  # fmt: skip
    assert applied.exit_code == 0, applied.output
    assert applied.stderr.splitlines()[-1].startswith("200 ")
    stored = sim.world.telemetry[vin].config
    assert stored["fields"] == PROFILES["economy"].config()
    assert stored["hostname"] == "telemetry.example.com"
    assert sim.env["TOKEN"] not in applied.output

    # The car picks the config up once it is online (the first commute).
    await sim.advance(28_200)
    status = await invoke(env, "status", "--vin", vin)
    assert status.exit_code == 0, status.output
    shown = json.loads(status.stdout)
    assert shown["vin"] == vin
    assert shown["synced"] is True and shown["limit_reached"] is False
    assert shown["key_paired"] is True
    assert shown["config"]["fields"] == PROFILES["economy"].config()
    assert shown["fleet_telemetry_errors"] == []
    asked = " ".join(sim.truth()["ledger"]["by_category"]["free"]["by_endpoint"])
    assert all(e in asked for e in ("fleet_status", "telemetry_config", "telemetry_errors"))


async def test_apply_refused_by_the_proxy_exits_1(mtm_sim: SimServer, tmp_path: Path) -> None:
    env = {**cli_env(mtm_sim, tmp_path), "TOKEN": "not-the-provider-token"}
    refused = await invoke(env, "config", "--vin", mtm_sim.world.cars[0].spec.vin, "--apply",
                           "--proxy", mtm_sim.base_url)  # fmt: skip
    assert refused.exit_code == 1
    assert refused.stderr.splitlines()[-1].startswith("401 ")
    assert "not-the-provider-token" not in refused.output
