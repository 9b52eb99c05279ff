"""Fleet Telemetry fields → :class:`VehicleState` (reference §3.4, §3.6, §3.9).

Rules of this file: no I/O, no wire format. Every transport (protobuf, protojson, the
MQTT dispatcher's bare JSON, Teslemetry's SSE) first turns a datum into a *plain value*
— a number, a string, a bool, a ``(lat, lon)`` pair, a dict of flags, or :data:`INVALID`
— and this module reads plain values into canonical units. A car may send any field
typed or as a string (``prefer_typed``; the type changes between firmware versions), and
enum names with or without their prefix (``ShiftStateD`` / ``D``), so every reader here
accepts all of them.

Derived fields need more than one datum (drive power is PackVoltage × PackCurrent; the
charger power is AC or DC; "a window is open" needs all four windows), so
:func:`state_from_fields` reads the record's own fields and, for those, the VIN's latest
known values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import fields as dc_fields
from typing import Any, Final

from fleetlog.model import units
from fleetlog.model.observation import CHARGING_STATES, SHIFT_STATES, VehicleState


class _Invalid:
    """The ``invalid`` Value member: the car has no value (REST's null)."""

    _instance: _Invalid | None = None

    def __new__(cls) -> _Invalid:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = _Invalid()

# A datum's value once the wire format is gone (see the module docstring).
Plain = float | int | str | bool | tuple[float, float] | dict[str, Any] | _Invalid


_LOCATION_TEXT = re.compile(
    r"^\(\s*([0-9]+(?:\.[0-9]+)?)\s*([NS])\s*,\s*([0-9]+(?:\.[0-9]+)?)\s*([EW])\s*\)$"
)


def location(value: Plain) -> tuple[float, float] | None:
    """A (lat, lon) from a LocationValue pair/object or the ``"(lat N, lon W)"`` string."""
    lat: float | None
    lon: float | None
    if isinstance(value, tuple):
        lat, lon = units.number(value[0]), units.number(value[1])
    elif isinstance(value, dict):
        lat, lon = units.number(value.get("latitude")), units.number(value.get("longitude"))
    elif isinstance(value, str):
        match = _LOCATION_TEXT.match(value.strip())
        if match is None:
            raise units.UnitError(f"not a location: {value[:40]!r}")
        lat = float(match[1]) * (-1 if match[2] == "S" else 1)
        lon = float(match[3]) * (-1 if match[4] == "W" else 1)
    else:
        raise units.UnitError(f"not a location: {type(value).__name__}")
    if lat is None or lon is None:
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise units.UnitError(f"location out of range: {lat}, {lon}")
    return lat, lon


def enum_member(value: Plain, prefix: str) -> str | None:
    """The enum member without its prefix: ``ShiftStateD`` and ``D`` both give ``D``."""
    if not isinstance(value, str):
        raise units.UnitError(f"expected an enum name, got {type(value).__name__}")
    text = value.strip()
    if text.startswith(prefix):
        text = text[len(prefix) :]
    return text or None


def _number(value: Plain) -> float | None:
    if isinstance(value, tuple | dict):
        raise units.UnitError(f"expected a number, got {type(value).__name__}")
    return units.number(value)


def _flag(value: Plain) -> bool | None:
    if isinstance(value, tuple | dict):
        raise units.UnitError(f"expected a boolean, got {type(value).__name__}")
    return units.boolean(value)


def _text(value: Plain) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool | tuple | dict):
        raise units.UnitError(f"expected text, got {type(value).__name__}")
    return str(value)


def _int(value: Plain) -> int | None:
    n = _number(value)
    return None if n is None else round(n)


# --- one field → state attributes ---------------------------------------------------


def _shift(value: Plain) -> dict[str, Any]:
    member = enum_member(value, "ShiftState")
    # Invalid/SNA/Unknown say "not in a gear we know", which is not "parked": leave unsaid.
    return {"shift_state": member} if member in SHIFT_STATES else {}


def _charging(value: Plain) -> dict[str, Any]:
    member = enum_member(value, "DetailedChargeState")
    return {"charging_state": member} if member in CHARGING_STATES else {}


def _sentry(value: Plain) -> dict[str, Any]:
    if isinstance(value, bool) or (isinstance(value, str) and value.lower() in ("true", "false")):
        return {"sentry_mode": _flag(value)}
    member = enum_member(value, "SentryModeState")
    if member in (None, "Unknown"):
        return {}
    return {"sentry_mode": member != "Off"}


def _location(value: Plain) -> dict[str, Any]:
    point = location(value)
    return {} if point is None else {"latitude": point[0], "longitude": point[1]}


def _doors(value: Plain) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise units.UnitError(f"expected the Doors object, got {type(value).__name__}")
    flags = {k: units.boolean(v) for k, v in value.items() if k in _DOOR_NAMES}
    doors = [flags.get(k) for k in ("DriverFront", "DriverRear", "PassengerFront", "PassengerRear")]
    out: dict[str, Any] = {}
    # protojson emits every door (EmitUnpopulated); a missing key is a closed door.
    out["doors_open"] = any(bool(d) for d in doors)
    out["frunk_open"] = bool(flags.get("TrunkFront"))
    out["trunk_open"] = bool(flags.get("TrunkRear"))
    return out


_DOOR_NAMES = frozenset(
    {"DriverFront", "DriverRear", "PassengerFront", "PassengerRear", "TrunkFront", "TrunkRear"}
)


def _hvac(value: Plain) -> dict[str, Any]:
    member = enum_member(value, "HvacPowerState")
    if member in (None, "Unknown"):
        return {}
    return {"is_climate_on": member != "Off", "is_preconditioning": member == "Precondition"}


_KEEPER = {"Off": "off", "On": "on", "Dog": "dog", "Party": "camp"}


def _keeper(value: Plain) -> dict[str, Any]:
    member = enum_member(value, "ClimateKeeperModeState")
    return {"climate_keeper_mode": _KEEPER[member]} if member in _KEEPER else {}


def _named(attr: str, prefix: str, *, lower: bool = False) -> Callable[[Plain], dict[str, Any]]:
    def read(value: Plain) -> dict[str, Any]:
        member = enum_member(value, prefix)
        if member in (None, "Unknown", "SNA", "Invalid"):
            return {}
        return {attr: member.lower() if lower and member else member}

    return read


_CAR_TYPES = {
    "ModelS": "models",
    "ModelX": "modelx",
    "Model3": "model3",
    "ModelY": "modely",
    "Cybertruck": "cybertruck",
    "SemiTruck": "semi",
}


def _car_type(value: Plain) -> dict[str, Any]:
    member = enum_member(value, "CarType")
    return {"car_type": _CAR_TYPES[member]} if member in _CAR_TYPES else {}


def _phases(value: Plain) -> dict[str, Any]:
    n = _int(value)
    return {"charger_phases": n} if n else {}  # REST's 0/None both mean "no AC phases"


def _conv(attr: str, convert: Callable[[Plain], Any]) -> Callable[[Plain], dict[str, Any]]:
    def read(value: Plain) -> dict[str, Any]:
        converted = convert(value)
        return {} if converted is None else {attr: converted}

    return read


def _miles(value: Plain) -> float | None:
    n = _number(value)
    return None if n is None else n * units.KM_PER_MILE


READERS: Mapping[str, Callable[[Plain], dict[str, Any]]] = {
    "VehicleSpeed": _conv("speed_kmh", _miles),
    "Odometer": _conv("odometer_km", _miles),
    "Location": _location,
    "GpsHeading": _conv("heading", _int),
    "Gear": _shift,
    "BatteryLevel": _conv("battery_level", _int),
    "Soc": _conv("usable_battery_level", _int),
    "RatedRange": _conv("rated_range_km", _miles),
    "EstBatteryRange": _conv("est_range_km", _miles),
    "IdealBatteryRange": _conv("ideal_range_km", _miles),
    "DetailedChargeState": _charging,
    "ChargerVoltage": _conv("charger_voltage", _int),
    "ChargeAmps": _conv("charger_actual_current", _int),
    "ChargeCurrentRequest": _conv("charger_pilot_current", _int),
    "ChargerPhases": _phases,
    "ChargeLimitSoc": _conv("charge_limit_soc", _int),
    "FastChargerPresent": _conv("fast_charger_present", _flag),
    "FastChargerType": _named("fast_charger_type", "FastCharger"),
    "ChargingCableType": _named("conn_charge_cable", "CableType"),
    "ChargePortDoorOpen": _conv("charge_port_door_open", _flag),
    "TimeToFullCharge": _conv("time_to_full_charge_h", _number),
    "BatteryHeaterOn": _conv("battery_heater_on", _flag),
    "NotEnoughPowerToHeat": _conv("not_enough_power_to_heat", _flag),
    "InsideTemp": _conv("inside_temp_c", _number),
    "OutsideTemp": _conv("outside_temp_c", _number),
    "HvacPower": _hvac,
    "HvacLeftTemperatureRequest": _conv("driver_temp_setting_c", _number),
    "HvacRightTemperatureRequest": _conv("passenger_temp_setting_c", _number),
    "HvacFanSpeed": _conv("fan_status", _int),
    "ClimateKeeperMode": _keeper,
    "Locked": _conv("locked", _flag),
    "SentryMode": _sentry,
    "DoorState": _doors,
    "VehicleName": _conv("display_name", _text),
    "Version": _conv("car_version", _text),
    "ServiceMode": _conv("in_service", _flag),
    "TpmsPressureFl": _conv("tpms_pressure_fl_bar", _number),
    "TpmsPressureFr": _conv("tpms_pressure_fr_bar", _number),
    "TpmsPressureRl": _conv("tpms_pressure_rl_bar", _number),
    "TpmsPressureRr": _conv("tpms_pressure_rr_bar", _number),
    "SoftwareUpdateVersion": _conv("update_version", _text),
    "SoftwareUpdateDownloadPercentComplete": _conv("update_download_perc", _int),
    "SoftwareUpdateInstallationPercentComplete": _conv("update_install_perc", _int),
    "CarType": _car_type,
    "Trim": _conv("trim_badging", _text),
    "ExteriorColor": _conv("exterior_color", _text),
    "WheelType": _conv("wheel_type", _text),
}

# Fields read only together with others (see derived()).
_WINDOWS = ("FdWindow", "FpWindow", "RdWindow", "RpWindow")
DERIVED_INPUTS: frozenset[str] = frozenset(
    {
        "PackVoltage",
        "PackCurrent",
        "ACChargingPower",
        "DCChargingPower",
        "ACChargingEnergyIn",
        "DCChargingEnergyIn",
        *_WINDOWS,
    }
)
# Every field that contributes to an observation: what a logger should configure.
KNOWN_FIELDS: frozenset[str] = frozenset(READERS) | DERIVED_INPUTS

_STATE_FIELDS = frozenset(f.name for f in dc_fields(VehicleState))


def _window_open(value: Plain) -> bool | None:
    if isinstance(value, bool):
        return value
    member = enum_member(value, "WindowState")
    if member in ("Closed", "0", "false"):
        return False
    if member in ("PartiallyOpen", "Opened", "1", "2", "true"):
        return True
    return None


def _derived(record: Mapping[str, Plain], known: Mapping[str, Plain]) -> dict[str, Any]:
    """Values that need several fields; `known` is the VIN's latest value of each field."""
    out: dict[str, Any] = {}
    if {"PackVoltage", "PackCurrent"} & record.keys():
        volts, amps = known.get("PackVoltage"), known.get("PackCurrent")
        if volts is not None and amps is not None and INVALID not in (volts, amps):
            v, a = _number(volts), _number(amps)
            if v is not None and a is not None:
                out["power_kw"] = v * a / 1000.0
    if {"ACChargingPower", "DCChargingPower"} & record.keys():
        powers = [
            p
            for p in (known.get("ACChargingPower"), known.get("DCChargingPower"))
            if p is not None and p is not INVALID
        ]
        numbers = [n for n in map(_number, powers) if n is not None]
        if numbers:
            out["charger_power_kw"] = max(numbers)
    if {"ACChargingEnergyIn", "DCChargingEnergyIn"} & record.keys():
        # DCChargingEnergyIn is measured at the battery and holds for AC and DC sessions.
        for name in ("DCChargingEnergyIn", "ACChargingEnergyIn"):
            value = known.get(name)
            if value is not None and value is not INVALID:
                energy = _number(value)
                if energy is not None:
                    out["charge_energy_added_kwh"] = energy
                    break
    if set(_WINDOWS) & record.keys():
        present = [x for w in _WINDOWS if (x := known.get(w)) is not None and x is not INVALID]
        states = [_window_open(v) for v in present]
        seen = [s for s in states if s is not None]
        if seen:
            out["windows_open"] = any(seen)
    return out


def state_from_fields(
    record: Mapping[str, Plain], known: Mapping[str, Plain] | None = None
) -> tuple[VehicleState, list[str]]:
    """Read one record's fields; returns the partial state and a problem per bad field.

    `known` is the VIN's latest value of every field, this record's included (defaults
    to the record itself). A field that cannot be read is left out and named in the
    problems; unknown fields are ignored (a logger reads what it understands).
    """
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in record.items():
        reader = READERS.get(name)
        if reader is None or value is INVALID:
            continue
        try:
            values.update(reader(value))
        except (units.UnitError, TypeError, ValueError, AttributeError) as exc:
            problems.append(f"{name}: {exc}")
    try:
        values.update(_derived(record, record if known is None else known))
    except (units.UnitError, TypeError, ValueError, AttributeError) as exc:
        problems.append(f"derived: {exc}")
    return VehicleState(**{k: v for k, v in values.items() if k in _STATE_FIELDS}), problems
