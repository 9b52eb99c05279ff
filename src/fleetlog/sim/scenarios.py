"""Named scenarios: deterministic plans for one or more cars, for a given seed.

Each builder states the story in local time ("Tuesday 19:00, to the supermarket, sentry on
while parked there") through a small planner that turns it into activities and windows.
The same seed always gives the same scenario, to the metre and the second.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random

from fleetlog.sim.geo import Place, Point, Route, distance_m, offset, plan_route
from fleetlog.sim.physics import Weather
from fleetlog.sim.plan import (
    Activity,
    CarPlan,
    CarSpec,
    Charge,
    ChargeSite,
    Drive,
    Region,
    SoftwareUpdate,
    Start,
    Window,
    WindowKind,
)


@dataclass(frozen=True, slots=True)
class Scenario:
    """Cars, their plans and the weather, from `start` to `end` (UTC)."""

    name: str
    description: str
    start: datetime
    end: datetime
    region: Region
    weather: Weather
    cars: tuple[CarPlan, ...]


# ------------------------------------------------------------------ identities

_VIN_VALUES = {
    c: v
    for v, chars in enumerate(
        ["0", "AJ1", "BKS2", "CLT3", "DMU4", "ENV5", "FW6", "GPX7", "HY8", "RZ9"]
    )
    for c in chars
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_MODELS = {
    # car_type: (WMI+VDS prefix, trim, capacity kWh, usable share, rated Wh/km, DC peak kW, wheels)
    "model3": ("5YJ3E7EB", "74d", 82.0, 0.915, 150.0, 250.0, "Pinwheel18"),
    "modely": ("7SAYGDEE", "74d", 81.0, 0.92, 162.0, 250.0, "Gemini19"),
    "models": ("5YJSA7E2", "100d", 100.0, 0.95, 175.0, 250.0, "Tempest19"),
    "modelx": ("5YJXCAE4", "100d", 100.0, 0.95, 200.0, 250.0, "Turbine20"),
}
_COLOURS = ("MidnightSilver", "PearlWhite", "SolidBlack", "DeepBlue", "RedMulticoat", "Quicksilver")


def _vin(prefix: str, year: int, rng: Random) -> str:
    year_code = "ABCDEFGHJKLMNPRSTVWXY123456789"[(year - 2010) % 30]
    body = f"{prefix}X{year_code}F{rng.randint(0, 999_999):06d}"
    check = sum(_VIN_VALUES[c] * w for c, w in zip(body, _VIN_WEIGHTS, strict=True)) % 11
    return body[:8] + ("X" if check == 10 else str(check)) + body[9:]


def make_spec(
    rng: Random, n: int, region: Region, car_type: str = "model3", name: str = ""
) -> CarSpec:
    """A car identity and battery from the seed: VIN with a valid check digit, ids, colour."""
    prefix, trim, cap, share, rated, dc, wheels = _MODELS[car_type]
    year = rng.choice((2021, 2022, 2023, 2024))
    return CarSpec(
        id=1_492_931_337_150_000 + n * 1_117 + rng.randint(0, 999),
        vehicle_id=1_000_000_000 + n * 7_919 + rng.randint(0, 999),
        vin=_vin(prefix, year, rng),
        display_name=name or f"Car {n + 1}",
        car_type=car_type,
        trim_badging=trim,
        exterior_color=rng.choice(_COLOURS),
        wheel_type=wheels,
        region=region,
        capacity_kwh=cap,
        usable_share=share,
        rated_wh_per_km=rated,
        ideal_wh_per_km=rated * 0.95,
        ac_max_amps=16.0 if region == "eu" else 48.0,
        dc_peak_kw=dc,
        model_year=year,
    )


# ------------------------------------------------------------------ the planner


class _Planner:
    """Turns a local-time story into one car's activities and windows."""

    def __init__(
        self, start: datetime, utc_offset_s: int, rng: Random, home: Place, region: Region
    ) -> None:
        self.start = start
        self.offset = timedelta(seconds=utc_offset_s)
        self.rng = rng
        self.home = home
        self.region = region
        self.here = home
        self.activities: list[Activity] = []
        self.windows: list[Window] = []
        self.updates: list[SoftwareUpdate] = []
        self._routes: dict[tuple[str, str], Route] = {}
        self.highway_kmh = 130.0 if region == "eu" else 113.0
        self.city_kmh = 50.0 if region == "eu" else 56.0

    def at(self, day: int, hhmm: str, jitter_min: float = 0.0) -> datetime:
        """Local `hhmm` on scenario day `day`, jittered by up to ± `jitter_min` minutes."""
        h, m = (int(x) for x in hhmm.split(":"))
        local_midnight = (self.start + self.offset).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        t = local_midnight + timedelta(days=day, hours=h, minutes=m) - self.offset
        if jitter_min:
            t += timedelta(seconds=round(self.rng.uniform(-jitter_min, jitter_min) * 60))
        return t

    def route(self, a: Place, b: Place, via: tuple[Place, ...] = ()) -> Route:
        key = (a.name, b.name)
        if key not in self._routes:
            self._routes[key] = plan_route(
                a,
                b,
                Random(f"{a.name}|{b.name}|{self.rng.random()}"),
                via=via,
                highway_kmh=self.highway_kmh,
                city_kmh=self.city_kmh,
            )
        return self._routes[key]

    def drive(
        self,
        to: Place,
        at: datetime | None = None,
        after: timedelta = timedelta(minutes=2),
        via: tuple[Place, ...] = (),
    ) -> Route:
        route = self.route(self.here, to, via)
        self.activities.append(
            Drive(
                route,
                Start(at, after if at is None else timedelta(0)),
                self.rng.uniform(0.92, 1.05),
            )
        )
        self.here = to
        return route

    def charge(
        self,
        site: ChargeSite,
        limit: float = 80.0,
        at: datetime | None = None,
        after: timedelta = timedelta(minutes=3),
        scheduled: datetime | None = None,
        unplug_after_complete: timedelta | None = None,
        unplug_at: datetime | None = None,
    ) -> None:
        self.activities.append(
            Charge(
                site,
                Start(at, after if at is None else timedelta(0)),
                limit,
                scheduled,
                unplug_at,
                unplug_after_complete,
            )
        )

    def window(self, kind: WindowKind, start: datetime, end: datetime) -> None:
        self.windows.append(Window(kind, start, end))

    def plan(self, spec: CarSpec, soc: float, odometer_km: float) -> CarPlan:
        return CarPlan(
            spec,
            self.home,
            soc,
            tuple(self.activities),
            tuple(self.windows),
            tuple(self.updates),
            odometer_km,
        )


def _place(name: str, lat: float, lng: float) -> Place:
    return Place(name, Point(lat, lng))


def _home_ac(home: Place, region: Region) -> ChargeSite:
    if region == "eu":
        return ChargeSite(home, "ac", phases=3, voltage_v=230.0, amps=16.0, name="Home")
    return ChargeSite(home, "ac", phases=1, voltage_v=240.0, amps=32.0, name="Home")


def _supercharger(place: Place, max_kw: float = 250.0) -> ChargeSite:
    return ChargeSite(place, "dc", max_kw=max_kw, name=place.name)


def _weather(
    rng: Random, mean: float, swing: float, days: int, spread: float, utc_offset_s: int = 3600
) -> Weather:
    offsets = tuple(round(rng.uniform(-spread, spread), 1) for _ in range(days))
    return Weather(mean, swing, offsets, utc_offset_s)


# Munich and its surroundings: the places of the European scenarios.
MUNICH_HOME = _place("Home", 48.1862, 11.5181)
MUNICH_WORK = _place("Office", 48.1402, 11.5783)
MUNICH_SHOP = _place("Supermarket", 48.1791, 11.5334)
MUNICH_GYM = _place("Gym", 48.1602, 11.5401)
LINDAU = _place("Lindau", 47.5461, 9.6852)
LINDAU_LAKE = _place("Lindau harbour", 47.5429, 9.6825)
MEMMINGEN_SC = _place("Supercharger Memmingen", 47.9873, 10.2210)

COMMUTER_START = datetime(2025, 3, 2, 23, 0, tzinfo=UTC)  # Monday 00:00 CET


def commuter_week(seed: int = 1, start: datetime = COMMUTER_START) -> Scenario:
    """Seven days: two commutes a day, errands, a weekend trip with one DC stop, nightly AC
    charging at home, a software update, an underground garage, sentry at one stop."""
    rng = Random(f"commuter-week:{seed}")
    spec = make_spec(rng, 0, "eu", "model3", "Daily Driver")
    p = _Planner(start, 3600, rng, MUNICH_HOME, "eu")
    home_ac = _home_ac(MUNICH_HOME, "eu")
    for day in range(5):
        p.drive(MUNICH_WORK, p.at(day, "07:45", 10))
        evening = p.at(day, "17:20", 15)
        if day == 3:  # Thursday: the office garage underground has no signal
            p.window("offline", p.at(day, "08:30"), evening + timedelta(seconds=150))
        if day == 3:
            p.drive(MUNICH_GYM, evening)
            p.drive(MUNICH_HOME, p.at(day, "19:10", 5))
        else:
            p.drive(MUNICH_HOME, evening)
        if day == 1:  # Tuesday errand: sentry on while parked at the supermarket
            p.drive(MUNICH_SHOP, p.at(day, "19:00", 5))
            p.window("sentry", p.at(day, "19:12"), p.at(day, "19:40"))
            p.drive(MUNICH_HOME, p.at(day, "19:45"))
        scheduled = p.at(day, "23:00") if day in (0, 2) else None
        p.charge(home_ac, 80.0, scheduled=scheduled)
    # Wednesday: an update downloads over home Wi-Fi and installs in the night.
    p.updates.append(
        SoftwareUpdate(
            "2025.8.3 1b5d6f0e9a21", p.at(2, "18:30"), 2_700.0, p.at(3, "02:00"), 1_800.0
        )
    )
    # The weekend: Saturday to Lindau, Sunday back with one Supercharger stop.
    p.drive(LINDAU, p.at(5, "09:30", 10))
    p.drive(LINDAU_LAKE, p.at(5, "14:00", 10))
    p.drive(LINDAU, p.at(5, "16:30", 10))
    p.drive(MEMMINGEN_SC, p.at(6, "15:00", 10))
    p.charge(
        _supercharger(MEMMINGEN_SC),
        75.0,
        after=timedelta(minutes=2),
        unplug_after_complete=timedelta(minutes=3),
    )
    p.drive(MUNICH_HOME, after=timedelta(minutes=4))
    p.charge(home_ac, 80.0)
    return Scenario(
        "commuter-week",
        commuter_week.__doc__ or "",
        start,
        start + timedelta(days=7),
        "eu",
        _weather(rng, 8.0, 5.0, 7, 3.0),
        (p.plan(spec, 72.0, 23_412.0),),
    )


ROAD_TRIP_START = datetime(2025, 7, 4, 4, 0, tzinfo=UTC)  # Friday 06:00 CEST (weather uses +1 h)


def road_trip(seed: int = 1, start: datetime = ROAD_TRIP_START) -> Scenario:
    """Munich to Hamburg in a day with three Supercharger stops, then a day in town."""
    rng = Random(f"road-trip:{seed}")
    spec = make_spec(rng, 0, "eu", "modely", "Road Tripper")
    p = _Planner(start, 3600, rng, MUNICH_HOME, "eu")
    hamburg = _place("Hamburg hotel", 53.5511, 9.9937)
    hamburg_sights = _place("Hamburg Speicherstadt", 53.5440, 9.9890)
    a, b = MUNICH_HOME.point, hamburg.point
    stops = []
    for k, share in enumerate((0.30, 0.56, 0.80)):
        lat = a.lat + (b.lat - a.lat) * share
        lng = a.lng + (b.lng - a.lng) * share
        stops.append(
            _place(f"Supercharger {k + 1} ({round(share * distance_m(a, b) / 1000)} km)", lat, lng)
        )
    p.drive(stops[0], p.at(0, "07:00", 10))
    for k, sc in enumerate(stops):
        p.charge(
            _supercharger(sc),
            72.0 if k < 2 else 65.0,
            after=timedelta(minutes=1),
            unplug_after_complete=timedelta(minutes=4),
        )
        p.drive(stops[k + 1] if k + 1 < len(stops) else hamburg, after=timedelta(minutes=3))
    hotel = ChargeSite(hamburg, "ac", phases=3, amps=16.0, name="Hotel destination charger")
    p.charge(hotel, 90.0, after=timedelta(minutes=10))
    p.drive(hamburg_sights, p.at(1, "10:30", 10))
    p.drive(hamburg, p.at(1, "16:00", 10))
    return Scenario(
        "road-trip",
        road_trip.__doc__ or "",
        start,
        start + timedelta(days=2),
        "eu",
        _weather(rng, 22.0, 6.0, 2, 2.0),
        (p.plan(spec, 92.0, 41_230.0),),
    )


CITY_DAY_START = datetime(2025, 5, 14, 4, 0, tzinfo=UTC)


def city_day(seed: int = 1, start: datetime = CITY_DAY_START) -> Scenario:
    """A day of short hops under 2 km; one drive ends in a garage without signal, where a
    charge then starts while the car is offline."""
    rng = Random(f"city-day:{seed}")
    spec = make_spec(rng, 0, "eu", "model3", "City Hopper")
    centre = _place("Home", 48.1374, 11.5755)
    spots = {
        name: Place(name, offset(centre.point, n, e))
        for name, n, e in (
            ("School", 700.0, 350.0),
            ("Bakery", 300.0, 900.0),
            ("Office", -600.0, 500.0),
            ("Cafe", -250.0, -650.0),
            ("Gym", 450.0, -800.0),
            ("Shop", 950.0, 150.0),
            ("Garage", -700.0, -250.0),
        )
    }
    p = _Planner(start, 3600, rng, centre, "eu")
    p.drive(spots["School"], p.at(0, "07:30", 5))
    p.drive(spots["Bakery"], p.at(0, "07:52", 3))
    p.drive(spots["Office"], p.at(0, "08:10", 3))
    p.drive(spots["Cafe"], p.at(0, "12:30", 5))
    p.drive(spots["Office"], p.at(0, "13:25", 5))
    p.drive(spots["Gym"], p.at(0, "17:05", 5))
    p.drive(spots["Shop"], p.at(0, "18:20", 5))
    garage_drive = p.at(0, "18:45")
    p.drive(spots["Garage"], garage_drive)
    # The signal goes 100 s after setting off, before a hop of ~1.5 km can end.
    p.window("offline", garage_drive + timedelta(seconds=100), p.at(0, "20:30"))
    p.charge(
        ChargeSite(spots["Garage"], "ac", phases=3, amps=16.0, name="Garage wallbox"),
        85.0,
        after=timedelta(minutes=4),
    )
    p.drive(centre, p.at(0, "22:10", 5))
    for name in ("School", "Bakery", "Office", "Cafe", "Gym", "Shop", "Garage"):
        assert distance_m(centre.point, spots[name].point) < 2_000
    return Scenario(
        "city-day",
        city_day.__doc__ or "",
        start,
        start + timedelta(days=1),
        "eu",
        _weather(rng, 17.0, 6.0, 1, 1.0),
        (p.plan(spec, 38.0, 8_112.0),),
    )


COLD_WEEK_START = datetime(2026, 1, 11, 23, 0, tzinfo=UTC)  # Monday 00:00 CET


def cold_week(seed: int = 1, start: datetime = COLD_WEEK_START) -> Scenario:
    """A week of frost: commutes with preconditioning before each morning drive, higher
    consumption, cold-limited usable energy and range, nightly charging."""
    rng = Random(f"cold-week:{seed}")
    spec = make_spec(rng, 0, "eu", "modely", "Winter Car")
    p = _Planner(start, 3600, rng, MUNICH_HOME, "eu")
    home_ac = _home_ac(MUNICH_HOME, "eu")
    for day in range(7):
        weekday = day < 5
        depart = p.at(day, "07:40" if weekday else "10:30", 8)
        p.window("precondition", depart - timedelta(minutes=25), depart)
        p.drive(MUNICH_WORK if weekday else MUNICH_SHOP, depart)
        p.drive(MUNICH_HOME, p.at(day, "17:30" if weekday else "11:45", 10))
        p.charge(home_ac, 85.0, after=timedelta(minutes=3))
    return Scenario(
        "cold-week",
        cold_week.__doc__ or "",
        start,
        start + timedelta(days=7),
        "eu",
        _weather(rng, -9.0, 4.0, 7, 4.0),
        (p.plan(spec, 64.0, 12_904.0),),
    )


FLEET_START = datetime(2025, 4, 6, 22, 0, tzinfo=UTC)
_FLEET_CENTRES: dict[Region, Point] = {
    "eu": Point(48.1374, 11.5755),
    "na": Point(37.3875, -122.0575),
}


def fleet(
    seed: int = 1,
    cars: int = 10,
    days: int = 7,
    region: Region = "eu",
    start: datetime = FLEET_START,
) -> Scenario:
    """`cars` cars, each with its own home, work and random but plausible days."""
    rng = Random(f"fleet:{seed}:{cars}:{days}:{region}")
    centre = _FLEET_CENTRES[region]
    offset_s = 3600 if region == "eu" else -7 * 3600
    plans: list[CarPlan] = []
    for n in range(cars):
        car_rng = Random(f"{seed}:{n}:{rng.random()}")
        spec = make_spec(car_rng, n, region, car_rng.choice(tuple(_MODELS)))

        def near(name: str, radius_m: float, car_rng: Random = car_rng) -> Place:
            ang = car_rng.uniform(0, math.tau)
            r = radius_m * math.sqrt(car_rng.random())
            return Place(name, offset(centre, r * math.cos(ang), r * math.sin(ang)))

        home = near("Home", 15_000)
        work = near("Work", 12_000)
        errands = [near(f"Errand {k + 1}", 18_000) for k in range(4)]
        p = _Planner(start, offset_s, car_rng, home, region)
        soc0 = soc = car_rng.uniform(45.0, 85.0)
        for day in range(days):
            weekday = (day % 7) < 5
            if weekday and car_rng.random() < 0.8:
                p.drive(work, p.at(day, f"0{car_rng.randint(6, 9)}:{car_rng.randint(0, 59):02d}"))
                p.drive(home, p.at(day, f"{car_rng.randint(16, 18)}:{car_rng.randint(0, 59):02d}"))
                soc -= (
                    2
                    * distance_m(home.point, work.point)
                    / 1000
                    * 1.2
                    * 0.17
                    / spec.usable_kwh
                    * 100
                )
            for _ in range(car_rng.choice((0, 0, 1, 1, 2))):
                place = car_rng.choice(errands)
                p.drive(place, p.at(day, f"{car_rng.randint(19, 20)}:{car_rng.randint(0, 59):02d}"))
                p.drive(home, after=timedelta(minutes=car_rng.randint(10, 70)))
                soc -= (
                    2
                    * distance_m(home.point, place.point)
                    / 1000
                    * 1.2
                    * 0.17
                    / spec.usable_kwh
                    * 100
                )
            if soc < 55.0 or car_rng.random() < 0.3:
                p.charge(_home_ac(home, region), 80.0, after=timedelta(minutes=5))
                soc = 80.0
        plans.append(p.plan(spec, soc0, car_rng.uniform(3_000, 90_000)))
    return Scenario(
        "fleet",
        f"{cars} cars with random days",
        start,
        start + timedelta(days=days),
        region,
        _weather(rng, 12.0 if region == "eu" else 16.0, 5.0, days, 3.0, offset_s),
        tuple(plans),
    )


SCENARIOS: dict[str, Callable[[int], Scenario]] = {
    "commuter-week": commuter_week,
    "road-trip": road_trip,
    "city-day": city_day,
    "cold-week": cold_week,
    "fleet": fleet,
}


def build(name: str, seed: int = 1, *, cars: int = 10) -> Scenario:
    """The named scenario for `seed` (`cars` only applies to ``fleet``)."""
    if name == "fleet":
        return fleet(seed, cars)
    try:
        return SCENARIOS[name](seed)
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}") from None
