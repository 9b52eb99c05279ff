"""Fidelity per dollar: each scenario through each source mode, and two TeslaMate baselines.

    .venv/bin/python -m bench fidelity            # 4 scenarios × 6 sources, two per core at a time
    .venv/bin/python -m bench.fidelity --cell city-day mqtt   # one cell, JSON on stdout

fleetlog runs through the fidelity harness (``tests/harness/runner.py``: the real client,
governor, ledger, machine, worker and logbook against the simulator over loopback HTTP, in
virtual time, SQLite, one car) in each of its source modes (``runner.MODES``): ``polling``
(Fleet API only), ``myteslamate`` (MyTeslaMate's websocket + REST through its proxy),
``mqtt`` (Fleet Telemetry through a private Mosquitto + Fleet API) and ``teslemetry``
(Teslemetry's SSE + REST through its proxy). The baselines (:mod:`bench.baseline`) log the
same scenario the way TeslaMate's published constants say: polling the Fleet API, and with
streaming (MyTeslaMate's websocket + its REST proxy). Everything is scored against the
simulator's ground truth:

* paid ``vehicle_data`` per day, wakes, streaming signals per day (billed by the simulator:
  one per datum the car sends), dollars per car-month at the published prices;
* drives and charges found / true / extra (one-to-one by time overlap, 5 min slack);
* distance and energy error (median of |stored − true| / true over matched pairs);
* start and end time error (median and worst, seconds);
* route coverage: share of the true route (densified to 20 m steps) within 50 m of a logged
  position;
* extra minutes awake per day compared with the same scenario with nobody watching.

Prices (reference §2.1): data 500/$1, wakes 50/$1, commands 1000/$1, streaming signals
150,000/$1, before the $10 monthly credit. Streaming through MyTeslaMate is free to the user
(its service holds the telemetry config), so its signals cost nothing here; Teslemetry sells
an unmetered per-vehicle stream subscription whose price the reference does not give, so its
signals are priced at Tesla's rate, like self-hosted Fleet Telemetry (``mqtt``).

Each cell (scenario × source) runs in its own subprocess, :data:`JOBS` at a time (8, or
``FLEETLOG_BENCH_JOBS``), longest first; the report gives each cell's wall and CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.baseline import run_baseline
from bench.common import table
from fleetlog.sim import World, build
from fleetlog.sim.billing import PRICE_USD
from fleetlog.store import make_engine, upgrade
from fleetlog.store import tables as t

SCENARIOS = ("commuter-week", "road-trip", "city-day", "cold-week")
SLACK = timedelta(minutes=5)
#: fleetlog's source modes (``tests/harness/runner.MODES``) and the two baselines.
FLEETLOG_SOURCES = ("polling", "myteslamate", "mqtt", "teslemetry")
BASELINES = ("baseline-polling", "baseline-streaming")
SOURCES = BASELINES + FLEETLOG_SOURCES
#: Whose signals are free to the user (MyTeslaMate's service holds the telemetry config).
FREE_SIGNALS = ("myteslamate", "baseline-streaming")
#: Which baseline each source is compared with.
BASELINE_OF = {
    "polling": "baseline-polling",
    "myteslamate": "baseline-streaming",
    "mqtt": "baseline-streaming",
    "teslemetry": "baseline-streaming",
}
LABELS = {
    "baseline-polling": "TeslaMate polling (baseline)",
    "baseline-streaming": "TeslaMate + MyTeslaMate stream (baseline)",
    "polling": "fleetlog polling",
    "myteslamate": "fleetlog MyTeslaMate stream + REST",
    "mqtt": "fleetlog Fleet Telemetry MQTT + REST",
    "teslemetry": "fleetlog Teslemetry SSE + REST",
}
ROOT = Path(__file__).resolve().parent.parent
#: Cells at once: a cell waits part of the time (virtual time waits for pushes to land), so
#: two per core; more only adds contention (eight at a time on a loaded 2-core machine
#: stretched week cells from 1–4 min to 17–27 min).
JOBS = 2 * (os.cpu_count() or 1)
#: A cell still running after this long is stopped and reported as such.
CELL_TIMEOUT_S = 1800.0

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
    *,
    free_signals: bool = False,
) -> dict[str, Any]:
    car = truth["cars"][0]
    days = (end - start).total_seconds() / 86400
    true_d, true_c = _truth_spans(car, start, end)
    d = match(true_d, [x for x in _in_window(drives, start, end) if x[1] is not None])
    c = match(true_c, [x for x in _in_window(charges, start, end) if x[1] is not None])
    cats = truth["ledger"]["by_category"]
    billed = {k: int(v.get("billed", 0)) for k, v in cats.items()}
    if free_signals:
        billed.pop("signals", None)
    prices: dict[str, float] = {str(k): v for k, v in PRICE_USD.items()}
    cost = sum(n * prices.get(k, 0.0) for k, n in billed.items())
    paths = [x["path"] for x in car["drives"] if x["end"] and start <= _t(x["start"]) <= end]  # type: ignore[operator]
    base = unobserved(scenario)
    return {
        "days": days,
        "paid_vehicle_data_per_day": cats.get("data", {}).get("billed", 0) / days,
        "wakes": cats.get("wake", {}).get("billed", 0),
        "signals_per_day": cats.get("signals", {}).get("calls", 0) / days,
        "usd_per_car_month": cost / days * 30,
        "signals_priced": not free_signals,
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
    result = score(
        run.truth, run.start, run.end, drives, charges, positions, scenario,  # type: ignore[arg-type]
        free_signals=mode.name in FREE_SIGNALS,
    )  # fmt: skip
    result.update(
        wall_s=run.wall_s,
        worker_errors=run.worker_errors,
        requests=run.calls,
        pushed_events=run.pushed_events,
    )
    return result


async def _baseline(scenario: str, *, streaming: bool) -> dict[str, Any]:
    run = await run_baseline(scenario, streaming=streaming)
    positions = [(lat, lon) for _at, lat, lon in run.seen.positions]
    result = score(
        run.truth, run.start, run.end, run.seen.drives, run.seen.charges, positions, scenario,
        free_signals=streaming,
    )  # fmt: skip
    result.update(wall_s=run.wall_s, requests=run.seen.requests, stream_rows=run.seen.stream_rows)
    return result


def cell(scenario: str, source: str) -> dict[str, Any]:
    """One scenario through one source, in this process."""
    logging.getLogger("fleetlog").setLevel(logging.ERROR)
    if source in BASELINES:
        result = asyncio.run(_baseline(scenario, streaming=source == "baseline-streaming"))
    elif source in FLEETLOG_SOURCES:
        from tests.harness.runner import MODES

        result = asyncio.run(_fleetlog(scenario, MODES[source]))
    else:
        raise ValueError(f"unknown source {source!r}; choose from {', '.join(SOURCES)}")
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    result.update(scenario=scenario, source=source, cpu_s=cpu)
    return result


#: Rough order of cost (measured), so the longest cells start first.
_WEIGHT = {"commuter-week": 4, "cold-week": 4, "road-trip": 2, "city-day": 1}


def _subprocess_cell(scenario: str, source: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    # its own process group: a cell past CELL_TIMEOUT_S goes with its Mosquitto
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.fidelity", "--cell", scenario, source],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=CELL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        wall = time.perf_counter() - t0
        error = f"did not finish in {CELL_TIMEOUT_S:.0f} s (stopped)"
        return {"scenario": scenario, "source": source, "error": error, "cell_wall_s": wall}
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (err.strip().splitlines() or ["no output"])[-1]
        return {"scenario": scenario, "source": source, "error": tail, "cell_wall_s": wall}
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["cell_wall_s"] = wall
    return result


def run(*, quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    scenarios = ("city-day",) if quick else SCENARIOS
    jobs = int(os.environ.get("FLEETLOG_BENCH_JOBS", str(JOBS)))
    cells = [(sc, so) for sc in scenarios for so in SOURCES]
    cells.sort(key=lambda c: -(_WEIGHT[c[0]] * (1 if c[1] in BASELINES else 3)))
    t0 = time.perf_counter()
    done: dict[tuple[str, str], dict[str, Any]] = {}

    def one(c: tuple[str, str]) -> None:
        r = _subprocess_cell(*c)
        done[c] = r
        what = r.get("error") or f"${r['usd_per_car_month']:.2f}/car-month"
        log(f"fidelity/{c[0]}/{c[1]}: {what} ({r['cell_wall_s']:.0f} s)")

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, cells))
    runs = [done[(sc, so)] for sc in scenarios for so in SOURCES]
    return {
        "runs": runs,
        "jobs": jobs,
        "cells_wall_s": time.perf_counter() - t0,
        "free_signals": list(FREE_SIGNALS),
    }


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def _s(x: float | None) -> str:
    return "–" if x is None else f"{x:.0f}"


def _errs(m: dict[str, Any]) -> str:
    median = f"{_s(m['start_err_median_s'])}/{_s(m['end_err_median_s'])}"
    return f"{median} (≤{_s(m['end_err_max_s'])})"


def _found(r: dict[str, Any]) -> float | None:
    true = r["drives"]["true"] + r["charges"]["true"]
    return (r["drives"]["found"] + r["charges"]["found"]) / true if true else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def markdown(result: dict[str, Any]) -> str:
    rows = []
    by: dict[tuple[str, str], dict[str, Any]] = {}
    for r in result["runs"]:
        label = LABELS.get(r["source"], r["source"])
        if "error" in r:
            rows.append([r["scenario"], label, f"**failed:** {r['error'][:80]}", *[None] * 12])
            continue
        by[(r["scenario"], r["source"])] = r
        d, c = r["drives"], r["charges"]
        signals = r["signals_per_day"]
        rows.append(
            [
                r["scenario"],
                label,
                r["paid_vehicle_data_per_day"],
                r["wakes"],
                f"{signals:,.0f}"
                + ("" if r.get("signals_priced", True) or not signals else " (free)"),
                r["usd_per_car_month"],
                f"{d['found']}/{d['true']} (+{d['extra']})",
                f"{c['found']}/{c['true']} (+{c['extra']})",
                _pct(d["amount_err_median"]),
                _pct(c["amount_err_median"]),
                _errs(d),
                _errs(c),
                _pct(r["route_coverage"]),
                r["extra_awake_min_per_day"],
                f"{r.get('cell_wall_s', r.get('wall_s', 0)):.0f} / {r.get('cpu_s', 0):.0f}",
            ]
        )
    out = [
        "Each scenario (one car) through fleetlog's four source modes and two TeslaMate "
        "baselines (its published constants; polling, and with MyTeslaMate's stream), same "
        f"simulator, same run; {result.get('jobs', 1)} cells at a time, each in its own "
        "subprocess. $/car-month at Tesla's published prices before the $10 monthly credit "
        "(data 500/$1, wakes 50/$1, signals 150,000/$1); MyTeslaMate's stream is free to the "
        "user (its signals are shown but not priced), Teslemetry's is priced at Tesla's rate "
        "(its flat per-vehicle stream subscription is not in the reference). Errors are "
        "medians over matched pairs; start/end: median start / median end (worst end), "
        "seconds. Wall / CPU: the cell's wall time and the CPU seconds it used (its process "
        "and children) on a shared machine.",
        "",
        f"Cells: {len(result['runs'])} in {result.get('cells_wall_s', 0):.0f} s wall, "
        f"{sum(r.get('cpu_s', 0) for r in result['runs']):.0f} CPU-seconds in all.",
        "",
        table(
            [
                "scenario",
                "source",
                "paid vehicle_data/day",
                "wakes",
                "signals/day",
                "$/car-month",
                "drives found",
                "charges found",
                "distance err",
                "energy err",
                "drive start/end err s",
                "charge start/end err s",
                "route coverage",
                "extra awake min/day",
                "wall / CPU s",
            ],
            rows,
        ),
    ]
    ratios = []
    for (scenario, source), r in by.items():
        if source in BASELINES:
            continue
        b = by.get((scenario, BASELINE_OF[source]))
        if b is None:
            continue
        ratios.append(
            [
                scenario,
                LABELS[source],
                LABELS[BASELINE_OF[source]],
                _ratio(r["usd_per_car_month"], b["usd_per_car_month"]),
                _ratio(r["paid_vehicle_data_per_day"], b["paid_vehicle_data_per_day"]),
                _ratio(_found(r), _found(b)),
                _ratio(r["route_coverage"], b["route_coverage"]),
                r["extra_awake_min_per_day"] - b["extra_awake_min_per_day"],
            ]
        )
    out += [
        "",
        "Ratio to the baseline (same scenario, same run): pushed modes against TeslaMate with "
        "its stream, polling against TeslaMate polling. × < 1 costs less; found × is the share "
        "of true drives + charges found; awake Δ is fleetlog's extra minutes awake per day "
        "minus the baseline's.",
        "",
        table(
            [
                "scenario",
                "source",
                "baseline",
                "cost ×",
                "paid vehicle_data ×",
                "found ×",
                "route coverage ×",
                "awake min/day Δ",
            ],
            ratios,
        ),
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fidelity")
    what = f"scenario ({', '.join(SCENARIOS)}) and source ({', '.join(SOURCES)})"
    parser.add_argument("--cell", nargs=2, metavar=("SCENARIO", "SOURCE"), required=True, help=what)
    args = parser.parse_args(argv)
    scenario, source = args.cell
    if scenario not in SCENARIOS:
        parser.error(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    if source not in SOURCES:
        parser.error(f"unknown source {source!r}; choose from {', '.join(SOURCES)}")
    logging.basicConfig(level=logging.ERROR)
    print(json.dumps(cell(scenario, source), default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
