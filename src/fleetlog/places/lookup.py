"""Where a drive starts or ends, or a charge happens: the lookup on the logging path.

:class:`PlaceFinder` is what the logbook calls while it closes a drive or opens a
charging process, inside its write transaction. It must be quick and must not fail that
transaction, so it never waits on the network:

* the geofence comes from the ``geofences`` table (a few rows, compared in Python);
* the address comes from the offline geocoder (in-process data) when one is given, and
  is otherwise left NULL for :mod:`fleetlog.places.repair` to fill later — that is also
  where Nominatim's street-level addresses come from, replacing the offline ones.

Anything going wrong with the address (no data, a database hiccup on the insert) costs
only the address: it happens under a savepoint and is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa

from fleetlog.logs import log_event
from fleetlog.places.addresses import save_address
from fleetlog.places.geofences import geofence_at
from fleetlog.places.offline import OfflineGeocoder

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Place:
    """The address and geofence of a point; either may be unknown (None)."""

    address_id: int | None = None
    geofence_id: int | None = None


class PlaceFinder:
    """Geofence and (offline) address of a point, synchronously, inside a transaction."""

    def __init__(self, offline: OfflineGeocoder | None = None) -> None:
        self.offline = offline

    def place(self, conn: sa.Connection, car_id: int, latitude: float, longitude: float) -> Place:
        """The logbook's hook: the place of a point for car `car_id`."""
        fence = geofence_at(conn, latitude, longitude)
        return Place(
            address_id=self.address_id(conn, latitude, longitude, car_id=car_id),
            geofence_id=None if fence is None else fence.id,
        )

    def address_id(
        self, conn: sa.Connection, latitude: float, longitude: float, *, car_id: int | None = None
    ) -> int | None:
        """The cached (or newly stored) offline address of a point; None when unknown."""
        if self.offline is None:
            return None
        try:
            address = self.offline.locate(latitude, longitude)
            if address is None:
                return None
            with conn.begin_nested():
                return save_address(conn, address)
        except Exception as exc:  # an address is never worth a lost drive
            log_event(
                log,
                logging.WARNING,
                "address left for repair",
                car_id=car_id,
                lat=latitude,
                lon=longitude,
                error=repr(exc),
            )
            return None
