"""Crash resume: what the database says was open, handed back to the machine at boot.

A worker that starts reads the car's open drive, charging process, state and
update, the newest recorded update version and the last complete parked
position, and builds the initial :class:`CarState` from them. The machine's
``start`` phase then resumes what is still going on under the same rows, or
closes what ended while fleetlog was down, with the data at hand. Refs are
allocated here (1, 2, …) and mapped to the rows' ids in :class:`Refs`.

Only one open drive and one open charging process can be resumed; older ones (a
crash of an older version, a manual edit) are closed here, as TeslaMate's users
would otherwise close them by hand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa

from fleetlog.logbook.writer import (
    NoCost,
    NoPlaces,
    Refs,
    close_charge,
    close_drive,
    drive_positions,
    utc,
)
from fleetlog.logs import log_event
from fleetlog.model.observation import VehicleState
from fleetlog.store import tables as t
from fleetlog.vehicle.effects import StateStatus
from fleetlog.vehicle.machine import (
    CarState,
    OpenChargeRow,
    OpenDriveRow,
    OpenStateRow,
    OpenUpdateRow,
    gps_path_km,
)
from fleetlog.vehicle.versions import is_newer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OpenRows:
    """The car's unfinished rows, as stored."""

    drive_id: int | None = None
    drive: OpenDriveRow | None = None
    charge_id: int | None = None
    charge: OpenChargeRow | None = None
    state_id: int | None = None
    state: OpenStateRow | None = None
    update_id: int | None = None
    update: OpenUpdateRow | None = None
    last_update_version: str | None = None
    parked: VehicleState | None = None
    parked_at: datetime | None = None

    @property
    def anything_open(self) -> bool:
        return any(x is not None for x in (self.drive, self.charge, self.update))


def read_open_rows(engine: sa.Engine, car_id: int) -> OpenRows:
    """Read (and tidy) what is open for `car_id`; refs are numbered 1…4 in this order."""
    with engine.begin() as conn:
        drive_id, drive = _open_drive(conn, car_id)
        charge_id, charge = _open_charge(conn, car_id)
        state_id, state = _open_state(conn, car_id)
        update_id, update = _open_update(conn, car_id)
        version = _last_update_version(conn, car_id)
        parked_at, parked = _parked(
            conn, car_id, drive.started_at if drive else None, open_drive=drive_id
        )
    return OpenRows(
        drive_id,
        drive,
        charge_id,
        charge,
        state_id,
        state,
        update_id,
        update,
        version,
        parked,
        parked_at,
    )


def resume(state: CarState, rows: OpenRows) -> tuple[CarState, Refs]:
    """The initial state with the open rows restored, and the ref → id map for them."""
    refs = Refs()
    if rows.drive is not None and rows.drive_id is not None:
        refs.drives[rows.drive.ref] = rows.drive_id
    if rows.charge is not None and rows.charge_id is not None:
        refs.charges[rows.charge.ref] = rows.charge_id
    if rows.state is not None and rows.state_id is not None:
        refs.states[rows.state.ref] = rows.state_id
    if rows.update is not None and rows.update_id is not None:
        refs.updates[rows.update.ref] = rows.update_id
    snapshot = rows.parked if rows.parked is not None else state.snapshot
    restored = replace(
        state,
        drive=rows.drive,
        charge=rows.charge,
        state_row=rows.state,
        update=rows.update,
        last_update_version=rows.last_update_version,
        parked=rows.parked,
        parked_at=rows.parked_at,
        still_at=_asleep_since(rows) or state.still_at,
        snapshot=snapshot,
        next_ref=max(state.next_ref, 5),
    )
    if rows.anything_open:
        log_event(
            log,
            logging.INFO,
            "resuming open rows",
            vin=state.vin,
            drive=rows.drive_id,
            charging_process=rows.charge_id,
            update=rows.update_id,
        )
    return restored, refs


def _asleep_since(rows: OpenRows) -> datetime | None:
    """The last stored look that found the car where it parked: the start of the open
    "asleep" row, when it came after the parked position (a sleeping car does not drive).
    A drive unseen while fleetlog was down happened after it, not in the middle of the
    whole time since the car parked."""
    st, parked_at = rows.state, rows.parked_at
    if rows.drive is not None or st is None or parked_at is None:
        return None
    if st.status is not StateStatus.ASLEEP or st.since < parked_at:
        return None
    return st.since


def _open_drive(conn: sa.Connection, car_id: int) -> tuple[int | None, OpenDriveRow | None]:
    d = t.drives
    ids = (
        conn.execute(
            sa.select(d.c.id)
            .where(d.c.car_id == car_id, d.c.end_date.is_(None))
            .order_by(d.c.start_date.desc(), d.c.id.desc())
        )
        .scalars()
        .all()
    )
    for older in ids[1:]:
        log_event(log, logging.WARNING, "closing an older open drive", drive=older)
        close_drive(conn, car_id, older, NoPlaces())
    if not ids:
        return None, None
    drive_id = ids[0]
    start = conn.execute(sa.select(d.c.start_date).where(d.c.id == drive_id)).scalar_one()
    _, positions = drive_positions(conn, drive_id)
    odometers = [p.odometer for p in positions if p.odometer is not None]
    path_km, last_point = gps_path_km(positions)
    return drive_id, OpenDriveRow(
        ref=1,
        started_at=utc(start),
        positions=len(positions),
        start_odometer_km=odometers[0] if odometers else None,
        last_odometer_km=odometers[-1] if odometers else None,
        last_at=positions[-1].date if positions else None,
        path_km=path_km,
        last_point=last_point,
    )


def _open_charge(conn: sa.Connection, car_id: int) -> tuple[int | None, OpenChargeRow | None]:
    cp, ch = t.charging_processes, t.charges
    rows = conn.execute(
        sa.select(cp.c.id, cp.c.start_date)
        .where(cp.c.car_id == car_id, cp.c.end_date.is_(None))
        .order_by(cp.c.start_date.desc(), cp.c.id.desc())
    ).all()
    for older_id, older_start in rows[1:]:
        log_event(log, logging.WARNING, "closing an older open charging process", id=older_id)
        last = conn.execute(
            sa.select(sa.func.max(ch.c.date)).where(ch.c.charging_process_id == older_id)
        ).scalar()
        close_charge(conn, car_id, older_id, utc(last or older_start), NoCost())
    if not rows:
        return None, None
    process_id, start = rows[0]
    count, last = conn.execute(
        sa.select(sa.func.count(), sa.func.max(ch.c.date)).where(
            ch.c.charging_process_id == process_id
        )
    ).one()
    return process_id, OpenChargeRow(
        ref=2,
        started_at=utc(start),
        samples=int(count),
        last_sample_at=utc(last) if last is not None else None,
    )


def _open_state(conn: sa.Connection, car_id: int) -> tuple[int | None, OpenStateRow | None]:
    st = t.states
    row = conn.execute(
        sa.select(st.c.id, st.c.state, st.c.start_date)
        .where(st.c.car_id == car_id, st.c.end_date.is_(None))
        .order_by(st.c.start_date.desc())
        .limit(1)
    ).first()
    if row is None:
        return None, None
    return row[0], OpenStateRow(ref=3, status=StateStatus(row[1]), since=utc(row[2]))


def _open_update(conn: sa.Connection, car_id: int) -> tuple[int | None, OpenUpdateRow | None]:
    u = t.updates
    row = conn.execute(
        sa.select(u.c.id, u.c.start_date, u.c.version)
        .where(u.c.car_id == car_id, u.c.end_date.is_(None))
        .order_by(u.c.start_date.desc())
        .limit(1)
    ).first()
    if row is None:
        return None, None
    return row[0], OpenUpdateRow(ref=4, started_at=utc(row[1]), version=row[2])


def _last_update_version(conn: sa.Connection, car_id: int) -> str | None:
    versions = (
        conn.execute(
            sa.select(t.updates.c.version).where(
                t.updates.c.car_id == car_id, t.updates.c.version.is_not(None)
            )
        )
        .scalars()
        .all()
    )
    newest: str | None = None
    for v in versions:
        if newest is None or is_newer(v, newest):
            newest = v
    return newest


def _parked(
    conn: sa.Connection, car_id: int, before: datetime | None, *, open_drive: int | None = None
) -> tuple[datetime | None, VehicleState | None]:
    """Where the car was last seen parked (before an open drive began): the newest complete
    position not in the open drive, or the end of the newest closed drive if that came
    later (a drive's end is where it parked; a start right after a drive closed, before
    any parked look was stored, must not see the whole drive again as a move between two
    looks)."""
    p, d = t.positions, t.drives
    query = sa.select(p).where(
        p.c.car_id == car_id,
        p.c.ideal_battery_range_km.is_not(None),
        p.c.odometer.is_not(None),
    )
    if open_drive is not None:
        query = query.where(sa.or_(p.c.drive_id.is_(None), p.c.drive_id != open_drive))
    if before is not None:
        query = query.where(p.c.date <= before.replace(tzinfo=None))
    row = conn.execute(query.order_by(p.c.date.desc(), p.c.id.desc()).limit(1)).mappings().first()
    ends = (
        sa.select(p)
        .join(d, d.c.end_position_id == p.c.id)
        .where(d.c.car_id == car_id, d.c.end_date.is_not(None), p.c.odometer.is_not(None))
    )
    if before is not None:
        ends = ends.where(p.c.date <= before.replace(tzinfo=None))
    end = conn.execute(ends.order_by(p.c.date.desc(), p.c.id.desc()).limit(1)).mappings().first()
    if row is None and end is None:
        return None, None
    if row is None or (end is not None and end["date"] > row["date"]):
        # the drive's end is where the car is: place and odometer from it, the battery
        # from the last complete look (a streamed end carries no range)
        assert end is not None
        return utc(end["date"]), _vehicle_state(end, row or end)
    return utc(row["date"]), _vehicle_state(row, row)


def _vehicle_state(place: sa.RowMapping, battery: sa.RowMapping) -> VehicleState:
    def f(row: sa.RowMapping, name: str) -> float | None:
        value = row[name]
        return None if value is None else float(value)

    return VehicleState(
        latitude=f(place, "latitude"),
        longitude=f(place, "longitude"),
        elevation_m=f(place, "elevation"),
        odometer_km=f(place, "odometer"),
        battery_level=battery["battery_level"],
        usable_battery_level=battery["usable_battery_level"],
        ideal_range_km=f(battery, "ideal_battery_range_km"),
        rated_range_km=f(battery, "rated_battery_range_km"),
        est_range_km=f(battery, "est_battery_range_km"),
        outside_temp_c=f(battery, "outside_temp"),
        inside_temp_c=f(battery, "inside_temp"),
    )
