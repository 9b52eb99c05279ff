"""Consumption against temperature and speed; net (driving only) and gross (with idle loss).

Net consumption of a drive is the range it cost times the car's efficiency, over its distance
(TeslaMate's definition). Gross consumption spreads everything the battery lost between
charges over the distance driven: range at the end of one charge minus range at the start of
the next, summed, over the distance between them, so it includes sleep, sentry and climate.
"""

from __future__ import annotations

import itertools
from typing import Any

import sqlalchemy as sa

from fleetlog.store import tables as t
from fleetlog.web.reads import as_float
from fleetlog.web.window import Window

TEMP_BIN_C = 5
SPEED_BIN_KMH = 10
SCATTER_POINTS = 2000  # drives drawn on the page's scatter at most (every n-th)


def _bin(value: Any, width: int) -> sa.ColumnElement[Any]:
    """SQL for Python's ``int(value // width * width)`` (floor, also below zero)."""
    q = value / float(width)
    whole = sa.cast(q, sa.Integer)
    # PostgreSQL's cast rounds, SQLite's truncates: step down wherever that overshot.
    return (whole - sa.case((sa.cast(whole, sa.Float) > q, 1), else_=0)) * width


def efficiency(
    conn: sa.Connection, window: Window, preferred: str, *, scatter_max: int | None = None
) -> dict[str, Any]:
    """Consumption figures; `scatter_max` caps the per-drive points (evenly spread in time)."""
    d = t.drives.c
    cp = t.charging_processes.c
    ideal = preferred == "ideal"
    start_range = d.start_ideal_range_km if ideal else d.start_rated_range_km
    end_range = d.end_ideal_range_km if ideal else d.end_rated_range_km
    distance = sa.cast(d.distance, sa.Float)
    energy = sa.cast((start_range - end_range) * t.cars.c.efficiency, sa.Float)
    # Drives with a net energy (ranges and the car's efficiency known) and some distance.
    base = (
        sa.select(
            d.start_date.label("start_date"),
            distance.label("distance"),
            energy.label("energy"),
            sa.cast(d.outside_temp_avg, sa.Float).label("temp"),
            sa.case(
                (
                    sa.func.coalesce(d.duration_min, 0) != 0,
                    distance / (sa.cast(d.duration_min, sa.Float) / 60.0),
                ),
                else_=None,
            ).label("speed"),
        )
        .join(t.cars, t.cars.c.id == d.car_id)
        .where(
            *window.where(t.drives),
            d.end_date.is_not(None),
            d.distance > 1,
            start_range.is_not(None),
            end_range.is_not(None),
            t.cars.c.efficiency.is_not(None),
            t.cars.c.efficiency != 0,
        )
        .subquery("net")
    )
    n = base.c
    # One pass: energy and distance per (temperature, speed) cell; the totals and both
    # binnings are sums of cells (a NULL key is its own cell and only counts in the totals).
    tkey = _bin(n.temp, TEMP_BIN_C).label("tkey")
    skey = _bin(n.speed, SPEED_BIN_KMH).label("skey")
    cells = conn.execute(
        sa.select(
            tkey,
            skey,
            sa.func.sum(n.energy).label("energy"),
            sa.func.sum(n.distance).label("distance"),
            sa.func.count().label("n"),
        ).group_by(tkey, skey)
    ).all()
    net_energy = float(sum(float(c.energy or 0.0) for c in cells))
    net_distance = float(sum(float(c.distance or 0.0) for c in cells))
    count = sum(int(c.n) for c in cells)

    def binned(key: str, width: int) -> list[dict[str, Any]]:
        sums: dict[int, list[float]] = {}
        for c in cells:
            k = getattr(c, key)
            if k is None:
                continue
            acc = sums.setdefault(int(k), [0.0, 0.0])
            acc[0] += float(c.energy)
            acc[1] += float(c.distance)
        return [
            {
                "from": k,
                "to": k + width,
                "consumption_wh_per_km": e * 1000 / dist if dist else None,
                "distance_km": dist,
            }
            for k, (e, dist) in sorted(sums.items())
        ]

    # Each bin sums energy and distance, so its mean is weighted by distance driven.
    by_temp = binned("tkey", TEMP_BIN_C)
    by_speed = binned("skey", SPEED_BIN_KMH)
    points = sa.select(n.start_date, n.distance, n.energy, n.temp, n.speed)
    if scatter_max is not None and count > scatter_max:
        step = -(-count // scatter_max)
        numbered = sa.select(
            *n, sa.func.row_number().over(order_by=n.start_date).label("i")
        ).subquery("numbered")
        points = sa.select(
            numbered.c.start_date,
            numbered.c.distance,
            numbered.c.energy,
            numbered.c.temp,
            numbered.c.speed,
        ).where((numbered.c.i - 1) % step == 0)
        points = points.order_by(numbered.c.start_date)
    else:
        points = points.order_by(n.start_date)
    scatter = [
        {
            "date": r.start_date,
            "consumption_wh_per_km": r.energy * 1000 / r.distance,
            "outside_temp_c": r.temp,
            "avg_speed_kmh": r.speed,
            "distance_km": r.distance,
        }
        for r in conn.execute(points)
    ]

    # Gross: range lost between consecutive charges over the distance driven in between.
    end_range_cp = cp.end_ideal_range_km if ideal else cp.end_rated_range_km
    start_range_cp = cp.start_ideal_range_km if ideal else cp.start_rated_range_km
    charges = conn.execute(
        sa.select(
            cp.car_id,
            start_range_cp.label("sr"),
            end_range_cp.label("er"),
            t.positions.c.odometer,
            t.cars.c.efficiency,
        )
        .join(t.cars, t.cars.c.id == cp.car_id)
        .join(t.positions, t.positions.c.id == cp.position_id)
        .where(*window.where(t.charging_processes), cp.end_date.is_not(None))
        .order_by(cp.car_id, cp.start_date)
    ).all()
    gross_energy = 0.0
    gross_distance = 0.0
    for prev, nxt in itertools.pairwise(charges):
        if prev.car_id != nxt.car_id:
            continue
        lost = (as_float(prev.er) or 0) - (as_float(nxt.sr) or 0)
        driven = (as_float(nxt.odometer) or 0) - (as_float(prev.odometer) or 0)
        eff = as_float(prev.efficiency)
        if lost > 0 and driven > 0 and eff:
            gross_energy += lost * eff
            gross_distance += driven
    return {
        "net_wh_per_km": net_energy * 1000 / net_distance if net_distance else None,
        "gross_wh_per_km": gross_energy * 1000 / gross_distance if gross_distance else None,
        "distance_km": net_distance,
        "drives": scatter,
        "by_temperature": by_temp,
        "by_speed": by_speed,
    }
