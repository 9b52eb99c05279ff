"""What the car machine is told, not what it decides: per-car settings, timing, feed.

``CarSettings`` mirrors TeslaMate's ``car_settings`` columns and defaults.
``Timing`` holds the polling intervals (from the POLLING_* variables) and the
fixed constants of reference §5.7. ``Feed`` says which pushed source, if any,
the worker runs for this car.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CarSettings:
    """One ``car_settings`` row (minutes are minutes, as in the table)."""

    suspend_min: int = 21
    suspend_after_idle_min: int = 15
    req_not_unlocked: bool = False
    free_supercharging: bool = False
    use_streaming_api: bool = True
    enabled: bool = True
    lfp_battery: bool = False


class Feed(StrEnum):
    """The pushed data a car has besides REST polling."""

    NONE = "none"
    """Polling only: the vehicle list watches sleep, ``vehicle_data`` does the rest."""
    STREAM = "stream"
    """The legacy streaming websocket (or MyTeslaMate's telemetry bridge to it): drive
    fields only — shift, speed, power, odometer, SoC, location, elevation, range. The
    worker connects it when the machine says so."""
    TELEMETRY = "telemetry"
    """Fleet Telemetry or an SSE stream: drive, charge and connectivity records, pushed
    by the car whenever it is awake; always connected, never asked for."""


class _PollingSettings(Protocol):
    def polling_interval(self, name: str) -> float: ...


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds, unless the name says otherwise."""

    asleep: float = 30.0
    charging_min: float = 5.0
    driving: float = 2.5
    in_service: float = 60.0
    default: float = 15.0
    minimum: float = 0.0
    start: float = 10.0
    updating: float = 15.0
    position_every: float = 300.0
    drive_timeout_min: float = 15.0
    drive_offline_retry: float = 5.0
    drive_offline_retries: int = 15
    drive_offline_poll: float = 30.0
    charging_offline_poll: float = 10.0
    probe_window: float = 30.0
    stream_idle_min: float = 3.0
    stream_suspend_min: float = 10.0
    # fleetlog's own (beyond TeslaMate): how a pushed feed is backed by REST
    push_quiet_driving: float = 90.0
    push_quiet_charging: float = 600.0
    stream_charging_sample: float = 300.0
    full_refresh_hours: float = 6.0
    push_odometer_wait: float = 60.0  # telemetry parked without an odometer: REST after this
    # Polling only, on a priced API (the budget governor paces paid calls): spend them
    # where they matter. None of these apply on the free Owner API.
    paced: bool = False
    paced_driving: float = 30.0
    paced_charging: float = 180.0
    paced_online: float = 60.0
    paced_watch_gap: float = 300.0  # the sparsest look at an idle car being watched
    paced_watch_min: float = 20.0  # an idle car is watched at least this long (minutes)
    paced_sleep_check_min: float = 16.0  # an idle car is asleep this long after a look

    @classmethod
    def from_settings(cls, settings: _PollingSettings) -> Timing:
        """The intervals TeslaMate users set with POLLING_*; the rest are constants."""
        return cls(
            asleep=settings.polling_interval("asleep"),
            charging_min=settings.polling_interval("charging"),
            driving=settings.polling_interval("driving"),
            in_service=settings.polling_interval("online"),
            default=settings.polling_interval("default"),
            minimum=settings.polling_interval("minimum"),
        )
