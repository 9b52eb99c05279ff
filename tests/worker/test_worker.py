"""Workers against the simulator over real HTTP, in virtual time: faults and isolation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from tests.harness.fidelity import POLLING_ONLY, score_car
from tests.harness.runner import run_scenario

from fleetlog.runtime import Fleet
from fleetlog.sim.server import Faults
from fleetlog.store import tables as t
from fleetlog.vehicle.events import Event, FetchKind


async def test_server_errors_dropped_connections_and_cut_bodies_are_ridden_out(
    tmp_path: Path,
) -> None:
    from fleetlog.store import make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'fl.db'}")
    upgrade(engine)
    faults = Faults(error_rate=0.05, drop_rate=0.02, malformed_rate=0.05, seed=3)
    run = await run_scenario(
        "commuter-week", engine, tmp_path, duration=timedelta(hours=25), faults=faults
    )
    report = score_car(engine, run.truth["cars"][0], (run.start, run.end), POLLING_ONLY)
    # every fault became a FetchFailed for the machine: no worker error, nothing missed
    assert run.worker_errors == 0
    assert (report.drives.found, report.drives.extra) == (2, 0)
    assert (report.charges.found, report.charges.extra) == (1, 0)
    assert report.drives.worst_amount_error < 0.005


class Broken:
    """A fetcher with a bug: every call raises."""

    async def fetch(self, kind: FetchKind) -> Event:
        raise RuntimeError("fetcher bug")


async def test_a_failing_car_never_stops_another(tmp_path: Path) -> None:
    from fleetlog.store import make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'fl.db'}")
    upgrade(engine)
    broken_vin: list[str] = []
    fleets: list[Fleet] = []

    def sabotage(fleet: Fleet) -> None:
        vin, worker = sorted(fleet.workers.items())[0]
        worker.fetcher = Broken()
        broken_vin.append(vin)
        fleets.append(fleet)

    run = await run_scenario(
        "fleet", engine, tmp_path, duration=timedelta(hours=25), cars=2, on_ready=sabotage
    )
    healthy = next(c for c in run.truth["cars"] if c["vin"] != broken_vin[0])
    report = score_car(engine, healthy, (run.start, run.end), POLLING_ONLY)
    assert report.drives.found >= 1 and report.charges.found >= 1
    workers = fleets[0].workers
    assert workers[healthy["vin"]].errors == 0
    broken = workers[broken_vin[0]]
    # the broken car failed at every look, was logged each time, and kept trying all day
    assert broken.errors > 40
    with engine.connect() as conn:
        broken_drives = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.drives.join(t.cars, t.cars.c.id == t.drives.c.car_id))
            .where(t.cars.c.vin == broken_vin[0])
        ).scalar_one()
    assert broken_drives == 0
