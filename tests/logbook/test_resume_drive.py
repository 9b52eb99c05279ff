"""A crash at any step of a drive, then a start from the database: one drive.

The machine and the logbook run step by step on a polled commute (every effect batch
committed as the executor does); the "crash" drops the machine and the logbook after step
`k` and builds new ones from the database (``logbook.resume``), as ``fleetlog run`` does at
its next start, then the car's looks go on after a gap. Whatever `k` (before the drive,
right after it opened with its two late-start positions, a minute in, right after it
closed), the database ends with one closed drive, all of its positions in it, its
distance exact, no instant twice. On SQLite and PostgreSQL.

Found by the crash suite (2025-11): a start right after a drive closed, before any parked
look was stored, took the parked look from *before* the drive as where the car was (the
drive's own end position was not looked at), and the first parked look then recorded the
whole drive again as a move between two looks: a second drive, two positions, the same
start and end odometer.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from fleetlog.logbook.resume import read_open_rows, resume
from fleetlog.logbook.writer import CarIdentity, CarLogbook, register_car
from fleetlog.model.observation import Connectivity, Observation, Source, VehicleState
from fleetlog.store import tables as t
from fleetlog.vehicle.events import Boot, Event, FetchedFull, FetchedLight
from fleetlog.vehicle.machine import CarState, step

VIN = "5YJ3E7EB0KF000001"
T0 = datetime(2025, 3, 3, 6, 49, 20, tzinfo=UTC)  # the commute leaves
LOOK = timedelta(seconds=15)
KM_PER_LOOK = 0.2
LOOKS = 40  # 8 km in 10 minutes


def _state(odo: float, *, driving: bool) -> VehicleState:
    return VehicleState(
        latitude=48.1 + (odo - 1000) / 100,
        longitude=11.5,
        odometer_km=odo,
        shift_state="D" if driving else None,
        speed_kmh=48.0 if driving else None,
        power_kw=15.0 if driving else 0.0,
        battery_level=80,
        usable_battery_level=80,
        ideal_range_km=400.0 - (odo - 1000),
        rated_range_km=380.0 - (odo - 1000),
        est_range_km=350.0,
        outside_temp_c=5.0,
        inside_temp_c=20.0,
        connectivity=Connectivity.ONLINE,
    )


def _full(at: datetime, odo: float, *, driving: bool) -> tuple[datetime, Event]:
    obs = Observation(VIN, at, Source.REST, _state(odo, driving=driving))
    return at, FetchedFull(obs)


def _light(at: datetime) -> tuple[datetime, Event]:
    obs = Observation(VIN, at, Source.REST, VehicleState(connectivity=Connectivity.ONLINE))
    return at, FetchedLight(obs)


def commute() -> list[tuple[datetime, Event]]:
    """Parked looks, a polled drive (a look every 15 s), parked looks at the end."""
    events: list[tuple[datetime, Event]] = [_light(T0 - timedelta(minutes=3))]
    events += [_full(T0 - timedelta(minutes=m), 1000.0, driving=False) for m in (3, 2, 1)]
    for i in range(1, LOOKS + 1):
        events.append(_full(T0 + i * LOOK, 1000.0 + i * KM_PER_LOOK, driving=True))
    end = T0 + (LOOKS + 1) * LOOK
    events += [_full(end + timedelta(minutes=m), 1008.0, driving=False) for m in range(8)]
    return events


class Logger:
    """One run of the logger: the machine and its logbook, built from the database."""

    def __init__(self, engine: sa.Engine, car_id: int, now: datetime) -> None:
        state, refs = resume(CarState(VIN), read_open_rows(engine, car_id))
        self.state = state
        self.book = CarLogbook(engine, car_id, refs=refs)
        self.handle(Boot(), now)

    def handle(self, event: Event, now: datetime) -> None:
        self.state, effects = step(self.state, event, now)
        self.book.apply(effects)  # one transaction per step, as the executor


def run(engine: sa.Engine, crash_after: int | None, gap: int) -> None:
    car_id = register_car(engine, CarIdentity(1, 2, VIN), T0).car_id
    events = commute()
    logger = Logger(engine, car_id, events[0][0])
    skip_until = -1
    for k, (at, event) in enumerate(events):
        if k <= skip_until:
            continue  # the logger is down: these looks never happen
        logger.handle(event, at)
        if k == crash_after:
            skip_until = k + gap
            restart = events[min(skip_until + 1, len(events) - 1)][0] - timedelta(seconds=1)
            logger = Logger(engine, car_id, restart)
            logger.handle(_light(restart)[1], restart)


def _drives(engine: sa.Engine) -> list[sa.RowMapping]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(t.drives).order_by(t.drives.c.id)).mappings())


def _duplicate_instants(engine: sa.Engine) -> list[sa.Row[tuple[datetime, int]]]:
    p = t.positions
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(p.c.date, sa.func.count())
                .group_by(p.c.car_id, p.c.date)
                # (a bare count per car and instant: one position each)
                .having(sa.func.count() > 1)
            ).all()
        )


def _positions_of(engine: sa.Engine, drive_id: int) -> int:
    p = t.positions
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(p).where(p.c.drive_id == drive_id)
            ).scalar_one()
        )


def test_without_a_crash(migrated_engine: sa.Engine) -> None:
    run(migrated_engine, None, 0)
    (drive,) = _drives(migrated_engine)
    assert float(drive["distance"]) == pytest.approx(8.0)
    assert _duplicate_instants(migrated_engine) == []


# steps: 0 light, 1-3 parked looks, 4 the first look in gear (the drive opens), 5..43
# driving, 44 the first parked look (the drive closes), 45.. parked
@pytest.mark.parametrize("crash_after", [3, 4, 5, 6, 8, 43, 44])
@pytest.mark.parametrize("gap", [0, 1, 4])
def test_a_crash_early_in_a_drive_leaves_one_drive(
    migrated_engine: sa.Engine, crash_after: int, gap: int
) -> None:
    run(migrated_engine, crash_after, gap)
    drives = _drives(migrated_engine)
    assert len(drives) == 1, [(d["id"], d["start_km"], d["end_km"]) for d in drives]
    (drive,) = drives
    assert drive["end_date"] is not None
    assert float(drive["start_km"]) == pytest.approx(1000.0)
    assert float(drive["distance"]) == pytest.approx(8.0)
    with migrated_engine.connect() as conn:
        in_drives = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.positions)
            .where(t.positions.c.drive_id.is_not(None))
        ).scalar_one()
    assert _positions_of(migrated_engine, drive["id"]) == in_drives
    assert _duplicate_instants(migrated_engine) == []


def test_a_start_right_after_a_drive_closed_parks_the_car_at_the_drive_end(
    migrated_engine: sa.Engine,
) -> None:
    car_id = register_car(migrated_engine, CarIdentity(1, 2, VIN), T0).car_id
    events = commute()
    logger = Logger(migrated_engine, car_id, events[0][0])
    for at, event in events[:45]:
        logger.handle(event, at)
    assert logger.state.drive is None and len(_drives(migrated_engine)) == 1
    rows = read_open_rows(migrated_engine, car_id)
    assert rows.parked is not None and rows.parked.odometer_km == pytest.approx(1008.0)
    (drive,) = _drives(migrated_engine)
    assert rows.parked_at == drive["end_date"].replace(tzinfo=UTC)
    assert rows.parked.ideal_range_km == pytest.approx(392.0)


def test_the_open_drive_resumes_with_its_two_late_start_positions(
    migrated_engine: sa.Engine,
) -> None:
    """The case of the crash suite: the drive opened late (parked look + first look in
    gear, two positions), committed, then the process died."""
    car_id = register_car(migrated_engine, CarIdentity(1, 2, VIN), T0).car_id
    events = commute()
    logger = Logger(migrated_engine, car_id, events[0][0])
    for at, event in events[:5]:
        logger.handle(event, at)
    assert logger.state.drive is not None and logger.state.drive.positions == 2
    rows = read_open_rows(migrated_engine, car_id)
    assert rows.drive is not None and rows.drive.positions == 2
    state, refs = resume(CarState(VIN), rows)
    assert state.drive is not None and refs.drives[state.drive.ref] == rows.drive_id
    assert state.drive.start_odometer_km == pytest.approx(1000.0)
    # the parked look the drive began from stays the baseline, not a look inside the drive
    assert state.parked is not None and state.parked.odometer_km == pytest.approx(1000.0)
    assert replace(state.drive, ref=0) == replace(logger.state.drive, ref=0)


def _asleep(at: datetime) -> tuple[datetime, Event]:
    obs = Observation(VIN, at, Source.REST, VehicleState(connectivity=Connectivity.ASLEEP))
    return at, FetchedLight(obs)


def test_a_drive_left_open_and_found_asleep_is_one_drive_with_all_its_distance(
    migrated_engine: sa.Engine,
) -> None:
    """The long crash suite's case: killed mid-drive, back when the car sleeps (closed at
    its last position), the car's next look hours later finds it 5 km further on."""
    car_id = register_car(migrated_engine, CarIdentity(1, 2, VIN), T0).car_id
    events = commute()
    logger = Logger(migrated_engine, car_id, events[0][0])
    for at, event in events[:20]:  # 16 looks in gear: 3.2 km in 4 min
        logger.handle(event, at)
    last = events[19][0]
    back = last + timedelta(hours=1)
    logger = Logger(migrated_engine, car_id, back)
    logger.handle(_asleep(back)[1], back)
    wake = back + timedelta(hours=5)
    logger.handle(_light(wake)[1], wake)
    logger.handle(_full(wake, 1008.0, driving=False)[1], wake)
    drives = _drives(migrated_engine)
    assert len(drives) == 1, [(d["start_date"], d["end_date"], d["distance"]) for d in drives]
    (drive,) = drives
    assert float(drive["start_km"]) == pytest.approx(1000.0)
    assert float(drive["distance"]) == pytest.approx(8.0)
    # the 4.8 km left at its own pace (48 km/h in gear, a little less from its late
    # start): some 6 minutes after its last position, not at the look that found it
    end = drive["end_date"].replace(tzinfo=UTC)
    assert timedelta(minutes=6) <= end - last <= timedelta(minutes=6, seconds=10)
    assert _duplicate_instants(migrated_engine) == []


def test_a_drive_entirely_while_down_is_placed_after_the_stored_asleep_look(
    migrated_engine: sa.Engine,
) -> None:
    """Parked, seen asleep, then fleetlog is down while the car drives 5 km: the first look
    after the restart finds it parked further on. One drive, in the middle of the time the
    car can have driven: after it was last seen asleep, not after it parked."""
    car_id = register_car(migrated_engine, CarIdentity(1, 2, VIN), T0).car_id
    events = commute()
    logger = Logger(migrated_engine, car_id, events[0][0])
    for at, event in events:
        logger.handle(event, at)
    (commute_drive,) = _drives(migrated_engine)
    asleep = events[-1][0] + timedelta(hours=4)
    logger.handle(_asleep(asleep)[1], asleep)
    back = asleep + timedelta(hours=2)
    logger = Logger(migrated_engine, car_id, back)
    logger.handle(_light(back)[1], back)
    logger.handle(_full(back, 1013.0, driving=False)[1], back)
    first, hop = _drives(migrated_engine)
    assert first["id"] == commute_drive["id"]
    assert float(hop["distance"]) == pytest.approx(5.0)
    assert _positions_of(migrated_engine, hop["id"]) == 2
    start, end = hop["start_date"].replace(tzinfo=UTC), hop["end_date"].replace(tzinfo=UTC)
    assert asleep < start < end < back
    assert (start - asleep) - (back - end) <= timedelta(seconds=1)  # the middle of the gap
