"""vehicle_data → observation: units converted once; bad payloads give PayloadError only."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetlog.model.observation import (
    NO_ROUTE,
    NOT_SCHEDULED,
    ActiveRoute,
    Connectivity,
    VehicleState,
)
from fleetlog.sources.vehicle_data import (
    PayloadError,
    observation_from_vehicle_data,
    observation_from_vehicle_item,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def payload() -> dict[str, Any]:
    return {
        "id": 1492931337,
        "vehicle_id": 1234567,
        "vin": "5YJ3E1EA7KF000001",
        "state": "online",
        "display_name": "Blue",
        "in_service": False,
        "charge_state": {
            "battery_level": 81,
            "usable_battery_level": 80,
            "battery_range": 250.0,
            "ideal_battery_range": 260.0,
            "est_battery_range": 200.0,
            "charging_state": "Charging",
            "charge_energy_added": 12.34,
            "charger_power": 11,
            "charger_voltage": 230,
            "charger_actual_current": 16,
            "charger_pilot_current": 16,
            "charger_phases": 3,
            "fast_charger_present": False,
            "fast_charger_type": "<invalid>",
            "conn_charge_cable": "IEC",
            "timestamp": 1764158400000,
        },
        "climate_state": {"inside_temp": 21.5, "outside_temp": 4.0, "is_climate_on": False},
        "drive_state": {
            "latitude": 52.52,
            "longitude": 13.405,
            "heading": 90,
            "speed": None,
            "power": -11,
            "shift_state": None,
            "timestamp": 1764158401000,
        },
        "vehicle_state": {
            "odometer": 12345.6,
            "car_version": "2026.20.1 abc",
            "locked": True,
            "df": 0,
            "dr": 0,
            "pf": 1,
            "pr": 0,
            "tpms_pressure_fl": 2.9,
            "software_update": {"status": "", "version": " "},
        },
        "vehicle_config": {"car_type": "model3", "trim_badging": "74d"},
    }


def test_units_and_fields() -> None:
    obs = observation_from_vehicle_data(payload(), received_at=NOW)
    s = obs.state
    assert obs.vin == "5YJ3E1EA7KF000001"
    assert obs.at == datetime.fromtimestamp(1764158401, UTC)  # the car's time, not ours
    assert s.connectivity is Connectivity.ONLINE
    assert s.odometer_km == pytest.approx(12345.6 * 1.609344)
    assert s.rated_range_km == pytest.approx(402.336)
    assert s.ideal_range_km == pytest.approx(260 * 1.609344)
    assert s.speed_kmh is None and s.shift_state is None
    assert s.power_kw == -11
    assert s.charging_state == "Charging" and s.charger_phases == 3
    assert s.fast_charger_type is None  # "<invalid>" means absent
    assert s.doors_open is True and s.locked is True
    assert s.tpms_pressure_fl_bar == 2.9
    assert s.car_type == "model3"


def test_missing_sections_are_unknown_not_zero() -> None:
    obs = observation_from_vehicle_data({"vin": "X" * 17}, received_at=NOW)
    assert obs.at == NOW
    assert obs.state.known() == {}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("vin"), "no vin"),
        (lambda p: p.__setitem__("charge_state", [1, 2]), "charge_state: expected an object"),
        (lambda p: p["charge_state"].__setitem__("battery_level", "lots"), "expected a number"),
    ],
)
def test_malformed_payloads_name_the_problem(mutate: Any, message: str) -> None:
    p = payload()
    mutate(p)
    with pytest.raises(PayloadError, match=message):
        observation_from_vehicle_data(p, received_at=NOW)


def test_vehicle_item() -> None:
    item = {"vin": "5YJ3E1EA7KF000001", "state": "asleep", "in_service": False}
    obs = observation_from_vehicle_item(item, received_at=NOW)
    assert obs.state.connectivity is Connectivity.ASLEEP
    with pytest.raises(PayloadError):
        observation_from_vehicle_item({"state": "online"}, received_at=NOW)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300)
@given(st.data())
def test_fuzzed_payloads_raise_only_payload_error(data: st.DataObject) -> None:
    p = payload()
    section = data.draw(
        st.sampled_from(["charge_state", "drive_state", "vehicle_state", "climate_state"])
    )
    key = data.draw(st.sampled_from([*sorted(p[section]), "software_update"]))
    p[section][key] = data.draw(json_values)
    if data.draw(st.booleans()):
        p[data.draw(st.sampled_from(sorted(p)))] = data.draw(json_values)
    with contextlib.suppress(PayloadError):
        observation_from_vehicle_data(p, received_at=NOW)


def test_per_door_window_tyre_roof_schedule_and_route_fields() -> None:
    p = payload()
    p["charge_state"] |= {
        "charge_current_request": 16,
        "charge_current_request_max": 32,
        "scheduled_charging_start_time": 1764201600,
    }
    p["drive_state"] |= {
        "active_route_destination": "Work",
        "active_route_latitude": 48.3,
        "active_route_longitude": 11.6,
        "active_route_energy_at_arrival": 71.5,
        "active_route_miles_to_arrival": 10.0,
        "active_route_minutes_to_arrival": 14.2,
        "active_route_traffic_minutes_delay": 1.5,
    }
    p["vehicle_state"] |= {
        "df": 1,
        "dr": 0,
        "pf": 0,
        "pr": 1,
        "fd_window": 0,
        "fp_window": 1,
        "rd_window": 0,
        "rp_window": 0,
        "tpms_soft_warning_fl": False,
        "tpms_soft_warning_fr": True,
        "tpms_soft_warning_rl": False,
        "tpms_soft_warning_rr": False,
        "center_display_state": 2,
        "sun_roof_state": "vent",
        "sun_roof_percent_open": 15,
    }
    p["vehicle_config"] = {"sun_roof_installed": 2}
    s = observation_from_vehicle_data(p, received_at=NOW).state
    assert (s.driver_front_door_open, s.driver_rear_door_open) == (True, False)
    assert (s.passenger_front_door_open, s.passenger_rear_door_open) == (False, True)
    assert (s.driver_front_window_open, s.passenger_front_window_open) == (False, True)
    assert (s.driver_rear_window_open, s.passenger_rear_window_open) == (False, False)
    assert (s.charge_current_request_a, s.charge_current_request_max_a) == (16, 32)
    assert s.scheduled_charging_start_time == datetime(2025, 11, 27, 0, 0, tzinfo=UTC)
    assert (s.tpms_soft_warning_fl, s.tpms_soft_warning_fr) == (False, True)
    assert (s.tpms_soft_warning_rl, s.tpms_soft_warning_rr) == (False, False)
    assert s.center_display_state == 2
    assert (s.sun_roof_installed, s.sun_roof_state, s.sun_roof_percent_open) == (True, "vent", 15)
    route = s.active_route
    assert route is not None and route.destination == "Work"
    assert (route.latitude, route.longitude) == (48.3, 11.6)
    assert route.km_to_arrival == pytest.approx(16.09344)
    assert (route.energy_at_arrival, route.minutes_to_arrival) == (71.5, 14.2)
    assert route.traffic_minutes_delay == 1.5


def test_no_route_and_no_schedule_are_said_not_left_out() -> None:
    """A reported null replaces an old route or schedule; a missing section says nothing."""
    s = observation_from_vehicle_data(payload(), received_at=NOW).state
    assert s.active_route == NO_ROUTE
    assert s.scheduled_charging_start_time == NOT_SCHEDULED
    old = VehicleState(
        active_route=ActiveRoute(destination="Work"),
        scheduled_charging_start_time=NOW,
    )
    assert old.merged(s).active_route == NO_ROUTE
    assert old.merged(s).scheduled_charging_start_time == NOT_SCHEDULED
    bare = {"vin": "5YJ3E1EA7KF000001"}
    quiet = observation_from_vehicle_data(bare, received_at=NOW).state
    assert quiet.active_route is None and quiet.scheduled_charging_start_time is None
