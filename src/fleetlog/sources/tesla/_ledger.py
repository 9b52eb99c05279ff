"""The request ledger: one row per call to Tesla, in fleetlog's own table.

Each row says when, for which account and car, which endpoint, its pricing
category, the answer's status, whether Tesla bills it and what it cost. Totals per
car or per account, by day or by month, are plain GROUP BYs over columns stored at
insert time (``day``, ``month``), so the same query runs on SQLite and PostgreSQL
and the bill can be reconciled row by row.

The table hangs off the store's MetaData (so Alembic's autogenerate and the test
fixtures see it); revision ``0002_request_ledger`` creates it.

Recording never makes a call fail. The call has happened (and is billed) whatever
the database says, so a row that cannot be written because the database is away is
kept in memory, in order, and written with the next one once the database is back;
the sums read here count the rows still waiting. The queue is bounded
(:data:`MAX_WAITING`); past it the oldest rows are given up, loudly. A row the
database *refuses* (a data error) is logged and given up at once.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

import sqlalchemy as sa

from fleetlog.logs import log_event
from fleetlog.sources.tesla._pricing import Category, micro_to_usd
from fleetlog.store.tables import metadata

log = logging.getLogger(__name__)

TABLE = "fleetlog_api_requests"

#: Rows kept in memory while the database is away (a day of one car's polling, and more).
MAX_WAITING = 20_000

#: After a failed write, wait this long (wall seconds) before the next attempt, so a
#: database that is away costs one connection attempt per interval, not one per call.
RETRY_AFTER_S = 1.0


def define_ledger(md: sa.MetaData) -> sa.Table:
    """Add the ledger table to `md` (used by the migration with a fresh MetaData too)."""
    return sa.Table(
        TABLE,
        md,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", sa.DateTime(), nullable=False),  # UTC, naive like TeslaMate's columns
        sa.Column("day", sa.Date(), nullable=False),  # UTC day of `at`
        sa.Column("month", sa.String(7), nullable=False),  # YYYY-MM of `at`
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("vehicle", sa.String(32), nullable=True),  # id or VIN as called; None: account
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("category", sa.String(8), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),  # None: no answer
        sa.Column("billed", sa.Boolean(), nullable=False),
        sa.Column("cost_micro_usd", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(48), nullable=False),  # "ok" or the error's class name
        sa.CheckConstraint(
            "category IN ('data', 'wake', 'command', 'none')",
            name="fleetlog_api_requests_category_check",
        ),
        sa.Index("fleetlog_api_requests_account_day_idx", "account", "day"),
        sa.Index("fleetlog_api_requests_vehicle_day_idx", "vehicle", "day"),
    )


api_requests = define_ledger(metadata)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One call, as recorded."""

    at: datetime
    account: str
    vehicle: str | None
    method: str
    endpoint: str
    category: Category
    status: int | None
    billed: bool
    cost_micro_usd: int
    duration_ms: int
    outcome: str = "ok"


@dataclass(frozen=True, slots=True)
class LedgerTotal:
    """Calls and money of one period (a day or a month) for an account or a car."""

    period: str  # YYYY-MM-DD or YYYY-MM
    account: str
    vehicle: str | None  # None in per-account totals
    category: Category
    requests: int
    billed: int
    cost_micro_usd: int

    @property
    def cost_usd(self) -> float:
        return float(micro_to_usd(self.cost_micro_usd))


def _naive_utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return t.astimezone(UTC).replace(tzinfo=None)


class Ledger:
    """Writes and sums ledger rows in the database behind `engine`."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        max_waiting: int = MAX_WAITING,
        retry_after_s: float = RETRY_AFTER_S,
    ) -> None:
        self.engine = engine
        self.waiting: deque[LedgerEntry] = deque()
        self.max_waiting = max_waiting
        self.retry_after_s = retry_after_s
        self.given_up = 0
        self._retry_at = 0.0

    def record(self, entry: LedgerEntry) -> None:
        """Append one call; never raises (kept in memory while the database is away)."""
        _naive_utc(entry.at)  # a programming error, not an outage: still raise on it
        self.waiting.append(entry)
        if len(self.waiting) > self.max_waiting:
            lost = self.waiting.popleft()
            self.given_up += 1
            log_event(
                log,
                logging.ERROR,
                "request ledger full while the database is away: oldest row given up",
                at=lost.at.isoformat(),
                endpoint=lost.endpoint,
                cost_micro_usd=lost.cost_micro_usd,
                given_up=self.given_up,
            )
        if time.monotonic() >= self._retry_at:
            self.flush()

    def flush(self) -> bool:
        """Write the waiting rows (one transaction); True when none is left waiting."""
        if not self.waiting:
            return True
        rows = list(self.waiting)
        try:
            self._insert(rows)
        except Exception as exc:
            if _database_away(exc):
                self._retry_at = time.monotonic() + self.retry_after_s
                log_event(
                    log,
                    logging.WARNING,
                    "database unavailable, request ledger rows kept in memory",
                    waiting=len(self.waiting),
                    error=_first_line(exc),
                )
                return False
            # a refusal, not an outage: find the rows refused and give only them up
            return self._one_by_one()
        for _ in rows:
            self.waiting.popleft()
        self._retry_at = 0.0
        return True

    def _one_by_one(self) -> bool:
        while self.waiting:
            entry = self.waiting[0]
            try:
                self._insert([entry])
            except Exception as exc:
                if _database_away(exc):
                    self._retry_at = time.monotonic() + self.retry_after_s
                    return False
                self.given_up += 1
                log_event(
                    log,
                    logging.ERROR,
                    "request ledger row refused, given up",
                    at=entry.at.isoformat(),
                    endpoint=entry.endpoint,
                    status=entry.status,
                    cost_micro_usd=entry.cost_micro_usd,
                    error=_first_line(exc),
                )
            self.waiting.popleft()
        return True

    def _insert(self, entries: Iterable[LedgerEntry]) -> None:
        rows = []
        for entry in entries:
            at = _naive_utc(entry.at)
            rows.append(
                {
                    "at": at,
                    "day": at.date(),
                    "month": f"{at.year:04d}-{at.month:02d}",
                    "account": entry.account,
                    "vehicle": entry.vehicle,
                    "method": entry.method,
                    "endpoint": entry.endpoint,
                    "category": entry.category.value,
                    "status": entry.status,
                    "billed": entry.billed,
                    "cost_micro_usd": entry.cost_micro_usd,
                    "duration_ms": entry.duration_ms,
                    "outcome": entry.outcome[:48],
                }
            )
        with self.engine.begin() as conn:
            conn.execute(api_requests.insert(), rows)

    def totals(
        self,
        *,
        by: Literal["day", "month"],
        per: Literal["account", "vehicle"],
        account: str | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> list[LedgerTotal]:
        """Totals grouped by period, account (and car), and category; `until` is exclusive.

        Rows still waiting for the database are written first when it is back; while it
        is away this raises like any read.
        """
        self.flush()
        t = api_requests
        period = t.c.day if by == "day" else t.c.month
        keys: list[sa.ColumnElement[object]] = [period, t.c.account, t.c.category]
        if per == "vehicle":
            keys.insert(2, t.c.vehicle)
        query = sa.select(
            *keys,
            sa.func.count().label("requests"),
            sa.func.sum(sa.case((t.c.billed, 1), else_=0)).label("billed"),
            sa.func.sum(t.c.cost_micro_usd).label("cost"),
        ).group_by(*keys)
        if account is not None:
            query = query.where(t.c.account == account)
        if since is not None:
            query = query.where(t.c.day >= since)
        if until is not None:
            query = query.where(t.c.day < until)
        if per == "vehicle":
            query = query.where(t.c.vehicle.is_not(None))
        query = query.order_by(*keys)
        out: list[LedgerTotal] = []
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                raw_period = row["day"] if by == "day" else row["month"]
                out.append(
                    LedgerTotal(
                        period=raw_period.isoformat()
                        if isinstance(raw_period, date)
                        else str(raw_period),
                        account=row["account"],
                        vehicle=row["vehicle"] if per == "vehicle" else None,
                        category=Category(row["category"]),
                        requests=int(row["requests"]),
                        billed=int(row["billed"] or 0),
                        cost_micro_usd=int(row["cost"] or 0),
                    )
                )
        return out

    def month_spend(self, account: str, month: str) -> int:
        """Micro-dollars billed to `account` in `month` (YYYY-MM): restores the governor."""
        t = api_requests
        query = sa.select(sa.func.coalesce(sa.func.sum(t.c.cost_micro_usd), 0)).where(
            t.c.account == account, t.c.month == month
        )
        self.flush()
        with self.engine.connect() as conn:
            stored = int(conn.execute(query).scalar_one())
        return stored + sum(
            e.cost_micro_usd for e in self.waiting if e.account == account and _month(e) == month
        )

    def data_calls_on(self, account: str, day: date) -> Mapping[str, int]:
        """Billed vehicle_data calls per car on `day`: restores the governor's daily caps."""
        t = api_requests
        query = (
            sa.select(t.c.vehicle, sa.func.count())
            .where(
                t.c.account == account,
                t.c.day == day,
                t.c.category == Category.DATA.value,
                t.c.billed.is_(True),
                t.c.vehicle.is_not(None),
            )
            .group_by(t.c.vehicle)
        )
        self.flush()
        with self.engine.connect() as conn:
            calls = {str(v): int(n) for v, n in conn.execute(query).all()}
        for e in self.waiting:
            if (
                e.account == account
                and e.vehicle is not None
                and e.category is Category.DATA
                and e.billed
                and _naive_utc(e.at).date() == day
            ):
                calls[e.vehicle] = calls.get(e.vehicle, 0) + 1
        return calls


def _month(e: LedgerEntry) -> str:
    at = _naive_utc(e.at)
    return f"{at.year:04d}-{at.month:02d}"


def _database_away(exc: BaseException) -> bool:
    """A connection-level failure (the database is down or restarting), not a refusal."""
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.DisconnectionError):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
