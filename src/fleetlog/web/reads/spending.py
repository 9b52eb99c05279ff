"""Money: charging cost per month and per 100 km; Tesla API spend from the request ledger.

The ledger names a car as it was called (Tesla's id or the VIN); both map back to a car here.
The month-end projection is linear in elapsed time, the same pace the budget governor spreads
what is left over what remains of the month.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from fleetlog.sources.tesla import Ledger
from fleetlog.store import tables as t
from fleetlog.web.reads import as_float, localtime
from fleetlog.web.reads.statistics import day_key, day_span
from fleetlog.web.window import Window


def charging_costs(conn: sa.Connection, window: Window) -> list[dict[str, Any]]:
    """Per local month: cost, energy, distance driven and cost per 100 km, newest first."""
    cp = t.charging_processes.c
    d = t.drives.c
    months: dict[str, dict[str, Any]] = {}
    r: Any

    def month(key: str) -> dict[str, Any]:
        return months.setdefault(
            key,
            {"month": key, "cost": 0.0, "energy_added_kwh": 0.0, "charges": 0, "distance_km": 0.0},
        )

    span = day_span(conn, window, (t.drives, t.charging_processes))
    if span is None:
        return []
    dialect = conn.dialect.name
    # One row per local day from the database; days are folded into months here.
    day = localtime.local_day(cp.start_date, window.tz, *span, dialect).label("day")
    for r in conn.execute(
        sa.select(
            day,
            sa.func.count().label("n"),
            sa.func.sum(cp.cost, type_=sa.Float).label("cost"),
            sa.func.sum(cp.charge_energy_added, type_=sa.Float).label("added"),
        )
        .where(*window.where(t.charging_processes), cp.end_date.is_not(None))
        .group_by(day)
    ):
        acc = month(day_key(localtime.parse_day(r.day), "month"))
        acc["cost"] += as_float(r.cost) or 0.0
        acc["energy_added_kwh"] += as_float(r.added) or 0.0
        acc["charges"] += int(r.n)
    day = localtime.local_day(d.start_date, window.tz, *span, dialect).label("day")
    for r in conn.execute(
        sa.select(day, sa.func.sum(d.distance, type_=sa.Float).label("distance"))
        .where(*window.where(t.drives), d.end_date.is_not(None))
        .group_by(day)
    ):
        month(day_key(localtime.parse_day(r.day), "month"))["distance_km"] += (
            as_float(r.distance) or 0.0
        )
    out = []
    for key in sorted(months, reverse=True):
        acc = months[key]
        dist = acc["distance_km"]
        acc["cost_per_100km"] = acc["cost"] / dist * 100 if dist else None
        acc["cost_per_kwh"] = (
            acc["cost"] / acc["energy_added_kwh"] if acc["energy_added_kwh"] else None
        )
        out.append(acc)
    return out


def _month_fraction(now: datetime) -> float:
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    return max((now - start) / (end - start), 1e-6)


def api_spend(
    engine: sa.Engine, conn: sa.Connection, *, credit_usd: float, now: datetime | None = None
) -> dict[str, Any]:
    """This month's spend per car and by category, the projection, and the monthly history."""
    now = now or datetime.now(UTC)
    this_month = f"{now.year:04d}-{now.month:02d}"
    names: dict[str, tuple[int, str]] = {}
    for r in conn.execute(
        sa.select(t.cars.c.id, t.cars.c.name, t.cars.c.vin, t.cars.c.eid, t.cars.c.vid)
    ):
        for key in (r.vin, str(r.eid), str(r.vid), str(r.id)):
            names[key] = (r.id, r.name or r.vin)
    ledger = Ledger(engine)
    since = date(now.year - 1, now.month, 1)
    totals = ledger.totals(by="month", per="vehicle", since=since)
    per_car: dict[int | str, dict[str, Any]] = {}
    categories: dict[str, dict[str, Any]] = {}
    history: dict[str, float] = {}
    for total in totals:
        history[total.period] = history.get(total.period, 0.0) + total.cost_usd
        if total.period != this_month:
            continue
        car_id, name = names.get(total.vehicle or "", (-1, total.vehicle or "?"))
        car_key: int | str = car_id if car_id >= 0 else name
        car = per_car.setdefault(
            car_key,
            {
                "car_id": car_id if car_id >= 0 else None,
                "name": name,
                "requests": 0,
                "billed": 0,
                "cost_usd": 0.0,
            },
        )
        car["requests"] += total.requests
        car["billed"] += total.billed
        car["cost_usd"] += total.cost_usd
        cat = categories.setdefault(
            total.category.value, {"category": total.category.value, "requests": 0, "cost_usd": 0.0}
        )
        cat["requests"] += total.requests
        cat["cost_usd"] += total.cost_usd
    spent = sum(c["cost_usd"] for c in per_car.values())
    fraction = _month_fraction(now)
    for car in per_car.values():
        car["projected_usd"] = car["cost_usd"] / fraction
    return {
        "month": this_month,
        "credit_usd": credit_usd,
        "spent_usd": spent,
        "projected_usd": spent / fraction,
        "per_car": sorted(per_car.values(), key=lambda c: -c["cost_usd"]),
        "by_category": sorted(categories.values(), key=lambda c: c["category"]),
        "history": [{"month": m, "cost_usd": v} for m, v in sorted(history.items())],
    }
