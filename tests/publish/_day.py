"""A scripted day through the pure car machine; its PublishSummary effects, in order.

park asleep at home → wake → drive 30 km → plug in at work → charge an hour →
complete → sleep. Richer than the machine's own day (temperatures, tyres, doors)
so that most summary keys carry a value.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from _world import PARKED, T0, Truth, World

from fleetlog.model.observation import (
    NO_ROUTE,
    NOT_SCHEDULED,
    ActiveRoute,
    Connectivity,
    VehicleState,
)
from fleetlog.vehicle import effects as fx
from fleetlog.vehicle.settings import Feed

WAKE = T0 + timedelta(hours=7)
DRIVE_START = WAKE + timedelta(minutes=5)
DRIVE_END = DRIVE_START + timedelta(minutes=30)
PLUG = DRIVE_END + timedelta(minutes=10)
UNPLUG = PLUG + timedelta(hours=1)
SLEEP = UNPLUG + timedelta(minutes=45)
END = SLEEP + timedelta(hours=1)

HOME = VehicleState(
    **PARKED,  # type: ignore[arg-type]
    display_name="Blue Bird",
    usable_battery_level=79,
    est_range_km=350.0,
    inside_temp_c=18.5,
    outside_temp_c=9.0,
    is_climate_on=False,
    is_preconditioning=False,
    sentry_mode=False,
    is_user_present=False,
    doors_open=False,
    driver_front_door_open=False,
    driver_rear_door_open=False,
    passenger_front_door_open=False,
    passenger_rear_door_open=False,
    windows_open=False,
    driver_front_window_open=False,
    driver_rear_window_open=False,
    passenger_front_window_open=False,
    passenger_rear_window_open=False,
    trunk_open=False,
    frunk_open=False,
    sun_roof_installed=False,
    sun_roof_state="unknown",
    sun_roof_percent_open=0,
    center_display_state=0,
    charge_current_request_a=16,
    charge_current_request_max_a=16,
    scheduled_charging_start_time=NOT_SCHEDULED,
    active_route=NO_ROUTE,
    charge_port_door_open=False,
    charge_limit_soc=90,
    heading=90,
    elevation_m=500.0,
    tpms_pressure_fl_bar=2.9,
    tpms_pressure_fr_bar=2.9,
    tpms_pressure_rl_bar=2.95,
    tpms_pressure_rr_bar=2.95,
    tpms_soft_warning_fl=False,
    tpms_soft_warning_fr=False,
    tpms_soft_warning_rl=False,
    tpms_soft_warning_rr=False,
    climate_keeper_mode="off",
    trim_badging="74d",
    exterior_color="DeepBlue",
    wheel_type="Pinwheel18",
    spoiler_type="None",
    in_service=False,
)


def day(t: datetime) -> Truth:
    if t < WAKE:
        return Truth(Connectivity.ASLEEP, HOME)
    if t < DRIVE_START:
        return Truth(Connectivity.ONLINE, replace(HOME, is_user_present=True, locked=False))
    if t < DRIVE_END:
        frac = (t - DRIVE_START) / (DRIVE_END - DRIVE_START)
        return Truth(
            Connectivity.ONLINE,
            replace(
                HOME,
                shift_state="D",
                speed_kmh=60.4,
                power_kw=15.0,
                locked=False,
                is_user_present=True,
                odometer_km=1000.0 + 30.0 * frac,
                latitude=48.1 + 0.2 * frac,
                battery_level=80 - round(5 * frac),
                ideal_range_km=400.0 - 35.0 * frac,
                rated_range_km=380.0 - 33.0 * frac,
                elevation_m=500.0 + 50 * frac,
                center_display_state=2,
                active_route=ActiveRoute(
                    destination="Work",
                    latitude=48.3,
                    longitude=11.5,
                    energy_at_arrival=75.0,
                    km_to_arrival=30.0 * (1 - frac),
                    minutes_to_arrival=30.0 * (1 - frac),
                    traffic_minutes_delay=0.0,
                ),
            ),
        )
    at_work = replace(
        HOME,
        odometer_km=1030.0,
        latitude=48.3,
        battery_level=75,
        ideal_range_km=365.0,
        rated_range_km=347.0,
        elevation_m=550.0,
    )
    if t < PLUG:
        return Truth(Connectivity.ONLINE, at_work)
    if t < UNPLUG:
        frac = (t - PLUG) / (UNPLUG - PLUG)
        return Truth(
            Connectivity.ONLINE,
            replace(
                at_work,
                charging_state="Charging",
                charge_port_door_open=True,
                charger_power_kw=11.0,
                power_kw=-11.0,
                charger_voltage=230,
                charger_actual_current=16,
                charger_phases=3,
                time_to_full_charge_h=1.0 - frac,
                charge_energy_added_kwh=round(10.0 * frac, 2),
                battery_level=75 + round(13 * frac),
                ideal_range_km=365.0 + 60 * frac,
            ),
        )
    done = replace(
        at_work,
        charging_state="Complete",
        charge_port_door_open=True,
        charge_energy_added_kwh=10.0,
        battery_level=88,
        ideal_range_km=425.0,
        # tomorrow's off-peak start, as the car reports it
        scheduled_charging_start_time=datetime(2026, 3, 3, 1, 0, tzinfo=UTC),
    )
    if t < SLEEP:
        return Truth(Connectivity.ONLINE, done)
    return Truth(Connectivity.ASLEEP, done)


@cache
def summaries(
    feed: Feed = Feed.NONE, until: datetime = END
) -> list[tuple[datetime, dict[str, Any]]]:
    """Every summary the machine publishes over the day (or up to `until`)."""
    world = World(day, feed=feed)
    world.run(until)
    return [(at, e.summary) for at, e in world.effects if isinstance(e, fx.PublishSummary)]
