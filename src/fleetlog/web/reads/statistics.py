"""Statistics per local day, ISO week, month or year: driving, energy, charging, cost."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from fleetlog.store import tables as t
from fleetlog.web.reads import as_float
from fleetlog.web.reads.drives import drive_energy
from fleetlog.web.window import Window

PERIODS = ("day", "week", "month", "year")


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


def statistics(
    conn: sa.Connection, window: Window, preferred: str, period: str
) -> list[dict[str, Any]]:
    """One row per period with any drive or charge, newest first."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    d = t.drives.c
    cp = t.charging_processes.c
    ideal = preferred == "ideal"
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

    for r in conn.execute(
        sa.select(
            d.start_date,
            d.distance,
            d.duration_min,
            d.outside_temp_avg,
            (d.start_ideal_range_km if ideal else d.start_rated_range_km).label("sr"),
            (d.end_ideal_range_km if ideal else d.end_rated_range_km).label("er"),
            t.cars.c.efficiency,
        )
        .join(t.cars, t.cars.c.id == d.car_id)
        .where(*window.where(t.drives), d.end_date.is_not(None))
    ):
        acc = row(period_key(r.start_date, period, window.tz))
        acc["drives"] += 1
        acc["distance_km"] += as_float(r.distance) or 0.0
        acc["driving_min"] += r.duration_min or 0
        energy = drive_energy(as_float(r.sr), as_float(r.er), as_float(r.efficiency))
        acc["energy_used_kwh"] += energy or 0.0
        if r.outside_temp_avg is not None:
            acc["temp_sum"] += float(r.outside_temp_avg)
            acc["temp_n"] += 1
    for r in conn.execute(
        sa.select(cp.start_date, cp.charge_energy_added, cp.cost).where(
            *window.where(t.charging_processes), cp.end_date.is_not(None)
        )
    ):
        acc = row(period_key(r.start_date, period, window.tz))
        acc["charges"] += 1
        acc["energy_added_kwh"] += as_float(r.charge_energy_added) or 0.0
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
