"""The car machine: one car's logbook logic as a pure function.

Rules of this file
------------------
* Everything that decides what a car is doing lives here, or in the pure
  modules it calls (``policy`` for what to fetch and when, ``blockers`` for
  sleep). Nothing here awaits, reads a clock, or touches a database: time
  arrives as ``now``, the world as events, and every wish leaves as an effect.
* This file does not know which source spoke. An observation is an
  observation; only the *feed* (none, stream, telemetry) changes how much the
  machine may trust pushed data and how much it must pay REST to fill in.
* A phase changes only through :func:`_go`, which looks the change up in
  :data:`TRANSITIONS`. A change not in the table raises, so the table (and the
  diagram ``docs/machine.md`` draws from it) is the whole truth about phases.

Theory of operation
-------------------
A car is always in one :class:`Phase`. At boot it is ``start``: the machine asks
the free endpoint whether the car is awake. Asleep or offline, it writes a
``states`` row and watches with the free endpoint only. Awake, it takes one
full snapshot (polling only: always; with a feed: for identity, or rarely),
writes an ``online`` row and a position, and evaluates the snapshot: an update
installing, the shift in D/N/R, or a charge starting each lead into their
phase; otherwise it tries to let the car sleep (``suspended``) unless a
blocker says someone is at the car.

Leaving driving, charging or updating always goes back through ``start``,
which re-evaluates the same event: a car that stops and plugs in at once
closes the drive and opens the charge in one step. ``start`` also settles what
a crash left open (the executor restores open refs into the initial state):
a drive or charge still going on resumes under its ref, one that ended is
closed with the data now at hand.

The machine allocates refs for the rows it opens; the executor maps refs to
database ids. Fetches are *scheduled*: each :class:`ScheduleFetch` replaces
the one pending, so "the next look at this car" is always a single time, and a
pushed feed can push a watchdog fetch ahead of itself by re-scheduling it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from fleetlog.logbook.aggregates import PHANTOM_DISTANCE_KM
from fleetlog.logbook.records import ChargeSample, Position
from fleetlog.model.observation import Connectivity, Observation, VehicleState
from fleetlog.places.geometry import distance_m
from fleetlog.vehicle import policy
from fleetlog.vehicle.blockers import suspend_blocker
from fleetlog.vehicle.effects import (
    AddChargeSample,
    CancelTimer,
    CancelUpdate,
    CloseChargingProcess,
    CloseDrive,
    CloseUpdate,
    CommandResult,
    ConnectStream,
    DisconnectStream,
    DropDrive,
    Effect,
    InsertPosition,
    Log,
    MoveChargeStart,
    OpenChargingProcess,
    OpenDrive,
    OpenUpdate,
    PublishSummary,
    ScheduleFetch,
    SetTimer,
    StartState,
    StateStatus,
)
from fleetlog.vehicle.events import (
    Boot,
    CarConnectivity,
    Command,
    Event,
    FetchedFull,
    FetchedLight,
    FetchError,
    FetchFailed,
    FetchKind,
    Observed,
    SettingsChanged,
    StreamConnected,
    StreamDisconnected,
    TimerFired,
    TimerKind,
    UserCommand,
)
from fleetlog.vehicle.phase import Phase, Probe
from fleetlog.vehicle.settings import CarSettings, Feed, Timing
from fleetlog.vehicle.summary import summary
from fleetlog.vehicle.versions import is_newer

DRIVING_SHIFTS: Final = frozenset({"D", "N", "R"})
_TICK: Final = timedelta(milliseconds=1)
_SECOND: Final = timedelta(seconds=1)
CHARGING_NOW: Final = frozenset({"Starting", "Charging"})


class Trigger(StrEnum):
    """Why a phase changes; the value labels the diagram's arrows."""

    ASLEEP = "asleep"
    OFFLINE = "offline"
    ONLINE = "online"
    INSTALLING = "update installing"
    SHIFT_DRIVE = "shift D/N/R"
    CHARGE_STARTED = "Starting/Charging"
    IDLE = "idle, no blocker"
    SUSPEND = "suspend logging"
    RESUME = "resume logging"
    USAGE = "activity seen"
    PARKED = "shift P/none"
    IN_SERVICE = "in service"
    CHARGED_OFFLINE = "back, range gained"
    LONG_OFFLINE = "back after ≥ 15 min"
    CHARGE_ENDED = "other charging state"
    UPDATE_DONE = "update done"
    UPDATE_CANCELLED = "update cancelled"


P, T = Phase, Trigger

TRANSITIONS: Final[dict[tuple[Phase, Trigger], Phase]] = {
    # start decides; it also resumes what a crash left open
    (P.START, T.ASLEEP): P.ASLEEP,
    (P.START, T.OFFLINE): P.OFFLINE,
    (P.START, T.ONLINE): P.ONLINE,
    (P.START, T.SHIFT_DRIVE): P.DRIVING,
    (P.START, T.CHARGE_STARTED): P.CHARGING,
    (P.START, T.INSTALLING): P.UPDATING,
    # online: checked in this order on every full snapshot
    (P.ONLINE, T.INSTALLING): P.UPDATING,
    (P.ONLINE, T.SHIFT_DRIVE): P.DRIVING,
    (P.ONLINE, T.CHARGE_STARTED): P.CHARGING,
    (P.ONLINE, T.IDLE): P.SUSPENDED,
    (P.ONLINE, T.SUSPEND): P.SUSPENDED,
    (P.ONLINE, T.ASLEEP): P.START,
    (P.ONLINE, T.OFFLINE): P.START,
    # driving
    (P.DRIVING, T.PARKED): P.START,
    (P.DRIVING, T.ASLEEP): P.START,
    (P.DRIVING, T.OFFLINE): P.START,
    (P.DRIVING, T.IN_SERVICE): P.START,
    (P.DRIVING, T.CHARGED_OFFLINE): P.START,
    (P.DRIVING, T.LONG_OFFLINE): P.START,
    # charging
    (P.CHARGING, T.CHARGE_ENDED): P.START,
    (P.CHARGING, T.ASLEEP): P.START,
    # updating
    (P.UPDATING, T.UPDATE_DONE): P.START,
    (P.UPDATING, T.UPDATE_CANCELLED): P.START,
    (P.UPDATING, T.ASLEEP): P.START,
    # asleep / offline
    (P.ASLEEP, T.ONLINE): P.START,
    (P.ASLEEP, T.OFFLINE): P.START,
    (P.OFFLINE, T.ONLINE): P.START,
    (P.OFFLINE, T.ASLEEP): P.START,
    # suspended: watching, not calling
    (P.SUSPENDED, T.ASLEEP): P.START,
    (P.SUSPENDED, T.OFFLINE): P.START,
    (P.SUSPENDED, T.SHIFT_DRIVE): P.DRIVING,
    (P.SUSPENDED, T.USAGE): P.ONLINE,
    (P.SUSPENDED, T.RESUME): P.ONLINE,
}
"""Every phase change the machine can make: (from, trigger) → to."""


class Link(StrEnum):
    """How a car answers during a drive (TeslaMate: available, {unavailable, n}, {offline, _})."""

    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class OpenDriveRow:
    ref: int
    started_at: datetime
    positions: int = 0
    start_odometer_km: float | None = None
    last_odometer_km: float | None = None
    last_at: datetime | None = None  # the car's time of the newest drive data (for the timeout)
    stopped_at: datetime | None = None  # a pushed "parked" not yet confirmed
    # pushed odometers are sparse (their own interval and minimum_delta): the GPS path
    # driven since the last one, up to `last_at`, says how far the car has come by then
    path_km: float = 0.0
    last_point: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class LateStart:
    """A charge first seen going on: how its start was placed, to place it again once
    the counter's own pace is known (the charger's power gives it only roughly: the
    share that reaches the battery differs from car to car)."""

    since: datetime  # the earliest it can have begun
    seen_at: datetime  # the look that found it going on
    counter_kwh: float  # the session counter then
    added_kwh: float  # of which added since the charge began
    power_kw: float | None  # the charger's power then: a pace measured at another does not hold


@dataclass(frozen=True, slots=True)
class OpenChargeRow:
    ref: int
    started_at: datetime
    samples: int = 0
    last_sample_at: datetime | None = None
    last_added_kwh: float | None = None  # the session counter at the last sample
    last_power_kw: float | None = None
    counter_at: datetime | None = None  # when the session counter was last heard
    ended_at: datetime | None = None  # a pushed end, waiting for a look at the counter
    late: LateStart | None = None
    steady: tuple[datetime, float] | None = None  # the newest counter at the late look's power


@dataclass(frozen=True, slots=True)
class OpenUpdateRow:
    ref: int
    started_at: datetime
    version: str | None = None


@dataclass(frozen=True, slots=True)
class OpenStateRow:
    ref: int
    status: StateStatus
    since: datetime


@dataclass(frozen=True, slots=True)
class CarState:
    """Everything the machine remembers about one car between events."""

    vin: str
    settings: CarSettings = field(default_factory=CarSettings)
    timing: Timing = field(default_factory=Timing)
    feed: Feed = Feed.NONE  # what the machine trusts: the worker's feed as the settings allow
    pushed: Feed | None = None  # the worker's own feed (None: `feed` as constructed)
    phase: Phase = Phase.START
    since: datetime | None = None
    snapshot: VehicleState = field(default_factory=VehicleState)
    seen: bool = False
    rest_at: datetime | None = None  # car time of the newest vehicle_data (stale-data guard)
    last_full_at: datetime | None = None  # our time of the newest vehicle_data
    identity_known: bool = False
    parked: VehicleState | None = None  # the last snapshot while parked (late drive start)
    parked_at: datetime | None = None
    awake_at: datetime | None = None  # when the car was last seen waking from sleep
    still_at: datetime | None = None  # the last look that found the car where it was parked
    offline_at: datetime | None = None  # when the car was first seen out of reach
    last_used: datetime | None = None
    stream_up: bool = False
    stream_on: bool = False  # whether we asked for the stream (ConnectStream sent)
    probe: Probe = Probe.IDLE
    state_row: OpenStateRow | None = None
    drive: OpenDriveRow | None = None
    # a drive closed at start-up at its last position while the car slept or was out of
    # reach (its odometer unknown), and when it was seen asleep (it had parked by then;
    # None: offline, perhaps still driving): the first parked look settles its end
    unsettled: tuple[OpenDriveRow, datetime | None] | None = None
    link: Link = Link.AVAILABLE
    link_misses: int = 0
    before_offline: VehicleState | None = None
    charge: OpenChargeRow | None = None
    update: OpenUpdateRow | None = None
    last_update_version: str | None = None
    sleep_poll: float | None = None  # fast polling after "resume logging" (1 s doubling)
    errors: int = 0
    next_ref: int = 1

    @property
    def link_lost(self) -> bool:
        return self.link is Link.OFFLINE


# --- the step ---------------------------------------------------------------------------


def step(state: CarState, event: Event, now: datetime) -> tuple[CarState, list[Effect]]:
    """Apply one event at `now`: the car's next state and what the world must do."""
    fx: list[Effect] = []
    match event:
        case Boot():
            new = _boot(state, now, fx)
        case FetchedFull(observation=obs):
            new = _on_full(state, obs, now, fx)
        case FetchedLight(observation=obs):
            new = _on_light(state, obs, now, fx)
        case FetchFailed():
            new = _on_failed(state, event, now, fx)
        case Observed(observation=obs, full_frame=full_frame):
            new = _on_pushed(state, obs, full_frame, now, fx)
        case CarConnectivity(connectivity=c):
            new = _on_connectivity(state, c, now, fx)
        case StreamConnected():
            new = replace(state, stream_up=True)
        case StreamDisconnected():
            new = _on_stream_down(state, now, fx)
        case TimerFired(timer=timer):
            new = _on_timer(state, timer, now, fx)
        case UserCommand(command=command):
            new = _on_command(state, command, now, fx)
        case SettingsChanged(settings=settings):
            new = _on_settings(state, settings, now, fx)
    healthy_changed = (new.errors == 0) != (state.errors == 0)
    changed = new.phase is not state.phase or new.snapshot != state.snapshot or healthy_changed
    if changed or isinstance(event, Boot):
        fx.append(PublishSummary(summary(new)))
    return new, fx


# --- small helpers ----------------------------------------------------------------------


def _go(s: CarState, trigger: Trigger, now: datetime, fx: list[Effect]) -> CarState:
    target = TRANSITIONS.get((s.phase, trigger))
    if target is None:
        raise AssertionError(f"no transition from {s.phase} on {trigger!r}")
    fx.append(Log("transition", fields={"from": s.phase.value, "to": target.value, "on": trigger}))
    s = replace(s, phase=target, since=now)
    # start is transient (it decides within the same step): no stream flapping through it
    return s if target is P.START else _sync_stream(s, fx)


def _sync_stream(s: CarState, fx: list[Effect]) -> CarState:
    wanted = policy.stream_wanted(s.feed, s.phase, s.probe)
    if wanted and not s.stream_on:
        fx.append(ConnectStream())
        return replace(s, stream_on=True)
    if not wanted and s.stream_on:
        fx.append(DisconnectStream())
        return replace(s, stream_on=False, stream_up=False)
    return s


def _ref(s: CarState) -> tuple[CarState, int]:
    return replace(s, next_ref=s.next_ref + 1), s.next_ref


def _schedule(
    s: CarState, kind: FetchKind, seconds: float, now: datetime, fx: list[Effect], reason: str
) -> None:
    # The one guard that keeps vehicle_data away from a sleeping car, whatever called.
    if kind is FetchKind.FULL and s.phase in (P.ASLEEP, P.OFFLINE) and s.probe is not Probe.REAL:
        kind = FetchKind.LIGHT
    delay = max(seconds, s.timing.minimum)
    fx.append(ScheduleFetch(kind, now + timedelta(seconds=delay), reason))


def _start_state(s: CarState, status: StateStatus, at: datetime, fx: list[Effect]) -> CarState:
    if s.state_row is not None and s.state_row.status is status:
        return s
    s, ref = _ref(s)
    closes = s.state_row.ref if s.state_row else None
    if s.state_row is not None and at < s.state_row.since:
        at = s.state_row.since  # a states row never has a negative duration
    fx.append(StartState(ref, status, at, closes))
    return replace(s, state_row=OpenStateRow(ref, status, at))


def _position(s: CarState, at: datetime, vs: VehicleState) -> Position | None:
    if vs.latitude is None or vs.longitude is None:
        # a telemetry delta without location still belongs where the car is
        vs = replace(vs, latitude=s.snapshot.latitude, longitude=s.snapshot.longitude)
    return Position.of(at, vs)


def _insert_position(
    s: CarState, at: datetime, vs: VehicleState, fx: list[Effect], *, in_drive: bool = True
) -> CarState:
    drive = s.drive if in_drive else None
    if drive is not None and drive.last_at is not None and at <= drive.last_at:
        at = drive.last_at + _TICK  # a placed end never shares its date with a look
    pos = _position(s, at, vs)
    if pos is None:
        return s
    fx.append(InsertPosition(pos, drive.ref if drive else None))
    if drive is None:
        return s
    odo = pos.odometer
    point = _stored_point(pos)
    path = 0.0
    if odo is None and drive.last_point is not None:
        path = drive.path_km + distance_m(*drive.last_point, *point) / 1000
    drive = replace(
        drive,
        positions=drive.positions + 1,
        start_odometer_km=drive.start_odometer_km if drive.start_odometer_km is not None else odo,
        last_odometer_km=odo if odo is not None else drive.last_odometer_km,
        last_at=max(at, drive.last_at) if drive.last_at else at,
        path_km=path,
        last_point=point,
    )
    return replace(s, drive=drive)


def _stored_point(pos: Position) -> tuple[float, float]:
    """A position's place as the positions table keeps it (6 decimals), so a drive
    resumed from the database measures its GPS path exactly as the live one did."""
    return round(pos.latitude, 6), round(pos.longitude, 6)


def gps_path_km(positions: list[Position]) -> tuple[float, tuple[float, float] | None]:
    """The GPS path driven since the last position with an odometer, and the last place."""
    last = max((i for i, p in enumerate(positions) if p.odometer is not None), default=0)
    path, point = 0.0, None
    for p in positions[last:]:
        here = _stored_point(p)
        if point is not None and p.odometer is None:
            path += distance_m(*point, *here) / 1000
        point = here
    return path, point


def _remember_parked(s: CarState, at: datetime) -> CarState:
    # A look while charging is no baseline: a charge seen late starts from the look before.
    snap = s.snapshot
    if snap.shift_state in DRIVING_SHIFTS or snap.odometer_km is None:
        return s
    if snap.charging_state in CHARGING_NOW:
        p = s.parked
        if p is not None and p.odometer_km == snap.odometer_km:
            s = replace(s, still_at=at)  # charging where it was: it has not moved
        return s
    return replace(s, parked=snap, parked_at=at, still_at=at)


def _since_parked(s: CarState, at: datetime, *, moved: bool = True) -> datetime | None:
    """The earliest a drive (`moved`) or charge seen at `at` can have begun: the last
    parked look, or the car's wake from sleep if that came later (a sleeping car does
    nothing), or for a drive the last look that found the car still there."""
    p_at = s.parked_at
    if p_at is None or p_at > at:
        return None
    bounds = [p_at]
    if s.awake_at is not None and s.awake_at <= at:
        bounds.append(s.awake_at)
    if moved and s.still_at is not None and s.still_at <= at:
        bounds.append(s.still_at)
    return max(bounds)


def _note_parked(s: CarState, at: datetime, now: datetime, fx: list[Effect]) -> CarState:
    """A parked look: if the odometer moved since the last one, a drive happened between
    two looks (too short to be seen); record it, then remember this look."""
    p, since = s.parked, _since_parked(s, at)
    if p is not None and since is not None and _moved_unseen(s, at):
        unsettled = _unsettled_here(s, p)
        s = _settle_drive(s, at, fx) if unsettled else _record_hop(s, p, since, at, now, fx)
        s = replace(s, last_used=now)  # a car that has just moved may well move again
    return _remember_parked(replace(s, unsettled=None), at)


def _unsettled_here(s: CarState, p: VehicleState) -> bool:
    """Is the parked baseline the end of a drive closed at start-up, its distance unseen?"""
    u = s.unsettled
    return u is not None and u[0].last_odometer_km == p.odometer_km


def _settle_drive(s: CarState, at: datetime, fx: list[Effect]) -> CarState:
    """The car found parked further along than a drive closed at start-up (asleep, its
    odometer unknown) had reached: the distance is that drive's, not a drive of its own.
    It ended after its last position at its own pace, before the car was seen asleep (an
    offline car may have driven on: before this look)."""
    assert s.unsettled is not None
    d, asleep_at = s.unsettled
    s = replace(s, drive=d, unsettled=None)
    seen = replace(s.snapshot, speed_kmh=None, shift_state=None)
    by = min(asleep_at or at, at)
    end = _drive_end(s, seen, max(by, d.last_at) if d.last_at else by)
    fx.append(Log("drive settled after start-up", "info", {"ref": d.ref}))
    s = _insert_position(s, end, seen, fx)
    return _close_drive(s, end, "parked", fx)


def _moved_unseen(s: CarState, at: datetime) -> bool:
    """Does the parked look at `at` find the car elsewhere than the last parked one?"""
    p, odo = s.parked, s.snapshot.odometer_km
    return (
        p is not None
        and _since_parked(s, at) is not None
        and p.odometer_km is not None
        and odo is not None
        and s.snapshot.shift_state not in DRIVING_SHIFTS
        and s.drive is None
        and odo - p.odometer_km >= policy.HOP_MIN_KM
    )


def _record_hop(
    s: CarState, p: VehicleState, since: datetime, at: datetime, now: datetime, fx: list[Effect]
) -> CarState:
    assert p.odometer_km is not None and s.snapshot.odometer_km is not None
    distance = s.snapshot.odometer_km - p.odometer_km
    gone = s.offline_at
    if gone is not None and since < gone <= at:
        start_at, end_at = policy.hop_before_offline(since, gone, distance)
    elif s.snapshot.is_user_present:
        start_at, end_at = policy.hop_driver_present(since, at, distance)
    else:
        start_at, end_at = policy.hop_interval(since, at, distance)
    s, ref = _ref(s)
    start = _position(s, start_at, p)
    if start is None:
        return s
    fx.append(Log("drive between two looks", "info", {"ref": ref, "km": round(distance, 3)}))
    fx.append(OpenDrive(ref, start, late=True))
    s = replace(s, drive=OpenDriveRow(ref, start_at))
    s = _insert_position(s, start_at, p, fx)
    s = _insert_position(s, end_at, replace(s.snapshot, speed_kmh=None, shift_state=None), fx)
    s = _close_drive(s, end_at, "between looks", fx)
    # the baseline for a charge begun after it: the level from before, a fresh counter
    return replace(s, parked=_arrived(s.snapshot, p), parked_at=end_at, still_at=end_at)


def _arrived(now: VehicleState, before: VehicleState) -> VehicleState:
    """The car as it arrived somewhere unseen: place and odometer from now, battery from
    before, no charging session yet."""
    return replace(
        now,
        shift_state=None,
        speed_kmh=None,
        charging_state=None,
        charge_energy_added_kwh=None,
        battery_level=before.battery_level,
        usable_battery_level=before.usable_battery_level,
        ideal_range_km=before.ideal_range_km,
        rated_range_km=before.rated_range_km,
        est_range_km=before.est_range_km,
    )


def _merge(s: CarState, vs: VehicleState, *, authoritative_shift: bool) -> CarState:
    snap = s.snapshot.merged(vs)
    if authoritative_shift and (snap.shift_state, snap.speed_kmh) != (
        vs.shift_state,
        vs.speed_kmh,
    ):
        # A full answer (vehicle_data, a legacy stream frame) leaves gear and speed empty when
        # the car is parked: there "not said" means "none", so a parked car shows no speed.
        snap = replace(snap, shift_state=vs.shift_state, speed_kmh=vs.speed_kmh)
    identity = s.identity_known or vs.car_type is not None or vs.car_version is not None
    return replace(s, snapshot=snap, seen=True, identity_known=identity)


# --- drives -----------------------------------------------------------------------------


def _open_drive(
    s: CarState, at: datetime, vs: VehicleState, now: datetime, fx: list[Effect]
) -> CarState:
    s, ref = _ref(s)
    s = replace(s, unsettled=None)  # found in gear: the distance since is this drive's
    p, p_at, seen_odo = s.parked, _since_parked(s, at), vs.odometer_km or s.snapshot.odometer_km
    late = (
        p is not None
        and p_at is not None
        and p.odometer_km is not None
        and seen_odo is not None
        and policy.usable_parked(p_at, p.odometer_km, at, seen_odo)
        # any distance: the metres before the first look in gear belong to the drive too
        and seen_odo > p.odometer_km
    )
    if late and p is not None and p_at is not None and p.odometer_km is not None:
        assert seen_odo is not None
        start_at = policy.estimated_drive_start(p_at, p.odometer_km, at, seen_odo)
        start = _position(s, start_at, p)
    else:
        if vs.odometer_km is None and seen_odo is not None:
            # a telemetry gear record carries no odometer (it comes on its own interval and
            # past its minimum_delta, 0.1 mi into the drive): the car starts where it stood
            vs = replace(vs, odometer_km=seen_odo)
        start_at, start = at, _position(s, at, vs)
    if start is None:
        fx.append(Log("drive without a location yet", "warning", {"ref": ref}))
        start = Position(date=start_at, latitude=0.0, longitude=0.0, odometer=seen_odo)
    fx.append(OpenDrive(ref, start, late=late))
    s = replace(s, drive=OpenDriveRow(ref, start_at), link=Link.AVAILABLE, link_misses=0)
    s = _insert_position(s, start_at, p if late and p is not None else vs, fx)
    if late:
        s = _insert_position(s, at, vs, fx)
    return replace(s, last_used=now)


def _close_drive(
    s: CarState, at: datetime, reason: str, fx: list[Effect], *, final: bool = True
) -> CarState:
    d = s.drive
    if d is None:
        return s
    distance = (
        None
        if d.start_odometer_km is None or d.last_odometer_km is None
        else d.last_odometer_km - d.start_odometer_km
    )
    if d.positions < 2 or distance is None or distance < PHANTOM_DISTANCE_KM:
        fx.append(DropDrive(d.ref, f"phantom ({reason})"))
    else:
        end = max(at, d.last_at) if d.last_at else at
        fx.append(
            CloseDrive(d.ref, end, reason, d.start_odometer_km, d.last_odometer_km, final=final)
        )
        if not final:
            s = replace(s, unsettled=(d, None))  # when it was seen asleep: the caller's to say
    s = replace(s, drive=None, link=Link.AVAILABLE, link_misses=0, before_offline=None)
    if d.last_odometer_km is not None:
        # where the drive ended is the baseline for whatever comes next
        end_look = replace(
            s.snapshot,
            odometer_km=d.last_odometer_km,
            shift_state=None,
            speed_kmh=None,
            charging_state=None,  # a charge begun where it parked starts a fresh session
            charge_energy_added_kwh=None,
        )
        s = replace(s, parked=end_look, parked_at=d.last_at or at)
    return s


def _drive_end(s: CarState, seen: VehicleState, seen_at: datetime) -> datetime:
    """When a drive seen parked at `seen_at` most likely ended: after its last look in
    gear, by the distance left at the drive's own average speed."""
    d = s.drive
    if d is not None and d.stopped_at is not None and d.stopped_at <= seen_at:
        return d.stopped_at  # a pushed frame saw it park
    if d is None or d.last_at is None or d.last_odometer_km is None:
        return seen_at
    if seen.odometer_km is None or seen_at - d.last_at <= timedelta(seconds=10):
        return seen_at
    # where the car was at its last look: the last odometer plus the GPS path since
    reached = min(d.last_odometer_km + d.path_km, seen.odometer_km)
    speed = policy.MIN_ROLLING_KMH
    hours = (d.last_at - d.started_at).total_seconds() / 3600
    if d.start_odometer_km is not None and hours > 0:
        speed = max(speed, (reached - d.start_odometer_km) / hours)
    return policy.estimated_end(d.last_at, seen_at, seen.odometer_km - reached, speed)


# --- charges ----------------------------------------------------------------------------


def _open_charge(s: CarState, at: datetime, fx: list[Effect]) -> CarState:
    s, ref = _ref(s)
    late = _late_charge_start(s, at)
    start_at = late[0] if late else at
    fx.append(OpenChargingProcess(ref, start_at, _position(s, start_at, s.snapshot)))
    s = replace(s, charge=OpenChargeRow(ref, start_at))
    if late is not None:
        # seen late: the session began at the counter's baseline, from the last parked look
        start_at, baseline, p, since = late
        counter = s.snapshot.charge_energy_added_kwh or 0.0
        seen = LateStart(since, at, counter, counter - baseline, s.snapshot.charger_power_kw)
        s = replace(s, charge=replace(s.charge, late=seen) if s.charge else None)
        first = replace(
            s.snapshot,
            charge_energy_added_kwh=baseline,
            battery_level=p.battery_level,
            usable_battery_level=p.usable_battery_level,
            ideal_range_km=p.ideal_range_km,
            rated_range_km=p.rated_range_km,
            est_range_km=p.est_range_km,
        )
        fx.append(Log("charge seen late", "info", {"ref": ref, "since": start_at.isoformat()}))
        s = _charge_sample(s, start_at, fx, first)
    return _charge_sample(s, at, fx)


def _late_charge_start(
    s: CarState, at: datetime
) -> tuple[datetime, float, VehicleState, datetime] | None:
    """A charge first seen with energy on its session counter began before it was seen."""
    p, since = s.parked, _since_parked(s, at, moved=False)
    counter = s.snapshot.charge_energy_added_kwh
    if p is None or since is None or counter is None or since >= at:
        return None
    baseline = policy.late_charge_baseline(p.charging_state, p.charge_energy_added_kwh)
    added = counter - baseline
    if added < policy.LATE_CHARGE_MIN_KWH:
        return None
    power = policy.battery_power_kw(s.snapshot.charger_power_kw, s.snapshot.fast_charger_present)
    start = policy.estimated_charge_start(since, at, added, power)
    if start >= at:
        return None
    return start, baseline, p, since


def _charge_sample(
    s: CarState, at: datetime, fx: list[Effect], vs: VehicleState | None = None
) -> CarState:
    c = s.charge
    if c is None:
        return s
    vs = vs if vs is not None else s.snapshot
    if c.last_sample_at is not None and at <= c.last_sample_at:
        at = c.last_sample_at + _TICK
    fx.append(AddChargeSample(c.ref, ChargeSample.of(at, vs)))
    c = replace(
        c,
        samples=c.samples + 1,
        last_sample_at=at,
        last_added_kwh=vs.charge_energy_added_kwh,
        last_power_kw=vs.charger_power_kw,
    )
    return replace(s, charge=c)


def _charge_end(s: CarState, seen_at: datetime) -> datetime:
    """When a charge seen ended at `seen_at` most likely ended: after its last sample, by
    the energy added since at the power it was charging with."""
    c = s.charge
    counter = s.snapshot.charge_energy_added_kwh
    if c is not None and c.ended_at is not None and c.ended_at <= seen_at:
        return c.ended_at  # a pushed record said when
    if c is None or c.last_sample_at is None or c.last_added_kwh is None or counter is None:
        return seen_at
    if seen_at - c.last_sample_at <= timedelta(seconds=10) or counter < c.last_added_kwh:
        return seen_at  # dense samples, or the counter was reset (unplugged)
    power = policy.battery_power_kw(c.last_power_kw, s.snapshot.fast_charger_present)
    return policy.estimated_end(c.last_sample_at, seen_at, counter - c.last_added_kwh, power)


def _close_charge(s: CarState, at: datetime, reason: str, fx: list[Effect]) -> CarState:
    c = s.charge
    if c is None:
        return s
    late, steady = c.late, c.steady
    if late is not None and steady is not None:
        pace = policy.measured_charge_pace(late.seen_at, late.counter_kwh, *steady)
        start = policy.estimated_charge_start(late.since, late.seen_at, late.added_kwh, pace)
        if pace is not None and start < late.seen_at and abs(start - c.started_at) >= _SECOND:
            # the counter's own pace, measured since, places the start closer
            fx.append(MoveChargeStart(c.ref, start, c.started_at))
            c = replace(c, started_at=start)
    fx.append(CloseChargingProcess(c.ref, max(at, c.started_at), reason))
    return replace(s, charge=None)


def _synthesise_charge(
    s: CarState,
    before: VehicleState,
    before_at: datetime,
    after: VehicleState,
    after_at: datetime,
    fx: list[Effect],
) -> CarState:
    """A charge made while the car was out of reach, from the snapshots either side."""
    s, ref = _ref(s)
    fx.append(OpenChargingProcess(ref, before_at, _position(s, after_at, after), synthesised=True))
    zeroed = {"charger_power_kw": None, "charge_energy_added_kwh": None}
    fx.append(AddChargeSample(ref, ChargeSample.of(before_at, replace(before, **zeroed))))
    fx.append(AddChargeSample(ref, ChargeSample.of(after_at, replace(after, **zeroed))))
    fx.append(CloseChargingProcess(ref, after_at, "charged while offline"))
    return s


# --- boot -------------------------------------------------------------------------------


def _boot(s: CarState, now: datetime, fx: list[Effect]) -> CarState:
    s = replace(s, phase=P.START, since=now, probe=Probe.IDLE, last_used=now)
    # The free endpoint first, always: the car may be asleep and must stay so.
    _schedule(s, FetchKind.LIGHT, 0, now, fx, "boot")
    return s


# --- full snapshots ---------------------------------------------------------------------


def _on_full(s: CarState, obs: Observation, now: datetime, fx: list[Effect]) -> CarState:
    if s.rest_at is not None and obs.at < s.rest_at:
        fx.append(Log("stale vehicle_data discarded", "warning", {"at": obs.at.isoformat()}))
        _schedule(s, FetchKind.FULL, s.timing.start, now, fx, "stale data")
        return s
    s = _merge(s, obs.state, authoritative_shift=True)
    s = replace(s, rest_at=obs.at, last_full_at=now, errors=0)
    if s.phase in (P.ASLEEP, P.OFFLINE):
        s = _go(s, T.ONLINE, now, fx)
    if s.phase is P.START:
        return _start_full(s, obs, now, fx, fresh=True)
    if s.phase is P.ONLINE:
        return _online_full(s, obs, now, fx)
    if s.phase is P.SUSPENDED:
        return _suspended_full(s, obs, now, fx)
    if s.phase is P.DRIVING:
        return _driving_full(s, obs, now, fx)
    if s.phase is P.CHARGING:
        return _charging_full(s, obs, now, fx)
    return _updating_full(s, obs, now, fx)


def _start_full(
    s: CarState, obs: Observation, now: datetime, fx: list[Effect], *, fresh: bool
) -> CarState:
    """``start`` with the car awake: settle leftovers, write online, evaluate."""
    vs, at = s.snapshot, obs.at
    s = replace(s, probe=Probe.IDLE, sleep_poll=None)
    fx.append(CancelTimer(TimerKind.PROBE))
    s = _synchronize_updates(s, at, fx)
    s = _start_state(s, StateStatus.ONLINE, at, fx)
    # What a crash (or the previous phase) left open is resumed or closed here.
    if s.drive is not None:
        if vs.shift_state in DRIVING_SHIFTS:
            s = _go(s, T.SHIFT_DRIVE, now, fx)
            return _driving_full(s, obs, now, fx)
        # parked when we came back (a crash): it ended after its last position, at its pace
        end = _drive_end(s, vs, at)
        s = _insert_position(s, end, obs.state, fx)
        s = _close_drive(s, end, "parked", fx)
    if s.charge is not None:
        if vs.charging_state in CHARGING_NOW:
            s = _go(s, T.CHARGE_STARTED, now, fx)
            return _charging_full(s, obs, now, fx)
        s = _charge_sample(s, at, fx)
        s = _close_charge(s, at, vs.charging_state or "stopped", fx)
    if s.update is not None:
        if vs.update_status == "installing":
            s = _go(s, T.INSTALLING, now, fx)
            return _updating_full(s, obs, now, fx)
        s = _close_update(s, at, fx)
    if fresh and vs.shift_state not in DRIVING_SHIFTS:  # a drive inserts its own
        s = _insert_position(s, at, obs.state, fx, in_drive=False)
    s = _note_parked(s, at, now, fx)
    s = replace(s, last_used=now)
    s = _go(s, T.ONLINE, now, fx)
    fx.append(SetTimer(TimerKind.POSITION, now + timedelta(seconds=s.timing.position_every)))
    return _online_full(s, obs, now, fx)


def _online_full(s: CarState, obs: Observation, now: datetime, fx: list[Effect]) -> CarState:
    """The online checks, in TeslaMate's order: update, drive, charge, sleep."""
    vs, at = s.snapshot, obs.at
    if vs.update_status == "installing":
        return _begin_update(s, at, now, fx)
    if vs.shift_state in DRIVING_SHIFTS:
        s = _open_drive(s, at, obs.state, now, fx)
        s = _go(s, T.SHIFT_DRIVE, now, fx)
        _schedule(s, FetchKind.FULL, _driving_poll(s), now, fx, "driving")
        return s
    if vs.charging_state in CHARGING_NOW:
        return _begin_charge(s, at, now, fx)
    s = _note_parked(s, at, now, fx)
    return _try_suspend(s, now, fx)


def _begin_update(s: CarState, at: datetime, now: datetime, fx: list[Effect]) -> CarState:
    s, ref = _ref(s)
    fx.append(OpenUpdate(ref, at, s.snapshot.update_version))
    s = replace(s, update=OpenUpdateRow(ref, at, s.snapshot.update_version))
    s = _go(s, T.INSTALLING, now, fx)
    _schedule(s, FetchKind.FULL, s.timing.updating, now, fx, "updating")
    return s


def _begin_charge(s: CarState, at: datetime, now: datetime, fx: list[Effect]) -> CarState:
    s = _open_charge(s, at, fx)
    s = _go(s, T.CHARGE_STARTED, now, fx)
    s = replace(s, last_used=now)
    _schedule(s, FetchKind.FULL, _charging_poll(s, first=True), now, fx, "charging")
    fx.append(SetTimer(TimerKind.POSITION, now + timedelta(seconds=s.timing.position_every)))
    return s


def _try_suspend(s: CarState, now: datetime, fx: list[Effect]) -> CarState:
    """Let an idle car fall asleep: stop calling vehicle_data unless a blocker holds.

    With a feed that may be silent while the car is parked, neither the suspend nor a
    blocker is decided on a paid look older than the idle threshold: one look first."""
    streaming = policy.streaming(s.feed, s.stream_up)
    kind = policy.online_poll_kind(s.feed, s.stream_up)
    blocker = suspend_blocker(s.snapshot, s.settings, streaming=streaming)
    threshold = policy.idle_threshold(s.settings, s.timing, streaming=streaming)
    idle_for = now - (s.last_used or now)
    if (blocker is not None or idle_for >= threshold) and policy.look_before_suspend(
        s.feed, s.last_full_at, now, threshold
    ):
        _schedule(s, FetchKind.FULL, 0, now, fx, "look before suspending")
        return s
    if blocker is not None:
        if blocker.resets_idle:
            s = replace(s, last_used=now)
        fx.append(Log("cannot suspend", "debug", {"reason": blocker.reason}))
        retry = policy.blocker_poll(blocker.retry_s, s.timing, streaming=streaming)
        _schedule(s, kind, retry, now, fx, blocker.reason)
        return s
    if idle_for >= threshold:
        return _suspend(s, T.IDLE, now, fx)
    poll = policy.idle_poll(s.timing, streaming=streaming, idle_for=idle_for)
    _schedule(s, kind, poll, now, fx, "idle")
    return s


def _suspend(s: CarState, trigger: Trigger, now: datetime, fx: list[Effect]) -> CarState:
    s = _insert_position(s, now, s.snapshot, fx, in_drive=False)
    s = _go(s, trigger, now, fx)
    _schedule(s, FetchKind.LIGHT, _suspended_poll(s, now), now, fx, "suspended")
    return s


def _suspended_poll(s: CarState, now: datetime) -> float:
    """Seconds to the next free look at the suspended car (the paid one waits the period)."""
    streaming = policy.streaming(s.feed, s.stream_up)
    # no paid look yet since it was suspended (the one it was suspended on is no later)
    first = s.since is None or s.last_full_at is None or s.last_full_at <= s.since
    period = policy.suspend_period(s.settings, s.timing, streaming=streaming, first=first)
    looked = max((t for t in (s.since, s.last_full_at) if t is not None), default=now)
    return policy.suspended_poll(s.timing, period, max(now - looked, timedelta(0)), feed=s.feed)


def _suspended_full(s: CarState, obs: Observation, now: datetime, fx: list[Effect]) -> CarState:
    vs = s.snapshot
    busy = (
        vs.update_status == "installing"
        or vs.shift_state in DRIVING_SHIFTS
        or vs.charging_state in CHARGING_NOW
    )
    streaming = policy.streaming(s.feed, s.stream_up)
    blocker = suspend_blocker(vs, s.settings, streaming=streaming)
    moved = _moved_unseen(s, obs.at)  # it drove while we let it sleep: watch it again
    if busy or moved or (blocker is not None and blocker.resets_idle):
        s = replace(s, last_used=now)
        s = _go(s, T.USAGE, now, fx)
        return _online_full(s, obs, now, fx)
    s = _note_parked(s, obs.at, now, fx)
    fx.append(Log("still online, falling asleep again", "debug"))
    _schedule(s, FetchKind.LIGHT, _suspended_poll(s, now), now, fx, "suspended")
    return s


def _driving_poll(s: CarState) -> float:
    return policy.driving_poll(s.feed, s.stream_up, s.timing)


def _charging_poll(s: CarState, *, first: bool = False) -> float:
    if first and s.feed is Feed.NONE:
        return s.timing.charging_min
    return policy.charging_poll(s.feed, s.stream_up, s.snapshot.charger_power_kw, s.timing)


def _driving_full(s: CarState, obs: Observation, now: datetime, fx: list[Effect]) -> CarState:
    vs, at = s.snapshot, obs.at
    if s.link is not Link.AVAILABLE or s.drive is None:
        return _back_from_offline(s, obs, now, fx)
    if obs.state.latitude is None and obs.state.shift_state is None:
        fx.append(Log("vehicle_data without drive_state", "warning"))
        _schedule(s, FetchKind.FULL, _driving_poll(s), now, fx, "no drive_state")
        return s
    if vs.shift_state in DRIVING_SHIFTS:
        s = _stopped(s, None)  # a pushed "parked" this look contradicts was a pause
        s = _insert_position(s, at, obs.state, fx)
        _schedule(s, FetchKind.FULL, _driving_poll(s), now, fx, "driving")
        return replace(s, last_used=now)
    # parked: the drive ended after its last look in gear, not when this look came
    end = _drive_end(s, vs, at)
    s = _insert_position(s, end, obs.state, fx)
    s = _close_drive(s, end, "parked", fx)
    s = _go(s, T.PARKED, now, fx)
    return _start_full(s, obs, now, fx, fresh=False)


def _back_from_offline(s: CarState, obs: Observation, now: datetime, fx: list[Effect]) -> CarState:
    """The car answers again after an offline spell during a drive."""
    at, d = obs.at, s.drive
    last_at = d.last_at if d and d.last_at else (s.rest_at or at)
    offline_for = at - last_at
    before = s.before_offline or s.snapshot
    long_gone = offline_for >= timedelta(minutes=s.timing.drive_timeout_min)
    if d is not None and s.snapshot.shift_state not in DRIVING_SHIFTS:
        return _parked_unseen(s, obs, before, last_at, now, fx)
    if policy.offline_charge_detected(before, s.snapshot, offline_for):
        s = _close_drive(s, last_at, "offline", fx)
        s = _synthesise_charge(s, before, last_at, s.snapshot, at, fx)
        s = _go(s, T.CHARGED_OFFLINE, now, fx)
        return _start_full(s, obs, now, fx, fresh=True)
    if d is None or long_gone:
        s = _close_drive(s, last_at, "offline", fx)
        s = _go(s, T.LONG_OFFLINE, now, fx)
        return _start_full(s, obs, now, fx, fresh=True)
    fx.append(Log("drive resumed after offline", fields={"offline_s": offline_for.seconds}))
    s = replace(s, link=Link.AVAILABLE, link_misses=0, before_offline=None)
    s = _sync_stream(s, fx)
    return _driving_full(s, obs, now, fx)


def _parked_unseen(
    s: CarState,
    obs: Observation,
    before: VehicleState,
    last_at: datetime,
    now: datetime,
    fx: list[Effect],
) -> CarState:
    """Back after an offline spell, parked: the drive ended where the odometer now says,
    at a time placed from its own pace; a charge since is synthesised if it ended, or
    opened (from the drive's end, with its counter) if it still goes on."""
    at, snap = obs.at, s.snapshot
    end = _drive_end(s, snap, at)
    s = _insert_position(s, end, replace(obs.state, speed_kmh=None), fx)
    s = _close_drive(s, end, "offline", fx)
    # the drive's end is the baseline of a charge begun there: the level from before,
    # the odometer and place from now, a fresh session counter
    s = replace(s, parked=_arrived(snap, before), parked_at=end, still_at=end)
    charging = snap.charging_state in CHARGING_NOW
    if not charging and policy.offline_charge_detected(before, snap, at - last_at):
        s = _synthesise_charge(s, before, end, snap, at, fx)
        s = _go(s, T.CHARGED_OFFLINE, now, fx)
    elif at - last_at >= timedelta(minutes=s.timing.drive_timeout_min):
        s = _go(s, T.LONG_OFFLINE, now, fx)
    else:
        s = _go(s, T.PARKED, now, fx)
    return _start_full(s, obs, now, fx, fresh=True)


def _driving_unreachable(s: CarState, now: datetime, fx: list[Effect]) -> CarState:
    """An offline answer during a drive: retry fast, then slowly; close after 15 min."""
    t = s.timing
    if s.drive is None:
        # the drive timed out already; a further offline ends the driving phase
        s = _go(s, T.OFFLINE, now, fx)
        return _start_light(s, Connectivity.OFFLINE, now, now, fx)
    if s.link is Link.AVAILABLE:
        s = replace(s, link=Link.UNAVAILABLE, link_misses=0, before_offline=s.snapshot)
    else:
        misses = s.link_misses + 1
        link = Link.OFFLINE if misses >= t.drive_offline_retries else s.link
        s = replace(s, link=link, link_misses=misses)
    d = s.drive
    assert d is not None
    last = d.last_at or d.started_at
    if (
        now - last >= timedelta(minutes=t.drive_timeout_min)
        and s.state_row is not None
        and (s.state_row.status is not StateStatus.OFFLINE)
    ):
        # TeslaMate closes the drive here, where it was last seen; fleetlog keeps the row
        # open until the car answers again and says (by its odometer) where it stopped.
        fx.append(Log("drive timed out while offline", "warning", {"ref": d.ref}))
        s = _start_state(s, StateStatus.OFFLINE, now, fx)
        s = replace(s, link=Link.OFFLINE)
    # Watch for the car's return on the free endpoint; vehicle_data only once it answers.
    poll = t.drive_offline_retry if s.link is Link.UNAVAILABLE else t.drive_offline_poll
    _schedule(s, FetchKind.LIGHT, poll, now, fx, "driving, offline")
    return s


def _charging_full(s: CarState, obs: Observation, now: datetime, fx: list[Effect]) -> CarState:
    vs, at = s.snapshot, obs.at
    s = _counter_heard(s, at)
    if vs.charging_state in CHARGING_NOW:
        s = _charge_ended(s, None)  # a pushed end this look contradicts was a pause
        s = _charge_sample(s, at, fx)
        if s.parked is not None and s.parked.odometer_km == vs.odometer_km:
            s = replace(s, still_at=at)  # a drive seen after the charge began after this
        _schedule(s, FetchKind.FULL, _charging_poll(s), now, fx, "charging")
        return replace(s, last_used=now)
    return _end_charge(s, at, vs.charging_state or "stopped", now, fx, obs)


def _end_charge(
    s: CarState,
    at: datetime,
    reason: str,
    now: datetime,
    fx: list[Effect],
    obs: Observation | None,
) -> CarState:
    end = _charge_end(s, at)  # the last energy went in before this look
    s = _insert_position(s, end, s.snapshot, fx, in_drive=False)
    s = _charge_sample(s, end, fx)
    s = _close_charge(s, end, reason, fx)
    s = _go(s, T.CHARGE_ENDED, now, fx)
    if obs is not None:
        return _start_full(s, obs, now, fx, fresh=False)
    return _start_pushed(s, at, now, fx)


def _updating_full(s: CarState, obs: Observation, now: datetime, fx: list[Effect]) -> CarState:
    status = s.snapshot.update_status
    if status == "installing":
        _schedule(s, FetchKind.FULL, s.timing.updating, now, fx, "updating")
        return s
    u = s.update
    if status == "available" and u is not None:
        fx.append(CancelUpdate(u.ref))
        s = replace(s, update=None)
        s = _go(s, T.UPDATE_CANCELLED, now, fx)
    else:
        s = _close_update(s, obs.at, fx)
        s = _go(s, T.UPDATE_DONE, now, fx)
    return _start_full(s, obs, now, fx, fresh=False)


def _close_update(s: CarState, at: datetime, fx: list[Effect]) -> CarState:
    u = s.update
    if u is None:
        return s
    version = s.snapshot.car_version or u.version
    fx.append(CloseUpdate(u.ref, max(at, u.started_at), version))
    latest = version if version and is_newer(version, s.last_update_version) else None
    return replace(s, update=None, last_update_version=latest or s.last_update_version)


def _synchronize_updates(s: CarState, at: datetime, fx: list[Effect]) -> CarState:
    """A car_version newer than the last recorded update is an update we missed."""
    version = s.snapshot.car_version
    if version is None or s.update is not None:
        return s
    if s.last_update_version is not None and not is_newer(version, s.last_update_version):
        return s
    s, ref = _ref(s)
    fx.append(OpenUpdate(ref, at, version))
    fx.append(CloseUpdate(ref, at, version))
    return replace(s, last_update_version=version)


# --- light answers (the free endpoint) --------------------------------------------------


def _on_light(s: CarState, obs: Observation, now: datetime, fx: list[Effect]) -> CarState:
    c = obs.state.connectivity
    light = VehicleState(display_name=obs.state.display_name, in_service=obs.state.in_service)
    s = replace(s, snapshot=s.snapshot.merged(light), errors=0)
    if c is None:
        _schedule(s, FetchKind.LIGHT, s.timing.start, now, fx, "unknown connectivity")
        return s
    if obs.state.in_service and c is Connectivity.ONLINE:
        return _in_service(s, now, fx)
    return _connectivity(s, c, obs.at, now, fx)


def _connectivity(
    s: CarState, c: Connectivity, at: datetime, now: datetime, fx: list[Effect]
) -> CarState:
    """What the free endpoint's answer means in each phase."""
    sleeping = c is not Connectivity.ONLINE
    trigger = T.ASLEEP if c is Connectivity.ASLEEP else T.OFFLINE
    phase = s.phase
    if phase is P.START:
        return _start_light(s, c, at, now, fx)
    if phase is P.DRIVING:
        if c is Connectivity.ASLEEP:
            s = _close_drive(s, (s.drive.last_at if s.drive else None) or at, "asleep", fx)
            s = _go(s, T.ASLEEP, now, fx)
            return _start_light(s, c, at, now, fx)
        if c is Connectivity.OFFLINE:
            return _driving_unreachable(s, now, fx)
        _schedule(s, FetchKind.FULL, 0, now, fx, "driving, answering again")
        return s
    if phase is P.CHARGING:
        if c is Connectivity.ASLEEP:
            end = s.charge.ended_at if s.charge and s.charge.ended_at else at
            s = _charge_sample(s, end, fx)
            s = _close_charge(s, end, "aborted", fx)
            s = _go(s, T.ASLEEP, now, fx)
            return _start_light(s, c, at, now, fx)
        if c is Connectivity.OFFLINE:
            _schedule(s, FetchKind.LIGHT, s.timing.charging_offline_poll, now, fx, "charging")
            return s
        _schedule(s, FetchKind.FULL, 0, now, fx, "charging")
        return s
    if phase is P.UPDATING:
        if c is Connectivity.ASLEEP:
            s = _go(s, T.ASLEEP, now, fx)
            return _start_light(s, c, at, now, fx)
        kind = FetchKind.LIGHT if sleeping else FetchKind.FULL
        _schedule(s, kind, s.timing.charging_offline_poll, now, fx, "updating")
        return s
    if phase in (P.ONLINE, P.SUSPENDED):
        if sleeping:
            s = _go(s, trigger, now, fx)
            return _start_light(s, c, at, now, fx)
        if phase is P.SUSPENDED:
            wait = _suspended_poll(s, now)
            if wait > 0:
                _schedule(s, FetchKind.LIGHT, wait, now, fx, "suspended")
                return s
            if policy.look_when_still_online(s.feed, s.last_full_at, now, s.settings):
                # the car stayed awake all the suspend period (with a silent stream: since
                # the last paid look); look closer
                _schedule(s, FetchKind.FULL, 0, now, fx, "still online")
            else:
                _schedule(s, FetchKind.LIGHT, s.timing.probe_window, now, fx, "still online")
            return s
        if s.feed is Feed.NONE:
            _schedule(s, FetchKind.FULL, 0, now, fx, "online")
            return s
        return _try_suspend(s, now, fx)
    # asleep / offline
    if not sleeping:
        return _awake_signal(s, now, fx, proven=False)
    current = StateStatus.ASLEEP if phase is P.ASLEEP else StateStatus.OFFLINE
    wanted = StateStatus.ASLEEP if c is Connectivity.ASLEEP else StateStatus.OFFLINE
    if current is not wanted:
        s = _go(s, trigger, now, fx)
        return _start_light(s, c, at, now, fx)
    return _keep_sleeping(s, now, fx)


def _keep_sleeping(s: CarState, now: datetime, fx: list[Effect]) -> CarState:
    interval = s.timing.asleep
    if s.sleep_poll is not None:
        interval = min(s.sleep_poll, s.timing.asleep)
        s = replace(s, sleep_poll=None if interval >= s.timing.asleep else interval * 2)
    if s.probe in (Probe.PROBING, Probe.FAKE):
        s = replace(s, probe=Probe.IDLE)
        fx.append(CancelTimer(TimerKind.PROBE))
        s = _sync_stream(s, fx)
    _schedule(s, FetchKind.LIGHT, interval, now, fx, "asleep")
    return s


def _start_light(
    s: CarState, c: Connectivity, at: datetime, now: datetime, fx: list[Effect]
) -> CarState:
    """``start`` with a free-endpoint answer."""
    if c is Connectivity.ONLINE:
        return _awake_signal(s, now, fx, proven=False)
    # Whatever was open ends where the car was last seen.
    last_seen = s.rest_at or at
    if s.drive is not None:
        # where it parked is unknown until the car is looked at: the first parked look may
        # find it further along, and that distance is still this drive's
        end = s.drive.last_at or last_seen
        s = _close_drive(s, end, c.value, fx, final=s.phase is not P.START)
        if s.unsettled is not None and c is Connectivity.ASLEEP:
            s = replace(s, unsettled=(s.unsettled[0], max(at, end)))
    if s.charge is not None:
        s = _close_charge(s, last_seen, "aborted", fx)
    if s.update is not None:
        s = _close_update(s, last_seen, fx)
    status = StateStatus.ASLEEP if c is Connectivity.ASLEEP else StateStatus.OFFLINE
    if status is StateStatus.OFFLINE and (s.state_row is None or s.state_row.status is not status):
        s = replace(s, offline_at=at)
    s = _start_state(s, status, at, fx)
    s = replace(s, probe=Probe.IDLE)
    s = _go(s, T.ASLEEP if c is Connectivity.ASLEEP else T.OFFLINE, now, fx)
    fx.append(CancelTimer(TimerKind.POSITION))
    fx.append(CancelTimer(TimerKind.PROBE))
    return _keep_sleeping(s, now, fx)


def _awake_signal(s: CarState, now: datetime, fx: list[Effect], *, proven: bool) -> CarState:
    """The car may be awake. Polling only: look. With a feed: let the feed prove it first
    (an MCU2 car "online" for its hourly check would be kept awake by vehicle_data)."""
    if s.feed is Feed.NONE or proven or s.probe is Probe.REAL:
        if s.phase is P.ASLEEP:
            s = replace(s, awake_at=now)
        if s.phase in (P.ASLEEP, P.OFFLINE):
            s = replace(s, probe=Probe.REAL)
            s = _go(s, T.ONLINE, now, fx)
        s = replace(s, probe=Probe.REAL if s.feed is not Feed.NONE else Probe.IDLE)
        fx.append(CancelTimer(TimerKind.PROBE))
        if policy.full_fetch_on_wake(s.feed, s.identity_known, s.last_full_at, now, s.timing):
            _schedule(s, FetchKind.FULL, 0, now, fx, "awake")
            return s
        return _start_pushed(s, s.rest_at or now, now, fx)
    if s.probe is Probe.IDLE:
        s = replace(s, probe=Probe.PROBING)
        s = _sync_stream(s, fx)
        fx.append(SetTimer(TimerKind.PROBE, now + timedelta(seconds=s.timing.probe_window)))
    _schedule(s, FetchKind.LIGHT, s.timing.probe_window, now, fx, "probing")
    return s


def _start_pushed(s: CarState, at: datetime, now: datetime, fx: list[Effect]) -> CarState:
    """``start`` with the car awake and a feed that covers it: online without paying."""
    s = replace(s, probe=Probe.IDLE, sleep_poll=None, last_used=now)
    s = _start_state(s, StateStatus.ONLINE, now, fx)
    if s.drive is not None:
        s = _close_drive(s, at, "parked", fx)
    if s.charge is not None:
        s = _close_charge(s, at, "stopped", fx)
    if s.phase is not P.START:
        return s
    s = _go(s, T.ONLINE, now, fx)
    s = _insert_position(s, now, s.snapshot, fx, in_drive=False)
    fx.append(SetTimer(TimerKind.POSITION, now + timedelta(seconds=s.timing.position_every)))
    return _try_suspend(s, now, fx)


def _in_service(s: CarState, now: datetime, fx: list[Effect]) -> CarState:
    if s.phase is P.DRIVING:
        s = _close_drive(s, (s.drive.last_at if s.drive else None) or now, "aborted", fx)
        s = _go(s, T.IN_SERVICE, now, fx)
    fx.append(Log("vehicle in service", "info"))
    _schedule(s, FetchKind.LIGHT, s.timing.in_service, now, fx, "in service")
    return s


# --- failures ---------------------------------------------------------------------------


def _on_failed(s: CarState, e: FetchFailed, now: datetime, fx: list[Effect]) -> CarState:
    if e.error in (FetchError.ASLEEP, FetchError.OFFLINE):
        if e.kind is FetchKind.FULL:
            # vehicle_data says 408: the free endpoint tells asleep from offline
            _schedule(s, FetchKind.LIGHT, 0, now, fx, "vehicle_data unavailable")
            return s
        c = Connectivity.ASLEEP if e.error is FetchError.ASLEEP else Connectivity.OFFLINE
        return _connectivity(s, c, now, now, fx)
    if e.error is FetchError.IN_SERVICE:
        return _in_service(s, now, fx)
    if e.error is FetchError.BUDGET_LATER:
        at = policy.retry_at(e.error, 0, e.retry_at, now, s.timing)
        kind = e.kind
        wait = (at - now).total_seconds()
        if kind is FetchKind.FULL and wait > 60 and s.phase not in (P.DRIVING, P.CHARGING):
            # by then the car may sleep: ask the free endpoint first, pay only if awake
            kind = FetchKind.LIGHT
        fx.append(Log("fetch deferred by budget", fields={"kind": e.kind.value, "until": at}))
        _schedule(s, kind, wait, now, fx, "budget")
        return s
    at = policy.retry_at(e.error, s.errors, e.retry_at, now, s.timing)
    fx.append(Log("fetch failed", "warning", {"kind": e.kind.value, "error": e.error.value}))
    s = replace(s, errors=s.errors + 1)
    _schedule(s, e.kind, (at - now).total_seconds(), now, fx, e.error.value)
    return s


# --- pushed data ------------------------------------------------------------------------


def _on_pushed(
    s: CarState, obs: Observation, full_frame: bool, now: datetime, fx: list[Effect]
) -> CarState:
    vs, at = obs.state, obs.at
    if s.rest_at is not None and at < s.rest_at:
        # older than the last vehicle_data: it would move the car backwards, and a drive's
        # position at its own time would fall before that look (not moved after it)
        return s
    before = s.snapshot
    s = _merge(s, vs, authoritative_shift=full_frame)
    shift = s.snapshot.shift_state if (full_frame or vs.shift_state) else None
    in_gear = shift in DRIVING_SHIFTS
    parked = (full_frame or vs.shift_state is not None) and not in_gear
    power = vs.power_kw
    phase = s.phase

    if phase in (P.START, P.ASLEEP, P.OFFLINE):
        verdict = policy.probe_verdict(s.feed, vs)
        if verdict is Probe.REAL:
            return _awake_signal(s, now, fx, proven=True)
        if s.probe is Probe.PROBING:
            fx.append(Log("fake online: subsystem check, not waking", "info"))
            s = replace(s, probe=Probe.FAKE)
            fx.append(CancelTimer(TimerKind.PROBE))
        return s

    if phase is P.DRIVING:
        if s.drive is None or s.link is not Link.AVAILABLE:
            _schedule(s, FetchKind.FULL, 0, now, fx, "pushed data after offline")
            return s
        stopped = s.drive.stopped_at
        if policy.push_ends_drive(s.feed) and not in_gear and (parked or stopped is not None):
            if vs.odometer_km is not None:
                # gear P and the odometer where it stopped: the drive is over, for free
                end = stopped or at
                s = _insert_position(s, end, vs, fx)
                s = _close_drive(s, end, "parked", fx)
                s = _go(s, T.PARKED, now, fx)
                return _after_push_start(s, at, now, fx)
            if stopped is None:
                # the odometer comes on its own interval; REST only if it does not come
                s = _insert_position(s, at, vs, fx)
                s = _stopped(s, at)
                wait = s.timing.push_odometer_wait
                _schedule(s, FetchKind.FULL, wait, now, fx, "parked, waiting for the odometer")
            return s
        if parked:
            if before.shift_state in DRIVING_SHIFTS:
                # the first parked frame stays in the drive: if REST confirms, it is
                # where and when the drive ended
                s = _insert_position(s, at, vs, fx)
                s = _stopped(s, at)
            _schedule(s, FetchKind.FULL, 0, now, fx, "stream shows parked")
            return s
        if in_gear and stopped is not None:
            s, stopped = _stopped(s, None), None
        if stopped is not None:
            # parked, its paid confirmation due: later records (SoC, tyres, a charge
            # starting) neither move the drive's end nor push that look back
            return s
        if vs.latitude is not None or vs.odometer_km is not None:
            s = _insert_position(s, at, vs, fx)
        _schedule(s, FetchKind.FULL, _driving_poll(s), now, fx, "feed watchdog")
        return replace(s, last_used=now)

    if phase is P.CHARGING:
        if vs.charge_energy_added_kwh is not None:
            s = _counter_heard(s, at)
        if in_gear:
            _schedule(s, FetchKind.FULL, 0, now, fx, "gear while charging")
            return s
        if s.charge is not None and s.charge.ended_at is not None:
            if vs.charging_state not in CHARGING_NOW:
                return s  # the end is placed; the look at the counter is due
            s = _charge_ended(s, None)  # it charges again: that was a pause
        ended = vs.charging_state is not None and vs.charging_state not in CHARGING_NOW
        if ended and policy.push_carries_charging(s.feed) and s.charge is not None:
            # the record saying so is the end; the counter comes on its own interval and
            # past its minimum_delta, so what went in since its last value needs a look
            s = _charge_ended(s, at)
            c = s.charge
            assert c is not None
            power = policy.battery_power_kw(c.last_power_kw, s.snapshot.fast_charger_present)
            if policy.counter_in_doubt(c.counter_at, at, power):
                _schedule(s, FetchKind.FULL, 0, now, fx, "charge ended, counter behind")
                return s
            return _end_charge(s, at, vs.charging_state or "stopped", now, fx, None)
        if _has_charge_fields(vs) and policy.push_carries_charging(s.feed):
            # a feed may push every second; samples keep TeslaMate's polling density
            last = s.charge.last_sample_at if s.charge else None
            gap = policy.charging_interval(s.snapshot.charger_power_kw, s.timing)
            if last is None or (at - last).total_seconds() >= gap:
                s = _charge_sample(s, at, fx)
            _schedule(s, FetchKind.FULL, _charging_poll(s), now, fx, "feed watchdog")
        elif power is not None and abs(power) < 0.5 and abs(before.power_kw or 0) >= 0.5:
            _schedule(s, FetchKind.FULL, 0, now, fx, "charging power gone")
        return s

    if phase is P.UPDATING:
        return s

    # online or suspended
    if in_gear:
        s = _open_drive(s, at, vs, now, fx)
        s = _go(s, T.SHIFT_DRIVE, now, fx)
        _schedule(s, FetchKind.FULL, _driving_poll(s), now, fx, "feed watchdog")
        return s
    if policy.push_carries_charging(s.feed) and s.snapshot.charging_state in CHARGING_NOW:
        if phase is P.SUSPENDED:
            s = _go(s, T.USAGE, now, fx)
        return _begin_charge(s, at, now, fx)
    if policy.push_carries_charging(s.feed) and s.snapshot.update_status == "installing":
        if phase is P.SUSPENDED:
            s = _go(s, T.USAGE, now, fx)
        return _begin_update(s, at, now, fx)
    dog = s.snapshot.is_preconditioning or s.snapshot.climate_keeper_mode == "dog"
    if power is not None and power < 0 and not dog:
        if phase is P.SUSPENDED:
            s = _go(s, T.USAGE, now, fx)
        if not policy.push_carries_charging(s.feed):
            _schedule(s, FetchKind.FULL, 0, now, fx, "charging detected")
        return replace(s, last_used=now)
    if (
        power is not None
        and power > 0.5
        and phase is P.ONLINE
        and not dog
        and not policy.push_carries_charging(s.feed)
        and (before.power_kw is None or before.power_kw <= 0.5)
    ):
        # MyTeslaMate's rebuilt frames show a charge's power as positive: look once
        _schedule(s, FetchKind.FULL, 0, now, fx, "power seen while parked")
        return replace(s, last_used=now)
    if power is not None and power > 0 and phase is P.SUSPENDED:
        s = replace(s, last_used=now)
        s = _go(s, T.USAGE, now, fx)
        # as TeslaMate, one full look: it may be a charge (MyTeslaMate's power is positive)
        _schedule(s, FetchKind.FULL, 0, now, fx, "usage detected")
        return s
    if parked:
        s = _remember_parked(s, at)
    return s


def _stopped(s: CarState, at: datetime | None) -> CarState:
    d = s.drive
    return s if d is None else replace(s, drive=replace(d, stopped_at=at))


def _after_push_start(s: CarState, at: datetime, now: datetime, fx: list[Effect]) -> CarState:
    s = _remember_parked(s, at)
    return _start_pushed(s, at, now, fx)


def _counter_heard(s: CarState, at: datetime) -> CarState:
    c = s.charge
    if c is None:
        return s
    c = replace(c, counter_at=at)
    counter, late = s.snapshot.charge_energy_added_kwh, c.late
    if (
        late is not None
        and counter is not None
        and at > late.seen_at
        and policy.same_charger_power(late.power_kw, s.snapshot.charger_power_kw)
    ):
        c = replace(c, steady=(at, counter))
    return replace(s, charge=c)


def _charge_ended(s: CarState, at: datetime | None) -> CarState:
    c = s.charge
    return s if c is None else replace(s, charge=replace(c, ended_at=at))


def _has_charge_fields(vs: VehicleState) -> bool:
    return vs.charge_energy_added_kwh is not None or vs.charger_power_kw is not None


def _on_connectivity(s: CarState, c: Connectivity, now: datetime, fx: list[Effect]) -> CarState:
    if c is Connectivity.ONLINE:
        if s.phase in (P.START, P.ASLEEP, P.OFFLINE):
            return _awake_signal(s, now, fx, proven=True)
        return s
    # A pushed "gone" cannot tell asleep from offline; the free endpoint can.
    _schedule(s, FetchKind.LIGHT, 0, now, fx, "feed says disconnected")
    return s


def _on_stream_down(s: CarState, now: datetime, fx: list[Effect]) -> CarState:
    s = replace(s, stream_up=False)
    if s.phase is P.DRIVING and s.drive is not None:
        _schedule(s, FetchKind.FULL, _driving_poll(s), now, fx, "feed lost while driving")
    elif s.phase is P.CHARGING:
        _schedule(s, FetchKind.FULL, _charging_poll(s), now, fx, "feed lost while charging")
    return s


# --- timers, settings and commands ------------------------------------------------------


def _on_settings(s: CarState, settings: CarSettings, now: datetime, fx: list[Effect]) -> CarState:
    """New car settings; ``use_streaming_api`` turns the car's stream off or on again."""
    own = s.pushed if s.pushed is not None else s.feed
    feed = policy.feed_for(own, settings)
    before = s.feed
    s = replace(s, settings=settings, pushed=own, feed=feed)
    if feed is before:
        return s
    fx.append(Log("stream setting changed", "info", {"feed": feed.value}))
    s = _sync_stream(s, fx)
    # the next look follows the new feed's cadence (a stream's watchdog may be minutes off)
    if s.phase is P.DRIVING:
        _schedule(s, FetchKind.FULL, _driving_poll(s), now, fx, "stream setting")
    elif s.phase is P.CHARGING:
        _schedule(s, FetchKind.FULL, _charging_poll(s), now, fx, "stream setting")
    elif s.phase is P.ONLINE:
        kind = policy.online_poll_kind(s.feed, s.stream_up)
        every = policy.idle_poll(s.timing, streaming=policy.streaming(s.feed, s.stream_up))
        _schedule(s, kind, every, now, fx, "stream setting")
    return s


def _on_timer(s: CarState, timer: TimerKind, now: datetime, fx: list[Effect]) -> CarState:
    if timer is TimerKind.PROBE:
        if s.probe is Probe.PROBING:
            # no frame within the window: TeslaMate treats the wake as real
            return _awake_signal(s, now, fx, proven=True)
        return s
    if s.phase in (P.ONLINE, P.CHARGING):
        s = _insert_position(s, now, s.snapshot, fx, in_drive=False)
        fx.append(SetTimer(TimerKind.POSITION, now + timedelta(seconds=s.timing.position_every)))
    return s


_REFUSALS: Final = {
    P.DRIVING: "vehicle_not_parked",
    P.UPDATING: "update_in_progress",
    P.CHARGING: "charging_in_progress",
    P.START: "vehicle_unavailable",
}


def _on_command(s: CarState, command: Command, now: datetime, fx: list[Effect]) -> CarState:
    if command is Command.SUSPEND:
        refusal = _REFUSALS.get(s.phase)
        if refusal is not None:
            fx.append(CommandResult(command, False, refusal))
            return s
        if s.phase is not P.ONLINE:  # asleep, offline, suspended: nothing to do
            fx.append(CommandResult(command, True))
            return s
        # TeslaMate first takes a fresh vehicle_data; fleetlog judges the snapshot it has.
        blocker = suspend_blocker(
            s.snapshot, s.settings, streaming=policy.streaming(s.feed, s.stream_up)
        )
        if blocker is not None:
            fx.append(CommandResult(command, False, blocker.reason))
            return s
        fx.append(CommandResult(command, True))
        return _suspend(s, T.SUSPEND, now, fx)
    # resume logging
    fx.append(CommandResult(command, True))
    if s.phase is P.SUSPENDED:
        s = replace(s, last_used=now)
        s = _go(s, T.RESUME, now, fx)
        _schedule(s, policy.online_poll_kind(s.feed, s.stream_up), 1, now, fx, "resumed")
        return s
    if s.phase in (P.ASLEEP, P.OFFLINE):
        s = replace(s, sleep_poll=2.0)
        _schedule(s, FetchKind.LIGHT, 1, now, fx, "resumed")
        return s
    return replace(s, last_used=now)
