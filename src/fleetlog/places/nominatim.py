"""Nominatim (OpenStreetMap) reverse geocoding, public or self-hosted.

Requests follow Nominatim's reverse API (``/reverse?format=jsonv2&addressdetails=1…``)
and, to refresh known places in another language, its lookup API (``/lookup?osm_ids=…``,
at most 50 ids a request). ``Accept-Language`` carries the language from the settings
table. The public server's usage policy allows at most one request per second and asks
for an identifying User-Agent: the client spaces its requests (across every caller
sharing it) and names itself.

Nominatim's ``address`` object uses many keys for the same idea (a village, a town or a
hamlet is a city to us); :func:`address_from_reply` folds them into the ``addresses``
columns, preferring the more specific key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from fleetlog import __version__
from fleetlog.logs import log_event
from fleetlog.places.addresses import OSM_TYPES, Address, unknown_address
from fleetlog.places.geocoder import GeocoderError

log = logging.getLogger(__name__)

PUBLIC_URL = "https://nominatim.openstreetmap.org"
LOOKUP_BATCH = 50

# Which keys of Nominatim's `address` object fill which column, most specific first.
_ALIASES: dict[str, tuple[str, ...]] = {
    "house_number": ("house_number", "street_number", "housenumber"),
    "road": (
        "road",
        "street",
        "street_name",
        "footway",
        "pedestrian",
        "path",
        "cycleway",
        "residential",
        "square",
        "road_reference",
        "road_reference_intl",
    ),
    "neighbourhood": (
        "neighbourhood",
        "quarter",
        "suburb",
        "city_block",
        "city_district",
        "district",
        "borough",
        "residential",
        "commercial",
        "industrial",
        "allotments",
        "subdivision",
    ),
    "city": (
        "city",
        "town",
        "village",
        "municipality",
        "township",
        "hamlet",
        "locality",
        "isolated_dwelling",
        "croft",
    ),
    "county": ("county", "county_code", "department", "district"),
    "postcode": ("postcode", "postal_code"),
    "state": ("state", "province", "region", "territory", "state_code"),
    "state_district": ("state_district",),
    "country": ("country", "country_name"),
}

_OSM_LETTER = {"node": "N", "way": "W", "relation": "R"}


def _first(address: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        value = address.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def address_from_reply(reply: Mapping[str, Any]) -> Address:
    """An :class:`Address` from one jsonv2 reverse or lookup result."""
    if "error" in reply:
        return unknown_address(dict(reply))
    osm_type = reply.get("osm_type")
    osm_id = reply.get("osm_id")
    if osm_type not in OSM_TYPES or not isinstance(osm_id, int):
        raise GeocoderError(f"Nominatim reply without an OSM identity: {str(dict(reply))[:200]}")
    details = reply.get("address")
    address = details if isinstance(details, Mapping) else {}
    name = reply.get("name")
    if not (isinstance(name, str) and name.strip()):
        names = reply.get("namedetails")
        name = names.get("name") if isinstance(names, Mapping) else None
    return Address(
        osm_type=osm_type,
        osm_id=osm_id,
        display_name=reply.get("display_name"),
        latitude=_float(reply.get("lat")),
        longitude=_float(reply.get("lon")),
        name=name.strip() if isinstance(name, str) and name.strip() else None,
        raw=dict(reply),
        **{column: _first(address, keys) for column, keys in _ALIASES.items()},
    )


class NominatimGeocoder:
    """A Nominatim client; share one instance so the request spacing holds process-wide."""

    def __init__(
        self,
        base_url: str = PUBLIC_URL,
        *,
        proxy: str | None = None,
        timeout_s: float = 10.0,
        min_interval_s: float = 1.0,
        user_agent: str = f"fleetlog/{__version__}",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.min_interval_s = min_interval_s
        self._client = httpx.AsyncClient(
            proxy=proxy,
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": user_agent, "Accept": "application/json"},
            follow_redirects=True,
        )
        self._gate = asyncio.Lock()
        self._last: float | None = None
        self.requests = 0

    @property
    def source(self) -> str:
        return "osm"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> NominatimGeocoder:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def _get(self, path: str, params: Mapping[str, str], language: str) -> Any:
        url = f"{self.base_url}/{path}"
        async with self._gate:  # one request in flight, and a pause since the previous one
            loop = asyncio.get_running_loop()
            if self._last is not None:
                wait = self._last + self.min_interval_s - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                response = await self._client.get(
                    url, params=params, headers={"Accept-Language": language}
                )
            except httpx.HTTPError as exc:
                raise GeocoderError(f"Nominatim unreachable: {type(exc).__name__}: {exc}") from exc
            finally:
                self._last = loop.time()
                self.requests += 1
        if response.status_code != 200:
            raise GeocoderError(f"Nominatim answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise GeocoderError("Nominatim answered something that is not JSON") from exc

    async def reverse(self, latitude: float, longitude: float, language: str) -> Address | None:
        reply = await self._get(
            "reverse",
            {
                "format": "jsonv2",
                "addressdetails": "1",
                "extratags": "1",
                "namedetails": "1",
                "zoom": "19",
                "lat": f"{latitude:.6f}",
                "lon": f"{longitude:.6f}",
            },
            language,
        )
        if not isinstance(reply, Mapping):
            raise GeocoderError("Nominatim's reverse answer is not an object")
        address = address_from_reply(reply)
        log_event(
            log,
            logging.DEBUG,
            "geocoded",
            lat=latitude,
            lon=longitude,
            osm=f"{address.osm_type}:{address.osm_id}",
        )
        return address

    async def lookup(self, places: Sequence[tuple[str, int]], language: str) -> list[Address]:
        ids = [f"{_OSM_LETTER[kind]}{osm_id}" for kind, osm_id in places if kind in _OSM_LETTER]
        found: list[Address] = []
        for start in range(0, len(ids), LOOKUP_BATCH):
            reply = await self._get(
                "lookup",
                {
                    "format": "jsonv2",
                    "addressdetails": "1",
                    "extratags": "1",
                    "namedetails": "1",
                    "osm_ids": ",".join(ids[start : start + LOOKUP_BATCH]),
                },
                language,
            )
            if not isinstance(reply, list):
                raise GeocoderError("Nominatim's lookup answer is not a list")
            found.extend(address_from_reply(r) for r in reply if isinstance(r, Mapping))
        return found
