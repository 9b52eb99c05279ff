"""Named scenarios: what each promises happens, deterministically, fast-forwarded whole."""

from __future__ import annotations

import json
from datetime import timedelta
from functools import cache

from fleetlog.sim.car import Car
from fleetlog.sim.scenarios import SCENARIOS, Scenario, build
from fleetlog.sim.world import CloudOptions, World


@cache
def finished(name: str, seed: int = 1) -> tuple[Scenario, tuple[Car, ...]]:
    scenario = build(name, seed, cars=4)
    world = World(scenario, CloudOptions(seed=seed))
    world.advance(scenario.end)
    return scenario, tuple(world.cars)


def test_every_scenario_is_deterministic_for_a_seed() -> None:
    for name in SCENARIOS:
        a = World(build(name, 7, cars=2))
        b = World(build(name, 7, cars=2))
        end = a.scenario.start + timedelta(hours=30)
        a.advance(end)
        b.advance(end)
        assert json.dumps(a.truth()) == json.dumps(b.truth()), name
    assert build("commuter-week", 1).cars[0].spec.vin != build("commuter-week", 2).cars[0].spec.vin


def test_commuter_week() -> None:
    scenario, (car,) = finished("commuter-week")
    assert scenario.end - scenario.start == timedelta(days=7)
    log = car.log
    commutes = [
        d for d in log.drives if d.route in ("Home → Office", "Office → Home", "Office → Gym")
    ]
    assert len(commutes) == 10
    assert any("Supermarket" in d.route for d in log.drives)  # errands
    assert any(d.distance_km and d.distance_km > 150 for d in log.drives)  # the weekend trip
    dc = [c for c in log.charges if c.kind == "dc"]
    ac_home = [c for c in log.charges if c.kind == "ac" and c.place == "Home"]
    assert len(dc) == 1 and dc[0].energy_added_kwh > 20
    assert len(ac_home) >= 5
    assert [u.version_to for u in log.updates] == ["2025.8.3 1b5d6f0e9a21"]
    assert car.car_version == "2025.8.3 1b5d6f0e9a21"
    assert sum(1 for s in log.states if s.state == "offline") == 1
    assert any(s.state == "asleep" for s in log.states)
    # Sentry keeps the car online through the supermarket stop.
    shop = next(d for d in log.drives if d.route == "Home → Supermarket")
    assert shop.end is not None
    assert log.state_at(shop.end + timedelta(minutes=25)) == "online"
    assert car.soc > 20


def test_road_trip_has_three_dc_stops() -> None:
    _, (car,) = finished("road-trip")
    dc = [c for c in car.log.charges if c.kind == "dc"]
    assert len(dc) == 3
    assert all(c.peak_kw > 100 for c in dc)
    long = sum(d.distance_km or 0 for d in car.log.drives)
    assert long > 550
    assert min(d.soc_end or 0 for d in car.log.drives) > 5


def test_city_day() -> None:
    _, (car,) = finished("city-day")
    drives = car.log.drives
    assert len(drives) >= 8
    assert sum(1 for d in drives if (d.distance_km or 99) < 2.0) >= 7
    assert any(d.ended_offline for d in drives)
    assert any(c.started_offline for c in car.log.charges)


def test_cold_week_costs_range() -> None:
    _, (cold,) = finished("cold-week")
    _, (mild,) = finished("commuter-week")

    def wh_per_km(car: Car) -> float:
        commutes = [d for d in car.log.drives if d.route == "Home → Office"]
        return (
            sum(d.energy_used_kwh for d in commutes)
            * 1000
            / sum(d.distance_km or 0 for d in commutes)
        )

    assert wh_per_km(cold) > 1.2 * wh_per_km(mild)
    snap = cold.snapshot()
    assert snap.outside_temp_c < 0
    assert snap.est_range_km < snap.rated_range_km


def test_fleet_generates_n_cars_with_distinct_identities() -> None:
    scenario, cars = finished("fleet")
    assert len(cars) == 4
    assert len({c.spec.vin for c in cars}) == 4 and len({c.spec.id for c in cars}) == 4
    assert all(len(c.log.drives) > 3 for c in cars)
    assert scenario.end - scenario.start == timedelta(days=7)
