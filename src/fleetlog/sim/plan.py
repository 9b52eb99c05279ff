"""The scenario vocabulary: who the car is, and what happens to it when.

A car's plan has two parts. *Activities* happen one after another (drive, charge, drive):
each starts at its own time or a gap after the previous one ends, because how long a drive
or a charge takes comes out of the physics, not out of the plan. *Windows* are time spans
laid over everything else (offline in a garage, sentry on, climate on, in service, someone
sitting in the car, a software update); the car model reads them as facts about the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from fleetlog.sim.geo import Place, Route
from fleetlog.sim.physics import Body

Region = Literal["na", "eu"]
WindowKind = Literal[
    "offline", "sentry", "climate", "dog", "precondition", "service", "present", "door"
]


@dataclass(frozen=True, slots=True)
class CarSpec:
    """A car's identity and its fixed characteristics."""

    id: int
    vehicle_id: int
    vin: str
    display_name: str
    car_type: str = "model3"  # vehicle_config.car_type
    trim_badging: str = "74d"
    exterior_color: str = "MidnightSilver"
    wheel_type: str = "Pinwheel18"
    region: Region = "eu"
    capacity_kwh: float = 82.0  # gross pack energy
    usable_share: float = 0.915  # the part of it between 0 % and 100 % SoC
    rated_wh_per_km: float = 150.0  # the efficiency behind rated range
    ideal_wh_per_km: float = 143.0
    ac_max_amps: float = 16.0  # on-board charger limit per phase
    dc_peak_kw: float = 250.0
    body: Body = field(default_factory=Body)
    car_version: str = "2025.2.6 9f53b02a1b7c"
    model_year: int = 2022
    key_paired: bool = True
    idle_sleep_s: float = 900.0  # time without activity before the car falls asleep

    @property
    def usable_kwh(self) -> float:
        return self.capacity_kwh * self.usable_share


@dataclass(frozen=True, slots=True)
class Start:
    """When a sequential activity begins: at a time, or a gap after the previous one ends."""

    at: datetime | None = None
    after: timedelta = timedelta(0)


@dataclass(frozen=True, slots=True)
class Drive:
    """Drive a route. The driver arrives at `start` and sets off a minute later."""

    route: Route
    start: Start
    speed_factor: float = 1.0  # the driver's share of the speed limit


@dataclass(frozen=True, slots=True)
class ChargeSite:
    """Where a car charges and what the equipment gives."""

    place: Place
    kind: Literal["ac", "dc"]
    phases: int = 3  # AC only
    voltage_v: float = 230.0  # AC phase voltage
    amps: float = 16.0  # AC line current offered
    max_kw: float = 11.0  # DC: the stall's limit
    fast_charger_type: str = "Supercharger"
    fast_charger_brand: str = "Tesla"
    name: str = ""


@dataclass(frozen=True, slots=True)
class Charge:
    """Plug in at the car's current position and charge towards `limit_soc`.

    `start_charging_at` models scheduled (off-peak) charging: plugged in but "Stopped"
    until then. The cable comes out at `unplug_at`, `unplug_after_complete` after
    reaching the limit, or when the next activity is due, whichever comes first.
    """

    site: ChargeSite
    start: Start
    limit_soc: float = 80.0
    start_charging_at: datetime | None = None
    unplug_at: datetime | None = None
    unplug_after_complete: timedelta | None = None


Activity = Drive | Charge


@dataclass(frozen=True, slots=True)
class Window:
    """A span of time during which something holds for the car."""

    kind: WindowKind
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class SoftwareUpdate:
    """An update becomes available, downloads, waits, installs, and changes `car_version`."""

    version: str
    available_at: datetime
    download_s: float
    install_at: datetime
    install_s: float


@dataclass(frozen=True, slots=True)
class CarPlan:
    """Everything a scenario says about one car."""

    spec: CarSpec
    home: Place
    soc: float
    activities: tuple[Activity, ...] = ()
    windows: tuple[Window, ...] = ()
    updates: tuple[SoftwareUpdate, ...] = ()
    odometer_km: float = 18_000.0
    charge_limit_soc: float = 80.0
