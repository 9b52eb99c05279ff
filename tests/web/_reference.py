"""The per-row implementations the SQL-side reads replaced, kept as the tests' oracle.

Each function is the page's computation as it was before it moved into SQL (Python over one
row per drive, charge or state). The tests compare the current reads with these on seeded
data, on SQLite and PostgreSQL. Not used by the app.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from fleetlog.store import tables as t
from fleetlog.web.reads import as_float, place_label
from fleetlog.web.reads.drives import drive_energy
from fleetlog.web.reads.idle import MIN_IDLE
from fleetlog.web.reads.statistics import PERIODS, period_key
from fleetlog.web.reads.timeline import MIN_GAP
from fleetlog.web.window import Window

TEMP_BIN_C = 5
SPEED_BIN_KMH = 10


def statistics_reference(
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


def charging_costs_reference(conn: sa.Connection, window: Window) -> list[dict[str, Any]]:
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

    for r in conn.execute(
        sa.select(cp.start_date, cp.cost, cp.charge_energy_added).where(
            *window.where(t.charging_processes), cp.end_date.is_not(None)
        )
    ):
        acc = month(period_key(r.start_date, "month", window.tz))
        acc["cost"] += as_float(r.cost) or 0.0
        acc["energy_added_kwh"] += as_float(r.charge_energy_added) or 0.0
        acc["charges"] += 1
    for r in conn.execute(
        sa.select(d.start_date, d.distance).where(*window.where(t.drives), d.end_date.is_not(None))
    ):
        month(period_key(r.start_date, "month", window.tz))["distance_km"] += (
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


def vampire_drain_reference(conn: sa.Connection, window: Window, preferred: str) -> dict[str, Any]:
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


def timeline_reference(
    conn: sa.Connection, window: Window, *, limit: int = 2000
) -> list[dict[str, Any]]:
    """Segments of the window's car (all cars if none), newest first."""
    d = t.drives.c
    cp = t.charging_processes.c
    up = t.updates.c
    st = t.states.c
    now = datetime.utcnow()
    fg: list[dict[str, Any]] = []
    r: Any
    for r in conn.execute(
        sa.select(d.id, d.car_id, d.start_date, d.end_date, d.distance).where(
            *window.where(t.drives)
        )
    ):
        fg.append(
            {
                "kind": "driving",
                "car_id": r.car_id,
                "start": r.start_date,
                "end": r.end_date or now,
                "ref": f"drives/{r.id}",
                "detail": {"distance_km": as_float(r.distance)},
            }
        )
    for r in conn.execute(
        sa.select(cp.id, cp.car_id, cp.start_date, cp.end_date, cp.charge_energy_added).where(
            *window.where(t.charging_processes)
        )
    ):
        fg.append(
            {
                "kind": "charging",
                "car_id": r.car_id,
                "start": r.start_date,
                "end": r.end_date or now,
                "ref": f"charges/{r.id}",
                "detail": {"energy_added_kwh": as_float(r.charge_energy_added)},
            }
        )
    for r in conn.execute(
        sa.select(up.car_id, up.start_date, up.end_date, up.version).where(*window.where(t.updates))
    ):
        fg.append(
            {
                "kind": "updating",
                "car_id": r.car_id,
                "start": r.start_date,
                "end": r.end_date or now,
                "ref": None,
                "detail": {"version": r.version},
            }
        )
    # States that started before the window but reach into it count too.
    state_window: list[sa.ColumnElement[bool]] = []
    if window.car_id is not None:
        state_window.append(st.car_id == window.car_id)
    if window.end is not None:
        state_window.append(st.start_date < window.end)
    if window.start is not None:
        state_window.append(sa.or_(st.end_date.is_(None), st.end_date > window.start))
    states = conn.execute(
        sa.select(st.car_id, st.state, st.start_date, st.end_date)
        .where(*state_window)
        .order_by(st.car_id, st.start_date)
    ).all()
    lo = window.start
    hi = min(window.end or now, now)
    segments: list[dict[str, Any]] = []
    cars = sorted({e["car_id"] for e in fg} | {s.car_id for s in states})
    for car in cars:
        busy = sorted((e for e in fg if e["car_id"] == car), key=lambda e: e["start"])
        background = [s for s in states if s.car_id == car]
        cursor = lo or min([e["start"] for e in busy] + [s.start_date for s in background] or [hi])
        bi = 0
        for e in [*busy, None]:
            until = e["start"] if e is not None else hi
            # fill [cursor, until) with states and gaps
            while cursor < until:
                while bi < len(background) and (background[bi].end_date or now) <= cursor:
                    bi += 1
                s = background[bi] if bi < len(background) else None
                if s is None or s.start_date >= until:
                    if until - cursor >= MIN_GAP:
                        segments.append(_seg("gap", car, cursor, until))
                    cursor = until
                    break
                if s.start_date > cursor:
                    if s.start_date - cursor >= MIN_GAP:
                        segments.append(_seg("gap", car, cursor, s.start_date))
                    cursor = s.start_date
                    continue
                stop = min(s.end_date or now, until)
                kind = {"online": "parked"}.get(str(s.state), str(s.state))
                if segments and segments[-1]["kind"] == kind and segments[-1]["end"] == cursor:
                    segments[-1]["end"] = stop
                elif stop > cursor:
                    segments.append(_seg(kind, car, cursor, stop))
                cursor = stop
            if e is not None:
                segments.append(e)
                cursor = max(cursor, e["end"])
    for seg in segments:
        seg["duration_min"] = (seg["end"] - seg["start"]).total_seconds() / 60
    segments = [seg for seg in segments if seg["duration_min"] > 0]
    segments.sort(key=lambda seg: seg["start"], reverse=True)
    return segments[:limit]


def _seg(kind: str, car: int, start: datetime, end: datetime) -> dict[str, Any]:
    return {"kind": kind, "car_id": car, "start": start, "end": end, "ref": None, "detail": {}}


def efficiency_reference(conn: sa.Connection, window: Window, preferred: str) -> dict[str, Any]:
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


def charge_levels_reference(conn: sa.Connection, window: Window) -> list[dict[str, Any]]:
    """State of charge at the start and end of every closed drive and charge, from the
    charges' columns and the drives' positions (looked up by primary key)."""
    cp = t.charging_processes.c
    d = t.drives.c
    sp = t.positions.alias("sp")
    ep = t.positions.alias("ep")
    out: list[dict[str, Any]] = []
    for r in conn.execute(
        sa.select(cp.start_date, cp.end_date, cp.start_battery_level, cp.end_battery_level).where(
            *window.where(t.charging_processes), cp.end_date.is_not(None)
        )
    ):
        out.append({"date": r.start_date, "battery_level": r.start_battery_level})
        out.append({"date": r.end_date, "battery_level": r.end_battery_level})
    for r in conn.execute(
        sa.select(d.start_date, d.end_date, sp.c.battery_level, ep.c.battery_level.label("el"))
        .outerjoin(sp, sp.c.id == d.start_position_id)
        .outerjoin(ep, ep.c.id == d.end_position_id)
        .where(*window.where(t.drives), d.end_date.is_not(None))
    ):
        out.append({"date": r.start_date, "battery_level": r.battery_level})
        out.append({"date": r.end_date, "battery_level": r.el})
    out = [p for p in out if p["battery_level"] is not None]
    out.sort(key=lambda p: p["date"])
    return out


def route_points_reference(
    conn: sa.Connection, window: Window, *, limit: int = 5000
) -> list[list[float]]:
    """Start and end positions of the newest drives (open ones too), `limit` at most."""
    d = t.drives.c
    p = t.positions.c
    out: list[list[float]] = []
    for start_id, end_id in conn.execute(
        sa.select(d.start_position_id, d.end_position_id)
        .where(*window.where(t.drives))
        .order_by(d.start_date.desc(), d.id.desc())
        .limit(max(1, limit // 2))
    ):
        for pid in (start_id, end_id):
            row = conn.execute(sa.select(p.latitude, p.longitude).where(p.id == pid)).first()
            if row is not None:
                out.append([float(row.latitude), float(row.longitude)])
    return out[:limit]


def visited_reference(conn: sa.Connection, window: Window) -> list[dict[str, Any]]:
    """Closed drives per end address (and geofence name): visits and last visit."""
    d = t.drives.c
    a = t.addresses.c
    g = t.geofences.c
    places: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in conn.execute(
        sa.select(
            a.id, a.name, a.road, a.city, a.country, a.latitude, a.longitude, g.name, d.end_date
        )
        .select_from(t.drives)
        .join(t.addresses, a.id == d.end_address_id)
        .outerjoin(t.geofences, g.id == d.end_geofence_id)
        .where(*window.where(t.drives), d.end_date.is_not(None))
    ):
        key = tuple(r)[:-1]
        acc = places.setdefault(key, {"visits": 0, "last": r.end_date})
        acc["visits"] += 1
        acc["last"] = max(acc["last"], r.end_date)
    return [
        {
            "address_id": key[0],
            "place": place_label(key[7], key[1], key[2], key[3]),
            "city": key[3],
            "country": key[4],
            "latitude": as_float(key[5]),
            "longitude": as_float(key[6]),
            "visits": acc["visits"],
            "last_visit": acc["last"],
        }
        for key, acc in places.items()
    ]
