"""The geocoder seam: one protocol, whichever service answers.

A geocoder turns a point into an :class:`~fleetlog.places.addresses.Address`. It
answers ``None`` when there is nothing at the point (a real answer, cached as such) and
raises :class:`GeocoderError` when it could not answer (timeout, connection refused,
HTTP error, garbage): the caller then leaves the address missing and tries again later.
Nothing on the logging path awaits a geocoder; see :mod:`fleetlog.places.repair`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from fleetlog.places.addresses import Address


class GeocoderError(Exception):
    """The geocoder could not answer this time (the request may be retried later)."""


class Geocoder(Protocol):
    """Reverse geocoding (and refreshing known places in another language)."""

    @property
    def source(self) -> str:
        """Which ``osm_type`` family its answers carry: ``"osm"`` or ``"offline"``."""
        ...

    async def reverse(self, latitude: float, longitude: float, language: str) -> Address | None:
        """The address at a point, ``None`` for nowhere; :class:`GeocoderError` on failure."""
        ...

    async def lookup(self, places: Sequence[tuple[str, int]], language: str) -> list[Address]:
        """Known places ``(osm_type, osm_id)`` again, e.g. in a new language."""
        ...
