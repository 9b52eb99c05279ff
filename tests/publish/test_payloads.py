"""Summary → topic payloads: TeslaMate's key set, encodings and nil rules (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from fleetlog.publish import CLEARED_WHEN_NIL, NOT_RETAINED, TESLAMATE_KEYS, car_payloads
from fleetlog.publish.payloads import budget_label, budget_payloads, encode
from fleetlog.sources.tesla import BudgetState

# Reference §8, written out again by hand so that a change to the module's list shows here.
REFERENCE_KEYS = """
display_name state since healthy latitude longitude heading battery_level charging_state
usable_battery_level ideal_battery_range_km est_battery_range_km rated_battery_range_km
charge_energy_added speed outside_temp inside_temp is_climate_on is_preconditioning locked
sentry_mode plugged_in scheduled_charging_start_time charge_limit_soc charger_power
windows_open driver_front_window_open driver_rear_window_open passenger_front_window_open
passenger_rear_window_open doors_open driver_front_door_open driver_rear_door_open
passenger_front_door_open passenger_rear_door_open odometer shift_state charge_port_door_open
time_to_full_charge charger_phases charger_actual_current charger_voltage version
update_available update_version is_user_present model trim_badging exterior_color wheel_type
spoiler_type trunk_open frunk_open elevation power charge_current_request
charge_current_request_max tpms_pressure_fl tpms_pressure_fr tpms_pressure_rl tpms_pressure_rr
tpms_soft_warning_fl tpms_soft_warning_fr tpms_soft_warning_rl tpms_soft_warning_rr
climate_keeper_mode center_display_state service_mode sun_roof_state sun_roof_installed
sun_roof_percent_open download_perc install_perc
location geofence active_route active_route_destination active_route_latitude
active_route_longitude software_update
""".split()  # noqa: SIM905


def test_key_set_is_teslamates() -> None:
    assert sorted(TESLAMATE_KEYS) == sorted(REFERENCE_KEYS)
    assert len(set(TESLAMATE_KEYS)) == len(TESLAMATE_KEYS)
    assert {"healthy"} == NOT_RETAINED
    expected_cleared = {
        "charge_energy_added",
        "charger_actual_current",
        "charger_phases",
        "charger_power",
        "charger_voltage",
        "scheduled_charging_start_time",
        "time_to_full_charge",
        "shift_state",
        "geofence",
        "trim_badging",
    }
    assert expected_cleared == CLEARED_WHEN_NIL


def test_nil_is_skipped_except_the_clearing_keys() -> None:
    out = car_payloads({key: None for key in REFERENCE_KEYS})
    assert {k for k, v in out.items() if v == ""} == CLEARED_WHEN_NIL
    # composite keys that always say something
    assert out["active_route"] == '{"error":"No active route available"}'
    assert out["active_route_destination"] == "nil"
    assert out["active_route_latitude"] == "nil"
    assert out["active_route_longitude"] == "nil"
    assert set(out) == CLEARED_WHEN_NIL | {
        "active_route",
        "active_route_destination",
        "active_route_latitude",
        "active_route_longitude",
    }


@pytest.mark.parametrize(
    ("key", "value", "payload"),
    [
        ("locked", True, "true"),
        ("is_climate_on", False, "false"),
        ("battery_level", 80, "80"),
        ("speed", 60.4, "60"),  # TeslaMate rounds km/h to an integer
        ("power", -11.0, "-11"),
        ("elevation", 549.6, "550"),
        ("odometer", 1029.98765, "1029.99"),
        ("rated_battery_range_km", 347.123, "347.12"),
        ("inside_temp", 18.5, "18.5"),
        ("tpms_pressure_fl", 2.9, "2.9"),
        ("time_to_full_charge", 0.75, "0.75"),
        ("state", "driving", "driving"),
        ("since", "2026-03-02T07:05:00+00:00", "2026-03-02T07:05:00Z"),
        ("since", datetime(2026, 3, 2, 8, 5, tzinfo=UTC), "2026-03-02T08:05:00Z"),
        (
            "scheduled_charging_start_time",
            datetime(2026, 3, 2, 23, 0, 0, 123456, tzinfo=UTC),
            "2026-03-02T23:00:00.123456Z",
        ),
    ],
)
def test_encoding(key: str, value: object, payload: str) -> None:
    assert encode(key, value) == payload
    assert car_payloads({key: value})[key] == payload


def test_location_geofence_and_software_update() -> None:
    out = car_payloads(
        {
            "latitude": 48.1,
            "longitude": 11.5,
            "version": "2026.2.1",
            "update_available": False,
            "update_version": None,
        },
        default_geofence="Unterwegs",
    )
    assert json.loads(out["location"]) == {"latitude": 48.1, "longitude": 11.5}
    assert out["geofence"] == "Unterwegs"
    assert json.loads(out["software_update"]) == {
        "installed_version": "2026.2.1",
        "latest_version": "2026.2.1",
    }
    out = car_payloads(
        {
            "geofence": "Home",
            "version": "2026.2.1",
            "update_available": True,
            "update_version": "2026.8.3",
        }
    )
    assert out["geofence"] == "Home"
    assert json.loads(out["software_update"])["latest_version"] == "2026.8.3"
    assert "location" not in car_payloads({"latitude": 48.1})
    assert car_payloads({})["geofence"] == ""  # the DEFAULT_GEOFENCE default


def test_active_route() -> None:
    route = {
        "destination": "Work",
        "energy_at_arrival": 71,
        "miles_to_arrival": 18.5,
        "minutes_to_arrival": 24.0,
        "traffic_minutes_delay": 2.0,
        "latitude": 48.3,
        "longitude": 11.6,
    }
    out = car_payloads({"active_route": route})
    assert json.loads(out["active_route"]) == {
        "destination": "Work",
        "energy_at_arrival": 71,
        "miles_to_arrival": 18.5,
        "minutes_to_arrival": 24.0,
        "traffic_minutes_delay": 2.0,
        "location": {"latitude": 48.3, "longitude": 11.6},
        "error": None,
    }
    assert out["active_route_destination"] == "Work"
    assert out["active_route_latitude"] == "48.3"
    assert out["active_route_longitude"] == "11.6"


def _budget(**changes: object) -> BudgetState:
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    values: dict[str, object] = {
        "at": now,
        "month": "2026-03",
        "priced": True,
        "cap_usd": 10.0,
        "spent_usd": 1.23456,
        "remaining_usd": 8.76544,
        "projected_month_end_usd": 4.0,
        "next_data_call_at": now,
        "blocked_until": None,
        "block_reason": None,
        "account_disabled": False,
        "data_calls_today": {"1492931337": 17},
    }
    values.update(changes)
    return BudgetState(**values)  # type: ignore[arg-type]


def test_budget_keys() -> None:
    out = budget_payloads(_budget(), vehicle="1492931337")
    assert out == {
        "api_spend_month": "1.2346",
        "api_budget_remaining": "8.7654",
        "api_budget_state": "ok",
        "api_next_data_call": "2026-03-10T12:00:00Z",
        "api_data_calls_today": "17",
    }
    later = datetime(2026, 3, 10, 12, 5, tzinfo=UTC)
    assert budget_label(_budget(next_data_call_at=later)) == "paced"
    assert budget_label(_budget(blocked_until=later + timedelta(hours=1))) == "blocked"
    assert budget_label(_budget(account_disabled=True)) == "disabled"
    assert budget_label(_budget(remaining_usd=0.0)) == "exhausted"
    assert budget_label(_budget(priced=False)) == "unpriced"
