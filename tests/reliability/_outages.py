"""Outages during a drive: what the outage suite and ``python -m bench outage`` share.

A scenario runs the simulator in this process at `speed`× real time and ``fleetlog run
--sim-url`` in a subprocess on the same clock (as the crash suite does), lets the car start
a drive, breaks one thing for a while, mends it, and lets the drive finish. The parts that
break are private to the run, never the shared services others' tests use:

* a PostgreSQL cluster of its own (``initdb`` into a temporary directory as user
  ``postgres``, ``pg_ctl`` on a free port with a socket directory of its own, trust auth);
* a Mosquitto of its own (``mosquitto -c`` on a free port, no persistence, so a restart
  loses every retained message as a crashed broker would);
* the simulator's fault knobs (``sim.faults``: 5xx and 429 storms), switched on and off
  while it runs;
* a TCP proxy in front of the simulator's streaming websocket that can go silent: live
  connections stay open and carry nothing, new ones are accepted and carry nothing.

Each scenario returns an :class:`Outcome` with the ground truth, what was stored, the
subprocess's exit status and the recovery times; the tests assert on it, the benchmark
reports it. Recovery times are measured from the moment the broken part is whole again
(wall seconds, and the same in simulated seconds at `speed`).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from fleetlog.config import load_settings
from fleetlog.sim.car import Car, Snapshot
from fleetlog.sim.command import SimSettings, make_server
from fleetlog.sim.push import PushSink
from fleetlog.sim.server import Faults, SimServer
from fleetlog.sources.tesla import sign_in_with_tokens
from fleetlog.store import make_engine, upgrade
from fleetlog.store import tables as t

KEY = "reliability-outage-key"
PG_BIN = Path("/usr/lib/postgresql/15/bin")

# commuter-week starts Sunday 2025-03-02 23:00 UTC.
#: Monday's morning commute, 06:49:20-07:01:46 UTC, 8.0 km (the short variants).
COMMUTE = timedelta(hours=7, minutes=40)
#: Sunday's Lindau → Supercharger Memmingen, 13:59:21-14:42:14 UTC, 67.3 km (the long ones).
MEMMINGEN = timedelta(days=6, hours=14, minutes=50)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- private services ---------------------------------------------------------------


def private_postgres_unavailable() -> str | None:
    """Why a private PostgreSQL cannot run here, or None."""
    for tool in ("initdb", "pg_ctl"):
        if not (PG_BIN / tool).exists():
            return f"{PG_BIN / tool} not found (PostgreSQL 15 server binaries)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no 'postgres' user to own a private cluster"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != "postgres":
        return "neither root nor postgres: cannot run initdb as postgres"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser not found"
    return None


class PrivatePostgres:
    """A throwaway PostgreSQL 15 cluster on a free port (trust auth, own socket dir)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fleetlog-outage-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.started = False

    def _as_postgres(self, *argv: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, check=True, timeout=120
        )

    def __enter__(self) -> PrivatePostgres:
        shutil.chown(self.root, "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "--no-sync",
        )  # fmt: skip
        self.start()
        return self

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=200"
        )
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
            "-o", opts, "-w", "-t", "60", "start",
        )  # fmt: skip
        self.started = True

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"
        )
        self.started = False

    def __exit__(self, *exc: object) -> None:
        try:
            if self.started:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class PrivateMosquitto:
    """A Mosquitto of our own on a free port: anonymous, no persistence."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fleetlog-outage-mqtt-"))
        self.port = free_port()
        self.conf = self.root / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "mosquitto.log").open("ab"),
        )
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto did not start on {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> PrivateMosquitto:
        if shutil.which("mosquitto") is None:
            raise RuntimeError("mosquitto not installed")
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class SilentProxy:
    """TCP proxy to `upstream` that can go silent.

    Silent: the upstream side of every connection is closed (the server sees the client
    leave), the client side stays open and hears nothing; new connections are accepted
    and hear nothing. Resumed: the silent client sides are closed (as a network that
    comes back resets what it had dropped) and new connections are proxied again.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream  # may be set after construction, before the first client
        self.port = 0
        self.silent = False
        self.connections = 0
        self.first_byte_after_resume: float | None = None  # loop time
        self.resumed_at: float | None = None
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()
        self._mute: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> SilentProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for client, up in list(self._pairs):
            client.close()
            if up is not None:
                up.close()
        for w in list(self._mute):
            w.close()

    def silence(self) -> None:
        self.silent = True
        for client, up in list(self._pairs):
            if up is not None:
                up.close()
            self._mute.add(client)
        self._pairs.clear()

    def resume(self) -> None:
        self.silent = False
        self.resumed_at = asyncio.get_running_loop().time()
        self.first_byte_after_resume = None
        for w in list(self._mute):
            w.close()
        self._mute.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.silent:
            self._mute.add(writer)
            with contextlib.suppress(Exception):
                while await reader.read(65536):
                    pass
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        pair = (writer, up_w)
        self._pairs.add(pair)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, down: bool) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if pair not in self._pairs:
                        return  # silenced: swallow, the client hears nothing
                    if (
                        down
                        and self.resumed_at is not None
                        and self.first_byte_after_resume is None
                    ):
                        self.first_byte_after_resume = asyncio.get_running_loop().time()
                    dst.write(data)
                    await dst.drain()
            if pair in self._pairs:
                self._pairs.discard(pair)
                writer.close()
                up_w.close()

        await asyncio.gather(pump(reader, up_w, False), pump(up_r, writer, True))
        if writer in self._mute:
            # silenced while open: keep reading the client so the socket stays up, silently
            with contextlib.suppress(Exception):
                while await reader.read(65536):
                    pass


class OdometerTrace(PushSink):
    """The car's true odometer at every step of the simulation (commuter-week: one car)."""

    def __init__(self) -> None:
        self.samples: list[tuple[datetime, float]] = []

    def wants_snapshots(self, car: Car) -> bool:
        return True

    def on_snapshot(self, car: Car, snap: Snapshot) -> None:
        self.samples.append((snap.time, snap.odometer_km))


# --- one drive under an outage ----------------------------------------------------------


@dataclass
class Marks:
    """What a scenario's fault step records (loop times and simulated instants)."""

    broken_at: float | None = None
    mended_at: float | None = None
    broken_sim: datetime | None = None
    mended_sim: datetime | None = None
    recovered_at: float | None = None  # the scenario's own recovery evidence (loop time)
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    name: str
    speed: float
    truth_drive: dict[str, Any] | None
    drives: list[tuple[datetime, datetime | None, float, int]]  # start, end, km, positions
    duplicates: dict[str, list[Any]]
    exit_code: int | None
    tracebacks: int
    marks: Marks
    commits: list[tuple[float, int]]  # (loop time, positions committed so far)
    requests: list[tuple[datetime, str, int]]  # (sim time, endpoint, status)
    odometer: list[tuple[datetime, float]]  # the car's true odometer, each step
    skipped: str | None = None

    # -- derived ---------------------------------------------------------------------------

    @property
    def closed(self) -> list[tuple[datetime, datetime | None, float, int]]:
        return [d for d in self.drives if d[1] is not None]

    def matching_drives(self) -> list[tuple[datetime, datetime | None, float, int]]:
        """Stored drives overlapping the true drive (5 min slack)."""
        if self.truth_drive is None:
            return []
        s, e = _t(self.truth_drive["start"]), _t(self.truth_drive["end"])
        slack = timedelta(minutes=5)
        return [d for d in self.drives if d[0] - slack <= e and (d[1] or d[0]) + slack >= s]

    def distance_error(self) -> float | None:
        """Relative error of the stored distance of the true drive (one match), else None."""
        hits = self.matching_drives()
        if self.truth_drive is None or len(hits) != 1:
            return None
        true_km = float(self.truth_drive["distance_km"])
        return abs(hits[0][2] - true_km) / true_km

    def span_error(self) -> float | None:
        """Relative error of the stored distance against the true distance over the stored
        drive's own span (the car's odometer at its start and end): what was lost inside
        the drive, apart from how late polling saw it begin."""
        hits = self.matching_drives()
        if len(hits) != 1 or hits[0][1] is None or not self.odometer:
            return None
        true_km = self.true_odometer(hits[0][1]) - self.true_odometer(hits[0][0])
        return abs(hits[0][2] - true_km) / true_km if true_km > 0 else None

    def true_odometer(self, at: datetime) -> float:
        i = bisect.bisect_right([x[0] for x in self.odometer], at)
        return self.odometer[max(0, i - 1)][1]

    def first_commit_after(self, at: float | None) -> float | None:
        """Seconds from loop time `at` to the first sample with more positions than before."""
        if at is None:
            return None
        before = max((n for ts, n in self.commits if ts <= at), default=0)
        return next((ts - at for ts, n in self.commits if ts > at and n > before), None)

    def recovery_s(self) -> float | None:
        """Wall seconds from mended to the scenario's recovery evidence."""
        m = self.marks
        if m.mended_at is None:
            return None
        if m.recovered_at is not None:
            return max(0.0, m.recovered_at - m.mended_at)
        return self.first_commit_after(m.mended_at)

    def summary(self) -> dict[str, Any]:
        rec = self.recovery_s()
        err = self.distance_error()
        span = self.span_error()
        hits = self.matching_drives()
        return {
            "scenario": self.name,
            "skipped": self.skipped,
            "speed": self.speed,
            "outage_sim_s": (
                (self.marks.mended_sim - self.marks.broken_sim).total_seconds()
                if self.marks.mended_sim and self.marks.broken_sim
                else None
            ),
            "recovery_wall_s": rec,
            "recovery_sim_s": rec * self.speed if rec is not None else None,
            "drives_matching": len(hits),
            "drive_closed": bool(hits) and all(d[1] is not None for d in hits),
            "distance_km": hits[0][2] if len(hits) == 1 else None,
            "true_distance_km": self.truth_drive["distance_km"] if self.truth_drive else None,
            "distance_error_pct": err * 100 if err is not None else None,
            "span_error_pct": span * 100 if span is not None else None,
            "positions": hits[0][3] if len(hits) == 1 else None,
            "duplicates": {k: len(v) for k, v in self.duplicates.items()},
            "exit_code": self.exit_code,
            "tracebacks": self.tracebacks,
            **self.marks.notes,
        }


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _utc(d: datetime | None) -> datetime | None:
    if d is None:
        return None
    return d.replace(tzinfo=UTC) if d.tzinfo is None else d.astimezone(UTC)


DUPLICATE_QUERIES = {
    "drive positions at one instant": "SELECT drive_id, date FROM positions"
    " WHERE drive_id IS NOT NULL GROUP BY drive_id, date HAVING count(*) > 1",
    "drives with one start": "SELECT car_id, start_date FROM drives"
    " GROUP BY car_id, start_date HAVING count(*) > 1",
    "open drives per car > 1": "SELECT car_id FROM drives WHERE end_date IS NULL"
    " GROUP BY car_id HAVING count(*) > 1",
    "open states per car > 1": "SELECT car_id FROM states WHERE end_date IS NULL"
    " GROUP BY car_id HAVING count(*) > 1",
    "position outside its drive": "SELECT p.id FROM positions p JOIN drives d"
    " ON d.id = p.drive_id WHERE d.end_date IS NOT NULL"
    " AND (p.date < d.start_date OR p.date > d.end_date)",
}


def stored_drives(engine: sa.Engine) -> list[tuple[datetime, datetime | None, float, int]]:
    d, p = t.drives, t.positions
    n = sa.select(sa.func.count()).select_from(p).where(p.c.drive_id == d.c.id).scalar_subquery()
    with engine.connect() as conn:
        rows = conn.execute(sa.select(d.c.start_date, d.c.end_date, d.c.distance, n)).all()
    return [(_utc(a), _utc(b), float(x or 0), int(k)) for a, b, x, k in rows]  # type: ignore[misc]


def duplicates(engine: sa.Engine) -> dict[str, list[Any]]:
    with engine.connect() as conn:
        return {
            name: [tuple(r) for r in rows[:5]]
            for name, sql in DUPLICATE_QUERIES.items()
            if (rows := conn.execute(sa.text(sql)).all())
        }


@dataclass
class Run:
    """What a fault step can reach while the logger runs."""

    sim: SimServer
    engine: sa.Engine
    speed: float
    marks: Marks
    env: dict[str, str]

    def sim_now(self) -> datetime:
        return self.sim.clock.now()

    async def until_sim(self, at: datetime) -> None:
        """Sleep until the simulator's clock reads `at`."""
        left = (at - self.sim_now()).total_seconds() / self.speed
        if left > 0:
            await asyncio.sleep(left)

    def broken(self) -> None:
        self.marks.broken_at = asyncio.get_running_loop().time()
        self.marks.broken_sim = self.sim_now()

    def mended(self) -> None:
        self.marks.mended_at = asyncio.get_running_loop().time()
        self.marks.mended_sim = self.sim_now()


Fault = Callable[[Run, datetime], Awaitable[None]]
"""A scenario's fault step: given the run and the true drive's start, break and mend."""


async def _watch_commits(
    engine: sa.Engine, out: list[tuple[float, int]], stop: asyncio.Event
) -> None:
    loop = asyncio.get_running_loop()
    query = sa.select(sa.func.count()).select_from(t.positions)
    while not stop.is_set():
        try:
            n = await asyncio.to_thread(_count, engine, query)
            out.append((loop.time(), n))
        except sa.exc.SQLAlchemyError:
            pass  # the database is away: that's the outage
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


def _count(engine: sa.Engine, query: sa.Select[tuple[int]]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


@contextlib.asynccontextmanager
async def _logger(
    sim: SimServer, tmp: Path, env: dict[str, str]
) -> AsyncIterator[asyncio.subprocess.Process]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "TESLA_", "MQTT_", "FLEETLOG_", "TOKEN", "PORT"))
    }
    logs = (tmp / "run.log").open("ab")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fleetlog", "run", "--sim-url", sim.env["FLEETLOG_SIM_URL"],
        env={**base, **env}, stdout=logs, stderr=logs,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        logs.close()


async def drive_through(
    name: str,
    tmp: Path,
    fault: Fault,
    *,
    db_url: str | None = None,
    start: timedelta = COMMUTE,
    speed: float = 100.0,
    env: dict[str, str] | None = None,
    sim_kwargs: dict[str, Any] | None = None,
    after_end: timedelta = timedelta(minutes=1),
    setup: Callable[[SimServer, dict[str, str]], Awaitable[None]] | None = None,
    stream: bool = False,
) -> Outcome:
    """Run the logger through the first true drive after `start`, with `fault` in it.

    Polling only unless `stream` (then the simulator's streaming websocket too)."""
    url = db_url or f"sqlite:///{tmp / 'fleetlog.sqlite3'}"
    engine = make_engine(url, pool_size=2, timeout_s=5)
    upgrade(engine)
    server = make_server(
        SimSettings(
            scenario="commuter-week", mode="owner", speed=speed, port=0, start=start,
            billing_limit_usd=None,
        )
    )  # fmt: skip
    requests: list[tuple[datetime, str, int]] = []
    commits: list[tuple[float, int]] = []
    marks = Marks()
    exit_code: int | None = None
    async with server as sim:
        world = sim.world
        record = world.record

        def recorded(endpoint: str, category: Any, status: int, *, attributable: bool) -> None:
            requests.append((world.now, endpoint, status))
            record(endpoint, category, status, attributable=attributable)

        world.record = recorded  # type: ignore[method-assign]
        trace = OdometerTrace()
        sim.push.add_sink(trace)
        now = sim.clock.now()
        drive_start, drive_end = next(x for x in _planned_drives() if x[0] >= now)
        values = {k: v for k, v in sim.env.items() if not k.startswith("FLEETLOG_")}
        if not stream:
            values.pop("TESLA_WSS_HOST", None)
        values.update(
            ENCRYPTION_KEY=KEY,
            FLEETLOG_DATA_DIR=str(tmp),
            FLEETLOG_DATABASE_URL=url,
            FLEETLOG_LOG_LEVEL="WARNING",
            **(env or {}),
        )
        if setup is not None:
            await setup(sim, values)
        await sign_in_with_tokens(
            load_settings(values),
            engine,
            access_token=sim.env["FLEETLOG_ACCESS_TOKEN"],
            refresh_token=sim.env["FLEETLOG_REFRESH_TOKEN"],
            clock=sim.clock,
        )
        run = Run(sim, engine, speed, marks, values)
        # the sign-in above listed the cars too: the logger is up at the next listing
        listed = sum(1 for r in requests if r[1].endswith("products"))
        stop_watch = asyncio.Event()
        watcher = asyncio.create_task(_watch_commits(engine, commits, stop_watch))
        try:
            async with _logger(sim, tmp, values) as proc:
                # the logger is up once it has listed the cars; the drive must still be ahead
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 60
                while sum(1 for r in requests if r[1].endswith("products")) <= listed:
                    if loop.time() > deadline or proc.returncode is not None:
                        raise RuntimeError("fleetlog run did not list the cars")
                    await asyncio.sleep(0.02)
                if sim.clock.now() > drive_start - timedelta(seconds=30):
                    raise RuntimeError(
                        f"fleetlog run came up at {sim.clock.now()}, too late for the drive at"
                        f" {drive_start} (slow start at {speed}x)"
                    )
                await fault(run, drive_start)
                if marks.mended_sim is not None and marks.mended_sim > drive_end:
                    raise RuntimeError(f"the outage outlasted the drive ({marks.mended_sim})")
                await run.until_sim(drive_end + after_end)
                proc.send_signal(signal.SIGTERM)
                exit_code = await asyncio.wait_for(proc.wait(), 30)
        finally:
            stop_watch.set()
            await watcher
            world.record = record  # type: ignore[method-assign]
        truth = sim.truth()["cars"][0]
    true_drive = next((x for x in truth["drives"] if _t(x["start"]) >= drive_start), None)
    log_text = (tmp / "run.log").read_text(errors="replace")
    out = Outcome(
        name=name,
        speed=speed,
        truth_drive=true_drive,
        drives=stored_drives(engine),
        duplicates=duplicates(engine),
        exit_code=exit_code,
        tracebacks=log_text.count("Traceback"),
        marks=marks,
        commits=commits,
        requests=requests,
        odometer=trace.samples,
    )
    engine.dispose()
    return out


def _planned_drives() -> list[tuple[datetime, datetime]]:
    """The car's drives as the scenario plans them (start, end), from a fast-forwarded copy."""
    from fleetlog.sim import World, build

    world = World(build("commuter-week", 1))
    world.advance(world.scenario.end)
    return [(_t(x["start"]), _t(x["end"])) for x in world.truth()["cars"][0]["drives"]]


# --- the scenarios ----------------------------------------------------------------------

#: How far into the true drive each fault begins.
INTO_DRIVE = timedelta(minutes=2)


def postgres_restart(
    pg: PrivatePostgres, *, down_s: float = 1.0, times: int = 1, gap: timedelta | None = None
) -> Fault:
    """Stop the private PostgreSQL `down_s` wall seconds mid-drive, `times` times."""

    async def fault(run: Run, drive_start: datetime) -> None:
        at = drive_start + INTO_DRIVE
        downs = []
        for i in range(times):
            await run.until_sim(at)
            run.broken()
            await asyncio.to_thread(pg.stop, "fast")
            await asyncio.sleep(down_s)
            await asyncio.to_thread(pg.start)
            run.mended()
            downs.append(run.marks.mended_at - run.marks.broken_at)  # type: ignore[operator]
            if i + 1 < times:
                at = run.sim_now() + (gap or timedelta(minutes=5))
        run.marks.notes["restarts"] = times
        run.marks.notes["down_wall_s"] = sum(downs) / len(downs)

    return fault


def mqtt_restart(broker: PrivateMosquitto, namespace: str, *, down_s: float = 1.0) -> Fault:
    """Stop the private Mosquitto mid-drive; after its restart, wait for the car's retained
    state on it (a fresh subscriber) and count the positions committed while it was away."""
    import aiomqtt

    async def fault(run: Run, drive_start: datetime) -> None:
        await run.until_sim(drive_start + INTO_DRIVE)
        loop = asyncio.get_running_loop()
        before = await asyncio.to_thread(_count_positions, run.engine)
        run.broken()
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(down_s)
        during = await asyncio.to_thread(_count_positions, run.engine)
        await asyncio.to_thread(broker.start)
        run.mended()
        topic = f"teslamate/{namespace}/cars/+/state"
        seen: list[str] = []
        deadline = loop.time() + 60
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.subscribe(topic, qos=1)
            async with asyncio.timeout(max(1.0, deadline - loop.time())):
                async for message in client.messages:
                    payload = message.payload
                    if isinstance(payload, bytes) and payload:
                        seen.append(payload.decode())
                        run.marks.recovered_at = loop.time()
                        break
        run.marks.notes.update(
            positions_while_broker_down=during - before,
            state_after_restart=seen[-1] if seen else None,
        )

    return fault


def _count_positions(engine: sa.Engine) -> int:
    return _count(engine, sa.select(sa.func.count()).select_from(t.positions))


def api_storm(faults: Faults, *, length: timedelta = timedelta(minutes=3)) -> Fault:
    """The simulator answers with `faults` for `length` of simulated time mid-drive; the
    recovery is the first successful ``vehicle_data`` after the storm."""

    async def fault(run: Run, drive_start: datetime) -> None:
        await run.until_sim(drive_start + INTO_DRIVE)
        run.broken()
        run.sim.faults = faults
        await run.until_sim(run.marks.broken_sim + length)  # type: ignore[operator]
        run.sim.faults = Faults()
        run.mended()

    return fault


def storm_figures(out: Outcome) -> dict[str, Any]:
    """Requests in the storm, the statuses, the first good vehicle_data after it."""
    m = out.marks
    if m.broken_sim is None or m.mended_sim is None:
        return {}
    inside = [r for r in out.requests if m.broken_sim <= r[0] < m.mended_sim]
    good = next(
        (
            r[0]
            for r in out.requests
            if r[0] >= m.mended_sim and r[2] == 200 and r[1].endswith("vehicle_data")
        ),
        None,
    )
    return {
        "requests_in_storm": len(inside),
        "statuses_in_storm": sorted({r[2] for r in inside}),
        "first_good_data_sim_s": (good - m.mended_sim).total_seconds() if good else None,
    }


def retry_after_violations(out: Outcome, retry_after_s: float, slack_s: float) -> list[Any]:
    """Requests that came sooner than Retry-After allowed after a 429."""
    bad = []
    last_429: datetime | None = None
    for when, endpoint, status in out.requests:
        if last_429 is not None and (when - last_429).total_seconds() < retry_after_s - slack_s:
            bad.append((last_429, when, endpoint, status))
        if status == 429:
            last_429 = when
    return bad


def silent_stream(proxy: SilentProxy, *, length: timedelta = timedelta(minutes=10)) -> Fault:
    """The streaming websocket goes silent for `length` of simulated time mid-drive."""

    async def fault(run: Run, drive_start: datetime) -> None:
        await run.until_sim(drive_start + timedelta(seconds=45))
        run.marks.notes["stream_connections_before"] = proxy.connections
        run.broken()
        proxy.silence()
        await run.until_sim(run.marks.broken_sim + length)  # type: ignore[operator]
        proxy.resume()
        run.mended()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while proxy.first_byte_after_resume is None and loop.time() < deadline:
            await asyncio.sleep(0.02)
        run.marks.recovered_at = proxy.first_byte_after_resume
        run.marks.notes["stream_connections"] = proxy.connections

    return fault


def silence_figures(out: Outcome, engine_url: str) -> dict[str, Any]:
    """Positions of the drive inside the silence: how many, the longest gap, the first."""
    m = out.marks
    if m.broken_sim is None or m.mended_sim is None:
        return {}
    engine = make_engine(engine_url, pool_size=1)
    try:
        with engine.connect() as conn:
            dates = [
                _utc(r[0])
                for r in conn.execute(
                    sa.select(t.positions.c.date)
                    .where(t.positions.c.drive_id.is_not(None))
                    .order_by(t.positions.c.date)
                )
            ]
    finally:
        engine.dispose()
    inside = [d for d in dates if d is not None and m.broken_sim <= d <= m.mended_sim]
    edges = [m.broken_sim, *inside, m.mended_sim]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(edges)]
    return {
        "positions_in_silence": len(inside),
        "first_position_after_silence_sim_s": (
            (inside[0] - m.broken_sim).total_seconds() if inside else None
        ),
        "longest_gap_in_silence_sim_s": max(gaps) if gaps else None,
    }


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)
