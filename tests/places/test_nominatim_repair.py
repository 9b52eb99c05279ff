"""Nominatim against a fake server on loopback, and the repair task that fills gaps later.

The logging path never waits on a geocoder: while Nominatim fails or stalls, drives and
charges are stored with their geofence and without an address; a later repair pass
(once the service answers again) fills the gap, de-duplicating by OSM id.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa

from fleetlog.places import (
    GeocoderError,
    GeofenceSpec,
    NominatimGeocoder,
    OfflineGeocoder,
    PlaceFinder,
    create_geofence,
    load_address,
    refresh_language,
    repair_addresses,
)
from fleetlog.places.addresses import OFFLINE
from fleetlog.places.nominatim import address_from_reply
from fleetlog.store import tables as t

from .conftest import BERLIN, MUNICH, FakeNominatim, Logbook, north_of


def _geocoder(fake: FakeNominatim, **kw: float) -> NominatimGeocoder:
    return NominatimGeocoder(
        fake.url, timeout_s=kw.get("timeout_s", 2.0), min_interval_s=kw.get("min_interval_s", 0.0)
    )


async def test_reverse_maps_the_reply_and_sends_language_and_agent(
    nominatim: FakeNominatim,
) -> None:
    async with _geocoder(nominatim) as geo:
        address = await geo.reverse(*BERLIN, "de")
        nowhere = await geo.reverse(0.0, 0.0, "de")
    assert address is not None
    assert (address.osm_type, address.osm_id) == ("way", 4242)
    assert address.road == "Spandauer Straße" and address.name == "Spandauer Straße"
    assert address.city == "Berlin"  # from "town"
    assert address.neighbourhood == "Mitte"  # from "suburb"
    assert address.house_number == "12" and address.postcode == "10117"
    assert nowhere is not None and (nowhere.osm_type, nowhere.osm_id) == ("unknown", 0)
    request = nominatim.requests[0]
    assert request["path"] == "/reverse"
    assert request["language"] == "de"
    assert request["user_agent"].startswith("fleetlog/")
    assert request["query"]["format"] == "jsonv2" and request["query"]["zoom"] == "19"


@pytest.mark.parametrize("mode", ["error500", "garbage"])
async def test_errors_become_geocoder_errors(nominatim: FakeNominatim, mode: str) -> None:
    nominatim.mode = mode
    async with _geocoder(nominatim) as geo:
        with pytest.raises(GeocoderError):
            await geo.reverse(*BERLIN, "en")


async def test_a_stalled_server_times_out(nominatim: FakeNominatim) -> None:
    nominatim.mode = "stall"
    async with _geocoder(nominatim, timeout_s=0.2) as geo:
        started = time.monotonic()
        with pytest.raises(GeocoderError):
            await geo.reverse(*BERLIN, "en")
    assert time.monotonic() - started < 2


async def test_unreachable_server() -> None:
    async with NominatimGeocoder("http://127.0.0.1:9", timeout_s=1.0) as geo:
        with pytest.raises(GeocoderError, match="unreachable"):
            await geo.reverse(*BERLIN, "en")


async def test_at_most_one_request_per_second(nominatim: FakeNominatim) -> None:
    async with NominatimGeocoder(nominatim.url) as geo:  # the default spacing
        await asyncio.gather(geo.reverse(*BERLIN, "en"), geo.reverse(*MUNICH, "en"))
    first, second = (r["at"] for r in nominatim.requests)
    assert second - first >= 0.99


async def test_proxy_is_used(nominatim: FakeNominatim) -> None:
    # The fake answers as the proxy: it sees the absolute URL of a host nobody resolves.
    async with NominatimGeocoder(
        "http://nominatim.invalid", proxy=nominatim.url, min_interval_s=0
    ) as geo:
        address = await geo.reverse(*BERLIN, "en")
    assert address is not None and address.osm_id == 4242
    assert nominatim.requests[0]["host"] == "nominatim.invalid"


def test_reply_without_identity_is_an_error() -> None:
    with pytest.raises(GeocoderError):
        address_from_reply({"display_name": "x"})


async def test_failing_geocoder_leaves_logging_untouched_and_repair_fills_later(
    logbook: Logbook, nominatim: FakeNominatim
) -> None:
    engine = logbook.engine
    nominatim.mode = "stall"
    with engine.begin() as conn:
        home, _ = create_geofence(conn, GeofenceSpec("Home", *BERLIN, radius=100))
    # The logging path (what the logbook does at drive close) with Nominatim as geocoder:
    # no offline fallback here, so the address stays empty; it does not wait on the server.
    finder = PlaceFinder(offline=None)
    d = logbook.drive(start=north_of(*BERLIN, 10), end=MUNICH)
    c = logbook.charge(north_of(*BERLIN, 10))
    started = time.monotonic()
    with engine.begin() as conn:
        start = finder.place(conn, logbook.car_id, *north_of(*BERLIN, 10))
        end = finder.place(conn, logbook.car_id, *MUNICH)
        conn.execute(
            sa.update(t.drives)
            .where(t.drives.c.id == d)
            .values(start_geofence_id=start.geofence_id, end_address_id=end.address_id)
        )
    assert time.monotonic() - started < 0.5
    assert logbook.drive_row(d)["start_geofence_id"] == home.id
    assert logbook.drive_row(d)["end_address_id"] is None

    # The repair pass while the server stalls: it gives up, nothing is written, no error.
    async with _geocoder(nominatim, timeout_s=0.1) as geo:
        report = await repair_addresses(engine, geo, max_failures=2)
    assert report.found == 3 and report.filled == 0 and report.stopped_early
    assert logbook.drive_row(d)["start_address_id"] is None

    # The service is back: the next pass fills everything, one request per place.
    nominatim.mode = "ok"
    nominatim.requests.clear()
    async with _geocoder(nominatim) as geo:
        report = await repair_addresses(engine, geo)
    assert report.filled == 3 and report.failures == 0
    assert len(nominatim.requests) == 2  # the two Berlin points share one request
    drive = logbook.drive_row(d)
    assert drive["start_address_id"] == logbook.charge_row(c)["address_id"]
    with engine.connect() as conn:
        start_address = load_address(conn, drive["start_address_id"])
        end_address = load_address(conn, drive["end_address_id"])
        count = conn.execute(sa.select(sa.func.count()).select_from(t.addresses)).scalar_one()
    assert start_address is not None and start_address.osm_id == 4242
    assert end_address is not None and end_address.road == "Marienplatz"
    assert count == 2

    # Nothing left to do.
    async with _geocoder(nominatim) as geo:
        assert (await repair_addresses(engine, geo)).found == 0


async def test_nominatim_replaces_offline_addresses(
    logbook: Logbook, nominatim: FakeNominatim
) -> None:
    engine = logbook.engine
    c = logbook.charge(BERLIN)
    async_offline = OfflineGeocoder()
    report = await repair_addresses(engine, async_offline)
    assert report.filled == 1
    with engine.connect() as conn:
        city = load_address(conn, logbook.charge_row(c)["address_id"])
    assert city is not None and city.osm_type == OFFLINE
    async with _geocoder(nominatim) as geo:
        report = await repair_addresses(engine, geo)
    assert report.filled == 1
    with engine.connect() as conn:
        street = load_address(conn, logbook.charge_row(c)["address_id"])
    assert street is not None and street.osm_type == "way"


async def test_language_change_refetches_addresses_in_place(
    logbook: Logbook, nominatim: FakeNominatim
) -> None:
    engine = logbook.engine
    c = logbook.charge(MUNICH)
    async with _geocoder(nominatim) as geo:
        assert await refresh_language(engine, geo) == 0  # first run: records "en"
        await repair_addresses(engine, geo)
        address_id = logbook.charge_row(c)["address_id"]
        with engine.connect() as conn:
            before = load_address(conn, address_id)
        assert before is not None and before.city == "Munich"

        with engine.begin() as conn:
            conn.execute(sa.update(t.settings).values(language="de"))
        nominatim.requests.clear()
        assert await refresh_language(engine, geo) == 1
        assert nominatim.requests[0]["path"] == "/lookup"
        assert nominatim.requests[0]["query"]["osm_ids"] == "N77"
        assert nominatim.requests[0]["language"] == "de"
        assert await refresh_language(engine, geo) == 0  # done once
    assert logbook.charge_row(c)["address_id"] == address_id
    with engine.connect() as conn:
        after = load_address(conn, address_id)
    assert after is not None and after.city == "München"
