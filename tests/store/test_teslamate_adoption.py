"""fleetlog never damages a TeslaMate database; adopting adds only fleetlog's own tables."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from fleetlog.store import (
    SchemaConflictError,
    StoreError,
    TeslaMateDatabaseError,
    current_revision,
    database_status,
    detect_teslamate,
    downgrade,
    upgrade,
)
from fleetlog.store.baseline import FLEETLOG_TABLES, define_baseline
from fleetlog.store.migrate import VERSION_TABLE

# SQLite cannot reflect expression indexes; the snapshot compares what it can see.
pytestmark = pytest.mark.filterwarnings("ignore:Skipped unsupported reflection")

SEC = datetime(2023, 3, 4, 5, 6, 7)


def _make_teslamate(engine: sa.Engine) -> None:
    """A stand-in for a TeslaMate database: its tables, Ecto's marker table and some data."""
    md = sa.MetaData()
    define_baseline(md)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("CREATE SCHEMA private"))
        md.create_all(conn, tables=[t for t in md.sorted_tables if t.name not in FLEETLOG_TABLES])
        conn.execute(
            sa.text(
                "CREATE TABLE schema_migrations"
                " (version bigint PRIMARY KEY, inserted_at timestamp(0))"
            )
        )
        conn.execute(
            sa.text("INSERT INTO schema_migrations VALUES (20260808090000, '2026-08-08 09:00:00')")
        )
        conn.execute(md.tables["settings"].insert().values(inserted_at=SEC, updated_at=SEC))
        conn.execute(md.tables["car_settings"].insert().values(id=7))
        conn.execute(
            md.tables["cars"]
            .insert()
            .values(id=3, eid=1, vid=2, vin="VIN", settings_id=7, inserted_at=SEC, updated_at=SEC)
        )


def _text(reflected: object) -> str:
    # str() renders SQL clauses (partial-index predicates) as their SQL, not an address.
    return json.dumps(reflected, default=str, sort_keys=True)


def _snapshot(engine: sa.Engine) -> dict[str, Any]:
    """Structure and content of every table that is not fleetlog's."""
    insp = sa.inspect(engine)
    schemas: list[str | None] = [None]
    if engine.dialect.name == "postgresql":
        schemas = ["public", "private"]
    snap: dict[str, Any] = {}
    with engine.connect() as conn:
        for schema in schemas:
            for name in insp.get_table_names(schema=schema):
                if name.startswith("fleetlog_"):
                    continue
                table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)
                snap[f"{schema}.{name}"] = {
                    "columns": [
                        (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                        for c in insp.get_columns(name, schema=schema)
                    ],
                    "indexes": sorted(_text(i) for i in insp.get_indexes(name, schema=schema)),
                    "fks": sorted(_text(f) for f in insp.get_foreign_keys(name, schema=schema)),
                    "rows": sorted(map(repr, conn.execute(sa.select(table)).all())),
                }
        if engine.dialect.name == "postgresql":
            snap["functions"] = conn.execute(
                sa.text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'convert%'")
            ).scalar_one()
            snap["extensions"] = sorted(
                conn.execute(sa.text("SELECT extname FROM pg_extension")).scalars()
            )
            snap["types"] = sorted(
                conn.execute(
                    sa.text(
                        "SELECT typname FROM pg_type t JOIN pg_namespace n"
                        " ON n.oid = t.typnamespace"
                        " WHERE n.nspname = 'public' AND t.typtype = 'e'"
                    )
                ).scalars()
            )
    return snap


def _own_tables(engine: sa.Engine) -> set[str]:
    return {n for n in sa.inspect(engine).get_table_names() if n.startswith("fleetlog_")}


def test_detects_teslamate(engine: sa.Engine) -> None:
    assert not detect_teslamate(engine)
    _make_teslamate(engine)
    assert detect_teslamate(engine)


def test_refuses_without_adopt(engine: sa.Engine) -> None:
    _make_teslamate(engine)
    before = _snapshot(engine)
    with pytest.raises(TeslaMateDatabaseError, match="--adopt-teslamate") as caught:
        upgrade(engine)
    assert "TeslaMate database" in str(caught.value)
    assert _snapshot(engine) == before
    assert _own_tables(engine) == set()
    assert current_revision(engine) is None


def test_adopt_adds_only_fleetlog_tables(engine: sa.Engine) -> None:
    _make_teslamate(engine)
    before = _snapshot(engine)

    report = upgrade(engine, adopt_teslamate=True)
    assert report.adopted and report.teslamate_detected and report.changed
    assert report.extensions_created == ()
    assert "adopted" in report.summary()
    assert _snapshot(engine) == before
    own = _own_tables(engine)
    assert {"fleetlog_meta", VERSION_TABLE} <= own
    status = database_status(engine)
    assert status.schema_owner == "teslamate"
    assert status.row_counts["cars"] == 1
    assert status.row_counts["settings"] == 1

    # Later runs (auto-migrate on start) need no flag and change nothing.
    again = upgrade(engine)
    assert not again.changed and again.adopted
    assert _snapshot(engine) == before

    # Down to base removes fleetlog's tables only.
    downgrade(engine)
    assert _own_tables(engine) == set()
    assert _snapshot(engine) == before
    assert detect_teslamate(engine)


def test_tables_without_teslamate_marker_are_a_conflict(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE cars (id integer PRIMARY KEY, note text)"))
        conn.execute(sa.text("INSERT INTO cars VALUES (1, 'mine')"))
    with pytest.raises(SchemaConflictError, match="cars"):
        upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT note FROM cars")).scalar_one() == "mine"
    assert _own_tables(engine) == set()


def test_adopt_requires_a_teslamate_database(engine: sa.Engine) -> None:
    with pytest.raises(StoreError, match="not a TeslaMate database"):
        upgrade(engine, adopt_teslamate=True)
    assert _own_tables(engine) == set()
