"""Home Assistant's MQTT device-discovery rules, written out as checks.

Home Assistant itself cannot be installed here: device discovery (2024.11+) needs
Python 3.12, this project runs 3.11. These checks restate the rules of HA's
``mqtt/schemas.py`` (DEVICE_DISCOVERY_SCHEMA: device with an identifier, origin
with a name, components each with a supported platform, availability topic or
list but not both), the per-platform required keys (sensor and binary_sensor
need ``state_topic``) and the sensor entity rules (device class, unit per class,
state class per class) that HA enforces when it adds an entity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SUPPORTED_PLATFORMS = {
    "alarm_control_panel", "binary_sensor", "button", "camera", "climate", "cover",
    "device_automation", "device_tracker", "event", "fan", "humidifier", "image",
    "lawn_mower", "light", "lock", "notify", "number", "scene", "select", "sensor",
    "siren", "switch", "tag", "text", "update", "vacuum", "valve", "water_heater",
}  # fmt: skip

BINARY_SENSOR_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving",
    "occupancy", "opening", "plug", "power", "presence", "problem", "running", "safety",
    "smoke", "sound", "tamper", "update", "vibration", "window",
}  # fmt: skip

# Sensor device classes fleetlog may use, with the units HA accepts for each.
SENSOR_UNITS: dict[str, set[str] | None] = {
    "battery": {"%"},
    "current": {"A", "mA"},
    "distance": {"km", "m", "cm", "mm", "mi", "ft", "in", "yd", "nmi"},
    "duration": {"d", "h", "min", "s", "ms"},
    "energy": {"Wh", "kWh", "MWh", "GWh", "J", "kJ", "MJ", "GJ"},
    "monetary": None,  # any ISO 4217 code
    "power": {"W", "kW", "MW", "GW", "mW"},
    "pressure": {"bar", "mbar", "hPa", "kPa", "Pa", "psi", "inHg", "mmHg", "cbar", "inH₂O"},
    "speed": {"km/h", "m/s", "mph", "kn", "ft/s", "mm/s", "in/s", "in/h", "mm/h", "in/d", "mm/d"},
    "temperature": {"°C", "°F", "K"},
    "timestamp": set(),
    "voltage": {"V", "mV", "kV", "µV", "MV"},
}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
# device classes whose state is not a number: no unit, no state class
NON_NUMERIC = {"timestamp", "date", "enum"}
# device classes that only allow these state classes
ONLY_STATE_CLASSES = {"monetary": {"total"}, "energy": {"total", "total_increasing"}}
ENTITY_CATEGORIES = {"config", "diagnostic"}
TRACKER_SOURCES = {"gps", "router", "bluetooth", "bluetooth_le"}


def _topic_ok(topic: Any) -> bool:
    """A topic to read: non-empty, no NUL, short enough (ours never need wildcards)."""
    if not isinstance(topic, str) or not topic or "\0" in topic or len(topic.encode()) > 65535:
        return False
    return "+" not in topic and "#" not in topic


def problems(config: Mapping[str, Any]) -> list[str]:
    """Every rule `config` (a device discovery payload, full key names) breaks."""
    out: list[str] = []
    device = config.get("device")
    if not isinstance(device, Mapping):
        return ["device is required"]
    if not (device.get("identifiers") or device.get("connections")):
        out.append("device needs identifiers or connections")
    for key in ("name", "manufacturer", "model", "sw_version", "serial_number"):
        if key in device and not isinstance(device[key], str):
            out.append(f"device.{key} must be a string")
    origin = config.get("origin")
    if not isinstance(origin, Mapping) or not isinstance(origin.get("name"), str):
        out.append("origin.name is required")
    if "availability" in config and "availability_topic" in config:
        out.append("availability and availability_topic are exclusive")
    if "availability_topic" in config and not _topic_ok(config["availability_topic"]):
        out.append("availability_topic is not a valid topic")
    if config.get("qos", 0) not in (0, 1, 2):
        out.append("qos must be 0, 1 or 2")
    components = config.get("components")
    if not isinstance(components, Mapping) or not components:
        return [*out, "components is required"]
    for object_id, c in components.items():
        out += [f"{object_id}: {p}" for p in _component_problems(c)]
    ids = [c.get("unique_id") for c in components.values()]
    if len(set(ids)) != len(ids):
        out.append("unique_id values repeat")
    return out


def _component_problems(c: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    platform = c.get("platform")
    if platform not in SUPPORTED_PLATFORMS:
        return [f"unsupported platform {platform!r}"]
    if not isinstance(c.get("unique_id"), str) or not c["unique_id"]:
        out.append("unique_id missing")
    for key in ("state_topic", "json_attributes_topic", "latest_version_topic"):
        if key in c and not _topic_ok(c[key]):
            out.append(f"{key} is not a valid topic")
    if "entity_category" in c and c["entity_category"] not in ENTITY_CATEGORIES:
        out.append("bad entity_category")
    if platform in ("sensor", "binary_sensor") and "state_topic" not in c:
        out.append("state_topic is required")
    if platform == "sensor":
        out += _sensor_problems(c)
    elif platform == "binary_sensor":
        if "device_class" in c and c["device_class"] not in BINARY_SENSOR_CLASSES:
            out.append(f"bad binary_sensor device_class {c['device_class']!r}")
    elif platform == "device_tracker":
        if "state_topic" not in c and "json_attributes_topic" not in c:
            out.append("a tracker needs state_topic or json_attributes_topic")
        if c.get("source_type", "gps") not in TRACKER_SOURCES:
            out.append("bad source_type")
    elif platform == "update":
        if "state_topic" not in c and "latest_version_topic" not in c:
            out.append("update needs state_topic or latest_version_topic")
        if c.get("device_class", "firmware") != "firmware":
            out.append("bad update device_class")
    return out


def _sensor_problems(c: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    device_class = c.get("device_class")
    unit = c.get("unit_of_measurement")
    state_class = c.get("state_class")
    if state_class is not None and state_class not in STATE_CLASSES:
        out.append(f"bad state_class {state_class!r}")
    if device_class is not None:
        if device_class not in SENSOR_UNITS:
            out.append(f"device_class {device_class!r} not known here")
            return out
        allowed = SENSOR_UNITS[device_class]
        if device_class in NON_NUMERIC:
            if unit is not None or state_class is not None:
                out.append(f"{device_class} takes neither unit nor state_class")
        elif allowed is not None and unit not in allowed:
            out.append(f"unit {unit!r} is not valid for {device_class}")
        if state_class is not None and state_class not in ONLY_STATE_CLASSES.get(
            device_class, STATE_CLASSES
        ):
            out.append(f"state_class {state_class} not allowed for {device_class}")
        if state_class == "measurement_angle" and device_class != "wind_direction":
            out.append("measurement_angle is only for wind_direction")
    return out


def numeric(config: Mapping[str, Any]) -> bool:
    """Whether HA will parse this sensor's state as a number."""
    if config.get("device_class") in NON_NUMERIC:
        return False
    return "unit_of_measurement" in config or "state_class" in config
