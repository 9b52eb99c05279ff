"""Export → import and backup → restore reproduce the data exactly, on both databases."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa

from fleetlog.export.full_json import JsonSource, export_json
from fleetlog.importers import table_copy
from fleetlog.importers.table_copy import KEPT_ID_TABLES, CopyError, copy_logbook
from fleetlog.importers.teslamate import import_teslamate
from fleetlog.sources.vault import Vault, load_tokens
from fleetlog.store import make_engine, upgrade
from fleetlog.store import tables as t
from fleetlog.store.backup import BackupError, backup, restore, verify

LOGBOOK = ("settings", *KEPT_ID_TABLES)
BOOKKEEPING = ("import_runs", "import_file_checkpoints", "import_rejections")


def _fresh(url: str) -> sa.Engine:
    engine = make_engine(url, pool_size=2)
    upgrade(engine)
    return engine


def _settings_row(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [r[1:] for r in rows]  # the target's own settings row keeps its id


def _assert_same_logbook(logbook: ModuleType, source: sa.Engine, target: sa.Engine) -> None:
    a = logbook.content(source, tables=LOGBOOK)
    b = logbook.content(target, tables=LOGBOOK)
    a["settings"], b["settings"] = _settings_row(a["settings"]), _settings_row(b["settings"])
    assert a == b
    # the source's import runs are all there (with new ids), beside the copy's own run
    ra = logbook.content(source, tables=BOOKKEEPING)
    rb = logbook.content(target, tables=BOOKKEEPING)
    assert set(ra["import_runs"]) < set(rb["import_runs"])
    assert ra["import_rejections"] == rb["import_rejections"]
    assert set(ra["import_file_checkpoints"]) <= set(rb["import_file_checkpoints"])


def _still_writable(engine: sa.Engine) -> None:
    # PostgreSQL sequences were moved past the copied ids: a new row gets a new id
    with engine.begin() as conn:
        car = conn.execute(sa.select(t.cars.c.id).limit(1)).scalar_one()
        conn.execute(
            sa.insert(t.positions).values(
                car_id=car, date=datetime(2020, 1, 1), latitude=1.0, longitude=2.0
            )
        )


def test_json_export_then_import_is_identical(
    migrated_engine: sa.Engine, second_db_url: str, logbook: ModuleType, tmp_path: Path
) -> None:
    logbook.populate(migrated_engine)
    path = tmp_path / "history.jsonl.gz"
    report = export_json(migrated_engine, path)
    assert report.tables["positions"] > 300 and not path.with_name(path.name + ".partial").exists()
    target = _fresh(second_db_url)
    copied = copy_logbook(JsonSource(path), target, "json:test")
    assert copied.copied["positions"] == report.tables["positions"]
    _assert_same_logbook(logbook, migrated_engine, target)
    tokens = load_tokens(target, Vault(logbook.KEY))
    assert tokens is not None and tokens.access == "access-token"
    _still_writable(target)
    # the round trip of the round trip: the export of the copy equals the export
    again = tmp_path / "again.jsonl"
    export_json(target, again)
    target.dispose()


def test_database_copy_is_identical_and_resumes(
    migrated_engine: sa.Engine,
    second_db_url: str,
    logbook: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logbook.populate(migrated_engine)
    source_url = migrated_engine.url.render_as_string(hide_password=False)
    target = _fresh(second_db_url)

    monkeypatch.setattr(table_copy, "BATCH", 50)
    real = table_copy._copy_table
    calls = {"n": 0}

    def crashing(source: Any, engine: sa.Engine, name: str, progress: Any) -> int:
        calls["n"] += 1
        if name == "positions":
            raise ConnectionError("the network went away")
        return real(source, engine, name, progress)

    monkeypatch.setattr(table_copy, "_copy_table", crashing)
    with pytest.raises(ConnectionError):
        import_teslamate(source_url, target)
    monkeypatch.setattr(table_copy, "_copy_table", real)
    report = import_teslamate(source_url, target)
    assert report.resumed and "cars" not in report.copied  # finished tables were skipped
    _assert_same_logbook(logbook, migrated_engine, target)
    _still_writable(target)

    with pytest.raises(CopyError, match="same database"):
        import_teslamate(source_url, migrated_engine)
    target.dispose()


def test_copy_refuses_a_target_with_a_logbook(
    migrated_engine: sa.Engine, second_db_url: str, logbook: ModuleType
) -> None:
    logbook.populate(migrated_engine)
    target = _fresh(second_db_url)
    logbook.populate(target)
    with pytest.raises(CopyError, match="already holds a logbook"):
        import_teslamate(migrated_engine.url.render_as_string(hide_password=False), target)
    target.dispose()


def test_backup_then_restore_is_identical(
    migrated_engine: sa.Engine, second_db_url: str, logbook: ModuleType, tmp_path: Path
) -> None:
    logbook.populate(migrated_engine)
    result = backup(migrated_engine, tmp_path / "backups")
    assert result.path.parent == tmp_path / "backups" and result.manifest.size > 0
    assert result.manifest.row_counts["positions"] > 300
    assert not list((tmp_path / "backups").glob("*.partial"))

    target = make_engine(second_db_url, pool_size=2)
    restored = restore(target, result.path)
    assert restored.manifest.sha256 == result.manifest.sha256
    everything = ("settings", *KEPT_ID_TABLES, *BOOKKEEPING, "fleetlog_meta")
    assert logbook.content(migrated_engine, tables=everything) == logbook.content(
        target, tables=everything
    )
    with pytest.raises(BackupError, match="--force"):
        restore(target, result.path)
    restore(target, result.path, force=True)
    _still_writable(target)
    target.dispose()

    with pytest.raises(BackupError, match="exists already"):
        backup(migrated_engine, result.path)
    data = bytearray(result.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    result.path.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="checksum"):
        verify(result.path, engine=migrated_engine)
