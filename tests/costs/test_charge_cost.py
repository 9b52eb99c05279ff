"""Charge cost against the database (SQLite and PostgreSQL): the close hook, manual
costs, free Supercharging, and recomputing past charges when a tariff changes."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from fleetlog.costs import (
    ChargeCostCalculator,
    Tariff,
    clear_manual_cost,
    get_tariff,
    recompute_costs,
    set_manual_cost,
    set_tariff,
    windows_of,
)
from fleetlog.logbook.aggregates import charge_aggregates
from fleetlog.logbook.records import ChargeSample
from fleetlog.places import GeofenceSpec, create_geofence
from fleetlog.store import tables as t

D = Decimal
HOME = (52.52, 13.405)


def _car(conn: sa.Connection, *, free_supercharging: bool = False) -> int:
    settings_id = conn.execute(
        sa.insert(t.car_settings)
        .values(free_supercharging=free_supercharging)
        .returning(t.car_settings.c.id)
    ).scalar_one()
    now = datetime(2026, 1, 1)
    return int(
        conn.execute(
            sa.insert(t.cars)
            .values(
                eid=10 + settings_id,
                vid=20 + settings_id,
                vin=f"VIN{settings_id}",
                settings_id=settings_id,
                inserted_at=now,
                updated_at=now,
            )
            .returning(t.cars.c.id)
        ).scalar_one()
    )


def _charge(
    conn: sa.Connection,
    car_id: int,
    start: datetime,
    hours: float,
    kw: float,
    *,
    charger_type: str | None = None,
    close: bool = True,
) -> tuple[int, list[ChargeSample]]:
    """A charging process at HOME with a sample a minute (UTC times)."""
    pos = conn.execute(
        sa.insert(t.positions)
        .values(car_id=car_id, date=start, latitude=D("52.520000"), longitude=D("13.405000"))
        .returning(t.positions.c.id)
    ).scalar_one()
    pid = conn.execute(
        sa.insert(t.charging_processes)
        .values(car_id=car_id, position_id=pos, start_date=start)
        .returning(t.charging_processes.c.id)
    ).scalar_one()
    samples = []
    for i in range(round(hours * 60) + 1):
        s = ChargeSample(
            date=start + timedelta(minutes=i),
            charge_energy_added=round(kw * i / 60, 2),
            charger_power=kw,
            ideal_battery_range_km=300.0,
            fast_charger_type=charger_type,
        )
        samples.append(s)
        conn.execute(
            sa.insert(t.charges).values(
                charging_process_id=pid,
                date=s.date,
                charge_energy_added=s.charge_energy_added,
                charger_power=int(kw),
                ideal_battery_range_km=300,
                fast_charger_type=charger_type,
            )
        )
    if close:
        a = charge_aggregates(samples)
        conn.execute(
            sa.update(t.charging_processes)
            .where(t.charging_processes.c.id == pid)
            .values(
                end_date=a.end_date,
                charge_energy_added=a.charge_energy_added,
                charge_energy_used=a.charge_energy_used,
                duration_min=a.duration_min,
            )
        )
    return pid, samples


def _cost(engine: sa.Engine, pid: int) -> Decimal | None:
    cp = t.charging_processes
    with engine.connect() as conn:
        value = conn.execute(sa.select(cp.c.cost).where(cp.c.id == pid)).scalar_one()
    return None if value is None else D(str(value))


def test_close_hook_prices_time_of_use(migrated_engine: sa.Engine) -> None:
    calc = ChargeCostCalculator("Europe/Berlin")
    with migrated_engine.begin() as conn:
        car = _car(conn)
        home, _ = create_geofence(
            conn, GeofenceSpec("Home", *HOME, radius=50, session_fee=D("1.00"))
        )
        set_tariff(
            conn,
            home.id,
            Tariff("EUR", windows_of(["mon-fri 22:00-06:00 0.20"]), default_price=D("0.40")),
        )
        # Monday 21:00–23:00 CEST, still open: the hook runs before the row is closed
        _, samples = _charge(conn, car, datetime(2026, 5, 4, 19), 2.0, 11.0, close=False)
        cost = calc.cost(conn, car, charge_aggregates(samples), home.id)
        assert cost == 7.60  # 11 × 0.40 + 11 × 0.20 + 1
        # outside every geofence: unknown
        assert calc.cost(conn, car, charge_aggregates(samples), None) is None


def test_close_hook_flat_and_free_supercharging(migrated_engine: sa.Engine) -> None:
    calc = ChargeCostCalculator()
    with migrated_engine.begin() as conn:
        free_car = _car(conn, free_supercharging=True)
        paying_car = _car(conn)
        sc, _ = create_geofence(
            conn,
            GeofenceSpec("Supercharger", 48.1, 11.5, radius=80, cost_per_unit=D("0.52")),
        )
        _, free = _charge(conn, free_car, datetime(2026, 5, 4, 9), 0.5, 100.0, charger_type="Tesla")
        _, paid = _charge(
            conn, paying_car, datetime(2026, 5, 4, 12), 0.5, 100.0, charger_type="Tesla"
        )
        assert calc.cost(conn, free_car, charge_aggregates(free), None) == 0.0
        assert calc.cost(conn, free_car, charge_aggregates(free), sc.id) == 0.0
        assert calc.cost(conn, paying_car, charge_aggregates(paid), sc.id) == 26.0


def test_tariff_change_recomputes_past_charges_with_a_dry_run(migrated_engine: sa.Engine) -> None:
    engine = migrated_engine
    with engine.begin() as conn:
        car = _car(conn)
        _day, _ = _charge(conn, car, datetime(2026, 5, 4, 10), 1.0, 10.0)  # Mon noon CEST
        _night, _ = _charge(conn, car, datetime(2026, 5, 4, 21), 1.0, 10.0)  # 23:00 CEST
        _manual, _ = _charge(conn, car, datetime(2026, 5, 5, 21), 1.0, 10.0)
        home, relabelled = create_geofence(
            conn, GeofenceSpec("Home", *HOME, radius=50, cost_per_unit=D("0.30"))
        )
        assert len(relabelled.charge_ids) == 3
        # the first pricing: flat 0.30/kWh
        first = recompute_costs(conn, geofence_id=home.id, default_time_zone="Europe/Berlin")
        assert [c.new for c in first] == [D("3.00")] * 3
        set_manual_cost(conn, _manual, "absolute", D("9.99"))
    assert _cost(engine, _manual) == D("9.99")

    night_rate = Tariff("EUR", windows_of(["* 22:00-06:00 0.10"]))

    # dry run: the diff is reported, nothing is written
    with engine.connect() as conn:
        tx = conn.begin()
        set_tariff(conn, home.id, night_rate)
        changes = recompute_costs(conn, geofence_id=home.id, default_time_zone="Europe/Berlin")
        tx.rollback()
    assert [(c.process_id, c.old, c.new) for c in changes] == [(_night, D("3.00"), D("1.00"))]
    assert _cost(engine, _night) == D("3.00")
    with engine.connect() as conn:
        assert get_tariff(conn, home.id) is None

    # for real
    with engine.begin() as conn:
        set_tariff(conn, home.id, night_rate)
        changes = recompute_costs(conn, geofence_id=home.id, default_time_zone="Europe/Berlin")
    assert len(changes) == 1
    assert _cost(engine, _night) == D("1.00")
    assert _cost(engine, _day) == D("3.00")  # the geofence's flat price outside the window
    assert _cost(engine, _manual) == D("9.99")  # the user's cost stands

    with engine.begin() as conn:
        assert clear_manual_cost(conn, _manual, default_time_zone="Europe/Berlin") == D("1.00")
        assert recompute_costs(conn, geofence_id=home.id, default_time_zone="Europe/Berlin") == []
        set_manual_cost(conn, _manual, "per_kwh", D("0.25"))
    assert _cost(engine, _manual) == D("2.50")


def test_tariff_storage_round_trip(migrated_engine: sa.Engine) -> None:
    tariff = Tariff(
        "CHF",
        windows_of(["06-01..09-30 sat,sun 10:00-16:00 0.05", "mon-fri 22:00-06:00 0.21"]),
        default_price=D("0.3350"),
        time_zone="Europe/Zurich",
    )
    with migrated_engine.begin() as conn:
        fence, _ = create_geofence(conn, GeofenceSpec("Chalet", 46.5, 7.9))
        set_tariff(conn, fence.id, tariff)
        assert get_tariff(conn, fence.id) == tariff
        shorter = Tariff("CHF", windows_of(["* 00:00-24:00 0.30"]))
        set_tariff(conn, fence.id, shorter)
        assert get_tariff(conn, fence.id) == shorter
