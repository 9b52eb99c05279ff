"""Vampire drain: what the car lost while parked between one drive or charge and the next.

An idle period runs from the end of a drive or charge to the start of the next one of the same
car, if at least :data:`MIN_IDLE` long. Range lost per hour and the share of the period spent
asleep (from ``states``) tell whether the car slept or something kept it awake.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from fleetlog.store import tables as t
from fleetlog.web.reads import as_float
from fleetlog.web.window import Window

MIN_IDLE = timedelta(hours=3)


def _events(conn: sa.Connection, window: Window, ideal: bool) -> list[dict[str, Any]]:
    d = t.drives.c
    cp = t.charging_processes.c
    sp = t.positions.alias("sp")
    ep = t.positions.alias("ep")
    out: list[dict[str, Any]] = []
    for r in conn.execute(
        sa.select(
            d.car_id,
            d.start_date,
            d.end_date,
            (d.start_ideal_range_km if ideal else d.start_rated_range_km).label("sr"),
            (d.end_ideal_range_km if ideal else d.end_rated_range_km).label("er"),
            sp.c.battery_level.label("sl"),
            ep.c.battery_level.label("el"),
        )
        .outerjoin(sp, sp.c.id == d.start_position_id)
        .outerjoin(ep, ep.c.id == d.end_position_id)
        .where(*window.where(t.drives), d.end_date.is_not(None))
    ):
        out.append(dict(r._mapping))
    for r in conn.execute(
        sa.select(
            cp.car_id,
            cp.start_date,
            cp.end_date,
            (cp.start_ideal_range_km if ideal else cp.start_rated_range_km).label("sr"),
            (cp.end_ideal_range_km if ideal else cp.end_rated_range_km).label("er"),
            cp.start_battery_level.label("sl"),
            cp.end_battery_level.label("el"),
        ).where(*window.where(t.charging_processes), cp.end_date.is_not(None))
    ):
        out.append(dict(r._mapping))
    out.sort(key=lambda e: (e["car_id"], e["start_date"]))
    return out


def _asleep_seconds(
    spans: list[tuple[datetime, datetime]], starts: list[datetime], a: datetime, b: datetime
) -> float:
    total = 0.0
    i = max(0, bisect_left(starts, a) - 1)
    while i < len(spans) and spans[i][0] < b:
        lo, hi = max(spans[i][0], a), min(spans[i][1], b)
        if hi > lo:
            total += (hi - lo).total_seconds()
        i += 1
    return total


def vampire_drain(conn: sa.Connection, window: Window, preferred: str) -> dict[str, Any]:
    events = _events(conn, window, preferred == "ideal")
    st = t.states.c
    sleeping: dict[int, list[tuple[datetime, datetime]]] = {}
    query = sa.select(st.car_id, st.start_date, st.end_date).where(
        *window.where(t.states), st.state.in_(("asleep", "offline"))
    )
    now = datetime.utcnow()
    for r in conn.execute(query.order_by(st.start_date)):
        sleeping.setdefault(r.car_id, []).append((r.start_date, r.end_date or now))
    periods: list[dict[str, Any]] = []
    for prev, nxt in itertools.pairwise(events):
        if prev["car_id"] != nxt["car_id"]:
            continue
        start, end = prev["end_date"], nxt["start_date"]
        if end - start < MIN_IDLE:
            continue
        hours = (end - start).total_seconds() / 3600
        lost = None
        if prev["er"] is not None and nxt["sr"] is not None:
            lost = as_float(prev["er"] - nxt["sr"])
        soc_lost = None
        if prev["el"] is not None and nxt["sl"] is not None:
            soc_lost = prev["el"] - nxt["sl"]
        spans = sleeping.get(prev["car_id"], [])
        asleep = _asleep_seconds(spans, [s[0] for s in spans], start, end)
        periods.append(
            {
                "car_id": prev["car_id"],
                "start_date": start,
                "end_date": end,
                "duration_h": hours,
                "range_lost_km": lost,
                "range_lost_per_hour_km": lost / hours if lost is not None else None,
                "soc_lost_pct": soc_lost,
                "asleep_pct": asleep / (hours * 3600) * 100,
            }
        )
    periods.sort(key=lambda p: p["start_date"], reverse=True)
    total_h = sum(p["duration_h"] for p in periods)
    total_lost = sum(p["range_lost_km"] or 0 for p in periods)
    return {
        "periods": periods,
        "total_hours": total_h,
        "range_lost_km": total_lost,
        "range_lost_per_hour_km": total_lost / total_h if total_h else None,
        "asleep_pct": sum(p["asleep_pct"] * p["duration_h"] for p in periods) / total_h
        if total_h
        else None,
    }
