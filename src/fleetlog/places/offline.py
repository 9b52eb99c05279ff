"""City-level reverse geocoding from data shipped with the package (no network).

The data are GeoNames' places with at least 1,000 inhabitants as packaged by
``reverse-geocode``; the nearest one names the city, county, state and country. Far from
any such place (at sea, deep in a desert) the answer is ``None`` rather than a town
hundreds of kilometres away.

Loading the data takes about half a second and some memory, once per process: call
:meth:`OfflineGeocoder.warm` at start-up so the first drive close does not pay for it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from typing import Any

from fleetlog.logs import log_event
from fleetlog.places.addresses import OFFLINE, Address
from fleetlog.places.geocoder import GeocoderError
from fleetlog.places.geometry import distance_m

log = logging.getLogger(__name__)

#: Beyond this distance to the nearest known place the point has no city.
MAX_DISTANCE_M = 100_000.0


def _place_id(record: dict[str, Any]) -> int:
    # A stable id per place (the package's list index is not stable across releases),
    # kept within bigint's positive range.
    lat, lon = float(record["latitude"]), float(record["longitude"])
    key = f"{record.get('country_code')}|{record.get('city')}|{lat:.5f}|{lon:.5f}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1


class OfflineGeocoder:
    """Nearest known city, from in-process data; thread-safe, never blocks on I/O."""

    def __init__(self, *, max_distance_m: float = MAX_DISTANCE_M) -> None:
        self.max_distance_m = max_distance_m
        self._lock = threading.Lock()
        self._loaded = False

    @property
    def source(self) -> str:
        return OFFLINE

    def warm(self) -> None:
        """Load the place data now (otherwise on first use)."""
        self.locate(0.0, 0.0)

    def locate(self, latitude: float, longitude: float) -> Address | None:
        """The city-level address of a point, synchronously; ``None`` when there is none."""
        try:
            import reverse_geocode

            with self._lock:  # the package builds its index lazily, once
                record = dict(reverse_geocode.get((latitude, longitude)))
        except Exception as exc:  # the package's data missing or broken: no address, no crash
            log_event(log, logging.WARNING, "offline geocoder unavailable", error=repr(exc))
            raise GeocoderError(f"offline geocoder unavailable: {exc}") from exc
        city_lat, city_lon = float(record["latitude"]), float(record["longitude"])
        if distance_m(latitude, longitude, city_lat, city_lon) > self.max_distance_m:
            return None
        city = record.get("city") or None
        parts = [p for p in (city, record.get("state"), record.get("country")) if p]
        return Address(
            osm_type=OFFLINE,
            osm_id=_place_id(record),
            display_name=", ".join(parts) or None,
            latitude=city_lat,
            longitude=city_lon,
            city=city,
            county=record.get("county"),
            state=record.get("state"),
            country=record.get("country") or None,
            raw={
                "source": "reverse_geocode",
                "country_code": record.get("country_code"),
                "population": record.get("population"),
            },
        )

    async def reverse(self, latitude: float, longitude: float, language: str) -> Address | None:
        # Names come in the data's language (mostly English); `language` cannot change that.
        return self.locate(latitude, longitude)

    async def lookup(self, places: Sequence[tuple[str, int]], language: str) -> list[Address]:
        return []
