"""Drives and charges as CSV: a mileage log for the tax office, a charging log for expenses.

One row per closed drive or charging process, oldest first. Times are local (the zone
given, UTC by default) as ``YYYY-MM-DD HH:MM``; places are the geofence name when the
place has one, else the address. The drives file ends with an empty ``purpose`` column
for the user to fill in, as a paper logbook has.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from fleetlog.store import tables as t

DRIVE_COLUMNS = (
    "drive_id",
    "car",
    "start",
    "end",
    "duration_min",
    "from",
    "to",
    "start_odometer_km",
    "end_odometer_km",
    "distance_km",
    "purpose",
)
CHARGE_COLUMNS = (
    "charge_id",
    "car",
    "start",
    "end",
    "duration_min",
    "place",
    "energy_added_kwh",
    "energy_used_kwh",
    "start_battery_level",
    "end_battery_level",
    "cost",
)


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    return value.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _place(fence: str | None, name: str | None, display: str | None) -> str:
    return fence or name or display or ""


def _number(value: Any, digits: int) -> str:
    if value is None:
        return ""
    return f"{float(Decimal(str(value))):.{digits}f}"


def _window(
    q: sa.Select[Any], col: sa.Column[Any], since: datetime | None, until: datetime | None
) -> sa.Select[Any]:
    if since is not None:
        q = q.where(col >= since.astimezone(UTC).replace(tzinfo=None))
    if until is not None:
        q = q.where(col < until.astimezone(UTC).replace(tzinfo=None))
    return q


def _write(
    engine: sa.Engine,
    out: IO[str],
    query: sa.Executable,
    columns: Sequence[str],
    cells: Callable[[Any], list[Any]],
) -> int:
    """Run `query`, write the header and one line per row; returns the number of rows."""
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(cells(r) for r in rows)
    return len(rows)


def write_drives_csv(
    engine: sa.Engine,
    out: IO[str],
    *,
    car_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> int:
    """Write the drives log; returns the number of drives."""
    zone = ZoneInfo(tz)
    d, c = t.drives, t.cars
    sa_, ea = t.addresses.alias("start_address"), t.addresses.alias("end_address")
    sg, eg = t.geofences.alias("start_fence"), t.geofences.alias("end_fence")
    q = (
        sa.select(
            d.c.id,
            sa.func.coalesce(c.c.name, c.c.vin).label("car"),
            d.c.start_date,
            d.c.end_date,
            d.c.duration_min,
            sg.c.name.label("start_fence"),
            sa_.c.name.label("start_name"),
            sa_.c.display_name.label("start_display"),
            eg.c.name.label("end_fence"),
            ea.c.name.label("end_name"),
            ea.c.display_name.label("end_display"),
            d.c.start_km,
            d.c.end_km,
            d.c.distance,
        )
        .join(c, c.c.id == d.c.car_id)
        .outerjoin(sa_, sa_.c.id == d.c.start_address_id)
        .outerjoin(ea, ea.c.id == d.c.end_address_id)
        .outerjoin(sg, sg.c.id == d.c.start_geofence_id)
        .outerjoin(eg, eg.c.id == d.c.end_geofence_id)
        .where(d.c.end_date.is_not(None))
        .order_by(d.c.start_date, d.c.id)
    )
    if car_id is not None:
        q = q.where(d.c.car_id == car_id)
    q = _window(q, d.c.start_date, since, until)
    return _write(
        engine,
        out,
        q,
        DRIVE_COLUMNS,
        lambda r: [
            r.id,
            r.car,
            _local(r.start_date, zone),
            _local(r.end_date, zone),
            r.duration_min if r.duration_min is not None else "",
            _place(r.start_fence, r.start_name, r.start_display),
            _place(r.end_fence, r.end_name, r.end_display),
            _number(r.start_km, 1),
            _number(r.end_km, 1),
            _number(r.distance, 2),
            "",
        ],
    )


def write_charges_csv(
    engine: sa.Engine,
    out: IO[str],
    *,
    car_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> int:
    """Write the charging log; returns the number of charging processes."""
    zone = ZoneInfo(tz)
    cp, c, a, g = t.charging_processes, t.cars, t.addresses, t.geofences
    q = (
        sa.select(
            cp.c.id,
            sa.func.coalesce(c.c.name, c.c.vin).label("car"),
            cp.c.start_date,
            cp.c.end_date,
            cp.c.duration_min,
            g.c.name.label("fence"),
            a.c.name.label("address_name"),
            a.c.display_name.label("display"),
            cp.c.charge_energy_added,
            cp.c.charge_energy_used,
            cp.c.start_battery_level,
            cp.c.end_battery_level,
            cp.c.cost,
        )
        .join(c, c.c.id == cp.c.car_id)
        .outerjoin(a, a.c.id == cp.c.address_id)
        .outerjoin(g, g.c.id == cp.c.geofence_id)
        .where(cp.c.end_date.is_not(None))
        .order_by(cp.c.start_date, cp.c.id)
    )
    if car_id is not None:
        q = q.where(cp.c.car_id == car_id)
    q = _window(q, cp.c.start_date, since, until)
    return _write(
        engine,
        out,
        q,
        CHARGE_COLUMNS,
        lambda r: [
            r.id,
            r.car,
            _local(r.start_date, zone),
            _local(r.end_date, zone),
            r.duration_min if r.duration_min is not None else "",
            _place(r.fence, r.address_name, r.display),
            _number(r.charge_energy_added, 2),
            _number(r.charge_energy_used, 2),
            r.start_battery_level if r.start_battery_level is not None else "",
            r.end_battery_level if r.end_battery_level is not None else "",
            _number(r.cost, 2),
        ],
    )
