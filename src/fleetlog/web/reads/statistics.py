"""Statistics per local day, ISO week, month or year: driving, energy, charging, cost."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from fleetlog.store import tables as t
from fleetlog.web.reads import as_float, localtime
from fleetlog.web.window import Window

PERIODS = ("day", "week", "month", "year")
PAGE_ROWS = 100  # periods per page of the HTML table
#: Periods whose key is a prefix of the local day ('2024-05-17', '2024-05', '2024'): grouped
#: in SQL, the key taken as the database spells it.
SQL_PERIODS = {"day": 10, "month": 7, "year": 4}


def period_key(utc_naive: datetime, period: str, tz: ZoneInfo) -> str:
    """The local period a UTC instant falls in: 2024-05-17, 2024-W20, 2024-05 or 2024."""
    local = utc_naive.replace(tzinfo=UTC).astimezone(tz)
    if period == "day":
        return local.date().isoformat()
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{local.year:04d}-{local.month:02d}"
    return f"{local.year:04d}"


def day_key(day: date, period: str) -> str:
    """The period a local day falls in (the same keys as :func:`period_key`)."""
    if period == "day":
        return day.isoformat()
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{day.year:04d}-{day.month:02d}"
    return f"{day.year:04d}"


def day_span(
    conn: sa.Connection, window: Window, tables: tuple[sa.Table, ...]
) -> tuple[datetime, datetime] | None:
    """UTC bounds covering the window's rows of `tables` (by start_date), or None if none."""
    if window.start is not None and window.end is not None:
        return window.start, window.end
    found = localtime.bounds(
        conn,
        [
            sa.select(sa.func.min(tb.c.start_date), sa.func.max(tb.c.start_date)).where(
                *window.where(tb)
            )
            for tb in tables
        ],
    )
    if found is None:
        return None
    return window.start or found[0], window.end or found[1]


def statistics(
    conn: sa.Connection, window: Window, preferred: str, period: str
) -> list[dict[str, Any]]:
    """One row per period with any drive or charge, newest first.

    The database sums per local day (one row a day reaches Python, not one a drive), or per
    local month or year directly; days are folded into ISO weeks in Python.
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    d = t.drives.c
    cp = t.charging_processes.c
    ideal = preferred == "ideal"
    span = day_span(conn, window, (t.drives, t.charging_processes))
    if span is None:
        return []
    dialect = conn.dialect.name
    rows: dict[str, dict[str, Any]] = {}
    r: Any

    def row(key: str) -> dict[str, Any]:
        return rows.setdefault(
            key,
            {
                "period": key,
                "drives": 0,
                "distance_km": 0.0,
                "driving_min": 0,
                "energy_used_kwh": 0.0,
                "temp_sum": 0.0,
                "temp_n": 0,
                "charges": 0,
                "energy_added_kwh": 0.0,
                "cost": 0.0,
            },
        )

    sr = d.start_ideal_range_km if ideal else d.start_rated_range_km
    er = d.end_ideal_range_km if ideal else d.end_rated_range_km

    def key_of(col: Any) -> sa.ColumnElement[str]:
        day = localtime.local_day(col, window.tz, *span, dialect)
        if period in SQL_PERIODS and period != "day":
            return sa.func.substr(day, 1, SQL_PERIODS[period]).label("day")
        return day.label("day")

    def fold(value: Any) -> str:
        if period in SQL_PERIODS:
            return str(value)
        return day_key(localtime.parse_day(value), period)

    day = key_of(d.start_date)
    for r in conn.execute(
        sa.select(
            day,
            sa.func.count().label("n"),
            sa.func.sum(d.distance, type_=sa.Float).label("distance"),
            sa.func.sum(d.duration_min).label("minutes"),
            sa.func.sum((sr - er) * t.cars.c.efficiency, type_=sa.Float).label("energy"),
            sa.func.sum(d.outside_temp_avg, type_=sa.Float).label("temp_sum"),
            sa.func.count(d.outside_temp_avg).label("temp_n"),
        )
        .join(t.cars, t.cars.c.id == d.car_id)
        .where(*window.where(t.drives), d.end_date.is_not(None))
        .group_by(day)
    ):
        acc = row(fold(r.day))
        acc["drives"] += int(r.n)
        acc["distance_km"] += as_float(r.distance) or 0.0
        acc["driving_min"] += int(r.minutes or 0)
        acc["energy_used_kwh"] += as_float(r.energy) or 0.0
        acc["temp_sum"] += as_float(r.temp_sum) or 0.0
        acc["temp_n"] += int(r.temp_n)
    day = key_of(cp.start_date)
    for r in conn.execute(
        sa.select(
            day,
            sa.func.count().label("n"),
            sa.func.sum(cp.charge_energy_added, type_=sa.Float).label("added"),
            sa.func.sum(cp.cost, type_=sa.Float).label("cost"),
        )
        .where(*window.where(t.charging_processes), cp.end_date.is_not(None))
        .group_by(day)
    ):
        acc = row(fold(r.day))
        acc["charges"] += int(r.n)
        acc["energy_added_kwh"] += as_float(r.added) or 0.0
        acc["cost"] += as_float(r.cost) or 0.0
    out = []
    for key in sorted(rows, reverse=True):
        acc = rows[key]
        n = acc.pop("temp_n")
        total = acc.pop("temp_sum")
        acc["outside_temp_avg_c"] = total / n if n else None
        dist = acc["distance_km"]
        acc["consumption_wh_per_km"] = acc["energy_used_kwh"] * 1000 / dist if dist else None
        out.append(acc)
    return out
