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
FIRST_SPAN = timedelta(days=120)  # about 2,000 segments for a car driven daily
KINDS = ("driving", "charging", "updating", "parked", "asleep", "offline", "gap")


def _where(
    table: sa.Table, car_id: int | None, lo: datetime | None, end: datetime | None
) -> list[sa.ColumnElement[bool]]:
    out: list[sa.ColumnElement[bool]] = []
    if car_id is not None:
        out.append(table.c.car_id == car_id)
    if lo is not None:
        out.append(table.c.start_date >= lo)
    if end is not None:
        out.append(table.c.start_date < end)
    return out


def _newest(segments: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    for seg in segments:
        seg["duration_min"] = (seg["end"] - seg["start"]).total_seconds() / 60
    segments = [seg for seg in segments if seg["duration_min"] > 0]
    segments.sort(key=lambda seg: seg["start"], reverse=True)
    return segments[:limit]


def timeline(conn: sa.Connection, window: Window, *, limit: int = 2000) -> list[dict[str, Any]]:
    """Segments of the window's car (all cars if none), newest first, at most `limit`."""
    now = datetime.utcnow()
    if window.car_id is not None:
        cars = [window.car_id]
    else:
        cars = sorted(
            set(conn.execute(sa.select(t.drives.c.car_id).distinct()).scalars())
            | set(conn.execute(sa.select(t.states.c.car_id).distinct()).scalars())
            | set(conn.execute(sa.select(t.charging_processes.c.car_id).distinct()).scalars())
            | set(conn.execute(sa.select(t.updates.c.car_id).distinct()).scalars())
        )
    out: list[dict[str, Any]] = []
    for car in cars:
        out += _car_timeline(conn, car, window.start, window.end, now, limit)
    return _newest(out, limit)


def _car_timeline(
    conn: sa.Connection,
    car: int,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
    limit: int,
) -> list[dict[str, Any]]:
    """One car's newest `limit` segments, built from as little recent history as gives them.

    Building from a later start `lo` gives the same segments as building from the window's
    start once the first drive, charge or update at or after `lo` has been placed, provided
    nothing before `lo` reaches past that event's start (the cursor is then at the event in
    both). Earlier segments of the shorter build are dropped; if too few remain, the span
    grows fourfold; at the window's start it is the whole build.
    """
    hi = min(end or now, now)
    span = FIRST_SPAN
    while True:
        lo = hi - span
        if start is not None and lo <= start:
            break
        reach = _reach_before(conn, car, start, lo, now)
        if reach is None:
            break  # nothing before lo: the whole build is the same work
        segments, first = _segments(conn, car, lo, end, now)
        i = first.get(car)
        if i is not None and reach <= segments[i]["start"]:
            kept = _newest(segments[i:], limit)
            if len(kept) >= limit:
                return kept
        span *= 4
    return _newest(_segments(conn, car, start, end, now)[0], limit)


def _reach_before(
    conn: sa.Connection, car: int, start: datetime | None, lo: datetime, now: datetime
) -> datetime | None:
    """The latest end (open: now) of the car's drives, charges and updates that start in
    [start, lo); None when there are none."""
    reach: datetime | None = None
    for table in (t.drives, t.charging_processes, t.updates):
        found = conn.execute(
            sa.select(sa.func.max(sa.func.coalesce(table.c.end_date, now))).where(
                *_where(table, car, start, lo)
            )
        ).scalar()
        if found is not None:
            value = found if isinstance(found, datetime) else datetime.fromisoformat(str(found))
            reach = value if reach is None else max(reach, value)
    return reach


def _segments(
    conn: sa.Connection,
    car_id: int | None,
    lo: datetime | None,
    end: datetime | None,
    now: datetime,
) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """Every segment from `lo` (None: the beginning) to `end`, in the order they were built;
    and per car where in that list its first drive, charge or update at or after `lo` is."""
    d = t.drives.c
    cp = t.charging_processes.c
    up = t.updates.c
    st = t.states.c
    fg: list[dict[str, Any]] = []
    r: Any
    for r in conn.execute(
        sa.select(d.id, d.car_id, d.start_date, d.end_date, d.distance).where(
            *_where(t.drives, car_id, lo, end)
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
            *_where(t.charging_processes, car_id, lo, end)
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
        sa.select(up.car_id, up.start_date, up.end_date, up.version).where(
            *_where(t.updates, car_id, lo, end)
        )
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
    if car_id is not None:
        state_window.append(st.car_id == car_id)
    if end is not None:
        state_window.append(st.start_date < end)
    if lo is not None:
        state_window.append(sa.or_(st.end_date.is_(None), st.end_date > lo))
    states = conn.execute(
        sa.select(st.car_id, st.state, st.start_date, st.end_date)
        .where(*state_window)
        .order_by(st.car_id, st.start_date)
    ).all()
    hi = min(end or now, now)
    first: dict[int, int] = {}
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
                first.setdefault(car, len(segments))
                segments.append(e)
                cursor = max(cursor, e["end"])
    return segments, first


def _seg(kind: str, car: int, start: datetime, end: datetime) -> dict[str, Any]:
    return {"kind": kind, "car_id": car, "start": start, "end": end, "ref": None, "detail": {}}
