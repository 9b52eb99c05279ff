"""Battery health: usable capacity over time and mileage, range at 100 %, charge levels.

Capacity is estimated per completed charge from its end: rated range × the car's efficiency
(kWh per km of range) ÷ the end state of charge. Charges that end below 30 % say little about
the whole pack and are left out. No positions are scanned: the charge's own columns and its
position (by primary key, for the odometer) are enough. A drive's state of charge at start
and end comes from its summary (:mod:`fleetlog.logbook.summaries`), not from its positions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from fleetlog.logbook import summaries
from fleetlog.store import tables as t
from fleetlog.web.reads import as_float
from fleetlog.web.window import Window


def battery_health(conn: sa.Connection, window: Window, preferred: str) -> dict[str, Any]:
    cp = t.charging_processes.c
    end_range = cp.end_ideal_range_km if preferred == "ideal" else cp.end_rated_range_km
    conds = [*window.where(t.charging_processes), cp.end_date.is_not(None)]
    rows = conn.execute(
        sa.select(
            cp.end_date,
            cp.end_battery_level,
            end_range.label("end_range"),
            t.cars.c.efficiency,
            t.positions.c.odometer,
        )
        .join(t.cars, t.cars.c.id == cp.car_id)
        .outerjoin(t.positions, t.positions.c.id == cp.position_id)
        .where(*conds, cp.end_battery_level >= 30)
        .order_by(cp.end_date)
    ).all()
    points: list[dict[str, Any]] = []
    for r in rows:
        level = r.end_battery_level
        rng = as_float(r.end_range)
        eff = as_float(r.efficiency)
        if not level or rng is None:
            continue
        full_range = rng / level * 100
        points.append(
            {
                "date": r.end_date,
                "odometer_km": as_float(r.odometer),
                "range_at_100_km": full_range,
                "capacity_kwh": full_range * eff if eff else None,
                "battery_level": level,
            }
        )
    capacities = [p["capacity_kwh"] for p in points if p["capacity_kwh"]]
    # Peak and current are medians of the first and last few samples: one odd charge (a cold
    # pack, a rounding of the SoC) must not set the headline number.
    first = sorted(capacities[:5])
    last = sorted(capacities[-5:])
    new = first[len(first) // 2] if first else None
    now = last[len(last) // 2] if last else None
    return {
        "points": points,
        "capacity_new_kwh": new,
        "capacity_now_kwh": now,
        "degradation_pct": (1 - now / new) * 100 if new and now else None,
        "range_at_100_now_km": points[-1]["range_at_100_km"] if points else None,
    }


def charge_levels(conn: sa.Connection, window: Window) -> list[dict[str, Any]]:
    """State of charge at the start and end of every drive and charge, in time order."""
    summaries.refresh_if_behind(conn)
    return _levels(conn, window)


def _levels(conn: sa.Connection, window: Window) -> list[dict[str, Any]]:
    cp = t.charging_processes.c
    d = t.drives.c
    out: list[dict[str, Any]] = []
    for r in conn.execute(
        sa.select(cp.start_date, cp.end_date, cp.start_battery_level, cp.end_battery_level).where(
            *window.where(t.charging_processes), cp.end_date.is_not(None)
        )
    ):
        out.append({"date": r.start_date, "battery_level": r.start_battery_level})
        out.append({"date": r.end_date, "battery_level": r.end_battery_level})
    for r in conn.execute(
        sa.select(
            d.start_date,
            d.end_date,
            summaries.checked("start", "battery_level").label("start_level"),
            summaries.checked("end", "battery_level").label("end_level"),
        )
        .select_from(summaries.joined())
        .where(*window.where(t.drives), d.end_date.is_not(None))
    ):
        out.append({"date": r.start_date, "battery_level": r.start_level})
        out.append({"date": r.end_date, "battery_level": r.end_level})
    out = [p for p in out if p["battery_level"] is not None]
    out.sort(key=lambda p: p["date"])
    return out


CHART_POINTS = 2000  # above this many charge-level points the chart shows buckets


def _epoch(dialect: str, col: Any) -> sa.ColumnElement[Any]:
    if dialect == "postgresql":
        return sa.func.extract("epoch", col)
    return (sa.func.julianday(col) - 2440587.5) * 86400.0


def charge_level_chart(
    conn: sa.Connection, window: Window, *, max_points: int = CHART_POINTS
) -> dict[str, Any]:
    """The charge-level history for the chart: every point (as :func:`charge_levels`) when
    there are at most `max_points`, else the lowest and highest level per time bucket,
    computed by the database (``{"points": [...]}`` or ``{"buckets": [...]}``)."""
    summaries.refresh_if_behind(conn)
    cp = t.charging_processes.c
    d = t.drives.c
    n = (
        conn.execute(
            sa.select(sa.func.count()).where(
                *window.where(t.charging_processes), cp.end_date.is_not(None)
            )
        ).scalar_one()
        + conn.execute(
            sa.select(sa.func.count()).where(*window.where(t.drives), d.end_date.is_not(None))
        ).scalar_one()
    )
    if 2 * n <= max_points:
        return {"points": _levels(conn, window)}
    span = localtime_span(conn, window)
    if span is None:
        return {"points": []}
    lo, hi = span
    width = max(3600.0, ((hi - lo).total_seconds() + 1) / (max_points // 2))
    dialect = conn.dialect.name
    drive_cond = [*window.where(t.drives), d.end_date.is_not(None)]
    charge_cond = [*window.where(t.charging_processes), cp.end_date.is_not(None)]
    start_level = summaries.checked("start", "battery_level")
    end_level = summaries.checked("end", "battery_level")
    levels = sa.union_all(
        sa.select(cp.start_date.label("at"), cp.start_battery_level.label("level")).where(
            *charge_cond
        ),
        sa.select(cp.end_date.label("at"), cp.end_battery_level.label("level")).where(*charge_cond),
        sa.select(d.start_date.label("at"), start_level.label("level"))
        .select_from(summaries.joined())
        .where(*drive_cond),
        sa.select(d.end_date.label("at"), end_level.label("level"))
        .select_from(summaries.joined())
        .where(*drive_cond),
    ).subquery("levels")
    lo_epoch = lo.replace(tzinfo=UTC).timestamp()
    offset = (_epoch(dialect, levels.c.at) - lo_epoch) / width
    # never negative, so SQLite's truncating cast is the floor (its floor() is optional)
    bucket = (
        sa.func.floor(offset) if dialect == "postgresql" else sa.cast(offset, sa.Integer)
    ).label("bucket")
    rows = conn.execute(
        sa.select(bucket, sa.func.min(levels.c.level), sa.func.max(levels.c.level))
        .where(levels.c.level.is_not(None))
        .group_by(bucket)
        .order_by(bucket)
    ).all()
    return {
        "buckets": [
            {
                "date": lo + timedelta(seconds=(float(b) + 0.5) * width),
                "min_level": lo_level,
                "max_level": hi_level,
            }
            for b, lo_level, hi_level in rows
        ],
        "bucket_hours": width / 3600,
    }


def localtime_span(conn: sa.Connection, window: Window) -> tuple[datetime, datetime] | None:
    """First start and last end of the window's drives and charges."""
    found = [
        conn.execute(
            sa.select(sa.func.min(tb.c.start_date), sa.func.max(tb.c.end_date)).where(
                *window.where(tb)
            )
        ).one()
        for tb in (t.drives, t.charging_processes)
    ]
    lows = [_dt(lo) for lo, _ in found if lo is not None]
    highs = [_dt(hi) for _, hi in found if hi is not None]
    if not lows or not highs:
        return None
    return min(lows), max(highs)


def _dt(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
