"""The Fleet Telemetry field configuration a logger asks a car for, and what it costs.

Tesla bills streamed signals one by one ($1 per 150,000, reference §2.1), so a profile is
a trade between cost and precision. Every field here is one fleetlog reads (``fields``);
how often it is sent follows reference §3.8: on change, no more often than
``interval_seconds``, small changes held back by ``minimum_delta`` (metres for Location),
an unchanged value repeated every ``resend_interval_seconds``.

The estimate assumes a typical car (:class:`Usage`): an hour of driving at 40 km/h, two
hours of (AC) charging and a few hours awake otherwise per day. A field is counted once per
interval while it can change, times its ``change_share``: how often it really has moved
by ``minimum_delta`` when its interval comes round (heading on a straight road, AC charging
power at a wallbox and pack voltage mostly stand still). The shares were checked against the
simulator's billed signals (docs/streaming.md); the simulator's cruise speed is steadier
than a real car's, so speed keeps a cautious share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

USD_PER_SIGNAL = 1.0 / 150_000

Kind = Literal["moving", "charging", "ac", "dc", "event"]


@dataclass(frozen=True, slots=True)
class FieldRule:
    name: str
    kind: Kind  # changes continuously while driving / while charging / a few times a day
    interval_s: int
    minimum_delta: float | None = None
    resend_s: int | None = None
    change_share: float = 1.0  # of its intervals in which the value has really changed


@dataclass(frozen=True, slots=True)
class Usage:
    driving_s: float = 3_600.0
    charging_s: float = 7_200.0  # AC and DC together
    dc_charging_s: float = 600.0  # of which at a fast charger (a stop every few days)
    awake_s: float = 4 * 3_600.0
    speed_m_s: float = 11.0
    events_per_day: float = 6.0


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    summary: str
    rules: tuple[FieldRule, ...]

    def config(self) -> dict[str, Any]:
        """The ``fields`` object of ``fleet_telemetry_config``."""
        out: dict[str, Any] = {}
        for r in self.rules:
            spec: dict[str, Any] = {"interval_seconds": r.interval_s}
            if r.minimum_delta is not None:
                spec["minimum_delta"] = r.minimum_delta
            if r.resend_s is not None:
                spec["resend_interval_seconds"] = r.resend_s
            out[r.name] = spec
        return out

    def signals_per_day(self, usage: Usage = Usage()) -> float:
        total = 0.0
        for r in self.rules:
            if r.kind == "moving":
                every = float(r.interval_s)
                if r.name == "Location" and r.minimum_delta:
                    every = max(every, r.minimum_delta / usage.speed_m_s)
                total += usage.driving_s / every * r.change_share
            elif r.kind in ("charging", "ac", "dc"):
                seconds = {"charging": usage.charging_s, "dc": usage.dc_charging_s,
                           "ac": usage.charging_s - usage.dc_charging_s}[r.kind]  # fmt: skip
                total += seconds / max(r.interval_s, 60 if r.minimum_delta else 1) * r.change_share
            else:
                total += usage.events_per_day
            if r.resend_s:
                total += usage.awake_s / r.resend_s
        return total

    def monthly_usd(self, usage: Usage = Usage()) -> float:
        return self.signals_per_day(usage) * 30 * USD_PER_SIGNAL


_EVENTS = ("Gear", "DetailedChargeState", "Locked", "SentryMode", "Version", "VehicleName",
           "FastChargerPresent", "FastChargerType", "ChargingCableType", "ChargePortDoorOpen",
           "ChargeLimitSoc", "ChargerPhases", "HvacPower", "DoorState", "ServiceMode",
           "SoftwareUpdateVersion", "SoftwareUpdateDownloadPercentComplete",
           "SoftwareUpdateInstallationPercentComplete")  # fmt: skip


def _events(interval: int) -> tuple[FieldRule, ...]:
    return tuple(FieldRule(name, "event", interval) for name in _EVENTS)


PROFILES: dict[str, Profile] = {
    "economy": Profile(
        "economy",
        "a position every ~50 m, slow fields only on change; drives and charges, coarse curves",
        (
            FieldRule("Location", "moving", 5, minimum_delta=50),
            FieldRule("VehicleSpeed", "moving", 30, minimum_delta=5),
            FieldRule("Odometer", "moving", 60, minimum_delta=0.5),
            FieldRule("BatteryLevel", "charging", 60, minimum_delta=1, change_share=0.5),
            FieldRule("Soc", "charging", 60, minimum_delta=1, change_share=0.5),
            FieldRule("RatedRange", "charging", 300, minimum_delta=2),
            FieldRule("ACChargingPower", "ac", 120, minimum_delta=1, change_share=0.3),
            FieldRule("DCChargingPower", "dc", 60, minimum_delta=5),
            FieldRule("DCChargingEnergyIn", "charging", 300, minimum_delta=0.5),
            FieldRule("OutsideTemp", "event", 600, minimum_delta=1),
            FieldRule("InsideTemp", "event", 600, minimum_delta=1),
            *_events(10),
        ),
    ),
    "balanced": Profile(
        "balanced",
        "a position every ~15 m or 2 s, charging curve each minute",
        (
            FieldRule("Location", "moving", 2, minimum_delta=15),
            FieldRule("VehicleSpeed", "moving", 5, minimum_delta=2, change_share=0.5),
            FieldRule("GpsHeading", "moving", 10, minimum_delta=10, change_share=0.25),
            FieldRule("Odometer", "moving", 30, minimum_delta=0.1),
            FieldRule("PackVoltage", "moving", 10, minimum_delta=2, change_share=0.1),
            FieldRule("PackCurrent", "moving", 10, minimum_delta=5, change_share=0.6),
            FieldRule("BatteryLevel", "charging", 30, minimum_delta=1, change_share=0.5),
            FieldRule("Soc", "charging", 30, minimum_delta=1, change_share=0.5),
            FieldRule("RatedRange", "charging", 60, minimum_delta=1),
            FieldRule("EstBatteryRange", "charging", 120, minimum_delta=2),
            FieldRule("ACChargingPower", "ac", 60, change_share=0.3),
            FieldRule("DCChargingPower", "dc", 30),
            FieldRule("DCChargingEnergyIn", "charging", 60, minimum_delta=0.1),
            FieldRule("ChargerVoltage", "ac", 60, minimum_delta=5, change_share=0.15),
            FieldRule("ChargeAmps", "ac", 60, minimum_delta=1, change_share=0.3),
            FieldRule("OutsideTemp", "event", 300, minimum_delta=0.5),
            FieldRule("InsideTemp", "event", 300, minimum_delta=0.5),
            *_events(5),
        ),
    ),
    "precise": Profile(
        "precise",
        "1 s positions and speed while driving, power and charging at 1–10 s (TeslaMate-like)",
        (
            FieldRule("Location", "moving", 1),
            FieldRule("VehicleSpeed", "moving", 1, change_share=0.5),
            FieldRule("GpsHeading", "moving", 1, change_share=0.25),
            FieldRule("Odometer", "moving", 5),
            FieldRule("PackVoltage", "moving", 1, change_share=0.3),
            FieldRule("PackCurrent", "moving", 1, change_share=0.6),
            FieldRule("BatteryLevel", "charging", 10),
            FieldRule("Soc", "charging", 10),
            FieldRule("RatedRange", "charging", 10),
            FieldRule("EstBatteryRange", "charging", 10),
            FieldRule("IdealBatteryRange", "charging", 60),
            FieldRule("ACChargingPower", "ac", 10, change_share=0.15),
            FieldRule("DCChargingPower", "dc", 5),
            FieldRule("ACChargingEnergyIn", "ac", 10, change_share=0.35),
            FieldRule("DCChargingEnergyIn", "charging", 10, change_share=0.35),
            FieldRule("ChargerVoltage", "ac", 10, minimum_delta=0.3, change_share=0.15),
            FieldRule("ChargeAmps", "ac", 10, change_share=0.15),
            FieldRule("TimeToFullCharge", "charging", 60),
            FieldRule("OutsideTemp", "event", 60),
            FieldRule("InsideTemp", "event", 60, minimum_delta=0.3),
            *_events(1),
        ),
    ),
}


def fleet_telemetry_config(
    profile: Profile, *, hostname: str, port: int = 443, ca: str = "", expires_at: int | None = None
) -> dict[str, Any]:
    """The whole ``config`` object for ``POST /api/1/vehicles/fleet_telemetry_config``."""
    config: dict[str, Any] = {
        "hostname": hostname,
        "port": port,
        "ca": ca,
        "fields": profile.config(),
        "alert_types": ["service"],
        "prefer_typed": True,
        "delivery_policy": "latest",
    }
    if expires_at is not None:
        config["exp"] = expires_at
    return config
