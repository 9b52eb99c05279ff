"""Vampire drain: what the car lost while parked between one drive or charge and the next.

An idle period runs from the end of a drive or charge to the start of the next one of the same
car, if at least :data:`MIN_IDLE` long. Range lost per hour and the share of the period spent
asleep (from ``states``) tell whether the car slept or something kept it awake.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from fleetlog.logbook import summaries
from fleetlog.store import tables as t
from fleetlog.web.reads import as_float
from fleetlog.web.window import Window

MIN_IDLE = timedelta(hours=3)


def _seconds(dialect: str, a: Any, b: Any) -> sa.ColumnElement[Any]:
    """SQL for the seconds from instant `a` to instant `b`."""
    if dialect == "postgresql":
        return sa.func.extract("epoch", b - a)
    return (sa.func.julianday(b) - sa.func.julianday(a)) * 86400.0


def _periods(conn: sa.Connection, window: Window, ideal: bool) -> list[Any]:
    """Each closed drive or charge paired with the car's next one, where the gap is long.

    The pairing (``LEAD`` over the car's events by start) and the length filter run in the
    database; a drive's state of charge comes from its summary.
    """
    summaries.refresh_if_behind(conn)
    d = t.drives.c
    cp = t.charging_processes.c
    events = sa.union_all(
        sa.select(
            d.car_id,
            d.start_date,
            d.end_date,
            sa.cast(d.start_ideal_range_km if ideal else d.start_rated_range_km, sa.Float).label(
                "sr"
            ),
            sa.cast(d.end_ideal_range_km if ideal else d.end_rated_range_km, sa.Float).label("er"),
            summaries.checked("start", "battery_level").label("sl"),
            summaries.checked("end", "battery_level").label("el"),
            sa.literal(0).label("kind"),
            d.id,
        )
        .select_from(summaries.joined())
        .where(*window.where(t.drives), d.end_date.is_not(None)),
        sa.select(
            cp.car_id,
            cp.start_date,
            cp.end_date,
            sa.cast(cp.start_ideal_range_km if ideal else cp.start_rated_range_km, sa.Float).label(
                "sr"
            ),
            sa.cast(cp.end_ideal_range_km if ideal else cp.end_rated_range_km, sa.Float).label(
                "er"
            ),
            cp.start_battery_level.label("sl"),
            cp.end_battery_level.label("el"),
            sa.literal(1).label("kind"),
            cp.id,
        ).where(*window.where(t.charging_processes), cp.end_date.is_not(None)),
    ).subquery("ev")
    ev = events.c
    # Drives before charges on equal starts, as the list this replaces was sorted.
    by_car: Any = ev.car_id
    order: Any = (ev.start_date, ev.kind, ev.id)

    def lead(col: Any) -> Any:
        return sa.func.lead(col).over(partition_by=by_car, order_by=order)

    pairs = sa.select(
        ev.car_id,
        ev.end_date.label("start"),
        lead(ev.start_date).label("end"),
        ev.er,
        lead(ev.sr).label("next_sr"),
        ev.el,
        lead(ev.sl).label("next_sl"),
    ).subquery("pairs")
    pc = pairs.c
    slack = MIN_IDLE.total_seconds() - 1  # the exact cut is made in Python below
    rows = conn.execute(
        sa.select(
            pc.car_id,
            pc.start,
            pc.end,
            pc.er,
            pc.next_sr,
            pc.el,
            pc.next_sl.label("sl"),
        )
        .where(pc.end.is_not(None), _seconds(conn.dialect.name, pc.start, pc.end) >= slack)
        .order_by(pc.car_id, pc.start)
    ).all()
    return [r for r in rows if _dt(r.end) - _dt(r.start) >= MIN_IDLE]


def _dt(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


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
    st = t.states.c
    sleeping: dict[int, list[tuple[datetime, datetime]]] = {}
    query = sa.select(st.car_id, st.start_date, st.end_date).where(
        *window.where(t.states), st.state.in_(("asleep", "offline"))
    )
    now = datetime.utcnow()
    for r in conn.execute(query.order_by(st.start_date)):
        sleeping.setdefault(r.car_id, []).append((r.start_date, r.end_date or now))
    starts = {car: [s[0] for s in spans] for car, spans in sleeping.items()}
    periods: list[dict[str, Any]] = []
    for r in _periods(conn, window, preferred == "ideal"):
        start, end = _dt(r.start), _dt(r.end)
        hours = (end - start).total_seconds() / 3600
        lost = None
        if r.er is not None and r.next_sr is not None:
            lost = (as_float(r.er) or 0.0) - (as_float(r.next_sr) or 0.0)
        soc_lost = None
        if r.el is not None and r.sl is not None:
            soc_lost = r.el - r.sl
        asleep = _asleep_seconds(sleeping.get(r.car_id, []), starts.get(r.car_id, []), start, end)
        periods.append(
            {
                "car_id": r.car_id,
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


CHART_BARS = 400  # idle periods drawn one bar each up to this many; beyond, a bar per bucket


def chart_bars(periods: list[dict[str, Any]], max_bars: int = CHART_BARS) -> list[dict[str, Any]]:
    """Bars for the chart: the periods themselves when few, else consecutive periods merged
    into at most `max_bars` buckets (range lost over hours idle, so long periods weigh more)."""
    if len(periods) <= max_bars:
        return periods
    ordered = sorted(periods, key=lambda p: p["start_date"])
    per = -(-len(ordered) // max_bars)
    out = []
    for i in range(0, len(ordered), per):
        chunk = [p for p in ordered[i : i + per] if p["range_lost_km"] is not None]
        hours = sum(p["duration_h"] for p in chunk)
        lost = sum(p["range_lost_km"] for p in chunk)
        out.append(
            {
                "start_date": ordered[i]["start_date"],
                "range_lost_per_hour_km": lost / hours if hours else None,
            }
        )
    return out
