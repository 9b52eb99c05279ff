"""Fleet Telemetry as the car produces it: field configs, signal values, records (pure).

Rules of this file: no I/O, no clock, no wire format. A :class:`TelemetryEmitter` is fed a
car's snapshots (in time order) and answers with the records the car would send at that
instant; encodings live in :mod:`fleetlog.sim.encoding`, transport in
:mod:`fleetlog.sim.dispatch`.

Theory of operation (reference §3.1, §3.4, §3.8):

- A field is sent when its value changed (by at least ``minimum_delta`` for numbers, in
  metres for ``Location``), but not more often than ``interval_seconds``; an unchanged value
  goes out again after ``resend_interval_seconds``. A record carries only the fields due.
- On connecting (the car is online) and after a new config, the car sends every configured
  field at once.
- ``prefer_typed`` false: fields up to 178 go out as ``string_value`` (``"34.797"``,
  ``"true"``, Gear ``"D"``, Location ``"(48.137154 N, 11.575382 E)"``); true: typed values
  (``double_value``, ``ShiftStateD``, ``location_value``…). Fields from 179 on are always typed.
- ``delivery_policy`` ``latest``: a record whose ack got lost is followed, at the car's next
  step at least :data:`RESEND_AFTER_S` later, by a record flagged ``is_resend`` carrying the
  latest values of the unacked fields. ``no_retry`` never resends.
- Units are the telemetry's: miles, mph, kW, kWh, °C, bar ("atmospheres"), percent.
- A value the car does not have (speed while parked, gear when shifted out) is ``invalid``,
  as REST's ``null``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from random import Random
from typing import Any, Literal

from fleetlog.sim.car import Car, Snapshot
from fleetlog.sim.geo import Point, distance_m
from fleetlog.sim.payload import KM_PER_MILE
from fleetlog.sim.physics import pack_voltage_v

RESEND_AFTER_S = 5.0  # how long the car waits for an ack before resending
ALWAYS_TYPED_FROM = 179  # Field numbers from here on are typed whatever prefer_typed says

ValueKind = Literal[
    "string_value",
    "int_value",
    "double_value",
    "boolean_value",
    "location_value",
    "shift_state_value",
    "detailed_charge_state_value",
    "sentry_mode_state_value",
    "charge_port_latch_value",
    "fast_charger_value",
    "cable_type_value",
    "hvac_power_value",
    "door_value",
    "invalid",
]
DeliveryPolicy = Literal["latest", "no_retry"]
Connectivity = Literal["CONNECTED", "DISCONNECTED"]

DOORS = ("DriverFront", "DriverRear", "PassengerFront", "PassengerRear", "TrunkFront", "TrunkRear")


@dataclass(frozen=True, slots=True)
class Value:
    """One ``Value`` oneof: the member's proto name and its Python value.

    ``location_value`` holds ``(latitude, longitude)``; enum members hold the enum name
    (``"ShiftStateD"``); ``door_value`` a tuple of (door, open) pairs; ``invalid`` True.
    """

    kind: ValueKind
    value: Any


@dataclass(frozen=True, slots=True)
class Datum:
    field: str  # the Field enum name
    value: Value


@dataclass(frozen=True, slots=True)
class VRecord:
    """A ``V`` record (``Payload``) as the car sends it."""

    vin: str
    created_at: datetime
    data: tuple[Datum, ...]
    is_resend: bool = False


@dataclass(frozen=True, slots=True)
class ConnectivityRecord:
    """Added by the server when the car's socket registers or unregisters."""

    vin: str
    connection_id: str
    status: Connectivity
    created_at: datetime
    network_interface: str


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    audiences: tuple[str, ...]
    started_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertsRecord:
    vin: str
    created_at: datetime
    alerts: tuple[Alert, ...]


@dataclass(frozen=True, slots=True)
class VehicleError:
    name: str
    created_at: datetime
    tags: tuple[tuple[str, str], ...]
    body: str


@dataclass(frozen=True, slots=True)
class ErrorsRecord:
    vin: str
    created_at: datetime
    errors: tuple[VehicleError, ...]


Record = VRecord | ConnectivityRecord | AlertsRecord | ErrorsRecord


def record_type(record: Record) -> str:
    """The envelope topic: ``V``, ``connectivity``, ``alerts`` or ``errors``."""
    if isinstance(record, VRecord):
        return "V"
    if isinstance(record, ConnectivityRecord):
        return "connectivity"
    if isinstance(record, AlertsRecord):
        return "alerts"
    return "errors"


# ---------------------------------------------------------------------- field config


@dataclass(frozen=True, slots=True)
class FieldConfig:
    interval_seconds: float
    minimum_delta: float = 0.0
    resend_interval_seconds: float = 0.0  # 0 = never


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """The parts of a ``fleet_telemetry_config`` that shape what the car sends."""

    fields: dict[str, FieldConfig]
    prefer_typed: bool = False
    delivery_policy: DeliveryPolicy = "latest"
    alert_types: tuple[str, ...] = ("customer",)

    @classmethod
    def from_json(cls, config: dict[str, Any]) -> StreamConfig:
        """Read the config as stored by ``fleet_telemetry_config``; bad entries are skipped."""
        fields: dict[str, FieldConfig] = {}
        raw = config.get("fields")
        for name, spec in (raw if isinstance(raw, dict) else {}).items():
            if not isinstance(spec, dict):
                continue
            interval = _number(spec.get("interval_seconds"), 1.0)
            fields[str(name)] = FieldConfig(
                interval_seconds=max(1.0, interval),
                minimum_delta=max(0.0, _number(spec.get("minimum_delta"), 0.0)),
                resend_interval_seconds=max(0.0, _number(spec.get("resend_interval_seconds"), 0.0)),
            )
        policy = config.get("delivery_policy")
        alert_types = config.get("alert_types")
        return cls(
            fields=fields,
            prefer_typed=bool(config.get("prefer_typed", False)),
            delivery_policy="no_retry" if policy == "no_retry" else "latest",
            alert_types=tuple(str(a) for a in alert_types)
            if isinstance(alert_types, list)
            else ("customer",),
        )


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


# ---------------------------------------------------------------------- signals


@dataclass(frozen=True, slots=True)
class Signal:
    """How one Field is read off a snapshot.

    `read` returns the typed value in telemetry units (None = invalid); `kind` is the typed
    Value member; `digits` rounds doubles as the car does.
    """

    number: int
    kind: ValueKind
    read: Callable[[Car, Snapshot], Any]
    digits: int = 3


def _mi(km: float) -> float:
    return km / KM_PER_MILE


def _charging_kw(s: Snapshot, kind: str) -> float:
    dc = s.fast_charger_present
    if s.charging_state != "Charging" or dc != (kind == "dc"):
        return 0.0
    return s.charger_power_kw


_FAST_CHARGERS = {"Supercharger": "FastChargerSupercharger", "CHAdeMO": "FastChargerCHAdeMO"}


def _drive_current_a(s: Snapshot) -> float:
    return s.power_kw * 1000.0 / pack_voltage_v(s.battery_level)


SIGNALS: dict[str, Signal] = {
    "ChargeState": Signal(
        2, "string_value", lambda c, s: "Enable" if s.charging_state == "Charging" else "Idle"
    ),
    "VehicleSpeed": Signal(
        4, "double_value", lambda c, s: None if s.speed_kmh is None else _mi(s.speed_kmh), 1
    ),
    "Odometer": Signal(5, "double_value", lambda c, s: _mi(s.odometer_km)),
    "PackVoltage": Signal(6, "double_value", lambda c, s: pack_voltage_v(s.battery_level), 2),
    "PackCurrent": Signal(7, "double_value", lambda c, s: _drive_current_a(s), 1),
    "Soc": Signal(8, "double_value", lambda c, s: s.usable_battery_level),
    "Gear": Signal(
        10,
        "shift_state_value",
        lambda c, s: None if s.shift_state is None else f"ShiftState{s.shift_state}",
    ),
    "Location": Signal(21, "location_value", lambda c, s: (s.position.lat, s.position.lng), 6),
    "GpsHeading": Signal(23, "double_value", lambda c, s: s.heading_deg % 360, 1),
    "RatedRange": Signal(32, "double_value", lambda c, s: _mi(s.rated_range_km), 2),
    "DCChargingEnergyIn": Signal(34, "double_value", lambda c, s: s.charge_energy_added_kwh),
    "DCChargingPower": Signal(35, "double_value", lambda c, s: _charging_kw(s, "dc"), 2),
    "ACChargingEnergyIn": Signal(
        36,
        "double_value",
        lambda c, s: 0.0 if s.fast_charger_present else s.charge_energy_added_kwh,
    ),
    "ACChargingPower": Signal(37, "double_value", lambda c, s: _charging_kw(s, "ac"), 2),
    "ChargeLimitSoc": Signal(38, "int_value", lambda c, s: round(s.charge_limit_soc)),
    "FastChargerPresent": Signal(39, "boolean_value", lambda c, s: s.fast_charger_present),
    "EstBatteryRange": Signal(40, "double_value", lambda c, s: _mi(s.est_range_km), 2),
    "IdealBatteryRange": Signal(41, "double_value", lambda c, s: _mi(s.ideal_range_km), 2),
    "BatteryLevel": Signal(42, "double_value", lambda c, s: s.battery_level),
    "TimeToFullCharge": Signal(43, "double_value", lambda c, s: s.time_to_full_charge_h, 2),
    "ScheduledChargingPending": Signal(
        45, "boolean_value", lambda c, s: s.scheduled_charging_pending
    ),
    "ChargeAmps": Signal(49, "double_value", lambda c, s: s.charger_actual_current_a, 1),
    "ChargerPhases": Signal(51, "int_value", lambda c, s: s.charger_phases),
    "ChargeCurrentRequest": Signal(
        53, "int_value", lambda c, s: round(s.charger_pilot_current_a) or 16
    ),
    "BatteryHeaterOn": Signal(55, "boolean_value", lambda c, s: s.battery_heater_on),
    "DoorState": Signal(
        58,
        "door_value",
        lambda c, s: tuple((d, s.doors_open and d == "DriverFront") for d in DOORS),
    ),
    "Locked": Signal(59, "boolean_value", lambda c, s: s.locked),
    "VehicleName": Signal(64, "string_value", lambda c, s: c.spec.display_name),
    "SentryMode": Signal(
        65,
        "sentry_mode_state_value",
        lambda c, s: "SentryModeStateArmed" if s.sentry_mode else "SentryModeStateOff",
    ),
    "Version": Signal(68, "string_value", lambda c, s: s.car_version),
    "TpmsPressureFl": Signal(69, "double_value", lambda c, s: s.tpms_bar[0]),
    "TpmsPressureFr": Signal(70, "double_value", lambda c, s: s.tpms_bar[1]),
    "TpmsPressureRl": Signal(71, "double_value", lambda c, s: s.tpms_bar[2]),
    "TpmsPressureRr": Signal(72, "double_value", lambda c, s: s.tpms_bar[3]),
    "InsideTemp": Signal(85, "double_value", lambda c, s: s.inside_temp_c, 1),
    "OutsideTemp": Signal(86, "double_value", lambda c, s: s.outside_temp_c, 1),
    "MilesToArrival": Signal(
        109,
        "double_value",
        lambda c, s: None if s.route_remaining_km is None else _mi(s.route_remaining_km),
        2,
    ),
    "ChargePortLatch": Signal(
        118, "charge_port_latch_value", lambda c, s: f"ChargePortLatch{s.charge_port_latch}"
    ),
    "EnergyRemaining": Signal(158, "double_value", lambda c, s: s.energy_kwh),
    "ServiceMode": Signal(159, "boolean_value", lambda c, s: s.in_service),
    "DestinationName": Signal(163, "string_value", lambda c, s: s.route_destination),
    "DetailedChargeState": Signal(
        179, "detailed_charge_state_value", lambda c, s: f"DetailedChargeState{s.charging_state}"
    ),
    "ChargePortDoorOpen": Signal(183, "boolean_value", lambda c, s: s.charge_port_door_open),
    "ChargerVoltage": Signal(184, "double_value", lambda c, s: s.charger_voltage_v, 1),
    "ChargingCableType": Signal(
        185,
        "cable_type_value",
        lambda c, s: (
            f"CableType{s.conn_charge_cable}"
            if s.conn_charge_cable in ("IEC", "SAE")
            else "CableTypeSNA"
        ),
    ),
    "FastChargerType": Signal(
        193,
        "fast_charger_value",
        lambda c, s: (
            _FAST_CHARGERS.get(s.fast_charger_type, "FastChargerOther")
            if s.fast_charger_present
            else "FastChargerSNA"
        ),
    ),
    "HvacPower": Signal(
        201,
        "hvac_power_value",
        lambda c, s: (
            "HvacPowerStatePrecondition"
            if s.is_preconditioning
            else ("HvacPowerStateOn" if s.is_climate_on else "HvacPowerStateOff")
        ),
    ),
    "SoftwareUpdateDownloadPercentComplete": Signal(
        216, "int_value", lambda c, s: s.software_update.download_perc
    ),
    "SoftwareUpdateExpectedDurationMinutes": Signal(
        217, "int_value", lambda c, s: s.software_update.expected_duration_s // 60
    ),
    "SoftwareUpdateInstallationPercentComplete": Signal(
        218, "int_value", lambda c, s: s.software_update.install_perc
    ),
    "SoftwareUpdateVersion": Signal(220, "string_value", lambda c, s: s.software_update.version),
    "ChargeRateMilePerHour": Signal(256, "double_value", lambda c, s: _mi(s.charge_rate_kmh), 1),
}


def typed_value(car: Car, snap: Snapshot, name: str) -> Any:
    """The typed value of `name` now (rounded as the car sends it), or None if invalid."""
    signal = SIGNALS[name]
    value = signal.read(car, snap)
    if isinstance(value, float):
        value = round(value, signal.digits)
        return 0.0 if value == 0 else value  # no "-0.0" on the wire
    if isinstance(value, tuple) and signal.kind == "location_value":
        return (round(value[0], signal.digits), round(value[1], signal.digits))
    return value


def encode_value(name: str, value: Any, prefer_typed: bool) -> Value:
    """The ``Value`` the car puts on the wire for `value` of field `name`."""
    signal = SIGNALS[name]
    if value is None:
        return Value("invalid", True)
    if prefer_typed or signal.number >= ALWAYS_TYPED_FROM or signal.kind == "door_value":
        return Value(signal.kind, value)
    return Value("string_value", untyped_text(signal.kind, value))


def untyped_text(kind: ValueKind, value: Any) -> str:
    """How an untyped car spells a value: numbers as decimals, enums without prefix."""
    if kind == "location_value":
        lat, lng = value
        ns = "N" if lat >= 0 else "S"
        ew = "E" if lng >= 0 else "W"
        return f"({abs(lat):.6f} {ns}, {abs(lng):.6f} {ew})"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = f"{value:.6f}".rstrip("0").rstrip(".")
        return "0" if text in ("", "-0") else text
    if isinstance(value, int):
        return str(value)
    text = str(value)
    for prefix in ("ShiftState", "DetailedChargeState", "SentryModeState", "ChargePortLatch"):
        if kind != "string_value" and text.startswith(prefix):
            return text[len(prefix) :]
    return text


def _changed(name: str, old: Any, new: Any, min_delta: float) -> bool:
    if old == new:
        return False
    if old is None or new is None or min_delta <= 0:
        return True
    if SIGNALS[name].kind == "location_value":
        return distance_m(Point(*old), Point(*new)) >= min_delta
    if isinstance(old, int | float) and isinstance(new, int | float):
        return abs(float(new) - float(old)) >= min_delta
    return True


# ---------------------------------------------------------------------- the emitter


# Alerts the simulated car raises (names in Tesla's ``<ECU>_a<nnn>_<what>`` style).
ALERTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sentry": ("VCSEC_a209_sentryModeArmed", ("Customer",)),
    "service": ("UI_a160_serviceModeActive", ("Service", "Customer")),
    "update": ("UI_a020_softwareUpdateAvailable", ("Customer",)),
}


@dataclass(slots=True)
class _Sent:
    value: Any
    at: float


@dataclass(slots=True)
class TelemetryEmitter:
    """What one car sends for one config; see the module docstring for the rules."""

    vin: str
    config: StreamConfig
    rng: Random
    ack_loss: float = 0.0
    network_interface: Callable[[Snapshot], str] = lambda s: "cellular"
    connection_id: str | None = None
    _sent: dict[str, _Sent] = field(default_factory=dict)
    _unacked: dict[str, float] = field(default_factory=dict)  # field → when it was lost
    _alerts: dict[str, Alert] = field(default_factory=dict)
    _reported_unknown: bool = False

    @property
    def connected(self) -> bool:
        return self.connection_id is not None

    def step(self, car: Car, snap: Snapshot) -> list[Record]:
        """The records the car sends at `snap.time` (possibly none)."""
        t = snap.time
        out: list[Record] = []
        if snap.state != "online":
            if self.connection_id is not None:
                out.append(
                    ConnectivityRecord(
                        self.vin,
                        self.connection_id,
                        "DISCONNECTED",
                        t,
                        self.network_interface(snap),
                    )
                )
                self.connection_id = None
            return out
        if self.connection_id is None:
            cid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            self.connection_id = cid
            out.append(
                ConnectivityRecord(self.vin, cid, "CONNECTED", t, self.network_interface(snap))
            )
            # A fresh connection starts from nothing: every configured field goes out.
            self._sent.clear()
            self._unacked.clear()
            unknown = sorted(f for f in self.config.fields if f not in SIGNALS)
            if unknown and not self._reported_unknown:
                self._reported_unknown = True
                out.append(
                    ErrorsRecord(
                        self.vin,
                        t,
                        tuple(
                            VehicleError(
                                "unknown_field",
                                t,
                                (("field_name", name), ("name", "unknown_field")),
                                f"field {name} is not supported by this vehicle",
                            )
                            for name in unknown
                        ),
                    )
                )
        v = self._v_records(car, snap)
        out.extend(v)
        alerts = self._alert_record(snap)
        if alerts is not None:
            out.append(alerts)
        return out

    def _v_records(self, car: Car, snap: Snapshot) -> list[Record]:
        now = snap.time.timestamp()
        typed = self.config.prefer_typed
        due: list[Datum] = []
        resend: list[Datum] = []
        for name, fc in self.config.fields.items():
            if name not in SIGNALS:
                continue
            value = typed_value(car, snap, name)
            last = self._sent.get(name)
            send = last is None
            if last is not None and now - last.at >= fc.interval_seconds - 1e-6:
                send = _changed(name, last.value, value, fc.minimum_delta) or (
                    fc.resend_interval_seconds > 0
                    and now - last.at >= fc.resend_interval_seconds - 1e-6
                )
            lost = self._unacked.get(name)
            if send:
                due.append(Datum(name, encode_value(name, value, typed)))
                self._sent[name] = _Sent(value, now)
                self._unacked.pop(name, None)
            elif lost is not None and now - lost >= RESEND_AFTER_S - 1e-6:
                resend.append(Datum(name, encode_value(name, value, typed)))
                self._sent[name] = _Sent(value, now)
                del self._unacked[name]
        out: list[Record] = []
        for data, is_resend in ((due, False), (resend, True)):
            if not data:
                continue
            out.append(VRecord(self.vin, snap.time, tuple(data), is_resend))
            if (
                self.config.delivery_policy == "latest"
                and self.ack_loss > 0
                and self.rng.random() < self.ack_loss
            ):
                for d in data:
                    self._unacked[d.field] = now
        return out

    def _alert_record(self, snap: Snapshot) -> AlertsRecord | None:
        active = set(snap.keep_awake)
        if snap.software_update.status == "available":
            active.add("update")
        if snap.in_service:
            active.add("service")
        wanted = {a.lower().replace("-", "") for a in self.config.alert_types}
        changed: list[Alert] = []
        for key, (name, audiences) in ALERTS.items():
            if not {a.lower() for a in audiences} & wanted:
                continue
            open_alert = self._alerts.get(key)
            if key in active and open_alert is None:
                alert = Alert(name, audiences, snap.time)
                self._alerts[key] = alert
                changed.append(alert)
            elif key not in active and open_alert is not None:
                changed.append(Alert(name, audiences, open_alert.started_at, snap.time))
                del self._alerts[key]
        return AlertsRecord(self.vin, snap.time, tuple(changed)) if changed else None
