"""End to end: the simulator, the real runtime (client, machine, worker, logbook) and the
publisher on Mosquitto, in virtual time. What MQTT keeps must match the database."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _mqtt import Space, retained

from fleetlog.clock import ManualClock
from fleetlog.config import load_settings
from fleetlog.publish import CarInfo, MqttPublisher, car_payloads
from fleetlog.runtime import Fleet, Parts
from fleetlog.sim.scenarios import build
from fleetlog.sim.server import SimServer
from fleetlog.sim.world import CloudOptions, World
from fleetlog.sources.tesla import open_account, sign_in_with_tokens
from fleetlog.store import make_engine, upgrade
from fleetlog.store import tables as t
from fleetlog.vehicle.pacing import VirtualPacer
from fleetlog.vehicle.settings import Timing


def _car_id(engine: sa.Engine, vin: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(t.cars.c.id).where(t.cars.c.vin == vin)).scalar_one())


async def test_city_day_through_the_runtime(space: Space, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fleetlog.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    world = World(build("city-day", 1), CloudOptions(mode="fleet", seed=1))
    begin = world.scenario.start
    world.advance(begin)
    end = begin + timedelta(hours=14)
    clock = ManualClock(begin)
    publisher = MqttPublisher(space.settings())
    last: dict[str, dict[str, Any]] = {}

    def on_summary(vin: str, summary: dict[str, Any]) -> None:
        # the runtime knows cars by VIN; the publisher by the database id (the topic's)
        publisher.add_car(CarInfo(_car_id(engine, vin), vin))
        publisher.summary_hook()(vin, summary)
        last[vin] = summary

    await publisher.start()
    try:
        async with SimServer(world, clock=clock) as sim:
            env = {k: v for k, v in sim.env.items() if not k.startswith("FLEETLOG_")}
            env.update(ENCRYPTION_KEY="publish-e2e-key", FLEETLOG_DATA_DIR=str(tmp_path))
            settings = load_settings(env)
            await sign_in_with_tokens(
                settings,
                engine,
                access_token=sim.env["FLEETLOG_ACCESS_TOKEN"],
                refresh_token=sim.env["FLEETLOG_REFRESH_TOKEN"],
                clock=clock,
            )
            pacer = VirtualPacer(clock, end=end, on_advance=lambda _now: sim.sync())
            account = await open_account(settings, engine, clock=clock)
            fleet = Fleet()
            try:
                vehicles = await account.client.products()
                parts = Parts(
                    engine,
                    account.client,
                    pacer,
                    timing=Timing.from_settings(settings),
                    on_summary=on_summary,
                )
                await fleet.start(parts, vehicles)
                await pacer.finished.wait()
            finally:
                await fleet.stop()
                await account.aclose()
        assert await publisher.wait_idle(10)
        assert last, "the runtime published no summary"
        for vin, summary in last.items():
            car_id = _car_id(engine, vin)
            base = f"{space.base}/cars/{car_id}"
            kept = await retained(space.port, f"{base}/#")
            got = {k.removeprefix(f"{base}/"): v for k, v in kept.items()}
            payloads = car_payloads(summary)
            wanted = {k: v for k, v in payloads.items() if k != "healthy" and v}
            # MQTT = the live summary; as in TeslaMate, a value that became unknown (speed once
            # parked) is skipped, so its last retained value may stay on the broker.
            assert {k: got.get(k) for k in wanted} == wanted
            stale = set(got) - set(wanted)
            assert all(k not in payloads for k in stale), stale
            with engine.connect() as conn:
                pos = conn.execute(
                    sa.select(t.positions)
                    .where(t.positions.c.car_id == car_id)
                    .order_by(t.positions.c.date.desc())
                    .limit(1)
                ).one()
                state = conn.execute(
                    sa.select(t.states)
                    .where(t.states.c.car_id == car_id)
                    .order_by(t.states.c.start_date.desc())
                    .limit(1)
                ).one()
            # ... and the database
            assert float(got["odometer"]) == round(float(pos.odometer), 2)
            assert int(got["battery_level"]) == pos.battery_level
            # TeslaMate's states rows: asleep, offline, or online for every awake phase
            row = got["state"] if got["state"] in ("asleep", "offline") else "online"
            assert (state.state, state.end_date) == (row, None)
            assert got["since"] == state.start_date.replace(tzinfo=UTC).isoformat().replace(
                "+00:00", "Z"
            ) or got["state"] not in ("asleep", "offline", "online")
    finally:
        await publisher.stop()
        engine.dispose()
