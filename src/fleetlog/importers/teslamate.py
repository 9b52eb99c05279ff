"""Import a TeslaMate database (or another fleetlog database) into this one.

``fleetlog import teslamate postgresql://user@host/teslamate`` copies every table of the
logbook with its ids (see :mod:`fleetlog.importers.table_copy`), resumably, with a
progress bar. The source is only read. The encrypted tokens are copied as they are:
with the same ``ENCRYPTION_KEY`` they stay readable.
"""

from __future__ import annotations

import sqlalchemy as sa

from fleetlog.importers import runs
from fleetlog.importers.progress import Progress
from fleetlog.importers.table_copy import CopyError, CopyReport, DatabaseSource, copy_logbook
from fleetlog.store import make_engine, masked_url


def import_teslamate(
    source_url: str,
    target: sa.Engine,
    *,
    progress: Progress | None = None,
    now: runs.Clock = runs.wall_clock,
) -> CopyReport:
    """Copy the database at `source_url` into `target` (fresh, or this import resumed)."""
    source_engine = make_engine(source_url, pool_size=1)
    try:
        if source_engine.url == target.url:
            raise CopyError("the source and the target are the same database")
        try:
            source = DatabaseSource(source_engine)
        except sa.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise CopyError(f"cannot read {masked_url(source_engine)}: {reason}") from None
        try:
            if not source.has("cars") or not source.has("positions"):
                raise CopyError(f"{masked_url(source_engine)} holds no TeslaMate logbook")
            key = runs.source_key("teslamate", masked_url(source_engine))
            return copy_logbook(source, target, key, progress=progress, now=now)
        finally:
            source.close()
    finally:
        source_engine.dispose()
