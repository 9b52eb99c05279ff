"""Charging processes: the list and one charge with its samples (the charge curve)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from fleetlog.store import tables as t
from fleetlog.web.reads import as_float, place_label
from fleetlog.web.window import Window

PAGE_SIZE = 200  # the JSON API's default page
PAGE_ROWS = 100  # rows per page of the HTML table


def _select(preferred: str) -> sa.Select[Any]:
    cp = t.charging_processes.c
    start_range = cp.start_ideal_range_km if preferred == "ideal" else cp.start_rated_range_km
    end_range = cp.end_ideal_range_km if preferred == "ideal" else cp.end_rated_range_km
    # DC or AC is a property of the session's samples; the most common answer in TeslaMate's
    # data is whether a fast charger was present at any sample.
    fast = (
        sa.select(sa.func.max(sa.case((t.charges.c.fast_charger_present.is_(True), 1), else_=0)))
        .where(t.charges.c.charging_process_id == cp.id)
        .scalar_subquery()
    )
    return (
        sa.select(
            cp.id,
            cp.car_id,
            cp.start_date,
            cp.end_date,
            cp.charge_energy_added,
            cp.charge_energy_used,
            cp.start_battery_level,
            cp.end_battery_level,
            cp.duration_min,
            cp.outside_temp_avg,
            cp.cost,
            cp.geofence_id,
            cp.position_id,
            start_range.label("start_range"),
            end_range.label("end_range"),
            t.geofences.c.name.label("fence"),
            t.addresses.c.name.label("addr_name"),
            t.addresses.c.road.label("addr_road"),
            t.addresses.c.city.label("addr_city"),
            t.positions.c.latitude,
            t.positions.c.longitude,
            t.positions.c.odometer,
            fast.label("fast"),
        )
        .select_from(t.charging_processes)
        .outerjoin(t.geofences, t.geofences.c.id == cp.geofence_id)
        .outerjoin(t.addresses, t.addresses.c.id == cp.address_id)
        .outerjoin(t.positions, t.positions.c.id == cp.position_id)
    )


def _shape(row: Any) -> dict[str, Any]:
    added = as_float(row.charge_energy_added)
    used = as_float(row.charge_energy_used)
    start_range = as_float(row.start_range)
    end_range = as_float(row.end_range)
    duration = row.duration_min
    return {
        "id": row.id,
        "car_id": row.car_id,
        "start_date": row.start_date,
        "end_date": row.end_date,
        "place": place_label(row.fence, row.addr_name, row.addr_road, row.addr_city),
        "geofence_id": row.geofence_id,
        "latitude": as_float(row.latitude),
        "longitude": as_float(row.longitude),
        "odometer_km": as_float(row.odometer),
        "energy_added_kwh": added,
        "energy_used_kwh": used,
        "efficiency_pct": min(100.0, added / used * 100) if added and used else None,
        "cost": as_float(row.cost),
        "duration_min": duration,
        "start_battery_level": row.start_battery_level,
        "end_battery_level": row.end_battery_level,
        "range_added_km": end_range - start_range
        if start_range is not None and end_range is not None
        else None,
        "start_range_km": start_range,
        "end_range_km": end_range,
        "outside_temp_avg_c": as_float(row.outside_temp_avg),
        "avg_power_kw": added / (duration / 60) if added and duration else None,
        "kind": "DC" if row.fast else "AC",
    }


def list_charges(
    conn: sa.Connection,
    window: Window,
    preferred: str,
    *,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The window's completed charges, newest first, one page; and totals over all."""
    cp = t.charging_processes.c
    conds = [*window.where(t.charging_processes), cp.end_date.is_not(None)]
    # Two steps, so both planners join only the page's rows (PostgreSQL joined every row
    # before applying a LIMIT subquery): the ids, then those rows by primary key.
    ids = list(
        conn.execute(
            sa.select(cp.id)
            .where(*conds)
            .order_by(cp.start_date.desc(), cp.id.desc())
            .offset(offset)
            .limit(limit)
        ).scalars()
    )
    query = _select(preferred).where(cp.id.in_(ids)).order_by(cp.start_date.desc(), cp.id.desc())
    rows = [_shape(r) for r in conn.execute(query)]
    agg = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.sum(cp.charge_energy_added),
            sa.func.sum(cp.charge_energy_used),
            sa.func.sum(cp.cost),
            sa.func.sum(cp.duration_min),
        ).where(*conds)
    ).one()
    totals = {
        "count": int(agg[0]),
        "energy_added_kwh": as_float(agg[1]) or 0.0,
        "energy_used_kwh": as_float(agg[2]) or 0.0,
        "cost": as_float(agg[3]),
        "duration_min": int(agg[4] or 0),
        "offset": offset,
        "limit": limit,
    }
    return rows, totals


def get_charge(conn: sa.Connection, charge_id: int, preferred: str) -> dict[str, Any] | None:
    row = conn.execute(_select(preferred).where(t.charging_processes.c.id == charge_id)).first()
    return None if row is None else _shape(row)


def charge_samples(conn: sa.Connection, charge_id: int) -> list[dict[str, Any]]:
    c = t.charges.c
    rows = conn.execute(
        sa.select(
            c.date,
            c.battery_level,
            c.charger_power,
            c.charger_voltage,
            c.charger_actual_current,
            c.charger_phases,
            c.charge_energy_added,
            c.rated_battery_range_km,
            c.outside_temp,
        )
        .where(c.charging_process_id == charge_id)
        .order_by(c.date)
    )
    return [
        {
            "date": r.date,
            "battery_level": r.battery_level,
            "power_kw": r.charger_power,
            "voltage": r.charger_voltage,
            "current": r.charger_actual_current,
            "phases": r.charger_phases,
            "energy_added_kwh": as_float(r.charge_energy_added),
            "rated_range_km": as_float(r.rated_battery_range_km),
            "outside_temp_c": as_float(r.outside_temp),
        }
        for r in rows
    ]
