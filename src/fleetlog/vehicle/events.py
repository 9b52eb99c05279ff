"""Everything that can happen to a car, as the machine hears it.

Sources turn the outside world into these; the worker feeds them to
:func:`fleetlog.vehicle.machine.step` one at a time, in arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from fleetlog.model.observation import Connectivity, Observation
from fleetlog.vehicle.settings import CarSettings


class FetchKind(StrEnum):
    """The two REST reads the machine asks for; there is no third (no wake)."""

    LIGHT = "light"
    """``GET /vehicles/{id}`` or the vehicle list: connectivity only, free, never wakes."""
    FULL = "full"
    """``vehicle_data``: everything, paid, keeps an awake car awake."""


class FetchError(StrEnum):
    ASLEEP = "asleep"  # 408 from vehicle_data: asleep or offline, the list tells which
    OFFLINE = "offline"
    IN_SERVICE = "in_service"  # 405
    UNAUTHORIZED = "unauthorized"  # 401; the client refreshes tokens
    NOT_FOUND = "not_found"  # 404
    RATE_LIMITED = "rate_limited"  # 429 / EXCEEDED_LIMIT, with retry_at
    BUDGET_LATER = "budget_later"  # the budget governor: "not now, at retry_at"
    TRANSPORT = "transport"  # no answer, or 5xx


class TimerKind(StrEnum):
    POSITION = "position"  # store a position every 5 min while online or charging
    PROBE = "probe"  # the fake-online probe window has passed without a frame


class Command(StrEnum):
    SUSPEND = "suspend_logging"
    RESUME = "resume_logging"


@dataclass(frozen=True, slots=True)
class Boot:
    """The worker started; what the database says was open is in the initial state."""


@dataclass(frozen=True, slots=True)
class Observed:
    """Pushed data: a stream frame, telemetry records, an SSE event.

    ``full_frame`` is true when the source sends every field each time (a legacy
    stream frame): a missing shift state then means "not in gear", not "not said".
    """

    observation: Observation
    full_frame: bool = False


@dataclass(frozen=True, slots=True)
class FetchedFull:
    """A ``vehicle_data`` answer. Its shift state is authoritative: ``None`` is parked."""

    observation: Observation


@dataclass(frozen=True, slots=True)
class FetchedLight:
    """A vehicle-list / ``/vehicles/{id}`` answer: connectivity, name, in-service flag."""

    observation: Observation


@dataclass(frozen=True, slots=True)
class FetchFailed:
    kind: FetchKind
    error: FetchError
    retry_at: datetime | None = None
    detail: str = ""


def budget_later(kind: FetchKind, at: datetime) -> FetchFailed:
    """The budget governor deferred a fetch until `at`."""
    return FetchFailed(kind, FetchError.BUDGET_LATER, retry_at=at)


@dataclass(frozen=True, slots=True)
class CarConnectivity:
    """The car's link as a pushed source reports it.

    Telemetry ``CONNECTED`` → ONLINE, ``DISCONNECTED`` → OFFLINE (asleep or out of
    reach: the free endpoint tells which); the stream's "Vehicle is offline" → OFFLINE.
    """

    connectivity: Connectivity
    at: datetime


@dataclass(frozen=True, slots=True)
class StreamConnected:
    """The pushed feed is up (stream subscribed; telemetry consumer connected)."""


@dataclass(frozen=True, slots=True)
class StreamDisconnected:
    """The pushed feed is gone; REST must cover until it is back."""


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer: TimerKind


@dataclass(frozen=True, slots=True)
class UserCommand:
    command: Command


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    settings: CarSettings


Event = (
    Boot
    | Observed
    | FetchedFull
    | FetchedLight
    | FetchFailed
    | CarConnectivity
    | StreamConnected
    | StreamDisconnected
    | TimerFired
    | UserCommand
    | SettingsChanged
)
