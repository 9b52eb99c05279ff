"""`fleetlog geofence` and `fleetlog tariff` as a user runs them (subprocess, both databases)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from fleetlog.store import make_engine
from fleetlog.store import tables as t


def fleetlog(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "TESLA_", "MQTT_"))
    }
    env.update({"FLEETLOG_DATABASE_URL": db_url, "TZ": "Europe/Berlin"})
    return subprocess.run(
        [sys.executable, "-m", "fleetlog", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_geofence_and_tariff_commands(db_url: str) -> None:
    out = fleetlog(
        db_url, "geofence", "add", "Home", "--lat", "52.52", "--lon", "13.405",
        "--radius", "50", "--cost-per-unit", "0.30",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "added geofence 1 'Home'" in out.stdout

    engine = make_engine(db_url, pool_size=1)
    try:
        with engine.begin() as conn:  # one closed charge at Home, Monday 23:00 CEST, 10 kWh
            sid = conn.execute(
                sa.insert(t.car_settings).values().returning(t.car_settings.c.id)
            ).scalar_one()
            now = datetime(2026, 1, 1)
            car = conn.execute(
                sa.insert(t.cars)
                .values(eid=1, vid=1, vin="V", settings_id=sid, inserted_at=now, updated_at=now)
                .returning(t.cars.c.id)
            ).scalar_one()
            pos = conn.execute(
                sa.insert(t.positions)
                .values(
                    car_id=car, date=now, latitude=Decimal("52.52"), longitude=Decimal("13.405")
                )
                .returning(t.positions.c.id)
            ).scalar_one()
            conn.execute(
                sa.insert(t.charging_processes).values(
                    car_id=car,
                    position_id=pos,
                    geofence_id=1,
                    start_date=datetime(2026, 5, 4, 21),
                    end_date=datetime(2026, 5, 4, 22),
                    charge_energy_added=10,
                    charge_energy_used=10,
                    duration_min=60,
                    cost=3,
                )
            )
    finally:
        engine.dispose()

    window = ["--window", "* 22:00-06:00 0.10", "--currency", "eur"]
    out = fleetlog(db_url, "tariff", "set", "Home", *window, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "3.00" in out.stdout and "1.00" in out.stdout
    assert "would change (dry run, nothing written)" in out.stdout

    out = fleetlog(db_url, "tariff", "set", "Home", *window)
    assert out.returncode == 0, out.stderr
    assert "1 charge cost(s) changed" in out.stdout

    out = fleetlog(db_url, "geofence", "list")
    assert "EUR, 1 window(s)" in out.stdout

    out = fleetlog(db_url, "tariff", "set", "Home", "--window", "nonsense", "--currency", "EUR")
    assert out.returncode == 1 and "is not a window" in out.stderr
