"""Software updates: versions in order, with the time since the previous one."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from fleetlog.store import tables as t
from fleetlog.web.window import Window


def software_updates(conn: sa.Connection, window: Window) -> list[dict[str, Any]]:
    u = t.updates.c
    rows = conn.execute(
        sa.select(u.id, u.car_id, u.start_date, u.end_date, u.version)
        .where(*window.where(t.updates))
        .order_by(u.car_id, u.start_date)
    ).all()
    out: list[dict[str, Any]] = []
    prev: Any = None
    for r in rows:
        since = None
        if prev is not None and prev.car_id == r.car_id:
            since = (r.start_date - prev.start_date).total_seconds() / 86400
        out.append(
            {
                "id": r.id,
                "car_id": r.car_id,
                "start_date": r.start_date,
                "end_date": r.end_date,
                "version": (r.version or "").split(" ")[0] or None,
                "duration_min": (r.end_date - r.start_date).total_seconds() / 60
                if r.end_date
                else None,
                "days_since_previous": since,
            }
        )
        prev = r
    out.reverse()
    return out
