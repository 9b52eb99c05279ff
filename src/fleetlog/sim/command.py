"""`fleetlog sim`: build a scenario, serve it on loopback, print the environment,
run until stopped.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from fleetlog.sim.scenarios import build
from fleetlog.sim.server import Faults, SimServer
from fleetlog.sim.world import CloudOptions, Mode, World

_DURATION = re.compile(
    r"^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$"
)


def parse_offset(text: str) -> timedelta:
    """``2d6h``, ``90m``, ``1h30m``, ``3600`` (seconds) → a timedelta."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 2d6h, 90m, 3600)")
    d, h, m, s = (float(x) if x else 0.0 for x in match.groups())
    return timedelta(days=d, hours=h, minutes=m, seconds=s)


@dataclass(frozen=True, slots=True)
class SimSettings:
    """Everything `fleetlog sim` takes on its command line."""

    scenario: str = "commuter-week"
    mode: Mode = "fleet"
    speed: float = 1.0
    host: str = "127.0.0.1"
    port: int = 8780
    seed: int = 1
    cars: int = 10
    start: timedelta = timedelta(0)
    truth_out: Path | None = None
    daily_data_quota: int | None = None
    billing_limit_usd: float | None = 10.0
    faults: Faults = field(default_factory=Faults)
    telemetry: tuple[str, ...] = ()  # dispatcher URLs: mqtt://…, zmq://…, redis://…
    streaming_tls: bool = False


def make_server(settings: SimSettings) -> SimServer:
    """The world of the settings, fast-forwarded to `start`, behind a server (not started)."""
    scenario = build(settings.scenario, settings.seed, cars=settings.cars)
    options = CloudOptions(
        mode=settings.mode,
        seed=settings.seed,
        daily_data_quota=settings.daily_data_quota,
        billing_limit_usd=settings.billing_limit_usd,
    )
    world = World(scenario, options)
    world.advance(scenario.start + settings.start)
    return SimServer(
        world,
        speed=settings.speed,
        host=settings.host,
        port=settings.port,
        faults=settings.faults,
        truth_out=settings.truth_out,
        telemetry=settings.telemetry,
        streaming_tls=settings.streaming_tls,
    )


async def serve(settings: SimSettings, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
    """Serve until SIGINT/SIGTERM; the environment goes to `out`, one ``NAME=value`` a line."""
    server = make_server(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server as sim:
        for name, value in sim.env.items():
            print(f"{name}={value}", file=out, flush=True)
        world = sim.world
        print(
            f"# fleetlog sim: {world.scenario.name} ({world.mode}), {len(world.cars)} car(s), "
            f"sim time {world.now.isoformat()} at {settings.speed:g}x; Ctrl-C to stop",
            file=err,
            flush=True,
        )
        await stop.wait()
    if settings.truth_out is not None:
        print(f"# ground truth written to {settings.truth_out}", file=err, flush=True)


def run(settings: SimSettings) -> None:
    """Blocking entry point for the CLI."""
    asyncio.run(serve(settings))
