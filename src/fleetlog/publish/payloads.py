"""What is published: a car's summary turned into TeslaMate's topic payloads.

Pure functions, no I/O. The rules are TeslaMate's (reference §8), because MQTT
consumers parse these strings and key off their presence:

* every value is a plain string: booleans ``true``/``false``, numbers as
  written, times ISO-8601 in UTC with ``Z``;
* a ``None`` value is *skipped* (the retained value stays as it was), except for
  the keys in :data:`CLEARED_WHEN_NIL`, which publish an empty string so that a
  stale charger power or shift state does not linger after the fact;
* composite keys are JSON (``location``, ``active_route``, ``software_update``);
* ``geofence`` is the geofence's name, or ``DEFAULT_GEOFENCE`` outside every fence.

fleetlog's own keys (:data:`FLEETLOG_KEYS`) follow the same encoding under the
same car topic; they are documented in ``docs/mqtt.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from fleetlog.sources.tesla import BudgetState

#: TeslaMate's plain keys, in the order its documentation lists them.
PLAIN_KEYS: Final = (
    "display_name",
    "state",
    "since",
    "healthy",
    "latitude",
    "longitude",
    "heading",
    "battery_level",
    "charging_state",
    "usable_battery_level",
    "ideal_battery_range_km",
    "est_battery_range_km",
    "rated_battery_range_km",
    "charge_energy_added",
    "speed",
    "outside_temp",
    "inside_temp",
    "is_climate_on",
    "is_preconditioning",
    "locked",
    "sentry_mode",
    "plugged_in",
    "scheduled_charging_start_time",
    "charge_limit_soc",
    "charger_power",
    "windows_open",
    "driver_front_window_open",
    "driver_rear_window_open",
    "passenger_front_window_open",
    "passenger_rear_window_open",
    "doors_open",
    "driver_front_door_open",
    "driver_rear_door_open",
    "passenger_front_door_open",
    "passenger_rear_door_open",
    "odometer",
    "shift_state",
    "charge_port_door_open",
    "time_to_full_charge",
    "charger_phases",
    "charger_actual_current",
    "charger_voltage",
    "version",
    "update_available",
    "update_version",
    "is_user_present",
    "model",
    "trim_badging",
    "exterior_color",
    "wheel_type",
    "spoiler_type",
    "trunk_open",
    "frunk_open",
    "elevation",
    "power",
    "charge_current_request",
    "charge_current_request_max",
    "tpms_pressure_fl",
    "tpms_pressure_fr",
    "tpms_pressure_rl",
    "tpms_pressure_rr",
    "tpms_soft_warning_fl",
    "tpms_soft_warning_fr",
    "tpms_soft_warning_rl",
    "tpms_soft_warning_rr",
    "climate_keeper_mode",
    "center_display_state",
    "service_mode",
    "sun_roof_state",
    "sun_roof_installed",
    "sun_roof_percent_open",
    "download_perc",
    "install_perc",
)

#: Keys built from several summary values.
COMPOSITE_KEYS: Final = (
    "location",
    "geofence",
    "active_route",
    "active_route_destination",
    "active_route_latitude",
    "active_route_longitude",
    "software_update",
)

TESLAMATE_KEYS: Final = PLAIN_KEYS + COMPOSITE_KEYS

#: fleetlog's additions under the same car topic (see docs/mqtt.md).
SUMMARY_EXTRA_KEYS: Final = ("feed", "telemetry_connected")
BUDGET_KEYS: Final = (
    "api_spend_month",
    "api_budget_remaining",
    "api_budget_state",
    "api_next_data_call",
    "api_data_calls_today",
)
FLEETLOG_KEYS: Final = SUMMARY_EXTRA_KEYS + BUDGET_KEYS

#: Keys published as an empty string when the value is unknown, to clear them.
CLEARED_WHEN_NIL: Final = frozenset(
    {
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
)

#: Published on every summary and never retained: a stale "healthy" would lie.
NOT_RETAINED: Final = frozenset({"healthy"})

# TeslaMate stores and publishes these as integers (smallint columns, rounded km/h).
_INTEGER_KEYS: Final = frozenset(
    {
        "heading",
        "battery_level",
        "usable_battery_level",
        "speed",
        "charge_limit_soc",
        "charger_power",
        "charger_phases",
        "charger_actual_current",
        "charger_voltage",
        "elevation",
        "power",
        "charge_current_request",
        "charge_current_request_max",
        "sun_roof_percent_open",
        "download_perc",
        "install_perc",
    }
)
# Converted from miles with two decimals in TeslaMate.
_TWO_DECIMAL_KEYS: Final = frozenset(
    {"odometer", "ideal_battery_range_km", "est_battery_range_km", "rated_battery_range_km"}
)
_TIME_KEYS: Final = frozenset({"since", "scheduled_charging_start_time"})

NO_ACTIVE_ROUTE: Final = '{"error":"No active route available"}'


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _iso(value: datetime | str) -> str:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def encode(key: str, value: Any) -> str:
    """One value as TeslaMate writes it (``value`` must not be None)."""
    if key in _TIME_KEYS and isinstance(value, datetime | str):
        return _iso(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if key in _INTEGER_KEYS:
            return str(round(value))
        if key in _TWO_DECIMAL_KEYS:
            return str(round(value, 2))
        return repr(value)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Mapping | list):
        return _json(value)
    return str(value)


def _plain(key: str, value: Any, out: dict[str, str]) -> None:
    if value is None:
        if key in CLEARED_WHEN_NIL:
            out[key] = ""
        return
    out[key] = encode(key, value)


def _active_route(route: Mapping[str, Any] | None, out: dict[str, str]) -> None:
    lat = route.get("latitude") if route else None
    lon = route.get("longitude") if route else None
    if not route or route.get("destination") is None:
        out["active_route"] = NO_ACTIVE_ROUTE
        # TeslaMate writes the literal word on its deprecated topics.
        out["active_route_destination"] = "nil"
        out["active_route_latitude"] = "nil"
        out["active_route_longitude"] = "nil"
        return
    out["active_route"] = _json(
        {
            "destination": route.get("destination"),
            "energy_at_arrival": route.get("energy_at_arrival"),
            "miles_to_arrival": route.get("miles_to_arrival"),
            "minutes_to_arrival": route.get("minutes_to_arrival"),
            "traffic_minutes_delay": route.get("traffic_minutes_delay"),
            "location": {"latitude": lat, "longitude": lon},
            "error": None,
        }
    )
    out["active_route_destination"] = str(route["destination"])
    out["active_route_latitude"] = "nil" if lat is None else encode("latitude", lat)
    out["active_route_longitude"] = "nil" if lon is None else encode("longitude", lon)


def software_update(version: str | None, update_version: str | None, available: bool) -> str:
    """The JSON Home Assistant's ``update`` entity reads: installed and latest version."""
    latest = update_version if available and update_version else version
    return _json({"installed_version": version, "latest_version": latest})


def car_payloads(summary: Mapping[str, Any], *, default_geofence: str = "") -> dict[str, str]:
    """Topic key → payload for one summary; a key left out keeps its retained value.

    The summary may also carry ``geofence`` (the name of the fence the car is in, or
    None) and ``active_route`` (destination, energy_at_arrival, miles_to_arrival,
    minutes_to_arrival, traffic_minutes_delay, latitude, longitude) when the worker
    knows them; without them the car is outside every fence and has no route.
    """
    out: dict[str, str] = {}
    for key in PLAIN_KEYS + SUMMARY_EXTRA_KEYS:
        _plain(key, summary.get(key), out)
    lat, lon = summary.get("latitude"), summary.get("longitude")
    if lat is not None and lon is not None:
        out["location"] = _json({"latitude": lat, "longitude": lon})
    geofence = summary.get("geofence")
    _plain("geofence", geofence if geofence is not None else default_geofence, out)
    _active_route(summary.get("active_route"), out)
    version = summary.get("version")
    if version is not None:
        out["software_update"] = software_update(
            version, summary.get("update_version"), bool(summary.get("update_available"))
        )
    return out


def budget_label(state: BudgetState) -> str:
    """One word for the account's budget: ok, paced, blocked, exhausted, disabled or unpriced."""
    if state.account_disabled:
        return "disabled"
    if state.blocked_until is not None:
        return "blocked"
    if not state.priced:
        return "unpriced"
    if state.remaining_usd <= 0:
        return "exhausted"
    if state.next_data_call_at > state.at:
        return "paced"
    return "ok"


def budget_payloads(state: BudgetState, vehicle: str | None = None) -> dict[str, str]:
    """fleetlog's budget keys for one car (the money is the account's, the calls the car's)."""
    out = {
        "api_spend_month": encode("api_spend_month", round(state.spent_usd, 4)),
        "api_budget_remaining": encode("api_budget_remaining", round(state.remaining_usd, 4)),
        "api_budget_state": budget_label(state),
        "api_next_data_call": _iso(state.next_data_call_at),
    }
    if vehicle is not None:
        out["api_data_calls_today"] = str(state.data_calls_today.get(vehicle, 0))
    return out
