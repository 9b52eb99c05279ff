"""Addresses: what a geocoder found, and the ``addresses`` cache that keeps it.

An address is identified by where it came from — ``(osm_type, osm_id)`` — and stored
once: a second drive ending at the same place points at the same row (TeslaMate's unique
index ``addresses_osm_id_osm_type_index``). Storing an address that is already there
refreshes its fields in place, which is how a language change reaches existing rows
without relabelling anything.

Origins in ``osm_type``:

* ``node`` / ``way`` / ``relation`` — OpenStreetMap objects, from Nominatim;
* ``unknown`` with ``osm_id`` 0 — Nominatim answered "Unable to geocode" (as TeslaMate);
* ``offline`` — fleetlog's built-in city-level geocoder; the id is a stable hash of the
  place, and the address repair replaces these when Nominatim is enabled.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from fleetlog.store import tables as t

log = logging.getLogger(__name__)

OSM_TYPES = ("node", "way", "relation")
OFFLINE = "offline"
UNKNOWN = "unknown"

_TEXT_FIELDS = (
    "name",
    "house_number",
    "road",
    "neighbourhood",
    "city",
    "county",
    "postcode",
    "state",
    "state_district",
    "country",
)


@dataclass(frozen=True, slots=True)
class Address:
    """One place as a geocoder describes it (an ``addresses`` row without id and times)."""

    osm_type: str
    osm_id: int
    display_name: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    house_number: str | None = None
    road: str | None = None
    neighbourhood: str | None = None
    city: str | None = None
    county: str | None = None
    postcode: str | None = None
    state: str | None = None
    state_district: str | None = None
    country: str | None = None
    raw: Mapping[str, Any] | None = None

    @property
    def from_osm(self) -> bool:
        """True for an OpenStreetMap object (refreshable through Nominatim's lookup)."""
        return self.osm_type in OSM_TYPES


def unknown_address(raw: Mapping[str, Any] | None = None) -> Address:
    """The placeholder for a point the geocoder has nothing for (one shared row)."""
    return Address(osm_type=UNKNOWN, osm_id=0, raw=raw)


def _fit(value: str | None, size: int) -> str | None:
    # PostgreSQL rejects over-long varchar values; a geocoder's names can be long
    if value is None:
        return None
    value = value.strip()
    return value[:size] if value else None


def _coordinate(value: float | None, places: int) -> Decimal | None:
    return None if value is None else Decimal(f"{value:.{places}f}")


def _row(address: Address) -> dict[str, Any]:
    row: dict[str, Any] = {name: _fit(getattr(address, name), 255) for name in _TEXT_FIELDS}
    row["display_name"] = _fit(address.display_name, 512)
    row["latitude"] = _coordinate(address.latitude, 6)
    row["longitude"] = _coordinate(address.longitude, 6)
    row["raw"] = None if address.raw is None else dict(address.raw)
    row["osm_type"] = address.osm_type
    row["osm_id"] = address.osm_id
    return row


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None, microsecond=0)


def find_address_id(conn: sa.Connection, osm_type: str, osm_id: int) -> int | None:
    """The cached row for this OSM identity, if any."""
    a = t.addresses
    return conn.execute(
        sa.select(a.c.id).where(a.c.osm_type == osm_type, a.c.osm_id == osm_id)
    ).scalar_one_or_none()


def save_address(conn: sa.Connection, address: Address, *, now: datetime | None = None) -> int:
    """Insert the address or refresh the row with the same identity; returns its id.

    Two writers storing the same new place at once both end with the one row: the loser
    of the unique index's race re-reads instead of failing its transaction.
    """
    a = t.addresses
    row = _row(address)
    stamp = _now(now)
    existing = find_address_id(conn, address.osm_type, address.osm_id)
    if existing is not None:
        conn.execute(sa.update(a).where(a.c.id == existing).values(**row, updated_at=stamp))
        return existing
    try:
        with conn.begin_nested():
            new_id: int = conn.execute(
                sa.insert(a).values(**row, inserted_at=stamp, updated_at=stamp).returning(a.c.id)
            ).scalar_one()
            return new_id
    except sa.exc.IntegrityError:
        found = find_address_id(conn, address.osm_type, address.osm_id)
        if found is None:
            raise
        return found


def load_address(conn: sa.Connection, address_id: int) -> Address | None:
    """The stored address with this id."""
    row = conn.execute(sa.select(t.addresses).where(t.addresses.c.id == address_id)).mappings()
    found = row.first()
    if found is None:
        return None
    values = {f.name: found[f.name] for f in fields(Address)}
    for coord in ("latitude", "longitude"):
        if values[coord] is not None:
            values[coord] = float(values[coord])
    return Address(**values)
