"""make_engine: URL normalisation and the connection settings each backend needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from fleetlog.store import UnsupportedDatabaseError, make_engine, normalise_url
from fleetlog.store.engine import write_transaction


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///rel.db", "sqlite+pysqlite:///rel.db"),
        ("sqlite:////abs/x.db", "sqlite+pysqlite:////abs/x.db"),
    ],
)
def test_normalise_url(given: str, expected: str) -> None:
    assert normalise_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    "url", ["mysql://u@h/db", "postgresql+psycopg2://u@h/db", "not a url", "sqlite+foo:///x"]
)
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseError):
        normalise_url(url)


def test_sqlite_settings_and_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "fleetlog.db"
    engine = make_engine(f"sqlite:///{path}", timeout_s=7.5)
    try:
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
        assert path.exists()
        assert pragma == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": 7500,
            "synchronous": 1,
        }
    finally:
        engine.dispose()


def test_sqlite_transactions_cover_ddl(tmp_path: Path) -> None:
    """A rolled-back transaction takes its CREATE TABLE with it (pysqlite alone would not)."""
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    try:
        with engine.connect() as conn:
            conn.begin()
            conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            conn.rollback()
        assert not sa.inspect(engine).has_table("t")
    finally:
        engine.dispose()


def test_sqlite_in_memory_is_one_database() -> None:
    engine = make_engine("sqlite://")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == 0
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_url_spellings_connect(pg_url: str) -> None:
    plain = pg_url.replace("postgresql+psycopg://", "postgres://")
    engine = make_engine(plain)
    try:
        with engine.connect() as conn:
            assert conn.dialect.driver == "psycopg"
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_a_sqlite_write_transaction_holds_the_write_lock_from_its_begin(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: nobody writes between the transaction's reads and its writes.

    A plain (deferred) transaction that read first fails its first write at once with
    "database is locked" when another connection wrote meanwhile, busy timeout or not.
    """
    engine = make_engine(f"sqlite:///{tmp_path}/t.db", timeout_s=0.05)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE n (v INTEGER)")
        with engine.connect() as a, engine.connect() as b:
            a.begin()
            a.exec_driver_sql("SELECT count(*) FROM n").scalar()
            with b.begin():
                b.exec_driver_sql("INSERT INTO n VALUES (1)")
            with pytest.raises(sa.exc.OperationalError, match="locked"):
                a.exec_driver_sql("INSERT INTO n VALUES (2)")
            a.rollback()
        with write_transaction(engine) as a:
            a.exec_driver_sql("SELECT count(*) FROM n").scalar()
            with (
                engine.connect() as b,
                pytest.raises(sa.exc.OperationalError, match="locked"),
                b.begin(),
            ):
                b.exec_driver_sql("INSERT INTO n VALUES (3)")
            a.exec_driver_sql("INSERT INTO n VALUES (4)")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT v FROM n ORDER BY v").scalars().all() == [1, 4]
    finally:
        engine.dispose()
