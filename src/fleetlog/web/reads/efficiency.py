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
from fleetlog.web.reads.drives import drive_energy
from fleetlog.web.window import Window

TEMP_BIN_C = 5
SPEED_BIN_KMH = 10


def efficiency(conn: sa.Connection, window: Window, preferred: str) -> dict[str, Any]:
    d = t.drives.c
    cp = t.charging_processes.c
    ideal = preferred == "ideal"
    start_range = d.start_ideal_range_km if ideal else d.start_rated_range_km
    end_range = d.end_ideal_range_km if ideal else d.end_rated_range_km
    drives = conn.execute(
        sa.select(
            d.start_date,
            d.distance,
            d.duration_min,
            d.outside_temp_avg,
            start_range.label("sr"),
            end_range.label("er"),
            t.cars.c.efficiency,
        )
        .join(t.cars, t.cars.c.id == d.car_id)
        .where(*window.where(t.drives), d.end_date.is_not(None), d.distance > 1)
        .order_by(d.start_date)
    ).all()
    by_temp: dict[int, list[float]] = {}
    by_speed: dict[int, list[float]] = {}
    scatter: list[dict[str, Any]] = []
    net_energy = 0.0
    net_distance = 0.0
    for r in drives:
        distance = as_float(r.distance) or 0.0
        energy = drive_energy(as_float(r.sr), as_float(r.er), as_float(r.efficiency))
        if energy is None or distance <= 0:
            continue
        net_energy += energy
        net_distance += distance
        wh_km = energy * 1000 / distance
        temp = as_float(r.outside_temp_avg)
        speed = distance / (r.duration_min / 60) if r.duration_min else None
        scatter.append(
            {
                "date": r.start_date,
                "consumption_wh_per_km": wh_km,
                "outside_temp_c": temp,
                "avg_speed_kmh": speed,
                "distance_km": distance,
            }
        )
        # Each bin sums energy and distance, so its mean is weighted by distance driven.
        if temp is not None:
            acc = by_temp.setdefault(int(temp // TEMP_BIN_C * TEMP_BIN_C), [0.0, 0.0])
            acc[0] += energy
            acc[1] += distance
        if speed is not None:
            acc = by_speed.setdefault(int(speed // SPEED_BIN_KMH * SPEED_BIN_KMH), [0.0, 0.0])
            acc[0] += energy
            acc[1] += distance

    def binned(groups: dict[int, list[float]], width: int) -> list[dict[str, Any]]:
        out = []
        for key in sorted(groups):
            energy, dist = groups[key]
            out.append(
                {
                    "from": key,
                    "to": key + width,
                    "consumption_wh_per_km": energy * 1000 / dist if dist else None,
                    "distance_km": dist,
                }
            )
        return out

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
        "by_temperature": binned(by_temp, TEMP_BIN_C),
        "by_speed": binned(by_speed, SPEED_BIN_KMH),
    }
