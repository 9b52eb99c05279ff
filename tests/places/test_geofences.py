"""Geofence membership at the boundary and in overlaps, and relabelling on every change."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
import sqlalchemy as sa

from fleetlog.places import (
    Geofence,
    GeofenceError,
    GeofenceSpec,
    create_geofence,
    delete_geofence,
    distance_m,
    find_geofence,
    geofence_at,
    nearest_containing,
    spec_of,
    update_geofence,
)

from .conftest import BERLIN, MUNICH, Logbook, north_of

LAT, LON = BERLIN


def fence(fid: int, lat: float, lon: float, radius: int) -> Geofence:
    return Geofence(id=fid, name=f"f{fid}", latitude=lat, longitude=lon, radius=radius)


# --- pure membership -------------------------------------------------------------------


def test_distance_matches_a_known_baseline() -> None:
    # Berlin → Munich great-circle distance on a 6378.168 km sphere
    d = distance_m(*BERLIN, *MUNICH)
    assert 504_000 < d < 506_000
    assert distance_m(*BERLIN, *BERLIN) == 0.0


@pytest.mark.parametrize("radius", [1, 25, 100, 4999])
def test_the_circle_itself_is_outside(radius: int) -> None:
    f = fence(1, LAT, LON, radius)
    inside = north_of(LAT, LON, radius * (1 - 1e-9))
    on = north_of(LAT, LON, radius)
    outside = north_of(LAT, LON, radius * (1 + 1e-9))
    assert f.contains(*inside)
    assert not f.contains(*outside)
    # on the circle (up to float rounding of the construction): never counted inside
    # unless strictly nearer than the radius
    assert f.contains(*on) == (distance_m(LAT, LON, *on) < radius)


def test_nearest_centre_wins_in_an_overlap() -> None:
    big = fence(1, LAT, LON, 500)
    small_east = fence(2, *north_of(LAT, LON, 100), 50)
    point = north_of(LAT, LON, 90)  # inside both; 90 m from big's centre, 10 m from small's
    assert nearest_containing([big, small_east], *point) == small_east
    point = north_of(LAT, LON, 20)  # inside big only... and small? 80 m away: no
    assert nearest_containing([big, small_east], *point) == big


def test_the_nearest_fence_must_also_contain_the_point() -> None:
    tiny_near = fence(1, *north_of(LAT, LON, 30), 5)  # centre 10 m away, radius 5 m
    wide_far = fence(2, *north_of(LAT, LON, -200), 300)
    point = north_of(LAT, LON, 20)
    assert nearest_containing([tiny_near, wide_far], *point) == wide_far


def test_equal_distances_go_to_the_lower_id() -> None:
    a = fence(7, LAT, LON, 100)
    b = fence(3, LAT, LON, 100)
    assert nearest_containing([a, b], LAT, LON) == b
    assert nearest_containing([b, a], LAT, LON) == b


def test_no_fence_contains_a_far_point() -> None:
    assert nearest_containing([fence(1, LAT, LON, 100)], *MUNICH) is None
    assert nearest_containing([], LAT, LON) is None


# --- stored geofences ----------------------------------------------------------------


def test_boundary_on_stored_coordinates(migrated_engine: sa.Engine) -> None:
    with migrated_engine.begin() as conn:
        home, _ = create_geofence(conn, GeofenceSpec("Home", LAT, LON, radius=50))
        assert geofence_at(conn, *north_of(LAT, LON, 48)) == home
        assert geofence_at(conn, *north_of(LAT, LON, 52)) is None
        assert home.latitude == pytest.approx(LAT, abs=1e-6)


def test_validation(migrated_engine: sa.Engine) -> None:
    with migrated_engine.begin() as conn:
        for bad in (
            GeofenceSpec(" ", LAT, LON),
            GeofenceSpec("x", 91, LON),
            GeofenceSpec("x", LAT, 181),
            GeofenceSpec("x", LAT, LON, radius=0),
            GeofenceSpec("x", LAT, LON, radius=5000),
            GeofenceSpec("x", LAT, LON, session_fee=Decimal("-1")),
        ):
            with pytest.raises(GeofenceError):
                create_geofence(conn, bad)
        with pytest.raises(GeofenceError):
            find_geofence(conn, "nowhere")


def test_create_labels_past_drives_and_charges(logbook: Logbook) -> None:
    near = north_of(LAT, LON, 30)
    far = north_of(LAT, LON, 5000)
    d1 = logbook.drive(start=near, end=far)
    d2 = logbook.drive(start=far, end=near)
    c1 = logbook.charge(near)
    c2 = logbook.charge(far)
    with logbook.engine.begin() as conn:
        home, relabelled = create_geofence(conn, GeofenceSpec("Home", LAT, LON, radius=50))
    assert (relabelled.drive_starts, relabelled.drive_ends, relabelled.charges) == (1, 1, 1)
    assert relabelled.charge_ids == (c1,)
    assert logbook.drive_row(d1)["start_geofence_id"] == home.id
    assert logbook.drive_row(d1)["end_geofence_id"] is None
    assert logbook.drive_row(d2)["end_geofence_id"] == home.id
    assert logbook.charge_row(c1)["geofence_id"] == home.id
    assert logbook.charge_row(c2)["geofence_id"] is None


def test_edit_relabels_around_old_and_new_circle(logbook: Logbook) -> None:
    at_40m = north_of(LAT, LON, 40)
    at_80m = north_of(LAT, LON, 80)
    d = logbook.drive(start=at_40m, end=at_80m)
    c = logbook.charge(at_80m)
    with logbook.engine.begin() as conn:
        home, _ = create_geofence(conn, GeofenceSpec("Home", LAT, LON, radius=50))
    assert logbook.drive_row(d)["start_geofence_id"] == home.id
    assert logbook.drive_row(d)["end_geofence_id"] is None

    with logbook.engine.begin() as conn:  # grow: the end is now inside
        _, r = update_geofence(conn, home.id, replace(spec_of(home), radius=100))
    assert (r.drive_starts, r.drive_ends, r.charges) == (0, 1, 1)
    assert logbook.drive_row(d)["end_geofence_id"] == home.id
    assert logbook.charge_row(c)["geofence_id"] == home.id

    with logbook.engine.begin() as conn:  # move far away: everything falls out
        moved, r = update_geofence(conn, home.id, replace(spec_of(home), latitude=MUNICH[0]))
    assert r.total == 3
    assert logbook.drive_row(d)["start_geofence_id"] is None
    assert logbook.charge_row(c)["geofence_id"] is None
    assert moved.name == "Home"


def test_overlap_and_delete_hand_over_to_the_other_fence(logbook: Logbook) -> None:
    at_90m = north_of(LAT, LON, 90)
    c = logbook.charge(at_90m)
    with logbook.engine.begin() as conn:
        big, _ = create_geofence(conn, GeofenceSpec("Quarter", LAT, LON, radius=500))
        garage, _ = create_geofence(
            conn, GeofenceSpec("Garage", *north_of(LAT, LON, 100), radius=30)
        )
    assert logbook.charge_row(c)["geofence_id"] == garage.id  # nearer centre
    with logbook.engine.begin() as conn:
        r = delete_geofence(conn, garage.id)
    assert r.charge_ids == (c,)
    assert logbook.charge_row(c)["geofence_id"] == big.id
    with logbook.engine.begin() as conn:
        delete_geofence(conn, big.id)
    assert logbook.charge_row(c)["geofence_id"] is None


def test_find_by_id_or_unique_name(migrated_engine: sa.Engine) -> None:
    with migrated_engine.begin() as conn:
        a, _ = create_geofence(conn, GeofenceSpec("Work", LAT, LON))
        create_geofence(conn, GeofenceSpec("Twin", LAT, LON))
        create_geofence(conn, GeofenceSpec("Twin", *MUNICH))
        assert find_geofence(conn, "Work") == a
        assert find_geofence(conn, str(a.id)) == a
        with pytest.raises(GeofenceError, match="use an id"):
            find_geofence(conn, "Twin")


@pytest.mark.postgres
def test_haversine_matches_earthdistance(pg_url: str) -> None:
    from fleetlog.store import make_engine, upgrade

    engine = make_engine(pg_url, pool_size=1)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            has = conn.execute(
                sa.text("SELECT 1 FROM pg_extension WHERE extname = 'earthdistance'")
            ).first()
            if has is None:
                pytest.skip("earthdistance is not installed on this server")
            pairs = [
                (BERLIN, north_of(*BERLIN, 25)),
                (BERLIN, north_of(*BERLIN, 4999)),
                (BERLIN, MUNICH),
            ]
            for (a_lat, a_lon), (b_lat, b_lon) in pairs:
                pg = conn.execute(
                    sa.text("SELECT earth_distance(ll_to_earth(:a, :b), ll_to_earth(:c, :d))"),
                    {"a": a_lat, "b": a_lon, "c": b_lat, "d": b_lon},
                ).scalar_one()
                assert distance_m(a_lat, a_lon, b_lat, b_lon) == pytest.approx(pg, abs=1e-3)
    finally:
        engine.dispose()
