"""The logbook's writes on SQLite and PostgreSQL: effects in, TeslaMate rows out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from fleetlog.logbook.records import ChargeSample, Position
from fleetlog.logbook.resume import read_open_rows, resume
from fleetlog.logbook.writer import CarIdentity, CarLogbook, register_car
from fleetlog.model.observation import VehicleState
from fleetlog.store import tables as t
from fleetlog.vehicle import effects as fx
from fleetlog.vehicle.machine import CarState

T0 = datetime(2025, 3, 3, 7, 0, tzinfo=UTC)
VIN = "5YJ3E7EB0KF000001"


def _car(engine: sa.Engine) -> int:
    identity = CarIdentity(eid=101, vid=202, vin=VIN, name="Blue")
    return register_car(engine, identity, T0).car_id


def _pos(minute: float, km: float, **extra: object) -> Position:
    return Position(
        date=T0 + timedelta(minutes=minute),
        latitude=48.1 + km / 100,
        longitude=11.5,
        odometer=1000.0 + km,
        speed=50.0,
        power=12.4,
        elevation=500.0 + km * 10,
        ideal_battery_range_km=400.0 - km,
        rated_battery_range_km=380.0 - km,
        battery_level=80,
        outside_temp=5.0,
        **extra,  # type: ignore[arg-type]
    )


def _rows(engine: sa.Engine, table: sa.Table) -> list[sa.RowMapping]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.id)).mappings())


def test_register_car_inserts_once_then_updates_by_vin(migrated_engine: sa.Engine) -> None:
    first = register_car(migrated_engine, CarIdentity(101, 202, VIN, name="Blue"), T0)
    again = register_car(
        migrated_engine, CarIdentity(101, 202, VIN, name="Red", model="3", trim_badging="74d"), T0
    )
    assert again.car_id == first.car_id
    (car,) = _rows(migrated_engine, t.cars)
    assert (car["eid"], car["vid"], car["vin"], car["name"], car["model"]) == (
        101,
        202,
        VIN,
        "Red",
        "3",
    )
    assert first.settings.suspend_min == 21 and first.settings.enabled
    assert len(_rows(migrated_engine, t.car_settings)) == 1


def test_a_drive_closes_with_its_aggregates(migrated_engine: sa.Engine) -> None:
    book = CarLogbook(migrated_engine, _car(migrated_engine))
    book.apply([fx.OpenDrive(1, _pos(0, 0)), fx.InsertPosition(_pos(0, 0), 1)])
    book.apply([fx.InsertPosition(_pos(5, 4.0), 1)])
    book.apply([fx.InsertPosition(_pos(10, 8.5), 1), fx.CloseDrive(1, _pos(10, 8.5).date, "P")])
    (drive,) = _rows(migrated_engine, t.drives)
    assert drive["distance"] == pytest.approx(8.5)
    assert drive["start_km"] == pytest.approx(1000.0) and drive["end_km"] == pytest.approx(1008.5)
    assert drive["duration_min"] == 10 and drive["speed_max"] == 50 and drive["power_max"] == 12
    assert float(drive["start_ideal_range_km"]) == pytest.approx(400.0)
    assert float(drive["end_rated_range_km"]) == pytest.approx(371.5)
    assert drive["ascent"] == 85 and drive["descent"] == 0
    assert drive["end_date"].replace(tzinfo=UTC) == T0 + timedelta(minutes=10)
    positions = _rows(migrated_engine, t.positions)
    assert drive["start_position_id"] == positions[0]["id"]
    assert drive["end_position_id"] == positions[-1]["id"]
    assert {p["drive_id"] for p in positions} == {drive["id"]}
    assert book.refs.drives == {}


def test_a_phantom_drive_is_deleted_and_its_positions_kept(migrated_engine: sa.Engine) -> None:
    book = CarLogbook(migrated_engine, _car(migrated_engine))
    book.apply([fx.OpenDrive(1, _pos(0, 0)), fx.InsertPosition(_pos(0, 0), 1)])
    book.apply([fx.InsertPosition(_pos(1, 0.001), 1), fx.CloseDrive(1, T0, "P")])
    assert _rows(migrated_engine, t.drives) == []
    assert [p["drive_id"] for p in _rows(migrated_engine, t.positions)] == [None, None]


def test_a_drive_closed_for_now_takes_the_distance_settled_later(
    migrated_engine: sa.Engine,
) -> None:
    book = CarLogbook(migrated_engine, _car(migrated_engine))
    book.apply([fx.OpenDrive(1, _pos(0, 0)), fx.InsertPosition(_pos(0, 0), 1)])
    book.apply([fx.InsertPosition(_pos(5, 4.0), 1), fx.CloseDrive(1, T0, "asleep", final=False)])
    (drive,) = _rows(migrated_engine, t.drives)
    assert drive["distance"] == pytest.approx(4.0) and drive["end_date"] is not None
    book.apply([fx.InsertPosition(_pos(10, 8.5), 1), fx.CloseDrive(1, T0, "parked")])
    (drive,) = _rows(migrated_engine, t.drives)
    assert drive["distance"] == pytest.approx(8.5)
    assert drive["end_date"].replace(tzinfo=UTC) == T0 + timedelta(minutes=10)
    assert book.refs.drives == {}


def test_a_phantom_closed_for_now_leaves_nothing_to_settle(migrated_engine: sa.Engine) -> None:
    book = CarLogbook(migrated_engine, _car(migrated_engine))
    book.apply([fx.OpenDrive(1, _pos(0, 0)), fx.InsertPosition(_pos(0, 0), 1)])
    book.apply([fx.InsertPosition(_pos(1, 0.001), 1), fx.CloseDrive(1, T0, "P", final=False)])
    assert _rows(migrated_engine, t.drives) == [] and book.refs.drives == {}
    book.apply([fx.InsertPosition(_pos(10, 8.5), 1), fx.CloseDrive(1, T0, "parked")])
    assert [p["drive_id"] for p in _rows(migrated_engine, t.positions)] == [None] * 3


def _sample(minute: float, added: float, level: int, rng: float) -> ChargeSample:
    return ChargeSample(
        date=T0 + timedelta(minutes=minute),
        charge_energy_added=added,
        charger_power=11.0,
        ideal_battery_range_km=rng,
        rated_battery_range_km=rng,
        battery_level=level,
        charger_actual_current=16,
        charger_voltage=230,
        charger_phases=3,
    )


def _charge(book: CarLogbook, ref: int, start: float, added: float) -> None:
    at = T0 + timedelta(minutes=start)
    book.apply([fx.OpenChargingProcess(ref, at, _pos(start, 0))])
    for i in range(4):
        # 0.2 kWh per km of range: the efficiency factor
        book.apply(
            [
                fx.AddChargeSample(
                    ref, _sample(start + i * 10, added * i / 3, 50 + i, 200 + added * i / 0.6)
                )
            ]
        )
    book.apply([fx.CloseChargingProcess(ref, at + timedelta(minutes=30), "Complete")])


def test_a_charge_closes_with_energy_and_the_efficiency_is_recalculated(
    migrated_engine: sa.Engine,
) -> None:
    car_id = _car(migrated_engine)
    book = CarLogbook(migrated_engine, car_id)
    _charge(book, 1, 0, 6.0)
    (cp,) = _rows(migrated_engine, t.charging_processes)
    assert float(cp["charge_energy_added"]) == pytest.approx(6.0)
    # too few samples to detect phases: charger_power (11 kW) for 30 min
    assert float(cp["charge_energy_used"]) == pytest.approx(5.5)
    assert (cp["start_battery_level"], cp["end_battery_level"], cp["duration_min"]) == (50, 53, 30)
    assert cp["position_id"] == _rows(migrated_engine, t.positions)[0]["id"]
    assert len(_rows(migrated_engine, t.charges)) == 4
    (car,) = _rows(migrated_engine, t.cars)
    assert car["efficiency"] is None  # one charge is not enough
    _charge(book, 2, 120, 9.0)
    (car,) = _rows(migrated_engine, t.cars)
    assert car["efficiency"] == pytest.approx(0.2)


def test_one_open_state_per_car_and_updates(migrated_engine: sa.Engine) -> None:
    book = CarLogbook(migrated_engine, _car(migrated_engine))
    book.apply([fx.StartState(1, fx.StateStatus.ONLINE, T0)])
    book.apply([fx.StartState(2, fx.StateStatus.ASLEEP, T0 + timedelta(minutes=20), closes=1)])
    book.apply(
        [
            fx.OpenUpdate(3, T0, "2025.2.1"),
            fx.CloseUpdate(3, T0 + timedelta(minutes=30), "2025.2.1"),
        ]
    )
    book.apply([fx.OpenUpdate(4, T0, "2025.8.1"), fx.CancelUpdate(4)])
    states = _rows(migrated_engine, t.states)
    assert [(s["state"], s["end_date"] is None) for s in states] == [
        ("online", False),
        ("asleep", True),
    ]
    assert states[0]["end_date"] == states[1]["start_date"]
    assert [
        (u["version"], u["end_date"] is not None) for u in _rows(migrated_engine, t.updates)
    ] == [("2025.2.1", True)]


def test_a_failed_step_writes_nothing_and_can_be_applied_again(migrated_engine: sa.Engine) -> None:
    from dataclasses import replace

    book = CarLogbook(migrated_engine, _car(migrated_engine))
    good = _sample(0, 0.0, 50, 200.0)
    bad = replace(good, charger_phases=0)  # CHECK (charger_phases > 0)
    opened = fx.OpenChargingProcess(1, T0, _pos(0, 0))
    with pytest.raises(sa.exc.IntegrityError):
        book.apply([opened, fx.AddChargeSample(1, good), fx.AddChargeSample(1, bad)])
    assert _rows(migrated_engine, t.charging_processes) == [] and book.refs.charges == {}
    assert _rows(migrated_engine, t.positions) == []
    book.apply([opened, fx.AddChargeSample(1, good)])
    assert len(_rows(migrated_engine, t.charges)) == 1 and 1 in book.refs.charges


def test_resume_restores_open_rows_and_the_parked_snapshot(migrated_engine: sa.Engine) -> None:
    car_id = _car(migrated_engine)
    book = CarLogbook(migrated_engine, car_id)
    book.apply([fx.StartState(7, fx.StateStatus.ONLINE, T0), fx.InsertPosition(_pos(-5, 0))])
    book.apply([fx.OpenUpdate(8, T0, "2025.2.1"), fx.CloseUpdate(8, T0, "2025.2.1")])
    book.apply([fx.OpenDrive(9, _pos(0, 0)), fx.InsertPosition(_pos(0, 0), 9)])
    book.apply([fx.InsertPosition(_pos(2, 1.5), 9)])
    rows = read_open_rows(migrated_engine, car_id)
    state, refs = resume(CarState(VIN), rows)
    assert state.drive is not None and state.drive.positions == 2
    assert state.drive.start_odometer_km == pytest.approx(1000.0)
    assert state.drive.last_odometer_km == pytest.approx(1001.5)
    assert state.drive.last_at == T0 + timedelta(minutes=2)
    assert refs.drives == {state.drive.ref: book.refs.drives[9]}
    assert state.state_row is not None and state.state_row.status is fx.StateStatus.ONLINE
    assert refs.states[state.state_row.ref] == book.refs.states[7]
    assert state.charge is None and state.update is None
    assert state.last_update_version == "2025.2.1"
    assert state.parked_at == T0 - timedelta(minutes=5)
    assert isinstance(state.parked, VehicleState) and state.parked.odometer_km == pytest.approx(
        1000.0
    )
    assert state.next_ref > max(state.drive.ref, state.state_row.ref)
    # the resumed logbook closes the drive under the restored ref
    resumed = CarLogbook(migrated_engine, car_id, refs=refs)
    resumed.apply(
        [fx.InsertPosition(_pos(4, 3.0), state.drive.ref), fx.CloseDrive(state.drive.ref, T0, "P")]
    )
    (drive,) = _rows(migrated_engine, t.drives)
    assert drive["distance"] == pytest.approx(3.0) and drive["end_date"] is not None


def test_a_drive_begun_on_a_streamed_reading_starts_at_the_exact_parked_odometer(
    migrated_engine: sa.Engine,
) -> None:
    """The legacy stream rounds the odometer to 0.1 mi (up to 80 m off); the parked
    vehicle_data reading just before the drive is exact and is the drive's start."""
    book = CarLogbook(migrated_engine, _car(migrated_engine))
    book.apply([fx.InsertPosition(_pos(-1, 0.0))])  # parked, vehicle_data

    def streamed(minute: float, km: float) -> Position:
        miles = round((1000.0 + km) / 1.609344, 1)
        return Position(
            date=T0 + timedelta(minutes=minute),
            latitude=48.1,
            longitude=11.5,
            odometer=miles * 1.609344,
            speed=50.0,
        )

    first = streamed(0, 0.0)
    assert abs(first.odometer - 1000.0) > 0.03  # type: ignore[operator]
    book.apply([fx.OpenDrive(1, first), fx.InsertPosition(first, 1)])
    book.apply([fx.InsertPosition(streamed(5, 4.0), 1)])
    book.apply([fx.InsertPosition(_pos(10, 8.0), 1), fx.CloseDrive(1, _pos(10, 8).date, "P")])
    (drive,) = _rows(migrated_engine, t.drives)
    assert float(drive["start_km"]) == pytest.approx(1000.0)
    assert float(drive["distance"]) == pytest.approx(8.0)
    positions = _rows(migrated_engine, t.positions)
    assert drive["start_position_id"] == positions[1]["id"]  # still the drive's own first row


def test_one_position_per_car_and_instant(migrated_engine: sa.Engine) -> None:
    """A drive's last look and the same look parked (a drive closed at a restart) are one
    row; a different reading at an instant already stored goes a millisecond later."""
    book = CarLogbook(migrated_engine, _car(migrated_engine))
    book.apply([fx.OpenDrive(1, _pos(0, 0)), fx.InsertPosition(_pos(0, 0), 1)])
    end = _pos(5, 4.0)
    book.apply([fx.InsertPosition(end, 1), fx.CloseDrive(1, end.date, "parked")])
    book.apply([fx.InsertPosition(end)])  # the same look, parked
    streamed = Position(date=end.date, latitude=48.2, longitude=11.6, odometer=1004.1)
    book.apply([fx.InsertPosition(streamed)])  # another reading at that instant
    positions = _rows(migrated_engine, t.positions)
    assert len(positions) == 3
    dates = [p["date"].replace(tzinfo=UTC) for p in positions]
    assert dates == [T0, end.date, end.date + timedelta(milliseconds=1)]
    (drive,) = _rows(migrated_engine, t.drives)
    assert [p["drive_id"] for p in positions] == [drive["id"], drive["id"], None]
    assert drive["distance"] == pytest.approx(4.0)


def test_a_parked_look_stored_first_joins_the_drive_that_starts_on_it(
    migrated_engine: sa.Engine,
) -> None:
    book = CarLogbook(migrated_engine, _car(migrated_engine))
    start = _pos(0, 0)
    book.apply([fx.InsertPosition(start)])
    book.apply([fx.OpenDrive(1, start), fx.InsertPosition(start, 1)])
    book.apply([fx.InsertPosition(_pos(5, 4.0), 1), fx.CloseDrive(1, _pos(5, 4).date, "P")])
    positions = _rows(migrated_engine, t.positions)
    (drive,) = _rows(migrated_engine, t.drives)
    assert len(positions) == 2 and {p["drive_id"] for p in positions} == {drive["id"]}
    assert drive["start_position_id"] == positions[0]["id"]


def test_a_late_charge_moved_starts_at_its_baseline_sample_moved(
    migrated_engine: sa.Engine,
) -> None:
    book = CarLogbook(migrated_engine, _car(migrated_engine))
    placed, better = T0 + timedelta(minutes=3), T0 + timedelta(minutes=2, seconds=50)
    book.apply([fx.OpenChargingProcess(1, placed, _pos(3, 0))])
    book.apply([fx.AddChargeSample(1, replace(_sample(3, 0.0, 50, 200), date=placed))])
    book.apply([fx.AddChargeSample(1, _sample(20, 2.75, 52, 214))])
    book.apply([fx.MoveChargeStart(1, better, placed)])
    book.apply([fx.AddChargeSample(1, _sample(40, 6.0, 55, 230))])
    book.apply([fx.CloseChargingProcess(1, T0 + timedelta(minutes=40), "Complete")])
    (cp,) = _rows(migrated_engine, t.charging_processes)
    assert cp["start_date"].replace(tzinfo=UTC) == better
    dates = [r["date"].replace(tzinfo=UTC) for r in _rows(migrated_engine, t.charges)]
    assert dates == [better, T0 + timedelta(minutes=20), T0 + timedelta(minutes=40)]
    assert float(cp["charge_energy_added"]) == pytest.approx(6.0)
