"""Score what fleetlog stored against the simulator's ground truth.

Pure reading and arithmetic: the truth JSON (``World.truth()``) on one side, the
``drives`` and ``charging_processes`` rows on the other. A true drive or charge
is *found* when a stored one overlaps it in time (nearest start wins, one to one);
what is left over on either side is *missed* or *extra*. For each match the
distance (drives) or energy added (charges) and the start and end times are
compared with the tolerances of issue 7.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from fleetlog.store import tables as t


@dataclass(frozen=True, slots=True)
class Tolerance:
    distance_rel: float = 0.005
    energy_rel: float = 0.02
    time: timedelta = timedelta(minutes=5)


POLLING_ONLY = Tolerance()
WITH_STREAM = Tolerance(time=timedelta(minutes=1))
SIM_PARKED_STEP = timedelta(minutes=5)
"""The simulator's longest step while parked (its charge truth's "end" lags by up to this)."""


@dataclass(frozen=True, slots=True)
class Interval:
    start: datetime
    end: datetime | None
    amount: float | None  # km for drives, kWh added for charges
    label: str = ""


@dataclass(slots=True)
class Score:
    kind: str
    truth: int = 0
    found: int = 0
    extra: int = 0
    worst_amount_error: float = 0.0  # relative
    worst_start_error: timedelta = timedelta(0)
    worst_end_error: timedelta = timedelta(0)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.kind}: {self.found}/{self.truth} found, {self.extra} extra, "
            f"amount error ≤ {self.worst_amount_error:.3%}, "
            f"start ≤ {self.worst_start_error.total_seconds():.0f} s, "
            f"end ≤ {self.worst_end_error.total_seconds():.0f} s"
        )


def parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def true_drives(car: dict[str, Any], start: datetime, end: datetime) -> list[Interval]:
    out = []
    for d in car["drives"]:
        s, e = parse_time(d["start"]), parse_time(d["end"])
        if s is not None and e is not None and start <= s and e <= end:
            out.append(Interval(s, e, float(d["distance_km"]), f"drive {d['start']}"))
    return out


def ongoing(items: list[dict[str, Any]], start: datetime, end: datetime) -> list[Interval]:
    """True drives or charges that began in the window and had not ended by its end."""
    out = []
    for item in items:
        s, e = parse_time(item["start"]), parse_time(item["end"])
        if s is not None and start <= s <= end and (e is None or e > end):
            out.append(Interval(s, e or end, None, "ongoing"))
    return out


def true_charges(car: dict[str, Any], start: datetime, end: datetime) -> list[Interval]:
    out = []
    for c in car["charges"]:
        s, e = parse_time(c["start"]), parse_time(c["end"])
        if s is not None and e is not None and start <= s and e <= end:
            label = f"{c['kind']} charge {c['start']}"
            out.append(Interval(s, e, float(c["energy_added_kwh"]), label))
    return out


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def stored_drives(engine: sa.Engine, vin: str) -> list[Interval]:
    d, cars = t.drives, t.cars
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(d.c.start_date, d.c.end_date, d.c.distance)
            .join(cars, cars.c.id == d.c.car_id)
            .where(cars.c.vin == vin)
            .order_by(d.c.start_date)
        ).all()
    return [
        Interval(_utc(s) or s, _utc(e), None if km is None else float(km), f"stored drive {s}")
        for s, e, km in rows
    ]


def stored_charges(engine: sa.Engine, vin: str) -> list[Interval]:
    cp, cars = t.charging_processes, t.cars
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(cp.c.start_date, cp.c.end_date, cp.c.charge_energy_added)
            .join(cars, cars.c.id == cp.c.car_id)
            .where(cars.c.vin == vin)
            .order_by(cp.c.start_date)
        ).all()
    return [
        Interval(_utc(s) or s, _utc(e), None if kwh is None else float(kwh), f"stored charge {s}")
        for s, e, kwh in rows
    ]


def _overlap(a: Interval, b: Interval, slack: timedelta) -> timedelta:
    a_end = a.end or a.start
    b_end = b.end or b.start
    latest_start = max(a.start, b.start) - slack
    earliest_end = min(a_end, b_end) + slack
    return earliest_end - latest_start


def score(
    kind: str,
    truth: Iterable[Interval],
    stored: Iterable[Interval],
    *,
    window: tuple[datetime, datetime],
    amount_rel: float,
    tolerance: Tolerance,
    ignore: Iterable[Interval] = (),
) -> Score:
    """Match `truth` to `stored` one to one and check each pair.

    Stored rows outside the window, or overlapping something still going on at
    its end (`ignore`), are neither found nor extra.
    """
    truths = list(truth)
    skip = list(ignore)
    begin, end = window
    candidates = [
        s
        for s in stored
        if s.start >= begin - tolerance.time
        and s.start <= end
        and not any(_overlap(s, o, timedelta(0)) > timedelta(0) for o in skip)
    ]
    result = Score(kind, truth=len(truths))
    used: set[int] = set()
    for want in truths:
        best: tuple[timedelta, int] | None = None
        for i, have in enumerate(candidates):
            if i in used:
                continue
            overlap = _overlap(want, have, tolerance.time)
            if overlap > timedelta(0) and (best is None or overlap > best[0]):
                best = (overlap, i)
        if best is None:
            result.problems.append(f"missed {want.label} ({want.amount:.3f})")
            continue
        used.add(best[1])
        have = candidates[best[1]]
        result.found += 1
        if have.end is None and want.end is not None and want.end >= end - SIM_PARKED_STEP:
            # a charge still going on when the run stopped (its truth "end" is the last
            # energy in, as of the simulator's last step, up to 5 min before the window's
            # end): open is right, nothing to compare yet
            continue
        _compare(result, want, have, amount_rel, tolerance)
    for i, have in enumerate(candidates):
        if i not in used:
            result.extra += 1
            result.problems.append(f"extra {have.label} ({have.amount})")
    return result


def _compare(
    result: Score, want: Interval, have: Interval, amount_rel: float, tolerance: Tolerance
) -> None:
    if have.end is None:
        result.problems.append(f"{want.label}: still open")
        return
    if want.amount is not None and want.amount > 0:
        if have.amount is None:
            result.problems.append(f"{want.label}: no amount stored")
        else:
            err = abs(have.amount - want.amount) / want.amount
            result.worst_amount_error = max(result.worst_amount_error, err)
            if err > amount_rel:
                result.problems.append(
                    f"{want.label}: {have.amount:.3f} vs {want.amount:.3f} ({err:.2%})"
                )
    start_err = abs(have.start - want.start)
    end_err = abs(have.end - (want.end or want.start))
    result.worst_start_error = max(result.worst_start_error, start_err)
    result.worst_end_error = max(result.worst_end_error, end_err)
    if start_err > tolerance.time:
        result.problems.append(f"{want.label}: starts {start_err} off")
    if end_err > tolerance.time:
        result.problems.append(f"{want.label}: ends {end_err} off")


@dataclass(slots=True)
class Report:
    drives: Score
    charges: Score

    @property
    def problems(self) -> list[str]:
        return self.drives.problems + self.charges.problems

    def lines(self) -> list[str]:
        return [self.drives.line(), self.charges.line()]


def score_car(
    engine: sa.Engine,
    car: dict[str, Any],
    window: tuple[datetime, datetime],
    tolerance: Tolerance = POLLING_ONLY,
) -> Report:
    begin, end = window
    vin = car["vin"]
    drives = score(
        "drives",
        true_drives(car, begin, end),
        stored_drives(engine, vin),
        window=window,
        amount_rel=tolerance.distance_rel,
        tolerance=tolerance,
        ignore=ongoing(car["drives"], begin, end),
    )
    charges = score(
        "charges",
        true_charges(car, begin, end),
        stored_charges(engine, vin),
        window=window,
        amount_rel=tolerance.energy_rel,
        tolerance=tolerance,
        ignore=ongoing(car["charges"], begin, end),
    )
    return Report(drives, charges)
