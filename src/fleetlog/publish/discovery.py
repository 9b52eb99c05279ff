"""Home Assistant MQTT discovery: one device config per car with every entity.

Pure: builds the JSON the publisher sends to ``<prefix>/device/<node_id>/config``.
The entities read the car topics of :mod:`fleetlog.publish.payloads`; every
entity's availability is the car's ``healthy`` topic.

Identity is what makes Home Assistant keep an entity's history and user
customisations across restarts and across a move from TeslaMate, so node ids
(``teslamate[_<ns>]_<car_id>``) and unique ids (``<node_id>_<key>``) depend on
nothing but the namespace, the car id and the key; never on names, order or time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from fleetlog import __version__
from fleetlog.publish.topics import Topics

# binary sensors read TeslaMate's "true"/"false" payloads
_ON_OFF: Final = {"payload_on": "true", "payload_off": "false"}
# Home Assistant's lock class means "on = unlocked", the opposite of the "locked" topic.
_UNLOCKED_ON: Final = {"payload_on": "false", "payload_off": "true"}
_DIAG: Final = {"entity_category": "diagnostic"}
# active_route is JSON; without a route it is {"error": …}: render HA's "None" (unknown).
_ROUTE: Final = "{{{{ value_json.get('{}') if value_json.get('error') is none else None }}}}"


@dataclass(frozen=True, slots=True)
class Entity:
    """One Home Assistant entity: which topic it reads and how HA should show it."""

    key: str  # the object id suffix and the unique id suffix; also the topic unless `topic`
    platform: str  # sensor | binary_sensor | device_tracker | update
    name: str
    topic: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def state_key(self) -> str:
        return self.topic or self.key


def _sensor(key: str, name: str, **options: Any) -> Entity:
    return Entity(key, "sensor", name, options=options)


def _measure(key: str, name: str, unit: str, device_class: str | None = None, **o: Any) -> Entity:
    opts: dict[str, Any] = {"unit_of_measurement": unit, "state_class": "measurement", **o}
    if device_class:
        opts["device_class"] = device_class
    return Entity(key, "sensor", name, options=opts)


def _binary(key: str, name: str, device_class: str | None = None, **options: Any) -> Entity:
    opts: dict[str, Any] = {**_ON_OFF, **options}
    if device_class:
        opts["device_class"] = device_class
    return Entity(key, "binary_sensor", name, options=opts)


def _route(key: str, name: str, field_name: str, **options: Any) -> Entity:
    opts = {"value_template": _ROUTE.format(field_name), **options}
    return Entity(key, "sensor", name, topic="active_route", options=opts)


ENTITIES: Final[tuple[Entity, ...]] = (
    # identity and status
    _sensor("display_name", "Display name", icon="mdi:car", **_DIAG),
    _sensor("state", "State", icon="mdi:car-connected"),
    _sensor("since", "Since", device_class="timestamp"),
    _binary("healthy", "Healthy", icon="mdi:heart-pulse", **_DIAG),
    _sensor("version", "Version", icon="mdi:alphabetical", **_DIAG),
    _binary("update_available", "Update available", "update"),
    Entity(
        "software_update",
        "update",
        "Software update",
        options={"device_class": "firmware", "title": "Tesla software"},
    ),
    _sensor("model", "Model", **_DIAG),
    _sensor("trim_badging", "Trim badging", **_DIAG),
    _sensor("exterior_color", "Exterior color", icon="mdi:palette", **_DIAG),
    _sensor("wheel_type", "Wheel type", **_DIAG),
    _sensor("spoiler_type", "Spoiler type", **_DIAG),
    _binary("service_mode", "Service mode", icon="mdi:car-wrench"),
    _sensor("center_display_state", "Center display state", icon="mdi:monitor"),
    # where and how it moves
    Entity(
        "location",
        "device_tracker",
        "Location",
        options={"source_type": "gps", "icon": "mdi:car"},
    ),
    _sensor("geofence", "Geofence", icon="mdi:earth"),
    _sensor("shift_state", "Shift state", icon="mdi:car-shift-pattern"),
    _measure("speed", "Speed", "km/h", "speed"),
    _measure("heading", "Heading", "°", icon="mdi:compass"),
    _measure("elevation", "Elevation", "m", "distance"),
    _measure("power", "Power", "kW", "power"),
    _sensor(
        "odometer",
        "Odometer",
        device_class="distance",
        unit_of_measurement="km",
        state_class="total_increasing",
    ),
    _route("active_route_destination", "Active route destination", "destination"),
    _route(
        "active_route_energy_at_arrival",
        "Active route energy at arrival",
        "energy_at_arrival",
        unit_of_measurement="%",
        device_class="battery",
    ),
    _route(
        "active_route_distance_to_arrival",
        "Active route distance to arrival",
        "miles_to_arrival",
        unit_of_measurement="mi",
        device_class="distance",
    ),
    _route(
        "active_route_minutes_to_arrival",
        "Active route minutes to arrival",
        "minutes_to_arrival",
        unit_of_measurement="min",
        device_class="duration",
    ),
    _route(
        "active_route_traffic_minutes_delay",
        "Active route traffic delay",
        "traffic_minutes_delay",
        unit_of_measurement="min",
        device_class="duration",
    ),
    # battery and charging
    _measure("battery_level", "Battery level", "%", "battery"),
    _measure("usable_battery_level", "Usable battery level", "%", "battery"),
    _measure("est_battery_range_km", "Estimated range", "km", "distance"),
    _measure("rated_battery_range_km", "Rated range", "km", "distance"),
    _measure("ideal_battery_range_km", "Ideal range", "km", "distance"),
    _sensor("charging_state", "Charging state", icon="mdi:ev-station"),
    _binary("plugged_in", "Plugged in", "plug"),
    _binary("charge_port_door_open", "Charge port door", "opening"),
    _sensor(
        "charge_energy_added",
        "Charge energy added",
        device_class="energy",
        unit_of_measurement="kWh",
        state_class="total",
    ),
    _measure("charge_limit_soc", "Charge limit", "%", icon="mdi:battery-charging-100"),
    _measure("charger_power", "Charger power", "kW", "power"),
    _measure("charger_voltage", "Charger voltage", "V", "voltage"),
    _measure("charger_actual_current", "Charger current", "A", "current"),
    _measure("charger_phases", "Charger phases", "phases", icon="mdi:sine-wave"),
    _measure("charge_current_request", "Charge current request", "A", "current"),
    _measure("charge_current_request_max", "Charge current request max", "A", "current"),
    _measure("time_to_full_charge", "Time to full charge", "h", "duration"),
    _sensor("scheduled_charging_start_time", "Scheduled charging start", device_class="timestamp"),
    # climate
    _measure("outside_temp", "Outside temperature", "°C", "temperature"),
    _measure("inside_temp", "Inside temperature", "°C", "temperature"),
    _binary("is_climate_on", "Climate", "running", icon="mdi:fan"),
    _binary("is_preconditioning", "Preconditioning", "running"),
    _sensor("climate_keeper_mode", "Climate keeper mode", icon="mdi:fan-auto"),
    # body
    _binary("locked", "Lock", "lock", **_UNLOCKED_ON),
    _binary("sentry_mode", "Sentry mode", icon="mdi:cctv"),
    _binary("is_user_present", "User present", "presence"),
    _binary("doors_open", "Doors", "door"),
    _binary("driver_front_door_open", "Driver front door", "door"),
    _binary("driver_rear_door_open", "Driver rear door", "door"),
    _binary("passenger_front_door_open", "Passenger front door", "door"),
    _binary("passenger_rear_door_open", "Passenger rear door", "door"),
    _binary("windows_open", "Windows", "window"),
    _binary("driver_front_window_open", "Driver front window", "window"),
    _binary("driver_rear_window_open", "Driver rear window", "window"),
    _binary("passenger_front_window_open", "Passenger front window", "window"),
    _binary("passenger_rear_window_open", "Passenger rear window", "window"),
    _binary("trunk_open", "Trunk", "opening"),
    _binary("frunk_open", "Frunk", "opening"),
    _binary("sun_roof_installed", "Sun roof installed", **_DIAG),
    _sensor("sun_roof_state", "Sun roof state", icon="mdi:car-select"),
    _measure("sun_roof_percent_open", "Sun roof open", "%", icon="mdi:car-select"),
    _measure("tpms_pressure_fl", "Tire pressure front left", "bar", "pressure"),
    _measure("tpms_pressure_fr", "Tire pressure front right", "bar", "pressure"),
    _measure("tpms_pressure_rl", "Tire pressure rear left", "bar", "pressure"),
    _measure("tpms_pressure_rr", "Tire pressure rear right", "bar", "pressure"),
    _binary("tpms_soft_warning_fl", "Tire warning front left", "problem"),
    _binary("tpms_soft_warning_fr", "Tire warning front right", "problem"),
    _binary("tpms_soft_warning_rl", "Tire warning rear left", "problem"),
    _binary("tpms_soft_warning_rr", "Tire warning rear right", "problem"),
    _measure("download_perc", "Update download", "%", icon="mdi:download", **_DIAG),
    _measure("install_perc", "Update install", "%", icon="mdi:update", **_DIAG),
    # fleetlog's own
    _sensor("feed", "Data feed", icon="mdi:access-point", **_DIAG),
    _binary("telemetry_connected", "Telemetry connected", "connectivity", **_DIAG),
    _sensor(
        "api_spend_month",
        "API spend this month",
        device_class="monetary",
        unit_of_measurement="USD",
        state_class="total",
        **_DIAG,
    ),
    _sensor(
        "api_budget_remaining",
        "API budget remaining",
        device_class="monetary",
        unit_of_measurement="USD",
        state_class="total",
        **_DIAG,
    ),
    _sensor("api_budget_state", "API budget state", icon="mdi:cash-clock", **_DIAG),
    _sensor("api_next_data_call", "Next data call", device_class="timestamp", **_DIAG),
    _measure("api_data_calls_today", "Data calls today", "calls", icon="mdi:counter", **_DIAG),
)


@dataclass(frozen=True, slots=True)
class Device:
    """What the device card shows: taken from the car and its latest summary."""

    car_id: int
    vin: str | None = None
    name: str | None = None
    model: str | None = None
    trim_badging: str | None = None
    version: str | None = None


_MODELS: Final = {
    "models": "Model S",
    "modelx": "Model X",
    "model3": "Model 3",
    "modely": "Model Y",
}


def _model_name(model: str | None, trim: str | None) -> str | None:
    if not model:
        return None
    raw = model.strip()
    short = {"S": "Model S", "X": "Model X", "3": "Model 3", "Y": "Model Y"}.get(raw.upper())
    name = short or _MODELS.get(raw.lower().replace(" ", ""), raw)
    return f"{name} {trim.upper()}" if trim else name


def device_config(
    topics: Topics, device: Device, *, configuration_url: str | None = None
) -> dict[str, Any]:
    """The device discovery payload for one car (full key names, not abbreviations)."""
    node = topics.node_id(device.car_id)
    info: dict[str, Any] = {
        "identifiers": [node],
        "name": device.name or f"Tesla {device.car_id}",
        "manufacturer": "Tesla",
    }
    model = _model_name(device.model, device.trim_badging)
    if model:
        info["model"] = model
    if device.version:
        info["sw_version"] = device.version
    if device.vin:
        info["serial_number"] = device.vin
    if configuration_url:
        info["configuration_url"] = configuration_url
    components: dict[str, dict[str, Any]] = {}
    for entity in ENTITIES:
        object_id = f"tesla_{entity.key}"
        config: dict[str, Any] = {
            "platform": entity.platform,
            "name": entity.name,
            "unique_id": f"{node}_{entity.key}",
            # Home Assistant before 2025.10 reads object_id, later ones default_entity_id.
            "object_id": object_id,
            "default_entity_id": f"{entity.platform}.{object_id}",
        }
        topic = topics.car(device.car_id, entity.state_key)
        if entity.platform == "device_tracker":
            config["json_attributes_topic"] = topic
        else:
            config["state_topic"] = topic
        config.update(entity.options)
        components[object_id] = config
    return {
        "device": info,
        "origin": {"name": "fleetlog", "sw_version": __version__},
        "availability_topic": topics.car(device.car_id, "healthy"),
        "payload_available": "true",
        "payload_not_available": "false",
        "qos": 1,
        "components": components,
    }
