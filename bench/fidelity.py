"""Fidelity per dollar: each scenario through each source mode, and a TeslaMate-policy baseline.

    .venv/bin/python -m bench fidelity

fleetlog runs through the fidelity harness (``tests/harness/runner.py``: the real client,
governor, ledger, machine, worker and logbook against the simulator over loopback HTTP, in
virtual time, SQLite). The baseline (:mod:`bench.baseline`) polls the same scenario the way
TeslaMate's published constants say. Both are scored against the simulator's ground truth:

* paid ``vehicle_data`` per day, wakes, streaming signals per day, dollars per car-month at
  the published prices (from the simulator's billing ledger);
* drives and charges found / true / extra (one-to-one by time overlap, 5 min slack);
* distance and energy error (median of |stored − true| / true over matched pairs);
* start and end time error (median and worst, seconds);
* route coverage: share of the true route (densified to 20 m steps) within 50 m of a logged
  position;
* extra minutes awake per day compared with the same scenario with nobody watching.

Source modes other than polling come from the harness once the runtime wires pushed feeds
(``runner.SOURCE_MODES`` when present); until then they are listed as not measured.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import statistics
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.baseline import run_baseline
from bench.common import table
from fleetlog.sim import World, build
from fleetlog.store import make_engine, upgrade
from fleetlog.store import tables as t

SCENARIOS = ("commuter-week", "road-trip", "city-day", "cold-week")
SLACK = timedelta(minutes=5)
WANTED_MODES = ("polling", "myteslamate", "telemetry-mqtt", "teslemetry-sse")

Span = tuple[datetime, datetime | None, float | None]


def _t(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _aware(d: datetime | None) -> datetime | None:
    from datetime import UTC

    return None if d is None else (d if d.tzinfo else d.replace(tzinfo=UTC))


def match(truth: list[Span], stored: list[Span]) -> dict[str, Any]:
    """One-to-one by largest overlap (with slack); errors over the matched pairs."""
    used: set[int] = set()
    amount_err: list[float] = []
    start_err: list[float] = []
    end_err: list[float] = []
    found = 0
    for ts, te, ta in truth:
        te = te or ts
        best: tuple[float, int] | None = None
        for i, (ss, se, _sa) in enumerate(stored):
            if i in used:
                continue
            se = se or ss
            overlap = (min(te, se) + SLACK - (max(ts, ss) - SLACK)).total_seconds()
            if overlap > 0 and (best is None or overlap > best[0]):
                best = (overlap, i)
        if best is None:
            continue
        used.add(best[1])
        found += 1
        ss, se, sa_ = stored[best[1]]
        start_err.append(abs((ss - ts).total_seconds()))
        end_err.append(abs(((se or ss) - te).total_seconds()))
        if ta and sa_ is not None:
            amount_err.append(abs(sa_ - ta) / ta)
    return {
        "true": len(truth),
        "found": found,
        "extra": len(stored) - found,
        "amount_err_median": statistics.median(amount_err) if amount_err else None,
        "start_err_median_s": statistics.median(start_err) if start_err else None,
        "end_err_median_s": statistics.median(end_err) if end_err else None,
        "start_err_max_s": max(start_err, default=None),
        "end_err_max_s": max(end_err, default=None),
    }


def _dist_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    k = math.cos(math.radians(a[0]))
    return math.hypot((a[0] - b[0]) * 111_195, (a[1] - b[1]) * 111_195 * k)


def coverage(paths: Iterable[list[list[float]]], logged: list[tuple[float, float]]) -> float | None:
    """Share of the true route within 50 m of a logged position."""
    cell = 0.001  # ~110 m: neighbours of the cell hold every point within 50 m
    grid: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for p in logged:
        grid.setdefault((int(p[0] // cell), int(p[1] // cell)), []).append(p)
    total = near = 0
    for path in paths:
        for a, b in itertools.pairwise(path):
            steps = max(1, int(_dist_m((a[0], a[1]), (b[0], b[1])) // 20))
            for i in range(steps):
                f = i / steps
                q = (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)
                total += 1
                gx, gy = int(q[0] // cell), int(q[1] // cell)
                if any(
                    _dist_m(q, p) <= 50
                    for dx in (-1, 0, 1)
                    for dy in (-1, 0, 1)
                    for p in grid.get((gx + dx, gy + dy), ())
                ):
                    near += 1
    return near / total if total else None


def _online_minutes(car: dict[str, Any], start: datetime, end: datetime) -> float:
    total = 0.0
    for s in car["states"]:
        if s["state"] != "online":
            continue
        a = max(_t(s["start"]) or start, start)
        b = min(_t(s["end"]) or end, end)
        if b > a:
            total += (b - a).total_seconds() / 60
    return total


_UNOBSERVED: dict[str, dict[str, Any]] = {}


def unobserved(scenario: str, seed: int = 1) -> dict[str, Any]:
    if scenario not in _UNOBSERVED:
        world = World(build(scenario, seed))
        world.advance(world.scenario.end)
        _UNOBSERVED[scenario] = world.truth()["cars"][0]
    return _UNOBSERVED[scenario]


def _truth_spans(
    car: dict[str, Any], start: datetime, end: datetime
) -> tuple[list[Span], list[Span]]:
    drives = [
        (_t(d["start"]), _t(d["end"]), float(d["distance_km"]))
        for d in car["drives"]
        if d["end"] and start <= _t(d["start"]) and _t(d["end"]) <= end  # type: ignore[operator]
    ]
    charges = [
        (_t(c["start"]), _t(c["end"]), float(c["energy_added_kwh"]))
        for c in car["charges"]
        if c["end"] and start <= _t(c["start"]) and _t(c["end"]) <= end  # type: ignore[operator]
    ]
    return drives, charges  # type: ignore[return-value]


def _in_window(spans: list[Span], start: datetime, end: datetime) -> list[Span]:
    return [
        s for s in spans if start - SLACK <= s[0] <= end and (s[1] is None or s[1] <= end + SLACK)
    ]


def score(
    truth: dict[str, Any],
    start: datetime,
    end: datetime,
    drives: list[Span],
    charges: list[Span],
    positions: list[tuple[float, float]],
    scenario: str,
) -> dict[str, Any]:
    car = truth["cars"][0]
    days = (end - start).total_seconds() / 86400
    true_d, true_c = _truth_spans(car, start, end)
    d = match(true_d, [x for x in _in_window(drives, start, end) if x[1] is not None])
    c = match(true_c, [x for x in _in_window(charges, start, end) if x[1] is not None])
    cats = truth["ledger"]["by_category"]
    cost = sum(m["cost_usd"] for m in truth["ledger"]["months"].values())
    paths = [x["path"] for x in car["drives"] if x["end"] and start <= _t(x["start"]) <= end]  # type: ignore[operator]
    base = unobserved(scenario)
    return {
        "days": days,
        "paid_vehicle_data_per_day": cats.get("data", {}).get("billed", 0) / days,
        "wakes": cats.get("wake", {}).get("billed", 0),
        "signals_per_day": cats.get("signals", {}).get("billed", 0) / days,
        "usd_per_car_month": cost / days * 30,
        "drives": d,
        "charges": c,
        "route_coverage": coverage(paths, positions),
        "extra_awake_min_per_day": (
            _online_minutes(car, start, end) - _online_minutes(base, start, end)
        )
        / days,
    }


async def _fleetlog(scenario: str, mode: Any) -> dict[str, Any]:
    from tests.harness.runner import run_scenario

    with tempfile.TemporaryDirectory(prefix="fleetlog-bench-fid-") as tmp:
        engine = make_engine(f"sqlite:///{tmp}/fl.sqlite3")
        upgrade(engine)
        run = await run_scenario(scenario, engine, Path(tmp), source=mode, cars=1)
        vin = run.truth["cars"][0]["vin"]
        with engine.connect() as conn:
            car_id = conn.execute(sa.select(t.cars.c.id).where(t.cars.c.vin == vin)).scalar_one()
            d = conn.execute(
                sa.select(t.drives.c.start_date, t.drives.c.end_date, t.drives.c.distance).where(
                    t.drives.c.car_id == car_id
                )
            ).all()
            c = conn.execute(
                sa.select(
                    t.charging_processes.c.start_date,
                    t.charging_processes.c.end_date,
                    t.charging_processes.c.charge_energy_added,
                ).where(t.charging_processes.c.car_id == car_id)
            ).all()
            p = conn.execute(
                sa.select(t.positions.c.latitude, t.positions.c.longitude).where(
                    t.positions.c.car_id == car_id
                )
            ).all()
        engine.dispose()
    drives = [(_aware(a), _aware(b), None if x is None else float(x)) for a, b, x in d]
    charges = [(_aware(a), _aware(b), None if x is None else float(x)) for a, b, x in c]
    positions = [(float(a), float(b)) for a, b in p]
    result = score(run.truth, run.start, run.end, drives, charges, positions, scenario)  # type: ignore[arg-type]
    result.update(wall_s=run.wall_s, worker_errors=run.worker_errors)
    return result


async def _baseline(scenario: str) -> dict[str, Any]:
    run = await run_baseline(scenario)
    positions = [(lat, lon) for _at, lat, lon in run.seen.positions]
    result = score(
        run.truth, run.start, run.end, run.seen.drives, run.seen.charges, positions, scenario
    )
    result.update(wall_s=run.wall_s, requests=run.seen.requests)
    return result


def _modes() -> dict[str, Any]:
    from tests.harness import runner

    modes: dict[str, Any] = {"polling": runner.POLLING}
    modes.update(getattr(runner, "SOURCE_MODES", {}))
    return modes


def run(*, quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    logging.getLogger("fleetlog").setLevel(logging.ERROR)
    scenarios = ("city-day",) if quick else SCENARIOS
    modes = _modes()
    out: dict[str, Any] = {"runs": [], "not_measured": [m for m in WANTED_MODES if m not in modes]}
    for scenario in scenarios:
        base = asyncio.run(_baseline(scenario))
        base.update(scenario=scenario, source="baseline (TeslaMate polling)")
        out["runs"].append(base)
        log(f"fidelity/{scenario}/baseline: ${base['usd_per_car_month']:.2f}/car-month")
        for name, mode in modes.items():
            try:
                res = asyncio.run(_fleetlog(scenario, mode))
            except Exception as exc:  # a mode that breaks is reported, the rest still run
                out["runs"].append({"scenario": scenario, "source": name, "error": repr(exc)})
                continue
            res.update(scenario=scenario, source=f"fleetlog {name}")
            out["runs"].append(res)
            log(f"fidelity/{scenario}/{name}: ${res['usd_per_car_month']:.2f}/car-month")
    return out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def _s(x: float | None) -> str:
    return "–" if x is None else f"{x:.0f}"


def _errs(m: dict[str, Any]) -> str:
    median = f"{_s(m['start_err_median_s'])}/{_s(m['end_err_median_s'])}"
    return f"{median} (≤{_s(m['end_err_max_s'])})"


def markdown(result: dict[str, Any]) -> str:
    rows = []
    baseline: dict[str, dict[str, Any]] = {}
    for r in result["runs"]:
        if "error" in r:
            rows.append([r["scenario"], r["source"], f"failed: {r['error'][:60]}"] + [None] * 11)
            continue
        if r["source"].startswith("baseline"):
            baseline[r["scenario"]] = r
        d, c = r["drives"], r["charges"]
        rows.append(
            [
                r["scenario"],
                r["source"],
                r["paid_vehicle_data_per_day"],
                r["wakes"],
                r["signals_per_day"],
                r["usd_per_car_month"],
                f"{d['found']}/{d['true']} (+{d['extra']})",
                f"{c['found']}/{c['true']} (+{c['extra']})",
                _pct(d["amount_err_median"]),
                _pct(c["amount_err_median"]),
                _errs(d),
                _errs(c),
                _pct(r["route_coverage"]),
                r["extra_awake_min_per_day"],
            ]
        )
    out = [
        table(
            ["scenario", "source", "paid vehicle_data/day", "wakes", "signals/day", "$/car-month",
             "drives found", "charges found", "distance err", "energy err",
             "drive start/end err s (worst end)", "charge start/end err s (worst end)",
             "route coverage", "extra awake min/day"],
            rows,
        )
    ]  # fmt: skip
    ratios = []
    for r in result["runs"]:
        b = baseline.get(r.get("scenario", ""))
        if "error" in r or b is None or r["source"].startswith("baseline"):
            continue
        cost_ratio = (
            r["usd_per_car_month"] / b["usd_per_car_month"] if b["usd_per_car_month"] else None
        )
        found = (r["drives"]["found"] + r["charges"]["found"]) / max(
            1, r["drives"]["true"] + r["charges"]["true"]
        )
        bfound = (b["drives"]["found"] + b["charges"]["found"]) / max(
            1, b["drives"]["true"] + b["charges"]["true"]
        )
        ratios.append(
            [r["scenario"], r["source"], cost_ratio, found / bfound if bfound else None,
             (r["route_coverage"] or 0) / b["route_coverage"] if b["route_coverage"] else None,
             r["extra_awake_min_per_day"] - b["extra_awake_min_per_day"]]
        )  # fmt: skip
    out += [
        "",
        "Ratio to the baseline (same scenario, same run):",
        "",
        table(
            ["scenario", "source", "cost ×", "found ×", "route coverage ×", "awake min/day Δ"],
            ratios,
        ),
    ]
    if result.get("not_measured"):
        out += [
            "",
            "Not measured yet (no pushed-feed wiring in the harness/runtime): "
            + ", ".join(result["not_measured"])
            + "; nor the baseline with streaming.",
        ]
    return "\n".join(out)
