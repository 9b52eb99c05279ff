"""Drives: the list, one drive with its positions, and its GPX."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

import sqlalchemy as sa

from fleetlog.store import tables as t
from fleetlog.web.reads import as_float, place_label
from fleetlog.web.window import Window

PAGE_SIZE = 200  # the JSON API's default page
PAGE_ROWS = 100  # rows per page of the HTML table


def _range_cols(preferred: str) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
    d = t.drives.c
    if preferred == "ideal":
        return d.start_ideal_range_km, d.end_ideal_range_km
    return d.start_rated_range_km, d.end_rated_range_km


def drive_energy(
    start_range: float | None, end_range: float | None, efficiency: float | None
) -> float | None:
    """Net energy of a drive from the range it cost (TeslaMate's way): kWh, or None."""
    if start_range is None or end_range is None or not efficiency:
        return None
    return (start_range - end_range) * efficiency


def _select(preferred: str) -> sa.Select[Any]:
    d = t.drives.c
    sa_addr = t.addresses.alias("sa")
    ea_addr = t.addresses.alias("ea")
    sg = t.geofences.alias("sg")
    eg = t.geofences.alias("eg")
    sp = t.positions.alias("sp")
    ep = t.positions.alias("ep")
    start_range, end_range = _range_cols(preferred)
    return (
        sa.select(
            d.id,
            d.car_id,
            d.start_date,
            d.end_date,
            d.distance,
            d.duration_min,
            d.speed_max,
            d.power_max,
            d.power_min,
            d.outside_temp_avg,
            d.start_km,
            d.end_km,
            d.ascent,
            d.descent,
            start_range.label("start_range"),
            end_range.label("end_range"),
            t.cars.c.efficiency,
            sg.c.name.label("start_fence"),
            eg.c.name.label("end_fence"),
            sa_addr.c.name.label("start_name"),
            sa_addr.c.road.label("start_road"),
            sa_addr.c.city.label("start_city"),
            ea_addr.c.name.label("end_name"),
            ea_addr.c.road.label("end_road"),
            ea_addr.c.city.label("end_city"),
            d.start_position_id,
            d.end_position_id,
            d.start_geofence_id,
            d.end_geofence_id,
            sp.c.battery_level.label("start_soc"),
            ep.c.battery_level.label("end_soc"),
        )
        .select_from(t.drives)
        .join(t.cars, t.cars.c.id == d.car_id)
        .outerjoin(sa_addr, sa_addr.c.id == d.start_address_id)
        .outerjoin(ea_addr, ea_addr.c.id == d.end_address_id)
        .outerjoin(sg, sg.c.id == d.start_geofence_id)
        .outerjoin(eg, eg.c.id == d.end_geofence_id)
        .outerjoin(sp, sp.c.id == d.start_position_id)
        .outerjoin(ep, ep.c.id == d.end_position_id)
    )


def _shape(row: Any) -> dict[str, Any]:
    start_range = as_float(row.start_range)
    end_range = as_float(row.end_range)
    distance = as_float(row.distance)
    energy = drive_energy(start_range, end_range, as_float(row.efficiency))
    range_used = None if start_range is None or end_range is None else start_range - end_range
    return {
        "id": row.id,
        "car_id": row.car_id,
        "start_date": row.start_date,
        "end_date": row.end_date,
        "start_place": place_label(row.start_fence, row.start_name, row.start_road, row.start_city),
        "end_place": place_label(row.end_fence, row.end_name, row.end_road, row.end_city),
        "start_geofence_id": row.start_geofence_id,
        "end_geofence_id": row.end_geofence_id,
        "distance_km": distance,
        "duration_min": row.duration_min,
        "speed_max_kmh": row.speed_max,
        "power_max_kw": row.power_max,
        "power_min_kw": row.power_min,
        "outside_temp_avg_c": as_float(row.outside_temp_avg),
        "start_odometer_km": as_float(row.start_km),
        "end_odometer_km": as_float(row.end_km),
        "ascent_m": row.ascent,
        "descent_m": row.descent,
        "start_soc": row.start_soc,
        "end_soc": row.end_soc,
        "start_range_km": start_range,
        "end_range_km": end_range,
        "energy_kwh": energy,
        "consumption_wh_per_km": energy * 1000 / distance if energy and distance else None,
        # distance driven per km of range spent: 100 % means the car did what it promised
        "efficiency_pct": distance / range_used * 100 if distance and range_used else None,
        "avg_speed_kmh": distance / (row.duration_min / 60)
        if distance and row.duration_min
        else None,
    }


def list_drives(
    conn: sa.Connection,
    window: Window,
    preferred: str,
    *,
    offset: int = 0,
    limit: int = PAGE_SIZE,
    min_distance_km: float | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The window's drives, newest first, one page of them; and totals over all of them."""
    d = t.drives.c
    conds = [*window.where(t.drives), d.end_date.is_not(None)]
    if min_distance_km:
        conds.append(d.distance >= min_distance_km)
    # Two steps, so both planners join only the page's rows (PostgreSQL joined every row
    # before applying a LIMIT subquery): the ids, then those rows by primary key.
    ids = list(
        conn.execute(
            sa.select(d.id)
            .where(*conds)
            .order_by(d.start_date.desc(), d.id.desc())
            .offset(offset)
            .limit(limit)
        ).scalars()
    )
    query = _select(preferred).where(d.id.in_(ids)).order_by(d.start_date.desc(), d.id.desc())
    rows = [_shape(r) for r in conn.execute(query)]
    start_range, end_range = _range_cols(preferred)
    agg = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.sum(d.distance),
            sa.func.sum(d.duration_min),
            sa.func.max(d.speed_max),
            sa.func.sum((start_range - end_range) * t.cars.c.efficiency),
        )
        .select_from(t.drives)
        .join(t.cars, t.cars.c.id == d.car_id)
        .where(*conds)
    ).one()
    distance = as_float(agg[1]) or 0.0
    energy = as_float(agg[4])
    totals = {
        "count": int(agg[0]),
        "distance_km": distance,
        "duration_min": int(agg[2] or 0),
        "speed_max_kmh": agg[3],
        "energy_kwh": energy,
        "consumption_wh_per_km": energy * 1000 / distance if energy and distance else None,
        "offset": offset,
        "limit": limit,
    }
    return rows, totals


def get_drive(conn: sa.Connection, drive_id: int, preferred: str) -> dict[str, Any] | None:
    row = conn.execute(_select(preferred).where(t.drives.c.id == drive_id)).first()
    return None if row is None else _shape(row)


def drive_positions(conn: sa.Connection, drive_id: int) -> list[dict[str, Any]]:
    """Every position of the drive in time order (index on drive_id, date)."""
    p = t.positions.c
    rows = conn.execute(
        sa.select(
            p.date,
            p.latitude,
            p.longitude,
            p.speed,
            p.power,
            p.battery_level,
            p.elevation,
            p.odometer,
            p.outside_temp,
            p.rated_battery_range_km,
            p.ideal_battery_range_km,
        )
        .where(p.drive_id == drive_id)
        .order_by(p.date)
    )
    return [
        {
            "date": r.date,
            "latitude": as_float(r.latitude),
            "longitude": as_float(r.longitude),
            "speed_kmh": r.speed,
            "power_kw": r.power,
            "battery_level": r.battery_level,
            "elevation_m": r.elevation,
            "odometer_km": as_float(r.odometer),
            "outside_temp_c": as_float(r.outside_temp),
            "rated_range_km": as_float(r.rated_battery_range_km),
            "ideal_range_km": as_float(r.ideal_battery_range_km),
        }
        for r in rows
    ]


def _iso_z(t_: datetime) -> str:
    return t_.replace(microsecond=0).isoformat() + "Z"


def gpx(drive: dict[str, Any], points: list[dict[str, Any]]) -> str:
    """GPX 1.1 of the drive's track (times UTC, elevation in metres)."""
    name = escape(f"Drive {drive['id']}: {drive['start_place'] or ''} → {drive['end_place'] or ''}")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<gpx version="1.1" creator="fleetlog" xmlns="http://www.topografix.com/GPX/1/1">',
        f"  <trk><name>{name}</name><trkseg>",
    ]
    for p in points:
        ele = "" if p["elevation_m"] is None else f"<ele>{p['elevation_m']}</ele>"
        lines.append(
            f'    <trkpt lat="{p["latitude"]:.6f}" lon="{p["longitude"]:.6f}">'
            f"{ele}<time>{_iso_z(p['date'])}</time></trkpt>"
        )
    lines += ["  </trkseg></trk>", "</gpx>", ""]
    return "\n".join(lines)
