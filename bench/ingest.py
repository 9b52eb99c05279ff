"""Ingest: telemetry signals per second end to end, beside the database's raw insert ceiling.

    .venv/bin/python -m bench ingest

Workload: what the simulator's commuter-week car sends through Teslemetry-style Fleet
Telemetry (every supported field, 1 s interval, typed) over a morning with a drive, encoded
as the fleet-telemetry server dispatches it (protobuf ``Payload`` and ``VehicleConnectivity``),
copied to several VINs.

End to end, per process: ``decode_record`` → :class:`RecordIngest` (sequencer: 0.5 s hold,
order, de-duplication) → ``Observed``/``CarConnectivity`` → the car's :class:`CarWorker`
(machine step, executor, logbook) → committed rows. The clock is moved with the records
(each record is released as soon as its hold is over), and every payload is pushed as fast
as the pipeline takes it. The broker hop (MQTT) is not in the loop: it is measured by the
streaming tests, and here it would measure Mosquitto.

Two ways to commit: "group", what a worker does with a backlog in its mailbox (the events
handled with ``hold=True``, so the executor commits every ``hold_steps`` steps or
``hold_s`` seconds, and whatever is left at the end), and "per step", one transaction per
machine step, what a worker does when each event finds its mailbox otherwise empty.

Raw ceiling: the same number of ``positions`` rows as the pipeline committed, inserted in one
transaction (SQLite ``executemany``, PostgreSQL ``COPY``) on the same database.

One process, and two processes with their own cars on the same database at once.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.common import scratch_db, table
from fleetlog.clock import ManualClock
from fleetlog.logbook.resume import read_open_rows, resume
from fleetlog.logbook.writer import CarIdentity, CarLogbook, register_car
from fleetlog.model.observation import Source
from fleetlog.sim import CloudOptions, World, build
from fleetlog.sim.encoding import encode, server_transform
from fleetlog.sim.payload import vehicle_data
from fleetlog.sim.push import PushHub, PushSink
from fleetlog.sim.telemetry import ConnectivityRecord, VRecord
from fleetlog.sources.streaming.feed import FeedEvent, RecordIngest
from fleetlog.sources.streaming.records import Notice, decode_record
from fleetlog.sources.streaming.sequencer import Sequencer
from fleetlog.sources.vehicle_data import observation_from_vehicle_data
from fleetlog.store import make_engine, upgrade
from fleetlog.store import tables as t
from fleetlog.vehicle.events import Boot, FetchedFull
from fleetlog.vehicle.executor import Executor
from fleetlog.vehicle.machine import CarState
from fleetlog.vehicle.settings import Feed, Timing
from fleetlog.vehicle.worker import CarWorker

# (record type, created_at, payload bytes, signals in it)
Frame = tuple[str, datetime, bytes, int]


class _Collect(PushSink):
    def __init__(self) -> None:
        self.records: list[Any] = []

    def on_record(self, record: Any) -> None:
        self.records.append(record)


def workload(long_drive: bool) -> tuple[list[Any], dict[str, Any], datetime]:
    """The car's records around one drive, its vehicle_data before it, and when that was.

    `long_drive`: Saturday's trip (hours on the motorway); else Monday's 12-minute commute.
    """
    scenario = build("commuter-week", 1)
    truth = World(scenario)
    truth.advance(scenario.end)
    drives = truth.truth()["cars"][0]["drives"]
    pick = max(drives, key=lambda d: d["distance_km"]) if long_drive else drives[0]
    start = datetime.fromisoformat(pick["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(pick["end"].replace("Z", "+00:00"))
    world = World(
        build("commuter-week", 1), CloudOptions(mode="teslemetry", billing_limit_usd=None)
    )
    hub = PushHub(world, ack_loss=0.0)
    begin = start - timedelta(minutes=10)
    world.advance(begin)
    car = world.cars[0]
    answer = vehicle_data(car, car.snapshot(), set(_ALL_SECTIONS), world.account.id)
    sink = _Collect()
    hub.add_sink(sink)
    hub.attach()
    world.advance(end + timedelta(minutes=10))
    return sink.records, answer, begin


_ALL_SECTIONS = (
    "charge_state",
    "climate_state",
    "drive_state",
    "gui_settings",
    "vehicle_config",
    "vehicle_state",
    "location_data",
)


def frames_for(records: list[Any], vin: str) -> list[Frame]:
    out: list[Frame] = []
    for r in records:
        if isinstance(r, VRecord):
            r2 = server_transform(replace(r, vin=vin))
            out.append(("V", r2.created_at, encode(r2, "protobuf"), len(r2.data)))
        elif isinstance(r, ConnectivityRecord):
            r2 = replace(r, vin=vin)
            out.append(("connectivity", r2.created_at, encode(r2, "protobuf"), 0))
    return out


class _Outlet:
    def __init__(self) -> None:
        self.events: list[FeedEvent] = []

    def event(self, item: FeedEvent) -> None:
        self.events.append(item)

    def notice(self, item: Notice, feed: str) -> None:
        return None


class _Pacer:
    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def now(self) -> datetime:
        return self.clock.now()


class _Unavailable(logging.Handler):
    """Counts the executor's "database unavailable" (SQLite: locked) retries."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "database unavailable" in record.getMessage():
            self.count += 1


class _NoFetch:
    async def fetch(self, kind: Any) -> Any:  # never called: the loop below has no waits
        raise AssertionError("no REST in the ingest benchmark")


def _worker(engine: sa.Engine, vin: str, n: int, clock: ManualClock) -> CarWorker:
    identity = CarIdentity(eid=10_000 + n, vid=20_000 + n, vin=vin, name=f"bench {vin[-8:]}")
    car = register_car(engine, identity, clock.now())
    initial = CarState(vin, settings=car.settings, timing=Timing(), feed=Feed.TELEMETRY)
    state, refs = resume(initial, read_open_rows(engine, car.car_id))
    logbook = CarLogbook(engine, car.car_id, refs=refs)
    return CarWorker(
        state=state,
        executor=Executor(vin, logbook),
        fetcher=_NoFetch(),  # type: ignore[arg-type]
        pacer=_Pacer(clock),  # type: ignore[arg-type]
        engine=engine,
        car_id=car.car_id,
        identity=identity,
    )


def pipeline(
    url: str,
    vins: list[str],
    records: list[Any],
    answer: dict[str, Any],
    t0: datetime,
    *,
    group: bool = True,
) -> dict[str, Any]:
    """Run the workload for `vins` through decode → worker → database; what it did.

    `group`: commit as a worker with a backlog does; else one transaction per step.
    """
    logging.getLogger("fleetlog").setLevel(logging.ERROR)
    unavailable = _Unavailable()
    logging.getLogger("fleetlog.vehicle.executor").addHandler(unavailable)
    engine = make_engine(url, pool_size=2, timeout_s=30)
    clock = ManualClock(t0)
    workers: dict[str, CarWorker] = {}
    locked = 0
    for vin in vins:
        while vin not in workers:
            try:
                workers[vin] = _worker(engine, vin, int(vin[-8:]), clock)
            except sa.exc.OperationalError as exc:
                # SQLite: a read-then-write transaction meeting another process's write gets
                # SQLITE_BUSY at once (no busy wait: it would deadlock). Counted, retried.
                if "locked" not in str(exc) or locked > 50:
                    raise
                locked += 1
                time.sleep(0.05)
    start_full = observation_from_vehicle_data(answer, received_at=t0)
    for vin, w in workers.items():
        w.handle(Boot())
        w.handle(FetchedFull(replace(start_full, vin=vin)))
    per_vin = {vin: frames_for(records, vin) for vin in vins}
    outlet = _Outlet()
    ingest = RecordIngest("bench", outlet, Sequencer(Source.TELEMETRY), clock, frozenset())
    # interleave the cars' frames in time order, as one dispatcher delivers them
    merged = sorted(
        ((f[1], i, vin, f) for vin, frames in per_vin.items() for i, f in enumerate(frames)),
        key=lambda x: (x[0], x[1]),
    )
    signals = 0
    started = time.perf_counter()
    for created, _i, vin, (kind, _c, payload, n) in merged:
        if created + timedelta(seconds=0.6) > clock.now():
            clock.advance((created + timedelta(seconds=0.6) - clock.now()).total_seconds())
        ingest.decode(lambda k=kind, p=payload: decode_record(k, p), payload, vin=vin)
        ingest.flush()
        signals += n
        for item in outlet.events:
            target = workers.get(item.vin or "")
            for w in [target] if target is not None else list(workers.values()):
                w.handle(item.event, hold=group)
        outlet.events.clear()
    ingest.flush(everything=True)
    for item in outlet.events:
        if item.vin in workers:
            workers[item.vin].handle(item.event, hold=group)
    for w in workers.values():
        if not w.executor.flush():
            raise RuntimeError(f"{w.vin}: rows left unsaved at the end")
    seconds = time.perf_counter() - started
    errors = sum(w.errors for w in workers.values())
    car_ids = [w.car_id for w in workers.values()]
    with engine.connect() as conn:
        positions = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.positions)
            .where(t.positions.c.car_id.in_(car_ids))
        ).scalar_one()
    engine.dispose()
    return {
        "locked_at_start": locked,
        "seconds": seconds,
        "signals": signals,
        "frames": len(merged),
        "positions": int(positions),
        "errors": errors,
        "write_retries": unavailable.count,
    }


def _child(
    url: str,
    vins: list[str],
    records: list[Any],
    answer: dict[str, Any],
    t0: datetime,
    group: bool,
    q: Any,
) -> None:
    try:
        q.put(pipeline(url, vins, records, answer, t0, group=group))
    except Exception as exc:  # report, do not hang the parent
        q.put({"error": repr(exc)})


def processes(
    n: int,
    url: str,
    cars: int,
    records: list[Any],
    answer: dict[str, Any],
    t0: datetime,
    *,
    group: bool = True,
) -> dict[str, Any]:
    """`n` processes, `cars` cars each, started together on one database."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = []
    for p in range(n):
        vins = [f"5YJ3BENCH{p * 1000 + c:08d}" for c in range(cars)]
        procs.append(ctx.Process(target=_child, args=(url, vins, records, answer, t0, group, q)))
    wall = time.perf_counter()
    for proc in procs:
        proc.start()
    results = [q.get() for _ in procs]
    for proc in procs:
        proc.join()
    wall = time.perf_counter() - wall
    bad = [r["error"] for r in results if "error" in r]
    if bad:
        raise RuntimeError(bad[0])
    slowest = max(r["seconds"] for r in results)
    signals = sum(r["signals"] for r in results)
    rows = sum(r["positions"] for r in results)
    return {
        "processes": n,
        "commit": "group" if group else "per step",
        "cars": n * cars,
        "signals": signals,
        "frames": sum(r["frames"] for r in results),
        "positions": rows,
        "seconds": slowest,
        "signals_per_s": signals / slowest,
        "rows_per_s": rows / slowest,
        "worker_errors": sum(r["errors"] for r in results),
        "write_retries": sum(r["write_retries"] for r in results),
        "locked_at_start": sum(r["locked_at_start"] for r in results),
    }


def raw_ceiling(url: str, rows: int) -> dict[str, Any]:
    """Insert `rows` positions in one transaction: executemany (SQLite) or COPY (PostgreSQL)."""
    engine = make_engine(url)
    now = datetime(2025, 3, 3, 7, 0)
    with engine.begin() as conn:
        car = conn.execute(sa.select(t.cars.c.id).limit(1)).scalar_one()
    cols = ("date", "latitude", "longitude", "speed", "power", "odometer", "battery_level",
            "rated_battery_range_km", "ideal_battery_range_km", "elevation", "car_id")  # fmt: skip
    data = [
        (now + timedelta(seconds=i), 48.1 + i * 1e-6, 11.5 + i * 1e-6, 50, 12, 1000.0 + i * 0.01,
         70, 350.25, 364.1, 520, car)
        for i in range(rows)
    ]  # fmt: skip
    started = time.perf_counter()
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            copy_sql = f"COPY positions ({', '.join(cols)}) FROM STDIN"
            with raw.cursor() as cur, cur.copy(copy_sql) as copy:  # type: ignore[attr-defined]
                for row in data:
                    copy.write_row(row)
            raw.commit()
        finally:
            raw.close()
        how = "COPY"
    else:
        with engine.begin() as conn:
            conn.execute(t.positions.insert(), [dict(zip(cols, r, strict=True)) for r in data])
        how = "executemany, one transaction"
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "how": how}


def run(*, quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    records, answer, t0 = workload(long_drive=False)
    v = [r for r in records if isinstance(r, VRecord)]
    log(f"ingest: workload {len(v)} V records, {sum(len(r.data) for r in v)} signals per car")
    cars = 2 if quick else 3
    out: dict[str, Any] = {"cars_per_process": cars, "backends": {}}
    for backend in ("sqlite", "postgres"):
        res: dict[str, Any] = {}
        for n, group in ((1, False), (1, True), (2, False), (2, True)):
            key = f"{n}p" if group else f"{n}p-step"
            with scratch_db(backend, "ingest") as url:
                engine = make_engine(url)
                upgrade(engine)
                engine.dispose()
                r = processes(n, url, cars, records, answer, t0, group=group)
                res[key] = r
                log(f"ingest/{backend}/{key}: {r['signals_per_s']:,.0f} signals/s")
                if key == "1p":
                    ceiling = raw_ceiling(url, max(20_000, r["positions"]))
                    ceiling["signals_per_s_equiv"] = (
                        ceiling["rows_per_s"] * r["signals"] / max(1, r["positions"])
                    )
                    res["raw"] = ceiling
                    log(f"ingest/{backend}/raw: {ceiling['rows_per_s']:,.0f} rows/s")
        out["backends"][backend] = res
    return out


def markdown(result: dict[str, Any]) -> str:
    rows = []
    for backend, res in result["backends"].items():
        raw = res["raw"]
        for key in ("1p-step", "1p", "2p-step", "2p"):
            r = res[key]
            run = f"{r['processes']} process(es), {r['cars']} cars, commit {r['commit']}"
            share = f"{100 * r['signals_per_s'] / raw['signals_per_s_equiv']:.1f} %"
            rows.append([backend, run, r["signals_per_s"], share, r["rows_per_s"], r["positions"],
                         r["worker_errors"], r.get("write_retries")])  # fmt: skip
        rows.append([backend, f"raw ceiling ({raw['how']})", raw["signals_per_s_equiv"], None,
                     raw["rows_per_s"], raw["rows"], None, None])  # fmt: skip
    note = (
        "\n\nEnd to end = protobuf decode → sequencer → machine → executor → committed rows, "
        "one transaction per machine step (per step) or per executor group commit (group: a "
        "worker with a backlog in its mailbox); signals/s counts every datum in the V records. "
        "The raw ceiling's signals/s is its rows/s × the pipeline's signals per committed "
        "position. Write retries: steps the executor kept because the database refused them "
        'for now (SQLite: "database is locked"), written again later.'
    )
    head = ["database", "run", "signals/s", "of ceiling", "position rows/s", "rows",
            "worker errors", "write retries"]  # fmt: skip
    return table(head, rows) + note
