"""Everything the machine asks the world to do, as data.

The executor carries effects out in list order. Logbook rows are named by a
*ref*: a small integer the machine allocates per car (``CarState.next_ref``)
and the executor maps to a database id. A ref is never reused for a car, so
"close drive 7" is unambiguous even after a crash-and-resume (the executor
restores refs from open rows and passes them back in the initial state).

Deliberately absent: any wake-up. The machine never wakes a car.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from fleetlog.logbook.records import ChargeSample, Position
from fleetlog.vehicle.events import Command, FetchKind, TimerKind


class StateStatus(StrEnum):
    """The three values of the ``states.state`` enum."""

    ONLINE = "online"
    OFFLINE = "offline"
    ASLEEP = "asleep"


@dataclass(frozen=True, slots=True)
class ScheduleFetch:
    """Fetch at `at`. Replaces any fetch scheduled before and not yet started;
    a fetch in flight finishes first (its result still comes back as an event)."""

    kind: FetchKind
    at: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class InsertPosition:
    position: Position
    drive_ref: int | None = None


@dataclass(frozen=True, slots=True)
class OpenDrive:
    """Insert a ``drives`` row; its first position follows as an InsertPosition.

    ``late`` marks a drive first seen already under way: its start is the last
    parked observation, so distance and energy stay exact.
    """

    ref: int
    start: Position
    late: bool = False


@dataclass(frozen=True, slots=True)
class CloseDrive:
    """Compute the drive's aggregates from its positions (``logbook.aggregates``) and close it."""

    ref: int
    end_date: datetime
    reason: str
    start_km: float | None = None
    end_km: float | None = None
    # False: closed for now, but the machine may yet add the distance it did not see (a drive
    # closed at start-up while the car sleeps): its row stays addressable by `ref`
    final: bool = True


@dataclass(frozen=True, slots=True)
class DropDrive:
    """Delete a phantom drive (< 2 positions or < 0.01 km) and unlink its positions."""

    ref: int
    reason: str


@dataclass(frozen=True, slots=True)
class OpenChargingProcess:
    ref: int
    start_date: datetime
    position: Position | None
    synthesised: bool = False


@dataclass(frozen=True, slots=True)
class AddChargeSample:
    charge_ref: int
    sample: ChargeSample


@dataclass(frozen=True, slots=True)
class MoveChargeStart:
    """Place a charge seen late again: its start and its first sample (the session
    counter's baseline, dated `moved_from`) move to `start_date`."""

    ref: int
    start_date: datetime
    moved_from: datetime


@dataclass(frozen=True, slots=True)
class CloseChargingProcess:
    """Compute the aggregates from the samples and close; recalculate the car's efficiency."""

    ref: int
    end_date: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class StartState:
    """Close the open ``states`` row (if any) at `start` and open a new one, in one transaction."""

    ref: int
    status: StateStatus
    start: datetime
    closes: int | None = None


@dataclass(frozen=True, slots=True)
class EndState:
    ref: int
    end: datetime


@dataclass(frozen=True, slots=True)
class OpenUpdate:
    ref: int
    start_date: datetime
    version: str | None


@dataclass(frozen=True, slots=True)
class CloseUpdate:
    ref: int
    end_date: datetime
    version: str | None


@dataclass(frozen=True, slots=True)
class CancelUpdate:
    """The update went back to "available": the row is deleted, as TeslaMate does."""

    ref: int


@dataclass(frozen=True, slots=True)
class PublishSummary:
    """The live summary for MQTT and the web app (TeslaMate's Summary fields)."""

    summary: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConnectStream:
    pass


@dataclass(frozen=True, slots=True)
class DisconnectStream:
    pass


@dataclass(frozen=True, slots=True)
class SetTimer:
    """(Re)arm the timer of this kind to fire at `at` (one timer per kind)."""

    timer: TimerKind
    at: datetime


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer: TimerKind


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The answer to a user command; `reason` names the blocker when refused."""

    command: Command
    accepted: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Log:
    """A structured log line: a short message and key=value fields."""

    message: str
    level: str = "info"
    fields: dict[str, Any] = field(default_factory=dict)


Effect = (
    ScheduleFetch
    | InsertPosition
    | OpenDrive
    | CloseDrive
    | DropDrive
    | OpenChargingProcess
    | AddChargeSample
    | MoveChargeStart
    | CloseChargingProcess
    | StartState
    | EndState
    | OpenUpdate
    | CloseUpdate
    | CancelUpdate
    | PublishSummary
    | ConnectStream
    | DisconnectStream
    | SetTimer
    | CancelTimer
    | CommandResult
    | Log
)
