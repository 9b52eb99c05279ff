"""Rows of the logbook as pure data: a position and a charge sample.

These are the values a TeslaMate ``positions`` row and ``charges`` row hold
(reference §6), in canonical units. The car machine emits them inside its
effects; the aggregate functions read them back; the storage layer writes
them. Nothing here knows about a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fleetlog.model.observation import VehicleState


@dataclass(frozen=True, slots=True)
class Position:
    """One ``positions`` row (without ``id``, ``car_id`` and ``drive_id``)."""

    date: datetime
    latitude: float
    longitude: float
    elevation: float | None = None
    speed: float | None = None
    power: float | None = None
    odometer: float | None = None
    ideal_battery_range_km: float | None = None
    est_battery_range_km: float | None = None
    rated_battery_range_km: float | None = None
    battery_level: int | None = None
    usable_battery_level: int | None = None
    outside_temp: float | None = None
    inside_temp: float | None = None
    driver_temp_setting: float | None = None
    passenger_temp_setting: float | None = None
    fan_status: int | None = None
    is_climate_on: bool | None = None
    is_rear_defroster_on: bool | None = None
    is_front_defroster_on: bool | None = None
    battery_heater: bool | None = None
    battery_heater_on: bool | None = None
    battery_heater_no_power: bool | None = None
    tpms_pressure_fl: float | None = None
    tpms_pressure_fr: float | None = None
    tpms_pressure_rl: float | None = None
    tpms_pressure_rr: float | None = None

    @classmethod
    def of(cls, at: datetime, state: VehicleState) -> Position | None:
        """The row for `state` at `at`; ``None`` when the state has no location.

        Pass the observation's own state, not a merged one: a stream frame then
        yields a row without ranges, which is how dashboards tell them apart
        (``ideal_battery_range_km IS NOT NULL`` marks a complete row).
        """
        if state.latitude is None or state.longitude is None:
            return None
        return cls(
            date=at,
            latitude=state.latitude,
            longitude=state.longitude,
            elevation=state.elevation_m,
            speed=state.speed_kmh,
            power=state.power_kw,
            odometer=state.odometer_km,
            ideal_battery_range_km=state.ideal_range_km,
            est_battery_range_km=state.est_range_km,
            rated_battery_range_km=state.rated_range_km,
            battery_level=state.battery_level,
            usable_battery_level=state.usable_battery_level,
            outside_temp=state.outside_temp_c,
            inside_temp=state.inside_temp_c,
            driver_temp_setting=state.driver_temp_setting_c,
            passenger_temp_setting=state.passenger_temp_setting_c,
            fan_status=state.fan_status,
            is_climate_on=state.is_climate_on,
            is_rear_defroster_on=state.is_rear_defroster_on,
            is_front_defroster_on=state.is_front_defroster_on,
            battery_heater=state.battery_heater,
            battery_heater_on=state.battery_heater_on,
            battery_heater_no_power=state.battery_heater_no_power,
            tpms_pressure_fl=state.tpms_pressure_fl_bar,
            tpms_pressure_fr=state.tpms_pressure_fr_bar,
            tpms_pressure_rl=state.tpms_pressure_rl_bar,
            tpms_pressure_rr=state.tpms_pressure_rr_bar,
        )


@dataclass(frozen=True, slots=True)
class ChargeSample:
    """One ``charges`` row (without ``id`` and ``charging_process_id``)."""

    date: datetime
    charge_energy_added: float
    charger_power: float
    ideal_battery_range_km: float | None = None
    rated_battery_range_km: float | None = None
    battery_level: int | None = None
    usable_battery_level: int | None = None
    charger_actual_current: int | None = None
    charger_pilot_current: int | None = None
    charger_voltage: int | None = None
    charger_phases: int | None = None
    conn_charge_cable: str | None = None
    fast_charger_brand: str | None = None
    fast_charger_type: str | None = None
    fast_charger_present: bool | None = None
    battery_heater_on: bool | None = None
    battery_heater: bool | None = None
    battery_heater_no_power: bool | None = None
    not_enough_power_to_heat: bool | None = None
    outside_temp: float | None = None

    @classmethod
    def of(cls, at: datetime, state: VehicleState) -> ChargeSample:
        """The sample for a merged state; unknown energy and power count as 0.

        ``charges.charge_energy_added`` and ``charger_power`` are NOT NULL, and a
        synthesised charge (made while offline) has no power reading at all.
        """
        return cls(
            date=at,
            charge_energy_added=state.charge_energy_added_kwh or 0.0,
            charger_power=state.charger_power_kw or 0.0,
            ideal_battery_range_km=state.ideal_range_km,
            rated_battery_range_km=state.rated_range_km,
            battery_level=state.battery_level,
            usable_battery_level=state.usable_battery_level,
            charger_actual_current=state.charger_actual_current,
            charger_pilot_current=state.charger_pilot_current,
            charger_voltage=state.charger_voltage,
            # the column has CHECK (charger_phases > 0): zero means unknown
            charger_phases=state.charger_phases or None,
            conn_charge_cable=state.conn_charge_cable,
            fast_charger_brand=state.fast_charger_brand,
            fast_charger_type=state.fast_charger_type,
            fast_charger_present=state.fast_charger_present,
            battery_heater_on=state.battery_heater_on,
            battery_heater=state.battery_heater,
            battery_heater_no_power=state.battery_heater_no_power,
            not_enough_power_to_heat=state.not_enough_power_to_heat,
            outside_temp=state.outside_temp_c,
        )
