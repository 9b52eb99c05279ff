"""Database engines: one function that turns a URL into a correctly configured Engine.

fleetlog runs on SQLite (the embedded default) and on PostgreSQL (the production store, via
psycopg 3). Everything backend-specific about *connecting* lives here, so the rest of the store
can stay dialect-neutral:

* SQLite gets WAL journaling (readers never block the writer), enforced foreign keys, a busy
  timeout, and real transactions around DDL; transactions that read and then write begin
  IMMEDIATE (:func:`write_transaction`), so they wait for another writer instead of failing.
  The `private` schema that holds TeslaMate's tokens table on PostgreSQL does not exist on
  SQLite, so it is translated away for every statement.
* PostgreSQL URLs in any of the spellings people paste (`postgres://`, `postgresql://`) are
  normalised to the psycopg 3 driver.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from fleetlog.store.errors import UnsupportedDatabaseError

Backend = Literal["sqlite", "postgresql"]

#: Where TeslaMate keeps its tokens table on PostgreSQL; SQLite has no schemas.
PRIVATE_SCHEMA = "private"

#: Execution option: this connection's SQLite transactions begin IMMEDIATE.
_IMMEDIATE = "fleetlog_begin_immediate"


def normalise_url(url: str | URL) -> URL:
    """Return `url` with the driver fleetlog uses for its backend.

    `postgres://` and `postgresql://` become `postgresql+psycopg://`; `sqlite://` URLs are kept.
    Anything else raises :class:`UnsupportedDatabaseError`.
    """
    raw = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://") :]
    try:
        parsed = make_url(raw)
    except sa.exc.ArgumentError as exc:
        raise UnsupportedDatabaseError(f"not a database URL: {exc}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgresql":
        if driver not in ("", "psycopg"):
            raise UnsupportedDatabaseError(
                f"PostgreSQL driver {driver!r} is not supported; use postgresql+psycopg://"
            )
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise UnsupportedDatabaseError(
                f"SQLite driver {driver!r} is not supported; use sqlite:///path/to/file.db"
            )
        return parsed.set(drivername="sqlite+pysqlite")
    raise UnsupportedDatabaseError(
        f"unsupported database {backend!r}: fleetlog runs on sqlite:/// or postgresql://"
    )


def backend_of(engine: sa.Engine | sa.Connection) -> Backend:
    """`"sqlite"` or `"postgresql"` for an engine or connection made by :func:`make_engine`."""
    name = engine.dialect.name
    if name not in ("sqlite", "postgresql"):
        raise UnsupportedDatabaseError(f"unsupported database dialect {name!r}")
    return "sqlite" if name == "sqlite" else "postgresql"


def masked_url(engine: sa.Engine) -> str:
    """The engine's URL with the password hidden, fit for logs and status output."""
    return engine.url.render_as_string(hide_password=True)


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """``engine.begin()`` for a transaction that reads and then writes.

    On SQLite it begins IMMEDIATE: it takes the write lock first, waiting up to the busy
    timeout while another connection (or process) writes. A plain deferred transaction that
    read first could not wait there: SQLite fails its first write at once with "database is
    locked" when another connection wrote meanwhile. PostgreSQL needs nothing of the kind.
    """
    with engine.execution_options(**{_IMMEDIATE: True}).begin() as conn:
        yield conn


def make_engine(url: str, *, pool_size: int = 10, timeout_s: float = 60.0) -> sa.Engine:
    """Create an Engine for a SQLite or PostgreSQL URL, configured the way fleetlog needs.

    `timeout_s` bounds how long a connection waits for a lock (SQLite busy timeout) or for a
    pooled connection / a new server connection (PostgreSQL).
    """
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _make_sqlite_engine(parsed, pool_size=pool_size, timeout_s=timeout_s)
    return sa.create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=timeout_s,
        # Long-running loggers outlive server restarts; test each connection before use.
        pool_pre_ping=True,
        connect_args={"connect_timeout": max(1, int(timeout_s))},
    )


def _make_sqlite_engine(url: URL, *, pool_size: int, timeout_s: float) -> sa.Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    kwargs: dict[str, Any] = {"connect_args": {"timeout": timeout_s}}
    if in_memory:
        # Every new connection to ":memory:" is a new, empty database: share one connection.
        kwargs["poolclass"] = StaticPool
        kwargs["connect_args"]["check_same_thread"] = False
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = pool_size
        kwargs["pool_timeout"] = timeout_s
    engine = sa.create_engine(url, **kwargs)
    busy_ms = max(0, int(timeout_s * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        assert isinstance(dbapi_conn, sqlite3.Connection)
        # Take transaction control away from the sqlite3 module (which never wraps DDL in a
        # transaction and cannot do SAVEPOINTs properly); SQLAlchemy's BEGIN below replaces it.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL is durable across application crashes and much faster than FULL.
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine.execution_options(schema_translate_map={PRIVATE_SCHEMA: None})
