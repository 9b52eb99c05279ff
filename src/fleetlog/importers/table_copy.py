"""Copying a whole logbook, table by table, into a fresh database.

Two sources feed the same copier: another database (``fleetlog import teslamate URL``:
a TeslaMate PostgreSQL database, or any fleetlog database on either backend) and a full
JSON export (``fleetlog import json FILE``, :mod:`fleetlog.export.full_json`).

Theory of operation
-------------------
* Ids are kept. Every row of the logbook tables is written under its own id, so all
  references stay right without a map, and TeslaMate-style URLs and SQL that name ids
  keep working; on PostgreSQL the sequences are moved past the copied ids afterwards.
  The rows that a fresh database already has are *mapped* onto: the one ``settings``
  row is updated in place, and the small import-bookkeeping tables (whose ids would
  collide with this copy's own run) get new ids with ``run_id`` translated.
* ``drives`` and ``positions`` reference each other. Drives are copied first with their
  start/end position left empty, positions next, then the two columns are filled in.
* Batches of :data:`BATCH` rows, each its own transaction, in id order. The copy is
  resumable without any cursor of its own: a table continues after the highest id the
  target already has. Finished tables are recorded as checkpoints of the copy's
  ``import_runs`` row; a second start with the same source resumes that run.
* The source is read in one transaction (REPEATABLE READ on PostgreSQL), so a source
  that is still being written to is copied as one consistent snapshot.
* Only columns both sides know are copied: an older TeslaMate without ``ascent`` or
  ``lfp_battery`` leaves them at their defaults.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import sqlalchemy as sa

from fleetlog.importers import runs
from fleetlog.importers.progress import NoProgress, Progress
from fleetlog.logs import log_event
from fleetlog.store import tables as t

log = logging.getLogger(__name__)

BATCH = 5000

#: The tables copied, parents first. ``fleetlog_meta`` (the database's own identity) and
#: the request ledger (operational, per installation) are not part of a logbook.
KEPT_ID_TABLES: tuple[str, ...] = (
    "car_settings",
    "cars",
    "addresses",
    "geofences",
    "drives",
    "positions",
    "charging_processes",
    "charges",
    "states",
    "updates",
    "tokens",
    "fleetlog_tariffs",
    "fleetlog_tariff_windows",
    "fleetlog_charge_cost_overrides",
    "fleetlog_telemetry_notices",
)
BOOKKEEPING_TABLES: tuple[str, ...] = (
    "import_runs",
    "import_file_checkpoints",
    "import_rejections",
)
ALL_TABLES: tuple[str, ...] = ("settings", *KEPT_ID_TABLES, *BOOKKEEPING_TABLES)
#: Tables that must be empty in the target before a copy starts.
LOGBOOK_TABLES: tuple[str, ...] = tuple(n for n in KEPT_ID_TABLES if n != "tokens")

_DRIVE_POSITIONS = ("start_position_id", "end_position_id")


class CopyError(Exception):
    """A copy that cannot start or continue (the message says why and what to do)."""

    user_facing = True


class RowSource(Protocol):
    """Where a copy reads from: another database or a JSON export."""

    def has(self, table: str) -> bool: ...

    def columns(self, table: str) -> list[str]: ...

    def count(self, table: str) -> int: ...

    def rows(self, table: str, after: Any) -> Iterator[list[dict[str, Any]]]:
        """Rows in key order, keys greater than `after` (None: all), in batches."""
        ...


def key_column(table: sa.Table) -> sa.Column[Any]:
    return next(iter(table.primary_key.columns))


# --- JSON representation (shared with the exporter) ------------------------------------


def to_json(value: Any) -> Any:
    """A column value as JSON: times ISO 8601, decimals as strings, bytes as base64."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def from_json(column: sa.Column[Any], value: Any) -> Any:
    """The inverse of :func:`to_json`, guided by the column's type."""
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, sa.DateTime):
        return datetime.fromisoformat(value)
    if isinstance(kind, sa.Float):
        return float(value)
    if isinstance(kind, sa.Numeric):
        return Decimal(str(value))
    if isinstance(kind, sa.LargeBinary):
        return base64.b64decode(value)
    return value


# --- a database as the source -----------------------------------------------------------


class DatabaseSource:
    """Another database, read in one snapshot transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        options: dict[str, Any] = {}
        if engine.dialect.name == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
        self.conn = engine.connect().execution_options(**options)
        self.conn.begin()
        self._inspector = sa.inspect(self.conn)
        self._columns: dict[str, list[str]] = {}

    def close(self) -> None:
        self.conn.rollback()
        self.conn.close()

    def _schema(self, table: str) -> str | None:
        if table == "tokens" and self.conn.dialect.name == "postgresql":
            return "private"
        return None

    def has(self, table: str) -> bool:
        return bool(self._inspector.has_table(table, schema=self._schema(table)))

    def columns(self, table: str) -> list[str]:
        if table not in self._columns:
            present = {
                c["name"] for c in self._inspector.get_columns(table, schema=self._schema(table))
            }
            ours = t.table_by_name(table)
            self._columns[table] = [c.name for c in ours.columns if c.name in present]
        return self._columns[table]

    def count(self, table: str) -> int:
        ours = t.table_by_name(table)
        return int(self.conn.execute(sa.select(sa.func.count()).select_from(ours)).scalar_one())

    def rows(self, table: str, after: Any) -> Iterator[list[dict[str, Any]]]:
        ours = t.table_by_name(table)
        key = key_column(ours)
        cols = [ours.c[name] for name in self.columns(table)]
        while True:
            q = sa.select(*cols).order_by(key).limit(BATCH)
            if after is not None:
                q = q.where(key > after)
            batch = [dict(r) for r in self.conn.execute(q).mappings()]
            if not batch:
                return
            yield batch
            after = batch[-1][key.name]


# --- the copy ---------------------------------------------------------------------------


@dataclass(slots=True)
class CopyReport:
    run_id: int
    resumed: bool
    copied: dict[str, int] = field(default_factory=dict)
    skipped_tables: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(self.copied.values())

    def summary(self) -> str:
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        tables = ", ".join(f"{k} {v}" for k, v in self.copied.items() if v)
        return (
            f"copy run {self.run_id}{' (resumed)' if self.resumed else ''}: {self.rows} rows "
            f"in {self.seconds:.1f} s ({rate:.0f} rows/s): {tables or 'nothing new'}"
        )


def _existing(conn: sa.Connection, names: Sequence[str]) -> list[str]:
    """The tables of `names` the database has (an adopted TeslaMate may lack fleetlog's)."""
    inspector = sa.inspect(conn)
    private = "private" if conn.dialect.name == "postgresql" else None
    return [n for n in names if inspector.has_table(n, schema=private if n == "tokens" else None)]


def _target_has_logbook(conn: sa.Connection) -> list[str]:
    busy = []
    for name in _existing(conn, LOGBOOK_TABLES):
        table = t.table_by_name(name)
        if conn.execute(sa.select(key_column(table)).limit(1)).first() is not None:
            busy.append(name)
    return busy


def copy_logbook(
    source: RowSource,
    target: sa.Engine,
    key: str,
    *,
    progress: Progress | None = None,
    now: runs.Clock = runs.wall_clock,
) -> CopyReport:
    """Copy every logbook table of `source` into `target` (fresh, or this copy resumed)."""
    started = time.monotonic()
    progress = progress or NoProgress()
    run = runs.open_run(target, key, "UTC", limit_to_existing=False, now=now)
    if not run.resumed:
        with target.connect() as conn:
            busy = _target_has_logbook(conn)
        if busy:
            runs.finish_run(target, run.id, runs.ABANDONED, now=now)
            raise CopyError(
                "the target database already holds a logbook "
                f"({', '.join(busy)}); import into a fresh database"
            )
    report = CopyReport(run.id, run.resumed)
    done = {name for name, _ in runs.completed_files(target, run.id)}
    present = [name for name in ALL_TABLES if source.has(name)]
    report.skipped_tables = [name for name in ALL_TABLES if name not in present]
    progress.start(sum(source.count(n) for n in present if n not in done), "rows")

    for name in present:
        if name in done:
            continue
        if name == "settings":
            copied = _copy_settings(source, target)
        elif name in BOOKKEEPING_TABLES:
            continue  # together, below
        else:
            copied = _copy_table(source, target, name, progress)
        report.copied[name] = copied
        _checkpoint(target, run.id, name, now)
        if name == "positions" and "drives" in present:
            _fill_drive_positions(source, target)
    if "import_runs" in present and "import_runs" not in done:
        report.copied.update(_copy_bookkeeping(source, target, run.id, present, progress))
        _checkpoint(target, run.id, "import_runs", now)
    _move_sequences(target)
    runs.finish_run(target, run.id, now=now)
    report.seconds = time.monotonic() - started
    log_event(log, logging.INFO, "logbook copied", run=run.id, rows=report.rows)
    return report


def _checkpoint(engine: sa.Engine, run_id: int, name: str, now: runs.Clock) -> None:
    with engine.begin() as conn:
        runs.add_checkpoint(conn, run_id, name, "table", now=now)


def _copy_settings(source: RowSource, target: sa.Engine) -> int:
    rows = [r for batch in source.rows("settings", None) for r in batch]
    if not rows:
        return 0
    values = {k: v for k, v in rows[0].items() if k != "id"}
    s = t.settings
    with target.begin() as conn:
        existing = conn.execute(sa.select(s.c.id).order_by(s.c.id).limit(1)).scalar()
        if existing is None:
            conn.execute(sa.insert(s).values(**rows[0]))
        else:
            conn.execute(sa.update(s).where(s.c.id == existing).values(**values))
    return 1


def _copy_table(source: RowSource, target: sa.Engine, name: str, progress: Progress) -> int:
    table = t.table_by_name(name)
    key = key_column(table)
    with target.connect() as conn:
        after = conn.execute(sa.select(sa.func.max(key))).scalar()
    if name == "tokens" and after is not None:
        return 0  # signed in here already: the target's own tokens win
    copied = 0
    for batch in source.rows(name, after):
        if name == "drives":
            batch = [{**r, **dict.fromkeys(_DRIVE_POSITIONS)} for r in batch]
        with target.begin() as conn:
            conn.execute(sa.insert(table), batch)
        copied += len(batch)
        progress.advance(len(batch), name)
    return copied


def _fill_drive_positions(source: RowSource, target: sa.Engine) -> None:
    d = t.drives
    stmt = (
        sa.update(d)
        .where(d.c.id == sa.bindparam("drive"))
        .values(
            start_position_id=sa.bindparam("start"),
            end_position_id=sa.bindparam("end"),
        )
    )
    for batch in source.rows("drives", None):
        params = [
            {"drive": r["id"], "start": r.get("start_position_id"), "end": r.get("end_position_id")}
            for r in batch
            if r.get("start_position_id") is not None or r.get("end_position_id") is not None
        ]
        if params:
            with target.begin() as conn:
                conn.execute(stmt, params)


def _copy_bookkeeping(
    source: RowSource,
    target: sa.Engine,
    own_run: int,
    present: Sequence[str],
    progress: Progress,
) -> dict[str, int]:
    """The source's import runs and their checkpoints/rejections, under new ids."""
    copied: dict[str, int] = {}
    run_ids: dict[Any, int] = {}
    with target.begin() as conn:
        r = t.import_runs
        n = 0
        for batch in source.rows("import_runs", None):
            for row in batch:
                if row.get("source_key") == "" or row.get("id") is None:
                    continue
                run_ids[row["id"]] = conn.execute(
                    sa.insert(r).values(**_without_id(row)).returning(r.c.id)
                ).scalar_one()
                n += 1
            progress.advance(len(batch), "import_runs")
        copied["import_runs"] = n
        for name in ("import_file_checkpoints", "import_rejections"):
            if name not in present:
                continue
            table = t.table_by_name(name)
            n = 0
            for batch in source.rows(name, None):
                values = [
                    {
                        **{k: v for k, v in row.items() if k != "id"},
                        "run_id": run_ids[row["run_id"]],
                    }
                    for row in batch
                    if row["run_id"] in run_ids
                ]
                if values:
                    conn.execute(sa.insert(table), values)
                n += len(values)
                progress.advance(len(batch), name)
            copied[name] = n
    del own_run  # the copy's own run stays as it is; it is not in the source
    return copied


def _without_id(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "id"}


def _move_sequences(engine: sa.Engine) -> None:
    """PostgreSQL: next ids after the copied ones (SQLite's rowids need nothing)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        for name in _existing(conn, (*KEPT_ID_TABLES, "settings")):
            table = t.table_by_name(name)
            key = key_column(table)
            if key.name != "id":
                continue
            qualified = f"private.{name}" if name == "tokens" else name
            seq = conn.execute(
                sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": qualified}
            ).scalar()
            if seq is None:
                continue
            top = conn.execute(sa.select(sa.func.max(key))).scalar()
            conn.execute(
                sa.text("SELECT setval(CAST(:s AS regclass), :v, :called)"),
                {"s": seq, "v": top if top is not None else 1, "called": top is not None},
            )
