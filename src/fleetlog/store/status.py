"""What a database holds, for `fleetlog status` and the web app's about page."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa

from fleetlog.store import meta
from fleetlog.store.engine import backend_of, masked_url
from fleetlog.store.migrate import existing_tables, has_teslamate_marker, head_revision, revision_of
from fleetlog.store.tables import metadata, table_by_name


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    """A snapshot of a database as fleetlog sees it."""

    backend: str
    url: str
    revision: str | None
    head: str
    teslamate_detected: bool
    schema_owner: str | None
    instance_id: str | None
    row_counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def up_to_date(self) -> bool:
        """True when no migration is pending."""
        return self.revision == self.head


def database_status(engine: sa.Engine, *, count_rows: bool = True) -> DatabaseStatus:
    """Revision, ownership and (optionally) exact row counts of every table in
    :data:`fleetlog.store.tables.metadata` that exists in the database.

    Counting is exact, so on a large PostgreSQL history it takes a moment; pass
    `count_rows=False` for a quick check.
    """
    with engine.connect() as conn:
        recorded = meta.read_meta(conn)
        counts: dict[str, int] = {}
        if count_rows:
            known = tuple(table.name for table in metadata.sorted_tables)
            for name in existing_tables(conn, known):
                table = table_by_name(name)
                counts[name] = int(
                    conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                )
        return DatabaseStatus(
            backend=backend_of(conn),
            url=masked_url(engine),
            revision=revision_of(conn),
            head=head_revision(),
            teslamate_detected=has_teslamate_marker(conn),
            schema_owner=recorded.get(meta.SCHEMA_OWNER),
            instance_id=recorded.get(meta.INSTANCE_ID),
            row_counts=counts,
        )


__all__ = ["DatabaseStatus", "database_status"]
