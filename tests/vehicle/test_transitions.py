"""Every transition of reference §5.3: events in, effects out."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from _world import PARKED, T0, VIN, full, light, pushed

from fleetlog.model.observation import Connectivity
from fleetlog.vehicle import effects as fx
from fleetlog.vehicle.events import (
    Boot,
    Event,
    FetchError,
    FetchFailed,
    FetchKind,
    StreamConnected,
    TimerFired,
    TimerKind,
    budget_later,
)
from fleetlog.vehicle.machine import TRANSITIONS, CarState, Link, OpenDriveRow, step
from fleetlog.vehicle.phase import Phase, Probe
from fleetlog.vehicle.settings import Feed

ASLEEP, ONLINE, OFFLINE = Connectivity.ASLEEP, Connectivity.ONLINE, Connectivity.OFFLINE


class Car:
    """A machine under test with a moving clock; `do` returns that step's effects."""

    def __init__(self, feed: Feed = Feed.NONE, state: CarState | None = None) -> None:
        self.state = state or CarState(VIN, feed=feed)
        self.now = T0
        self.all: list[fx.Effect] = []

    def at(self, seconds: float) -> datetime:
        return self.now + timedelta(seconds=seconds)

    def do(self, event: Event, after: float = 0.0) -> list[fx.Effect]:
        self.now += timedelta(seconds=after)
        self.state, out = step(self.state, event, self.now)
        self.all += out
        return out

    @property
    def phase(self) -> Phase:
        return self.state.phase

    def full(self, after: float = 0.0, **values: Any) -> list[fx.Effect]:
        return self.do(full(self.now + timedelta(seconds=after), **{**PARKED, **values}), after)

    def light(self, c: Connectivity, after: float = 0.0) -> list[fx.Effect]:
        return self.do(light(self.now + timedelta(seconds=after), c), after)

    def frame(self, after: float = 0.0, **values: Any) -> list[fx.Effect]:
        return self.do(pushed(self.now + timedelta(seconds=after), **values), after)


def of(effects: list[fx.Effect], cls: type) -> list[Any]:
    return [e for e in effects if isinstance(e, cls)]


def fetch(effects: list[fx.Effect]) -> fx.ScheduleFetch:
    (last,) = of(effects, fx.ScheduleFetch)[-1:]
    return last  # type: ignore[no-any-return]


def online_car(feed: Feed = Feed.NONE, **values: Any) -> Car:
    car = Car(feed)
    car.do(Boot())
    car.light(ONLINE)
    if feed is not Feed.NONE:
        car.do(StreamConnected())
        car.frame(power_kw=0.0, shift_state=None)  # proves the wake real
    car.full(**values)
    assert car.phase is Phase.ONLINE
    return car


def driving_car(feed: Feed = Feed.NONE) -> Car:
    car = online_car(feed)
    car.full(2.5, shift_state="D", speed_kmh=50.0)
    assert car.phase is Phase.DRIVING
    return car


# --- start -------------------------------------------------------------------------------


def test_boot_asks_the_free_endpoint_first() -> None:
    car = Car()
    out = car.do(Boot())
    assert fetch(out).kind is FetchKind.LIGHT and fetch(out).at == T0
    assert of(out, fx.PublishSummary)[0].summary["state"] == "unavailable"


@pytest.mark.parametrize("c,phase", [(ASLEEP, Phase.ASLEEP), (OFFLINE, Phase.OFFLINE)])
def test_start_asleep_or_offline_writes_state_and_polls_lightly(
    c: Connectivity, phase: Phase
) -> None:
    car = Car()
    car.do(Boot())
    out = car.light(c)
    assert car.phase is phase
    (row,) = of(out, fx.StartState)
    assert row.status.value == c.value and row.closes is None
    assert fetch(out) == fx.ScheduleFetch(FetchKind.LIGHT, car.at(30), "asleep")


def test_start_online_polling_fetches_full_then_goes_online() -> None:
    car = Car()
    car.do(Boot())
    assert fetch(car.light(ONLINE)).kind is FetchKind.FULL
    out = car.full()
    assert car.phase is Phase.ONLINE
    assert [e.status.value for e in of(out, fx.StartState)] == ["online"]
    assert len(of(out, fx.InsertPosition)) == 1 and of(out, fx.InsertPosition)[0].drive_ref is None
    assert fx.SetTimer(TimerKind.POSITION, car.at(300)) in out
    assert not of(out, fx.ConnectStream)


def test_start_online_with_stream_connects_it() -> None:
    car = online_car(Feed.STREAM)
    assert of(car.all, fx.ConnectStream)
    assert car.state.stream_on


def test_missed_update_is_recorded_from_car_version() -> None:
    car = Car(state=CarState(VIN, last_update_version="2025.44.1"))
    car.do(Boot())
    car.light(ONLINE)
    out = car.full(car_version="2026.2.1 abc")
    (opened,), (closed,) = of(out, fx.OpenUpdate), of(out, fx.CloseUpdate)
    assert opened.version == closed.version == "2026.2.1 abc"
    assert opened.start_date == closed.end_date  # zero-length
    car2 = Car(state=CarState(VIN, last_update_version="2026.2.1"))
    car2.do(Boot())
    car2.light(ONLINE)
    assert not of(car2.full(car_version="2026.2.1 abc"), fx.OpenUpdate)


# --- the MCU2 fake-online guard (§5.6) -----------------------------------------------------


def _probing_car() -> tuple[Car, list[fx.Effect]]:
    car = Car(Feed.STREAM)
    car.do(Boot())
    car.light(ASLEEP)
    out = car.light(ONLINE, after=30)
    return car, out


def test_stream_online_from_asleep_probes_instead_of_paying() -> None:
    car, out = _probing_car()
    assert car.phase is Phase.ASLEEP and car.state.probe is Probe.PROBING
    assert of(out, fx.ConnectStream)
    assert fx.SetTimer(TimerKind.PROBE, car.at(30)) in out
    assert all(f.kind is FetchKind.LIGHT for f in of(out, fx.ScheduleFetch))


def test_frame_without_power_is_a_fake_wake() -> None:
    car, _ = _probing_car()
    out = car.frame(after=3, power_kw=None, shift_state=None)
    assert car.state.probe is Probe.FAKE and car.phase is Phase.ASLEEP
    assert not of(out, fx.ScheduleFetch)
    # and the free endpoint saying asleep again closes the stream
    out = car.light(ASLEEP, after=30)
    assert of(out, fx.DisconnectStream) and car.state.probe is Probe.IDLE


def test_frame_with_power_is_a_real_wake() -> None:
    car, _ = _probing_car()
    out = car.frame(after=3, power_kw=0.0, shift_state=None)
    assert car.phase is Phase.START
    assert fetch(out).kind is FetchKind.FULL  # identity unknown: one paid call
    car.full()
    assert car.phase is Phase.ONLINE


def test_no_frame_in_the_probe_window_counts_as_real() -> None:
    car, _ = _probing_car()
    out = car.do(TimerFired(TimerKind.PROBE), after=30)
    assert car.phase is Phase.START and fetch(out).kind is FetchKind.FULL


def test_known_car_wakes_on_the_feed_without_paying() -> None:
    car = online_car(Feed.TELEMETRY)
    car.light(ASLEEP, after=20)
    assert car.phase is Phase.ASLEEP
    out = car.frame(after=600, full_frame=False, power_kw=0.0, latitude=48.1, longitude=11.5)
    assert car.phase in (Phase.ONLINE, Phase.SUSPENDED)
    assert not [f for f in of(out, fx.ScheduleFetch) if f.kind is FetchKind.FULL]
    assert [e.status.value for e in of(out, fx.StartState)] == ["online"]


# --- online ---------------------------------------------------------------------------------


def test_online_installing_opens_update_and_drops_stream() -> None:
    car = online_car(Feed.STREAM)
    out = car.full(15, update_status="installing", update_version="2026.8.1")
    assert car.phase is Phase.UPDATING
    (u,) = of(out, fx.OpenUpdate)
    assert u.version == "2026.8.1"
    assert of(out, fx.DisconnectStream)
    assert fetch(out) == fx.ScheduleFetch(FetchKind.FULL, car.at(15), "updating")


def test_online_shift_d_opens_drive_with_first_position() -> None:
    car = online_car()
    out = car.full(15, shift_state="D", speed_kmh=10.0)
    assert car.phase is Phase.DRIVING
    (d,) = of(out, fx.OpenDrive)
    assert [p.drive_ref for p in of(out, fx.InsertPosition)] == [d.ref]
    assert fetch(out).at == car.at(2.5) and fetch(out).kind is FetchKind.FULL


@pytest.mark.parametrize("cs", ["Starting", "Charging"])
def test_online_charging_opens_process_with_sample(cs: str) -> None:
    car = online_car()
    out = car.full(15, charging_state=cs, charger_power_kw=11.0, charge_energy_added_kwh=0.1)
    assert car.phase is Phase.CHARGING
    (c,) = of(out, fx.OpenChargingProcess)
    assert c.position is not None
    # The 0.1 kWh on the session counter went in before this look: the process opens
    # with a sample at the counter's zero (issue 7: a charge seen late loses nothing).
    first, s = of(out, fx.AddChargeSample)
    assert first.sample.charge_energy_added == 0.0 and first.sample.date == c.start_date
    assert s.charge_ref == c.ref and s.sample.charger_power == 11.0
    assert fetch(out).at == car.at(5)


def test_online_asleep_goes_through_start_to_asleep() -> None:
    car = online_car()
    out = car.light(ASLEEP, after=15)
    assert car.phase is Phase.ASLEEP
    assert [e.status.value for e in of(out, fx.StartState)] == ["asleep"]
    assert fx.CancelTimer(TimerKind.POSITION) in out


def test_stream_frame_in_gear_starts_drive_at_once() -> None:
    car = online_car(Feed.STREAM)
    out = car.frame(
        1, shift_state="D", power_kw=5.0, latitude=48.1, longitude=11.5, odometer_km=1000.0
    )
    assert car.phase is Phase.DRIVING and of(out, fx.OpenDrive)
    assert fetch(out).kind is FetchKind.FULL and fetch(out).at == car.at(90)  # watchdog only


def test_stream_negative_power_parked_means_charging_detected() -> None:
    car = online_car(Feed.STREAM)
    out = car.frame(1, shift_state=None, power_kw=-7.0)
    assert fetch(out) == fx.ScheduleFetch(FetchKind.FULL, car.now, "charging detected")
    car2 = online_car(Feed.STREAM, is_preconditioning=True)
    assert not of(car2.frame(1, shift_state=None, power_kw=-7.0), fx.ScheduleFetch)


def test_position_timer_stores_a_position_every_five_minutes() -> None:
    car = online_car()
    out = car.do(TimerFired(TimerKind.POSITION), after=300)
    assert len(of(out, fx.InsertPosition)) == 1
    assert fx.SetTimer(TimerKind.POSITION, car.at(300)) in out


# --- driving ------------------------------------------------------------------------------


def test_driving_keeps_polling_and_inserting_positions() -> None:
    car = driving_car()
    out = car.full(2.5, shift_state="D", odometer_km=1000.5)
    assert len(of(out, fx.InsertPosition)) == 1 and fetch(out).at == car.at(2.5)


def test_parked_closes_drive_and_reevaluates_for_a_charge() -> None:
    car = driving_car()
    car.full(2.5, shift_state="D", odometer_km=1001.0)
    out = car.full(
        2.5, shift_state="P", odometer_km=1002.0, charging_state="Starting", charger_power_kw=1.0
    )
    (closed,) = of(out, fx.CloseDrive)
    assert closed.start_km == 1000.0 and closed.end_km == 1002.0
    assert of(out, fx.OpenChargingProcess) and car.phase is Phase.CHARGING


def test_phantom_drive_is_dropped() -> None:
    car = driving_car()
    out = car.full(2.5, shift_state=None)  # same odometer: never moved
    assert of(out, fx.DropDrive) and not of(out, fx.CloseDrive)
    assert car.phase is Phase.ONLINE


def test_offline_while_driving_retries_then_times_out() -> None:
    # TeslaMate closes the drive at the 15-min timeout where it was last seen; fleetlog
    # writes the offline state then but keeps the drive open until the car answers, so
    # the end is where the car really parked (reference §5.3; issue 7, city-day).
    car = driving_car()
    car.full(2.5, shift_state="D", odometer_km=1003.0)
    last_seen = car.now
    out = car.do(FetchFailed(FetchKind.FULL, FetchError.ASLEEP), after=2.5)
    assert fetch(out).kind is FetchKind.LIGHT and fetch(out).at == car.now  # 408 → ask which
    out = car.light(OFFLINE)
    assert car.state.link is Link.UNAVAILABLE and fetch(out).at == car.at(5)
    for _ in range(15):
        out = car.light(OFFLINE, after=5)
    assert car.state.link is Link.OFFLINE and fetch(out).at == car.at(30)
    timed_out: list[fx.Effect] = []
    while car.now - last_seen < timedelta(minutes=16):
        timed_out += car.light(OFFLINE, after=30)
    assert not of(timed_out, fx.CloseDrive) and car.state.drive is not None
    (offline,) = of(timed_out, fx.StartState)
    assert offline.status is fx.StateStatus.OFFLINE
    assert car.phase is Phase.DRIVING and car.state.link_lost
    # back, parked 1.2 km further on: the drive ends there, placed by its own pace
    car.light(ONLINE, after=3600)
    out = car.full(shift_state=None, odometer_km=1004.2)
    (closed,) = of(out, fx.CloseDrive)
    assert closed.reason == "offline" and closed.end_km == pytest.approx(1004.2)
    assert last_seen < closed.end_date < last_seen + timedelta(minutes=10)
    assert car.phase is Phase.ONLINE


def test_asleep_after_offline_drive_closes_it_where_last_seen() -> None:
    car = driving_car()
    car.full(2.5, shift_state="D", odometer_km=1003.0)
    last_seen = car.now
    car.light(OFFLINE, after=2.5)
    out = car.light(ASLEEP, after=3600)
    (closed,) = of(out, fx.CloseDrive)
    assert closed.end_date == last_seen and car.phase is Phase.ASLEEP


def test_short_offline_spell_resumes_the_same_drive() -> None:
    car = driving_car()
    ref = car.state.drive.ref  # type: ignore[union-attr]
    car.light(OFFLINE, after=2.5)
    out = car.light(ONLINE, after=60)
    assert fetch(out).kind is FetchKind.FULL
    out = car.full(shift_state="D", odometer_km=1001.0)
    assert car.phase is Phase.DRIVING and car.state.drive.ref == ref  # type: ignore[union-attr]
    assert [p.drive_ref for p in of(out, fx.InsertPosition)] == [ref]


def test_charge_made_while_offline_is_synthesised() -> None:
    car = driving_car()
    car.full(2.5, shift_state="D", odometer_km=1005.0)
    car.light(OFFLINE, after=2.5)
    out = car.full(
        3600, shift_state=None, odometer_km=1005.0, ideal_range_km=460.0, battery_level=95
    )
    assert of(out, fx.CloseDrive)
    opened = of(out, fx.OpenChargingProcess)
    assert len(opened) == 1 and opened[0].synthesised
    before, after = (s.sample for s in of(out, fx.AddChargeSample))
    assert before.ideal_battery_range_km == 400.0 and after.ideal_battery_range_km == 460.0
    assert before.charger_power == after.charger_power == 0.0
    assert of(out, fx.CloseChargingProcess)[0].reason == "charged while offline"
    assert car.phase is Phase.ONLINE


def test_long_offline_without_range_gain_closes_drive() -> None:
    car = driving_car()
    car.full(2.5, shift_state="D", odometer_km=1005.0)
    car.light(OFFLINE, after=2.5)
    out = car.full(20 * 60, shift_state="D", odometer_km=1010.0)
    assert of(out, fx.CloseDrive)
    # …and restarts: still in gear, so a new drive begins from where it came back
    assert of(out, fx.OpenDrive) and car.phase is Phase.DRIVING


def test_asleep_while_driving_closes_drive() -> None:
    car = driving_car()
    car.full(2.5, shift_state="D", odometer_km=1002.0)
    out = car.light(ASLEEP, after=2.5)
    assert of(out, fx.CloseDrive)[0].reason == "asleep" and car.phase is Phase.ASLEEP


def test_in_service_while_driving_aborts_drive() -> None:
    car = driving_car()
    car.full(2.5, shift_state="D", odometer_km=1002.0)
    out = car.do(FetchFailed(FetchKind.FULL, FetchError.IN_SERVICE), after=2.5)
    assert of(out, fx.CloseDrive)[0].reason == "aborted" and car.phase is Phase.START
    assert fetch(out).at == car.at(60)


def test_stream_parked_frame_is_confirmed_by_rest() -> None:
    car = driving_car(Feed.STREAM)
    out = car.frame(1, shift_state=None, power_kw=0.0)
    assert not of(out, fx.CloseDrive)
    assert fetch(out) == fx.ScheduleFetch(FetchKind.FULL, car.now, "stream shows parked")


def test_telemetry_parked_is_confirmed_by_one_paid_look() -> None:
    # Telemetry's odometer lags by its interval and minimum_delta, so the drive's end is
    # confirmed with one vehicle_data (exact distance); its time is the parked record's.
    car = driving_car(Feed.TELEMETRY)
    car.frame(
        1, full_frame=False, shift_state="D", odometer_km=1004.0, latitude=48.2, longitude=11.5
    )
    out = car.frame(1, full_frame=False, shift_state="P", odometer_km=1004.0)
    parked_at = car.now
    assert not of(out, fx.CloseDrive) and fetch(out).kind is FetchKind.FULL
    out = car.full(2, shift_state=None, odometer_km=1004.1)
    (closed,) = of(out, fx.CloseDrive)
    assert closed.end_date - parked_at <= timedelta(milliseconds=1) and closed.end_km == 1004.1


# --- late drive -----------------------------------------------------------------------------


def test_drive_seen_late_starts_from_last_parked_observation() -> None:
    car = online_car()
    car.full(16 * 60)  # idle long enough → suspended
    assert car.phase is Phase.SUSPENDED
    car.light(ONLINE, after=21 * 60)
    out = car.full(shift_state="D", odometer_km=1012.0, battery_level=77, latitude=48.2)
    (d,) = of(out, fx.OpenDrive)
    assert d.late and d.start.odometer == 1000.0 and d.start.battery_level == 80
    starts = [p.position for p in of(out, fx.InsertPosition)]
    assert [p.odometer for p in starts] == [1000.0, 1012.0]
    # 12 km at the assumed 40 km/h: 18 minutes before it was seen
    assert starts[1].date - starts[0].date == timedelta(minutes=18)


# --- charging ---------------------------------------------------------------------------------


def charging_car(power: float = 11.0) -> Car:
    car = online_car()
    car.full(15, charging_state="Charging", charger_power_kw=power, charge_energy_added_kwh=0.0)
    return car


@pytest.mark.parametrize("kw,seconds", [(11.0, 20.0), (50.0, 5.0), (25.0, 10.0), (0.0, 5.0)])
def test_charging_samples_at_a_power_dependent_rate(kw: float | None, seconds: float) -> None:
    car = charging_car()
    out = car.full(5, charging_state="Charging", charger_power_kw=kw, charge_energy_added_kwh=1.0)
    assert len(of(out, fx.AddChargeSample)) == 1 and fetch(out).at == car.at(seconds)


@pytest.mark.parametrize("cs", ["Complete", "Stopped", "Disconnected", "NoPower"])
def test_other_charging_state_closes_the_process(cs: str) -> None:
    car = charging_car()
    out = car.full(20, charging_state=cs, charge_energy_added_kwh=3.0)
    assert of(out, fx.AddChargeSample) and of(out, fx.CloseChargingProcess)[0].reason == cs
    assert car.phase is Phase.ONLINE


def test_charging_offline_keeps_process_asleep_aborts() -> None:
    car = charging_car()
    out = car.light(OFFLINE, after=20)
    assert car.phase is Phase.CHARGING and fetch(out).at == car.at(10)
    out = car.light(ASLEEP, after=10)
    assert of(out, fx.CloseChargingProcess)[0].reason == "aborted"
    assert car.phase is Phase.ASLEEP


# --- updating ---------------------------------------------------------------------------------


def updating_car() -> Car:
    car = online_car()
    car.full(15, update_status="installing", update_version="2026.8.1")
    return car


def test_update_finishes_with_the_new_car_version() -> None:
    car = updating_car()
    assert fetch(car.full(15, update_status="installing")).at == car.at(15)
    out = car.full(15, update_status="", car_version="2026.8.1 ff00")
    (closed,) = of(out, fx.CloseUpdate)
    assert closed.version == "2026.8.1 ff00" and car.phase is Phase.ONLINE


def test_update_back_to_available_is_cancelled() -> None:
    car = updating_car()
    out = car.full(15, update_status="available")
    assert of(out, fx.CancelUpdate) and not of(out, fx.CloseUpdate)


# --- asleep / offline -------------------------------------------------------------------------


def test_asleep_offline_switch_writes_a_new_state_row() -> None:
    car = Car()
    car.do(Boot())
    car.light(ASLEEP)
    out = car.light(OFFLINE, after=30)
    assert car.phase is Phase.OFFLINE
    (row,) = of(out, fx.StartState)
    assert row.status.value == "offline" and row.closes is not None


def test_asleep_to_online_polling_pays_only_after_the_free_answer() -> None:
    car = Car()
    car.do(Boot())
    car.light(ASLEEP)
    out = car.light(ONLINE, after=30)
    assert car.phase is Phase.START and fetch(out).kind is FetchKind.FULL


def test_resume_logging_polls_fast_then_doubles() -> None:
    car = Car()
    car.do(Boot())
    car.light(ASLEEP)
    from fleetlog.vehicle.events import Command, UserCommand

    out = car.do(UserCommand(Command.RESUME), after=5)
    assert fetch(out).at == car.at(1)
    gaps = []
    for _ in range(6):
        f = fetch(car.light(ASLEEP, after=1))
        gaps.append((f.at - car.now).total_seconds())
    assert gaps == [2, 4, 8, 16, 30, 30]


# --- suspended --------------------------------------------------------------------------------


def suspended_car(feed: Feed = Feed.NONE) -> Car:
    car = online_car(feed)
    minutes = 3 if feed is not Feed.NONE else 15
    if feed is Feed.NONE:
        car.full(minutes * 60)
    else:
        out = car.light(ONLINE, after=minutes * 60)
        if feed is Feed.STREAM:  # suspended only on a paid look's word
            assert fetch(out) == fx.ScheduleFetch(FetchKind.FULL, car.now, "look before suspending")
            car.full()
    assert car.phase is Phase.SUSPENDED
    return car


def test_idle_car_is_suspended_for_suspend_min() -> None:
    car = online_car()
    out = car.full(60)
    assert car.phase is Phase.ONLINE and fetch(out).at == car.at(15)
    out = car.full(14 * 60)
    assert car.phase is Phase.SUSPENDED
    assert fetch(out) == fx.ScheduleFetch(FetchKind.LIGHT, car.at(21 * 60), "suspended")
    assert of(out, fx.InsertPosition)


def test_suspended_polling_checks_and_stays_suspended_while_idle() -> None:
    car = suspended_car()
    assert fetch(car.light(ONLINE, after=21 * 60)).kind is FetchKind.FULL
    out = car.full()
    assert car.phase is Phase.SUSPENDED and fetch(out).at == car.at(21 * 60)


def test_suspended_stream_timing_is_three_and_ten_minutes() -> None:
    car = suspended_car(Feed.STREAM)
    assert fetch(car.all).at == car.at(10 * 60) and fetch(car.all).kind is FetchKind.LIGHT


def test_suspended_stream_sees_drive() -> None:
    car = suspended_car(Feed.STREAM)
    out = car.frame(
        5, shift_state="R", power_kw=2.0, odometer_km=1000.0, latitude=48.1, longitude=11.5
    )
    assert car.phase is Phase.DRIVING and of(out, fx.OpenDrive)


@pytest.mark.parametrize("power", [-5.0, 3.0])
def test_suspended_stream_sees_charging_or_usage(power: float) -> None:
    car = suspended_car(Feed.STREAM)
    out = car.frame(5, shift_state=None, power_kw=power)
    assert car.phase is Phase.ONLINE and of(out, fx.ScheduleFetch)[-1].at == car.now


def test_stream_silent_while_parked_a_paid_look_before_suspending_finds_the_charge() -> None:
    # MyTeslaMate forwards no row while the car is parked (its gear is invalid): a plug-in
    # after the look at park shows only in the paid look the machine takes before suspending.
    car = online_car(Feed.STREAM)
    out = car.light(ONLINE, after=60)
    assert car.phase is Phase.ONLINE and fetch(out).kind is FetchKind.LIGHT
    out = car.light(ONLINE, after=120)
    assert car.phase is Phase.ONLINE
    assert fetch(out) == fx.ScheduleFetch(FetchKind.FULL, car.now, "look before suspending")
    out = car.full(charging_state="Charging", charger_power_kw=150.0)
    assert car.phase is Phase.CHARGING and of(out, fx.OpenChargingProcess)


def test_telemetry_idle_car_is_suspended_without_paying() -> None:
    car = online_car(Feed.TELEMETRY)
    out = car.light(ONLINE, after=3 * 60)
    assert car.phase is Phase.SUSPENDED and fetch(out).kind is FetchKind.LIGHT


def test_look_before_suspend_only_for_a_feed_without_charge_fields() -> None:
    from fleetlog.vehicle import policy

    three = timedelta(minutes=3)
    assert policy.look_before_suspend(Feed.STREAM, T0, T0 + three, three)
    assert policy.look_before_suspend(Feed.STREAM, None, T0, three)
    assert not policy.look_before_suspend(Feed.STREAM, T0, T0 + three / 2, three)
    assert not policy.look_before_suspend(Feed.TELEMETRY, T0, T0 + three, three)
    assert not policy.look_before_suspend(Feed.NONE, T0, T0 + three, three)


def test_stream_blocker_from_the_look_at_park_is_checked_again_by_a_paid_look() -> None:
    # the driver was in the car at the look at park; free polls cannot say they left
    car = online_car(Feed.STREAM, is_user_present=True)
    out = car.light(ONLINE, after=15)
    assert fetch(out).kind is FetchKind.LIGHT and car.phase is Phase.ONLINE
    for _ in range(11):
        out = car.light(ONLINE, after=15)
    assert fetch(out) == fx.ScheduleFetch(FetchKind.FULL, car.now, "look before suspending")
    out = car.full(charging_state="Starting", charger_power_kw=0.0)
    assert car.phase is Phase.CHARGING and of(out, fx.OpenChargingProcess)


def test_suspended_stream_still_online_long_after_the_last_look_pays_one() -> None:
    car = suspended_car(Feed.STREAM)
    out = car.light(ONLINE, after=10 * 60)
    assert fetch(out).kind is FetchKind.LIGHT  # 10 min after the look: it may still sleep
    for _ in range(22):  # 21 min after the look
        out = car.light(ONLINE, after=30)
    assert fetch(out) == fx.ScheduleFetch(FetchKind.FULL, car.now, "still online")
    out = car.full(charging_state="Charging", charger_power_kw=11.0, charge_energy_added_kwh=2.0)
    assert car.phase is Phase.CHARGING and of(out, fx.OpenChargingProcess)


def test_suspended_asleep_goes_asleep() -> None:
    car = suspended_car()
    car.light(ASLEEP, after=21 * 60)
    assert car.phase is Phase.ASLEEP


# --- user commands ----------------------------------------------------------------------------


def test_manual_suspend_and_its_refusals() -> None:
    from fleetlog.vehicle.events import Command, UserCommand

    cmd = UserCommand(Command.SUSPEND)
    assert of(driving_car().do(cmd), fx.CommandResult)[0].reason == "vehicle_not_parked"
    assert of(charging_car().do(cmd), fx.CommandResult)[0].reason == "charging_in_progress"
    assert of(updating_car().do(cmd), fx.CommandResult)[0].reason == "update_in_progress"
    blocked = online_car(sentry_mode=True)
    assert of(blocked.do(cmd), fx.CommandResult)[0] == fx.CommandResult(
        Command.SUSPEND, False, "sentry_mode"
    )
    car = online_car()
    out = car.do(cmd, after=5)
    assert of(out, fx.CommandResult)[0].accepted and car.phase is Phase.SUSPENDED
    out = car.do(UserCommand(Command.RESUME), after=5)
    assert car.phase is Phase.ONLINE and fetch(out).at == car.at(1)


# --- guards, errors, budget ---------------------------------------------------------------------


def test_stale_vehicle_data_is_discarded() -> None:
    car = online_car()
    out = car.do(full(car.now - timedelta(minutes=1), **{**PARKED, "shift_state": "D"}), 15)
    assert car.phase is Phase.ONLINE and not of(out, fx.OpenDrive)
    assert fetch(out).kind is FetchKind.FULL


def test_stale_stream_frame_is_discarded_when_online() -> None:
    car = online_car(Feed.STREAM)
    out = car.do(pushed(car.now - timedelta(seconds=5), shift_state="D", power_kw=1.0), 1)
    assert car.phase is Phase.ONLINE and out == []


def test_budget_later_is_honoured_and_never_pays_a_maybe_sleeping_car() -> None:
    car = online_car()
    t = car.now + timedelta(minutes=30)
    out = car.do(budget_later(FetchKind.FULL, t), 15)
    assert fetch(out).at == t and fetch(out).kind is FetchKind.LIGHT
    car = driving_car()
    t = car.now + timedelta(minutes=2)
    out = car.do(budget_later(FetchKind.FULL, t), 1)
    assert fetch(out) == fx.ScheduleFetch(FetchKind.FULL, t, "budget")


def test_rate_limit_and_transport_errors_back_off() -> None:
    car = online_car()
    t = car.now + timedelta(seconds=400)
    out = car.do(FetchFailed(FetchKind.FULL, FetchError.RATE_LIMITED, retry_at=t), 1)
    assert fetch(out).at == t
    car.full(400)
    waits = []
    for _ in range(5):
        f = fetch(car.do(FetchFailed(FetchKind.FULL, FetchError.TRANSPORT)))
        waits.append((f.at - car.now).total_seconds())
    assert waits == [10, 15, 20, 30, 30]
    assert of(car.full(), fx.PublishSummary)[0].summary["healthy"] is True


# --- restore after a crash ---------------------------------------------------------------------


def _restored(**kw: Any) -> Car:
    state = CarState(
        VIN, drive=OpenDriveRow(7, T0 - timedelta(minutes=5), 3, 990.0, 998.0, T0), next_ref=8
    )
    car = Car(state=replace(state, **kw))
    car.do(Boot())
    car.light(ONLINE)
    return car


def test_open_drive_is_resumed_after_restart() -> None:
    car = _restored()
    out = car.full(shift_state="D", odometer_km=999.0)
    assert car.phase is Phase.DRIVING and car.state.drive.ref == 7  # type: ignore[union-attr]
    assert not of(out, fx.OpenDrive) and of(out, fx.InsertPosition)[0].drive_ref == 7


def test_open_drive_is_closed_after_restart_when_parked() -> None:
    car = _restored()
    out = car.full(shift_state=None, odometer_km=1000.0)
    (closed,) = of(out, fx.CloseDrive)
    assert closed.ref == 7 and closed.end_km == 1000.0 and car.phase is Phase.ONLINE


def test_every_phase_change_is_in_the_table() -> None:
    targets = {to for to in TRANSITIONS.values()}
    sources = {frm for frm, _ in TRANSITIONS}
    assert targets | sources == set(Phase)


def test_feed_lost_while_driving_falls_back_to_polling() -> None:
    from fleetlog.vehicle.events import StreamDisconnected

    car = driving_car(Feed.STREAM)
    out = car.do(StreamDisconnected(), after=1)
    assert fetch(out) == fx.ScheduleFetch(FetchKind.FULL, car.at(2.5), "feed lost while driving")


def test_parked_full_answer_clears_the_driving_speed() -> None:
    # vehicle_data leaves speed empty once parked: the summary must not keep the last speed.
    car = driving_car()
    car.full(2.5, shift_state="D", odometer_km=1001.0, speed_kmh=60.0)
    assert car.state.snapshot.speed_kmh == 60.0
    car.full(2.5, shift_state="P", odometer_km=1002.0, speed_kmh=None)
    assert car.state.snapshot.speed_kmh is None
    assert car.state.snapshot.shift_state == "P"


@pytest.mark.parametrize("feed", [Feed.STREAM, Feed.TELEMETRY])
def test_stale_pushed_data_while_driving_is_dropped_not_moved(feed: Feed) -> None:
    # a frame from before the newest vehicle_data, arriving after it: no position moved
    # past that look, no snapshot going back
    car = driving_car(feed)
    car.full(10, shift_state="D", speed_kmh=60.0, odometer_km=1001.0, latitude=48.2)
    look_at = car.now
    stale = pushed(look_at - timedelta(seconds=2), full_frame=feed is Feed.STREAM,
                   shift_state="D", speed_kmh=40.0, odometer_km=1000.9, latitude=48.19)  # fmt: skip
    out = car.do(stale, 1)
    assert not of(out, fx.InsertPosition) and not of(out, fx.ScheduleFetch)
    assert car.state.snapshot.odometer_km == 1001.0 and car.state.snapshot.latitude == 48.2
    # a newer one is taken at its own time
    out = car.frame(1, full_frame=feed is Feed.STREAM, shift_state="D", latitude=48.21)
    (pos,) = of(out, fx.InsertPosition)
    assert pos.position.date == car.now
