"""Where the cars went: visited places, geofences, and points for the visited map."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from fleetlog.store import tables as t
from fleetlog.web.reads import as_float, place_label
from fleetlog.web.window import Window


def visited(conn: sa.Connection, window: Window, *, limit: int = 200) -> list[dict[str, Any]]:
    """Drive destinations by address: visits and last visit, most visited first."""
    d = t.drives.c
    a = t.addresses.c
    g = t.geofences.c
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
            sa.func.count().label("visits"),
            sa.func.max(d.end_date).label("last"),
        )
        .select_from(t.drives)
        .join(t.addresses, a.id == d.end_address_id)
        .outerjoin(t.geofences, g.id == d.end_geofence_id)
        .where(*window.where(t.drives), d.end_date.is_not(None))
        .group_by(a.id, a.name, a.road, a.city, a.country, a.latitude, a.longitude, g.name)
        .order_by(sa.desc("visits"))
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

    The drives are chosen first (newest, from ``drives`` alone) and only their two positions
    are looked up by primary key, so the cost follows `limit`, not the history's length.
    """
    d = t.drives.c
    p = t.positions.c
    newest = (
        sa.select(d.start_position_id, d.end_position_id)
        .where(*window.where(t.drives))
        .order_by(d.start_date.desc(), d.id.desc())
        .limit(max(1, limit // 2))
        .subquery("newest")
    )
    ids = sa.union_all(
        sa.select(newest.c.start_position_id.label("pid")),
        sa.select(newest.c.end_position_id.label("pid")),
    ).subquery()
    rows = conn.execute(
        sa.select(p.latitude, p.longitude).join(ids, ids.c.pid == p.id).limit(limit)
    )
    return [[float(r.latitude), float(r.longitude)] for r in rows]


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
