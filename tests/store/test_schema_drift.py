"""The migrations and `fleetlog.store.tables` describe the same schema.

Guards later revisions: a table changed in code but not in a migration (or the reverse) shows
up here as an autogenerate difference.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from fleetlog.store.migrate import VERSION_TABLE
from fleetlog.store.tables import metadata

# SQLite cannot reflect expression indexes; Alembic skips those (and says so).
pytestmark = [
    pytest.mark.filterwarnings("ignore:Skipped unsupported reflection"),
    pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression"),
]


def _filter(sqlite: bool) -> Any:
    def include(obj: Any, name: str | None, type_: str, reflected: bool, _other: Any) -> bool:
        if type_ != "table":
            return True
        if reflected:
            # Tables only in the database (Alembic's own, or a revision whose table is not
            # yet described in code) are not drift of the tables we describe.
            described = {t.name for t in metadata.tables.values() if not (sqlite and t.schema)}
            return name != VERSION_TABLE and name in described
        # On SQLite the `private` schema is translated away by the engine, which
        # autogenerate does not know about; `tokens` is compared on PostgreSQL only.
        return not (sqlite and obj.schema is not None)

    return include


def test_migrated_schema_matches_tables(migrated_engine: sa.Engine) -> None:
    with migrated_engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": conn.dialect.name == "postgresql",
                "include_object": _filter(conn.dialect.name == "sqlite"),
                "compare_type": True,
            },
        )
        diff = compare_metadata(ctx, metadata)
    assert diff == []
