"""Query latency: every web page on a ten-year history of one car, p50 and p95, both databases.

    .venv/bin/python -m bench queries [--days N]

The history (:mod:`bench.history`) goes into a fresh database of each kind; then each page is
requested through the app in-process (FastAPI's TestClient: routing, the page's queries and
template rendering, no network) with the default window (the last 90 days) and, where a page
takes one, the whole ten years (``from=`` empty). Detail pages are asked for different drives
and charges each time. A page gets up to `reps` requests or `budget_s` seconds, after one
warm-up request that is not counted.

The generated history has no drive summaries (``fleetlog_drive_summaries``), like a freshly
imported or adopted database; the first page would write them. That one-time refresh is
run and timed before the pages (``drive summaries`` in the load's seconds).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from bench.common import pct, scratch_db, table
from bench.history import Loaded, Plan, load
from fleetlog.config import load_settings
from fleetlog.logbook import summaries
from fleetlog.store import make_engine, upgrade
from fleetlog.web import create_app

PageFn = Callable[[random.Random], str]


def pages(drive_ids: list[int], charge_ids: list[int]) -> list[tuple[str, PageFn]]:
    """Every page the web app has, with the windows that matter on a long history."""

    def fixed(path: str) -> PageFn:
        return lambda _rng: path

    out: list[tuple[str, PageFn]] = [("/ (cars)", fixed("/"))]
    for path in ("/drives", "/charges", "/battery", "/efficiency", "/vampire", "/timeline"):
        out.append((f"{path} (90 d)", fixed(path)))
        out.append((f"{path} (10 y)", fixed(f"{path}?from=")))
    out += [
        ("/drives/{id}", lambda rng: f"/drives/{rng.choice(drive_ids)}"),
        ("/drives/{id}/gpx", lambda rng: f"/drives/{rng.choice(drive_ids)}/gpx"),
        ("/charges/{id}", lambda rng: f"/charges/{rng.choice(charge_ids)}"),
        ("/statistics day (90 d)", fixed("/statistics?period=day")),
        ("/statistics month (10 y)", fixed("/statistics?period=month&from=")),
        ("/statistics year (10 y)", fixed("/statistics?period=year&from=")),
        ("/locations (90 d)", fixed("/locations")),
        ("/locations (10 y)", fixed("/locations?from=")),
        ("/updates (10 y)", fixed("/updates?from=")),
        ("/costs (90 d)", fixed("/costs")),
        ("/costs (10 y)", fixed("/costs?from=")),
        ("/settings", fixed("/settings")),
        ("/geofences", fixed("/geofences")),
        ("/api/drives (10 y, JSON)", fixed("/api/drives?from=")),
    ]
    return out


def measure(
    client: TestClient, fn: PageFn, rng: random.Random, reps: int, budget_s: float
) -> list[float]:
    """Milliseconds per request (after one warm-up); fails loudly on a non-200 answer."""
    first = fn(rng)
    answer = client.get(first)
    if answer.status_code != 200:
        raise RuntimeError(f"GET {first}: {answer.status_code} {answer.text[:200]}")
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < reps and (time.perf_counter() - started < budget_s or len(times) < 3):
        path = fn(rng)
        t0 = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: {answer.status_code}")
    return times


def run_backend(
    backend: str, plan: Plan, reps: int, budget_s: float, log: Callable[[str], None]
) -> dict[str, Any]:
    with scratch_db(backend, "queries") as url:
        engine = make_engine(url, pool_size=4)
        try:
            upgrade(engine)
            log(f"queries/{backend}: loading {plan.days} days of history")
            loaded = load(engine, plan)
            started = time.perf_counter()
            with engine.begin() as conn:
                summaries.refresh(conn)
            loaded.seconds["drive summaries"] = time.perf_counter() - started
            log(
                f"queries/{backend}: {loaded.positions:,} positions, {loaded.drives:,} drives, "
                f"{loaded.processes:,} charges in {sum(loaded.seconds.values()):.0f} s"
            )
            size = _size(engine)
            with engine.connect() as conn:
                drive_ids = list(conn.execute(sa.text("SELECT id FROM drives")).scalars())
                charge_ids = list(
                    conn.execute(sa.text("SELECT id FROM charging_processes")).scalars()
                )
            settings = load_settings({"TZ": "Europe/Berlin", "FLEETLOG_WEB_TILE_URL": "off"})
            client = TestClient(create_app(settings, engine))
            rng = random.Random(5)
            results = []
            for name, fn in pages(drive_ids, charge_ids):
                times = measure(client, fn, rng, reps, budget_s)
                results.append(
                    {
                        "page": name,
                        "n": len(times),
                        "p50_ms": pct(times, 50),
                        "p95_ms": pct(times, 95),
                    }
                )
                log(f"queries/{backend}: {name}: p50 {pct(times, 50):.0f} ms")
            return {"load": _loaded(loaded), "size_mb": size, "pages": results}
        finally:
            engine.dispose()


def _size(engine: sa.Engine) -> float | None:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return (
                float(
                    conn.execute(
                        sa.text("SELECT pg_database_size(current_database())")
                    ).scalar_one()
                )
                / 1e6
            )
        pages_ = conn.execute(sa.text("PRAGMA page_count")).scalar_one()
        size = conn.execute(sa.text("PRAGMA page_size")).scalar_one()
        return float(pages_) * float(size) / 1e6


def _loaded(loaded: Loaded) -> dict[str, Any]:
    return {
        "positions": loaded.positions,
        "charges_samples": loaded.charges,
        "drives": loaded.drives,
        "charging_processes": loaded.processes,
        "states": loaded.states,
        "updates": loaded.updates,
        "from": loaded.start.isoformat(),
        "to": loaded.end.isoformat(),
        "seconds": loaded.seconds,
    }


def run(
    *,
    days: int = 3652,
    reps: int = 20,
    budget_s: float = 20.0,
    backends: tuple[str, ...] = ("sqlite", "postgres"),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    logging.getLogger("fleetlog").setLevel(logging.WARNING)
    plan = Plan(days=days)
    return {"backends": {b: run_backend(b, plan, reps, budget_s, log) for b in backends}}


def markdown(result: dict[str, Any]) -> str:
    result = result["backends"]
    backends = list(result)
    out = []
    loads = []
    for b in backends:
        ld = result[b]["load"]
        loads.append(
            [
                b,
                ld["positions"],
                ld["drives"],
                ld["charging_processes"],
                ld["charges_samples"],
                ld["states"],
                sum(ld["seconds"].values()),
                result[b]["size_mb"],
            ]
        )
    out.append(
        table(
            ["database", "positions", "drives", "charges", "charge samples", "states",
             "load s", "size MB"],
            loads,
        )
    )  # fmt: skip
    out.append("")
    names = [p["page"] for p in result[backends[0]]["pages"]]
    rows = []
    for i, name in enumerate(names):
        row: list[Any] = [name]
        for b in backends:
            p = result[b]["pages"][i]
            row += [p["p50_ms"], p["p95_ms"]]
        rows.append(row)
    headers = ["page"] + [f"{b} {q}" for b in backends for q in ("p50 ms", "p95 ms")]
    out.append(table(headers, rows))
    return "\n".join(out)
