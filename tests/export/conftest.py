"""Fixtures for the import/export/backup tests: a populated logbook, a second database."""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa


def _load_logbook() -> ModuleType:
    path = Path(__file__).parents[1] / "fixtures" / "teslafi" / "logbook.py"
    spec = importlib.util.spec_from_file_location("teslafi_logbook", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def logbook() -> ModuleType:
    """tests/fixtures/teslafi/logbook.py: ``populate(engine)``, ``content(engine, tables=…)``."""
    return _load_logbook()


@pytest.fixture
def second_db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Another empty database on the same backend (a fresh target)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/second.db"
        return
    server: sa.Engine = request.getfixturevalue("_pg_server")
    name = f"fleetlog_test_second_{os.getpid()}_{secrets.token_hex(4)}"
    with server.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield server.url.set(database=name).render_as_string(hide_password=False)
    with server.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
