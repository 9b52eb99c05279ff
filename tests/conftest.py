"""Shared fixtures: a database on each backend.

Every storage test runs on SQLite and on PostgreSQL. Use the fixtures:

* ``backend`` — ``"sqlite"`` or ``"postgres"`` (parametrized; postgres cases carry the
  ``postgres`` marker);
* ``db_url`` — an empty database for this test (a file under ``tmp_path`` for SQLite; for
  PostgreSQL the session's own database, reset to empty before the test);
* ``engine`` — :func:`fleetlog.store.make_engine` on ``db_url`` (disposed afterwards);
* ``migrated_engine`` — ``engine`` migrated to head;
* ``pg_url`` — the session PostgreSQL database alone (for PostgreSQL-only tests), and
  ``pg_url_module``, the same emptied once per module (for modules that only read).

PostgreSQL: ``FLEETLOG_TEST_PG_URL`` (a server/maintenance URL) or, by default,
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres`` (then user ``root``). One database
``fleetlog_test_<pid>_<random>`` is created per run and dropped at the end. When no server
is reachable the postgres cases are skipped with the reason, unless ``CI=true``: then they fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from fleetlog.store import make_engine, upgrade

_DEFAULT_PG_URLS = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    "postgresql+psycopg://root@127.0.0.1:5432/postgres",
)


def _admin_engine() -> tuple[sa.Engine | None, str]:
    """An AUTOCOMMIT engine on the server's maintenance database, or None and why not."""
    override = os.environ.get("FLEETLOG_TEST_PG_URL")
    candidates = (override,) if override else _DEFAULT_PG_URLS
    errors = []
    for url in candidates:
        engine = make_engine(url, pool_size=1, timeout_s=3).execution_options(
            isolation_level="AUTOCOMMIT"
        )
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.OperationalError as exc:
            engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            errors.append(f"{sa.engine.make_url(url).render_as_string()}: {reason}")
            continue
        return engine, ""
    return None, "; ".join(errors)


@pytest.fixture(scope="session")
def _pg_server() -> Iterator[sa.Engine]:
    engine, why = _admin_engine()
    if engine is None:
        message = f"PostgreSQL not reachable ({why}); set FLEETLOG_TEST_PG_URL"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def _pg_session_url(_pg_server: sa.Engine) -> Iterator[str]:
    name = f"fleetlog_test_{os.getpid()}_{secrets.token_hex(4)}"
    with _pg_server.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = _pg_server.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with _pg_server.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))


def _reset_pg(url: str) -> None:
    """Empty the database: both schemas, with every type, function and extension in them."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS private CASCADE"))
            conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
            conn.execute(sa.text("GRANT ALL ON SCHEMA public TO PUBLIC"))
    finally:
        engine.dispose()


@pytest.fixture
def pg_url(_pg_session_url: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    _reset_pg(_pg_session_url)
    return _pg_session_url


@pytest.fixture(scope="module")
def pg_url_module(_pg_session_url: str) -> str:
    """The session's PostgreSQL database, emptied once for a whole (read-only) test module."""
    _reset_pg(_pg_session_url)
    return _pg_session_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Which database the test runs on."""
    return str(request.param)


@pytest.fixture
def db_url(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """An empty database on `backend`."""
    if backend == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path_factory.mktemp('db')}/fleetlog.db"


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """An engine on the empty test database."""
    eng = make_engine(db_url, pool_size=2)
    yield eng
    eng.dispose()


@pytest.fixture
def migrated_engine(engine: sa.Engine) -> sa.Engine:
    """`engine` with the schema migrated to head."""
    upgrade(engine)
    return engine


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long", action="store_true", help="also run tests marked slow (whole simulated weeks)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    skip = pytest.mark.skip(reason="long-running; run with --long")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
