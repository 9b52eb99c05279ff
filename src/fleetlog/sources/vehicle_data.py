"""`vehicle_data` and vehicle-list responses → observations.

The REST payload speaks miles, mph, °C, bar, kW and millisecond timestamps
(reference §1.7). This module is the edge where that becomes fleetlog's
canonical vocabulary; nothing past it sees a mile.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fleetlog.model import units
from fleetlog.model.observation import (
    CHARGING_STATES,
    NO_ROUTE,
    NOT_SCHEDULED,
    SHIFT_STATES,
    ActiveRoute,
    Connectivity,
    Observation,
    Source,
    VehicleState,
)


class PayloadError(ValueError):
    """A REST payload that cannot be read; the message names the field and an excerpt."""


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PayloadError(f"{name}: expected an object, got {type(value).__name__}")
    return value


def _text(value: object) -> str | None:
    if value is None or value == "" or value == "<invalid>":
        return None
    return str(value)


def _open(*flags: object) -> bool | None:
    """True when any door/window flag is non-zero; None when none is reported."""
    known = [units.number(f) for f in flags if f is not None]
    known_values = [k for k in known if k is not None]
    if not known_values:
        return None
    return any(k != 0 for k in known_values)


def _route(drive: Mapping[str, Any]) -> ActiveRoute | None:
    """The navigation route; :data:`NO_ROUTE` when drive_state came without a destination."""
    if not drive:
        return None
    destination = _text(drive.get("active_route_destination"))
    if destination is None:
        return NO_ROUTE
    return ActiveRoute(
        destination=destination,
        latitude=units.number(drive.get("active_route_latitude")),
        longitude=units.number(drive.get("active_route_longitude")),
        energy_at_arrival=units.number(drive.get("active_route_energy_at_arrival")),
        km_to_arrival=units.miles_to_km(drive.get("active_route_miles_to_arrival")),
        minutes_to_arrival=units.number(drive.get("active_route_minutes_to_arrival")),
        traffic_minutes_delay=units.number(drive.get("active_route_traffic_minutes_delay")),
    )


def _scheduled_start(charge: Mapping[str, Any]) -> datetime | None:
    """When scheduled charging starts (epoch s); :data:`NOT_SCHEDULED` when the car says none."""
    if not charge:
        return None
    return units.from_epoch_s(charge.get("scheduled_charging_start_time")) or NOT_SCHEDULED


def connectivity(value: object) -> Connectivity | None:
    """The list's `state` as :class:`Connectivity` (``None`` for unknown values)."""
    try:
        return Connectivity(str(value))
    except ValueError:
        return None


def observation_from_vehicle_data(
    payload: Mapping[str, Any], *, received_at: datetime
) -> Observation:
    """Read the `response` object of `vehicle_data` into an :class:`Observation`.

    The observation's time is the car's own (`drive_state.timestamp`, else the
    newest section timestamp); `received_at` is used only when the car gave none.
    """
    try:
        return _read(payload, received_at)
    except units.UnitError as exc:
        raise PayloadError(f"vehicle_data: {exc}") from None
    except (TypeError, AttributeError) as exc:
        raise PayloadError(f"vehicle_data: unexpected shape ({exc})") from None


def _read(p: Mapping[str, Any], received_at: datetime) -> Observation:
    if not isinstance(p, Mapping):
        raise PayloadError("vehicle_data: the response is not an object")
    vin = p.get("vin")
    if not isinstance(vin, str) or not vin:
        raise PayloadError("vehicle_data: no vin in the response")
    charge = _section(p, "charge_state")
    climate = _section(p, "climate_state")
    drive = _section(p, "drive_state")
    vstate = _section(p, "vehicle_state")
    config = _section(p, "vehicle_config")
    update = _section(vstate, "software_update")

    stamps = [
        t
        for t in (units.from_epoch_ms(s.get("timestamp")) for s in (drive, charge, climate, vstate))
        if t is not None
    ]
    at = units.from_epoch_ms(drive.get("timestamp")) or (max(stamps) if stamps else received_at)

    shift = _text(drive.get("shift_state"))
    charging_state = _text(charge.get("charging_state"))
    phases = units.integer(charge.get("charger_phases"))
    state = VehicleState(
        connectivity=connectivity(p.get("state")),
        car_version=_text(vstate.get("car_version")),
        display_name=_text(p.get("display_name")) or _text(vstate.get("vehicle_name")),
        in_service=units.boolean(p.get("in_service")),
        latitude=units.number(drive.get("latitude")),
        longitude=units.number(drive.get("longitude")),
        heading=units.integer(drive.get("heading")),
        speed_kmh=units.mph_to_kmh(drive.get("speed")),
        power_kw=units.number(drive.get("power")),
        shift_state=shift if shift in SHIFT_STATES else None,
        odometer_km=units.miles_to_km(vstate.get("odometer")),
        active_route=_route(drive),
        battery_level=units.integer(charge.get("battery_level")),
        usable_battery_level=units.integer(charge.get("usable_battery_level")),
        rated_range_km=units.miles_to_km(charge.get("battery_range")),
        ideal_range_km=units.miles_to_km(charge.get("ideal_battery_range")),
        est_range_km=units.miles_to_km(charge.get("est_battery_range")),
        charging_state=charging_state if charging_state in CHARGING_STATES else None,
        charge_energy_added_kwh=units.number(charge.get("charge_energy_added")),
        charger_power_kw=units.number(charge.get("charger_power")),
        charger_voltage=units.integer(charge.get("charger_voltage")),
        charger_actual_current=units.integer(charge.get("charger_actual_current")),
        charger_pilot_current=units.integer(charge.get("charger_pilot_current")),
        charger_phases=phases if phases else None,
        charge_limit_soc=units.integer(charge.get("charge_limit_soc")),
        charge_current_request_a=units.integer(charge.get("charge_current_request")),
        charge_current_request_max_a=units.integer(charge.get("charge_current_request_max")),
        scheduled_charging_start_time=_scheduled_start(charge),
        fast_charger_present=units.boolean(charge.get("fast_charger_present")),
        fast_charger_type=_text(charge.get("fast_charger_type")),
        fast_charger_brand=_text(charge.get("fast_charger_brand")),
        conn_charge_cable=_text(charge.get("conn_charge_cable")),
        charge_port_door_open=units.boolean(charge.get("charge_port_door_open")),
        time_to_full_charge_h=units.number(charge.get("time_to_full_charge")),
        battery_heater_on=units.boolean(charge.get("battery_heater_on")),
        not_enough_power_to_heat=units.boolean(charge.get("not_enough_power_to_heat")),
        inside_temp_c=units.number(climate.get("inside_temp")),
        outside_temp_c=units.number(climate.get("outside_temp")),
        is_climate_on=units.boolean(climate.get("is_climate_on")),
        is_preconditioning=units.boolean(climate.get("is_preconditioning")),
        driver_temp_setting_c=units.number(climate.get("driver_temp_setting")),
        passenger_temp_setting_c=units.number(climate.get("passenger_temp_setting")),
        fan_status=units.integer(climate.get("fan_status")),
        is_front_defroster_on=units.boolean(climate.get("is_front_defroster_on")),
        is_rear_defroster_on=units.boolean(climate.get("is_rear_defroster_on")),
        battery_heater=units.boolean(climate.get("battery_heater")),
        battery_heater_no_power=units.boolean(climate.get("battery_heater_no_power")),
        climate_keeper_mode=_text(climate.get("climate_keeper_mode")),
        locked=units.boolean(vstate.get("locked")),
        sentry_mode=units.boolean(vstate.get("sentry_mode")),
        is_user_present=units.boolean(vstate.get("is_user_present")),
        doors_open=_open(vstate.get("df"), vstate.get("dr"), vstate.get("pf"), vstate.get("pr")),
        windows_open=_open(
            vstate.get("fd_window"),
            vstate.get("fp_window"),
            vstate.get("rd_window"),
            vstate.get("rp_window"),
        ),
        driver_front_door_open=_open(vstate.get("df")),
        driver_rear_door_open=_open(vstate.get("dr")),
        passenger_front_door_open=_open(vstate.get("pf")),
        passenger_rear_door_open=_open(vstate.get("pr")),
        driver_front_window_open=_open(vstate.get("fd_window")),
        driver_rear_window_open=_open(vstate.get("rd_window")),
        passenger_front_window_open=_open(vstate.get("fp_window")),
        passenger_rear_window_open=_open(vstate.get("rp_window")),
        trunk_open=_open(vstate.get("rt")),
        frunk_open=_open(vstate.get("ft")),
        # vehicle_config says 0/1/2 (roof type) or null; older firmware said it in vehicle_state
        sun_roof_installed=_open(
            config.get("sun_roof_installed", vstate.get("sun_roof_installed"))
        ),
        sun_roof_state=_text(vstate.get("sun_roof_state")),
        sun_roof_percent_open=units.integer(vstate.get("sun_roof_percent_open")),
        center_display_state=units.integer(vstate.get("center_display_state")),
        tpms_pressure_fl_bar=units.number(vstate.get("tpms_pressure_fl")),
        tpms_pressure_fr_bar=units.number(vstate.get("tpms_pressure_fr")),
        tpms_pressure_rl_bar=units.number(vstate.get("tpms_pressure_rl")),
        tpms_pressure_rr_bar=units.number(vstate.get("tpms_pressure_rr")),
        tpms_soft_warning_fl=units.boolean(vstate.get("tpms_soft_warning_fl")),
        tpms_soft_warning_fr=units.boolean(vstate.get("tpms_soft_warning_fr")),
        tpms_soft_warning_rl=units.boolean(vstate.get("tpms_soft_warning_rl")),
        tpms_soft_warning_rr=units.boolean(vstate.get("tpms_soft_warning_rr")),
        update_status=update.get("status") if isinstance(update.get("status"), str) else None,
        update_version=_text(update.get("version")),
        update_download_perc=units.integer(update.get("download_perc")),
        update_install_perc=units.integer(update.get("install_perc")),
        car_type=_text(config.get("car_type")),
        trim_badging=_text(config.get("trim_badging")),
        exterior_color=_text(config.get("exterior_color")),
        wheel_type=_text(config.get("wheel_type")),
        spoiler_type=_text(config.get("spoiler_type")),
    )
    return Observation(vin=vin, at=at, source=Source.REST, state=state)


def observation_from_vehicle_item(item: Mapping[str, Any], *, received_at: datetime) -> Observation:
    """A vehicle-list item (free endpoint) → an observation of connectivity only."""
    if not isinstance(item, Mapping) or not isinstance(item.get("vin"), str):
        raise PayloadError("vehicle item: expected an object with a vin")
    try:
        in_service = units.boolean(item.get("in_service"))
    except units.UnitError as exc:
        raise PayloadError(f"vehicle item: in_service: {exc}") from None
    state = VehicleState(
        connectivity=connectivity(item.get("state")),
        display_name=_text(item.get("display_name")),
        in_service=in_service,
    )
    return Observation(vin=item["vin"], at=received_at, source=Source.REST, state=state)
