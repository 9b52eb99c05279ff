"""Geofences: named circles, and the labels they put on drives and charging processes.

Membership is decided in Python on both databases: a point belongs to a fence when its
great-circle distance from the centre is *less than* the radius (a point exactly on the
circle is outside, as TeslaMate's ``earth_distance(…) < radius`` has it). Of all fences
containing a point, the nearest centre wins; equal distances go to the lower id so the
answer never depends on row order.

Labels are derived data: ``drives.start_geofence_id``/``end_geofence_id`` (from the
drive's start and end positions) and ``charging_processes.geofence_id`` (from its
position). Every create, edit or delete relabels the rows it can affect — those carrying
the fence's id and those whose position lies near the old or the new circle — so the
history always reads as if the current fences had existed from the start.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

import sqlalchemy as sa

from fleetlog.places.geometry import BoundingBox, bounding_box, distance_m
from fleetlog.store import tables as t

BillingType = Literal["per_kwh", "per_minute"]
BILLING_TYPES: tuple[BillingType, ...] = ("per_kwh", "per_minute")
MAX_RADIUS_M = 5000  # TeslaMate's form accepts 0 < radius < 5000


class GeofenceError(ValueError):
    """A geofence that cannot be stored as given, or one that does not exist."""

    user_facing = True


@dataclass(frozen=True, slots=True)
class Geofence:
    """One ``geofences`` row; money in the geofence's (or its tariff's) currency."""

    id: int
    name: str
    latitude: float
    longitude: float
    radius: int
    billing_type: BillingType = "per_kwh"
    cost_per_unit: Decimal | None = None
    session_fee: Decimal | None = None

    def contains(self, latitude: float, longitude: float) -> bool:
        return distance_m(self.latitude, self.longitude, latitude, longitude) < self.radius


@dataclass(frozen=True, slots=True)
class GeofenceSpec:
    """What a user says about a geofence (no id yet)."""

    name: str
    latitude: float
    longitude: float
    radius: int = 25
    billing_type: BillingType = "per_kwh"
    cost_per_unit: Decimal | None = None
    session_fee: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Relabelled:
    """How many labels a geofence change rewrote."""

    drive_starts: int = 0
    drive_ends: int = 0
    charges: int = 0
    charge_ids: tuple[int, ...] = ()  # processes whose geofence changed (their cost may too)

    @property
    def total(self) -> int:
        return self.drive_starts + self.drive_ends + self.charges


def nearest_containing(
    fences: Iterable[Geofence], latitude: float, longitude: float
) -> Geofence | None:
    """The fence whose centre is nearest among those containing the point, or None."""
    best: tuple[float, int, Geofence] | None = None
    for fence in fences:
        d = distance_m(fence.latitude, fence.longitude, latitude, longitude)
        if d < fence.radius and (best is None or (d, fence.id) < best[:2]):
            best = (d, fence.id, fence)
    return None if best is None else best[2]


def validate(spec: GeofenceSpec) -> GeofenceSpec:
    """`spec` with its name trimmed, or :class:`GeofenceError` saying what is wrong."""
    name = spec.name.strip()
    if not name:
        raise GeofenceError("a geofence needs a name")
    if len(name) > 255:
        raise GeofenceError("a geofence name has at most 255 characters")
    if not -90 <= spec.latitude <= 90:
        raise GeofenceError(f"latitude {spec.latitude} is not between -90 and 90")
    if not -180 <= spec.longitude <= 180:
        raise GeofenceError(f"longitude {spec.longitude} is not between -180 and 180")
    if not 0 < spec.radius < MAX_RADIUS_M:
        raise GeofenceError(f"radius {spec.radius} m is not between 1 and {MAX_RADIUS_M - 1} m")
    if spec.billing_type not in BILLING_TYPES:
        raise GeofenceError(f"billing type must be one of {', '.join(BILLING_TYPES)}")
    if spec.cost_per_unit is not None and spec.cost_per_unit < 0:
        raise GeofenceError("cost per unit cannot be negative")
    if spec.session_fee is not None and spec.session_fee < 0:
        raise GeofenceError("session fee cannot be negative")
    return replace(spec, name=name)


# --- reading ---------------------------------------------------------------------------


def _from_row(row: sa.RowMapping) -> Geofence:
    return Geofence(
        id=row["id"],
        name=row["name"],
        latitude=float(row["latitude"]),
        longitude=float(row["longitude"]),
        radius=int(row["radius"]),
        billing_type=row["billing_type"],
        cost_per_unit=_decimal(row["cost_per_unit"]),
        session_fee=_decimal(row["session_fee"]),
    )


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def list_geofences(conn: sa.Connection) -> list[Geofence]:
    """Every geofence, by name."""
    g = t.geofences
    rows = conn.execute(sa.select(g).order_by(g.c.name, g.c.id)).mappings().all()
    return [_from_row(r) for r in rows]


def get_geofence(conn: sa.Connection, geofence_id: int) -> Geofence:
    """The geofence with this id, or :class:`GeofenceError`."""
    row = (
        conn.execute(sa.select(t.geofences).where(t.geofences.c.id == geofence_id))
        .mappings()
        .first()
    )
    if row is None:
        raise GeofenceError(f"no geofence with id {geofence_id}")
    return _from_row(row)


def find_geofence(conn: sa.Connection, id_or_name: str) -> Geofence:
    """A geofence by id (all digits) or by exact name (which must be unambiguous)."""
    if id_or_name.isdigit():
        return get_geofence(conn, int(id_or_name))
    matches = [f for f in list_geofences(conn) if f.name == id_or_name]
    if not matches:
        raise GeofenceError(f"no geofence named {id_or_name!r}")
    if len(matches) > 1:
        ids = ", ".join(str(f.id) for f in matches)
        raise GeofenceError(f"{len(matches)} geofences are named {id_or_name!r}; use an id ({ids})")
    return matches[0]


def geofence_at(conn: sa.Connection, latitude: float, longitude: float) -> Geofence | None:
    """The geofence a point belongs to (nearest containing centre), or None."""
    return nearest_containing(list_geofences(conn), latitude, longitude)


# --- writing (each relabels what it can affect) ------------------------------------------


def _now(now: datetime | None) -> datetime:
    # ts(0) columns: whole seconds, naive UTC
    return (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None, microsecond=0)


def _values(spec: GeofenceSpec) -> dict[str, object]:
    return {
        "name": spec.name,
        "latitude": Decimal(f"{spec.latitude:.6f}"),
        "longitude": Decimal(f"{spec.longitude:.6f}"),
        "radius": spec.radius,
        "billing_type": spec.billing_type,
        "cost_per_unit": spec.cost_per_unit,
        "session_fee": spec.session_fee,
    }


def create_geofence(
    conn: sa.Connection, spec: GeofenceSpec, *, now: datetime | None = None
) -> tuple[Geofence, Relabelled]:
    """Store a new geofence and label past drives and charges inside it."""
    spec = validate(spec)
    stamp = _now(now)
    new_id = conn.execute(
        sa.insert(t.geofences)
        .values(**_values(spec), inserted_at=stamp, updated_at=stamp)
        .returning(t.geofences.c.id)
    ).scalar_one()
    fence = get_geofence(conn, new_id)
    return fence, relabel(conn, near=[fence], ids=[new_id])


def update_geofence(
    conn: sa.Connection, geofence_id: int, spec: GeofenceSpec, *, now: datetime | None = None
) -> tuple[Geofence, Relabelled]:
    """Replace a geofence's fields and relabel around both its old and its new circle."""
    old = get_geofence(conn, geofence_id)
    spec = validate(spec)
    conn.execute(
        sa.update(t.geofences)
        .where(t.geofences.c.id == geofence_id)
        .values(**_values(spec), updated_at=_now(now))
    )
    fence = get_geofence(conn, geofence_id)
    return fence, relabel(conn, near=[old, fence], ids=[geofence_id])


def delete_geofence(conn: sa.Connection, geofence_id: int) -> Relabelled:
    """Delete a geofence; what it labelled falls to an overlapping fence or to none."""
    old = get_geofence(conn, geofence_id)
    # Relabel first, without the fence, so nothing is left pointing at a deleted row even
    # where the foreign key's ON DELETE SET NULL would not run (an adopted database).
    others = [f for f in list_geofences(conn) if f.id != geofence_id]
    result = relabel(conn, near=[old], ids=[geofence_id], fences=others)
    conn.execute(sa.delete(t.geofences).where(t.geofences.c.id == geofence_id))
    return result


def spec_of(fence: Geofence) -> GeofenceSpec:
    """A geofence's fields as a spec, to edit some of them with `dataclasses.replace`."""
    return GeofenceSpec(
        name=fence.name,
        latitude=fence.latitude,
        longitude=fence.longitude,
        radius=fence.radius,
        billing_type=fence.billing_type,
        cost_per_unit=fence.cost_per_unit,
        session_fee=fence.session_fee,
    )


def relabel(
    conn: sa.Connection,
    *,
    near: Sequence[Geofence] | None = None,
    ids: Sequence[int] = (),
    fences: Sequence[Geofence] | None = None,
) -> Relabelled:
    """Recompute the geofence labels of drives and charges that a change can affect.

    Candidates are rows labelled with one of `ids` and rows whose position lies in the
    bounding box of a circle in `near`; with `near` None every row is a candidate (a full
    relabel). `fences` defaults to every stored geofence.
    """
    current = list_geofences(conn) if fences is None else list(fences)
    boxes = (
        None if near is None else [bounding_box(f.latitude, f.longitude, f.radius) for f in near]
    )
    d, cp = t.drives, t.charging_processes
    starts = _relabel_column(
        conn, d, d.c.start_geofence_id, d.c.start_position_id, boxes, ids, current
    )
    ends = _relabel_column(conn, d, d.c.end_geofence_id, d.c.end_position_id, boxes, ids, current)
    changed = _relabel_column(conn, cp, cp.c.geofence_id, cp.c.position_id, boxes, ids, current)
    return Relabelled(
        drive_starts=len(starts), drive_ends=len(ends), charges=len(changed), charge_ids=changed
    )


def _relabel_column(
    conn: sa.Connection,
    table: sa.Table,
    label: sa.Column[int],
    position: sa.Column[int],
    boxes: Sequence[BoundingBox] | None,
    ids: Sequence[int],
    fences: Sequence[Geofence],
) -> tuple[int, ...]:
    p = t.positions
    query = sa.select(table.c.id, label, p.c.latitude, p.c.longitude).join(p, p.c.id == position)
    if boxes is not None:
        conditions: list[sa.ColumnElement[bool]] = [
            sa.and_(
                p.c.latitude.between(_dec(b.min_lat), _dec(b.max_lat)),
                p.c.longitude.between(_dec(b.min_lon), _dec(b.max_lon)),
            )
            for b in boxes
        ]
        if ids:
            conditions.append(label.in_(list(ids)))
        query = query.where(sa.or_(*conditions))
    changed: list[int] = []
    for row_id, old_label, lat, lon in conn.execute(query).all():
        fence = nearest_containing(fences, float(lat), float(lon))
        new_label = None if fence is None else fence.id
        if new_label != old_label:
            conn.execute(
                sa.update(table).where(table.c.id == row_id).values({label.name: new_label})
            )
            changed.append(row_id)
    return tuple(changed)


def _dec(value: float) -> Decimal:
    # positions store numeric(8,6)/(9,6): compare as decimals on both databases
    return Decimal(f"{value:.7f}")
