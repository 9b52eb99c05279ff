"""Observations: the one vocabulary every source speaks.

An observation is a timestamped, *partial* vehicle state in canonical units,
stamped with the source's own time (not arrival time). ``None`` means "this
source did not say", never "zero". Sources convert at their edge; the car
machine only ever sees :class:`VehicleState` values merged from observations,
and never knows whether a value came from REST, a websocket frame, a telemetry
record or a CSV row.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final


class Source(StrEnum):
    """Where an observation came from (for provenance, never for logic)."""

    REST = "rest"
    STREAM = "stream"
    TELEMETRY = "telemetry"
    SSE = "sse"
    IMPORT = "import"


class Connectivity(StrEnum):
    """The car's link to Tesla's cloud as the vehicle list and telemetry report it."""

    ONLINE = "online"
    ASLEEP = "asleep"
    OFFLINE = "offline"


SHIFT_STATES = frozenset({"P", "R", "N", "D"})
CHARGING_STATES = frozenset(
    {"Disconnected", "NoPower", "Starting", "Charging", "Complete", "Stopped"}
)

#: ``scheduled_charging_start_time`` when the car reports that no charge is scheduled
#: (``None`` would mean "not reported" and keep an old schedule after it was removed).
NOT_SCHEDULED: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ActiveRoute:
    """The car's navigation route as the car reports it; ``destination`` None = no route.

    One value, so that a route that ended replaces the whole route (a field-wise merge
    would keep the old destination). Distance in km; energy at arrival in % of battery.
    """

    destination: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    energy_at_arrival: float | None = None
    km_to_arrival: float | None = None
    minutes_to_arrival: float | None = None
    traffic_minutes_delay: float | None = None


#: The car said it has no route.
NO_ROUTE: Final = ActiveRoute()


@dataclass(frozen=True, slots=True)
class VehicleState:
    """Everything fleetlog tracks about a car, each field optional, canonical units."""

    # connectivity and identity
    connectivity: Connectivity | None = None
    car_version: str | None = None
    display_name: str | None = None
    in_service: bool | None = None
    # drive
    latitude: float | None = None
    longitude: float | None = None
    heading: int | None = None
    elevation_m: float | None = None
    speed_kmh: float | None = None
    power_kw: float | None = None
    shift_state: str | None = None  # "P" | "R" | "N" | "D"; None = unknown
    odometer_km: float | None = None
    active_route: ActiveRoute | None = None  # NO_ROUTE when the car reports none
    # battery and range
    battery_level: int | None = None
    usable_battery_level: int | None = None
    rated_range_km: float | None = None
    ideal_range_km: float | None = None
    est_range_km: float | None = None
    # charging
    charging_state: str | None = None
    charge_energy_added_kwh: float | None = None
    charger_power_kw: float | None = None
    charger_voltage: int | None = None
    charger_actual_current: int | None = None
    charger_pilot_current: int | None = None
    charger_phases: int | None = None
    charge_limit_soc: int | None = None
    charge_current_request_a: int | None = None
    charge_current_request_max_a: int | None = None
    scheduled_charging_start_time: datetime | None = None  # NOT_SCHEDULED when none
    fast_charger_present: bool | None = None
    fast_charger_type: str | None = None
    fast_charger_brand: str | None = None
    conn_charge_cable: str | None = None
    charge_port_door_open: bool | None = None
    time_to_full_charge_h: float | None = None
    battery_heater_on: bool | None = None
    not_enough_power_to_heat: bool | None = None
    # climate
    inside_temp_c: float | None = None
    outside_temp_c: float | None = None
    is_climate_on: bool | None = None
    is_preconditioning: bool | None = None
    driver_temp_setting_c: float | None = None
    passenger_temp_setting_c: float | None = None
    fan_status: int | None = None
    is_front_defroster_on: bool | None = None
    is_rear_defroster_on: bool | None = None
    battery_heater: bool | None = None
    battery_heater_no_power: bool | None = None
    climate_keeper_mode: str | None = None
    # body
    locked: bool | None = None
    sentry_mode: bool | None = None
    is_user_present: bool | None = None
    doors_open: bool | None = None
    driver_front_door_open: bool | None = None
    driver_rear_door_open: bool | None = None
    passenger_front_door_open: bool | None = None
    passenger_rear_door_open: bool | None = None
    windows_open: bool | None = None
    driver_front_window_open: bool | None = None
    driver_rear_window_open: bool | None = None
    passenger_front_window_open: bool | None = None
    passenger_rear_window_open: bool | None = None
    trunk_open: bool | None = None
    frunk_open: bool | None = None
    sun_roof_installed: bool | None = None
    sun_roof_state: str | None = None  # the car's word: "unknown", "closed", "open", "vent" …
    sun_roof_percent_open: int | None = None
    center_display_state: int | None = None
    tpms_pressure_fl_bar: float | None = None
    tpms_pressure_fr_bar: float | None = None
    tpms_pressure_rl_bar: float | None = None
    tpms_pressure_rr_bar: float | None = None
    tpms_soft_warning_fl: bool | None = None
    tpms_soft_warning_fr: bool | None = None
    tpms_soft_warning_rl: bool | None = None
    tpms_soft_warning_rr: bool | None = None
    # software update
    update_status: str | None = None  # "" | available | scheduled | downloading | installing …
    update_version: str | None = None
    update_download_perc: int | None = None
    update_install_perc: int | None = None
    # configuration (rarely changes)
    car_type: str | None = None
    trim_badging: str | None = None
    exterior_color: str | None = None
    wheel_type: str | None = None
    spoiler_type: str | None = None

    def merged(self, newer: VehicleState) -> VehicleState:
        """This state updated with every value `newer` states (``None`` leaves ours)."""
        changes = {
            f.name: value
            for f in fields(newer)
            if (value := getattr(newer, f.name)) is not None and value != getattr(self, f.name)
        }
        return replace(self, **changes) if changes else self

    def known(self) -> dict[str, Any]:
        """The fields that are set, by name."""
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not None}


@dataclass(frozen=True, slots=True)
class Observation:
    """What one source said about one car at one instant (the source's own time, UTC)."""

    vin: str
    at: datetime
    source: Source
    state: VehicleState

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("an observation's time must be timezone-aware UTC")
