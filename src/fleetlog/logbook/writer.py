"""The logbook's writes: the machine's effects carried out against TeslaMate's tables.

One :class:`CarLogbook` per car. :meth:`CarLogbook.apply` takes the effects of one
machine step and writes all of them in **one transaction**: a step is stored whole
or not at all, so a crash never leaves half a step behind, and what is in the
database is exactly what the next boot resumes from (``logbook.resume``).
:meth:`CarLogbook.apply_steps` does the same for several steps in order (the
executor's group commit).

The machine names rows by *ref*; this module maps refs to database ids. The map
changes only after a commit, so a failed transaction leaves it as it was and the
same batch can be applied again.

Closing a drive or a charging process computes its aggregates from the rows
stored for it (``logbook.aggregates``), as TeslaMate does in SQL; the car's
efficiency factor is recalculated after every charge. Addresses, geofences and
charge cost are not decided here: :class:`Places` and :class:`ChargeCost` are the
hooks that ``fleetlog.places.PlaceFinder`` and ``fleetlog.costs.ChargeCostCalculator``
fill (the defaults leave those columns NULL). :class:`~fleetlog.places.Place` is the
places package's own, so the finder fits the protocol as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import sqlalchemy as sa

from fleetlog.logbook import summaries
from fleetlog.logbook.aggregates import (
    ChargeAggregates,
    charge_aggregates,
    drive_aggregates,
    is_phantom_drive,
)
from fleetlog.logbook.efficiency import ChargeForEfficiency, efficiency_factor
from fleetlog.logbook.records import ChargeSample, Position
from fleetlog.logs import log_event
from fleetlog.model.observation import VehicleState
from fleetlog.places.lookup import Place
from fleetlog.store import tables as t
from fleetlog.store.engine import write_transaction
from fleetlog.vehicle import effects as fx
from fleetlog.vehicle.settings import CarSettings

log = logging.getLogger(__name__)

# --- hooks for places and costs -----------------------------------------------------------


class Places(Protocol):
    """Address and geofence lookup (the Places issue); runs inside the write transaction."""

    def place(self, conn: sa.Connection, car_id: int, latitude: float, longitude: float) -> Place:
        """The address and geofence of a point; ``Place()`` when unknown."""
        ...


class ChargeCost(Protocol):
    """The cost of a closed charging process (the costs issue)."""

    def cost(
        self,
        conn: sa.Connection,
        car_id: int,
        aggregates: ChargeAggregates,
        geofence_id: int | None,
    ) -> float | None: ...


class NoPlaces:
    """No geocoding, no geofences: the columns stay NULL (filled later by a repair job)."""

    def place(self, conn: sa.Connection, car_id: int, latitude: float, longitude: float) -> Place:
        return Place()


class NoCost:
    def cost(
        self,
        conn: sa.Connection,
        car_id: int,
        aggregates: ChargeAggregates,
        geofence_id: int | None,
    ) -> float | None:
        return None


# --- conversions --------------------------------------------------------------------------


def db_time(at: datetime) -> datetime:
    """TeslaMate's timestamps are UTC without a zone."""
    if at.tzinfo is None:
        return at
    return at.astimezone(UTC).replace(tzinfo=None)


def utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    return float(value) if isinstance(value, Decimal | int | float) else None


def _small(value: float | int | None) -> int | None:
    """A smallint column: whole numbers, clamped to the column's range."""
    if value is None:
        return None
    return max(-32768, min(32767, round(value)))


_POSITION_SMALLINTS = frozenset({"elevation", "speed", "power", "battery_level"})
_POSITION_SMALLINTS |= {"usable_battery_level"}
_SAMPLE_SMALLINTS = frozenset(
    {
        "battery_level",
        "usable_battery_level",
        "charger_actual_current",
        "charger_pilot_current",
        "charger_voltage",
        "charger_phases",
        "charger_power",
    }
)


#: The rows' columns, looked up once (``dataclasses.fields`` per row was a measurable cost).
_POSITION_COLUMNS = tuple(f.name for f in fields(Position))
_SAMPLE_COLUMNS = tuple(f.name for f in fields(ChargeSample))


def position_row(p: Position, car_id: int, drive_id: int | None) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in _POSITION_COLUMNS:
        value = getattr(p, name)
        if name == "date":
            value = db_time(value)
        elif name in _POSITION_SMALLINTS:
            value = _small(value)
        row[name] = value
    row["car_id"] = car_id
    row["drive_id"] = drive_id
    return row


def position_from_row(row: sa.RowMapping) -> Position:
    values: dict[str, Any] = {}
    for name in _POSITION_COLUMNS:
        value = row[name]
        if name == "date":
            value = utc(value)
        elif isinstance(value, Decimal):
            value = float(value)
        values[name] = value
    return Position(**values)


def sample_row(s: ChargeSample, process_id: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in _SAMPLE_COLUMNS:
        value = getattr(s, name)
        if name == "date":
            value = db_time(value)
        elif name in _SAMPLE_SMALLINTS:
            value = _small(value)
        row[name] = value
    row["charging_process_id"] = process_id
    return row


def sample_from_row(row: sa.RowMapping) -> ChargeSample:
    values: dict[str, Any] = {}
    for name in _SAMPLE_COLUMNS:
        value = row[name]
        if name == "date":
            value = utc(value)
        elif isinstance(value, Decimal):
            value = float(value)
        values[name] = value
    return ChargeSample(**values)


# --- cars ---------------------------------------------------------------------------------

_MODELS = {
    "models": "S",
    "models2": "S",
    "model3": "3",
    "modelx": "X",
    "modely": "Y",
    "cybertruck": "Cybertruck",
    "lychee": "S",
    "tamarind": "X",
}


def model_from_car_type(car_type: str | None) -> str | None:
    """``vehicle_config.car_type`` → TeslaMate's ``cars.model`` ("S", "3", "X", "Y", …)."""
    if car_type is None:
        return None
    return _MODELS.get(car_type.lower(), car_type)


@dataclass(frozen=True, slots=True)
class CarIdentity:
    """What identifies a car and what ``cars`` shows about it."""

    eid: int  # the product id
    vid: int | None  # the streaming vehicle_id
    vin: str
    name: str | None = None
    model: str | None = None
    trim_badging: str | None = None
    exterior_color: str | None = None
    wheel_type: str | None = None
    spoiler_type: str | None = None

    def with_state(self, vs: VehicleState) -> CarIdentity:
        """The identity completed from a full snapshot (``vehicle_config``, the name)."""
        return replace(
            self,
            name=vs.display_name or self.name,
            model=model_from_car_type(vs.car_type) or self.model,
            trim_badging=vs.trim_badging or self.trim_badging,
            exterior_color=vs.exterior_color or self.exterior_color,
            wheel_type=vs.wheel_type or self.wheel_type,
            spoiler_type=vs.spoiler_type or self.spoiler_type,
        )


@dataclass(frozen=True, slots=True)
class RegisteredCar:
    car_id: int
    settings: CarSettings


def _car_settings(row: sa.RowMapping) -> CarSettings:
    return CarSettings(
        **{f.name: row[f.name] for f in fields(CarSettings) if f.name in row},
    )


def register_car(engine: sa.Engine, identity: CarIdentity, now: datetime) -> RegisteredCar:
    """Insert or update the car's ``cars`` row (and its ``car_settings``), by VIN or id."""
    stamp = db_time(now).replace(microsecond=0)
    with write_transaction(engine) as conn:
        row = (
            conn.execute(
                sa.select(t.cars).where(
                    sa.or_(t.cars.c.vin == identity.vin, t.cars.c.eid == identity.eid)
                )
            )
            .mappings()
            .first()
        )
        values = _identity_values(identity)
        if row is None:
            settings_id = conn.execute(
                sa.insert(t.car_settings).values().returning(t.car_settings.c.id)
            ).scalar_one()
            car_id = conn.execute(
                sa.insert(t.cars)
                .values(
                    eid=identity.eid,
                    vid=identity.vid if identity.vid is not None else identity.eid,
                    vin=identity.vin,
                    settings_id=settings_id,
                    inserted_at=stamp,
                    updated_at=stamp,
                    **values,
                )
                .returning(t.cars.c.id)
            ).scalar_one()
            log_event(log, logging.INFO, "car registered", car_id=car_id, vin=identity.vin)
        else:
            car_id, settings_id = row["id"], row["settings_id"]
            changes = {k: v for k, v in values.items() if row[k] != v}
            if row["eid"] != identity.eid:
                changes["eid"] = identity.eid
            if identity.vid is not None and row["vid"] != identity.vid:
                changes["vid"] = identity.vid
            if changes:
                conn.execute(
                    sa.update(t.cars)
                    .where(t.cars.c.id == car_id)
                    .values(updated_at=stamp, **changes)
                )
        settings = (
            conn.execute(sa.select(t.car_settings).where(t.car_settings.c.id == settings_id))
            .mappings()
            .one()
        )
    return RegisteredCar(int(car_id), _car_settings(settings))


def _identity_values(identity: CarIdentity) -> dict[str, Any]:
    values = {
        "name": identity.name,
        "model": identity.model,
        "trim_badging": identity.trim_badging,
        "exterior_color": identity.exterior_color,
        "wheel_type": identity.wheel_type,
        "spoiler_type": identity.spoiler_type,
    }
    return {k: v for k, v in values.items() if v is not None}


def update_identity(engine: sa.Engine, car_id: int, identity: CarIdentity, now: datetime) -> None:
    """Write what a full snapshot told about the car (model, trim, colours, name)."""
    values = _identity_values(identity)
    if not values:
        return
    with engine.begin() as conn:
        conn.execute(
            sa.update(t.cars)
            .where(t.cars.c.id == car_id)
            .values(updated_at=db_time(now).replace(microsecond=0), **values)
        )


# --- the per-car logbook ------------------------------------------------------------------


@dataclass(slots=True)
class Refs:
    """The machine's refs → database ids, per kind of row."""

    drives: dict[int, int] = field(default_factory=dict)
    charges: dict[int, int] = field(default_factory=dict)
    states: dict[int, int] = field(default_factory=dict)
    updates: dict[int, int] = field(default_factory=dict)

    def copy(self) -> Refs:
        return Refs(dict(self.drives), dict(self.charges), dict(self.states), dict(self.updates))


#: The effects that touch the database; the others are the executor's.
DB_EFFECTS = (
    fx.InsertPosition,
    fx.OpenDrive,
    fx.CloseDrive,
    fx.DropDrive,
    fx.OpenChargingProcess,
    fx.AddChargeSample,
    fx.MoveChargeStart,
    fx.CloseChargingProcess,
    fx.StartState,
    fx.EndState,
    fx.OpenUpdate,
    fx.CloseUpdate,
    fx.CancelUpdate,
)


class CarLogbook:
    """One car's rows: carries out the machine's database effects."""

    def __init__(
        self,
        engine: sa.Engine,
        car_id: int,
        *,
        refs: Refs | None = None,
        places: Places | None = None,
        costs: ChargeCost | None = None,
    ) -> None:
        self.engine = engine
        self.car_id = car_id
        self.refs = refs or Refs()
        self.places: Places = places or NoPlaces()
        self.costs: ChargeCost = costs or NoCost()

    def apply(self, effects: Sequence[fx.Effect]) -> None:
        """Write the database effects of one step in one transaction (others are ignored)."""
        self.apply_steps([effects])

    def apply_steps(self, steps: Sequence[Sequence[fx.Effect]]) -> None:
        """Write the database effects of several steps, in order, in one transaction.

        All of them or none: the refs change only once the transaction is committed.
        """
        todo = [e for effects in steps for e in effects if isinstance(e, DB_EFFECTS)]
        if not todo:
            return
        refs = self.refs.copy()
        with write_transaction(self.engine) as conn:
            run = _PositionRun(conn, self.car_id)
            for effect in todo:
                if isinstance(effect, fx.InsertPosition) and run.add(refs, effect):
                    continue
                run.flush()
                self._apply(conn, refs, effect)
                if isinstance(effect, fx.InsertPosition | fx.OpenChargingProcess):
                    run.forget()  # a position went in the careful way: look again
            run.flush()
        self.refs = refs  # only once committed

    # --- one effect -------------------------------------------------------------------

    def _apply(self, conn: sa.Connection, refs: Refs, e: fx.Effect) -> None:
        match e:
            case fx.InsertPosition(position=p, drive_ref=ref):
                drive_id = refs.drives.get(ref) if ref is not None else None
                if ref is not None and drive_id is None:
                    self._unknown("drive", ref, "position stored outside a drive")
                self._insert_position(conn, p, drive_id)
            case fx.OpenDrive(ref=ref, start=start):
                refs.drives[ref] = conn.execute(
                    sa.insert(t.drives)
                    .values(car_id=self.car_id, start_date=db_time(start.date))
                    .returning(t.drives.c.id)
                ).scalar_one()
            case fx.CloseDrive(ref=ref, final=final):
                drive_id = (
                    self._closing(refs.drives, ref, "drive") if final else refs.drives.get(ref)
                )
                if drive_id is not None and not close_drive(
                    conn, self.car_id, drive_id, self.places
                ):
                    refs.drives.pop(ref, None)  # a phantom, deleted: nothing left to settle
            case fx.DropDrive(ref=ref):
                drive_id = refs.drives.pop(ref, None)
                if drive_id is not None:
                    drop_drive(conn, drive_id)
            case fx.OpenChargingProcess():
                self._open_charge(conn, refs, e)
            case fx.AddChargeSample(charge_ref=ref, sample=sample):
                process_id = refs.charges.get(ref)
                if process_id is None:
                    self._unknown("charging process", ref, "sample skipped")
                else:
                    insert_sample(conn, process_id, sample)
            case fx.MoveChargeStart(ref=ref, start_date=start, moved_from=old):
                process_id = refs.charges.get(ref)
                if process_id is None:
                    self._unknown("charging process", ref, "start not moved")
                else:
                    move_charge_start(conn, process_id, old, start)
            case fx.CloseChargingProcess(ref=ref, end_date=end):
                if (process_id := self._closing(refs.charges, ref, "charging process")) is not None:
                    close_charge(conn, self.car_id, process_id, end, self.costs)
                    recalculate_efficiency(conn, self.car_id)
            case fx.StartState(ref=ref, status=status, start=start):
                refs.states[ref] = start_state(conn, self.car_id, status.value, start)
            case fx.EndState(ref=ref, end=end):
                state_id = refs.states.pop(ref, None)
                if state_id is not None:
                    conn.execute(
                        sa.update(t.states)
                        .where(t.states.c.id == state_id, t.states.c.end_date.is_(None))
                        .values(
                            end_date=sa.case(
                                (t.states.c.start_date > db_time(end), t.states.c.start_date),
                                else_=db_time(end),
                            )
                        )
                    )
            case fx.OpenUpdate(ref=ref, start_date=start, version=version):
                refs.updates[ref] = conn.execute(
                    sa.insert(t.updates)
                    .values(car_id=self.car_id, start_date=db_time(start), version=version)
                    .returning(t.updates.c.id)
                ).scalar_one()
            case fx.CloseUpdate(ref=ref, end_date=end, version=version):
                if (update_id := self._closing(refs.updates, ref, "update")) is not None:
                    conn.execute(
                        sa.update(t.updates)
                        .where(t.updates.c.id == update_id)
                        .values(end_date=db_time(end), version=version)
                    )
            case fx.CancelUpdate(ref=ref):
                update_id = refs.updates.pop(ref, None)
                if update_id is not None:
                    conn.execute(sa.delete(t.updates).where(t.updates.c.id == update_id))
            case _:
                pass

    def _insert_position(self, conn: sa.Connection, p: Position, drive_id: int | None) -> int:
        return insert_position(conn, self.car_id, p, drive_id)

    def _open_charge(self, conn: sa.Connection, refs: Refs, e: fx.OpenChargingProcess) -> None:
        if e.position is not None:
            position_id: int | None = self._insert_position(conn, e.position, None)
            lat, lon = e.position.latitude, e.position.longitude
        else:
            # charging_processes.position_id is NOT NULL: the last known position stands in
            last = conn.execute(
                sa.select(t.positions.c.id, t.positions.c.latitude, t.positions.c.longitude)
                .where(t.positions.c.car_id == self.car_id)
                .order_by(t.positions.c.date.desc(), t.positions.c.id.desc())
                .limit(1)
            ).first()
            if last is None:
                log_event(
                    log,
                    logging.ERROR,
                    "charging process without any position: not stored",
                    car_id=self.car_id,
                    ref=e.ref,
                )
                return
            position_id, lat, lon = last[0], float(last[1]), float(last[2])
        place = self.places.place(conn, self.car_id, lat, lon)
        refs.charges[e.ref] = conn.execute(
            sa.insert(t.charging_processes)
            .values(
                car_id=self.car_id,
                position_id=position_id,
                start_date=db_time(e.start_date),
                address_id=place.address_id,
                geofence_id=place.geofence_id,
            )
            .returning(t.charging_processes.c.id)
        ).scalar_one()

    def _closing(self, ids: dict[int, int], ref: int, kind: str) -> int | None:
        """The id of the row `ref` names, forgotten as it closes; None (logged) when unknown."""
        row_id = ids.pop(ref, None)
        if row_id is None:
            self._unknown(kind, ref, "close skipped")
        return row_id

    def _unknown(self, kind: str, ref: int, what: str) -> None:
        log_event(
            log, logging.WARNING, f"unknown {kind} ref", car_id=self.car_id, ref=ref, what=what
        )


# --- the writes, one function each (also used by resume and repairs) ----------------------


#: How far a position is moved to keep one position per car and instant.
POSITION_TICK = timedelta(milliseconds=1)

# Statements built once: building and cache-keying an ``insert().values(row)`` per row cost
# more than the database's own work (bench/ingest.py). Parameters are bound at execution.
# `car_id + 0`: keep the planners (SQLite's above all, which weighs both indexes the same)
# off the car_id index, which visits every position the car ever had; the date index holds
# only the few rows at that instant, or from `floor` on.
_p = t.positions
_ZERO: sa.ColumnElement[int] = sa.literal_column("0", sa.Integer)
_SAME_INSTANT = (
    sa.select(_p)
    .where(_p.c.date == sa.bindparam("date"), _p.c.car_id + _ZERO == sa.bindparam("car_id"))
    .limit(1)
)
_LATEST_FROM = sa.select(sa.func.max(_p.c.date)).where(
    _p.c.date >= sa.bindparam("floor"), _p.c.car_id + _ZERO == sa.bindparam("car_id")
)
_INSERT_POSITION = sa.insert(_p)
_INSERT_POSITION_ID = sa.insert(_p).returning(_p.c.id)
_INSERT_SAMPLE = sa.insert(t.charges)


class _PositionRun:
    """Positions later than any the car has stored, written together as one executemany.

    Such a position cannot meet a stored one at its instant, so it needs none of
    :func:`insert_position`'s care and no id back; in a burst of steps nearly every position
    is one. ``latest`` is an instant no stored position of the car is after (None: not known
    yet, the database is asked, from the position's own instant on, which an index on
    ``date`` answers at once). Anything else goes the careful way, after :meth:`flush`.
    """

    __slots__ = ("car_id", "conn", "latest", "rows")

    def __init__(self, conn: sa.Connection, car_id: int) -> None:
        self.conn = conn
        self.car_id = car_id
        self.latest: datetime | None = None
        self.rows: list[dict[str, Any]] = []

    def add(self, refs: Refs, e: fx.InsertPosition) -> bool:
        """Take the position if it is later than the car's latest; False: not taken."""
        drive_id = refs.drives.get(e.drive_ref) if e.drive_ref is not None else None
        if e.drive_ref is not None and drive_id is None:
            return False  # the careful way says so in the log
        row = position_row(e.position, self.car_id, drive_id)
        at: datetime = row["date"]
        if self.latest is None:
            found = self.conn.execute(_LATEST_FROM, {"car_id": self.car_id, "floor": at})
            stored: datetime | None = found.scalar()
            if stored is not None:  # the car has a position at or after `at`
                self.latest = stored
                return False
        elif at <= self.latest:
            return False
        self.rows.append(row)
        self.latest = at
        return True

    def forget(self) -> None:
        """A position was written some other way: ask again before taking the next."""
        self.latest = None

    def flush(self) -> None:
        if self.rows:
            self.conn.execute(_INSERT_POSITION, self.rows)
            self.rows = []


def insert_position(conn: sa.Connection, car_id: int, p: Position, drive_id: int | None) -> int:
    """Store one position; one per car and instant.

    A position at an instant the car already has is either the same look stored again
    (a drive's last look closing it and the same look parked, a replayed frame): it is
    not stored twice, and the stored row's id is returned; or a different reading at the
    same instant (a streamed frame and a ``vehicle_data`` look from the same second):
    it is stored a millisecond later, as the machine places its own ties.
    """
    while True:
        row = position_row(p, car_id, drive_id)
        same = (
            conn.execute(_SAME_INSTANT, {"car_id": car_id, "date": row["date"]}).mappings().first()
        )
        if same is None:
            return int(conn.execute(_INSERT_POSITION_ID, row).scalar_one())
        if _same_look(position_from_row(same), p):
            if drive_id is not None and same["drive_id"] is None:
                # the look belongs to the drive (it is where it began or ended)
                conn.execute(
                    sa.update(t.positions)
                    .where(t.positions.c.id == same["id"])
                    .values(drive_id=drive_id)
                )
            return int(same["id"])
        if drive_id is not None and same["drive_id"] is None:
            # A drive's reading of an instant stored outside any drive (the look that showed
            # the car in gear, kept first as where it stood): the drive's reading wins, so the
            # drive starts at that instant and the instant keeps one position.
            conn.execute(sa.update(t.positions).where(t.positions.c.id == same["id"]).values(row))
            return int(same["id"])
        p = replace(p, date=p.date + POSITION_TICK)


def _same_look(a: Position, b: Position) -> bool:
    """The same place, odometer, speed and range: one look, whichever way it came."""
    return (
        _close(a.latitude, b.latitude, 1e-6)
        and _close(a.longitude, b.longitude, 1e-6)
        and _close(a.odometer, b.odometer, 1e-3)
        and _close(a.speed, b.speed, 0.5)
        and _close(a.ideal_battery_range_km, b.ideal_battery_range_km, 1e-3)
    )


def _close(a: float | None, b: float | None, tolerance: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tolerance


def drive_positions(conn: sa.Connection, drive_id: int) -> tuple[list[int], list[Position]]:
    rows = (
        conn.execute(
            sa.select(t.positions)
            .where(t.positions.c.drive_id == drive_id)
            .order_by(t.positions.c.date, t.positions.c.id)
        )
        .mappings()
        .all()
    )
    return [r["id"] for r in rows], [position_from_row(r) for r in rows]


def close_drive(conn: sa.Connection, car_id: int, drive_id: int, places: Places) -> bool:
    """Compute the drive's aggregates from its positions; a phantom drive is deleted.

    Returns whether the drive was kept.
    """
    ids, positions = drive_positions(conn, drive_id)
    if is_phantom_drive(positions):
        drop_drive(conn, drive_id)
        return False
    a = drive_aggregates(
        positions,
        parked_before=_parked_next_to(conn, car_id, positions[0].date, before=True),
        parked_after=_parked_next_to(conn, car_id, positions[-1].date, before=False),
    )
    first, last = positions[a.start_index], positions[a.end_index]
    start_place = places.place(conn, car_id, first.latitude, first.longitude)
    end_place = places.place(conn, car_id, last.latitude, last.longitude)
    conn.execute(
        sa.update(t.drives)
        .where(t.drives.c.id == drive_id)
        .values(
            start_date=db_time(a.start_date),
            end_date=db_time(a.end_date),
            start_position_id=ids[a.start_index],
            end_position_id=ids[a.end_index],
            start_km=a.start_km,
            end_km=a.end_km,
            distance=a.distance,
            duration_min=_small(a.duration_min),
            speed_max=_small(a.speed_max),
            power_max=_small(a.power_max),
            power_min=_small(a.power_min),
            outside_temp_avg=a.outside_temp_avg,
            inside_temp_avg=a.inside_temp_avg,
            start_ideal_range_km=a.start_ideal_range_km,
            end_ideal_range_km=a.end_ideal_range_km,
            start_rated_range_km=a.start_rated_range_km,
            end_rated_range_km=a.end_rated_range_km,
            ascent=a.ascent,
            descent=a.descent,
            start_address_id=start_place.address_id,
            end_address_id=end_place.address_id,
            start_geofence_id=start_place.geofence_id,
            end_geofence_id=end_place.geofence_id,
        )
    )
    summaries.drive_closed(conn, drive_id)
    return True


def _parked_next_to(
    conn: sa.Connection, car_id: int, at: datetime, *, before: bool
) -> Position | None:
    """The car's nearest complete position outside any drive before (after) `at`."""
    p = t.positions
    query = sa.select(p).where(
        p.c.car_id == car_id,
        p.c.drive_id.is_(None),
        p.c.odometer.is_not(None),
        p.c.ideal_battery_range_km.is_not(None),
    )
    if before:
        query = query.where(p.c.date <= db_time(at)).order_by(p.c.date.desc(), p.c.id.desc())
    else:
        query = query.where(p.c.date >= db_time(at)).order_by(p.c.date, p.c.id)
    row = conn.execute(query.limit(1)).mappings().first()
    return None if row is None else position_from_row(row)


def drop_drive(conn: sa.Connection, drive_id: int) -> None:
    """Delete a phantom drive; its positions stay, outside any drive."""
    conn.execute(
        sa.update(t.positions).where(t.positions.c.drive_id == drive_id).values(drive_id=None)
    )
    conn.execute(sa.delete(t.drives).where(t.drives.c.id == drive_id))


def insert_sample(conn: sa.Connection, process_id: int, sample: ChargeSample) -> None:
    if sample.ideal_battery_range_km is None:
        # the column is NOT NULL; the rated range is the closest stand-in
        if sample.rated_battery_range_km is None:
            log_event(
                log, logging.WARNING, "charge sample without range skipped", process=process_id
            )
            return
        sample = replace(sample, ideal_battery_range_km=sample.rated_battery_range_km)
    conn.execute(_INSERT_SAMPLE, sample_row(sample, process_id))


def charge_samples(conn: sa.Connection, process_id: int) -> list[ChargeSample]:
    rows = (
        conn.execute(
            sa.select(t.charges)
            .where(t.charges.c.charging_process_id == process_id)
            .order_by(t.charges.c.date, t.charges.c.id)
        )
        .mappings()
        .all()
    )
    return [sample_from_row(r) for r in rows]


def move_charge_start(conn: sa.Connection, process_id: int, old: datetime, new: datetime) -> None:
    """Move a charging process's start, and its sample at the old start, to `new`."""
    ch, cp = t.charges, t.charging_processes
    conn.execute(
        sa.update(ch)
        .where(ch.c.charging_process_id == process_id, ch.c.date == db_time(old))
        .values(date=db_time(new))
    )
    conn.execute(sa.update(cp).where(cp.c.id == process_id).values(start_date=db_time(new)))


def close_charge(
    conn: sa.Connection, car_id: int, process_id: int, end: datetime, costs: ChargeCost
) -> None:
    """Compute the charging process's aggregates from its samples and close it."""
    samples = charge_samples(conn, process_id)
    if not samples:
        conn.execute(
            sa.update(t.charging_processes)
            .where(t.charging_processes.c.id == process_id)
            .values(end_date=db_time(end), duration_min=0)
        )
        return
    a = charge_aggregates(samples)
    geofence_id = conn.execute(
        sa.select(t.charging_processes.c.geofence_id).where(t.charging_processes.c.id == process_id)
    ).scalar_one_or_none()
    cost = costs.cost(conn, car_id, a, geofence_id)
    conn.execute(
        sa.update(t.charging_processes)
        .where(t.charging_processes.c.id == process_id)
        .values(
            start_date=db_time(a.start_date),
            end_date=db_time(a.end_date),
            charge_energy_added=a.charge_energy_added,
            charge_energy_used=a.charge_energy_used,
            start_ideal_range_km=a.start_ideal_range_km,
            end_ideal_range_km=a.end_ideal_range_km,
            start_rated_range_km=a.start_rated_range_km,
            end_rated_range_km=a.end_rated_range_km,
            start_battery_level=a.start_battery_level,
            end_battery_level=a.end_battery_level,
            duration_min=_small(a.duration_min),
            outside_temp_avg=a.outside_temp_avg,
            cost=cost,
        )
    )


def recalculate_efficiency(conn: sa.Connection, car_id: int) -> float | None:
    """Recompute ``cars.efficiency`` from the car's closed charges (preferred range type)."""
    preferred = conn.execute(sa.select(t.settings.c.preferred_range).limit(1)).scalar()
    cp = t.charging_processes
    start_col, end_col = (
        (cp.c.start_ideal_range_km, cp.c.end_ideal_range_km)
        if preferred == "ideal"
        else (cp.c.start_rated_range_km, cp.c.end_rated_range_km)
    )
    rows = conn.execute(
        sa.select(
            cp.c.duration_min,
            cp.c.end_battery_level,
            start_col,
            end_col,
            cp.c.charge_energy_added,
        ).where(cp.c.car_id == car_id, cp.c.end_date.is_not(None))
    ).all()
    factor = efficiency_factor(
        ChargeForEfficiency(r[0], r[1], _num(r[2]), _num(r[3]), _num(r[4])) for r in rows
    )
    if factor is not None:
        conn.execute(sa.update(t.cars).where(t.cars.c.id == car_id).values(efficiency=factor))
    return factor


def start_state(conn: sa.Connection, car_id: int, status: str, start: datetime) -> int:
    """Close the car's open state at `start` and open a new one (one open state per car)."""
    at = db_time(start)
    st = t.states
    open_rows = conn.execute(
        sa.select(st.c.id, st.c.start_date).where(st.c.car_id == car_id, st.c.end_date.is_(None))
    ).all()
    for state_id, started in open_rows:
        conn.execute(sa.update(st).where(st.c.id == state_id).values(end_date=max(at, started)))
    return int(
        conn.execute(
            sa.insert(st).values(car_id=car_id, state=status, start_date=at).returning(st.c.id)
        ).scalar_one()
    )
