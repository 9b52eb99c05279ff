"""Outage: how long ``fleetlog run`` takes to recover when a part of its world breaks mid-drive.

The scenarios of the outage suite (``tests/reliability/_outages.py``), run once each and
reported: a private PostgreSQL restarted, a private Mosquitto restarted, a 5xx storm and a
429 storm from the simulator, the streaming websocket silent for 10 simulated minutes. The
car is on the Monday commute (``--quick``) or the 67 km Sunday drive, the simulator at 100×.

Recovery is measured from the moment the part is whole again to the first evidence that
the logger uses it: a new committed position (PostgreSQL, storms), the car's state on the
restarted broker (MQTT), the first streamed byte through the proxy (stream). Both clocks are
given: what is paced in simulated time (polling, retries) reads in simulated seconds; what
is paced in real time (the MQTT client's reconnect backoff, the websocket reconnect) in wall
seconds.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "reliability"))

import _outages as o

from fleetlog.sim.server import Faults

SPEED = 100.0


async def _scenarios(quick: bool, log: Callable[[str], None]) -> list[dict[str, Any]]:
    start = o.COMMUTE if quick else o.MEMMINGEN
    rows: list[dict[str, Any]] = []

    async def one(name: str, coro: Any) -> None:
        log(f"outage: {name}")
        try:
            out, extra = await coro
            rows.append({**out.summary(), **extra, "scenario": name})
        except Exception as exc:  # one broken scenario must not cost the others
            rows.append({"scenario": name, "error": repr(exc)})

    async def pg() -> tuple[o.Outcome, dict[str, Any]]:
        why = o.private_postgres_unavailable()
        if why is not None:
            raise RuntimeError(f"no private PostgreSQL: {why}")
        with o.scratch_dir("fleetlog-bench-outage-") as tmp, o.PrivatePostgres() as cluster:
            fault = o.postgres_restart(cluster, down_s=1.0 if quick else 5.0)
            out = await o.drive_through(
                "postgres", tmp, fault, db_url=cluster.url, start=start, speed=SPEED
            )
        return out, {"clock": "sim"}

    async def mqtt() -> tuple[o.Outcome, dict[str, Any]]:
        ns = f"bench{secrets.token_hex(3)}"
        with o.scratch_dir("fleetlog-bench-outage-") as tmp, o.PrivateMosquitto() as broker:
            out = await o.drive_through(
                "mqtt", tmp, o.mqtt_restart(broker, ns, down_s=1.0 if quick else 3.0),
                start=start, speed=SPEED,
                env={"MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(broker.port), "MQTT_NAMESPACE": ns},
            )  # fmt: skip
        return out, {"clock": "wall"}

    async def storm(faults: Faults) -> tuple[o.Outcome, dict[str, Any]]:
        length = timedelta(minutes=3 if quick else 15)
        with o.scratch_dir("fleetlog-bench-outage-") as tmp:
            out = await o.drive_through(
                "storm", tmp, o.api_storm(faults, length=length), start=start, speed=SPEED
            )
        extra = o.storm_figures(out)
        if faults.rate_limit_rate:
            extra["retry_after_violations"] = len(
                o.retry_after_violations(out, faults.retry_after_s, slack_s=5.0)
            )
        return out, {"clock": "sim", **extra}

    async def silent() -> tuple[o.Outcome, dict[str, Any]]:
        with o.scratch_dir("fleetlog-bench-outage-") as tmp:
            async with o.SilentProxy(("127.0.0.1", 0)) as proxy:

                async def through(sim: Any, values: dict[str, str]) -> None:
                    host, port = sim.env["TESLA_WSS_HOST"].split("//", 1)[1].split(":")
                    proxy.upstream = (host, int(port.rstrip("/")))
                    values["TESLA_WSS_HOST"] = f"ws://127.0.0.1:{proxy.port}"

                out = await o.drive_through(
                    "silent", tmp, o.silent_stream(proxy), start=start, speed=SPEED,
                    setup=through, stream=True,
                )  # fmt: skip
            extra = o.silence_figures(out, f"sqlite:///{tmp / 'fleetlog.sqlite3'}")
        if not out.marks.notes.get("stream_connections_before"):
            extra["note"] = "no websocket opened: fleetlog run has no stream wiring"
        return out, {"clock": "wall", **extra}

    await one("PostgreSQL restart", pg())
    await one("MQTT broker restart", mqtt())
    await one("5xx storm", storm(Faults(error_rate=1.0, seed=3)))
    await one("429 storm (Retry-After 60 s)", storm(Faults(rate_limit_rate=1.0, retry_after_s=60)))
    await one("stream silent 10 min", silent())
    return rows


def run(*, quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    rows = asyncio.run(_scenarios(quick, log))
    return {
        "speed": SPEED,
        "drive": "Monday commute, 8 km" if quick else "Sunday Lindau → Memmingen, 67 km",
        "scenarios": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    rows = []
    for r in result["scenarios"]:
        if "error" in r:
            rows.append([r["scenario"], "**failed**: " + r["error"][:120]] + [None] * 8)
            continue
        rows.append(
            [
                r["scenario"],
                r.get("outage_sim_s"),
                r.get("recovery_wall_s"),
                r.get("recovery_sim_s"),
                r.get("clock"),
                r.get("drives_matching"),
                r.get("span_error_pct"),
                r.get("distance_error_pct"),
                sum(r.get("duplicates", {}).values()),
                r.get("tracebacks"),
            ]
        )
    head = [
        "scenario", "outage (sim s)", "recovery (wall s)", "recovery (sim s)", "paced by",
        "drives stored", "distance err. in span %", "distance err. whole %", "duplicates",
        "tracebacks",
    ]  # fmt: skip
    notes = []
    for r in result["scenarios"]:
        extra = {
            k: v
            for k, v in r.items()
            if k
            in (
                "requests_in_storm",
                "statuses_in_storm",
                "first_good_data_sim_s",
                "retry_after_violations",
                "positions_while_broker_down",
                "state_after_restart",
                "positions_in_silence",
                "first_position_after_silence_sim_s",
                "longest_gap_in_silence_sim_s",
                "restarts",
                "note",
            )
        }
        if extra:
            notes.append(f"- {r['scenario']}: " + ", ".join(f"{k} {v}" for k, v in extra.items()))
    return "\n".join(
        [
            f"{result['drive']}, simulator at {result['speed']:.0f}×; recovery from the part "
            "being whole again to the first committed position (PostgreSQL, storms), the state "
            "on the restarted broker (MQTT), the first streamed byte (stream). _paced by_: "
            "which clock the recovery follows.",
            "",
            table(head, rows),
            "",
            *notes,
        ]
    )
