"""The web app served by the running logger: suspend/resume reach the car's worker.

Real time at 30x on the simulator's clock, the web app on a real port, httpx as the
client, on SQLite and PostgreSQL. While the car drives its machine refuses to suspend
(412 with its reason); parked, it refuses while a blocker holds (the driver is still in
the car) and then suspends (204: the worker is suspended, the page says so); resuming
is always done.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from _live import Live, running

from fleetlog.vehicle.phase import Phase
from fleetlog.vehicle.worker import CarWorker


async def _until(what: Callable[[], bool], timeout: float, why: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {why}")
        await asyncio.sleep(0.01)


def _worker(live: Live) -> CarWorker:
    return next(iter(live.fleet.workers.values()))


async def test_suspend_and_resume_over_the_web_api(
    migrated_engine: sa.Engine, tmp_path: Path
) -> None:
    async with running(
        migrated_engine, tmp_path, speed=30.0, duration=timedelta(hours=1), web=True
    ) as live:
        assert live.services.web is not None
        car_id = live.car_id()
        worker = _worker(live)
        async with httpx.AsyncClient(base_url=live.services.web.url, timeout=10) as http:
            # the page and the API see the live car
            await _until(lambda: live.services.board.summary(car_id) is not None, 20, "summary")
            page = await http.get("/")
            assert page.status_code == 200 and "Daily Driver" in page.text
            cars = (await http.get("/api/cars")).json()
            assert cars[0]["id"] == car_id and cars[0]["live"] is True
            budget = (await http.get("/api/budget")).json()
            assert budget["governor"]["priced"] is False  # owner API: no per-call price

            # a live summary over SSE
            async with http.stream("GET", "/api/events") as events:
                async for line in events.aiter_lines():
                    if line.startswith("data: "):
                        assert json.loads(line[6:])["car_id"] == car_id
                        break

            await _until(lambda: worker.state.phase is Phase.DRIVING, 60, "the drive")
            refused = await http.put(f"/api/car/{car_id}/logging/suspend")
            assert refused.status_code == 412
            assert refused.json() == {"error": "vehicle_not_parked"}
            assert worker.state.phase is Phase.DRIVING

            # parked: the machine refuses while a blocker holds (user present, sentry, ...),
            # then suspends; every answer is its own
            reasons: list[str] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if worker.state.phase is not Phase.ONLINE:
                    await asyncio.sleep(0.05)
                    continue
                answer = await http.put(f"/api/car/{car_id}/logging/suspend")
                if answer.status_code == 204:
                    break
                assert answer.status_code == 412
                reasons.append(answer.json()["error"])
                assert reasons[-1] and worker.state.phase is not Phase.SUSPENDED
                await asyncio.sleep(0.3)
            print("refused while parked:", sorted(set(reasons)))
            assert answer.status_code == 204, reasons
            assert worker.state.phase is Phase.SUSPENDED
            await _until(
                lambda: (live.services.board.summary(car_id) or {}).get("state") == "suspended",
                5,
                "the suspended summary",
            )
            shown = (await http.get("/api/cars")).json()[0]["summary"]
            assert shown["logging"] == "suspended"

            resumed = await http.put(f"/api/car/{car_id}/logging/resume")
            assert resumed.status_code == 204
            assert worker.state.phase is Phase.ONLINE

            missing = await http.put("/api/car/999/logging/resume")
            assert missing.status_code == 404

            # stopping the server ends an open event stream cleanly, without waiting it out
            async def follow() -> int:
                lines = 0
                async with http.stream("GET", "/api/events") as events:
                    async for _line in events.aiter_lines():
                        lines += 1
                return lines

            following = asyncio.create_task(follow())
            await asyncio.sleep(0.5)
            stopping = time.monotonic()
            await live.services.web.stop()
            assert await asyncio.wait_for(following, 2) > 0
            assert time.monotonic() - stopping < 2
