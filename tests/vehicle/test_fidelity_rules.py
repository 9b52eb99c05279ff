"""The rules that keep a paced or interrupted logbook faithful (issue 7, fidelity).

(a) a charge seen late starts from the last parked look with the counter's zero;
(b) paced polling spends paid calls on drives and charges, and the end of a drive or
    charge is placed after its last look, not at the look that saw it over;
(c) an odometer that moved between two parked looks is a drive;
(d) a drive that ends offline ends where the odometer says, and a charge begun
    offline starts from that drive's end.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from _world import T0, VIN
from test_transitions import ASLEEP, OFFLINE, ONLINE, Car, driving_car, fetch, of, online_car

from fleetlog.vehicle import effects as fx
from fleetlog.vehicle import policy
from fleetlog.vehicle.events import Boot, FetchKind
from fleetlog.vehicle.machine import CarState, OpenDriveRow
from fleetlog.vehicle.phase import Phase
from fleetlog.vehicle.settings import Feed, Timing

PACED = Timing(paced=True)


def samples(effects: list[fx.Effect]) -> list[Any]:
    return [e.sample for e in of(effects, fx.AddChargeSample)]


# --- (a) late charges ---------------------------------------------------------------------


def test_charge_seen_late_starts_from_the_parked_look_with_a_zero_counter() -> None:
    car = online_car(battery_level=60, charge_energy_added_kwh=7.5)  # last session's reading
    parked_at = car.now
    out = car.full(
        1200,
        charging_state="Charging",
        charger_power_kw=11.0,
        charge_energy_added_kwh=2.75,
        battery_level=64,
    )
    assert car.phase is Phase.CHARGING
    (opened,) = of(out, fx.OpenChargingProcess)
    # 2.75 kWh at 11 kW (9.9 kW into the battery) is 16 2/3 min: it began that long
    # before this look, after the last one
    assert opened.start_date == car.now - timedelta(hours=2.75 / 9.9)
    first, seen = samples(out)
    assert first.date == opened.start_date and first.charge_energy_added == 0.0
    assert first.battery_level == 60  # the level before the charge
    assert seen.date == car.now and seen.charge_energy_added == 2.75
    assert opened.start_date > parked_at


def test_late_charge_never_starts_before_the_parked_look() -> None:
    car = online_car()
    parked_at = car.now
    out = car.full(
        300, charging_state="Charging", charger_power_kw=11.0, charge_energy_added_kwh=20.0
    )
    (opened,) = of(out, fx.OpenChargingProcess)
    assert opened.start_date == parked_at


def test_late_charge_of_the_same_session_counts_from_its_reading() -> None:
    # plugged in, Stopped (scheduled) with 1.0 kWh already: the session goes on from there
    car = online_car(charging_state="Stopped", charge_energy_added_kwh=1.0)
    out = car.full(
        900, charging_state="Charging", charger_power_kw=10.0, charge_energy_added_kwh=2.0
    )
    (opened,) = of(out, fx.OpenChargingProcess)
    assert opened.start_date == car.now - timedelta(hours=1.0 / 9.0)
    assert samples(out)[0].charge_energy_added == 1.0


def test_charge_seen_at_once_starts_at_its_first_sample() -> None:
    car = online_car()
    out = car.full(
        15, charging_state="Starting", charger_power_kw=11.0, charge_energy_added_kwh=0.0
    )
    (opened,) = of(out, fx.OpenChargingProcess)
    assert opened.start_date == car.now and len(samples(out)) == 1


def test_charge_end_is_placed_from_the_last_sample() -> None:
    car = online_car()
    car.full(15, charging_state="Charging", charger_power_kw=10.0, charge_energy_added_kwh=0.0)
    last = car.full(
        180, charging_state="Charging", charger_power_kw=10.0, charge_energy_added_kwh=5.0
    )
    assert of(last, fx.AddChargeSample)
    sample_at = car.now
    out = car.full(
        300, charging_state="Complete", charger_power_kw=0.0, charge_energy_added_kwh=5.5
    )
    (closed,) = of(out, fx.CloseChargingProcess)
    # 0.5 kWh more at 10 kW (9 kW into the battery): 200 s after the last sample
    assert closed.end_date == sample_at + timedelta(seconds=200)
    assert samples(out)[-1].date == closed.end_date
    assert samples(out)[-1].charge_energy_added == 5.5


def test_dc_charge_is_placed_at_the_reported_power() -> None:
    car = online_car()
    out = car.full(600, charging_state="Charging", charger_power_kw=150.0,
                   charge_energy_added_kwh=10.0, fast_charger_present=True)  # fmt: skip
    (opened,) = of(out, fx.OpenChargingProcess)
    assert opened.start_date == car.now - timedelta(hours=10.0 / 150.0)


def test_charge_end_after_unplugging_stays_at_the_look() -> None:
    car = online_car()
    car.full(15, charging_state="Charging", charger_power_kw=10.0, charge_energy_added_kwh=3.0)
    out = car.full(300, charging_state="Disconnected", charge_energy_added_kwh=0.0)
    (closed,) = of(out, fx.CloseChargingProcess)
    assert closed.end_date == car.now  # the counter was reset: nothing to place it by


# --- (b) paced polling and drive ends ---------------------------------------------------------


def test_paced_polling_spends_calls_on_drives_and_charges() -> None:
    t = PACED
    assert policy.driving_poll(Feed.NONE, False, t) == t.paced_driving
    assert policy.charging_poll(Feed.NONE, False, 11.0, t) == t.paced_charging
    assert policy.idle_poll(t, streaming=False) == t.paced_online
    assert policy.blocker_poll(15.0, t, streaming=False) == t.paced_online
    # a live feed, or the free Owner API, keeps TeslaMate's cadence
    assert policy.driving_poll(Feed.STREAM, True, t) == t.push_quiet_driving
    assert policy.idle_poll(t, streaming=True) == 30.0
    assert policy.driving_poll(Feed.NONE, False, Timing()) == 2.5
    assert policy.idle_poll(Timing(), streaming=False) == 15.0
    assert policy.blocker_poll(15.0, Timing(), streaming=False) == 15.0


def test_paced_car_is_polled_sparsely_when_idle_and_densely_when_driving() -> None:
    car = Car(state=CarState(VIN, timing=PACED))
    car.do(Boot())
    car.light(ONLINE)
    out = car.full()
    assert fetch(out).at == car.at(PACED.paced_online)
    out = car.full(60, shift_state="D", speed_kmh=30.0, odometer_km=1000.2)
    assert car.phase is Phase.DRIVING and fetch(out).at == car.at(PACED.paced_driving)


def test_a_drive_seen_metres_after_it_began_starts_at_the_parked_odometer() -> None:
    car = online_car(odometer_km=1000.0)
    out = car.full(60, shift_state="D", speed_kmh=12.0, odometer_km=1000.006)
    (opened,) = of(out, fx.OpenDrive)
    # 6 m of a short hop are a percent of it: the drive starts where the car stood
    assert opened.start.odometer == 1000.0 and opened.late
    assert car.now - opened.start.date == timedelta(hours=0.006 / 40)
    assert car.state.drive is not None and car.state.drive.start_odometer_km == 1000.0


def test_drive_end_is_placed_after_the_last_look_in_gear() -> None:
    car = driving_car()  # in gear at 1000.0 km
    start = car.now
    car.full(600, shift_state="D", speed_kmh=60.0, odometer_km=1006.0)  # 36 km/h so far
    last_in_gear = car.now
    out = car.full(300, shift_state=None, odometer_km=1007.2)
    (closed,) = of(out, fx.CloseDrive)
    # 1.2 km at the drive's 36 km/h: 2 minutes after the last look in gear
    assert closed.end_date == last_in_gear + timedelta(minutes=2)
    positions = [e.position for e in of(out, fx.InsertPosition) if e.drive_ref is not None]
    assert positions[-1].date == closed.end_date and positions[-1].odometer == 1007.2
    assert start < closed.end_date < car.now


def test_drive_left_open_by_a_crash_ends_after_its_last_position() -> None:
    # what logbook.resume hands back: a drive of 6 km in 10 min, last seen in gear at T0+10
    start = T0 - timedelta(minutes=10)
    drive = OpenDriveRow(1, start, 41, 1000.0, 1006.0, T0)
    car = Car(state=CarState(VIN, timing=PACED, drive=drive, next_ref=5))
    car.do(Boot(), after=1800)  # fleetlog is back half an hour later
    car.light(ONLINE)
    out = car.full(odometer_km=1007.2)
    (closed,) = of(out, fx.CloseDrive)
    # 1.2 km at the drive's 36 km/h: 2 minutes after its last position, not at the first look
    assert closed.ref == 1 and closed.end_date == T0 + timedelta(minutes=2)
    assert (closed.start_km, closed.end_km) == (1000.0, 1007.2)
    (end,) = [e.position for e in of(out, fx.InsertPosition) if e.drive_ref == 1]
    assert end.date == closed.end_date and end.odometer == 1007.2
    assert car.phase is Phase.ONLINE and not of(out, fx.OpenDrive)


def test_drive_left_open_by_a_crash_and_found_asleep_keeps_the_distance_seen_later() -> None:
    # the logger comes back to a sleeping car (the odometer unknown): the drive is closed at
    # its last position, and the car's first look hours later finds it 1.2 km further on
    start = T0 - timedelta(minutes=10)
    drive = OpenDriveRow(1, start, 41, 1000.0, 1006.0, T0)
    car = Car(state=CarState(VIN, timing=PACED, drive=drive, next_ref=5))
    car.do(Boot(), after=1800)
    asleep = car.light(ASLEEP)
    (first,) = of(asleep, fx.CloseDrive)
    assert first.ref == 1 and not first.final  # the drive may yet be longer
    car.light(ONLINE, after=5 * 3600)
    out = car.full(odometer_km=1007.2)
    # the rest of the distance is part of the same drive, not a drive of its own...
    assert not of(out, fx.OpenDrive)
    (closed,) = of(out, fx.CloseDrive)
    assert closed.ref == 1 and closed.final
    assert (closed.start_km, closed.end_km) == (1000.0, 1007.2)
    # ...ended 1.2 km at the drive's 36 km/h after its last position
    assert closed.end_date == T0 + timedelta(minutes=2)
    (end,) = [e.position for e in of(out, fx.InsertPosition) if e.drive_ref == 1]
    assert end.date == closed.end_date and end.odometer == 1007.2
    assert car.phase is Phase.ONLINE


def test_drive_closed_asleep_at_start_ends_no_later_than_the_asleep_look() -> None:
    # 1.2 km at 36 km/h would take 2 min, but the car was seen asleep 1 min after its last
    # position: it had parked by then
    drive = OpenDriveRow(1, T0 - timedelta(minutes=10), 41, 1000.0, 1006.0, T0)
    car = Car(state=CarState(VIN, timing=PACED, drive=drive, next_ref=5))
    car.do(Boot(), after=60)
    car.light(ASLEEP)
    car.light(ONLINE, after=3600)
    (closed,) = of(car.full(odometer_km=1007.2), fx.CloseDrive)
    assert closed.ref == 1 and closed.end_date == T0 + timedelta(minutes=1)


def test_drive_closed_offline_at_start_may_have_driven_on_until_the_parked_look() -> None:
    # out of reach 1 min after its last position: not proof that it had parked
    drive = OpenDriveRow(1, T0 - timedelta(minutes=10), 41, 1000.0, 1006.0, T0)
    car = Car(state=CarState(VIN, timing=PACED, drive=drive, next_ref=5))
    car.do(Boot(), after=60)
    assert not of(car.light(OFFLINE), fx.CloseDrive)[0].final
    car.light(ONLINE, after=3600)
    (closed,) = of(car.full(odometer_km=1007.2), fx.CloseDrive)
    assert closed.ref == 1 and closed.end_date == T0 + timedelta(minutes=2)


def test_drive_that_stood_still_before_parking_ends_at_its_last_look() -> None:
    car = driving_car()
    car.full(600, shift_state="D", speed_kmh=0.0, odometer_km=1006.0)
    last_in_gear = car.now
    out = car.full(240, shift_state=None, odometer_km=1006.0)
    (closed,) = of(out, fx.CloseDrive)
    assert closed.end_date - last_in_gear <= timedelta(milliseconds=1)  # own date


def test_stream_parked_frame_places_the_end_of_the_drive() -> None:
    car = driving_car(Feed.STREAM)
    car.frame(30, shift_state="D", speed_kmh=40.0, odometer_km=1000.4, power_kw=10.0)
    out = car.frame(10, shift_state=None, speed_kmh=None, odometer_km=1000.5, power_kw=0.0)
    parked_at = car.now
    assert fetch(out).kind is FetchKind.FULL  # the stream's "parked" is confirmed by REST
    out = car.full(40, shift_state=None, odometer_km=1000.5)
    (closed,) = of(out, fx.CloseDrive)
    assert closed.end_date - parked_at <= timedelta(milliseconds=1)  # own date


# --- (c) drives between two looks ------------------------------------------------------------


def test_odometer_moved_between_two_parked_looks_is_a_drive() -> None:
    car = online_car(odometer_km=1000.0)
    before = car.now
    out = car.full(600, odometer_km=1001.4, latitude=48.2, longitude=11.6)
    (opened,) = of(out, fx.OpenDrive)
    (closed,) = of(out, fx.CloseDrive)
    assert closed.ref == opened.ref and closed.reason == "between looks"
    assert closed.start_km == 1000.0 and closed.end_km == pytest.approx(1001.4)
    # 1.4 km at 40 km/h is 2.1 min, put in the middle of the 10 min gap
    assert opened.start.date == before + timedelta(minutes=3.95)
    assert closed.end_date == before + timedelta(minutes=6.05)
    assert car.phase is Phase.ONLINE
    # the new place is the baseline now: nothing more is recorded at the next look
    assert not of(car.full(60, odometer_km=1001.4, latitude=48.2, longitude=11.6), fx.OpenDrive)


def _paced_parked_car() -> Car:
    car = Car(state=CarState(VIN, timing=PACED))
    car.do(Boot())
    car.light(ONLINE)
    car.full(odometer_km=1000.0)
    assert car.phase is Phase.ONLINE
    return car


def _follow(car: Car, out: list[fx.Effect], **values: Any) -> list[fx.Effect]:
    """Answer the fetch `out` asked for, when it asked, with a parked look of `values`."""
    return car.full((fetch(out).at - car.now).total_seconds(), **values)


def test_paced_watch_after_parking_thins_out_then_lets_the_car_sleep() -> None:
    car = _paced_parked_car()
    parked, out, gaps = car.now, car.all, []
    while car.phase is Phase.ONLINE:
        gaps.append((fetch(out).at - car.now).total_seconds())
        out = _follow(car, out, odometer_km=1000.0)
    # a look a minute while the driver may come back, then ever sparser, never more than
    # five minutes apart: no drive between two looks can be placed more than 2.5 min off
    assert gaps[:5] == [60.0] * 5 and gaps == sorted(gaps) and max(gaps) <= 300.0
    assert len(gaps) == 12  # fewer than 15 minutes at one a minute
    # then it stops calling vehicle_data so the car can fall asleep
    assert car.phase is Phase.SUSPENDED
    assert timedelta(minutes=20) <= car.now - parked <= timedelta(minutes=25)
    assert fetch(out).kind is FetchKind.LIGHT


def test_paced_suspended_car_is_watched_for_free_and_seen_falling_asleep() -> None:
    car = _paced_parked_car()
    out = car.all
    while car.phase is Phase.ONLINE:
        out = _follow(car, out, odometer_km=1000.0)
    suspended, looks, mark = car.now, [], len(car.all)
    for _ in range(20):  # ten minutes online, then it sleeps
        assert fetch(out).kind is FetchKind.LIGHT
        looks.append((fetch(out).at - car.now).total_seconds())
        out = car.light(ONLINE, after=looks[-1])
    assert looks == [PACED.asleep] * 20 and car.phase is Phase.SUSPENDED
    out = car.light(ASLEEP, after=(fetch(out).at - car.now).total_seconds())
    assert car.phase is Phase.ASLEEP
    (row,) = of(out, fx.StartState)
    assert row.start - suspended == timedelta(minutes=10, seconds=30)  # to the half minute
    # free looks only: nothing keeps the car awake
    assert {f.kind for f in of(car.all[mark:], fx.ScheduleFetch)} == {FetchKind.LIGHT}


def test_paced_watch_starts_again_after_a_drive_between_two_looks() -> None:
    car = _paced_parked_car()
    out = car.all
    for _ in range(10):
        out = _follow(car, out, odometer_km=1000.0)
    assert (fetch(out).at - car.now).total_seconds() > 60
    out = _follow(car, out, odometer_km=1001.2, latitude=48.2, longitude=11.6)
    assert of(out, fx.CloseDrive)
    # it has just moved: it may move again in a minute
    assert fetch(out).at == car.at(PACED.paced_online) and car.phase is Phase.ONLINE


def test_a_drive_found_by_the_look_in_suspension_brings_the_watch_back() -> None:
    car = _paced_parked_car()
    out = car.all
    while car.phase is Phase.ONLINE:
        out = _follow(car, out, odometer_km=1000.0)
    suspended = car.now
    while fetch(out).kind is FetchKind.LIGHT:
        out = car.light(ONLINE, after=(fetch(out).at - car.now).total_seconds())
    # still online when an idle car would be asleep: something keeps it awake
    assert car.now - suspended == timedelta(minutes=PACED.paced_sleep_check_min)
    out = car.full(odometer_km=1001.5, latitude=48.2, longitude=11.6)
    assert of(out, fx.CloseDrive)
    assert car.phase is Phase.ONLINE and fetch(out).at == car.at(PACED.paced_online)


def test_a_move_found_with_the_driver_still_in_the_car_has_just_ended() -> None:
    car = _paced_parked_car()
    out = car.all
    while car.phase is Phase.ONLINE:
        out = _follow(car, out, odometer_km=1000.0)
    while fetch(out).kind is FetchKind.LIGHT:
        out = car.light(ONLINE, after=(fetch(out).at - car.now).total_seconds())
    out = car.full(odometer_km=1002.0, is_user_present=True, shift_state="P")
    (opened,) = of(out, fx.OpenDrive)
    (closed,) = of(out, fx.CloseDrive)
    # not in the middle of the 16-minute gap: 2 km at 40 km/h, ending at this look
    assert closed.end_date == car.now and opened.start.date == car.now - timedelta(minutes=3)


def test_a_car_slow_to_fall_asleep_gets_the_early_look_once_per_suspension() -> None:
    car = _paced_parked_car()
    out = car.all
    while car.phase is Phase.ONLINE:
        out = _follow(car, out, odometer_km=1000.0)
    paid = []
    for _ in range(3):
        looked = car.now
        while fetch(out).kind is FetchKind.LIGHT:
            out = car.light(ONLINE, after=(fetch(out).at - car.now).total_seconds())
        paid.append((car.now - looked).total_seconds() / 60)
        out = car.full(odometer_km=1000.0)  # idle, nothing moved: it is just slow to sleep
        assert car.phase is Phase.SUSPENDED
    assert paid == [PACED.paced_sleep_check_min, 21.0, 21.0]  # then TeslaMate's suspend_min


def test_a_drive_after_a_charge_is_placed_after_the_last_charging_look() -> None:
    car = Car(state=CarState(VIN, timing=PACED))
    car.do(Boot())
    car.light(ONLINE)
    car.full(odometer_km=1000.0)
    charging = dict(charging_state="Charging", charger_power_kw=11.0, odometer_km=1000.0)
    car.full(60, charge_energy_added_kwh=0.2, **charging)
    for n in range(20):  # an hour of charging, a look every 3 minutes
        car.full(180, charge_energy_added_kwh=0.7 + n * 0.5, **charging)
    last_charging = car.now
    # unplugged and driven off between two looks
    out = car.full(180, odometer_km=1000.8, latitude=48.2, longitude=11.6)
    (opened,) = of(out, fx.OpenDrive)
    (closed,) = of(out, fx.CloseDrive)
    assert last_charging <= opened.start.date < closed.end_date <= car.now


def test_drive_between_looks_is_bounded_by_the_wake() -> None:
    car = online_car(odometer_km=1000.0)
    car.light(ASLEEP, after=1800)
    woke = car.now + timedelta(hours=5)
    car.light(ONLINE, after=5 * 3600)
    out = car.full(600, odometer_km=1002.0, latitude=48.2, longitude=11.6)
    (opened,) = of(out, fx.OpenDrive)
    (closed,) = of(out, fx.CloseDrive)
    assert woke <= opened.start.date < closed.end_date <= car.now


def test_odometer_noise_is_no_drive() -> None:
    car = online_car(odometer_km=1000.0)
    assert not of(car.full(600, odometer_km=1000.05), fx.OpenDrive)


# --- (d) offline: drive ends and charges begin out of reach -------------------------------


def test_drive_into_an_offline_garage_and_a_charge_begun_there() -> None:
    car = driving_car()  # 50 km/h at 1000.0 km
    car.full(120, shift_state="D", speed_kmh=40.0, odometer_km=1001.0, battery_level=70)
    last_seen = car.now
    car.light(OFFLINE, after=5)
    for _ in range(200):  # an hour and more out of reach
        car.light(OFFLINE, after=30)
    assert car.state.drive is not None
    car.light(ONLINE, after=30)
    out = car.full(
        shift_state=None,
        odometer_km=1001.8,
        latitude=48.3,
        longitude=11.7,
        charging_state="Charging",
        charger_power_kw=11.0,
        charge_energy_added_kwh=11.0,
        battery_level=85,
    )
    (closed,) = of(out, fx.CloseDrive)
    assert closed.end_km == pytest.approx(1001.8) and closed.reason == "offline"
    # 0.8 km at the drive's 30 km/h: 1.6 min after it was last seen
    assert closed.end_date == last_seen + timedelta(minutes=1.6)
    (opened,) = of(out, fx.OpenChargingProcess)
    assert not opened.synthesised and car.phase is Phase.CHARGING
    assert opened.start_date == car.now - timedelta(hours=11.0 / 9.9)  # 11 kWh at 11 kW AC
    first = samples(out)[0]
    assert first.charge_energy_added == 0.0 and first.battery_level == 70


def test_charge_finished_while_offline_after_a_drive_is_synthesised() -> None:
    car = driving_car()
    car.full(120, shift_state="D", odometer_km=1001.0, ideal_range_km=300.0)
    car.light(OFFLINE, after=5)
    car.light(ONLINE, after=4 * 3600)
    out = car.full(shift_state=None, odometer_km=1001.5, ideal_range_km=400.0,
                   charging_state="Complete")  # fmt: skip
    assert of(out, fx.CloseDrive)
    (opened,) = of(out, fx.OpenChargingProcess)
    assert opened.synthesised and car.phase is Phase.ONLINE


def test_offline_spell_ending_asleep_still_closes_where_last_seen() -> None:
    car = driving_car()
    car.full(60, shift_state="D", odometer_km=1001.0)
    seen = car.now
    car.light(OFFLINE, after=5)
    out = car.light(ASLEEP, after=7200)
    (closed,) = of(out, fx.CloseDrive)
    assert closed.end_date == seen and car.phase is Phase.ASLEEP
    assert OFFLINE  # (imported for symmetry with the transitions tests)


# --- (e) pushed data -------------------------------------------------------------------------


def test_telemetry_drive_starts_at_the_parked_odometer() -> None:
    # the Gear record comes alone; the odometer follows 0.1 mi (minimum_delta) into the drive
    car = online_car(Feed.TELEMETRY, odometer_km=1000.0)
    out = car.frame(5, full_frame=False, shift_state="D", latitude=48.1, longitude=11.5)
    assert car.phase is Phase.DRIVING
    (opened,) = of(out, fx.OpenDrive)
    assert opened.start.odometer == 1000.0
    assert [p.position.odometer for p in of(out, fx.InsertPosition)] == [1000.0]
    assert car.state.drive is not None and car.state.drive.start_odometer_km == 1000.0
    car.frame(40, full_frame=False, odometer_km=1000.161)
    out = car.frame(60, full_frame=False, shift_state="P", odometer_km=1004.0)
    out = car.full(1, shift_state=None, odometer_km=1004.0)
    (closed,) = of(out, fx.CloseDrive)
    assert (closed.start_km, closed.end_km) == (1000.0, 1004.0)


def test_records_after_a_telemetry_park_keep_its_paid_look_due() -> None:
    # SoC, tyres, a DC charge starting: none may push the confirming look 90 s back,
    # nor move the drive's end past the parked record
    car = driving_car(Feed.TELEMETRY)
    car.frame(1, full_frame=False, shift_state="D", odometer_km=1004.0, latitude=48.2)
    out = car.frame(5, full_frame=False, shift_state="P", odometer_km=1004.0)
    parked_at, confirm = car.now, fetch(out)
    assert confirm.kind is FetchKind.FULL and confirm.at == parked_at
    out = car.frame(8, full_frame=False, battery_level=37, latitude=48.21, odometer_km=1004.2)
    out += car.frame(15, full_frame=False, charging_state="Starting", charger_power_kw=0.0)
    assert not of(out, fx.ScheduleFetch) and not of(out, fx.InsertPosition)
    out = car.full(2, shift_state=None, odometer_km=1004.1)
    (closed,) = of(out, fx.CloseDrive)
    assert closed.end_date - parked_at <= timedelta(milliseconds=1) and closed.end_km == 1004.1


def test_a_park_the_paid_look_contradicts_was_a_pause() -> None:
    car = driving_car(Feed.TELEMETRY)
    car.frame(1, full_frame=False, shift_state="D", odometer_km=1004.0, latitude=48.2)
    car.frame(5, full_frame=False, shift_state="P")
    car.full(2, shift_state="D", odometer_km=1004.05, speed_kmh=10.0)
    assert car.phase is Phase.DRIVING and car.state.drive is not None
    assert car.state.drive.stopped_at is None
    out = car.frame(30, full_frame=False, odometer_km=1005.0, latitude=48.21)
    assert fetch(out).reason == "feed watchdog"


# --- (f) pushed charge ends, sparse pushed odometers, a late charge's pace ------------------


def telemetry_charging_car() -> Car:
    car = online_car(Feed.TELEMETRY)
    car.frame(5, full_frame=False, charging_state="Charging", charger_power_kw=11.0,
              charge_energy_added_kwh=0.0)  # fmt: skip
    assert car.phase is Phase.CHARGING
    car.frame(60, full_frame=False, charge_energy_added_kwh=0.165)
    return car


def test_pushed_charge_end_with_the_counter_behind_gets_one_look_and_ends_at_the_record() -> None:
    # DCChargingEnergyIn comes every 60 s past 0.1 kWh; the state within seconds
    car = telemetry_charging_car()
    out = car.frame(50, full_frame=False, charging_state="Complete", charger_power_kw=0.0)
    ended_at = car.now
    assert not of(out, fx.CloseChargingProcess)
    assert fetch(out) == fx.ScheduleFetch(FetchKind.FULL, ended_at, "charge ended, counter behind")
    # records while the look is due change nothing
    assert not of(car.frame(2, full_frame=False, charging_state="Complete"), fx.ScheduleFetch)
    out = car.full(1, charging_state="Complete", charger_power_kw=0.0, charge_energy_added_kwh=0.29)
    (closed,) = of(out, fx.CloseChargingProcess)
    assert closed.end_date == ended_at and car.phase is Phase.ONLINE
    last = samples(out)[-1]
    assert last.date == ended_at and last.charge_energy_added == 0.29


def test_pushed_charge_end_with_its_counter_needs_no_look() -> None:
    car = telemetry_charging_car()
    out = car.frame(60, full_frame=False, charging_state="Complete", charger_power_kw=0.0,
                    charge_energy_added_kwh=0.33)  # fmt: skip
    (closed,) = of(out, fx.CloseChargingProcess)
    assert closed.end_date == car.now and samples(out)[-1].charge_energy_added == 0.33
    assert all(f.kind is FetchKind.LIGHT for f in of(out, fx.ScheduleFetch))


def test_a_pushed_charge_end_the_look_contradicts_was_a_pause() -> None:
    car = telemetry_charging_car()
    car.frame(50, full_frame=False, charging_state="Stopped", charger_power_kw=0.0)
    out = car.full(1, charging_state="Charging", charger_power_kw=11.0, charge_energy_added_kwh=0.3)
    assert not of(out, fx.CloseChargingProcess) and car.phase is Phase.CHARGING
    assert car.state.charge is not None and car.state.charge.ended_at is None


def test_drive_end_after_offline_counts_the_gps_path_since_the_last_pushed_odometer() -> None:
    # telemetry: the odometer came once at the start; positions every 10 s, 111 m apart
    car = online_car(Feed.TELEMETRY)
    car.frame(5, full_frame=False, shift_state="D", latitude=48.1, longitude=11.5)
    for i in range(1, 4):
        car.frame(10, full_frame=False, latitude=48.1 + 0.001 * i, longitude=11.5)
    last_seen, path_km = car.now, car.state.drive.path_km if car.state.drive else 0.0
    assert path_km == pytest.approx(0.3336, abs=1e-3)
    car.light(OFFLINE, after=5)
    for _ in range(40):
        car.light(OFFLINE, after=30)
    car.light(ONLINE, after=30)
    # as far again as the path up to the last position: as long again at that pace
    out = car.full(shift_state=None, odometer_km=1000.0 + 2 * path_km)
    (closed,) = of(out, fx.CloseDrive)
    assert abs(closed.end_date - (last_seen + timedelta(seconds=30))) < timedelta(milliseconds=2)


def test_late_charge_start_is_placed_again_at_the_counters_measured_pace() -> None:
    car = online_car()
    out = car.full(1200, charging_state="Charging", charger_power_kw=11.0,
                   charge_energy_added_kwh=2.75)  # fmt: skip
    seen_at = car.now
    (opened,) = of(out, fx.OpenChargingProcess)
    assert opened.start_date == seen_at - timedelta(hours=2.75 / 9.9)  # 90 % of 11 kW
    for minutes in range(3, 31, 3):  # the counter goes up at 10 kW, not 9.9
        car.full(180, charging_state="Charging", charger_power_kw=11.0,
                 charge_energy_added_kwh=2.75 + minutes / 6)  # fmt: skip
    out = car.full(60, charging_state="Complete", charger_power_kw=0.0,
                   charge_energy_added_kwh=7.9)  # fmt: skip
    (moved,) = of(out, fx.MoveChargeStart)
    assert moved.moved_from == opened.start_date
    assert moved.start_date == seen_at - timedelta(hours=2.75 / 10.0)
    assert out.index(moved) < out.index(of(out, fx.CloseChargingProcess)[0])


def test_late_charge_start_stays_when_the_power_changed_or_too_little_went_in() -> None:
    car = online_car()
    car.full(1200, charging_state="Charging", charger_power_kw=11.0, charge_energy_added_kwh=2.75)
    car.full(600, charging_state="Charging", charger_power_kw=7.0, charge_energy_added_kwh=5.0)
    out = car.full(60, charging_state="Complete", charger_power_kw=0.0,
                   charge_energy_added_kwh=5.1)  # fmt: skip
    assert of(out, fx.CloseChargingProcess) and not of(out, fx.MoveChargeStart)
    car = online_car()
    car.full(1200, charging_state="Charging", charger_power_kw=11.0, charge_energy_added_kwh=2.75)
    car.full(300, charging_state="Charging", charger_power_kw=11.0, charge_energy_added_kwh=3.6)
    out = car.full(60, charging_state="Complete", charger_power_kw=0.0,
                   charge_energy_added_kwh=3.7)  # fmt: skip
    assert of(out, fx.CloseChargingProcess) and not of(out, fx.MoveChargeStart)
