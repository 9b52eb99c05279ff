"""Ground truth: what really happened to each car, to score a logger against.

The car model writes here as it advances; nothing here is derived from the API's view.
Times are UTC; distances km; energy kWh; power kW; SoC percent (float, not rounded).
An entry that is still open at the time of the report has `end: null`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from fleetlog.sim.geo import Point

JSON = dict[str, Any]


def iso(t: datetime | None) -> str | None:
    """ISO 8601 with a Z suffix, or None."""
    return None if t is None else t.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class DriveTruth:
    start: datetime
    end: datetime | None
    route: str
    start_point: Point
    end_point: Point | None
    path: tuple[Point, ...]
    odometer_start_km: float
    odometer_end_km: float | None
    soc_start: float
    soc_end: float | None
    energy_used_kwh: float
    max_speed_kmh: float
    ended_offline: bool = False

    @property
    def distance_km(self) -> float | None:
        if self.odometer_end_km is None:
            return None
        return self.odometer_end_km - self.odometer_start_km

    def to_json(self) -> JSON:
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "route": self.route,
            "start_position": [self.start_point.lat, self.start_point.lng],
            "end_position": None
            if self.end_point is None
            else [self.end_point.lat, self.end_point.lng],
            "path": [[p.lat, p.lng] for p in self.path],
            "odometer_start_km": round(self.odometer_start_km, 4),
            "odometer_end_km": None
            if self.odometer_end_km is None
            else round(self.odometer_end_km, 4),
            "distance_km": None if self.distance_km is None else round(self.distance_km, 4),
            "soc_start": round(self.soc_start, 4),
            "soc_end": None if self.soc_end is None else round(self.soc_end, 4),
            "energy_used_kwh": round(self.energy_used_kwh, 4),
            "max_speed_kmh": round(self.max_speed_kmh, 2),
            "ended_offline": self.ended_offline,
        }


@dataclass(frozen=True, slots=True)
class ChargeTruth:
    kind: str  # "ac" | "dc"
    place: str
    position: Point
    plugged_at: datetime
    start: datetime | None  # first energy into the battery
    end: datetime | None  # last energy into the battery
    unplugged_at: datetime | None
    soc_start: float
    soc_end: float
    energy_added_kwh: float  # into the battery
    energy_from_grid_kwh: float
    peak_kw: float
    started_offline: bool = False

    def to_json(self) -> JSON:
        return {
            "kind": self.kind,
            "place": self.place,
            "position": [self.position.lat, self.position.lng],
            "plugged_at": iso(self.plugged_at),
            "start": iso(self.start),
            "end": iso(self.end),
            "unplugged_at": iso(self.unplugged_at),
            "soc_start": round(self.soc_start, 4),
            "soc_end": round(self.soc_end, 4),
            "energy_added_kwh": round(self.energy_added_kwh, 4),
            "energy_from_grid_kwh": round(self.energy_from_grid_kwh, 4),
            "peak_kw": round(self.peak_kw, 2),
            "started_offline": self.started_offline,
        }


@dataclass(frozen=True, slots=True)
class StateSpan:
    """An interval in which the API reported one `state`: online, asleep or offline."""

    state: str
    start: datetime
    end: datetime | None

    def to_json(self) -> JSON:
        return {"state": self.state, "start": iso(self.start), "end": iso(self.end)}


@dataclass(frozen=True, slots=True)
class UpdateTruth:
    version_from: str
    version_to: str
    available_at: datetime
    install_start: datetime | None
    install_end: datetime | None

    def to_json(self) -> JSON:
        return {
            "version_from": self.version_from,
            "version_to": self.version_to,
            "available_at": iso(self.available_at),
            "install_start": iso(self.install_start),
            "install_end": iso(self.install_end),
        }


@dataclass(slots=True)
class CarLog:
    """One car's ground truth, appended to by the car model. The last entry may be open."""

    drives: list[DriveTruth] = field(default_factory=list)
    charges: list[ChargeTruth] = field(default_factory=list)
    states: list[StateSpan] = field(default_factory=list)
    updates: list[UpdateTruth] = field(default_factory=list)

    def state_at(self, t: datetime) -> str | None:
        """The API state at `t`, from the recorded spans."""
        for span in reversed(self.states):
            if span.start <= t and (span.end is None or t < span.end):
                return span.state
        return None

    def enter_state(self, state: str, t: datetime) -> None:
        if self.states and self.states[-1].end is None:
            if self.states[-1].state == state:
                return
            self.states[-1] = replace(self.states[-1], end=t)
        self.states.append(StateSpan(state, t, None))

    def seconds_in(self, state: str, start: datetime, end: datetime) -> float:
        """How long the car was in `state` between `start` and `end` (open spans run to `end`)."""
        total = 0.0
        for span in self.states:
            if span.state != state:
                continue
            lo = max(span.start, start)
            hi = min(span.end or end, end)
            if hi > lo:
                total += (hi - lo).total_seconds()
        return total

    def to_json(self) -> JSON:
        return {
            "drives": [d.to_json() for d in self.drives],
            "charges": [c.to_json() for c in self.charges],
            "states": [s.to_json() for s in self.states],
            "updates": [u.to_json() for u in self.updates],
        }
