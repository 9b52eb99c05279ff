"""The addresses cache: de-duplication by OSM identity, the offline geocoder, the logging path."""

from __future__ import annotations

import sqlalchemy as sa

from fleetlog.places import (
    Address,
    GeofenceSpec,
    OfflineGeocoder,
    PlaceFinder,
    create_geofence,
    load_address,
    save_address,
)
from fleetlog.places.addresses import OFFLINE
from fleetlog.store import tables as t

from .conftest import BERLIN, MUNICH, north_of

OFFLINE_GEOCODER = OfflineGeocoder()  # one per test session: its data load once


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.addresses)).scalar_one())


def test_same_identity_is_stored_once_and_refreshed(migrated_engine: sa.Engine) -> None:
    first = Address(
        "way", 4242, display_name="Spandau Street", road="Spandau Street", city="Berlin"
    )
    again = Address("way", 4242, display_name="Spandauer Straße", road="Spandauer Straße")
    other = Address("node", 4242, display_name="a node with the same number")
    with migrated_engine.begin() as conn:
        a = save_address(conn, first)
        b = save_address(conn, again)
        c = save_address(conn, other)
    assert a == b != c
    assert _count(migrated_engine) == 2
    with migrated_engine.connect() as conn:
        stored = load_address(conn, a)
    assert stored is not None and stored.road == "Spandauer Straße"


def test_long_values_are_cut_to_the_column(migrated_engine: sa.Engine) -> None:
    with migrated_engine.begin() as conn:
        aid = save_address(conn, Address("way", 1, display_name="x" * 600, road="r" * 300))
        stored = load_address(conn, aid)
    assert stored is not None
    assert stored.display_name is not None and len(stored.display_name) == 512
    assert stored.road is not None and len(stored.road) == 255


def test_offline_geocoder_names_the_city() -> None:
    berlin = OFFLINE_GEOCODER.locate(*BERLIN)
    munich = OFFLINE_GEOCODER.locate(*MUNICH)
    assert berlin is not None and munich is not None
    assert berlin.country == munich.country == "Germany"
    assert munich.city == "Munich" and munich.state == "Bavaria"
    assert berlin.osm_type == OFFLINE
    # stable identity: the same place twice gives the same id
    assert OFFLINE_GEOCODER.locate(*MUNICH) == munich
    # the middle of the South Atlantic has no city
    assert OFFLINE_GEOCODER.locate(-40.0, -20.0) is None


def test_place_finder_dedupes_offline_addresses(
    logbook: object, migrated_engine: sa.Engine
) -> None:
    finder = PlaceFinder(OFFLINE_GEOCODER)
    with migrated_engine.begin() as conn:
        home, _ = create_geofence(conn, GeofenceSpec("Home", *BERLIN, radius=100))
        a = finder.place(conn, 1, *BERLIN)
        b = finder.place(conn, 1, *north_of(*BERLIN, 500))
        far = finder.place(conn, 1, -40.0, -20.0)
    assert a.geofence_id == home.id and b.geofence_id is None
    assert a.address_id is not None and a.address_id == b.address_id
    assert far.address_id is None and far.geofence_id is None
    assert _count(migrated_engine) == 1


def test_a_broken_offline_geocoder_costs_only_the_address(
    migrated_engine: sa.Engine, monkeypatch: object
) -> None:
    import reverse_geocode

    def broken(_coordinate: object, min_population: int = 0) -> object:
        raise OSError("data file missing")

    setattr_ = monkeypatch.setattr  # type: ignore[attr-defined]
    setattr_(reverse_geocode, "get", broken)
    finder = PlaceFinder(OfflineGeocoder())
    with migrated_engine.begin() as conn:
        create_geofence(conn, GeofenceSpec("Home", *BERLIN, radius=100))
        place = finder.place(conn, 1, *BERLIN)
        # the surrounding transaction is still usable
        conn.execute(sa.select(1)).scalar_one()
    assert place.address_id is None and place.geofence_id is not None
