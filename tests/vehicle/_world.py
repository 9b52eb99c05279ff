"""A scripted world for the pure machine: truth in, events out, effects recorded.

It plays the executor's part with no I/O: answers fetches from a truth
function, fires timers, pushes feed frames while the car is awake, and keeps an
in-memory logbook so tests can assert on what would have been written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from fleetlog.logbook.records import ChargeSample, Position
from fleetlog.model.observation import Connectivity, Observation, Source, VehicleState
from fleetlog.vehicle import effects as fx
from fleetlog.vehicle.events import (
    Boot,
    Event,
    FetchedFull,
    FetchedLight,
    FetchError,
    FetchFailed,
    FetchKind,
    Observed,
    StreamConnected,
    TimerFired,
    TimerKind,
)
from fleetlog.vehicle.machine import CarState, step
from fleetlog.vehicle.settings import Feed

VIN = "5YJ3E7EB0KF000001"
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Truth:
    connectivity: Connectivity
    state: VehicleState


def full(at: datetime, **values: object) -> FetchedFull:
    return FetchedFull(Observation(VIN, at, Source.REST, VehicleState(**values)))  # type: ignore[arg-type]


def light(at: datetime, c: Connectivity, in_service: bool = False) -> FetchedLight:
    return FetchedLight(
        Observation(VIN, at, Source.REST, VehicleState(connectivity=c, in_service=in_service))
    )


def pushed(at: datetime, *, full_frame: bool = True, **values: object) -> Observed:
    return Observed(
        Observation(VIN, at, Source.STREAM, VehicleState(**values)),  # type: ignore[arg-type]
        full_frame=full_frame,
    )


PARKED = dict(
    latitude=48.1,
    longitude=11.5,
    odometer_km=1000.0,
    battery_level=80,
    ideal_range_km=400.0,
    rated_range_km=380.0,
    charging_state="Disconnected",
    locked=True,
    car_version="2026.2.1 abc",
    car_type="model3",
    power_kw=0.0,
    speed_kmh=None,
    shift_state=None,
)


@dataclass
class Logbook:
    positions: list[tuple[int | None, Position]] = field(default_factory=list)
    drives: dict[int, dict[str, object]] = field(default_factory=dict)
    charges: dict[int, dict[str, object]] = field(default_factory=dict)
    samples: dict[int, list[ChargeSample]] = field(default_factory=dict)
    states: list[tuple[int, str, datetime, datetime | None]] = field(default_factory=list)
    updates: dict[int, dict[str, object]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def apply(self, e: fx.Effect) -> None:
        match e:
            case fx.OpenDrive(ref=ref, start=start):
                if any(d["open"] for d in self.drives.values()):
                    self.violations.append(f"second open drive {ref}")
                if ref in self.drives:
                    self.violations.append(f"drive ref {ref} reused")
                self.drives[ref] = {"open": True, "start": start, "closed": 0}
            case fx.CloseDrive(ref=ref) | fx.DropDrive(ref=ref):
                d = self.drives.get(ref)
                if d is None or not d["open"]:
                    self.violations.append(f"closing drive {ref} that is not open")
                    return
                d["open"] = False
                d["dropped"] = isinstance(e, fx.DropDrive)
                d["end"] = e
            case fx.InsertPosition(position=p, drive_ref=ref):
                if ref is not None and not self.drives.get(ref, {}).get("open"):
                    self.violations.append(f"position for drive {ref} that is not open")
                self.positions.append((ref, p))
            case fx.OpenChargingProcess(ref=ref):
                if any(c["open"] for c in self.charges.values()) and not e.synthesised:
                    self.violations.append(f"second open charge {ref}")
                self.charges[ref] = {"open": True, "open_fx": e}
                self.samples[ref] = []
            case fx.AddChargeSample(charge_ref=ref, sample=sample):
                if not self.charges.get(ref, {}).get("open"):
                    self.violations.append(f"sample for charge {ref} that is not open")
                self.samples.setdefault(ref, []).append(sample)
            case fx.CloseChargingProcess(ref=ref):
                c = self.charges.get(ref)
                if c is None or not c["open"]:
                    self.violations.append(f"closing charge {ref} that is not open")
                    return
                c["open"] = False
                c["close_fx"] = e
            case fx.StartState(ref=ref, status=status, start=start, closes=closes):
                open_rows = [r for r in self.states if r[3] is None]
                if open_rows:
                    last = open_rows[-1]
                    if closes != last[0]:
                        self.violations.append(f"state {ref} closes {closes}, open is {last[0]}")
                    if start < last[2]:
                        self.violations.append("state timeline goes backwards")
                    self.states[self.states.index(last)] = (*last[:3], start)
                elif closes is not None:
                    self.violations.append(f"state {ref} closes {closes} but none is open")
                self.states.append((ref, status.value, start, None))
            case fx.OpenUpdate(ref=ref, version=v):
                self.updates[ref] = {"open": True, "version": v}
            case fx.CloseUpdate(ref=ref, version=v):
                self.updates[ref] = {"open": False, "version": v}
            case fx.CancelUpdate(ref=ref):
                self.updates.pop(ref, None)
            case _:
                pass

    def kept_drives(self) -> list[int]:
        return [r for r, d in self.drives.items() if not d["open"] and not d.get("dropped")]

    def drive_positions(self, ref: int) -> list[Position]:
        return [p for r, p in self.positions if r == ref]


@dataclass
class World:
    """Runs the machine against `truth` from T0, as an executor would."""

    truth: Callable[[datetime], Truth]
    feed: Feed = Feed.NONE
    frame_every: float = 5.0
    start: datetime = T0
    state: CarState = field(init=False)
    effects: list[tuple[datetime, fx.Effect]] = field(default_factory=list)
    events: list[tuple[datetime, Event]] = field(default_factory=list)
    log: Logbook = field(default_factory=Logbook)
    full_calls: list[datetime] = field(default_factory=list)
    full_to_sleeping: int = 0
    fetch_at: datetime | None = None
    fetch_kind: FetchKind | None = None
    timers: dict[TimerKind, datetime] = field(default_factory=dict)
    stream_on: bool = False
    next_frame: datetime | None = None
    now: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.state = CarState(VIN, feed=self.feed)
        self.now = self.start
        self.feed_event(Boot())

    def feed_event(self, event: Event) -> None:
        self.events.append((self.now, event))
        self.state, out = step(self.state, event, self.now)
        for e in out:
            self.effects.append((self.now, e))
            self.log.apply(e)
            match e:
                case fx.ScheduleFetch(kind=kind, at=at):
                    self.fetch_at, self.fetch_kind = at, kind
                case fx.SetTimer(timer=timer, at=at):
                    self.timers[timer] = at
                case fx.CancelTimer(timer=timer):
                    self.timers.pop(timer, None)
                case fx.ConnectStream():
                    self.stream_on = True
                case fx.DisconnectStream():
                    self.stream_on = False
                case _:
                    pass
        connected = isinstance(event, Boot) or any(isinstance(e, fx.ConnectStream) for e in out)
        if connected and (self.stream_on or self.feed is Feed.TELEMETRY):
            self.events.append((self.now, StreamConnected()))
            self.state, more = step(self.state, StreamConnected(), self.now)
            for e in more:
                self.effects.append((self.now, e))
                self.log.apply(e)

    def _frames_flowing(self) -> bool:
        if self.feed is Feed.NONE:
            return False
        if self.feed is Feed.STREAM and not self.stream_on:
            return False
        return self.truth(self.now).connectivity is Connectivity.ONLINE

    def run(self, until: datetime) -> None:
        while True:
            candidates: list[tuple[datetime, str]] = []
            if self.fetch_at is not None:
                candidates.append((self.fetch_at, "fetch"))
            for kind, at in self.timers.items():
                candidates.append((at, f"timer:{kind.value}"))
            if self.feed is not Feed.NONE:
                nxt = self.now + timedelta(seconds=self.frame_every)
                if self.next_frame is None or self.next_frame < self.now:
                    self.next_frame = nxt
                candidates.append((self.next_frame, "frame"))
            at, what = min(candidates)
            if at > until:
                self.now = until
                return
            self.now = max(at, self.now)
            if what == "fetch":
                kind = self.fetch_kind
                self.fetch_at = self.fetch_kind = None
                self.feed_event(self._answer(kind))
            elif what.startswith("timer:"):
                timer = TimerKind(what.split(":", 1)[1])
                del self.timers[timer]
                self.feed_event(TimerFired(timer))
            else:
                self.next_frame = self.now + timedelta(seconds=self.frame_every)
                if self._frames_flowing():
                    self.feed_event(self._frame())

    def _answer(self, kind: FetchKind | None) -> Event:
        t = self.truth(self.now)
        if kind is FetchKind.FULL:
            self.full_calls.append(self.now)
            if t.connectivity is not Connectivity.ONLINE:
                self.full_to_sleeping += 1
                return FetchFailed(FetchKind.FULL, FetchError.ASLEEP)
            return FetchedFull(Observation(VIN, self.now, Source.REST, t.state))
        return light(self.now, t.connectivity)

    def _frame(self) -> Observed:
        s = self.truth(self.now).state
        if self.feed is Feed.STREAM:
            frame = VehicleState(
                latitude=s.latitude,
                longitude=s.longitude,
                speed_kmh=s.speed_kmh,
                power_kw=s.power_kw,
                odometer_km=s.odometer_km,
                battery_level=s.battery_level,
                shift_state=s.shift_state,
                elevation_m=s.elevation_m,
            )
            return Observed(Observation(VIN, self.now, Source.STREAM, frame), full_frame=True)
        tele = replace(
            s, connectivity=None, car_version=None, car_type=None, shift_state=s.shift_state or "P"
        )
        return Observed(Observation(VIN, self.now, Source.TELEMETRY, tele))

    def of_type(self, cls: type) -> list[fx.Effect]:
        return [e for _, e in self.effects if isinstance(e, cls)]
