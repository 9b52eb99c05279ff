"""What closing a drive or a charging process computes (reference §7), as pure functions.

The storage layer runs these over the rows of one drive or one charging
process and writes the result into the ``drives`` / ``charging_processes``
row; importers and the fidelity harness run the same functions, so every path
agrees on what "distance" or "energy used" means.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from fleetlog.logbook.records import ChargeSample, Position

PHANTOM_DISTANCE_KM = 0.01
"""A drive shorter than this (or with fewer than two positions) never happened."""

STREAM_ODOMETER_STEP_KM = 0.1 * 1.609344
"""The legacy streaming API's odometer is miles with one decimal: a streamed reading is
the true one rounded to this step, up to half of it (80 m) off either way."""

_SMALLINT_LIMIT = 32768  # ascent/descent are smallint columns; TeslaMate stores 0 on overflow


@dataclass(frozen=True, slots=True)
class DriveAggregates:
    """The computed columns of a ``drives`` row; indexes point into the positions given."""

    start_date: datetime
    end_date: datetime
    start_index: int
    end_index: int
    start_km: float | None
    end_km: float | None
    distance: float | None
    duration_min: int
    speed_max: float | None
    power_max: float | None
    power_min: float | None
    outside_temp_avg: float | None
    inside_temp_avg: float | None
    start_ideal_range_km: float | None
    end_ideal_range_km: float | None
    start_rated_range_km: float | None
    end_rated_range_km: float | None
    ascent: int | None
    descent: int | None


def is_phantom_drive(positions: Sequence[Position]) -> bool:
    """True for a drive to drop: fewer than two positions or under 0.01 km."""
    if len(positions) < 2:
        return True
    odometers = [p.odometer for p in positions if p.odometer is not None]
    if len(odometers) < 2:
        return True
    return odometers[-1] - odometers[0] < PHANTOM_DISTANCE_KM


def _avg(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _max(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _min(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _minutes(start: datetime, end: datetime) -> int:
    return round((end - start).total_seconds() / 60)


def climb(elevations: Sequence[float | None]) -> tuple[int | None, int | None]:
    """(ascent, descent) in metres from consecutive known elevations.

    A sum that would overflow the smallint column is stored as 0, as TeslaMate does.
    """
    known = [e for e in elevations if e is not None]
    if len(known) < 2:
        return None, None
    up = down = 0.0
    for a, b in pairwise(known):
        if b > a:
            up += b - a
        else:
            down += a - b
    ascent, descent = round(up), round(down)
    return (
        0 if ascent >= _SMALLINT_LIMIT else ascent,
        0 if descent >= _SMALLINT_LIMIT else descent,
    )


def is_precise(p: Position) -> bool:
    """A complete row (``vehicle_data``: range and odometer): its odometer is exact, where
    a streamed one may be rounded (:data:`STREAM_ODOMETER_STEP_KM`)."""
    return p.odometer is not None and p.ideal_battery_range_km is not None


def _settled(reading: Position, parked: Position | None) -> float | None:
    """`reading`'s odometer, or the exact one of the car parked next to it when `reading`
    may be rounded and the parked one lies within the rounding (the car had not moved)."""
    if is_precise(reading) or parked is None or not is_precise(parked):
        return reading.odometer
    assert reading.odometer is not None and parked.odometer is not None
    if abs(reading.odometer - parked.odometer) <= STREAM_ODOMETER_STEP_KM / 2 + 1e-9:
        return parked.odometer
    return reading.odometer


def drive_aggregates(
    positions: Sequence[Position],
    *,
    parked_before: Position | None = None,
    parked_after: Position | None = None,
) -> DriveAggregates:
    """Aggregates of one drive from its positions (any order; sorted by date here).

    `parked_before` / `parked_after`: the car's complete positions just outside the drive,
    when known. A drive that begins (or ends) on a streamed reading, rounded to a tenth
    of a mile, takes its start (end) odometer from the exact parked reading next to it
    instead, when that lies within the rounding: on a 10 km drive the rounding alone is
    up to 0.8 % of the distance, the exact reading leaves none.
    """
    if not positions:
        raise ValueError("a drive needs at least one position")
    order = sorted(range(len(positions)), key=lambda i: positions[i].date)
    rows = [positions[i] for i in order]
    first, last = rows[0], rows[-1]
    with_odometer = [p for p in rows if p.odometer is not None]
    start_km = _settled(with_odometer[0], parked_before) if with_odometer else None
    end_km = _settled(with_odometer[-1], parked_after) if with_odometer else None
    # Range endpoints come from complete rows (REST), which carry range and odometer;
    # stream rows have neither range.
    complete = [
        p
        for p in rows
        if p.odometer is not None
        and p.ideal_battery_range_km is not None
        and p.rated_battery_range_km is not None
    ]
    ascent, descent = climb([p.elevation for p in rows])
    return DriveAggregates(
        start_date=first.date,
        end_date=last.date,
        start_index=order[0],
        end_index=order[-1],
        start_km=start_km,
        end_km=end_km,
        distance=None if start_km is None or end_km is None else end_km - start_km,
        duration_min=_minutes(first.date, last.date),
        speed_max=_max([p.speed for p in rows]),
        power_max=_max([p.power for p in rows]),
        power_min=_min([p.power for p in rows]),
        outside_temp_avg=_avg([p.outside_temp for p in rows]),
        inside_temp_avg=_avg([p.inside_temp for p in rows]),
        start_ideal_range_km=complete[0].ideal_battery_range_km if complete else None,
        end_ideal_range_km=complete[-1].ideal_battery_range_km if complete else None,
        start_rated_range_km=complete[0].rated_battery_range_km if complete else None,
        end_rated_range_km=complete[-1].rated_battery_range_km if complete else None,
        ascent=ascent,
        descent=descent,
    )


# --- charging ---------------------------------------------------------------------------

MIN_SAMPLES_FOR_PHASES = 16
"""Phase detection needs more than 15 samples to trust an average."""


def detect_phases(samples: Sequence[ChargeSample]) -> float | None:
    """The effective phase count of an AC session, or ``None`` when it cannot be told.

    The car reports ``charger_phases`` but not always truthfully; comparing the
    reported power with current × voltage shows how many phases really carry
    it. Some cars report phase-to-phase voltage on three phases: then the ratio
    is √3 and that is what multiplies I × V.
    """
    ratios = [
        s.charger_power * 1000 / (s.charger_actual_current * s.charger_voltage)
        for s in samples
        if s.charger_actual_current and s.charger_voltage
    ]
    reported = [s.charger_phases for s in samples if s.charger_phases is not None]
    if len(samples) < MIN_SAMPLES_FOR_PHASES or not ratios:
        return None
    p = sum(ratios) / len(ratios)
    if p <= 0:
        return None
    r = int(sum(reported) / len(reported)) if reported else None
    if r is not None and r == round(p):
        return float(r)
    if r == 3 and abs(p / math.sqrt(3) - 1) <= 0.1:
        return math.sqrt(3)
    if abs(round(p) - p) <= 0.3:
        return float(round(p))
    return None


def sample_power_kw(sample: ChargeSample, phases: float | None) -> float:
    """The power drawn from the charger for one sample, given the session's phases."""
    if sample.charger_phases is None or phases is None:
        return sample.charger_power
    current = sample.charger_actual_current or 0
    voltage = sample.charger_voltage or 0
    return phases * current * voltage / 1000


def charge_energy_used(samples: Sequence[ChargeSample]) -> float | None:
    """kWh drawn from the charger: each sample's power over the time since the previous one."""
    rows = sorted(samples, key=lambda s: s.date)
    if len(rows) < 2:
        return None
    phases = detect_phases(rows)
    total = 0.0
    for prev, cur in pairwise(rows):
        hours = (cur.date - prev.date).total_seconds() / 3600
        term = sample_power_kw(cur, phases) * hours
        if term > 0:  # regen or a bad reading never takes energy back
            total += term
    return total


def charge_energy_added(samples: Sequence[ChargeSample]) -> float | None:
    """kWh added: the last reading (or the highest when the car reset it to 0) minus the first."""
    rows = sorted(samples, key=lambda s: s.date)
    if not rows:
        return None
    last = rows[-1].charge_energy_added
    if last == 0:
        last = max(s.charge_energy_added for s in rows)
    added = last - rows[0].charge_energy_added
    return None if added < 0 else added


def fast_charger_type(samples: Sequence[ChargeSample]) -> str | None:
    """The charger type seen most often while power flowed (``Tesla…`` = Supercharger)."""
    types = Counter(
        s.fast_charger_type for s in samples if s.charger_power > 0 and s.fast_charger_type
    )
    return types.most_common(1)[0][0] if types else None


@dataclass(frozen=True, slots=True)
class ChargeAggregates:
    """The computed columns of a ``charging_processes`` row."""

    start_date: datetime
    end_date: datetime
    charge_energy_added: float | None
    charge_energy_used: float | None
    start_ideal_range_km: float | None
    end_ideal_range_km: float | None
    start_rated_range_km: float | None
    end_rated_range_km: float | None
    start_battery_level: int | None
    end_battery_level: int | None
    duration_min: int
    outside_temp_avg: float | None
    fast_charger_type: str | None


def charge_aggregates(samples: Sequence[ChargeSample]) -> ChargeAggregates:
    """Aggregates of one charging process from its samples."""
    if not samples:
        raise ValueError("a charging process needs at least one sample")
    rows = sorted(samples, key=lambda s: s.date)
    first, last = rows[0], rows[-1]
    return ChargeAggregates(
        start_date=first.date,
        end_date=last.date,
        charge_energy_added=charge_energy_added(rows),
        charge_energy_used=charge_energy_used(rows),
        start_ideal_range_km=first.ideal_battery_range_km,
        end_ideal_range_km=last.ideal_battery_range_km,
        start_rated_range_km=first.rated_battery_range_km,
        end_rated_range_km=last.rated_battery_range_km,
        start_battery_level=first.battery_level,
        end_battery_level=last.battery_level,
        duration_min=int((last.date - first.date).total_seconds() // 60),
        outside_temp_avg=_avg([s.outside_temp for s in rows]),
        fast_charger_type=fast_charger_type(rows),
    )
