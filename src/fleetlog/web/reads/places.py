"""Where the cars went: visited places, geofences, and points for the visited map."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from fleetlog.logbook import summaries
from fleetlog.store import tables as t
from fleetlog.web.reads import as_float, place_label
from fleetlog.web.window import Window


def visited(conn: sa.Connection, window: Window, *, limit: int = 200) -> list[dict[str, Any]]:
    """Drive destinations by address: visits and last visit, most visited first."""
    d = t.drives.c
    a = t.addresses.c
    g = t.geofences.c
    # Count per (address, geofence) id on drives alone first; the few groups are then
    # labelled (and merged where two fences share a name) with the small tables.
    per = (
        sa.select(
            d.end_address_id,
            d.end_geofence_id,
            sa.func.count().label("visits"),
            sa.func.max(d.end_date).label("last"),
        )
        .where(*window.where(t.drives), d.end_date.is_not(None), d.end_address_id.is_not(None))
        .group_by(d.end_address_id, d.end_geofence_id)
        .subquery("per")
    )
    visits = sa.func.sum(per.c.visits).label("visits")
    rows = conn.execute(
        sa.select(
            a.id,
            a.name,
            a.road,
            a.city,
            a.country,
            a.latitude,
            a.longitude,
            g.name.label("fence"),
            visits,
            sa.func.max(per.c.last).label("last"),
        )
        .select_from(per)
        .join(t.addresses, a.id == per.c.end_address_id)
        .outerjoin(t.geofences, g.id == per.c.end_geofence_id)
        .group_by(a.id, a.name, a.road, a.city, a.country, a.latitude, a.longitude, g.name)
        .order_by(visits.desc())
        .limit(limit)
    )
    return [
        {
            "address_id": r.id,
            "place": place_label(r.fence, r.name, r.road, r.city),
            "city": r.city,
            "country": r.country,
            "latitude": as_float(r.latitude),
            "longitude": as_float(r.longitude),
            "visits": int(r.visits),
            "last_visit": r.last,
        }
        for r in rows
    ]


def route_points(conn: sa.Connection, window: Window, *, limit: int = 5000) -> list[list[float]]:
    """Start and end of the newest drives, `limit` points at most, for the map.

    The drives are chosen first (newest, from ``drives`` alone); their ends come from the
    drives' summaries (:mod:`fleetlog.logbook.summaries`; by primary key where a drive has
    none yet), so the cost follows `limit`, not the history's length.
    """
    summaries.refresh_if_behind(conn)
    d = t.drives.c
    ends = [
        summaries.checked(end, name).label(f"{end}_{name}")
        for end in ("start", "end")
        for name in ("latitude", "longitude")
    ]
    rows = conn.execute(
        sa.select(*ends)
        .select_from(summaries.joined())
        .where(*window.where(t.drives))
        .order_by(d.start_date.desc(), d.id.desc())
        .limit(max(1, limit // 2))
    )
    points: list[list[float]] = []
    for r in rows:
        for lat, lon in ((r.start_latitude, r.start_longitude), (r.end_latitude, r.end_longitude)):
            if lat is not None and lon is not None:
                points.append([float(lat), float(lon)])
    return points[:limit]


def geofences(conn: sa.Connection) -> list[dict[str, Any]]:
    g = t.geofences.c
    return [
        {
            "id": r.id,
            "name": r.name,
            "latitude": float(r.latitude),
            "longitude": float(r.longitude),
            "radius_m": r.radius,
            "billing_type": str(r.billing_type),
            "cost_per_unit": as_float(r.cost_per_unit),
            "session_fee": as_float(r.session_fee),
        }
        for r in conn.execute(sa.select(t.geofences).order_by(g.name))
    ]


def geofence(conn: sa.Connection, fence_id: int) -> dict[str, Any] | None:
    return next((f for f in geofences(conn) if f["id"] == fence_id), None)
