"""Initial schema: TeslaMate's tables, functions and enums, plus fleetlog_meta.

Revision ID: 0001
Revises:
Create Date: 2026-09-01

On a fresh database this creates everything from :mod:`fleetlog.store.baseline` and, on
PostgreSQL, the `private` schema, the enum types (with the tables), TeslaMate's unit conversion
functions, the `cube`/`earthdistance` extensions where the server has them, and the one
`settings` row. On an adopted TeslaMate database it creates `fleetlog_meta` only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from fleetlog.store import meta
from fleetlog.store.baseline import FLEETLOG_TABLES, define_baseline
from fleetlog.store.engine import PRIVATE_SCHEMA
from fleetlog.store.migrate import ADOPT_KEY, NOTES_KEY, MigrationNotes

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_EXTENSIONS = ("cube", "earthdistance")  # earthdistance depends on cube: keep this order

# TeslaMate's Grafana helpers (semantics from the reference, SQL written for fleetlog).
# All LANGUAGE sql; only convert_m is IMMUTABLE STRICT, the others keep the defaults
# (VOLATILE, CALLED ON NULL INPUT, COST 100) that TeslaMate's catalog shows.
_FUNCTIONS = {
    "convert_km(numeric, text)": """
        CREATE FUNCTION public.convert_km(n numeric, unit text) RETURNS numeric
        LANGUAGE sql AS $fn$
            SELECT CASE unit WHEN 'km' THEN n WHEN 'mi' THEN n / 1.60934 END
        $fn$""",
    "convert_celsius(numeric, text)": """
        CREATE FUNCTION public.convert_celsius(n numeric, unit text) RETURNS numeric
        LANGUAGE sql AS $fn$
            SELECT CASE unit WHEN 'C' THEN n WHEN 'F' THEN n * 9 / 5 + 32 END
        $fn$""",
    "convert_m(double precision, text)": """
        CREATE FUNCTION public.convert_m(n double precision, unit text) RETURNS double precision
        LANGUAGE sql IMMUTABLE STRICT AS $fn$
            SELECT CASE unit WHEN 'm' THEN n WHEN 'ft' THEN n * 3.28084 END
        $fn$""",
    "convert_tire_pressure(numeric, character varying)": """
        CREATE FUNCTION public.convert_tire_pressure(n numeric, character varying)
        RETURNS numeric
        LANGUAGE sql AS $fn$
            SELECT CASE $2 WHEN 'bar' THEN n WHEN 'psi' THEN n * 14.503773773 END
        $fn$""",
}


def _baseline() -> sa.MetaData:
    md = sa.MetaData()
    define_baseline(md)
    return md


def _attributes() -> dict[str, object]:
    config = op.get_context().config
    return {} if config is None else dict(config.attributes)


def _notes() -> MigrationNotes:
    notes = _attributes().get(NOTES_KEY)
    return notes if isinstance(notes, MigrationNotes) else MigrationNotes()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _create_extensions(conn: sa.Connection, notes: MigrationNotes) -> list[str]:
    """Create cube + earthdistance where possible; a missing extension is a warning only.

    TeslaMate's app needs them for geofence lookups, its dashboards do not; fleetlog computes
    distances itself, so a server without them still works.
    """
    available = set(
        conn.execute(sa.text("SELECT name FROM pg_available_extensions")).scalars().all()
    )
    installed = set(conn.execute(sa.text("SELECT extname FROM pg_extension")).scalars().all())
    created: list[str] = []
    for ext in _EXTENSIONS:
        if ext in installed:
            continue
        if ext not in available:
            notes.warn(f"PostgreSQL extension {ext} is not available on this server; skipped")
            break
        try:
            with conn.begin_nested():
                conn.execute(sa.text(f"CREATE EXTENSION {ext} WITH SCHEMA public"))
        except sa.exc.DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            notes.warn(f"could not create PostgreSQL extension {ext}: {reason}; skipped")
            break
        created.append(ext)
        installed.add(ext)
    notes.extensions_created.extend(created)
    return created


def upgrade() -> None:
    conn = op.get_bind()
    adopt = bool(_attributes().get(ADOPT_KEY, False))
    pg = conn.dialect.name == "postgresql"
    md = _baseline()
    notes = _notes()

    if adopt:
        # TeslaMate owns every other table, type and function here: touch none of them.
        # Table.create, not MetaData.create_all: the latter also creates the metadata's enums.
        for name in FLEETLOG_TABLES:
            md.tables[name].create(conn)
        meta.write_meta(conn, meta.SCHEMA_OWNER, meta.OWNER_TESLAMATE)
        meta.write_meta(conn, meta.ADOPTED_AT, _now().isoformat())
        meta.write_meta(conn, meta.INSTANCE_ID, uuid.uuid4().hex)
        return

    created: list[str] = []
    if pg:
        created = _create_extensions(conn, notes)
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {PRIVATE_SCHEMA}"))
    md.create_all(conn, checkfirst=False)
    if pg:
        for ddl in _FUNCTIONS.values():
            conn.execute(sa.text(ddl))

    # TeslaMate (and every dashboard) expects exactly one settings row, with the defaults.
    now = _now()
    conn.execute(md.tables["settings"].insert().values(inserted_at=now, updated_at=now))

    meta.write_meta(conn, meta.SCHEMA_OWNER, meta.OWNER_FLEETLOG)
    meta.write_meta(conn, meta.INSTANCE_ID, uuid.uuid4().hex)
    meta.write_meta(conn, meta.CREATED_EXTENSIONS, ",".join(created))


def downgrade() -> None:
    conn = op.get_bind()
    pg = conn.dialect.name == "postgresql"
    md = _baseline()
    recorded = meta.read_meta(conn)

    if recorded.get(meta.SCHEMA_OWNER) == meta.OWNER_TESLAMATE:
        for name in reversed(FLEETLOG_TABLES):
            md.tables[name].drop(conn, checkfirst=True)
        return

    if pg:
        for signature in _FUNCTIONS:
            conn.execute(sa.text(f"DROP FUNCTION IF EXISTS public.{signature}"))
    md.drop_all(conn, checkfirst=True)
    if pg:
        # Only if empty: a user's own objects in `private` survive (and so does the schema).
        empty = conn.execute(
            sa.text(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE n.nspname = :s)"
            ),
            {"s": PRIVATE_SCHEMA},
        ).scalar_one()
        if empty:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PRIVATE_SCHEMA}"))
        # Drop only the extensions this revision created, and only if nothing else uses them.
        created = [e for e in recorded.get(meta.CREATED_EXTENSIONS, "").split(",") if e]
        for ext in reversed(created):
            try:
                with conn.begin_nested():
                    conn.execute(sa.text(f"DROP EXTENSION IF EXISTS {ext}"))
            except sa.exc.DBAPIError:
                _notes().warn(f"PostgreSQL extension {ext} is still in use; left installed")
