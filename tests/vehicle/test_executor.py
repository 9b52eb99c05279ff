"""The executor's group commit, on SQLite and PostgreSQL: held steps go in together, in order;
the worker holds the steps of a burst in its mailbox and commits them before it waits."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from fleetlog.clock import ManualClock
from fleetlog.logbook.records import Position
from fleetlog.logbook.writer import CarIdentity, CarLogbook, register_car
from fleetlog.model.observation import Connectivity, Observation, Source, VehicleState
from fleetlog.store import tables as t
from fleetlog.vehicle import effects as fx
from fleetlog.vehicle.events import Event, FetchedFull, FetchKind, Observed, StreamConnected
from fleetlog.vehicle.executor import MAX_REFUSALS, Executor
from fleetlog.vehicle.machine import CarState
from fleetlog.vehicle.pacing import VirtualPacer, cancel_and_wait
from fleetlog.vehicle.settings import CarSettings, Feed, Timing
from fleetlog.vehicle.worker import CarWorker

T0 = datetime(2025, 3, 3, 7, 0, tzinfo=UTC)
VIN = "5YJ3E7EB0KF000001"


def _executor(engine: sa.Engine, *, hold_steps: int = 500, hold_s: float = 3600.0) -> Executor:
    """An executor whose held steps fall due by the clock only if a test asks so."""
    car_id = register_car(engine, CarIdentity(eid=101, vid=202, vin=VIN), T0).car_id
    return Executor(VIN, CarLogbook(engine, car_id), hold_steps=hold_steps, hold_s=hold_s)


def _pos(second: int, km: float = 0.0) -> Position:
    return Position(
        date=T0 + timedelta(seconds=second),
        latitude=48.1 + km / 100,
        longitude=11.5,
        odometer=1000.0 + km,
        speed=50.0,
    )


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _position_drives(engine: sa.Engine) -> list[tuple[int, int | None]]:
    p = t.positions
    with engine.connect() as conn:
        rows = conn.execute(sa.select(p.c.date, p.c.drive_id).order_by(p.c.date)).all()
    return [(int((r[0].replace(tzinfo=UTC) - T0).total_seconds()), r[1]) for r in rows]


def test_held_steps_wait_for_the_flush_then_go_in_together(migrated_engine: sa.Engine) -> None:
    ex = _executor(migrated_engine)
    ex.execute([fx.OpenDrive(1, _pos(0)), fx.InsertPosition(_pos(0), 1)], hold=True)
    ex.execute([fx.InsertPosition(_pos(1, 0.01), 1)], hold=True)
    ex.execute([fx.InsertPosition(_pos(2, 0.02), None)], hold=True)
    assert _count(migrated_engine, t.drives) == 0
    assert _count(migrated_engine, t.positions) == 0
    assert len(ex.unsaved) == 3
    assert ex.flush()
    (drive_id,) = ex.logbook.refs.drives.values()
    assert _position_drives(migrated_engine) == [(0, drive_id), (1, drive_id), (2, None)]
    assert ex.unsaved == []


def test_a_step_not_held_commits_the_held_ones_before_it(migrated_engine: sa.Engine) -> None:
    ex = _executor(migrated_engine)
    ex.execute([fx.InsertPosition(_pos(0), None)], hold=True)
    ex.execute([fx.InsertPosition(_pos(1, 0.01), None)])
    assert _position_drives(migrated_engine) == [(0, None), (1, None)]
    assert ex.unsaved == []


def test_held_steps_commit_once_hold_steps_wait(migrated_engine: sa.Engine) -> None:
    ex = _executor(migrated_engine, hold_steps=3)
    for second in (0, 1):
        ex.execute([fx.InsertPosition(_pos(second, second / 100), None)], hold=True)
    assert _count(migrated_engine, t.positions) == 0
    ex.execute([fx.InsertPosition(_pos(2, 0.02), None)], hold=True)
    assert _count(migrated_engine, t.positions) == 3


def test_held_steps_commit_once_the_oldest_has_waited_hold_s(migrated_engine: sa.Engine) -> None:
    ex = _executor(migrated_engine, hold_s=0.0)
    ex.execute([fx.InsertPosition(_pos(0), None)], hold=True)
    assert _count(migrated_engine, t.positions) == 1


def test_a_refused_step_in_a_group_costs_only_itself(migrated_engine: sa.Engine) -> None:
    ex = _executor(migrated_engine)
    bad = Position(date=T0 + timedelta(seconds=1), latitude=None, longitude=11.5)  # type: ignore[arg-type]
    ex.execute([fx.InsertPosition(_pos(0), None)], hold=True)
    ex.execute([fx.InsertPosition(bad, None)], hold=True)  # positions.latitude is NOT NULL
    ex.execute([fx.InsertPosition(_pos(2, 0.02), None)], hold=True)
    assert not ex.flush()
    # the steps before the refused one are stored; it and the ones after it wait, in order
    assert _position_drives(migrated_engine) == [(0, None)]
    assert len(ex.unsaved) == 2
    for _ in range(MAX_REFUSALS - 1):
        ex.flush()
    assert ex.unsaved == []
    assert _position_drives(migrated_engine) == [(0, None), (2, None)]


@pytest.mark.parametrize("held", [True, False])
def test_a_later_step_may_reuse_an_instant_of_a_held_step(
    migrated_engine: sa.Engine, held: bool
) -> None:
    """One position per car and instant holds across the steps of one group too."""
    ex = _executor(migrated_engine)
    ex.execute([fx.InsertPosition(_pos(5), None)], hold=held)
    ex.execute([fx.OpenDrive(1, _pos(5)), fx.InsertPosition(_pos(5), 1)], hold=held)
    later = [fx.InsertPosition(_pos(3), None), fx.InsertPosition(_pos(5), 1)]
    ex.execute([*later, fx.InsertPosition(_pos(6, 0.01), 1)], hold=held)
    assert ex.flush()
    (drive_id,) = ex.logbook.refs.drives.values()
    assert _position_drives(migrated_engine) == [(3, None), (5, drive_id), (6, drive_id)]


# --- the worker: a burst in the mailbox is one commit, and all of it before the worker waits


def _observation(second: int, shift: str, **full: object) -> Observation:
    state = VehicleState(
        latitude=48.1 + second / 1000,
        longitude=11.5,
        odometer_km=1000.0 + second / 10,
        speed_kmh=50.0,
        shift_state=shift,
        **full,  # type: ignore[arg-type]
    )
    return Observation(VIN, T0 + timedelta(seconds=second), Source.TELEMETRY, state)


class _Fetcher:
    """The first fetch finds the car driving, while the feed fills the mailbox meanwhile."""

    def __init__(self, burst: int) -> None:
        self.burst = burst
        self.worker: CarWorker | None = None
        self.calls = 0

    async def fetch(self, kind: FetchKind) -> Event:
        assert self.worker is not None
        self.calls += 1
        for second in range(1, self.burst + 1):
            self.worker.mailbox.put(Observed(_observation(second, "D")))
        full = _observation(0, "D", connectivity=Connectivity.ONLINE, ideal_range_km=300.0)
        return FetchedFull(replace(full, source=Source.REST))


async def test_the_worker_commits_a_burst_once_and_before_it_waits(
    migrated_engine: sa.Engine,
) -> None:
    ex = _executor(migrated_engine)
    commits: list[int] = []

    @sa.event.listens_for(migrated_engine, "commit")
    def _count(conn: sa.Connection) -> None:
        commits.append(_count_positions(conn))

    clock = ManualClock(T0)
    pacer = VirtualPacer(clock, end=T0)
    fetcher = _Fetcher(burst=5)
    worker = CarWorker(
        state=CarState(VIN, settings=CarSettings(), timing=Timing(), feed=Feed.TELEMETRY),
        executor=ex,
        fetcher=fetcher,  # type: ignore[arg-type]
        pacer=pacer,
    )
    fetcher.worker = worker
    worker.mailbox.put(StreamConnected())
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(pacer.finished.wait(), 30)
    await cancel_and_wait(task)
    assert fetcher.calls == 1 and worker.errors == 0
    # the fetch's step (the drive opens at its first position), then the burst in one go
    assert commits == [1, 6]
    assert ex.unsaved == []


def _count_positions(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(t.positions)).scalar_one())
