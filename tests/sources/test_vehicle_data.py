"""vehicle_data → observation: units converted once; bad payloads give PayloadError only."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetlog.model.observation import Connectivity
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
