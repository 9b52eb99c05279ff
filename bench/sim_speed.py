"""How fast the simulator fast-forwards its scenarios (a benchmark, never a timed test).

    .venv/bin/python bench/sim_speed.py [--polled]

Plain: each scenario's world runs from start to end. `--polled` also serves commuter-week
over loopback HTTP with a manual clock and polls like a naive logger (the vehicle list each
simulated minute, vehicle_data every 5 minutes while the car is online), to show the cost
of the HTTP layer.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from fleetlog.clock import ManualClock
from fleetlog.sim import CloudOptions, SimServer, World, build
from fleetlog.sim.scenarios import SCENARIOS


def fast_forward(name: str, cars: int = 10) -> tuple[float, World]:
    world = World(build(name, 1, cars=cars))
    start = time.perf_counter()
    world.advance(world.scenario.end)
    return time.perf_counter() - start, world


async def polled_week() -> tuple[float, int]:
    world = World(build("commuter-week", 1), CloudOptions(billing_limit_usd=None))
    calls = 0
    start = time.perf_counter()
    async with SimServer(world, clock=ManualClock(world.now)) as sim:
        car_id = world.cars[0].spec.id
        minute = 0
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            while world.now < world.scenario.end:
                if minute % 480 == 0:  # sign in again well before the 8 h token expires
                    c.headers["Authorization"] = f"Bearer {world.initial_tokens().access_token}"
                state = (await c.get(f"/api/1/vehicles/{car_id}")).json()["response"]["state"]
                calls += 1
                if state == "online" and minute % 5 == 0:
                    await c.get(f"/api/1/vehicles/{car_id}/vehicle_data")
                    calls += 1
                await sim.advance(60)
                minute += 1
    return time.perf_counter() - start, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polled", action="store_true", help="also time a polled week over HTTP")
    args = parser.parse_args()
    for name in SCENARIOS:
        seconds, world = fast_forward(name)
        days = (world.scenario.end - world.scenario.start).total_seconds() / 86400
        drives = sum(len(c.log.drives) for c in world.cars)
        km = sum(d.distance_km or 0 for c in world.cars for d in c.log.drives)
        print(
            f"{name:14} {len(world.cars):3} car(s) {days:4.1f} d  {drives:4} drives {km:8.1f} km"
            f"  fast-forward {seconds:6.2f} s  ({days * 86400 * len(world.cars) / seconds:,.0f}x)"
        )
    if args.polled:
        seconds, calls = asyncio.run(polled_week())
        print(f"commuter-week polled over HTTP: {calls} requests in {seconds:.1f} s")


if __name__ == "__main__":
    main()
