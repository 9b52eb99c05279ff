"""Test helpers: the Tesla cloud simulator on loopback and fleetlog settings pointing at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from fleetlog.clock import ManualClock
from fleetlog.config import Settings, load_settings
from fleetlog.sim.scenarios import commuter_week
from fleetlog.sim.server import SimServer
from fleetlog.sim.world import CloudOptions, Mode, World
from fleetlog.sources.tesla import (
    TeslaAccount,
    open_account,
    sign_in_with_provider,
    sign_in_with_tokens,
)

ENCRYPTION_KEY = "test-encryption-key-for-tesla-sources"


@dataclass
class Cloud:
    sim: SimServer
    clock: ManualClock
    data_dir: Path

    @property
    def world(self) -> World:
        return self.sim.world

    def settings(self, **extra: str) -> Settings:
        env = {k: v for k, v in self.sim.env.items() if not k.startswith("FLEETLOG_")}
        env.update(ENCRYPTION_KEY=ENCRYPTION_KEY, FLEETLOG_DATA_DIR=str(self.data_dir))
        env.update(extra)
        return load_settings({k: v for k, v in env.items() if v is not None})

    @property
    def access_token(self) -> str:
        return self.sim.env["FLEETLOG_ACCESS_TOKEN"]

    @property
    def refresh_token(self) -> str:
        return self.sim.env["FLEETLOG_REFRESH_TOKEN"]

    async def sign_in(self, engine: sa.Engine, settings: Settings | None = None) -> None:
        settings = settings or self.settings()
        if settings.token:
            await sign_in_with_provider(settings, engine, clock=self.clock)
        else:
            await sign_in_with_tokens(
                settings,
                engine,
                access_token=self.access_token,
                refresh_token=self.refresh_token,
                clock=self.clock,
            )

    async def account(self, engine: sa.Engine, settings: Settings | None = None) -> TeslaAccount:
        return await open_account(settings or self.settings(), engine, clock=self.clock)

    def ledger(self) -> dict[str, Any]:
        return self.world.ledger.to_json()


@asynccontextmanager
async def cloud(mode: Mode, tmp_path: Path, **options: Any) -> AsyncIterator[Cloud]:
    scenario = commuter_week()
    world = World(scenario, CloudOptions(mode=mode, **options))
    clock = ManualClock(scenario.start)
    async with SimServer(world, clock=clock) as sim:
        yield Cloud(sim, clock, tmp_path)
