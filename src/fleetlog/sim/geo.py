"""Positions on the earth for the simulated cars: distances, bearings, routes and terrain.

Routes are not real roads. They are polylines drawn between real-looking places with a
smooth, seeded wobble, cut into legs that each carry a speed limit and an optional stop at
their end (a junction or a traffic light). That is enough to give a logger what it must
cope with: positions that move along a line, speed that rises and falls, headings and an
elevation profile that makes climbs cost energy and descents give some of it back.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from random import Random

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class Point:
    """A WGS84 position in degrees."""

    lat: float
    lng: float


@dataclass(frozen=True, slots=True)
class Place:
    """A named position a scenario sends cars to."""

    name: str
    point: Point


def distance_m(a: Point, b: Point) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp = p2 - p1
    dl = math.radians(b.lng - a.lng)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bearing_deg(a: Point, b: Point) -> float:
    """Initial bearing from `a` to `b`, 0 = north, 90 = east."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dl = math.radians(b.lng - a.lng)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360.0


def offset(p: Point, north_m: float, east_m: float) -> Point:
    """The point `north_m` north and `east_m` east of `p` (flat-earth, fine below ~100 km)."""
    dlat = north_m / EARTH_RADIUS_M
    dlng = east_m / (EARTH_RADIUS_M * math.cos(math.radians(p.lat)))
    return Point(p.lat + math.degrees(dlat), p.lng + math.degrees(dlng))


def elevation_m(p: Point) -> float:
    """Synthetic terrain: rolling hills a few kilometres wide, at most ~2 % steep.

    Deterministic in the position alone, so a car that comes back to a place is at the
    same height and a round trip's climb and descent cancel.
    """
    return (
        480.0
        + 15.0 * math.sin(p.lat * 40.0) * math.cos(p.lng * 30.0)
        + 6.0 * math.sin(p.lat * 170.0 + p.lng * 110.0)
    )


@dataclass(frozen=True, slots=True)
class Leg:
    """A straight piece of a route, driven at up to `limit_kmh`, waiting `stop_s` at its end."""

    start: Point
    end: Point
    length_m: float
    heading_deg: float
    limit_kmh: float
    stop_s: float


@dataclass(frozen=True, slots=True)
class Route:
    """A drivable polyline from one place to another."""

    name: str
    origin: Place
    destination: Place
    legs: tuple[Leg, ...]

    @property
    def length_m(self) -> float:
        return sum(leg.length_m for leg in self.legs)

    def points(self) -> list[Point]:
        """The polyline's vertices, origin first."""
        return [self.legs[0].start, *(leg.end for leg in self.legs)]


def plan_route(
    origin: Place,
    destination: Place,
    rng: Random,
    *,
    via: tuple[Place, ...] = (),
    highway_kmh: float = 120.0,
    city_kmh: float = 50.0,
) -> Route:
    """A seeded route from `origin` to `destination` (through `via`, in order).

    The first and last ~3 km are town driving with junction stops; long stretches in
    between are rural road or motorway. Vertices sit every ~250 m in town and ~1.5 km
    outside it, which keeps a 700 km road trip to a few hundred legs.
    """
    stops = [origin, *via, destination]
    legs: list[Leg] = []
    for a, b in itertools.pairwise(stops):
        legs.extend(_legs_between(a.point, b.point, rng, highway_kmh, city_kmh))
    return Route(f"{origin.name} → {destination.name}", origin, destination, tuple(legs))


def _legs_between(
    a: Point, b: Point, rng: Random, highway_kmh: float, city_kmh: float
) -> list[Leg]:
    straight = distance_m(a, b)
    if straight < 1.0:
        raise ValueError("a route needs two distinct places")
    # Real roads are ~1.2-1.35x longer than the straight line; a sideways wobble with a
    # few seeded sine components gives that detour and a heading that keeps changing.
    wobble = [
        (rng.uniform(0.04, 0.09), rng.randint(1, 3), rng.uniform(0, math.tau)) for _ in range(3)
    ]
    town_m = min(3_000.0, straight / 2)
    fine, coarse = 250.0, 1_500.0
    # Parameterise by the share u of the straight line; the vertex spacing follows the zone.
    us: list[float] = [0.0]
    jitter: list[float] = [0.0]
    u = 0.0
    while u < 1.0:
        here = u * straight
        step = fine if (here < town_m or here > straight - town_m) else coarse
        u = min(1.0, u + step / straight)
        us.append(u)
        # Small sideways zigzag between vertices: the turns of a real road.
        jitter.append(rng.uniform(-0.35, 0.35) * step if u < 1.0 else 0.0)
    heading = math.radians(bearing_deg(a, b))
    n_hat = (math.cos(heading), math.sin(heading))  # along the line (north, east)
    perp = (-n_hat[1], n_hat[0])
    pts: list[Point] = []
    for u, zig in zip(us, jitter, strict=True):
        side = sum(amp * math.sin(math.pi * k * u + ph) for amp, k, ph in wobble)
        side = side * math.sin(math.pi * u) * straight + zig  # both ends pinned onto the places
        along = u * straight
        north = along * n_hat[0] + side * perp[0]
        east = along * n_hat[1] + side * perp[1]
        pts.append(offset(a, north, east))
    pts[-1] = b
    rural = highway_kmh if straight > 25_000 else min(highway_kmh, 80.0)
    legs: list[Leg] = []
    for i, (p, q) in enumerate(itertools.pairwise(pts)):
        length = distance_m(p, q)
        if length < 0.5:
            continue
        here = us[i + 1] * straight
        in_town = here <= town_m or here >= straight - town_m
        limit = city_kmh if in_town else rural
        stop = rng.uniform(5.0, 40.0) if in_town and rng.random() < 0.25 else 0.0
        legs.append(Leg(p, q, length, bearing_deg(p, q), limit, stop))
    return legs
