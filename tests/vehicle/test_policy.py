"""The source- and budget-aware decisions, one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetlog.model.observation import VehicleState
from fleetlog.vehicle import policy
from fleetlog.vehicle.events import FetchError, FetchKind
from fleetlog.vehicle.phase import Phase, Probe
from fleetlog.vehicle.settings import CarSettings, Feed, Timing
from fleetlog.vehicle.versions import is_newer, version_key

T = Timing()
NOW = datetime(2026, 3, 2, tzinfo=UTC)


def test_idle_and_suspend_timing_follow_the_feed() -> None:
    c = CarSettings()
    assert policy.idle_threshold(c, T, streaming=True) == timedelta(minutes=3)
    assert policy.idle_threshold(c, T, streaming=False) == timedelta(minutes=15)
    assert policy.suspend_period(c, T, streaming=True) == timedelta(minutes=10)
    assert policy.suspend_period(c, T, streaming=False) == timedelta(minutes=21)
    assert policy.idle_poll(T, streaming=True) == 30 and policy.idle_poll(T, streaming=False) == 15


def test_feed_must_be_alive_to_count() -> None:
    assert policy.streaming(Feed.STREAM, True) and not policy.streaming(Feed.STREAM, False)
    assert not policy.streaming(Feed.NONE, True)
    assert policy.online_poll_kind(Feed.STREAM, True) is FetchKind.LIGHT
    assert policy.online_poll_kind(Feed.STREAM, False) is FetchKind.FULL


@pytest.mark.parametrize("kw,s", [(None, 5), (0, 5), (11, 20), (12.5, 20), (25, 10), (100, 5)])
def test_charging_interval_is_teslamates(kw: float | None, s: float) -> None:
    assert policy.charging_interval(kw, T) == s


def test_charging_poll_by_feed() -> None:
    assert policy.charging_poll(Feed.NONE, False, 11, T) == 20
    assert policy.charging_poll(Feed.STREAM, True, 11, T) == 300
    assert policy.charging_poll(Feed.TELEMETRY, True, 11, T) == 600
    assert policy.charging_poll(Feed.TELEMETRY, False, 11, T) == 20  # feed down: poll


def test_driving_poll_is_a_watchdog_with_a_feed() -> None:
    assert policy.driving_poll(Feed.NONE, False, T) == 2.5
    assert policy.driving_poll(Feed.STREAM, True, T) == 90
    assert policy.driving_poll(Feed.STREAM, False, T) == 2.5


def test_only_telemetry_may_end_a_drive_or_a_charge_on_its_own() -> None:
    # no feed ends a drive unconfirmed (telemetry's odometer lags; issue 7 fidelity)
    assert not policy.push_ends_drive(Feed.TELEMETRY) and not policy.push_ends_drive(Feed.STREAM)
    assert policy.push_carries_charging(Feed.TELEMETRY)
    assert not policy.push_carries_charging(Feed.STREAM)


@pytest.mark.parametrize(
    "phase,probe,wanted",
    [
        (Phase.ONLINE, Probe.IDLE, True),
        (Phase.DRIVING, Probe.IDLE, True),
        (Phase.SUSPENDED, Probe.IDLE, True),
        (Phase.CHARGING, Probe.IDLE, True),
        (Phase.UPDATING, Probe.IDLE, False),
        (Phase.ASLEEP, Probe.IDLE, False),
        (Phase.ASLEEP, Probe.PROBING, True),
        (Phase.OFFLINE, Probe.FAKE, True),
    ],
)
def test_stream_wanted(phase: Phase, probe: Probe, wanted: bool) -> None:
    assert policy.stream_wanted(Feed.STREAM, phase, probe) is wanted
    assert policy.stream_wanted(Feed.TELEMETRY, phase, probe) is False


def test_probe_verdicts() -> None:
    assert policy.probe_verdict(Feed.STREAM, VehicleState()) is Probe.FAKE
    assert policy.probe_verdict(Feed.STREAM, VehicleState(power_kw=0.0)) is Probe.REAL
    assert policy.probe_verdict(Feed.TELEMETRY, VehicleState()) is Probe.REAL


def test_full_fetch_on_wake() -> None:
    assert policy.full_fetch_on_wake(Feed.NONE, True, NOW, NOW, T)
    assert policy.full_fetch_on_wake(Feed.STREAM, False, NOW, NOW, T)  # identity
    assert not policy.full_fetch_on_wake(Feed.STREAM, True, NOW - timedelta(hours=1), NOW, T)
    assert policy.full_fetch_on_wake(Feed.TELEMETRY, True, NOW - timedelta(hours=7), NOW, T)


def test_sleeping_car_never_gets_vehicle_data_unless_proven_awake() -> None:
    for probe in Probe:
        kind = policy.sleeping_fetch_kind(probe)
        assert (kind is FetchKind.FULL) is (probe is Probe.REAL)


def test_late_drive_start() -> None:
    parked = NOW - timedelta(hours=2)
    assert policy.usable_parked(parked, 1000.0, NOW, 1020.0)
    assert not policy.usable_parked(parked, 1030.0, NOW, 1020.0)  # odometer went back
    assert not policy.usable_parked(NOW - timedelta(days=2), 1000.0, NOW, 1020.0)
    assert not policy.usable_parked(None, 1000.0, NOW, 1020.0)
    start = policy.estimated_drive_start(parked, 1000.0, NOW, 1020.0)
    assert start == NOW - timedelta(minutes=30)
    assert policy.estimated_drive_start(NOW - timedelta(minutes=5), 1000, NOW, 1100) == (
        NOW - timedelta(minutes=5)
    )


@given(st.floats(0, 500), st.integers(0, 3 * 3600))
def test_estimated_start_is_between_parked_and_seen(km: float, gap_s: int) -> None:
    parked = NOW - timedelta(seconds=gap_s)
    start = policy.estimated_drive_start(parked, 1000.0, NOW, 1000.0 + km)
    assert parked <= start <= NOW


def test_retry_at() -> None:
    later = NOW + timedelta(minutes=7)
    assert policy.retry_at(FetchError.BUDGET_LATER, 0, later, NOW, T) == later
    assert policy.retry_at(FetchError.RATE_LIMITED, 0, later, NOW, T) == later
    assert policy.retry_at(FetchError.RATE_LIMITED, 0, None, NOW, T) == NOW + timedelta(minutes=5)
    assert policy.retry_at(FetchError.IN_SERVICE, 0, None, NOW, T) == NOW + timedelta(minutes=1)
    assert policy.retry_at(FetchError.TRANSPORT, 9, None, NOW, T) == NOW + timedelta(seconds=30)
    # a budget time in the past means now, never earlier
    assert policy.retry_at(FetchError.BUDGET_LATER, 0, NOW - timedelta(1), NOW, T) == NOW


def test_offline_charge_detection() -> None:
    before = VehicleState(ideal_range_km=300.0)
    after = VehicleState(ideal_range_km=309.0)
    assert policy.offline_charge_detected(before, after, timedelta(minutes=5))
    assert not policy.offline_charge_detected(before, after, timedelta(minutes=4))
    assert not policy.offline_charge_detected(
        before, VehicleState(ideal_range_km=308.0), timedelta(hours=1)
    )


def test_versions() -> None:
    assert version_key("2024.8.7 c5c3f0a2e1") == (2024, 8, 7)
    assert is_newer("2024.14.3", "2024.8.7")
    assert is_newer("2024.8.7.1", "2024.8.7")
    assert not is_newer("2024.8.7 abc", "2024.8.7 def")
    assert is_newer("2024.8.7", None)


def test_timing_from_teslamate_polling_settings() -> None:
    from fleetlog.config import load_settings

    t = Timing.from_settings(load_settings({"POLLING_ASLEEP_INTERVAL": "60"}))
    assert t.asleep == 60 and t.driving == 2.5 and t.charging_min == 5
    slower_not_faster = Timing.from_settings(load_settings({"POLLING_DRIVING_INTERVAL": "1"}))
    assert slower_not_faster.driving == 2.5


def test_estimated_end_does_not_fall_microseconds_before_the_stopped_look() -> None:
    from datetime import UTC, datetime, timedelta

    from fleetlog.vehicle import policy

    last = datetime(2019, 10, 27, 0, 40, tzinfo=UTC)
    seen = last + timedelta(minutes=40)
    # 40 km at an average that float arithmetic makes a hair too fast
    end = policy.estimated_end(last, seen, 40.0, 60.000_001_4)
    assert end == seen
    # a real estimate well before the look stays where it is
    assert policy.estimated_end(last, seen, 20.0, 60.0) == last + timedelta(minutes=20)


def test_paced_idle_looks_thin_out_the_longer_the_car_stands() -> None:
    paced = Timing(paced=True)
    minutes = [0, 2, 4, 8, 12, 20, 30, 90]
    gaps = [
        policy.idle_poll(paced, streaming=False, idle_for=timedelta(minutes=m)) for m in minutes
    ]
    # one a minute while the driver may be back any moment, then a quarter of the idle time,
    # never more than paced_watch_gap apart
    assert gaps == [60, 60, 60, 120, 180, 300, 300, 300]
    assert max(gaps) == paced.paced_watch_gap
    # a live feed or the free Owner API keeps TeslaMate's even cadence
    assert policy.idle_poll(paced, streaming=True, idle_for=timedelta(minutes=20)) == 30
    assert policy.idle_poll(T, streaming=False, idle_for=timedelta(minutes=20)) == 15


def test_paced_polling_watches_an_idle_car_at_least_twenty_minutes() -> None:
    paced = Timing(paced=True)
    assert policy.idle_threshold(CarSettings(), paced, streaming=False) == timedelta(minutes=20)
    longer = CarSettings(suspend_after_idle_min=45)
    assert policy.idle_threshold(longer, paced, streaming=False) == timedelta(minutes=45)
    assert policy.idle_threshold(CarSettings(), paced, streaming=True) == timedelta(minutes=3)
    assert policy.idle_threshold(CarSettings(), T, streaming=False) == timedelta(minutes=15)


def test_a_paced_car_is_first_checked_when_it_should_be_asleep() -> None:
    paced, c = Timing(paced=True), CarSettings()
    assert policy.suspend_period(c, paced, streaming=False, first=True) == timedelta(minutes=16)
    assert policy.suspend_period(c, paced, streaming=False) == timedelta(minutes=21)
    assert policy.suspend_period(c, T, streaming=False, first=True) == timedelta(minutes=21)
    assert policy.suspend_period(c, paced, streaming=True, first=True) == timedelta(minutes=10)
    quick = CarSettings(suspend_min=12)  # TeslaMate's for new cars: shorter already
    assert policy.suspend_period(quick, paced, streaming=False, first=True) == timedelta(minutes=12)


def test_a_paced_suspended_car_is_asked_for_free_every_half_minute() -> None:
    paced, period = Timing(paced=True), timedelta(minutes=21)
    gap = [policy.suspended_poll(paced, period, timedelta(minutes=m), feed=Feed.NONE)
           for m in (0, 10, 20.75, 21, 40)]  # fmt: skip
    assert gap == [30, 30, 15, 0, 0]  # then the paid look is due
    # TeslaMate's single look at the end of the period otherwise
    assert policy.suspended_poll(T, period, timedelta(minutes=5), feed=Feed.NONE) == 16 * 60
    since = timedelta(minutes=1)
    assert policy.suspended_poll(paced, period, since, feed=Feed.STREAM) == 20 * 60


def test_a_move_found_with_the_driver_still_there_ends_at_the_look() -> None:
    since, seen = NOW, NOW + timedelta(minutes=20)
    # 2 km at 40 km/h: 3 minutes; nothing said when: the middle of the gap
    assert policy.hop_interval(since, seen, 2.0) == (
        NOW + timedelta(minutes=8.5),
        NOW + timedelta(minutes=11.5),
    )
    # the driver is still at the car: it has just parked
    assert policy.hop_driver_present(since, seen, 2.0) == (seen - timedelta(minutes=3), seen)
    assert policy.hop_driver_present(since, NOW + timedelta(minutes=1), 2.0)[0] == since
