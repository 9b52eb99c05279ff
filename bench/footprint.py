"""Footprint: resident memory and idle CPU of ``fleetlog run`` with 1, 100 and 1,000 cars.

The simulator's ``fleet`` scenario with N cars runs in this process in real time (1×), at
night (03:00 of its first day: the cars are parked, most asleep); ``fleetlog run
--sim-url`` follows it in a subprocess on a SQLite file. The window begins once the logger
is settled: every car registered, every car's open state in the database the simulator's
state of that car (asleep, online or offline), and no paid ``vehicle_data`` for
:data:`QUIET_S` (its start-up looks are done; from 200 cars on, 0.5 % of the cars may be
mid-transition and 1 % looked at; or the number of cars in the simulator's state unchanged
for :data:`QUIET_S`, as the logger leaves some cars without a look for now) — at most
:data:`SETTLE_CAP_S` after registration, and the result says whether it settled — then
`settle` more seconds. Its RSS
(``VmRSS``) and CPU (``utime + stime`` from ``/proc/<pid>/stat``) are read over a `window`
of seconds; peak RSS is ``VmHWM``.

Feeds: when ``fleetlog run`` starts telemetry consumers (``FLEETLOG_TELEMETRY``, wired in
``runtime.run_logger`` through ``vehicle.feeds``), the cars are on Fleet Telemetry over
MQTT (the shared Mosquitto on 127.0.0.1:1883, a unique topic base, the ``balanced``
profile set on every car in the simulator) beside the REST poller; otherwise, or without a
broker, polling only. The report says which.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import table
from fleetlog.config import load_settings
from fleetlog.sim.command import SimSettings, make_server
from fleetlog.sources.tesla import sign_in_with_tokens
from fleetlog.store import make_engine, upgrade
from fleetlog.store import tables as t

KEY = "bench-footprint-key"
MQTT = ("127.0.0.1", 1883)
TICKS = os.sysconf("SC_CLK_TCK")
#: At most this long after registration for every car to settle (1,000 cars on 2 cores).
SETTLE_CAP_S = 300.0
#: Settled: no paid ``vehicle_data`` for this long (and every car's state is the simulator's).
QUIET_S = 30.0


def telemetry_wired() -> bool:
    """Whether ``fleetlog run`` starts pushed feeds from its settings."""
    from fleetlog import runtime

    return "settings" in inspect.signature(runtime.run_logger).parameters


def _broker_up() -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(MQTT) == 0


def _proc(pid: int) -> tuple[float, int, int]:
    """(cpu seconds, rss KiB, peak rss KiB) of `pid`."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    rss = hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return cpu, rss, hwm


async def measure(
    cars: int, *, telemetry: bool, settle: float, window: float, log: Callable[[str], None]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fleetlog-bench-footprint-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'fleetlog.sqlite3'}"
        engine = make_engine(url)
        upgrade(engine)
        base = f"bench-footprint-{secrets.token_hex(4)}"
        mqtt_url = f"mqtt://{MQTT[0]}:{MQTT[1]}/{base}"
        t0 = time.perf_counter()
        server = make_server(
            SimSettings(
                scenario="fleet", mode="fleet", cars=cars, speed=1.0, port=0,
                start=timedelta(hours=3), billing_limit_usd=None,
                telemetry=(mqtt_url,) if telemetry else (),
            )
        )  # fmt: skip
        log(f"footprint: {cars} cars: world built in {time.perf_counter() - t0:.1f} s")
        async with server as sim:
            if telemetry:
                from fleetlog.sources.streaming.profiles import PROFILES, fleet_telemetry_config

                vins = [c["vin"] for c in sim.truth()["cars"]]
                sim.world.telemetry_config_set(
                    vins, fleet_telemetry_config(PROFILES["balanced"], hostname="bench")
                )
            env = {k: v for k, v in sim.env.items() if not k.startswith("FLEETLOG_")}
            env.update(
                ENCRYPTION_KEY=KEY,
                FLEETLOG_DATA_DIR=tmp,
                FLEETLOG_DATABASE_URL=url,
                FLEETLOG_LOG_LEVEL="WARNING",
            )
            if telemetry:
                env["FLEETLOG_TELEMETRY"] = mqtt_url
            await sign_in_with_tokens(
                load_settings(env),
                engine,
                access_token=sim.env["FLEETLOG_ACCESS_TOKEN"],
                refresh_token=sim.env["FLEETLOG_REFRESH_TOKEN"],
                clock=sim.clock,
            )
            clean = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("DATABASE_", "TESLA_", "MQTT_", "FLEETLOG_", "TOKEN", "PORT"))
            }
            logs = (Path(tmp) / "run.log").open("ab")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "fleetlog", "run", "--sim-url", sim.env["FLEETLOG_SIM_URL"],
                env={**clean, **env}, stdout=logs, stderr=logs,
            )  # fmt: skip
            try:
                loop = asyncio.get_running_loop()
                began = loop.time()
                registered = 0
                while registered < cars and loop.time() - began < 240:
                    await asyncio.sleep(1)
                    with engine.connect() as conn:
                        registered = conn.execute(
                            sa.select(sa.func.count()).select_from(t.cars)
                        ).scalar_one()
                    if proc.returncode is not None:
                        break
                up_s = loop.time() - began
                log(f"footprint: {cars} cars: {registered} registered in {up_s:.0f} s")
                # settled: every car's open state is the simulator's, and no paid
                # vehicle_data for QUIET_S (start-up looks done); bounded by SETTLE_CAP_S.
                # From 200 cars on, 0.5 % may be mid-transition and 1 % looked at (cars
                # wake at night too).
                settled_at, matched = None, 0
                slack, calls_ok = cars // 200, max(1, cars // 100)
                history = [(loop.time(), sim.world.ledger.count("data"), 0)]
                while loop.time() - began < up_s + SETTLE_CAP_S and proc.returncode is None:
                    await asyncio.sleep(2)
                    matched = _matching_states(engine, sim.world.cars)
                    now = loop.time()
                    history.append((now, sim.world.ledger.count("data"), matched))
                    old = [(c, m) for at, c, m in history if now - at >= QUIET_S]
                    if not old:
                        continue
                    recent_calls = history[-1][1] - old[-1][0]
                    # all cars in the simulator's state, or the count stopped moving (cars
                    # the logger leaves unlooked-at for now, e.g. asleep since before start)
                    steady = matched >= cars - slack or matched == old[-1][1]
                    if steady and recent_calls < calls_ok:
                        settled_at = now - began
                        break
                known = matched
                waited = loop.time() - began
                log(
                    f"footprint: {cars} cars: {matched} in the simulator's state after "
                    f"{waited:.0f} s ({'settled' if settled_at else 'NOT settled: cap reached'})"
                )
                await asyncio.sleep(settle)
                cpu0, _, _ = _proc(proc.pid)
                w0 = time.perf_counter()
                rss_samples = []
                while time.perf_counter() - w0 < window:
                    await asyncio.sleep(min(5.0, window))
                    rss_samples.append(_proc(proc.pid)[1])
                cpu1, rss, hwm = _proc(proc.pid)
                wall = time.perf_counter() - w0
                proc.send_signal(signal.SIGTERM)
                code = await asyncio.wait_for(proc.wait(), 60)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                logs.close()
            with engine.connect() as conn:
                states: dict[Any, int] = dict(
                    conn.execute(
                        sa.select(t.states.c.state, sa.func.count())
                        .where(t.states.c.end_date.is_(None))
                        .group_by(t.states.c.state)
                    ).all()
                )
            ledger = sim.truth()["ledger"]["by_category"]
        engine.dispose()
    return {
        "cars": cars,
        "feed": "telemetry (MQTT) + REST" if telemetry else "REST polling only",
        "registered": registered,
        "startup_s": up_s,
        "rss_mib": rss / 1024,
        "rss_median_mib": sorted(rss_samples)[len(rss_samples) // 2] / 1024,
        "peak_rss_mib": hwm / 1024,
        "cpu_pct": 100 * (cpu1 - cpu0) / wall,
        "window_s": wall,
        "open_states": {str(k): v for k, v in states.items()},
        "cars_settled_before_window": known,
        "settled": settled_at is not None,
        "settle_s": waited,
        "cpu_s": cpu1 - cpu0,
        "exit_code": code,
        "api_calls": {k: v.get("calls") for k, v in ledger.items()},
    }


def _matching_states(engine: sa.Engine, cars: Any) -> int:
    """How many cars have an open state row equal to the simulator's state of that car."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.cars.c.vin, t.states.c.state)
            .join(t.states, t.states.c.car_id == t.cars.c.id)
            .where(t.states.c.end_date.is_(None))
        ).all()
    logged = {vin: str(state) for vin, state in rows}
    return sum(1 for c in cars if logged.get(c.spec.vin) == c.state)


def run(*, quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    wired = telemetry_wired()
    broker = _broker_up()
    telemetry = wired and broker
    why = (
        "telemetry"
        if telemetry
        else (
            "polling only: fleetlog run has no telemetry wiring"
            if not wired
            else f"polling only: no Mosquitto on {MQTT[0]}:{MQTT[1]}"
        )
    )
    sizes = (1, 100) if quick else (1, 100, 1000)
    settle, window = (10.0, 20.0) if quick else (30.0, 60.0)
    rows = []
    for n in sizes:
        try:
            rows.append(
                asyncio.run(measure(n, telemetry=telemetry, settle=settle, window=window, log=log))
            )
        except Exception as exc:  # one size failing keeps the others
            rows.append({"cars": n, "error": repr(exc)})
    return {"measured": True, "mode": why, "settle_s": settle, "window_s": window, "rows": rows}


HEAD = ("cars", "feed", "registered", "start-up s", "settled after s", "RSS MiB", "peak RSS MiB",
        "idle CPU %", "open states")  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    if not result.get("measured"):
        return f"Not measured: {result.get('reason')}."
    rows = []
    for r in result["rows"]:
        if "error" in r:
            rows.append([r["cars"], "**failed** " + r["error"][:100], *[None] * 7])
            continue
        rows.append(
            [
                r["cars"], r["feed"], r["registered"], r["startup_s"],
                f"{r['settle_s']:.0f}" + ("" if r["settled"] else " (**not settled**: cap)"),
                r["rss_mib"],
                r["peak_rss_mib"], r["cpu_pct"],
                ", ".join(f"{k} {v}" for k, v in sorted(r["open_states"].items())),
            ]
        )  # fmt: skip
    return "\n".join(
        [
            f"`fleetlog run` against the simulator's `fleet` scenario at 1× from 03:00 (parked "
            f"cars), {result['mode']}. The window begins once every car is registered, every "
            "car's open state in the database is the simulator's state of that car and no paid "
            f"vehicle_data came for {QUIET_S:.0f} s (settled after: seconds from the start), "
            f"then {result['settle_s']:.0f} s more: RSS (MiB), peak RSS, CPU over the "
            f"{result.get('window_s', 60):.0f} s window (% of one core).",
            "",
            table(HEAD, rows),
        ]
    )
