"""The live summary a car publishes (TeslaMate's Summary: MQTT topics, web app)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from fleetlog.model.observation import NOT_SCHEDULED, ActiveRoute
from fleetlog.model.units import KM_PER_MILE
from fleetlog.vehicle.phase import Phase
from fleetlog.vehicle.settings import Feed

if TYPE_CHECKING:
    from fleetlog.vehicle.machine import CarState

_UPDATE_PENDING = frozenset(
    {"available", "downloading", "downloading_wifi_wait", "scheduled", "installing"}
)


def public_state(state: CarState) -> str:
    """The ``state`` value users see: TeslaMate's names, ``unavailable`` before any data."""
    if state.phase is Phase.START and not state.seen:
        return "unavailable"
    if state.phase is Phase.DRIVING and state.link_lost:
        return "offline"
    return state.phase.value


def _route(route: ActiveRoute | None) -> dict[str, Any] | None:
    """The route as the publisher reads it (TeslaMate's fields, miles as the car says them)."""
    if route is None or route.destination is None:
        return None
    km = route.km_to_arrival
    return {
        "destination": route.destination,
        "energy_at_arrival": route.energy_at_arrival,
        "miles_to_arrival": None if km is None else round(km / KM_PER_MILE, 2),
        "minutes_to_arrival": route.minutes_to_arrival,
        "traffic_minutes_delay": route.traffic_minutes_delay,
        "latitude": route.latitude,
        "longitude": route.longitude,
    }


def summary(state: CarState) -> dict[str, Any]:
    """The summary dict; keys are TeslaMate's MQTT topic names."""
    s = state.snapshot
    plugged = None
    if s.charging_state is not None:
        plugged = s.charging_state != "Disconnected"
    since: datetime | None = state.since
    scheduled = s.scheduled_charging_start_time
    if scheduled == NOT_SCHEDULED:
        scheduled = None
    return {
        "display_name": s.display_name,
        "state": public_state(state),
        "since": since.isoformat() if since else None,
        "healthy": state.errors == 0,
        # TeslaMate shows the release without the build hash ("2024.8.7", not "2024.8.7 c5c3f0").
        "version": s.car_version.split(" ", 1)[0] if s.car_version else None,
        "update_available": s.update_status in _UPDATE_PENDING,
        "update_version": s.update_version,
        "download_perc": s.update_download_perc,
        "install_perc": s.update_install_perc,
        "service_mode": s.in_service,
        "model": s.car_type,
        "trim_badging": s.trim_badging,
        "exterior_color": s.exterior_color,
        "wheel_type": s.wheel_type,
        "spoiler_type": s.spoiler_type,
        "latitude": s.latitude,
        "longitude": s.longitude,
        "heading": s.heading,
        "elevation": s.elevation_m,
        "speed": s.speed_kmh,
        "power": s.power_kw,
        "shift_state": s.shift_state,
        "odometer": s.odometer_km,
        "active_route": _route(s.active_route),
        "battery_level": s.battery_level,
        "usable_battery_level": s.usable_battery_level,
        "rated_battery_range_km": s.rated_range_km,
        "ideal_battery_range_km": s.ideal_range_km,
        "est_battery_range_km": s.est_range_km,
        "plugged_in": plugged,
        "charging_state": s.charging_state,
        "charge_energy_added": s.charge_energy_added_kwh,
        "charge_limit_soc": s.charge_limit_soc,
        "charger_power": s.charger_power_kw,
        "charger_phases": s.charger_phases,
        "charger_actual_current": s.charger_actual_current,
        "charger_voltage": s.charger_voltage,
        "charge_current_request": s.charge_current_request_a,
        "charge_current_request_max": s.charge_current_request_max_a,
        "scheduled_charging_start_time": scheduled.isoformat() if scheduled else None,
        "charge_port_door_open": s.charge_port_door_open,
        "time_to_full_charge": s.time_to_full_charge_h,
        "outside_temp": s.outside_temp_c,
        "inside_temp": s.inside_temp_c,
        "is_climate_on": s.is_climate_on,
        "is_preconditioning": s.is_preconditioning,
        "climate_keeper_mode": s.climate_keeper_mode,
        "locked": s.locked,
        "sentry_mode": s.sentry_mode,
        "is_user_present": s.is_user_present,
        "doors_open": s.doors_open,
        "driver_front_door_open": s.driver_front_door_open,
        "driver_rear_door_open": s.driver_rear_door_open,
        "passenger_front_door_open": s.passenger_front_door_open,
        "passenger_rear_door_open": s.passenger_rear_door_open,
        "windows_open": s.windows_open,
        "driver_front_window_open": s.driver_front_window_open,
        "driver_rear_window_open": s.driver_rear_window_open,
        "passenger_front_window_open": s.passenger_front_window_open,
        "passenger_rear_window_open": s.passenger_rear_window_open,
        "trunk_open": s.trunk_open,
        "frunk_open": s.frunk_open,
        "sun_roof_installed": s.sun_roof_installed,
        "sun_roof_state": s.sun_roof_state,
        "sun_roof_percent_open": s.sun_roof_percent_open,
        "center_display_state": s.center_display_state,
        "tpms_pressure_fl": s.tpms_pressure_fl_bar,
        "tpms_pressure_fr": s.tpms_pressure_fr_bar,
        "tpms_pressure_rl": s.tpms_pressure_rl_bar,
        "tpms_pressure_rr": s.tpms_pressure_rr_bar,
        "tpms_soft_warning_fl": s.tpms_soft_warning_fl,
        "tpms_soft_warning_fr": s.tpms_soft_warning_fr,
        "tpms_soft_warning_rl": s.tpms_soft_warning_rl,
        "tpms_soft_warning_rr": s.tpms_soft_warning_rr,
        # fleetlog's own keys (not TeslaMate's): how pushed data reaches this car.
        "feed": state.feed.value,
        "telemetry_connected": state.feed is not Feed.NONE and state.stream_up,
    }
