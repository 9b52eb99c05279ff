"""Distances on the Earth, the one formula every geofence decision uses.

The sphere's radius is the one PostgreSQL's `earthdistance` extension assumes
(``earth()`` = 6378168 m), so a distance computed here matches ``earth_distance`` on a
TeslaMate database to well under a millimetre at geofence scales.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6378168.0
_M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine, numerically stable at short range)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """A latitude/longitude box that contains a circle: a cheap SQL pre-filter."""

    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float


def bounding_box(lat: float, lon: float, radius_m: float) -> BoundingBox:
    """A box around the circle, padded a little so rounding never cuts a member off."""
    pad = radius_m * 1.01 + 1.0
    dlat = pad / _M_PER_DEG_LAT
    cos_lat = math.cos(math.radians(min(89.0, abs(lat) + dlat)))
    dlon = min(180.0, pad / (_M_PER_DEG_LAT * cos_lat))
    return BoundingBox(lat - dlat, lat + dlat, lon - dlon, lon + dlon)
