"""Local calendar days computed by the database, on SQLite and PostgreSQL alike.

Timestamps are stored as UTC without a zone; the pages group by the display zone's days.
SQLite knows no named zones, so the zone's offsets are worked out here (a few spans a year)
and handed to the database as a ``CASE`` over UTC instants: ``local = utc + offset``. Grouping
then happens in SQL and Python only sees one row per local day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

_DAY = timedelta(days=1)


def _offset(tz: ZoneInfo, utc_naive: datetime) -> int:
    off = utc_naive.replace(tzinfo=UTC).astimezone(tz).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


@lru_cache(maxsize=256)
def _year_changes(tz: ZoneInfo, year: int) -> tuple[tuple[datetime, int], ...]:
    """Instants (UTC naive) in `year` at which the zone's offset changes, with the new offset."""
    out: list[tuple[datetime, int]] = []
    day = datetime(year, 1, 1)
    before = _offset(tz, day)
    while day.year == year:
        nxt = day + _DAY
        after = _offset(tz, nxt)
        if after != before:
            lo, hi = day, nxt  # the change lies in (lo, hi]: halve it down to the second
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid <= lo:
                    break
                if _offset(tz, mid) == before:
                    lo = mid
                else:
                    hi = mid
            out.append((hi, after))
            before = after
        day = nxt
    return tuple(out)


def offset_spans(tz: ZoneInfo, lo: datetime, hi: datetime) -> list[tuple[datetime, int]]:
    """The zone's offsets (seconds) over [lo, hi]: the offset at `lo`, then each change."""
    spans = [(lo, _offset(tz, lo))]
    for year in range(lo.year, hi.year + 1):
        spans += [(at, off) for at, off in _year_changes(tz, year) if lo < at <= hi]
    return spans


def local_day(
    col: sa.ColumnElement[Any], tz: ZoneInfo, lo: datetime, hi: datetime, dialect: str
) -> sa.ColumnElement[str]:
    """SQL for the local day ('YYYY-MM-DD') of a UTC naive timestamp column within [lo, hi]."""
    spans = offset_spans(tz, lo, hi)
    offset: sa.ColumnElement[Any]
    if len(spans) == 1:
        offset = sa.literal(spans[0][1])
    else:
        # newest first: most rows are recent, and CASE stops at the first match
        offset = sa.case(*[(col >= at, off) for at, off in reversed(spans[1:])], else_=spans[0][1])
    if dialect == "postgresql":
        shifted = col + sa.func.make_interval(0, 0, 0, 0, 0, 0, offset)
        return sa.func.to_char(shifted, "YYYY-MM-DD")
    return sa.func.date(col, sa.cast(offset, sa.String) + " seconds")


def bounds(conn: sa.Connection, queries: list[sa.Select[Any]]) -> tuple[datetime, datetime] | None:
    """The earliest and latest of several ``SELECT min(x), max(x)`` queries, or None."""
    lows: list[datetime] = []
    highs: list[datetime] = []
    for q in queries:
        lo, hi = conn.execute(q).one()
        if lo is not None:
            lows.append(_dt(lo))
            highs.append(_dt(hi))
    if not lows:
        return None
    return min(lows), max(highs)


def _dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def parse_day(value: Any) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
