"""The request ledger on SQLite and PostgreSQL: rows in, exact totals out."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from fleetlog.sources.tesla import Category, Pricing
from fleetlog.sources.tesla._ledger import Ledger, LedgerEntry, api_requests


def entry(
    at: datetime, vehicle: str | None, category: Category, status: int | None, account: str = "acct"
) -> LedgerEntry:
    pricing = Pricing()
    return LedgerEntry(
        at=at,
        account=account,
        vehicle=vehicle,
        method="GET",
        endpoint=category.value,
        category=category,
        status=status,
        billed=pricing.billed(category, status),
        cost_micro_usd=pricing.cost(category, status),
        duration_ms=12,
    )


def test_totals_per_car_and_account_by_day_and_month(migrated_engine: sa.Engine) -> None:
    ledger = Ledger(migrated_engine)
    d1 = datetime(2026, 3, 31, 23, 59, tzinfo=UTC)
    # 01:30 at UTC+2 is still 31 March in UTC: days and months are UTC.
    d1_local = datetime(2026, 4, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    d2 = datetime(2026, 4, 2, 8, 0, tzinfo=UTC)
    rows = [
        entry(d1, "VIN-A", Category.DATA, 200),
        entry(d1, "VIN-A", Category.DATA, 408),  # asleep: billed all the same
        entry(d1_local, "VIN-A", Category.DATA, 503),  # 5xx: not billed
        entry(d1, "VIN-B", Category.DATA, 429),
        entry(d1, "VIN-B", Category.WAKE, 200),
        entry(d1, "VIN-B", Category.NONE, 200),
        entry(d1, None, Category.NONE, 200),  # the vehicle list belongs to the account
        entry(d2, "VIN-A", Category.DATA, None),  # no answer: not billed
        entry(d2, "VIN-A", Category.DATA, 200),
        entry(d2, "VIN-C", Category.DATA, 200, account="other"),
    ]
    for row in rows:
        ledger.record(row)

    by_car_day = {
        (t.period, t.vehicle, t.category): (t.requests, t.billed, t.cost_micro_usd)
        for t in ledger.totals(by="day", per="vehicle", account="acct")
    }
    assert by_car_day == {
        ("2026-03-31", "VIN-A", Category.DATA): (3, 2, 4000),
        ("2026-03-31", "VIN-B", Category.DATA): (1, 1, 2000),
        ("2026-03-31", "VIN-B", Category.WAKE): (1, 1, 20000),
        ("2026-03-31", "VIN-B", Category.NONE): (1, 0, 0),
        ("2026-04-02", "VIN-A", Category.DATA): (2, 1, 2000),
    }
    by_account_month = {
        (t.period, t.account, t.category): (t.requests, t.billed, t.cost_usd)
        for t in ledger.totals(by="month", per="account")
    }
    assert by_account_month == {
        ("2026-03", "acct", Category.DATA): (4, 3, 0.006),
        ("2026-03", "acct", Category.WAKE): (1, 1, 0.02),
        ("2026-03", "acct", Category.NONE): (2, 0, 0.0),
        ("2026-04", "acct", Category.DATA): (2, 1, 0.002),
        ("2026-04", "other", Category.DATA): (1, 1, 0.002),
    }
    april = ledger.totals(by="day", per="account", since=date(2026, 4, 1), until=date(2026, 4, 3))
    assert {t.account for t in april} == {"acct", "other"}
    assert ledger.month_spend("acct", "2026-03") == 26000
    assert ledger.month_spend("acct", "2026-05") == 0
    assert ledger.data_calls_on("acct", date(2026, 3, 31)) == {"VIN-A": 2, "VIN-B": 1}


def test_category_outside_the_four_is_rejected_by_the_database(migrated_engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), migrated_engine.begin() as conn:
        conn.execute(
            api_requests.insert().values(
                at=datetime(2026, 1, 1),
                day=date(2026, 1, 1),
                month="2026-01",
                account="a",
                method="GET",
                endpoint="x",
                category="signal",
                billed=False,
                cost_micro_usd=0,
                duration_ms=0,
                outcome="ok",
            )
        )


def test_naive_times_are_refused(migrated_engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Ledger(migrated_engine).record(entry(datetime(2026, 1, 1), None, Category.NONE, 200))
