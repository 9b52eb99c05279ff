"""Places and costs through the running logger, in virtual time, on SQLite and PostgreSQL.

The commuter's Tuesday evening: a drive from home to the supermarket, one back, then an
AC charge at home. A priced "Home" geofence is drawn first. The drive that ends at home
must carry the geofence and an address; the charge must carry both and a cost; the live
summary must name the geofence the car stands in.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import sqlalchemy as sa
from _live import HOME_PRICE, running

from fleetlog.store import tables as t


async def test_drive_home_gets_geofence_and_address_and_charge_a_cost(
    migrated_engine: sa.Engine, tmp_path: Path
) -> None:
    engine = migrated_engine
    async with running(engine, tmp_path, speed=None, duration=timedelta(hours=5)) as live:
        await live.done.wait()
        car_id = live.car_id()
        summary = live.services.board.summary(car_id)
        errors = sum(w.errors for w in live.fleet.workers.values())
    assert errors == 0
    with engine.connect() as conn:
        drives = conn.execute(
            sa.select(t.drives).where(t.drives.c.end_date.is_not(None)).order_by(t.drives.c.id)
        ).all()
        charges = conn.execute(
            sa.select(t.charging_processes).where(t.charging_processes.c.end_date.is_not(None))
        ).all()
        addresses = {a.id: a for a in conn.execute(sa.select(t.addresses)).all()}

    home = live.home_id
    assert len(drives) >= 2, drives
    to_home = [d for d in drives if d.end_geofence_id == home]
    assert to_home, [(d.id, d.start_geofence_id, d.end_geofence_id) for d in drives]
    for drive in to_home:
        assert drive.end_address_id in addresses
        assert drive.start_address_id in addresses
    away = [d for d in drives if d.end_geofence_id is None]
    assert away, "the supermarket is outside every geofence"
    assert all(d.end_address_id in addresses for d in away)  # an address still

    assert len(charges) == 1, charges
    charge = charges[0]
    assert charge.geofence_id == home
    assert charge.address_id in addresses
    billed = max(Decimal(str(charge.charge_energy_added)), Decimal(str(charge.charge_energy_used)))
    assert billed > 0
    expected = (billed * HOME_PRICE).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert Decimal(str(charge.cost)) == expected

    # parked at home after the charge: the summary (MQTT's and the web app's) names the fence
    assert summary is not None
    assert summary["geofence"] == "Home"
    assert summary["logging"] == "enabled"
