"""The timeline: driving, charging, updating, parked, asleep, offline, and gaps, in order.

Drives, charges and updates are the foreground. The time between them is told by ``states``:
online means parked, asleep and offline as recorded. Time no state covers is a gap: the logger
was not running, and Tesla keeps no history to fill it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from fleetlog.store import tables as t
from fleetlog.web.reads import as_float
from fleetlog.web.window import Window

MIN_GAP = timedelta(minutes=10)
KINDS = ("driving", "charging", "updating", "parked", "asleep", "offline", "gap")


def timeline(conn: sa.Connection, window: Window, *, limit: int = 2000) -> list[dict[str, Any]]:
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
