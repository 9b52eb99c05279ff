"""Simulator servers on loopback with a manual clock, one per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from fleetlog.clock import ManualClock
from fleetlog.sim.scenarios import build
from fleetlog.sim.server import Faults, SimServer
from fleetlog.sim.world import CloudOptions, World

StartSim = Callable[..., AbstractAsyncContextManager[SimServer]]


@pytest.fixture
def start_sim() -> StartSim:
    """`async with start_sim(mode="fleet", scenario="commuter-week", **options) as sim:`."""

    @asynccontextmanager
    async def start(
        mode: str = "fleet",
        scenario: str = "commuter-week",
        faults: Faults | None = None,
        **options: Any,
    ) -> AsyncIterator[SimServer]:
        world = World(build(scenario, 1, cars=2), CloudOptions(mode=mode, **options))  # type: ignore[arg-type]
        async with SimServer(world, clock=ManualClock(world.now), faults=faults) as sim:
            yield sim

    return start
