"""Every table stores and returns representative values unchanged, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from fleetlog.store import tables as t

US = datetime(2024, 5, 1, 12, 30, 45, 123456)  # event timestamps keep microseconds
LATER = datetime(2024, 5, 1, 13, 5, 0, 999999)
SEC = datetime(2024, 5, 1, 12, 30, 45)  # timestamp(0) columns hold whole seconds


@pytest.fixture
def conn(migrated_engine: sa.Engine) -> Iterator[sa.Connection]:
    with migrated_engine.connect() as connection:
        yield connection


def _insert(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> int:
    """Insert, read the row back, compare every given value; return the new id."""
    new_id = conn.execute(table.insert().values(values).returning(table.c.id)).scalar_one()
    row = conn.execute(sa.select(table).where(table.c.id == new_id)).mappings().one()
    got = {k: row[k] for k in values}
    assert got == values
    for key, value in values.items():
        assert type(row[key]) is type(value), key
    return int(new_id)


def _car(conn: sa.Connection, n: int = 1) -> int:
    settings_id = conn.execute(
        t.car_settings.insert().values().returning(t.car_settings.c.id)
    ).scalar_one()
    return _insert(
        conn,
        t.cars,
        {
            "eid": 1_492_931_337_000_000 + n,
            "vid": 2_252_000_000 + n,
            "model": "3",
            "efficiency": 0.153,
            "inserted_at": SEC,
            "updated_at": SEC,
            "vin": f"5YJ3E7EB7KF00000{n}",
            "name": "Blue",
            "trim_badging": "74D",
            "settings_id": settings_id,
            "exterior_color": "DeepBlue",
            "spoiler_type": "None",
            "wheel_type": "Pinwheel18",
            "display_priority": 2,
            "marketing_name": "LR AWD",
        },
    )


def test_every_table_round_trips(conn: sa.Connection) -> None:
    cs_id = _insert(
        conn,
        t.car_settings,
        {
            "suspend_min": 30,
            "suspend_after_idle_min": 10,
            "req_not_unlocked": True,
            "free_supercharging": True,
            "use_streaming_api": False,
            "enabled": False,
            "lfp_battery": True,
        },
    )
    assert cs_id >= 1
    car = _car(conn)

    conn.execute(
        t.settings.update().values(
            unit_of_length="mi",
            unit_of_temperature="F",
            preferred_range="ideal",
            unit_of_pressure="psi",
            base_url="https://fleetlog.example",
            theme_mode="dark",
        )
    )
    s = conn.execute(sa.select(t.settings)).mappings().one()
    assert (s["unit_of_length"], s["unit_of_temperature"], s["preferred_range"]) == (
        "mi",
        "F",
        "ideal",
    )
    assert (s["unit_of_pressure"], s["theme_mode"]) == ("psi", "dark")

    raw = {"place_id": 123, "address": {"city": "Berlin", "road": "Unter den Linden"}, "x": [1.5]}
    address = _insert(
        conn,
        t.addresses,
        {
            "display_name": "Unter den Linden 1, 10117 Berlin, Deutschland " + "x" * 400,
            "latitude": Decimal("52.517037"),
            "longitude": Decimal("13.388860"),
            "name": "Humboldt",
            "house_number": "1",
            "road": "Unter den Linden",
            "neighbourhood": "Mitte",
            "city": "Berlin",
            "county": "Berlin",
            "postcode": "10117",
            "state": "Berlin",
            "state_district": "Mitte",
            "country": "Deutschland",
            "raw": raw,
            "inserted_at": SEC,
            "updated_at": SEC,
            "osm_id": 9_876_543_210,
            "osm_type": "way",
        },
    )
    geofence = _insert(
        conn,
        t.geofences,
        {
            "name": "Home",
            "latitude": Decimal("-33.865143"),
            "longitude": Decimal("-151.209900"),
            "radius": 50,
            "inserted_at": SEC,
            "updated_at": SEC,
            "cost_per_unit": Decimal("0.3915"),
            "session_fee": Decimal("123456789012.34"),
            "billing_type": "per_minute",
        },
    )
    position = _insert(
        conn,
        t.positions,
        {
            "date": US,
            "latitude": Decimal("52.520008"),
            "longitude": Decimal("113.404954"),
            "speed": 132,
            "power": -60,
            "odometer": 12345.678,
            "ideal_battery_range_km": Decimal("312.55"),
            "battery_level": 80,
            "outside_temp": Decimal("-12.5"),
            "elevation": 34,
            "fan_status": 4,
            "driver_temp_setting": Decimal("21.5"),
            "passenger_temp_setting": Decimal("20.0"),
            "is_climate_on": True,
            "is_rear_defroster_on": False,
            "is_front_defroster_on": False,
            "car_id": car,
            "drive_id": None,
            "inside_temp": Decimal("22.3"),
            "battery_heater": False,
            "battery_heater_on": False,
            "battery_heater_no_power": None,
            "est_battery_range_km": Decimal("280.10"),
            "rated_battery_range_km": Decimal("330.00"),
            "usable_battery_level": 79,
            "tpms_pressure_fl": Decimal("2.9"),
            "tpms_pressure_fr": Decimal("2.9"),
            "tpms_pressure_rl": Decimal("3.0"),
            "tpms_pressure_rr": Decimal("3.1"),
        },
    )
    drive = _insert(
        conn,
        t.drives,
        {
            "start_date": US,
            "end_date": LATER,
            "outside_temp_avg": Decimal("11.2"),
            "speed_max": 140,
            "power_max": 250,
            "power_min": -75,
            "start_ideal_range_km": Decimal("400.00"),
            "end_ideal_range_km": Decimal("350.25"),
            "start_km": 12000.5,
            "end_km": 12045.75,
            "distance": 45.25,
            "duration_min": 35,
            "car_id": car,
            "inside_temp_avg": Decimal("21.0"),
            "start_address_id": address,
            "end_address_id": address,
            "start_rated_range_km": Decimal("380.00"),
            "end_rated_range_km": Decimal("330.50"),
            "start_position_id": position,
            "end_position_id": position,
            "start_geofence_id": geofence,
            "end_geofence_id": None,
            "ascent": 120,
            "descent": 32767,
        },
    )
    conn.execute(t.positions.update().where(t.positions.c.id == position).values(drive_id=drive))
    cp = _insert(
        conn,
        t.charging_processes,
        {
            "start_date": US,
            "end_date": None,
            "charge_energy_added": Decimal("54.32"),
            "start_ideal_range_km": Decimal("100.00"),
            "end_ideal_range_km": Decimal("400.00"),
            "start_battery_level": 20,
            "end_battery_level": 90,
            "duration_min": 75,
            "outside_temp_avg": Decimal("4.5"),
            "car_id": car,
            "position_id": position,
            "address_id": address,
            "start_rated_range_km": Decimal("99.99"),
            "end_rated_range_km": Decimal("399.99"),
            "geofence_id": geofence,
            "charge_energy_used": Decimal("58.01"),
            "cost": Decimal("123456789012.34"),
        },
    )
    _insert(
        conn,
        t.charges,
        {
            "date": LATER,
            "battery_heater_on": False,
            "battery_level": 55,
            "charge_energy_added": Decimal("12.50"),
            "charger_actual_current": 16,
            "charger_phases": 3,
            "charger_pilot_current": 16,
            "charger_power": 11,
            "charger_voltage": 230,
            "fast_charger_present": False,
            "conn_charge_cable": "IEC",
            "fast_charger_brand": "<invalid>",
            "fast_charger_type": "ACSingleWireCAN",
            "ideal_battery_range_km": Decimal("250.75"),
            "not_enough_power_to_heat": None,
            "outside_temp": Decimal("7.0"),
            "charging_process_id": cp,
            "battery_heater": False,
            "battery_heater_no_power": False,
            "rated_battery_range_km": Decimal("240.00"),
            "usable_battery_level": 54,
        },
    )
    for state in ("online", "offline", "asleep"):
        _insert(
            conn,
            t.states,
            {"state": state, "start_date": US, "end_date": LATER, "car_id": car},
        )
    _insert(
        conn,
        t.updates,
        {"start_date": US, "end_date": LATER, "version": "2024.14.9 abcdef", "car_id": car},
    )
    _insert(
        conn,
        t.tokens,
        {
            "inserted_at": SEC,
            "updated_at": SEC,
            "refresh": b"\x01\x0aAES.GCM.V1" + bytes(range(256)),
            "access": b"\x00\xff" * 100,
        },
    )
    run = _insert(
        conn,
        t.import_runs,
        {
            "source_key": "teslafi:/import",
            "status": "running",
            "timezone": "Europe/Berlin",
            "date_limit": US,
            "date_limit_captured": True,
            "car_id": car,
            "inserted_at": US,
            "updated_at": LATER,
        },
    )
    _insert(
        conn,
        t.import_file_checkpoints,
        {
            "run_id": run,
            "file_name": "TeslaFi52024.csv",
            "file_fingerprint": "sha256:abc",
            "completed_at": LATER,
            "inserted_at": US,
            "updated_at": LATER,
        },
    )
    _insert(
        conn,
        t.import_rejections,
        {
            "run_id": run,
            "file_name": "TeslaFi52024.csv",
            "file_fingerprint": "sha256:abc",
            "row": 42,
            "reason": "invalid_fields",
            "fields": ["latitude", "longitude", "Date"],
            "inserted_at": US,
            "updated_at": LATER,
        },
    )
    conn.execute(t.fleetlog_meta.insert().values(key="test", value="ünïcode ✓", updated_at=US))
    assert (
        conn.execute(
            sa.select(t.fleetlog_meta.c.value).where(t.fleetlog_meta.c.key == "test")
        ).scalar_one()
        == "ünïcode ✓"
    )
    conn.commit()


def test_server_defaults(conn: sa.Connection) -> None:
    cs = conn.execute(t.car_settings.insert().values().returning(t.car_settings)).mappings().one()
    assert dict(cs) == {
        "id": cs["id"],
        "suspend_min": 21,
        "suspend_after_idle_min": 15,
        "req_not_unlocked": False,
        "free_supercharging": False,
        "use_streaming_api": True,
        "enabled": True,
        "lfp_battery": False,
    }
    geofence = conn.execute(
        t.geofences.insert()
        .values(name="Work", latitude=1, longitude=2, inserted_at=SEC, updated_at=SEC)
        .returning(t.geofences.c.radius, t.geofences.c.billing_type)
    ).one()
    assert tuple(geofence) == (25, "per_kwh")
    run = conn.execute(
        t.import_runs.insert()
        .values(source_key="k", status="complete", timezone="UTC", inserted_at=US, updated_at=US)
        .returning(t.import_runs.c.id, t.import_runs.c.date_limit_captured)
    ).one()
    assert run[1] is False
    fields = conn.execute(
        t.import_rejections.insert()
        .values(
            run_id=run[0],
            file_name="f",
            file_fingerprint="x",
            row=1,
            reason="parse_error",
            inserted_at=US,
            updated_at=US,
        )
        .returning(t.import_rejections.c.fields)
    ).scalar_one()
    assert fields == []


def test_raw_sql_insert_uses_id_default(conn: sa.Connection) -> None:
    """Tools other than fleetlog (psql, TeslaMate) insert without naming the id."""
    conn.execute(
        sa.text("INSERT INTO car_settings (suspend_min) VALUES (5)"),
    )
    conn.execute(
        sa.text(
            "INSERT INTO geofences (name, latitude, longitude, inserted_at, updated_at)"
            " VALUES ('a', 1, 2, '2024-01-01 00:00:00', '2024-01-01 00:00:00')"
        )
    )
    ids = conn.execute(sa.select(t.geofences.c.id)).scalars().all()
    assert ids == [1]


def test_one_open_state_per_car(conn: sa.Connection) -> None:
    car1, car2 = _car(conn, 1), _car(conn, 2)
    ins = t.states.insert()
    conn.execute(ins.values(state="online", start_date=US, end_date=LATER, car_id=car1))
    conn.execute(ins.values(state="asleep", start_date=US, end_date=LATER, car_id=car1))
    conn.execute(ins.values(state="online", start_date=LATER, end_date=None, car_id=car1))
    conn.execute(ins.values(state="online", start_date=LATER, end_date=None, car_id=car2))
    conn.commit()
    with pytest.raises(sa.exc.IntegrityError):
        conn.execute(ins.values(state="asleep", start_date=LATER, end_date=None, car_id=car1))
    conn.rollback()
    # Closing the open state frees the slot.
    conn.execute(
        t.states.update()
        .where(t.states.c.car_id == car1, t.states.c.end_date.is_(None))
        .values(end_date=LATER)
    )
    conn.execute(ins.values(state="asleep", start_date=LATER, end_date=None, car_id=car1))
    conn.commit()


@pytest.mark.parametrize(
    ("table", "values"),
    [
        ("states", {"state": "online", "start_date": LATER, "end_date": US}),
        ("updates", {"version": "1", "start_date": LATER, "end_date": US}),
        ("states", {"state": "driving", "start_date": US, "end_date": None}),
    ],
)
def test_check_constraints(conn: sa.Connection, table: str, values: dict[str, Any]) -> None:
    car = _car(conn)
    conn.commit()
    with pytest.raises((sa.exc.IntegrityError, sa.exc.DataError, sa.exc.StatementError)):
        conn.execute(t.table_by_name(table).insert().values(car_id=car, **values))
    conn.rollback()


def test_charger_phases_must_be_positive(conn: sa.Connection) -> None:
    car = _car(conn)
    pos = conn.execute(
        t.positions.insert()
        .values(date=US, latitude=1, longitude=2, car_id=car)
        .returning(t.positions.c.id)
    ).scalar_one()
    cp = conn.execute(
        t.charging_processes.insert()
        .values(start_date=US, car_id=car, position_id=pos)
        .returning(t.charging_processes.c.id)
    ).scalar_one()
    conn.commit()
    charge = {
        "date": US,
        "charge_energy_added": 1,
        "charger_power": 11,
        "ideal_battery_range_km": 100,
        "charging_process_id": cp,
    }
    conn.execute(t.charges.insert().values(charger_phases=None, **charge))
    with pytest.raises(sa.exc.IntegrityError):
        conn.execute(t.charges.insert().values(charger_phases=0, **charge))
    conn.rollback()


def test_foreign_key_actions(conn: sa.Connection) -> None:
    car = _car(conn)
    pos = conn.execute(
        t.positions.insert()
        .values(date=US, latitude=1, longitude=2, car_id=car)
        .returning(t.positions.c.id)
    ).scalar_one()
    drive = conn.execute(
        t.drives.insert()
        .values(start_date=US, car_id=car, start_position_id=pos)
        .returning(t.drives.c.id)
    ).scalar_one()
    conn.execute(t.positions.update().values(drive_id=drive))
    conn.execute(t.charging_processes.insert().values(start_date=US, car_id=car, position_id=pos))
    conn.commit()

    # charging_processes.position_id has no ON DELETE action: the position is protected.
    with pytest.raises(sa.exc.IntegrityError):
        conn.execute(t.positions.delete().where(t.positions.c.id == pos))
    conn.rollback()

    # Deleting a drive detaches its positions (SET NULL).
    conn.execute(t.drives.delete().where(t.drives.c.id == drive))
    assert conn.execute(sa.select(t.positions.c.drive_id)).scalar_one() is None

    # Deleting the car's settings deletes the car, and the car everything that is its.
    conn.execute(t.car_settings.delete())
    for table in (t.cars, t.positions, t.charging_processes):
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0
    conn.commit()
