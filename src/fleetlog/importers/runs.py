"""Import bookkeeping in TeslaMate's own tables: runs, file checkpoints, rejections.

* ``import_runs``: one row per import of one source (``source_key``); at most one
  ``running`` run per source (a unique partial index), so a second start *resumes* it. The
  run fixes ``date_limit`` when it starts — the earliest data the database held then — and
  keeps it: the import's own rows are older, so measuring again would move the limit.
* ``import_file_checkpoints``: a file (by name and content hash) whose rows are committed.
  The checkpoint is written in the same transaction as the rows, so it can never claim
  rows that are not there, nor leave rows without it.
* ``import_rejections``: one row per refused CSV row: file, row number, reason, fields.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from fleetlog.logbook.writer import db_time, utc
from fleetlog.store import tables as t

RUNNING, COMPLETE, ABANDONED = "running", "complete", "abandoned"

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ImportRun:
    id: int
    source_key: str
    timezone: str
    date_limit: datetime | None  # UTC; rows at or after it are not imported
    resumed: bool


@dataclass(frozen=True, slots=True)
class Rejection:
    file_name: str
    row: int
    reason: str
    fields: tuple[str, ...]


def source_key(kind: str, name: str) -> str:
    """``kind:name``, shortened with a hash when it would not fit varchar(255)."""
    key = f"{kind}:{name}"
    if len(key) <= 255:
        return key
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{kind}:…{name[-(255 - len(kind) - 20) :]}#{digest}"


def earliest_data(conn: sa.Connection) -> datetime | None:
    """The oldest moment any logbook row of any car starts at (UTC), or None."""
    candidates = [
        conn.execute(sa.select(sa.func.min(col))).scalar()
        for col in (
            t.positions.c.date,
            t.states.c.start_date,
            t.drives.c.start_date,
            t.charging_processes.c.start_date,
            t.updates.c.start_date,
        )
    ]
    known = [utc(c) for c in candidates if c is not None]
    return min(known) if known else None


def open_run(
    engine: sa.Engine,
    key: str,
    timezone: str,
    *,
    limit_to_existing: bool = True,
    now: Clock = wall_clock,
) -> ImportRun:
    """The running run of this source (resumed), or a new one with its date limit fixed."""
    r = t.import_runs
    with engine.begin() as conn:
        row = (
            conn.execute(sa.select(r).where(r.c.source_key == key, r.c.status == RUNNING))
            .mappings()
            .first()
        )
        if row is not None:
            limit = row["date_limit"]
            return ImportRun(
                int(row["id"]),
                key,
                str(row["timezone"]),
                utc(limit) if limit is not None else None,
                True,
            )
        limit = earliest_data(conn) if limit_to_existing else None
        stamp = db_time(now())
        run_id = conn.execute(
            sa.insert(r)
            .values(
                source_key=key,
                status=RUNNING,
                timezone=timezone,
                date_limit=db_time(limit) if limit is not None else None,
                date_limit_captured=True,
                inserted_at=stamp,
                updated_at=stamp,
            )
            .returning(r.c.id)
        ).scalar_one()
    return ImportRun(int(run_id), key, timezone, limit, False)


def finish_run(
    engine: sa.Engine, run_id: int, status: str = COMPLETE, *, now: Clock = wall_clock
) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(t.import_runs)
            .where(t.import_runs.c.id == run_id)
            .values(status=status, updated_at=db_time(now()))
        )


def completed_files(engine: sa.Engine, run_id: int) -> set[tuple[str, str]]:
    """(file name, fingerprint) of every file this run has committed."""
    c = t.import_file_checkpoints
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.c.file_name, c.c.file_fingerprint).where(c.c.run_id == run_id)
        ).all()
    return {(str(a), str(b)) for a, b in rows}


def add_checkpoint(
    conn: sa.Connection, run_id: int, file_name: str, fingerprint: str, *, now: Clock = wall_clock
) -> None:
    stamp = db_time(now())
    conn.execute(
        sa.insert(t.import_file_checkpoints).values(
            run_id=run_id,
            file_name=file_name[:255],
            file_fingerprint=fingerprint,
            completed_at=stamp,
            inserted_at=stamp,
            updated_at=stamp,
        )
    )


def add_rejections(
    conn: sa.Connection,
    run_id: int,
    file_name: str,
    fingerprint: str,
    rejections: Iterable[tuple[int, str, tuple[str, ...]]],
    *,
    now: Clock = wall_clock,
) -> int:
    """Record refused rows (row number, reason, fields); returns how many."""
    stamp = db_time(now())
    values = [
        {
            "run_id": run_id,
            "file_name": file_name[:255],
            "file_fingerprint": fingerprint,
            "row": row,
            "reason": reason,
            "fields": [f[:255] for f in fields],
            "inserted_at": stamp,
            "updated_at": stamp,
        }
        for row, reason, fields in rejections
    ]
    if values:
        conn.execute(sa.insert(t.import_rejections), values)
    return len(values)


def rejections(engine: sa.Engine, run_id: int) -> list[Rejection]:
    """The run's rejection report, by file and row."""
    j = t.import_rejections
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(j.c.file_name, j.c.row, j.c.reason, j.c.fields)
            .where(j.c.run_id == run_id)
            .order_by(j.c.file_name, j.c.row)
        ).all()
    return [
        Rejection(str(f), int(n), str(reason), tuple(fields or ())) for f, n, reason, fields in rows
    ]
