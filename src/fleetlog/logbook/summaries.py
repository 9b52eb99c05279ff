"""Drive summaries: what the analysis pages read from a drive's first and last position.

Theory of operation
-------------------
``fleetlog_drive_summaries`` holds, per closed drive, the state of charge and coordinates of
its start and end positions, and the two position ids they were read from. The pages over
a long history (battery, vampire drain, locations) read them instead of looking up two
positions per drive among millions.

The table is a cache and never the truth. A row is *valid* while its position ids equal the
drive's ``start_position_id`` and ``end_position_id``; the reads check that per row, in
SQL, and look the position up as before where a row is missing or stale
(:func:`checked`), so a page is never wrong, only slower until the row is written. Rows
are written

* by the logbook when it closes a drive (:func:`drive_closed`, in the same transaction);
* lazily for everything else — imports, an adopted TeslaMate database, drives edited or
  deleted behind fleetlog's back: a page first compares two counts (closed drives,
  summaries; at most once a minute per process while they agree) and, when they differ,
  :func:`refresh` writes the missing rows and drops the stale and orphaned ones in a short
  transaction of its own (:func:`refresh_if_behind`).

Deleted drives take their summary with them (``ON DELETE CASCADE``). A position edited in
place keeps its id, so that is the one change a row does not notice; the logbook edits a
position only while its drive is still open, before any summary exists.
"""

from __future__ import annotations

import logging
import time
import weakref
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import StaticPool

from fleetlog.logs import log_event
from fleetlog.store import tables as t

log = logging.getLogger(__name__)

End = Literal["start", "end"]
#: Position columns kept for each end of a drive (``start_<name>``, ``end_<name>``).
KEPT: tuple[str, ...] = ("battery_level", "latitude", "longitude")

_S = t.drive_summaries


def joined(drives: sa.FromClause = t.drives) -> sa.Join:
    """`drives` with their summaries (an outer join: a drive may have none yet)."""
    return drives.outerjoin(_S, _S.c.drive_id == drives.c.id)


def checked(end: End, name: str) -> sa.ColumnElement[Any]:
    """SQL for a position column at a drive's `end`: the summary's value where the summary
    was read from the drive's current position, else the position itself (by primary key).

    Use in a select from :func:`joined` ``t.drives``.
    """
    if name not in KEPT:
        raise ValueError(f"drive summaries keep {', '.join(KEPT)}, not {name!r}")
    pid = t.drives.c[f"{end}_position_id"]
    p = t.positions.alias(f"unsummarized_{end}")
    looked_up = sa.select(p.c[name]).where(p.c.id == pid).scalar_subquery()
    return sa.case((_S.c[f"{end}_position_id"] == pid, _S.c[f"{end}_{name}"]), else_=looked_up)


def _source(*where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """Summary rows computed from drives and positions, for closed drives matching `where`."""
    d = t.drives.c
    sp = t.positions.alias("sp")
    ep = t.positions.alias("ep")
    return (
        sa.select(
            d.id,
            d.start_position_id,
            d.end_position_id,
            *[sp.c[n] for n in KEPT],
            *[ep.c[n] for n in KEPT],
        )
        .select_from(
            t.drives.outerjoin(sp, sp.c.id == d.start_position_id).outerjoin(
                ep, ep.c.id == d.end_position_id
            )
        )
        .where(d.end_date.is_not(None), *where)
    )


_COLUMNS = [
    "drive_id",
    "start_position_id",
    "end_position_id",
    *[f"start_{n}" for n in KEPT],
    *[f"end_{n}" for n in KEPT],
]


def _insert(conn: sa.Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(_S)
    return sqlite.insert(_S)


def drive_closed(conn: sa.Connection, drive_id: int) -> None:
    """(Re)write the summary of a drive just closed, in the caller's transaction."""
    stmt = _insert(conn).from_select(_COLUMNS, _source(t.drives.c.id == drive_id))
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[_S.c.drive_id],
            set_={c: stmt.excluded[c] for c in _COLUMNS if c != "drive_id"},
        )
    )


def refresh(conn: sa.Connection) -> int:
    """Drop stale and orphaned summaries and write the missing ones; rows written."""
    d = t.drives.c
    stale = (
        sa.select(_S.c.drive_id)
        .join(t.drives, d.id == _S.c.drive_id)
        .where(
            sa.or_(
                d.end_date.is_(None),
                _S.c.start_position_id.is_distinct_from(d.start_position_id),
                _S.c.end_position_id.is_distinct_from(d.end_position_id),
            )
        )
    )
    conn.execute(sa.delete(_S).where(_S.c.drive_id.in_(stale)))
    orphaned = ~sa.exists(sa.select(1).where(d.id == _S.c.drive_id))
    conn.execute(sa.delete(_S).where(orphaned))
    missing = ~sa.exists(sa.select(1).where(_S.c.drive_id == d.id))
    stmt = _insert(conn).from_select(_COLUMNS, _source(missing))
    result = conn.execute(stmt.on_conflict_do_nothing(index_elements=[_S.c.drive_id]))
    return max(result.rowcount, 0)


def behind(conn: sa.Connection) -> bool:
    """Whether closed drives and summaries differ in number (two counts, no join)."""
    closed = sa.select(sa.func.count()).where(t.drives.c.end_date.is_not(None))
    kept = sa.select(sa.func.count()).select_from(_S)
    a, b = conn.execute(sa.select(closed.scalar_subquery(), kept.scalar_subquery())).one()
    return bool(a != b)


#: After finding the summaries complete, a process does not count again for this long: the
#: logbook writes a closed drive's row itself, so only imports and outside edits are left to
#: the refresh, and until it runs the reads look those drives' positions up (still right).
CHECK_EVERY_S = 60.0
_complete_at: weakref.WeakKeyDictionary[sa.Engine, float] = weakref.WeakKeyDictionary()


def refresh_if_behind(conn: sa.Connection) -> None:
    """Before a page reads summaries: :func:`refresh` in a transaction of its own when
    :func:`behind` (counted at most every :data:`CHECK_EVERY_S` once complete). Never fails
    the page: the reads are right without the rows (see :func:`checked`), so a lock, a
    concurrent refresh or a full pool only leaves the work for later."""
    engine = conn.engine
    if isinstance(engine.pool, StaticPool):
        return  # one shared connection (in-memory SQLite): no transaction of its own
    last = _complete_at.get(engine)
    if last is not None and time.monotonic() - last < CHECK_EVERY_S:
        return
    if not behind(conn):
        _complete_at[engine] = time.monotonic()
        return
    try:
        with engine.begin() as own:
            written = refresh(own)
    except (sa.exc.OperationalError, sa.exc.IntegrityError, sa.exc.TimeoutError) as exc:
        log_event(log, logging.INFO, "drive summaries not refreshed", error=type(exc).__name__)
        return
    log_event(log, logging.INFO, "drive summaries refreshed", written=written)
    _complete_at[engine] = time.monotonic()
