"""Source- and budget-aware decisions, each a small pure function.

TeslaMate polls ``vehicle_data`` on a fixed cadence; that is affordable on the
free Owner API and ruinous on the pay-per-use Fleet API. fleetlog decides per
call. The rules, in one place:

* Never wake a car. Asleep or offline cars are watched through the free
  endpoint only; ``vehicle_data`` goes to a car known to be awake.
* With a pushed feed (stream or telemetry), drives and charges come from pushed
  data. Paid calls fill only what the feed lacks: the car's identity at the
  first wake, a rare full refresh, and — with the legacy stream, which cannot
  say "parked" reliably — the confirmation that a drive ended. A watchdog
  fetch fires only if the feed falls silent.
* Polling only: TeslaMate's cadence, with every paid call subject to the
  budget governor, whose "later, at t" is honoured by rescheduling at t.
* A drive first seen already under way starts from the last parked
  observation, so its distance and energy are exact even if its start time
  has to be estimated.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fleetlog.model.observation import VehicleState
from fleetlog.vehicle.events import FetchError, FetchKind
from fleetlog.vehicle.phase import Phase, Probe
from fleetlog.vehicle.settings import CarSettings, Feed, Timing

LATE_DRIVE_ASSUMED_KMH = 40.0
"""Average speed assumed between the last parked observation and a drive seen late."""

PARKED_SNAPSHOT_MAX_AGE = timedelta(hours=24)
"""An older parked observation is not trusted as the start of a drive."""


def streaming(feed: Feed, stream_up: bool) -> bool:
    """TeslaMate's "streaming on and the stream alive": relaxes idle and suspend timing."""
    return feed is not Feed.NONE and stream_up


def idle_threshold(settings: CarSettings, timing: Timing, *, streaming: bool) -> timedelta:
    """How long a car must be idle before the machine stops calling ``vehicle_data``.

    Polling a priced API, the car is watched at least ``paced_watch_min`` (20) after its last
    use (see :func:`idle_poll`): a car that has just parked is the likeliest to move
    again, and a move unseen between two looks far apart cannot be placed in time.
    """
    if streaming:
        return timedelta(minutes=timing.stream_idle_min)
    minutes = float(settings.suspend_after_idle_min)
    if timing.paced:
        minutes = max(minutes, timing.paced_watch_min)
    return timedelta(minutes=minutes)


def suspend_period(
    settings: CarSettings, timing: Timing, *, streaming: bool, first: bool = False
) -> timedelta:
    """How long a suspended car is left alone before the next check (a paid look if it is
    still online when polling only).

    Polling a priced API, the `first` check of a suspension comes once an idle car would
    be asleep (``paced_sleep_check_min`` after the look it was suspended on): still
    online then, something keeps it awake — most likely the driver, back for the next
    drive, which is then seen as it goes rather than placed within a 21-minute gap. If
    that look finds the car idle after all (a car slower to sleep), the checks after it
    keep ``suspend_min``, so the car is held awake at most once.
    """
    if streaming:
        return timedelta(minutes=timing.stream_suspend_min)
    minutes = float(settings.suspend_min)
    if first and timing.paced:
        minutes = min(minutes, timing.paced_sleep_check_min)
    return timedelta(minutes=minutes)


PACED_IDLE_GROWTH = 0.25
"""Polling a priced API, the look after an idle car's next comes this share of its idle
time later: one a minute for its first minutes parked, then ever sparser."""


def idle_poll(timing: Timing, *, streaming: bool, idle_for: timedelta = timedelta(0)) -> float:
    """Seconds between polls of an online car idle for `idle_for` (15 s, 30 s with a stream).

    Polling a priced API: one paid look a minute while the car has just parked (the
    driver may be back in a minute), then a quarter of the idle time later, at most
    ``paced_watch_gap`` apart. A drive begun and ended between two looks is found by
    its odometer and put in the middle of the gap, so the gap bounds its time error;
    the looks thin out as a move grows less likely. The twenty minutes watched
    (``paced_watch_min``) cost 12 looks, fewer than fifteen minutes at one a minute.
    """
    if timing.paced and not streaming:
        floor = max(timing.default, timing.paced_online)
        grown = idle_for.total_seconds() * PACED_IDLE_GROWTH
        return max(floor, min(grown, timing.paced_watch_gap))
    return timing.default * (2 if streaming else 1)


def blocker_poll(seconds: float, timing: Timing, *, streaming: bool) -> float:
    """Seconds to the next look while a suspend blocker holds (paced like idle polls)."""
    if timing.paced and not streaming:
        return max(seconds, timing.paced_online)
    return seconds


def suspended_poll(
    timing: Timing, period: timedelta, since_look: timedelta, *, feed: Feed
) -> float:
    """Seconds to the next free look at a suspended car, its last paid look `since_look` ago.

    TeslaMate looks once, at the end of the suspend `period`. Polling a priced API, the
    free endpoint is asked every ``asleep`` seconds meanwhile: it costs nothing, keeps no
    car awake, and tells when the car falls asleep or out of reach to the half minute — a
    car that naps and wakes for its driver is then seen waking, and a drive into a garage
    without signal ends where the signal went. The paid look still waits for the period.
    """
    left = max(0.0, (period - since_look).total_seconds())
    if feed is Feed.NONE and timing.paced:
        return min(timing.asleep, left)
    return left


def online_poll_kind(feed: Feed, stream_up: bool) -> FetchKind:
    """An idle online car with a live feed is watched for free; the feed reports activity."""
    return FetchKind.LIGHT if streaming(feed, stream_up) else FetchKind.FULL


def charging_interval(power_kw: float | None, timing: Timing) -> float:
    """TeslaMate's charging cadence: 250 / kW seconds, within [POLLING_CHARGING, 20]."""
    if not power_kw or power_kw <= 0:
        return timing.charging_min
    return float(min(max(round(250 / power_kw), timing.charging_min), 20.0))


def charging_poll(feed: Feed, stream_up: bool, power_kw: float | None, timing: Timing) -> float:
    """Seconds to the next paid fetch while charging.

    Telemetry pushes charge records, so REST only guards against silence; the
    legacy stream carries no charge fields, so sparse samples; polling only:
    TeslaMate's cadence.
    """
    if feed is Feed.TELEMETRY and stream_up:
        return timing.push_quiet_charging
    if feed is Feed.STREAM and stream_up:
        return max(timing.stream_charging_sample, charging_interval(power_kw, timing))
    if timing.paced:
        # the energy counter makes the kWh exact and the end is placed from the power,
        # so sparse samples cost nothing in fidelity
        return max(timing.paced_charging, charging_interval(power_kw, timing))
    return charging_interval(power_kw, timing)


def driving_poll(feed: Feed, stream_up: bool, timing: Timing) -> float:
    """Seconds to the next paid fetch while driving: a silence watchdog with a live feed."""
    if streaming(feed, stream_up):
        return timing.push_quiet_driving
    if timing.paced:
        return max(timing.driving, timing.paced_driving)
    return timing.driving


def push_ends_drive(feed: Feed) -> bool:
    """May pushed "parked" data end a drive without a paid confirmation?

    No feed may: a legacy stream frame without a shift state may be a gap (TeslaMate
    confirms with ``vehicle_data``), and telemetry sends the odometer only on its own
    interval and past its ``minimum_delta`` (0.1 mi in the balanced profile), so the
    last pushed odometer can be 160 m short. One paid call per drive makes the
    distance exact; the end time is the first parked frame's.
    """
    return False


def push_carries_charging(feed: Feed) -> bool:
    """Does the feed report the charging state (so charges need no polling)?"""
    return feed is Feed.TELEMETRY


def look_before_suspend(
    feed: Feed, last_look: datetime | None, now: datetime, idle: timedelta
) -> bool:
    """Must an online car get a paid look before it is suspended (or kept awake by a
    blocker that look found)?

    A feed without charge fields may fall silent while the car is parked: MyTeslaMate
    forwards a row only once latitude, longitude and a gear are known, and a parked car
    sends its gear as invalid, so no row comes at all while it is parked and plugged in
    (reference §4.3). The paid look at park sees the car before the driver plugs it in
    and the driver still in it (``is_user_present``, a blocker the free polls can never
    clear). So, as TeslaMate's ``vehicle_data`` while online, a look older than the idle
    threshold (`idle`) is not trusted: one more look decides. With telemetry the charge
    and the car's state are pushed; polling only looks anyway.
    """
    if feed is not Feed.STREAM:
        return False
    return last_look is None or now - last_look >= idle


def look_when_still_online(
    feed: Feed, last_look: datetime | None, now: datetime, settings: CarSettings
) -> bool:
    """A suspended car is still online at the end of its suspend period: pay for a look?

    Polling only: always (TeslaMate). Telemetry: never, the car pushes what it does.
    A stream without charge fields (MyTeslaMate sends no row while the car is parked):
    once the last paid look is ``suspend_min`` (TeslaMate's 21 min) old. A car idle since
    that look would be asleep by then, so something keeps it awake — a charge begun after
    the look at park, most likely — and the look keeps no sleepy car awake.
    """
    if feed is Feed.NONE:
        return True
    if feed is Feed.TELEMETRY:
        return False
    return last_look is None or now - last_look >= timedelta(minutes=settings.suspend_min)


def feed_for(pushed: Feed, settings: CarSettings) -> Feed:
    """The feed the machine uses: a car's ``use_streaming_api`` off (as in TeslaMate) turns
    its streaming websocket off and leaves it to polling. Telemetry, which the car pushes
    unasked and which TeslaMate does not know, is not the streaming API and stays."""
    if pushed is Feed.STREAM and not settings.use_streaming_api:
        return Feed.NONE
    return pushed


def stream_wanted(feed: Feed, phase: Phase, probe: Probe) -> bool:
    """Should the legacy stream be connected? (Telemetry is never asked for.)

    As TeslaMate: on while online, driving or suspended, and while probing a
    sleeping car. Unlike TeslaMate it stays on while charging: its power field
    shows the end of a charge for free.
    """
    if feed is not Feed.STREAM:
        return False
    if phase in (Phase.ONLINE, Phase.DRIVING, Phase.SUSPENDED, Phase.CHARGING):
        return True
    return phase in (Phase.START, Phase.ASLEEP, Phase.OFFLINE) and probe in (
        Probe.PROBING,
        Probe.FAKE,
    )


def probe_verdict(feed: Feed, pushed: VehicleState) -> Probe:
    """What a pushed record says about an "online" from the free endpoint.

    An MCU2 car during its hourly subsystem check streams frames without power;
    a car really awake streams a number. Telemetry is not sent during those
    checks, so any record means awake.
    """
    if feed is Feed.TELEMETRY:
        return Probe.REAL
    return Probe.FAKE if pushed.power_kw is None else Probe.REAL


def full_fetch_on_wake(
    feed: Feed,
    identity_known: bool,
    last_full_at: datetime | None,
    now: datetime,
    timing: Timing,
) -> bool:
    """Does entering "online" need ``vehicle_data``?

    Polling only: always (it is the only data). With a feed: for the car's
    identity (model, version, …) at the first wake, and then at most every
    ``full_refresh_hours`` — the feed covers the rest.
    """
    if feed is Feed.NONE or not identity_known or last_full_at is None:
        return True
    return now - last_full_at >= timedelta(hours=timing.full_refresh_hours)


def sleeping_fetch_kind(probe: Probe) -> FetchKind:
    """The fetch for a car believed asleep or offline: never ``vehicle_data``,
    except once a pushed frame has proved it awake."""
    return FetchKind.FULL if probe is Probe.REAL else FetchKind.LIGHT


def usable_parked(
    parked_at: datetime | None,
    parked_odometer: float | None,
    seen_at: datetime,
    seen_odometer: float | None,
) -> bool:
    """Can the last parked observation stand in as the start of a drive seen late?"""
    if parked_at is None or parked_odometer is None or seen_odometer is None:
        return False
    if seen_odometer < parked_odometer or parked_at > seen_at:
        return False
    return seen_at - parked_at <= PARKED_SNAPSHOT_MAX_AGE


def estimated_drive_start(
    parked_at: datetime,
    parked_odometer: float,
    seen_at: datetime,
    seen_odometer: float,
) -> datetime:
    """When a drive seen late most likely began.

    The odometer says how far the car went since it was parked; at an assumed
    urban average speed that gives a start no earlier than the parked time.
    """
    hours = (seen_odometer - parked_odometer) / LATE_DRIVE_ASSUMED_KMH
    return max(parked_at, seen_at - timedelta(hours=hours))


def retry_at(
    error: FetchError, errors_in_row: int, given: datetime | None, now: datetime, timing: Timing
) -> datetime:
    """When to try again after a failed fetch.

    Rate limits and the budget name their time and are honoured to the second;
    otherwise TeslaMate's back-off steps 10, 15, 20, 30 s (60 s when in service).
    """
    if given is not None and error in (FetchError.RATE_LIMITED, FetchError.BUDGET_LATER):
        return max(given, now)
    if error is FetchError.RATE_LIMITED:
        return now + timedelta(seconds=300)
    if error is FetchError.IN_SERVICE:
        return now + timedelta(seconds=timing.in_service)
    if error is FetchError.NOT_FOUND:
        return now + timedelta(seconds=30)
    steps = (10.0, 15.0, 20.0, 30.0)
    return now + timedelta(seconds=steps[min(errors_in_row, len(steps) - 1)])


def offline_charge_detected(
    before: VehicleState, after: VehicleState, offline_for: timedelta
) -> bool:
    """Did the car charge while it was out of reach (ideal range up > 5 mi, ≥ 5 min)?"""
    if before.ideal_range_km is None or after.ideal_range_km is None:
        return False
    gained = after.ideal_range_km - before.ideal_range_km
    return gained > 5 * 1.609344 and offline_for >= timedelta(minutes=5)


HOP_MIN_KM = 0.1
"""An odometer that moved at least this much between two parked looks is a drive we missed."""

LATE_CHARGE_MIN_KWH = 0.01
"""A charge first seen with at least this much on the session counter began before it was seen."""

MIN_ROLLING_KMH = 15.0
"""The slowest average speed assumed when placing the unseen end of a drive."""


def hop_interval(
    since: datetime, seen_at: datetime, distance_km: float
) -> tuple[datetime, datetime]:
    """Where to place a drive that happened entirely between two parked looks.

    Nothing says when it happened within [since, seen_at]; its length at the
    assumed urban speed gives its duration, and it is put in the middle, so the
    error of either end is at most half the gap.
    """
    gap = seen_at - since
    duration = min(gap, timedelta(hours=distance_km / LATE_DRIVE_ASSUMED_KMH))
    start = since + (gap - duration) / 2
    return start, start + duration


def late_charge_baseline(charging_state: str | None, counter_kwh: float | None) -> float:
    """What the car's session counter read when the charge being seen began.

    The counter (``charge_energy_added``) restarts at 0 when the car is plugged in;
    a parked look while plugged in and not charging (Stopped, Complete, NoPower)
    belongs to the same session, so its reading is the baseline.
    """
    if charging_state in (None, "Disconnected") or counter_kwh is None:
        return 0.0
    return counter_kwh


AC_CHARGE_EFFICIENCY = 0.9
"""Share of an AC charger's power that reaches the battery (the counter counts that share;
the car reports the charger's side). A DC charger's power is the battery's."""


def battery_power_kw(charger_power_kw: float | None, fast_charger: bool | None) -> float | None:
    """The pace the session counter goes up at, from the reported charger power."""
    if not charger_power_kw or charger_power_kw <= 0:
        return None
    return charger_power_kw if fast_charger else charger_power_kw * AC_CHARGE_EFFICIENCY


COUNTER_RESOLUTION_KWH = 0.01
"""The session counter's step in ``vehicle_data`` (``charge_energy_added``, two decimals)."""


def counter_in_doubt(
    counter_at: datetime | None, ended_at: datetime, power_kw: float | None
) -> bool:
    """Has the session counter (last heard at `counter_at`, going up at `power_kw` on the
    battery side) possibly missed energy that went in before a pushed charge end?

    Telemetry sends ``DCChargingEnergyIn`` only on its interval and past its
    ``minimum_delta`` (60 s and 0.1 kWh in the balanced profile), while the charging
    state goes out within seconds: at the end the last pushed counter can be a minute
    (0.2 kWh on a wallbox) behind, a few per cent of a short charge. Then one paid look
    reads the counter's final value.
    """
    if counter_at is None or power_kw is None:
        return True
    missed = power_kw * max(0.0, (ended_at - counter_at).total_seconds()) / 3600
    return missed >= COUNTER_RESOLUTION_KWH


PACE_MIN_KWH = 2.0
"""The least the counter must have gone up between two readings for its pace to be
measured to half a per cent (readings to 0.01 kWh)."""


def measured_charge_pace(
    first_at: datetime, first_kwh: float, later_at: datetime, later_kwh: float
) -> float | None:
    """The session counter's own pace (kW, battery side) between two readings taken at
    one charger power, if they lie far enough apart to say."""
    hours = (later_at - first_at).total_seconds() / 3600
    added = later_kwh - first_kwh
    if hours <= 0 or added < PACE_MIN_KWH:
        return None
    return added / hours


def same_charger_power(a: float | None, b: float | None) -> bool:
    """Two charger power readings (kW) of one steady charge (within 5 %)?"""
    if a is None or b is None or a <= 0 or b <= 0:
        return False
    return abs(a - b) <= 0.05 * max(a, b)


def estimated_charge_start(
    since: datetime, seen_at: datetime, added_kwh: float, power_kw: float | None
) -> datetime:
    """When a charge first seen with `added_kwh` on its counter (going up at `power_kw`,
    battery side) most likely began."""
    if not power_kw or power_kw <= 0:
        return since
    return max(since, seen_at - timedelta(hours=added_kwh / power_kw))


def hop_before_offline(
    since: datetime, offline_at: datetime, distance_km: float
) -> tuple[datetime, datetime]:
    """A drive unseen before the car went out of reach most likely drove it there: it
    ends at the first offline answer."""
    duration = timedelta(hours=distance_km / LATE_DRIVE_ASSUMED_KMH)
    return max(since, offline_at - duration), offline_at


def hop_driver_present(
    since: datetime, seen_at: datetime, distance_km: float
) -> tuple[datetime, datetime]:
    """A drive between two looks, the second of which finds the driver still at the car
    (``is_user_present``): a driver leaves a parked car within a minute or two, so the
    drive has just ended — at the look, not in the middle of the gap."""
    return hop_before_offline(since, seen_at, distance_km)


def estimated_end(
    last_at: datetime, seen_at: datetime, remaining: float, rate_per_hour: float | None
) -> datetime:
    """When something last seen going at `last_at` stopped, seen stopped at `seen_at`.

    `remaining` is what happened after the last look (km driven, kWh added) and
    `rate_per_hour` the pace it went at; the end lies within [last_at, seen_at].
    """
    if remaining <= 0:
        return last_at
    if not rate_per_hour or rate_per_hour <= 0:
        return seen_at
    end = min(seen_at, last_at + timedelta(hours=remaining / rate_per_hour))
    # Float noise in the pace must not put the end a few microseconds before the look that saw
    # it stopped (a drive that ended on a parked row would end 57 µs early).
    return seen_at if seen_at - end < timedelta(milliseconds=1) else end
