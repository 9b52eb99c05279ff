"""Schema migrations: bring a database to the current schema, safely.

fleetlog's migrations are Alembic revisions shipped inside the package
(`fleetlog/store/migrations/versions/`). Alembic is configured here, programmatically, so
nothing depends on the working directory or an ini file, and its bookkeeping lives in a table
of our own (:data:`VERSION_TABLE`) that cannot collide with anything TeslaMate or a user has.

Theory of operation:

* An upgrade runs in one transaction (PostgreSQL and SQLite alike), guarded on PostgreSQL by an
  advisory lock so two processes starting together do not both migrate.
* A database that TeslaMate created (it has Ecto's `schema_migrations` table) is never
  modified unless the caller asks to *adopt* it. Adopting creates only fleetlog's own tables
  and records ``schema_owner=teslamate`` in `fleetlog_meta`; every later revision reads that
  and leaves TeslaMate's tables alone.
* A downgrade to ``base`` removes what the migrations created, including Alembic's version
  table, and nothing else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from fleetlog.store.baseline import FLEETLOG_TABLES, TESLAMATE_TABLES
from fleetlog.store.engine import PRIVATE_SCHEMA, backend_of, masked_url
from fleetlog.store.errors import (
    MigrationError,
    SchemaConflictError,
    StoreError,
    TeslaMateDatabaseError,
    UnsupportedDatabaseError,
)
from fleetlog.store.meta import OWNER_TESLAMATE, SCHEMA_OWNER, read_meta

log = logging.getLogger(__name__)

#: Alembic's version table, named so it never collides with TeslaMate's `schema_migrations`.
VERSION_TABLE = "fleetlog_alembic_version"
#: Oldest PostgreSQL fleetlog migrates (BRIN minmax-multi needs 14; we test 15+).
MIN_PG_VERSION_NUM = 150000

# Keys of Alembic's Config.attributes through which this module talks to env.py and revisions.
CONNECTION_KEY = "fleetlog.connection"
ADOPT_KEY = "fleetlog.adopt_teslamate"
NOTES_KEY = "fleetlog.notes"

_MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant will do; it only has to be the same in every fleetlog process.
_ADVISORY_LOCK_ID = 0x666C656574_6C6F67 & 0x7FFFFFFFFFFFFFFF


@dataclass(slots=True)
class MigrationNotes:
    """What revisions report back while they run (collected into :class:`MigrationReport`)."""

    warnings: list[str] = field(default_factory=list)
    extensions_created: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        """Record a warning for the report and log it."""
        self.warnings.append(message)
        log.warning("migration warning: %s", message)


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What :func:`upgrade` or :func:`downgrade` found and did."""

    backend: str
    url: str
    from_revision: str | None
    to_revision: str | None
    applied: tuple[str, ...]
    teslamate_detected: bool
    adopted: bool
    warnings: tuple[str, ...] = ()
    extensions_created: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """True when at least one revision ran."""
        return bool(self.applied)

    def summary(self) -> str:
        """One human-readable line, e.g. for `fleetlog migrate`."""
        if not self.changed:
            return f"database at {self.to_revision or 'base'}: nothing to do"
        mode = " (adopted TeslaMate database: fleetlog tables only)" if self.adopted else ""
        return (
            f"database migrated {self.from_revision or 'base'} -> {self.to_revision or 'base'}"
            f" ({len(self.applied)} revision(s)){mode}"
        )


def _config(conn: sa.Connection, *, adopt: bool, notes: MigrationNotes) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS_DIR))
    cfg.attributes[CONNECTION_KEY] = conn
    cfg.attributes[ADOPT_KEY] = adopt
    cfg.attributes[NOTES_KEY] = notes
    return cfg


def _script() -> ScriptDirectory:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg)


def head_revision() -> str:
    """The newest revision this fleetlog version ships."""
    head = _script().get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise MigrationError("no migrations found in the fleetlog package")
    return str(head)


def revision_of(conn: sa.Connection) -> str | None:
    """The revision recorded in the database behind `conn` (None: never migrated)."""
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    rev = ctx.get_current_revision()
    return None if rev is None else str(rev)


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at, or None when fleetlog has never migrated it."""
    with engine.connect() as conn:
        return revision_of(conn)


def has_teslamate_marker(conn: sa.Connection) -> bool:
    """True when Ecto's `schema_migrations` table exists (a database TeslaMate created)."""
    schema = "public" if backend_of(conn) == "postgresql" else None
    return sa.inspect(conn).has_table("schema_migrations", schema=schema)


def detect_teslamate(engine: sa.Engine) -> bool:
    """True when the database was created by TeslaMate (Ecto's `schema_migrations` exists)."""
    with engine.connect() as conn:
        return has_teslamate_marker(conn)


def _check_server(conn: sa.Connection) -> None:
    if backend_of(conn) != "postgresql":
        return
    version = int(conn.execute(sa.text("SHOW server_version_num")).scalar_one())
    if version < MIN_PG_VERSION_NUM:
        raise UnsupportedDatabaseError(
            f"PostgreSQL {version // 10000} is too old: fleetlog needs PostgreSQL 15 or newer"
            " (TeslaMate's dashboards need 16)"
        )


def existing_tables(conn: sa.Connection, names: tuple[str, ...]) -> list[str]:
    """Those of `names` that exist (`tokens` is looked up in the `private` schema on PG)."""
    insp = sa.inspect(conn)
    pg = backend_of(conn) == "postgresql"
    found = []
    for name in names:
        schema = (PRIVATE_SCHEMA if name == "tokens" else "public") if pg else None
        if insp.has_table(name, schema=schema):
            found.append(name)
    return found


def _preflight(conn: sa.Connection, *, adopt: bool, url: str) -> None:
    """Refuse to start a first migration that could damage data fleetlog does not own."""
    teslamate = has_teslamate_marker(conn)
    if teslamate and not adopt:
        raise TeslaMateDatabaseError(
            f"this looks like a TeslaMate database ({url} has TeslaMate's schema_migrations"
            " table); fleetlog will not modify it. Point fleetlog at an empty database, or"
            " rerun with --adopt-teslamate to add only fleetlog's own tables and use"
            " TeslaMate's tables as they are."
        )
    if adopt and not teslamate:
        raise StoreError(
            f"--adopt-teslamate was given but {url} is not a TeslaMate database"
            " (no schema_migrations table); run without it to create a fresh schema"
        )
    ours = FLEETLOG_TABLES if adopt else FLEETLOG_TABLES + TESLAMATE_TABLES
    clash = existing_tables(conn, ours)
    if clash:
        raise SchemaConflictError(
            f"{url} already has table(s) {', '.join(clash)} that fleetlog did not create;"
            " refusing to migrate. Use an empty database."
        )


def _lock(conn: sa.Connection) -> None:
    if backend_of(conn) == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})


def _path(from_rev: str | None, to_rev: str | None) -> tuple[str, ...]:
    """Revisions strictly after `from_rev` up to and including `to_rev`, oldest first."""
    if from_rev == to_rev:
        return ()
    upper, lower = (to_rev, from_rev)
    revs = _script().iterate_revisions(upper or "base", lower or "base")
    return tuple(reversed([r.revision for r in revs if r.revision != lower]))


def upgrade(engine: sa.Engine, *, adopt_teslamate: bool = False) -> MigrationReport:
    """Migrate the database to the newest revision (a no-op when it is already there).

    Raises :class:`TeslaMateDatabaseError` for an unadopted TeslaMate database unless
    `adopt_teslamate` is true, in which case only fleetlog's own tables are created.
    """
    url = masked_url(engine)
    notes = MigrationNotes()
    with engine.begin() as conn:
        _lock(conn)
        _check_server(conn)
        before = revision_of(conn)
        teslamate = has_teslamate_marker(conn)
        if before is None:
            _preflight(conn, adopt=adopt_teslamate, url=url)
        try:
            command.upgrade(_config(conn, adopt=adopt_teslamate, notes=notes), "head")
        except CommandError as exc:
            raise MigrationError(
                f"cannot upgrade {url} from revision {before}: {exc}"
                " (was it migrated by a newer fleetlog?)"
            ) from exc
        after = revision_of(conn)
        adopted = read_meta(conn).get(SCHEMA_OWNER) == OWNER_TESLAMATE
    report = MigrationReport(
        backend=backend_of(engine),
        url=url,
        from_revision=before,
        to_revision=after,
        applied=_path(before, after),
        teslamate_detected=teslamate,
        adopted=adopted,
        warnings=tuple(notes.warnings),
        extensions_created=tuple(notes.extensions_created),
    )
    log.info(
        "migrate upgrade url=%s from=%s to=%s applied=%d adopted=%s",
        url,
        before,
        after,
        len(report.applied),
        adopted,
    )
    return report


def downgrade(engine: sa.Engine, revision: str = "base") -> MigrationReport:
    """Migrate the database down to `revision`; ``base`` removes everything fleetlog created.

    On an adopted TeslaMate database only fleetlog's own tables are removed.
    """
    url = masked_url(engine)
    notes = MigrationNotes()
    with engine.begin() as conn:
        _lock(conn)
        before = revision_of(conn)
        teslamate = has_teslamate_marker(conn)
        adopted = read_meta(conn).get(SCHEMA_OWNER) == OWNER_TESLAMATE
        try:
            command.downgrade(_config(conn, adopt=adopted, notes=notes), revision)
        except CommandError as exc:
            raise MigrationError(f"cannot downgrade {url} to {revision}: {exc}") from exc
        after = revision_of(conn)
        if after is None:
            # Alembic leaves its (now empty) version table behind; it is ours, so remove it.
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
    report = MigrationReport(
        backend=backend_of(engine),
        url=url,
        from_revision=before,
        to_revision=after,
        applied=tuple(reversed(_path(after, before))),
        teslamate_detected=teslamate,
        adopted=adopted,
        warnings=tuple(notes.warnings),
    )
    log.info("migrate downgrade url=%s from=%s to=%s", url, before, after)
    return report
