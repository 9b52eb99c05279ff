"""A realistic, deterministic history in the TeslaMate tables, for the web app's demo and tests.

The generator plays a few cars through `days` days of ordinary life around one home base:
commutes, errands, a weekend trip with Supercharger stops, nightly AC charging at home, sleep
between drives, now and then an offline spell, a data gap (logger down) and a software update
every few weeks. Battery capacity fades slowly with age and mileage, consumption rises in the
cold, so the battery, efficiency and vampire pages have something true to show.

It writes rows directly (ids chosen here, sequences advanced afterwards on PostgreSQL) because a
month of history must load in about a second for the browser tests. It is not the logger: the
rows follow TeslaMate's conventions (UTC naive timestamps, km, kWh, °C) but no machine made them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from random import Random
from typing import Any

import sqlalchemy as sa

from fleetlog.sources.tesla._ledger import api_requests
from fleetlog.store import tables as t

HOME = (53.5511, 9.9937)  # Hamburg; any city would do

# name, offset north km, offset east km, geofence?, charger ("ac", "dc" or None)
_PLACES: tuple[tuple[str, float, float, bool, str | None], ...] = (
    ("Home", 0.0, 0.0, True, "ac"),
    ("Office", 6.5, -9.0, True, None),
    ("Supermarket", -1.8, 2.2, False, None),
    ("Gym", 2.6, 3.9, False, None),
    ("Parents", -58.0, 41.0, False, None),
    ("Supercharger Soltau", -62.0, 6.0, True, "dc"),
    ("Lake house", -140.0, 20.0, False, None),
)

_VERSIONS = (
    "2024.2.7",
    "2024.8.9",
    "2024.14.6",
    "2024.20.9",
    "2024.26.7",
    "2024.32.7",
    "2024.38.4",
    "2024.44.25",
    "2025.2.6",
    "2025.8.3",
    "2025.14.9",
    "2025.20.6",
    "2025.26.8",
    "2025.32.3",
    "2025.38.9",
)


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What was written."""

    cars: int
    drives: int
    charges: int
    positions: int
    start: datetime
    end: datetime


@dataclass(slots=True)
class _Car:
    id: int
    capacity_new_kwh: float
    efficiency: float  # kWh per km of rated range
    soc: float
    odometer: float
    version_index: int
    at: datetime
    place: int = 0


@dataclass(slots=True)
class _Rows:
    addresses: list[dict[str, Any]] = field(default_factory=list)
    geofences: list[dict[str, Any]] = field(default_factory=list)
    drives: list[dict[str, Any]] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    processes: list[dict[str, Any]] = field(default_factory=list)
    charges: list[dict[str, Any]] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)


def _place_point(index: int) -> tuple[float, float]:
    _, north, east, _, _ = _PLACES[index]
    lat = HOME[0] + north / 111.2
    lng = HOME[1] + east / (111.2 * math.cos(math.radians(HOME[0])))
    return lat, lng


def _elevation(lat: float, lng: float) -> float:
    return 20 + 35 * (1 + math.sin(lat * 40)) * (1 + math.cos(lng * 33)) / 2


def _temperature(day: date, hour: float) -> float:
    seasonal = 10 - 9 * math.cos((day.timetuple().tm_yday - 20) / 365.25 * 2 * math.pi)
    return seasonal + 4 * math.sin((hour - 9) / 24 * 2 * math.pi)


class _Writer:
    def __init__(self, rng: Random, start: datetime) -> None:
        self.rng = rng
        self.rows = _Rows()
        self.next_position = 1
        self.next_drive = 1
        self.next_process = 1
        self.next_charge = 1
        self.next_state = 1
        self.next_update = 1
        self.start = start
        for i, (name, *_rest) in enumerate(_PLACES):
            lat, lng = _place_point(i)
            self.rows.addresses.append(
                {
                    "id": i + 1,
                    "display_name": f"{name}, Hamburg, Germany",
                    "latitude": round(lat, 6),
                    "longitude": round(lng, 6),
                    "name": name,
                    "road": f"{name}straße",
                    "city": "Hamburg" if abs(lat - HOME[0]) < 0.3 else "Lower Saxony town",
                    "state": "Hamburg",
                    "country": "Germany",
                    "inserted_at": start,
                    "updated_at": start,
                    "osm_id": 1000 + i,
                    "osm_type": "way",
                }
            )
        fence_id = 0
        self.fence_of: dict[int, int] = {}
        for i, (name, _n, _e, fenced, charger) in enumerate(_PLACES):
            if not fenced:
                continue
            fence_id += 1
            lat, lng = _place_point(i)
            self.fence_of[i] = fence_id
            self.rows.geofences.append(
                {
                    "id": fence_id,
                    "name": name,
                    "latitude": round(lat, 6),
                    "longitude": round(lng, 6),
                    "radius": 80 if charger == "dc" else 50,
                    "inserted_at": start,
                    "updated_at": start,
                    "cost_per_unit": {"ac": 0.32, "dc": 0.52}.get(charger or ""),
                    "session_fee": None,
                    "billing_type": "per_kwh",
                }
            )

    # --- helpers ------------------------------------------------------------------------

    def capacity(self, car: _Car) -> float:
        years = (car.at - self.start).total_seconds() / (365.25 * 86400)
        return car.capacity_new_kwh * (1 - 0.018 * years - car.odometer * 2.5e-7)

    def rated_km(self, car: _Car, soc: float) -> float:
        return soc / 100 * self.capacity(car) / car.efficiency

    def state(self, car: _Car, kind: str, start: datetime, end: datetime | None) -> None:
        if end is not None and end <= start:
            return
        self.rows.states.append(
            {
                "id": self.next_state,
                "state": kind,
                "start_date": start,
                "end_date": end,
                "car_id": car.id,
            }
        )
        self.next_state += 1

    def position(
        self, car: _Car, at: datetime, lat: float, lng: float, drive_id: int | None, **extra: Any
    ) -> int:
        pid = self.next_position
        self.next_position += 1
        row: dict[str, Any] = {
            "id": pid,
            "date": at,
            "latitude": round(lat, 6),
            "longitude": round(lng, 6),
            "speed": None,
            "power": None,
            "odometer": round(car.odometer, 6),
            "ideal_battery_range_km": round(self.rated_km(car, car.soc) * 1.04, 2),
            "rated_battery_range_km": round(self.rated_km(car, car.soc), 2),
            "est_battery_range_km": round(self.rated_km(car, car.soc) * 0.9, 2),
            "battery_level": round(car.soc),
            "usable_battery_level": round(car.soc),
            "outside_temp": round(_temperature(at.date(), at.hour), 1),
            "inside_temp": round(21 + self.rng.uniform(-1, 1), 1),
            "elevation": round(_elevation(lat, lng)),
            "is_climate_on": drive_id is not None,
            "car_id": car.id,
            "drive_id": drive_id,
            "tpms_pressure_fl": 2.9,
            "tpms_pressure_fr": 2.9,
            "tpms_pressure_rl": 2.95,
            "tpms_pressure_rr": 2.95,
        }
        row.update(extra)
        self.rows.positions.append(row)
        return pid

    # --- activities ---------------------------------------------------------------------

    def park(self, car: _Car, until: datetime, *, gap: bool = False) -> None:
        """Online a while, then asleep (or, now and then, offline) until `until`."""
        if until <= car.at:
            return
        if gap:
            # The logger was down: no rows at all, which the timeline shows as missing.
            car.at = until
            return
        awake = min(until, car.at + timedelta(minutes=self.rng.randint(12, 25)))
        self.state(car, "online", car.at, awake)
        if awake < until:
            kind = "offline" if self.rng.random() < 0.04 else "asleep"
            hours = (until - awake).total_seconds() / 3600
            car.soc = max(5.0, car.soc - hours * (0.035 if kind == "asleep" else 0.05))
            self.state(car, kind, awake, until)
        car.at = until

    def drive(self, car: _Car, dest: int) -> None:
        rng = self.rng
        a = _place_point(car.place)
        b = _place_point(dest)
        straight = math.dist((a[0] * 111.2, a[1] * 66.0), (b[0] * 111.2, b[1] * 66.0))
        distance = straight * rng.uniform(1.18, 1.35)
        highway = distance > 30
        avg_speed = rng.uniform(70, 95) if highway else rng.uniform(28, 42)
        minutes = max(4.0, distance / avg_speed * 60)
        temp = _temperature(car.at.date(), car.at.hour)
        wh_per_km = 145 + max(0.0, 12 - temp) * 3.2 + (18 if highway else 0) + rng.uniform(-8, 8)
        energy = distance * wh_per_km / 1000
        soc_used = energy / self.capacity(car) * 100
        if car.soc - soc_used < 8:
            return  # would not make it; the caller charges first next time
        drive_id = self.next_drive
        self.next_drive += 1
        n = int(min(240, max(12, minutes * 2)))
        bend = rng.uniform(-0.25, 0.25)
        start_at = car.at
        start_soc, start_km = car.soc, car.odometer
        start_rated = self.rated_km(car, car.soc)
        first = last = 0
        speeds: list[float] = []
        powers: list[float] = []
        temps: list[float] = []
        for i in range(n + 1):
            f = i / n
            lat = a[0] + (b[0] - a[0]) * f + bend * (b[1] - a[1]) * math.sin(math.pi * f) * 0.6
            lng = a[1] + (b[1] - a[1]) * f - bend * (b[0] - a[0]) * math.sin(math.pi * f) * 0.6
            ramp = min(1.0, 4 * f, 4 * (1 - f))
            speed = 0 if i in (0, n) else avg_speed * ramp * rng.uniform(0.75, 1.25)
            power = speed * wh_per_km / 1000 * rng.uniform(0.5, 1.6)
            if rng.random() < 0.15:
                power = -rng.uniform(5, 40)
            at = start_at + timedelta(minutes=minutes * f)
            car.odometer = start_km + distance * f
            car.soc = start_soc - soc_used * f
            speeds.append(speed)
            powers.append(power)
            temps.append(_temperature(at.date(), at.hour))
            pid = self.position(car, at, lat, lng, drive_id, speed=round(speed), power=round(power))
            if i == 0:
                first = pid
            last = pid
        car.at = start_at + timedelta(minutes=minutes)
        end_rated = self.rated_km(car, car.soc)
        elevations = [_elevation(*_place_point(car.place)), _elevation(*b)]
        self.rows.drives.append(
            {
                "id": drive_id,
                "start_date": start_at,
                "end_date": car.at,
                "outside_temp_avg": round(sum(temps) / len(temps), 1),
                "inside_temp_avg": 21.0,
                "speed_max": round(max(speeds)),
                "power_max": round(max(powers)),
                "power_min": round(min(powers)),
                "start_ideal_range_km": round(start_rated * 1.04, 2),
                "end_ideal_range_km": round(end_rated * 1.04, 2),
                "start_rated_range_km": round(start_rated, 2),
                "end_rated_range_km": round(end_rated, 2),
                "start_km": start_km,
                "end_km": car.odometer,
                "distance": distance,
                "duration_min": round(minutes),
                "car_id": car.id,
                "start_address_id": car.place + 1,
                "end_address_id": dest + 1,
                "start_geofence_id": self.fence_of.get(car.place),
                "end_geofence_id": self.fence_of.get(dest),
                "ascent": round(max(0.0, elevations[1] - elevations[0]) + distance * 1.5),
                "descent": round(max(0.0, elevations[0] - elevations[1]) + distance * 1.5),
                "_first": first,
                "_last": last,
            }
        )
        car.place = dest

    def charge(self, car: _Car, target: float) -> None:
        rng = self.rng
        kind = _PLACES[car.place][4]
        if kind is None or car.soc >= target - 2:
            return
        dc = kind == "dc"
        lat, lng = _place_point(car.place)
        pid = self.position(car, car.at, lat, lng, None)
        process_id = self.next_process
        self.next_process += 1
        start_at, start_soc = car.at, car.soc
        start_rated = self.rated_km(car, car.soc)
        added = 0.0
        used = 0.0
        step = timedelta(minutes=1 if dc else 5)
        temp = _temperature(car.at.date(), car.at.hour)
        while car.soc < target:
            if dc:
                power = min(250.0, 40 + 2.6 * (100 - car.soc) * (1.6 if car.soc < 50 else 1.0))
                power = max(25.0, min(power, 250 - max(0.0, car.soc - 20) * 2.9))
                phases, current, voltage = None, round(power * 1000 / 400), 400
            else:
                power = 11.0 if car.soc < 92 else 11.0 * (100 - car.soc) / 8 + 1
                phases, current, voltage = 3, 16, 230
            kwh = power * step.total_seconds() / 3600
            added += kwh
            used += kwh / (0.96 if dc else 0.9)
            car.soc = min(100.0, car.soc + kwh / self.capacity(car) * 100)
            car.at += step
            self.rows.charges.append(
                {
                    "id": self.next_charge,
                    "date": car.at,
                    "battery_level": round(car.soc),
                    "usable_battery_level": round(car.soc),
                    "charge_energy_added": round(added, 2),
                    "charger_actual_current": current,
                    "charger_phases": phases,
                    "charger_pilot_current": current,
                    "charger_power": round(power),
                    "charger_voltage": voltage,
                    "fast_charger_present": dc,
                    "fast_charger_brand": "Tesla" if dc else None,
                    "fast_charger_type": "Tesla" if dc else "ACSingleWireCAN",
                    "conn_charge_cable": "IEC",
                    "ideal_battery_range_km": round(self.rated_km(car, car.soc) * 1.04, 2),
                    "rated_battery_range_km": round(self.rated_km(car, car.soc), 2),
                    "outside_temp": round(temp, 1),
                    "charging_process_id": process_id,
                }
            )
            self.next_charge += 1
        end_rated = self.rated_km(car, car.soc)
        fence = self.fence_of.get(car.place)
        price = {"ac": 0.32, "dc": 0.52}[kind]
        self.rows.processes.append(
            {
                "id": process_id,
                "start_date": start_at,
                "end_date": car.at,
                "charge_energy_added": round(added, 2),
                "charge_energy_used": round(used, 2),
                "start_ideal_range_km": round(start_rated * 1.04, 2),
                "end_ideal_range_km": round(end_rated * 1.04, 2),
                "start_rated_range_km": round(start_rated, 2),
                "end_rated_range_km": round(end_rated, 2),
                "start_battery_level": round(start_soc),
                "end_battery_level": round(car.soc),
                "duration_min": round((car.at - start_at).total_seconds() / 60),
                "outside_temp_avg": round(temp, 1),
                "car_id": car.id,
                "position_id": pid,
                "address_id": car.place + 1,
                "geofence_id": fence,
                "cost": round(max(added, used) * price, 2) if rng.random() > 0.1 else None,
            }
        )
        self.state(car, "online", start_at, car.at)

    def update(self, car: _Car) -> None:
        if car.version_index + 1 >= len(_VERSIONS):
            return
        car.version_index += 1
        end = car.at + timedelta(minutes=self.rng.randint(18, 35))
        self.rows.updates.append(
            {
                "id": self.next_update,
                "start_date": car.at,
                "end_date": end,
                "version": f"{_VERSIONS[car.version_index]} abc{car.version_index:03d}",
                "car_id": car.id,
            }
        )
        self.next_update += 1
        self.state(car, "online", car.at, end)
        car.at = end

    def ledger_day(self, car: _Car, vin: str, day: date, drives: int) -> None:
        calls = 6 + drives * 25 + self.rng.randint(0, 8)
        at = datetime(day.year, day.month, day.day, 12)
        for category, count, price in (
            ("data", calls, 2000),
            ("none", calls * 2, 0),
            ("wake", 1 if self.rng.random() < 0.1 else 0, 20000),
            ("command", 1 if self.rng.random() < 0.2 else 0, 1000),
        ):
            for i in range(count):
                when = at + timedelta(seconds=i * 97)
                self.rows.ledger.append(
                    {
                        "at": when,
                        "day": day,
                        "month": f"{day.year:04d}-{day.month:02d}",
                        "account": "demo",
                        "vehicle": vin,
                        "method": "GET" if category in ("data", "none") else "POST",
                        "endpoint": {
                            "data": "vehicle_data",
                            "none": "vehicle",
                            "wake": "wake_up",
                            "command": "command",
                        }[category],
                        "category": category,
                        "status": 200,
                        "billed": price > 0,
                        "cost_micro_usd": price,
                        "duration_ms": 180,
                        "outcome": "ok",
                    }
                )


def _day_plan(rng: Random, day: date, trip_day: bool) -> list[tuple[int, int]]:
    """(hour*60+minute, destination) for one day."""
    if trip_day:
        return [(9 * 60, 5), (10 * 60 + 10, 6), (17 * 60, 5), (18 * 60 + 5, 0)]
    plan: list[tuple[int, int]] = []
    if day.weekday() < 5:
        plan += [(7 * 60 + rng.randint(0, 50), 1), (16 * 60 + rng.randint(30, 120), 0)]
        if rng.random() < 0.35:
            plan.append((19 * 60 + rng.randint(0, 60), 3))
            plan.append((21 * 60 + rng.randint(0, 20), 0))
    else:
        plan += [(10 * 60 + rng.randint(0, 90), 2), (12 * 60 + rng.randint(0, 30), 0)]
        if rng.random() < 0.3:
            plan += [(14 * 60, 4), (19 * 60 + rng.randint(0, 60), 0)]
    return plan


def generate(
    *, cars: int = 2, days: int = 60, seed: int = 1, end: datetime | None = None
) -> tuple[_Rows, list[dict[str, Any]], list[dict[str, Any]], datetime, datetime]:
    """All rows of a history of `days` days ending at `end` (default: now, to the minute)."""
    rng = Random(seed)
    end_at = (end or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None, second=0)
    end_at = end_at.replace(microsecond=0)
    start_day = (end_at - timedelta(days=days)).date()
    start_at = datetime(start_day.year, start_day.month, start_day.day)
    w = _Writer(rng, start_at)
    car_rows: list[dict[str, Any]] = []
    setting_rows: list[dict[str, Any]] = []
    models = (("3", "Model 3 LR AWD", 75.0, 0.150), ("Y", "Model Y LR AWD", 78.0, 0.158))
    fleet: list[tuple[_Car, str]] = []
    for i in range(cars):
        model, marketing, capacity, efficiency = models[i % len(models)]
        vin = f"5YJ{model}E7EB{seed:02d}{i:06d}"[:17]
        setting_rows.append({"id": i + 1})
        car_rows.append(
            {
                "id": i + 1,
                "eid": 1_000_000 + i,
                "vid": 2_000_000 + i,
                "model": model,
                "efficiency": efficiency,
                "inserted_at": start_at,
                "updated_at": start_at,
                "vin": vin,
                "name": ("Blue Thunder", "Snowflake", "Sparky", "Volta")[i % 4],
                "trim_badging": "74D",
                "settings_id": i + 1,
                "exterior_color": ("DeepBlue", "PearlWhite", "Red", "Black")[i % 4],
                "wheel_type": "Pinwheel18",
                "display_priority": i + 1,
                "marketing_name": marketing,
            }
        )
        car = _Car(
            id=i + 1,
            capacity_new_kwh=capacity,
            efficiency=efficiency,
            soc=80.0,
            odometer=12_000.0 + 9_000 * i,
            version_index=0,
            at=start_at,
        )
        fleet.append((car, vin))
    gap_day = start_day + timedelta(days=days // 2)
    for car, vin in fleet:
        update_every = rng.randint(24, 40)
        for d in range(days):
            day = start_day + timedelta(days=d)
            midnight = datetime(day.year, day.month, day.day)
            trip_day = day.weekday() == 5 and d % 21 == (car.id * 7) % 21
            drives_before = len(w.rows.drives)
            for minute, dest in _day_plan(rng, day, trip_day):
                leave = midnight + timedelta(minutes=minute)
                if leave >= end_at - timedelta(hours=2):
                    break
                w.park(car, leave, gap=(day == gap_day and car.id == 1 and minute > 15 * 60))
                if dest == car.place:
                    continue
                w.drive(car, dest)
                if _PLACES[car.place][4] == "dc":
                    w.charge(car, rng.uniform(75, 85))
            if car.place == 0 and car.soc < 65:
                evening = max(car.at, midnight + timedelta(hours=22))
                w.park(car, evening)
                w.charge(car, 80.0 if rng.random() > 0.1 else 100.0)
            if d % update_every == update_every - 1 and car.at < end_at - timedelta(hours=3):
                night = max(car.at, midnight + timedelta(hours=23, minutes=30))
                w.park(car, night)
                w.update(car)
            w.ledger_day(car, vin, day, len(w.rows.drives) - drives_before)
        # The car is parked now: its last state stays open, as the logger leaves it.
        w.park(car, end_at)
        last = next(s for s in reversed(w.rows.states) if s["car_id"] == car.id)
        last["end_date"] = None
        w.position(car, end_at, *_place_point(car.place), None)
    return w.rows, car_rows, setting_rows, start_at, end_at


def _chunks(rows: Sequence[dict[str, Any]], size: int = 5000) -> Iterable[Sequence[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def seed(
    engine: sa.Engine,
    *,
    cars: int = 2,
    days: int = 60,
    seed: int = 1,
    end: datetime | None = None,
) -> SeedReport:
    """Fill an empty, migrated database with a generated history (see the module docstring)."""
    rows, car_rows, setting_rows, start_at, end_at = generate(
        cars=cars, days=days, seed=seed, end=end
    )
    drive_positions = [
        {"b_id": d["id"], "b_first": d.pop("_first"), "b_last": d.pop("_last")} for d in rows.drives
    ]
    with engine.begin() as conn:
        existing = conn.execute(sa.select(sa.func.count()).select_from(t.cars)).scalar_one()
        if existing:
            raise ValueError("the database already holds cars; seed an empty one")
        conn.execute(t.car_settings.insert(), setting_rows)
        conn.execute(t.cars.insert(), car_rows)
        conn.execute(t.addresses.insert(), rows.addresses)
        conn.execute(t.geofences.insert(), rows.geofences)
        for chunk in _chunks(rows.drives):
            conn.execute(t.drives.insert(), list(chunk))
        for chunk in _chunks(rows.positions):
            conn.execute(t.positions.insert(), list(chunk))
        drives = t.drives
        conn.execute(
            drives.update()
            .where(drives.c.id == sa.bindparam("b_id"))
            .values(
                start_position_id=sa.bindparam("b_first"),
                end_position_id=sa.bindparam("b_last"),
            ),
            drive_positions,
        )
        for table, data in (
            (t.charging_processes, rows.processes),
            (t.charges, rows.charges),
            (t.states, rows.states),
            (t.updates, rows.updates),
        ):
            for chunk in _chunks(data):
                conn.execute(table.insert(), list(chunk))
        for chunk in _chunks(rows.ledger):
            conn.execute(api_requests.insert(), list(chunk))
        if conn.dialect.name == "postgresql":
            # Ids were chosen here: move each sequence past them so the logger's inserts fit.
            for table in (
                t.car_settings,
                t.cars,
                t.addresses,
                t.geofences,
                t.drives,
                t.positions,
                t.charging_processes,
                t.charges,
                t.states,
                t.updates,
            ):
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'),"
                        f" (SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"
                    )
                )
    return SeedReport(
        cars=cars,
        drives=len(rows.drives),
        charges=len(rows.processes),
        positions=len(rows.positions),
        start=start_at,
        end=end_at,
    )
