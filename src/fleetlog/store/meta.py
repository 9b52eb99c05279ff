"""fleetlog's own key/value facts about a database, kept in the `fleetlog_meta` table.

Keys in use:

* ``instance_id`` — a random id, created once per database (stable across upgrades).
* ``schema_owner`` — ``fleetlog`` when fleetlog created the TeslaMate tables, ``teslamate`` when
  it adopted an existing TeslaMate database and must never touch TeslaMate's tables.
* ``adopted_at`` — when the adoption happened (ISO 8601, UTC).
* ``created_extensions`` — comma-separated PostgreSQL extensions fleetlog created (and so may
  drop again on downgrade).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

INSTANCE_ID = "instance_id"
SCHEMA_OWNER = "schema_owner"
ADOPTED_AT = "adopted_at"
CREATED_EXTENSIONS = "created_extensions"

OWNER_FLEETLOG = "fleetlog"
OWNER_TESLAMATE = "teslamate"

_meta = sa.table(
    "fleetlog_meta",
    sa.column("key", sa.String),
    sa.column("value", sa.Text),
    sa.column("updated_at", sa.DateTime),
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def read_meta(conn: sa.Connection) -> dict[str, str]:
    """All key/value pairs, or an empty dict when the table does not exist (yet)."""
    if not sa.inspect(conn).has_table("fleetlog_meta"):
        return {}
    rows = conn.execute(sa.select(_meta.c.key, _meta.c.value)).all()
    return {key: value for key, value in rows}


def write_meta(conn: sa.Connection, key: str, value: str) -> None:
    """Set `key` to `value` (insert or update)."""
    updated = conn.execute(
        _meta.update().where(_meta.c.key == key).values(value=value, updated_at=_now())
    )
    if updated.rowcount == 0:
        conn.execute(_meta.insert().values(key=key, value=value, updated_at=_now()))
