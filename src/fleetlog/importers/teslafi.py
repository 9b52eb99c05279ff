"""TeslaFi import: a directory of monthly CSV exports replayed into the logbook.

Theory of operation
-------------------
1. The run. ``import_runs`` holds one running run per directory; starting again resumes
   it. Its ``date_limit`` is the earliest data the database held when the run began: only
   older rows are imported, so imported history never overlaps what was logged live.
2. The files, oldest month first. A file is read whole and parsed row by row
   (:mod:`fleetlog.importers.teslafi_csv`); rows it cannot use become rejections. New cars
   are registered from their first row.
3. The replay. Each car gets the live car machine (:mod:`fleetlog.importers.replay`) and
   every usable row is fed to it at the row's own time. A file's rows, its rejections and
   its checkpoint are written in **one transaction**: a crash loses at most the file being
   imported, and never half of it.
4. Resuming. Files with a checkpoint are replayed *dry* (machine only, no writes) so the
   machine is exactly where it was after them — a drive that runs over midnight at the end
   of a month continues in the next file — and its open refs are bound to the rows stored
   for them. Then the remaining files are imported.
5. The end. What is still open (a drive at the very end of the export) is closed at the
   car's last row, the run is marked complete.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from fleetlog.importers import runs
from fleetlog.importers.progress import NoProgress, Progress
from fleetlog.importers.replay import CarReplay
from fleetlog.importers.teslafi_csv import (
    Identity,
    MonthFile,
    Reason,
    Rejected,
    Row,
    month_files,
    read_rows,
    stable_eid,
)
from fleetlog.logbook.writer import (
    CarIdentity,
    ChargeCost,
    Places,
    RegisteredCar,
    db_time,
    register_car,
)
from fleetlog.logs import log_event
from fleetlog.store import tables as t
from fleetlog.vehicle.settings import CarSettings

log = logging.getLogger(__name__)


class TeslaFiError(Exception):
    """An import that cannot start (bad directory, unknown time zone)."""

    user_facing = True


@dataclass(slots=True)
class FileResult:
    name: str
    rows: int = 0
    imported: int = 0
    rejected: int = 0
    after_limit: int = 0
    already_done: bool = False


@dataclass(slots=True)
class TeslaFiReport:
    run_id: int
    resumed: bool
    date_limit: datetime | None
    files: list[FileResult] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    cars: dict[str, int] = field(default_factory=dict)  # vin → car id
    seconds: float = 0.0

    @property
    def imported(self) -> int:
        return sum(f.imported for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def after_limit(self) -> int:
        return sum(f.after_limit for f in self.files)

    def summary(self) -> str:
        rate = self.imported / self.seconds if self.seconds > 0 else 0.0
        limit = self.date_limit.isoformat() if self.date_limit else "none (empty database)"
        done = sum(1 for f in self.files if f.already_done)
        return (
            f"TeslaFi import run {self.run_id}{' (resumed)' if self.resumed else ''}: "
            f"{len(self.files)} files ({done} done before), {len(self.cars)} cars, "
            f"{self.imported} rows imported, {self.rejected} rejected, "
            f"{self.after_limit} at or after the date limit {limit}; "
            f"{self.seconds:.1f} s ({rate:.0f} rows/s)"
        )


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TeslaFiError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
        ) from None


def _line_count(path: Path) -> int:
    with path.open("rb") as fh:
        return max(sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")) - 1, 0)


class _Cars:
    """The import's cars by VIN: registered on first sight, conflicts refused."""

    def __init__(
        self,
        engine: sa.Engine,
        places: Places | None,
        costs: ChargeCost | None,
    ) -> None:
        self.engine = engine
        self.places = places
        self.costs = costs
        self.replays: dict[str, CarReplay] = {}
        self.conflicts: set[str] = set()

    def replay_for(self, row: Row) -> CarReplay | None:
        vin = row.identity.vin
        if vin in self.conflicts:
            return None
        found = self.replays.get(vin)
        if found is None:
            registered = self._register(row)
            if registered is None:
                self.conflicts.add(vin)
                return None
            found = CarReplay.create(
                self.engine,
                registered.car_id,
                vin,
                registered.settings,
                places=self.places,
                costs=self.costs,
            )
            self.replays[vin] = found
        return found

    def _register(self, row: Row) -> RegisteredCar | None:
        who: Identity = row.identity
        c = t.cars
        with self.engine.connect() as conn:
            by_vin = conn.execute(
                sa.select(c.c.id, c.c.settings_id).where(c.c.vin == who.vin)
            ).first()
            if by_vin is not None:
                cs = (
                    conn.execute(
                        sa.select(t.car_settings).where(t.car_settings.c.id == by_vin.settings_id)
                    )
                    .mappings()
                    .one()
                )
                settings = CarSettings(**{k: cs[k] for k in CarSettings.__dataclass_fields__})
                return RegisteredCar(int(by_vin.id), settings)
            eid = who.eid or stable_eid(who.vin)
            other = conn.execute(sa.select(c.c.vin).where(c.c.eid == eid)).scalar()
        if other is not None:
            log_event(
                log,
                logging.WARNING,
                "TeslaFi rows name a car id that belongs to another VIN; rows refused",
                vin=who.vin,
                eid=eid,
                other_vin=other,
            )
            return None
        identity = CarIdentity(eid=eid, vid=who.vid, vin=who.vin).with_state(row.observation.state)
        return register_car(self.engine, identity, row.observation.at)


def import_teslafi(
    engine: sa.Engine,
    directory: Path,
    tz: str,
    *,
    progress: Progress | None = None,
    places: Places | None = None,
    costs: ChargeCost | None = None,
    now: runs.Clock = runs.wall_clock,
) -> TeslaFiReport:
    """Import (or resume importing) a directory of TeslaFi exports; see the module doc."""
    zone = zone_of(tz)
    if not directory.is_dir():
        raise TeslaFiError(f"{directory} is not a directory")
    progress = progress or NoProgress()
    started = time.monotonic()
    files, ignored = month_files(directory)
    run = runs.open_run(engine, runs.source_key("teslafi", str(directory.resolve())), tz, now=now)
    if run.timezone != tz:
        raise TeslaFiError(
            f"import run {run.id} of this directory was started with --tz {run.timezone}; "
            "resume it with the same time zone"
        )
    report = TeslaFiReport(run.id, run.resumed, run.date_limit, ignored=[p.name for p in ignored])
    done = runs.completed_files(engine, run.id)
    cars = _Cars(engine, places, costs)
    bound = not run.resumed  # a new run has nothing stored to bind to
    progress.start(sum(_line_count(f.path) for f in files), "TeslaFi rows")
    for month in files:
        fingerprint = month.fingerprint()
        result = FileResult(month.name, already_done=(month.name, fingerprint) in done)
        report.files.append(result)
        rows = list(read_rows(month, zone))
        if result.already_done:
            _replay_file(rows, cars, run, result, None, progress)
            continue
        if not bound:
            with engine.connect() as conn:
                for replay in cars.replays.values():
                    replay.bind_open_rows(conn, run.date_limit)
            bound = True
        _import_file(engine, month, fingerprint, rows, cars, run, result, progress, now)
    if not bound:
        with engine.connect() as conn:
            for replay in cars.replays.values():
                replay.bind_open_rows(conn, run.date_limit)
    with engine.begin() as conn:
        for replay in cars.replays.values():
            replay.finish(conn)
    runs.finish_run(engine, run.id, now=now)
    report.cars = {vin: r.car_id for vin, r in cars.replays.items()}
    report.seconds = time.monotonic() - started
    log_event(log, logging.INFO, "TeslaFi import finished", run=run.id, rows=report.imported)
    return report


def _replay_file(
    rows: list[Row | Rejected],
    cars: _Cars,
    run: runs.ImportRun,
    result: FileResult,
    rejected: list[tuple[int, str, tuple[str, ...]]] | None,
    progress: Progress,
) -> None:
    limit = run.date_limit
    pending = 0
    for item in rows:
        result.rows += 1
        pending += 1
        if pending >= 500:
            progress.advance(pending, result.name)
            pending = 0
        if isinstance(item, Rejected):
            result.rejected += 1
            if rejected is not None:
                rejected.append((item.number, item.reason.value, item.fields))
            continue
        if limit is not None and item.observation.at >= limit:
            result.after_limit += 1
            continue
        replay = cars.replay_for(item)
        if replay is None:
            result.rejected += 1
            if rejected is not None:
                rejected.append((item.number, Reason.VEHICLE_CONFLICT.value, ("vin", "id")))
            continue
        replay.feed(item.connectivity, item.observation)
        result.imported += 1
    progress.advance(pending, result.name)


def _import_file(
    engine: sa.Engine,
    month: MonthFile,
    fingerprint: str,
    rows: list[Row | Rejected],
    cars: _Cars,
    run: runs.ImportRun,
    result: FileResult,
    progress: Progress,
    now: runs.Clock,
) -> None:
    # Cars seen first in this file are registered before the file's transaction opens
    # (registration commits on its own; SQLite allows one writer at a time).
    for item in rows:
        if isinstance(item, Row) and (
            run.date_limit is None or item.observation.at < run.date_limit
        ):
            cars.replay_for(item)
    rejected: list[tuple[int, str, tuple[str, ...]]] = []
    with engine.begin() as conn:
        for replay in cars.replays.values():
            replay.logbook.conn = conn
        try:
            _replay_file(rows, cars, run, result, rejected, progress)
            runs.add_rejections(conn, run.id, month.name, fingerprint, rejected, now=now)
            runs.add_checkpoint(conn, run.id, month.name, fingerprint, now=now)
        finally:
            for replay in cars.replays.values():
                replay.logbook.conn = None
    log_event(
        log,
        logging.INFO,
        "TeslaFi file imported",
        file=month.name,
        rows=result.rows,
        imported=result.imported,
        rejected=result.rejected,
        after_limit=result.after_limit,
    )


def import_summary_counts(
    engine: sa.Engine, car_ids: list[int], limit: datetime | None
) -> dict[str, int]:
    """Drives, charging processes and states stored for the cars before the limit."""
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for name, table, col in (
            ("drives", t.drives, t.drives.c.start_date),
            ("charging_processes", t.charging_processes, t.charging_processes.c.start_date),
            ("states", t.states, t.states.c.start_date),
        ):
            q = sa.select(sa.func.count()).select_from(table).where(table.c.car_id.in_(car_ids))
            if limit is not None:
                q = q.where(col < db_time(limit))
            counts[name] = int(conn.execute(q).scalar_one())
    return counts
