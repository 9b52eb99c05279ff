"""The car model's invariants, as properties over random small plans (hypothesis)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from random import Random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetlog.sim.car import Car, Snapshot
from fleetlog.sim.geo import Place, Point, offset, plan_route
from fleetlog.sim.physics import Weather
from fleetlog.sim.plan import CarPlan, CarSpec, Charge, ChargeSite, Drive, Start

T0 = datetime(2025, 3, 3, 5, 0, tzinfo=UTC)  # 06:00 local (UTC+1)
HOME = Place("Home", Point(48.1862, 11.5181))
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def spec(**kw: object) -> CarSpec:
    return CarSpec(id=1, vehicle_id=2, vin="5YJ3E7EB5MF959547", display_name="Test", **kw)  # type: ignore[arg-type]


def place(rng: Random, name: str, radius_m: float) -> Place:
    return Place(
        name, offset(HOME.point, rng.uniform(-radius_m, radius_m), rng.uniform(-radius_m, radius_m))
    )


@st.composite
def plans(draw: st.DrawFn) -> CarPlan:
    """A day of 1-4 drives with AC or DC charges in between, from a random SoC."""
    rng = Random(draw(st.integers(0, 10_000)))
    soc = draw(st.floats(5.0, 95.0))
    activities: list[Drive | Charge] = []
    here = HOME
    t = T0 + timedelta(minutes=draw(st.integers(0, 120)))
    for k in range(draw(st.integers(1, 4))):
        to = place(rng, f"P{k}", draw(st.sampled_from([1_500.0, 8_000.0, 25_000.0])))
        activities.append(Drive(plan_route(here, to, rng), Start(t), rng.uniform(0.9, 1.1)))
        here = to
        t += timedelta(hours=draw(st.integers(1, 4)))
        if draw(st.booleans()):
            kind = draw(st.sampled_from(["ac", "dc"]))
            site = ChargeSite(here, kind, phases=draw(st.sampled_from([1, 3])), max_kw=150.0)
            limit = draw(st.floats(50.0, 100.0))
            after = timedelta(minutes=2)
            if kind == "dc":
                activities.append(
                    Charge(site, Start(after=after), limit, unplug_after_complete=after)
                )
            else:
                activities.append(Charge(site, Start(after=after), limit))
    return CarPlan(spec(), HOME, soc, tuple(activities))


def run(plan: CarPlan, hours: float, weather: Weather | None = None) -> tuple[Car, list[Snapshot]]:
    car = Car(plan, T0, weather or Weather(8.0, 5.0))
    seen: list[Snapshot] = []
    car.add_listener(seen.append)
    car.advance(T0 + timedelta(hours=hours))
    return car, seen


@FAST
@given(plans())
def test_odometer_never_decreases_and_soc_stays_in_range(plan: CarPlan) -> None:
    car, seen = run(plan, 20)
    assert seen
    odo = [s.odometer_km for s in seen]
    assert all(b >= a for a, b in itertools.pairwise(odo))
    for s in seen:
        assert 0.0 <= s.battery_level <= 100.0
        assert 0.0 <= s.usable_battery_level <= s.battery_level
    assert len(car.log.drives) >= 1


@FAST
@given(plans())
def test_energy_is_conserved_in_drives_and_charges(plan: CarPlan) -> None:
    car, _ = run(plan, 20)
    usable = car.spec.usable_kwh
    for d in car.log.drives:
        assert d.soc_end is not None
        # SoC drop × capacity = energy used by the drive.
        assert abs((d.soc_start - d.soc_end) / 100 * usable - d.energy_used_kwh) < 1e-6
        assert d.distance_km is not None and d.distance_km >= 0
    for c in car.log.charges:
        rise_kwh = (c.soc_end - c.soc_start) / 100 * usable
        # The energy a charge put in matches the SoC rise (within 2 %).
        assert abs(c.energy_added_kwh - rise_kwh) <= 0.02 * max(rise_kwh, 0.05)
        assert c.soc_end <= max(c.soc_start, 100.0) + 1e-9
        if c.energy_added_kwh > 0:
            assert c.energy_from_grid_kwh > c.energy_added_kwh  # losses go one way
            assert c.peak_kw > 0


@FAST
@given(
    arrive_min=st.integers(17 * 60, 21 * 60 + 45),  # local time the evening drive starts
    soc=st.floats(20.0, 90.0),
    seed=st.integers(0, 1000),
)
def test_a_parked_car_nobody_polls_sleeps_through_the_night(
    arrive_min: int, soc: float, seed: int
) -> None:
    rng = Random(seed)
    local_midnight = T0.replace(hour=23)  # 00:00 local of the next day
    start = local_midnight - timedelta(days=1) + timedelta(minutes=arrive_min)
    drive = Drive(plan_route(place(rng, "Work", 3_000), HOME, rng), Start(start))
    plan = CarPlan(spec(), place(rng, "Work", 3_000), soc, (drive,))
    car = Car(plan, start - timedelta(minutes=5), Weather(5.0, 4.0))
    night_start = local_midnight - timedelta(hours=2)  # 22:00 local
    night_end = local_midnight + timedelta(hours=6)  # 06:00 local
    car.advance(night_end)
    asleep = car.log.seconds_in("asleep", night_start, night_end)
    assert asleep / (night_end - night_start).total_seconds() >= 0.95


@FAST
@given(every_min=st.integers(1, 14), hours=st.integers(2, 10), phase_s=st.integers(0, 59))
def test_a_car_polled_every_few_minutes_never_sleeps(
    every_min: int, hours: int, phase_s: int
) -> None:
    plan = CarPlan(spec(), HOME, 60.0)
    car = Car(plan, T0, Weather())
    t = T0 + timedelta(seconds=phase_s)
    end = T0 + timedelta(hours=hours)
    while t < end:
        car.advance(t)
        assert car.state == "online"
        car.touch()  # a vehicle_data call the car answered
        t += timedelta(minutes=every_min)
    car.advance(end)
    assert car.log.seconds_in("asleep", T0, end) == 0.0


def test_an_idle_car_falls_asleep_after_its_idle_time_and_wakes_in_10_to_60_s() -> None:
    car = Car(CarPlan(spec(idle_sleep_s=600.0), HOME, 60.0), T0, Weather())
    car.advance(T0 + timedelta(seconds=599))
    assert car.state == "online"
    car.advance(T0 + timedelta(seconds=601))
    assert car.state == "asleep"
    car.touch()  # an asleep car does not answer, so nothing changes
    car.wake_up(25.0)
    car.advance(T0 + timedelta(seconds=625))
    assert car.state == "asleep"
    car.advance(T0 + timedelta(seconds=627))
    assert car.state == "online"


def test_cold_weather_costs_range() -> None:
    rng = Random(3)
    to = place(rng, "Work", 8_000)
    route = plan_route(HOME, to, rng)
    plan = CarPlan(spec(), HOME, 80.0, (Drive(route, Start(T0 + timedelta(minutes=10))),))
    mild, _ = run(plan, 2, Weather(18.0, 0.0))
    cold, _ = run(plan, 2, Weather(-12.0, 0.0))
    assert cold.log.drives[0].energy_used_kwh > 1.3 * mild.log.drives[0].energy_used_kwh
    assert cold.snapshot().est_range_km < mild.snapshot().est_range_km
    assert cold.snapshot().usable_battery_level < cold.snapshot().battery_level


def test_ac_charging_reports_phases_voltage_current_and_tapers() -> None:
    site = ChargeSite(HOME, "ac", phases=3, voltage_v=230.0, amps=16.0)
    plan = CarPlan(spec(), HOME, 70.0, (Charge(site, Start(T0 + timedelta(minutes=1)), 80.0),))
    car = Car(plan, T0, Weather())
    car.advance(T0 + timedelta(minutes=10))
    s = car.snapshot()
    assert s.charging_state == "Charging"
    assert (s.charger_phases, round(s.charger_voltage_v), round(s.charger_actual_current_a)) == (
        3,
        230,
        16,
    )
    assert round(s.charger_power_kw, 1) == 11.0
    seen: list[Snapshot] = []
    car.add_listener(seen.append)
    car.advance(T0 + timedelta(hours=3))
    near_limit = [
        x.charger_actual_current_a
        for x in seen
        if x.charging_state == "Charging" and x.battery_level > 79
    ]
    assert near_limit and min(near_limit) < 16.0
    assert car.snapshot().charging_state == "Complete"


def test_dc_power_follows_a_curve_over_soc() -> None:
    site = ChargeSite(HOME, "dc", max_kw=250.0)
    plan = CarPlan(spec(), HOME, 10.0, (Charge(site, Start(T0), 90.0),))
    car = Car(plan, T0, Weather(20.0, 0.0))
    seen: list[Snapshot] = []
    car.add_listener(seen.append)
    car.advance(T0 + timedelta(hours=2))
    power = {
        round(s.battery_level): s.charger_power_kw for s in seen if s.charging_state == "Charging"
    }
    assert power[15] > power[50] > power[85] > 0
    assert all(s.fast_charger_present for s in seen if s.charging_state == "Charging")
    assert car.log.charges[0].kind == "dc"
