"""Fixtures for places tests: a car with drives and charges, and a fake Nominatim.

The fake Nominatim is a real aiohttp server on loopback that answers ``/reverse`` and
``/lookup`` in Nominatim's jsonv2 format from a small table of known places, and can be
told to fail, stall or answer garbage. It records every request it saw.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web

from fleetlog.places.geometry import EARTH_RADIUS_M
from fleetlog.store import tables as t

T0 = datetime(2026, 3, 1, 8, 0)
BERLIN = (52.520008, 13.404954)
MUNICH = (48.137154, 11.576124)


def north_of(lat: float, lon: float, metres: float) -> tuple[float, float]:
    """The point `metres` due north (negative: south) of (lat, lon)."""
    return lat + math.degrees(metres / EARTH_RADIUS_M), lon


@dataclass
class Logbook:
    """Inserts the minimum TeslaMate rows a drive or a charge needs."""

    engine: sa.Engine
    car_id: int = 0
    _clock: datetime = T0

    def __post_init__(self) -> None:
        now = datetime(2026, 1, 1)
        with self.engine.begin() as conn:
            settings_id = conn.execute(
                sa.insert(t.car_settings).values().returning(t.car_settings.c.id)
            ).scalar_one()
            self.car_id = conn.execute(
                sa.insert(t.cars)
                .values(
                    eid=1,
                    vid=2,
                    vin="5YJ3E7EB0KF000001",
                    name="Test",
                    settings_id=settings_id,
                    inserted_at=now,
                    updated_at=now,
                )
                .returning(t.cars.c.id)
            ).scalar_one()

    def _tick(self) -> datetime:
        self._clock += timedelta(minutes=5)
        return self._clock

    def position(self, conn: sa.Connection, lat: float, lon: float) -> int:
        return int(
            conn.execute(
                sa.insert(t.positions)
                .values(
                    car_id=self.car_id,
                    date=self._tick(),
                    latitude=Decimal(f"{lat:.6f}"),
                    longitude=Decimal(f"{lon:.6f}"),
                )
                .returning(t.positions.c.id)
            ).scalar_one()
        )

    def drive(self, start: tuple[float, float], end: tuple[float, float]) -> int:
        with self.engine.begin() as conn:
            a = self.position(conn, *start)
            b = self.position(conn, *end)
            return int(
                conn.execute(
                    sa.insert(t.drives)
                    .values(
                        car_id=self.car_id,
                        start_date=self._tick(),
                        end_date=self._tick(),
                        start_position_id=a,
                        end_position_id=b,
                    )
                    .returning(t.drives.c.id)
                ).scalar_one()
            )

    def charge(self, at: tuple[float, float]) -> int:
        with self.engine.begin() as conn:
            p = self.position(conn, *at)
            return int(
                conn.execute(
                    sa.insert(t.charging_processes)
                    .values(
                        car_id=self.car_id,
                        position_id=p,
                        start_date=self._tick(),
                        end_date=self._tick(),
                    )
                    .returning(t.charging_processes.c.id)
                ).scalar_one()
            )

    def drive_row(self, drive_id: int) -> sa.RowMapping:
        with self.engine.connect() as conn:
            return (
                conn.execute(sa.select(t.drives).where(t.drives.c.id == drive_id)).mappings().one()
            )

    def charge_row(self, process_id: int) -> sa.RowMapping:
        cp = t.charging_processes
        with self.engine.connect() as conn:
            return conn.execute(sa.select(cp).where(cp.c.id == process_id)).mappings().one()


@pytest.fixture
def logbook(migrated_engine: sa.Engine) -> Logbook:
    return Logbook(migrated_engine)


# --- fake Nominatim ------------------------------------------------------------------


@dataclass
class FakePlace:
    osm_type: str
    osm_id: int
    lat: float
    lon: float
    names: dict[str, str]  # language -> road name
    city: dict[str, str]


@dataclass
class FakeNominatim:
    """State of the fake server; tests change `mode` and read `requests`."""

    url: str = ""
    places: list[FakePlace] = field(default_factory=list)
    mode: str = "ok"  # ok | error500 | garbage | stall | unable
    stall_s: float = 5.0
    requests: list[dict[str, Any]] = field(default_factory=list)

    def nearest(self, lat: float, lon: float) -> FakePlace | None:
        best = min(
            self.places,
            key=lambda p: (p.lat - lat) ** 2 + (p.lon - lon) ** 2,
            default=None,
        )
        if best is None or abs(best.lat - lat) + abs(best.lon - lon) > 0.05:
            return None
        return best

    def reply(self, place: FakePlace, language: str) -> dict[str, Any]:
        lang = language if language in place.names else "en"
        road = place.names[lang]
        city = place.city[lang]
        return {
            "place_id": place.osm_id * 10,
            "licence": "Data © OpenStreetMap contributors, ODbL 1.0.",
            "osm_type": place.osm_type,
            "osm_id": place.osm_id,
            "lat": f"{place.lat:.7f}",
            "lon": f"{place.lon:.7f}",
            "category": "highway",
            "type": "residential",
            "place_rank": 26,
            "importance": 0.1,
            "addresstype": "road",
            "name": road,
            "display_name": f"12, {road}, Mitte, {city}, 10117, Deutschland",
            "address": {
                "house_number": "12",
                "road": road,
                "suburb": "Mitte",
                "town": city,
                "state": "Berlin",
                "postcode": "10117",
                "country": "Deutschland",
                "country_code": "de",
            },
            "extratags": {},
            "namedetails": {"name": road},
            "boundingbox": ["52.5", "52.6", "13.3", "13.5"],
        }


@pytest.fixture
async def nominatim() -> AsyncIterator[FakeNominatim]:
    fake = FakeNominatim(
        places=[
            FakePlace(
                "way",
                4242,
                BERLIN[0],
                BERLIN[1],
                {"en": "Spandau Street", "de": "Spandauer Straße"},
                {"en": "Berlin", "de": "Berlin"},
            ),
            FakePlace(
                "node",
                77,
                MUNICH[0],
                MUNICH[1],
                {"en": "Marienplatz", "de": "Marienplatz"},
                {"en": "Munich", "de": "München"},
            ),
        ]
    )

    async def misbehave() -> web.StreamResponse | None:
        if fake.mode == "error500":
            return web.Response(status=500, text="overloaded")
        if fake.mode == "garbage":
            return web.Response(status=200, text="<html>oops</html>")
        if fake.mode == "stall":
            await asyncio.sleep(fake.stall_s)
        return None

    def record(request: web.Request) -> None:
        fake.requests.append(
            {
                "path": request.path,
                "host": request.url.host,
                "query": dict(request.query),
                "language": request.headers.get("Accept-Language"),
                "user_agent": request.headers.get("User-Agent"),
                "at": asyncio.get_running_loop().time(),
            }
        )

    async def reverse(request: web.Request) -> web.StreamResponse:
        record(request)
        bad = await misbehave()
        if bad is not None:
            return bad
        lat, lon = float(request.query["lat"]), float(request.query["lon"])
        place = fake.nearest(lat, lon)
        if place is None or fake.mode == "unable":
            return web.json_response({"error": "Unable to geocode"})
        return web.json_response(fake.reply(place, request.headers.get("Accept-Language", "en")))

    async def lookup(request: web.Request) -> web.StreamResponse:
        record(request)
        bad = await misbehave()
        if bad is not None:
            return bad
        wanted = set(request.query["osm_ids"].split(","))
        language = request.headers.get("Accept-Language", "en")
        found = [
            fake.reply(p, language)
            for p in fake.places
            if f"{p.osm_type[0].upper()}{p.osm_id}" in wanted
        ]
        return web.json_response(found)

    app = web.Application()
    app.router.add_get("/reverse", reverse)
    app.router.add_get("/lookup", lookup)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


@pytest.fixture
def utc_now() -> datetime:
    return datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
