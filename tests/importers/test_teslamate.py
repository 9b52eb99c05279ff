"""A TeslaMate-shaped PostgreSQL database: imported into SQLite, and adopted in place.

"TeslaMate-shaped": TeslaMate's tables exactly as fleetlog's compatible schema defines
them, Ecto's ``schema_migrations`` with rows, no fleetlog table — and a logbook in it
(the TeslaFi fixture history, a geofence, an address, a cost, encrypted tokens).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa

from fleetlog.importers.table_copy import CopyError, DatabaseSource, copy_logbook
from fleetlog.importers.teslamate import import_teslamate
from fleetlog.logbook.writer import CarLogbook
from fleetlog.model.observation import Observation, Source, VehicleState
from fleetlog.sources.vault import Vault, VaultKeyError, load_tokens
from fleetlog.store import database_status, make_engine, upgrade
from fleetlog.store import tables as t
from fleetlog.store.baseline import FLEETLOG_TABLES, define_baseline
from fleetlog.vehicle import CarState, step
from fleetlog.vehicle.events import Boot, FetchedFull
from fleetlog.vehicle.executor import Executor

TESLAMATE = (
    "settings",
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
)
BOOKKEEPING = ("import_runs", "import_file_checkpoints", "import_rejections")
MIGRATIONS = [(20190330162440,), (20260716110000,), (20260808090000,)]


class _TeslaMateTablesOnly(DatabaseSource):
    def has(self, table: str) -> bool:
        return not table.startswith("fleetlog_") and super().has(table)


@pytest.fixture
def teslamate_pg(pg_url: str, tmp_path: Path, logbook: ModuleType) -> Iterator[sa.Engine]:
    """A TeslaMate database on PostgreSQL, filled with the fixture logbook."""
    engine = make_engine(pg_url, pool_size=2)
    md = sa.MetaData()
    define_baseline(md)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA private"))
        md.create_all(conn, tables=[x for x in md.sorted_tables if x.name not in FLEETLOG_TABLES])
        conn.execute(
            sa.text(
                "CREATE TABLE schema_migrations"
                " (version bigint PRIMARY KEY, inserted_at timestamp(0))"
            )
        )
        for (version,) in MIGRATIONS:
            conn.execute(
                sa.text("INSERT INTO schema_migrations VALUES (:v, '2026-08-08 09:00:00')"),
                {"v": version},
            )
        conn.execute(
            sa.insert(md.tables["settings"]).values(
                inserted_at=datetime(2019, 1, 1), updated_at=datetime(2019, 1, 1)
            )
        )
    # the logbook is made by fleetlog on SQLite and copied over, TeslaMate's tables only
    seed = make_engine(f"sqlite:///{tmp_path}/seed.db")
    upgrade(seed)
    logbook.populate(seed, fleetlog_tables=False)
    source = _TeslaMateTablesOnly(seed)
    try:
        copy_logbook(source, engine, "seed")
    finally:
        source.close()
        seed.dispose()
    yield engine
    engine.dispose()


def _snapshot(engine: sa.Engine, logbook: ModuleType) -> dict[str, Any]:
    snap = logbook.content(engine, tables=(*TESLAMATE, *BOOKKEEPING))
    with engine.connect() as conn:
        snap["schema_migrations"] = conn.execute(
            sa.text("SELECT version FROM schema_migrations ORDER BY 1")
        ).all()
    return snap


def test_teslamate_database_imports_into_sqlite(
    teslamate_pg: sa.Engine, tmp_path: Path, logbook: ModuleType
) -> None:
    before = _snapshot(teslamate_pg, logbook)
    target = make_engine(f"sqlite:///{tmp_path}/fleetlog.db")
    upgrade(target)
    url = teslamate_pg.url.render_as_string(hide_password=False)
    report = import_teslamate(url, target)
    assert report.copied["positions"] == len(before["positions"]) > 300

    after = logbook.content(target, tables=TESLAMATE)
    for name in TESLAMATE:
        mine, theirs = after[name], before[name]
        if name == "settings":
            mine, theirs = [r[1:] for r in mine], [r[1:] for r in theirs]
        assert mine == theirs, name
    copied_runs = set(logbook.content(target, tables=BOOKKEEPING)["import_runs"])
    assert set(before["import_runs"]) < copied_runs
    tokens = load_tokens(target, Vault(logbook.KEY))
    assert tokens is not None and (tokens.access, tokens.refresh) == (
        "access-token",
        "refresh-token",
    )
    assert _snapshot(teslamate_pg, logbook) == before  # the source was only read
    with pytest.raises(CopyError, match="already holds a logbook"):
        import_teslamate(url, target)  # done once: a second import would double it
    assert logbook.content(target, tables=("positions",))["positions"] == after["positions"]
    target.dispose()


def _live_drive(engine: sa.Engine, car_id: int, vin: str, start: datetime) -> None:
    """Log a drive the live way: the machine, the executor, the logbook writes."""
    executor = Executor(vin, CarLogbook(engine, car_id))
    state = CarState(vin)
    state, fx = step(state, Boot(), start)
    executor.execute(fx)
    for i in range(12):
        at = start + timedelta(seconds=30 * i)
        moving = 0 < i < 11
        vs = VehicleState(
            latitude=52.5 + i * 0.002,
            longitude=13.4,
            shift_state="D" if moving else "P",
            speed_kmh=60.0 if moving else None,
            odometer_km=20000.0 + 0.5 * i,
            battery_level=70,
            ideal_range_km=300.0 - i,
            rated_range_km=280.0 - i,
        )
        state, fx = step(state, FetchedFull(Observation(vin, at, Source.REST, vs)), at)
        executor.execute(fx)


def test_teslamate_database_is_adopted_in_place(
    teslamate_pg: sa.Engine, logbook: ModuleType
) -> None:
    before = _snapshot(teslamate_pg, logbook)
    report = upgrade(teslamate_pg, adopt_teslamate=True)
    assert report.changed
    status = database_status(teslamate_pg)
    assert status.teslamate_detected and status.schema_owner == "teslamate"
    assert _snapshot(teslamate_pg, logbook) == before  # nothing of TeslaMate's altered

    tokens = load_tokens(teslamate_pg, Vault(logbook.KEY))
    assert tokens is not None and tokens.access == "access-token"
    with pytest.raises(VaultKeyError):
        load_tokens(teslamate_pg, Vault("another key"))

    with teslamate_pg.connect() as conn:
        car_id, vin = conn.execute(
            sa.select(t.cars.c.id, t.cars.c.vin).order_by(t.cars.c.id).limit(1)
        ).one()
    _live_drive(teslamate_pg, car_id, vin, datetime(2019, 11, 5, 7, 0, tzinfo=UTC))
    after = _snapshot(teslamate_pg, logbook)
    assert len(after["drives"]) == len(before["drives"]) + 1
    assert after["drives"][: len(before["drives"])] == before["drives"]
    new = after["drives"][-1]
    assert new[1] == datetime(2019, 11, 5, 7, 0)  # start_date, UTC without zone
    assert after["schema_migrations"] == before["schema_migrations"]
    assert upgrade(teslamate_pg).changed is False  # later upgrades need no flag
