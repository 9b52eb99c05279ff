"""Migrations up and down on empty databases, on both backends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from fleetlog.store import (
    current_revision,
    database_status,
    detect_teslamate,
    downgrade,
    head_revision,
    make_engine,
    upgrade,
)
from fleetlog.store.migrate import VERSION_TABLE

TESLAMATE = {
    "cars",
    "car_settings",
    "settings",
    "positions",
    "drives",
    "charging_processes",
    "charges",
    "states",
    "updates",
    "addresses",
    "geofences",
    "tokens",
    "import_runs",
    "import_file_checkpoints",
    "import_rejections",
}
OURS = {"fleetlog_meta", VERSION_TABLE}
# Later revisions add more fleetlog tables; all of them carry this prefix.
OWN_PREFIX = "fleetlog_"


def _tables(engine: sa.Engine) -> set[str]:
    insp = sa.inspect(engine)
    names = set(insp.get_table_names())
    if engine.dialect.name == "postgresql" and "private" in insp.get_schema_names():
        names |= set(insp.get_table_names(schema="private"))
    return names


def _split(names: set[str]) -> tuple[set[str], set[str]]:
    """(TeslaMate-named tables, fleetlog's own tables)."""
    own = {n for n in names if n.startswith(OWN_PREFIX)}
    return names - own, own


def _pg_leftovers(engine: sa.Engine) -> dict[str, list[str]]:
    """Everything a downgrade to base should have removed from a PostgreSQL database."""
    queries = {
        "types": "SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
        " WHERE n.nspname = 'public' AND t.typtype = 'e'",
        "functions": "SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = 'public' AND proname LIKE 'convert%'",
        "sequences": "SELECT relname FROM pg_class WHERE relkind = 'S'"
        " AND relnamespace IN (SELECT oid FROM pg_namespace WHERE nspname IN ('public','private'))",
        "schemas": "SELECT nspname FROM pg_namespace WHERE nspname = 'private'",
        "extensions": "SELECT extname FROM pg_extension WHERE extname IN ('cube','earthdistance')",
    }
    with engine.connect() as conn:
        return {k: list(conn.execute(sa.text(q)).scalars()) for k, q in queries.items()}


def test_up_down_up(engine: sa.Engine) -> None:
    assert current_revision(engine) is None
    first = upgrade(engine)
    assert first.from_revision is None
    assert first.to_revision == head_revision()
    assert first.applied[0] == "0001"
    assert first.applied[-1] == head_revision()
    assert not first.adopted and not first.teslamate_detected
    theirs, own = _split(_tables(engine))
    assert theirs == TESLAMATE
    assert own >= OURS
    assert current_revision(engine) == head_revision()

    again = upgrade(engine)
    assert not again.changed
    assert again.applied == ()
    assert "nothing to do" in again.summary()

    down = downgrade(engine)
    assert down.to_revision is None
    assert down.applied == tuple(reversed(first.applied))
    assert _tables(engine) == set()
    assert current_revision(engine) is None
    if engine.dialect.name == "postgresql":
        assert _pg_leftovers(engine) == {
            "types": [],
            "functions": [],
            "sequences": [],
            "schemas": [],
            "extensions": [],
        }

    assert upgrade(engine).applied == first.applied
    assert _split(_tables(engine)) == (TESLAMATE, own)


def test_initial_rows(migrated_engine: sa.Engine) -> None:
    with migrated_engine.connect() as conn:
        settings = conn.execute(sa.text("SELECT * FROM settings")).mappings().all()
        meta = dict(conn.execute(sa.text("SELECT key, value FROM fleetlog_meta")).all())
    assert len(settings) == 1
    row = settings[0]
    assert (row["unit_of_length"], row["unit_of_temperature"], row["preferred_range"]) == (
        "km",
        "C",
        "rated",
    )
    assert (row["unit_of_pressure"], row["language"], row["theme_mode"]) == ("bar", "en", "system")
    assert row["inserted_at"] is not None
    assert meta["schema_owner"] == "fleetlog"
    assert len(meta["instance_id"]) == 32


def test_status(migrated_engine: sa.Engine) -> None:
    status = database_status(migrated_engine)
    assert status.up_to_date
    assert status.revision == head_revision()
    assert status.schema_owner == "fleetlog"
    assert not status.teslamate_detected
    assert status.row_counts["settings"] == 1
    assert status.row_counts["positions"] == 0
    assert set(status.row_counts) >= TESLAMATE | {"fleetlog_meta"}
    assert not detect_teslamate(migrated_engine)


def test_status_of_empty_database(engine: sa.Engine) -> None:
    status = database_status(engine)
    assert status.revision is None
    assert not status.up_to_date
    assert status.row_counts == {}


@pytest.mark.postgres
def test_pg_extensions_created_and_reported(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            available = set(
                conn.execute(sa.text("SELECT name FROM pg_available_extensions")).scalars()
            )
        report = upgrade(engine)
        wanted = [e for e in ("cube", "earthdistance") if e in available]
        assert list(report.extensions_created) == wanted
        if len(wanted) < 2:
            assert report.warnings
        with engine.connect() as conn:
            # The app's geofence maths works when the extensions are there.
            if wanted == ["cube", "earthdistance"]:
                km = conn.execute(
                    sa.text(
                        "SELECT earth_distance(ll_to_earth(52.52, 13.405),"
                        " ll_to_earth(48.137, 11.575)) / 1000"
                    )
                ).scalar_one()
                assert 500 < km < 510
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_pg_downgrade_keeps_extensions_it_did_not_create(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS cube WITH SCHEMA public"))
        report = upgrade(engine)
        assert "cube" not in report.extensions_created
        downgrade(engine)
        assert _pg_leftovers(engine)["extensions"] == ["cube"]
    finally:
        engine.dispose()
