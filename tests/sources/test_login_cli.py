"""`fleetlog login` against the simulator running in a background thread (real HTTP)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetlog.cli import app
from fleetlog.config import load_settings
from fleetlog.sim.scenarios import commuter_week
from fleetlog.sim.server import SimServer
from fleetlog.sim.world import CloudOptions, World
from fleetlog.sources.tesla import token_store
from fleetlog.store import make_engine


@pytest.fixture
def sim_env() -> Iterator[dict[str, str]]:
    ready = threading.Event()
    stop: asyncio.Event | None = None
    env: dict[str, str] = {}

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with SimServer(World(commuter_week(), CloudOptions(mode="fleet"))) as sim:
            env.update(sim.env)
            ready.set()
            await stop.wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield env
    assert stop is not None
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


def test_login_stores_the_token_pair_in_the_vault(sim_env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in sim_env.items() if k != "FLEETLOG_SIM_URL"}
    env.update(
        FLEETLOG_DATA_DIR=str(tmp_path),
        ENCRYPTION_KEY="cli-test-key",
        FLEETLOG_DATABASE_URL=f"sqlite:///{tmp_path}/fleetlog.sqlite3",
    )
    result = CliRunner().invoke(app, ["login"], env=env)
    assert result.exit_code == 0, result.output
    assert "Signed in (fleet" in result.output and "5YJ" in result.output
    assert env["FLEETLOG_ACCESS_TOKEN"] not in result.output
    settings = load_settings(env)
    stored = token_store(settings, make_engine(settings.database_url)).load()
    assert stored is not None and stored.refresh_token
    # The simulator lives in 2025, so to this process's clock the access token has expired:
    # sign-in refreshed it, and the vault holds the rotated pair, never the spent one.
    assert stored.refresh_token.startswith("EU_")
    assert stored.refresh_token != env["FLEETLOG_REFRESH_TOKEN"]


def test_login_with_a_spent_refresh_token_says_what_to_do(
    sim_env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in sim_env.items() if k != "FLEETLOG_SIM_URL"}
    env.update(
        FLEETLOG_DATA_DIR=str(tmp_path),
        ENCRYPTION_KEY="cli-test-key",
        FLEETLOG_DATABASE_URL=f"sqlite:///{tmp_path}/fleetlog.sqlite3",
        FLEETLOG_ACCESS_TOKEN="qts-" + "x" * 40,  # opaque: refreshed at once
    )
    first = CliRunner().invoke(app, ["login"], env=env)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, ["login"], env=env)  # the same, now spent, refresh token
    assert again.exit_code == 1
    assert "single use" in again.output and "fleetlog login" in again.output
    assert env["FLEETLOG_REFRESH_TOKEN"] not in again.output
