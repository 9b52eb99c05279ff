"""The request ledger while the database is away: rows kept in memory, written when it is back.

A Tesla call has happened (and is billed) whatever the database says, so recording it must
never raise; a lost row would make the budget undercount.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from fleetlog.sources.tesla import Category, Pricing
from fleetlog.sources.tesla._ledger import Ledger, LedgerEntry, api_requests
from fleetlog.store import make_engine


def entry(at: datetime, status: int = 200, endpoint: str = "vehicle_data") -> LedgerEntry:
    pricing = Pricing()
    return LedgerEntry(
        at=at,
        account="acct",
        vehicle="VIN-A",
        method="GET",
        endpoint=endpoint,
        category=Category.DATA,
        status=status,
        billed=pricing.billed(Category.DATA, status),
        cost_micro_usd=pricing.cost(Category.DATA, status),
        duration_ms=10,
    )


def away_engine(backend: str, tmp: str) -> sa.Engine:
    """An engine on a database that is not there (connection refused / cannot open)."""
    if backend == "postgres":
        return make_engine("postgresql+psycopg://postgres@127.0.0.1:1/postgres")
    return make_engine(f"sqlite:///{tmp}/no/such/dir/fleetlog.db")


def stored(engine: sa.Engine) -> list[datetime]:
    with engine.connect() as conn:
        return list(
            conn.execute(sa.select(api_requests.c.at).order_by(api_requests.c.id)).scalars()
        )


def test_rows_kept_while_the_database_is_away_and_written_in_order_when_back(
    migrated_engine: sa.Engine, backend: str, tmp_path: object
) -> None:
    live = migrated_engine
    ledger = Ledger(live, retry_after_s=0.0)
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    ledger.record(entry(t0))
    away = away_engine(backend, str(tmp_path))
    ledger.engine = away
    for i in range(1, 4):
        ledger.record(entry(t0 + timedelta(minutes=i)))  # never raises
    assert len(ledger.waiting) == 3
    assert stored(live) == [t0.replace(tzinfo=None)]
    ledger.engine = live  # the database is back
    ledger.record(entry(t0 + timedelta(minutes=4)))
    assert not ledger.waiting
    assert stored(live) == [(t0 + timedelta(minutes=i)).replace(tzinfo=None) for i in range(5)]
    assert ledger.month_spend("acct", "2026-03") == 5 * Pricing().cost(Category.DATA, 200)
    away.dispose()


def test_waiting_rows_count_in_the_budget_reads(
    migrated_engine: sa.Engine, backend: str, tmp_path: object
) -> None:
    ledger = Ledger(migrated_engine, retry_after_s=3600.0)
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    ledger.record(entry(t0))
    # the next write fails and is not retried for an hour: the row waits
    ledger.engine = away_engine(backend, str(tmp_path))
    ledger.record(entry(t0 + timedelta(minutes=1)))
    ledger.engine = migrated_engine
    ledger.record(entry(t0 + timedelta(minutes=2)))
    assert len(ledger.waiting) == 2  # still inside the retry interval
    ledger._retry_at = 0.0
    cost = Pricing().cost(Category.DATA, 200)
    assert ledger.month_spend("acct", "2026-03") == 3 * cost
    assert ledger.data_calls_on("acct", t0.date()) == {"VIN-A": 3}
    assert not ledger.waiting


def test_the_queue_is_bounded(migrated_engine: sa.Engine, backend: str, tmp_path: object) -> None:
    away = away_engine(backend, str(tmp_path))
    ledger = Ledger(away, max_waiting=5, retry_after_s=0.0)
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    for i in range(8):
        ledger.record(entry(t0 + timedelta(minutes=i)))
    assert len(ledger.waiting) == 5 and ledger.given_up == 3
    ledger.engine = migrated_engine
    assert ledger.flush()
    assert stored(migrated_engine) == [
        (t0 + timedelta(minutes=i)).replace(tzinfo=None) for i in range(3, 8)
    ]
    away.dispose()


def test_a_refused_row_is_given_up_alone(migrated_engine: sa.Engine) -> None:
    ledger = Ledger(migrated_engine)
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    bad = LedgerEntry(**{**_fields(entry(t0)), "category": _NotACategory()})  # type: ignore[arg-type]
    ledger.waiting.append(bad)
    ledger.record(entry(t0 + timedelta(minutes=1)))
    assert not ledger.waiting and ledger.given_up == 1
    assert stored(migrated_engine) == [(t0 + timedelta(minutes=1)).replace(tzinfo=None)]


class _NotACategory:
    value = "bogus"  # violates the table's CHECK constraint


def _fields(e: LedgerEntry) -> dict[str, object]:
    return {name: getattr(e, name) for name in LedgerEntry.__slots__}


@pytest.mark.parametrize("status", [200, 503])
def test_recording_with_no_database_at_all_never_raises(status: int) -> None:
    away = make_engine("sqlite:////nonexistent-dir/fleetlog.db")
    ledger = Ledger(away)
    ledger.record(entry(datetime(2026, 3, 2, tzinfo=UTC), status))
    assert len(ledger.waiting) == 1
    away.dispose()
