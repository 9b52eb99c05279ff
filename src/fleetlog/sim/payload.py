"""The REST bodies of a car: the vehicle list item and ``vehicle_data``, in the API's units.

Canonical units come in (km, km/h, kWh, °C, bar); the wire's go out (reference §1.7):
ranges and odometer in miles, speed in mph, temperatures °C, TPMS bar, power kW,
timestamps in ms since the epoch (``gps_as_of`` in s). The values do not follow the GUI
unit settings. Latitude and longitude appear only when ``location_data`` is asked for.
"""

from __future__ import annotations

from typing import Any

from fleetlog.sim.car import Car, Snapshot

KM_PER_MILE = 1.609344
ENDPOINTS = (
    "charge_state",
    "climate_state",
    "closures_state",
    "drive_state",
    "gui_settings",
    "location_data",
    "charge_schedule_data",
    "preconditioning_schedule_data",
    "vehicle_config",
    "vehicle_state",
    "vehicle_data_combo",
)
DEFAULT_SECTIONS = (
    "charge_state",
    "climate_state",
    "drive_state",
    "gui_settings",
    "vehicle_config",
    "vehicle_state",
)

JSON = dict[str, Any]


def _mi(km: float) -> float:
    return round(km / KM_PER_MILE, 2)


def _ms(snap: Snapshot) -> int:
    return int(snap.time.timestamp() * 1000)


def vehicle_item(car: Car, snap: Snapshot, user_id: int | None = None) -> JSON:
    """The vehicle object of ``/api/1/vehicles``, ``/products`` and ``/vehicles/{id}``."""
    spec = car.spec
    item: JSON = {
        "id": spec.id,
        "vehicle_id": spec.vehicle_id,
        "vin": spec.vin,
        "color": None,
        "access_type": "OWNER",
        "display_name": spec.display_name,
        "option_codes": None,
        "granular_access": {"hide_private": False},
        "tokens": None,
        "state": snap.state,
        "in_service": snap.in_service,
        "id_s": str(spec.id),
        "calendar_enabled": True,
        "api_version": 81,
        "backseat_token": None,
        "backseat_token_updated_at": None,
        "ble_autopair_enrolled": False,
    }
    if user_id is not None:
        item["user_id"] = user_id
    return item


def vehicle_data(car: Car, snap: Snapshot, sections: set[str], user_id: int) -> JSON:
    """``vehicle_data`` with the requested sections (see :data:`ENDPOINTS`)."""
    body = vehicle_item(car, snap, user_id)
    location = "location_data" in sections
    if "charge_state" in sections:
        body["charge_state"] = _charge_state(car, snap)
    if "climate_state" in sections:
        body["climate_state"] = _climate_state(snap)
    if "drive_state" in sections or location:
        body["drive_state"] = _drive_state(snap, location)
    if "gui_settings" in sections:
        body["gui_settings"] = _gui_settings(car, snap)
    if "vehicle_config" in sections:
        body["vehicle_config"] = _vehicle_config(car, snap)
    if "vehicle_state" in sections or "closures_state" in sections:
        state = _closures(snap)
        if "vehicle_state" in sections:
            state = {**_vehicle_state(car, snap), **state}
        body["vehicle_state"] = state
    if "charge_schedule_data" in sections:
        body["charge_schedule_data"] = {
            "charge_schedules": [],
            "charge_schedule_window": None,
            "timestamp": _ms(snap),
        }
    if "preconditioning_schedule_data" in sections:
        body["preconditioning_schedule_data"] = {
            "preconditioning_schedules": [],
            "timestamp": _ms(snap),
        }
    return body


def _charge_state(car: Car, s: Snapshot) -> JSON:
    spec = car.spec
    scheduled = s.scheduled_charging_start
    return {
        "battery_level": round(s.battery_level),
        "usable_battery_level": round(s.usable_battery_level),
        "battery_range": _mi(s.rated_range_km),
        "est_battery_range": _mi(s.est_range_km),
        "ideal_battery_range": _mi(s.ideal_range_km),
        "charging_state": s.charging_state,
        "charge_energy_added": round(s.charge_energy_added_kwh, 2),
        "charge_miles_added_rated": _mi(s.charge_energy_added_kwh * 1000 / spec.rated_wh_per_km),
        "charge_miles_added_ideal": _mi(s.charge_energy_added_kwh * 1000 / spec.ideal_wh_per_km),
        "charger_power": round(s.charger_power_kw),
        "charger_voltage": round(s.charger_voltage_v),
        "charger_actual_current": round(s.charger_actual_current_a),
        "charger_pilot_current": round(s.charger_pilot_current_a),
        "charger_phases": s.charger_phases,
        "charge_amps": round(s.charger_pilot_current_a) or 16,
        "charge_current_request": round(s.charger_pilot_current_a) or 16,
        "charge_current_request_max": round(s.charger_pilot_current_a) or 16,
        "charge_enable_request": True,
        "user_charge_enable_request": None,
        "fast_charger_present": s.fast_charger_present,
        "fast_charger_type": s.fast_charger_type,
        "fast_charger_brand": s.fast_charger_brand,
        "conn_charge_cable": s.conn_charge_cable,
        "time_to_full_charge": round(s.time_to_full_charge_h, 2),
        "minutes_to_full_charge": round(s.time_to_full_charge_h * 60),
        "charge_rate": round(s.charge_rate_kmh / KM_PER_MILE, 1),
        "charge_limit_soc": round(s.charge_limit_soc),
        "charge_limit_soc_min": 50,
        "charge_limit_soc_max": 100,
        "charge_limit_soc_std": 90,
        "charge_port_door_open": s.charge_port_door_open,
        "charge_port_latch": s.charge_port_latch,
        "charge_port_cold_weather_mode": s.battery_temp_c < 0,
        "battery_heater_on": s.battery_heater_on,
        "not_enough_power_to_heat": None,
        "scheduled_charging_mode": "StartAt" if scheduled is not None else "Off",
        "scheduled_charging_pending": s.scheduled_charging_pending,
        "scheduled_charging_start_time": int(scheduled.timestamp())
        if scheduled is not None
        else None,
        "scheduled_departure_time": None,
        "off_peak_charging_enabled": False,
        "preconditioning_enabled": s.is_preconditioning,
        "trip_charging": s.fast_charger_present,
        "supercharger_session_trip_planner": False,
        "managed_charging_active": False,
        "managed_charging_start_time": None,
        "managed_charging_user_canceled": False,
        "timestamp": _ms(s),
    }


def _climate_state(s: Snapshot) -> JSON:
    return {
        "inside_temp": round(s.inside_temp_c, 1),
        "outside_temp": round(s.outside_temp_c, 1),
        "is_climate_on": s.is_climate_on,
        "is_auto_conditioning_on": s.is_climate_on,
        "is_preconditioning": s.is_preconditioning,
        "driver_temp_setting": 21.0,
        "passenger_temp_setting": 21.0,
        "fan_status": 3 if s.is_climate_on else 0,
        "battery_heater": s.battery_heater_on,
        "battery_heater_no_power": None,
        "climate_keeper_mode": s.climate_keeper_mode,
        "defrost_mode": 0,
        "is_front_defroster_on": False,
        "is_rear_defroster_on": False,
        "cabin_overheat_protection": "On",
        "seat_heater_left": 1 if s.is_climate_on and s.outside_temp_c < 5 else 0,
        "seat_heater_right": 0,
        "steering_wheel_heater": s.is_climate_on and s.outside_temp_c < 5,
        "min_avail_temp": 15.0,
        "max_avail_temp": 28.0,
        "timestamp": _ms(s),
    }


def _drive_state(s: Snapshot, location: bool) -> JSON:
    speed = None if s.speed_kmh is None else round(s.speed_kmh / KM_PER_MILE)
    body: JSON = {
        "heading": round(s.heading_deg) % 360,
        "speed": speed,
        "power": round(s.power_kw),
        "shift_state": s.shift_state,
        "timestamp": _ms(s),
        "active_route_destination": s.route_destination,
        "active_route_miles_to_arrival": None
        if s.route_remaining_km is None
        else _mi(s.route_remaining_km),
        "active_route_minutes_to_arrival": None,
        "active_route_energy_at_arrival": None,
        "active_route_traffic_minutes_delay": 0 if s.route_destination is not None else None,
    }
    if location:
        body.update(
            {
                "latitude": round(s.position.lat, 6),
                "longitude": round(s.position.lng, 6),
                "native_latitude": round(s.position.lat, 6),
                "native_longitude": round(s.position.lng, 6),
                "native_location_supported": 1,
                "native_type": "wgs",
                "gps_as_of": int(s.time.timestamp()),
            }
        )
    return body


def _gui_settings(car: Car, s: Snapshot) -> JSON:
    eu = car.spec.region == "eu"
    return {
        "gui_distance_units": "km/hr" if eu else "mi/hr",
        "gui_temperature_units": "C" if eu else "F",
        "gui_charge_rate_units": "kW",
        "gui_range_display": "Rated",
        "gui_24_hour_time": eu,
        "gui_tirepressure_units": "Bar" if eu else "Psi",
        "show_range_units": False,
        "timestamp": _ms(s),
    }


def _vehicle_config(car: Car, s: Snapshot) -> JSON:
    spec = car.spec
    eu = spec.region == "eu"
    return {
        "car_type": spec.car_type,
        "trim_badging": spec.trim_badging,
        "exterior_color": spec.exterior_color,
        "wheel_type": spec.wheel_type,
        "roof_color": "RoofColorGlass",
        "charge_port_type": "CCS" if eu else "US",
        "eu_vehicle": eu,
        "rhd": False,
        "car_special_type": "base",
        "efficiency_package": "Default",
        "has_air_suspension": spec.car_type in ("models", "modelx"),
        "motorized_charge_port": True,
        "plg": True,
        "rear_seat_heaters": 1,
        "third_row_seats": "None",
        "spoiler_type": "None",
        "sun_roof_installed": 0,  # 0 = none (glass roof); 1, 2 = kinds of sun roof
        "key_version": 2,
        "utc_offset": 3600 if eu else -25200,
        "timestamp": _ms(s),
    }


def _closures(s: Snapshot) -> JSON:
    door = 1 if s.doors_open else 0
    return {
        "locked": s.locked,
        "df": door,
        "dr": 0,
        "pf": 0,
        "pr": 0,
        "ft": 0,
        "rt": 0,
        "fd_window": 0,
        "fp_window": 0,
        "rd_window": 0,
        "rp_window": 0,
        # a glass roof without a sun roof: TeslaMate's sun roof keys, as such cars send them
        "sun_roof_state": "unknown",
        "sun_roof_percent_open": 0,
    }


def _vehicle_state(car: Car, s: Snapshot) -> JSON:
    u = s.software_update
    seen = int(s.tpms_last_seen.timestamp())
    fl, fr, rl, rr = s.tpms_bar
    return {
        "api_version": 81,
        "odometer": round(s.odometer_km / KM_PER_MILE, 6),
        "car_version": s.car_version,
        "sentry_mode": s.sentry_mode,
        "sentry_mode_available": True,
        "is_user_present": s.user_present,
        "center_display_state": 2 if s.user_present else 0,
        "software_update": {
            "status": u.status,
            "version": u.version or " ",
            "download_perc": u.download_perc,
            "install_perc": u.install_perc if u.status == "installing" else 1,
            "expected_duration_sec": u.expected_duration_s or 2700,
            "scheduled_time_ms": 0,
            "warning_time_remaining_ms": 0,
        },
        "speed_limit_mode": {
            "active": False,
            "current_limit_mph": 85.0,
            "max_limit_mph": 120,
            "min_limit_mph": 50,
            "pin_code_set": False,
        },
        "tpms_pressure_fl": fl,
        "tpms_pressure_fr": fr,
        "tpms_pressure_rl": rl,
        "tpms_pressure_rr": rr,
        "tpms_last_seen_pressure_time_fl": seen,
        "tpms_last_seen_pressure_time_fr": seen,
        "tpms_last_seen_pressure_time_rl": seen,
        "tpms_last_seen_pressure_time_rr": seen,
        "tpms_soft_warning_fl": False,
        "tpms_soft_warning_fr": False,
        "tpms_soft_warning_rl": False,
        "tpms_soft_warning_rr": False,
        "tpms_hard_warning_fl": False,
        "tpms_hard_warning_fr": False,
        "tpms_hard_warning_rl": False,
        "tpms_hard_warning_rr": False,
        "vehicle_name": car.spec.display_name,
        "valet_mode": False,
        "service_mode": s.in_service,
        "service_mode_plus": False,
        "homelink_nearby": False,
        "remote_start": False,
        "media_info": {
            "media_playback_status": "Stopped",
            "now_playing_source": "Spotify",
            "audio_volume": 2.3,
        },
        "timestamp": _ms(s),
    }
