"""Filling in addresses after the fact, off the logging path.

Drives and charges are stored whether or not an address could be found; this task
looks for the gaps and fills them:

* rows whose address is NULL (geocoder off or failing at the time, imports, an adopted
  TeslaMate database), and, when the geocoder is Nominatim, rows that only have a
  city-level offline address;
* after the ``settings.language`` changes, every OpenStreetMap address is fetched again
  in the new language (Nominatim's lookup, 50 places a request) and updated in place.
  The language the cache was written in is kept in ``fleetlog_meta``.

Points within about ten metres of each other share one request. Each pass stops early
after a run of consecutive failures (the service is down: try again next pass), and a
geocoder that hangs only ever delays this task — no database transaction is open while
it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from fleetlog.logs import log_event
from fleetlog.places.addresses import OFFLINE, OSM_TYPES, save_address, unknown_address
from fleetlog.places.geocoder import Geocoder, GeocoderError
from fleetlog.store import tables as t
from fleetlog.store.meta import read_meta, write_meta

log = logging.getLogger(__name__)

ADDRESS_LANGUAGE_KEY = "address_language"
DEFAULT_LIMIT = 5000
FUSE_FAILURES = 5
_GROUPING_DECIMALS = 4  # ~11 m: one request for points this close


def current_language(conn: sa.Connection) -> str:
    """The address language from the settings table (``en`` when there is no row)."""
    language = conn.execute(sa.select(t.settings.c.language).limit(1)).scalar_one_or_none()
    return language or "en"


@dataclass(frozen=True, slots=True)
class MissingAddress:
    """One address column to fill: ``<table>.<column>`` of row `row_id`, at a point."""

    table: str
    column: str
    row_id: int
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What one pass did."""

    found: int = 0  # address columns that needed an address
    filled: int = 0  # of those, filled now
    requests: int = 0  # geocoder calls made
    failures: int = 0
    stopped_early: bool = False  # too many failures in a row: the rest waits for next pass


def _offline_ids() -> sa.Select[tuple[int]]:
    return sa.select(t.addresses.c.id).where(t.addresses.c.osm_type == OFFLINE)


def _targets() -> list[tuple[sa.Table, sa.Column[int], sa.Column[int], sa.ColumnElement[bool]]]:
    d, cp = t.drives, t.charging_processes
    return [
        (d, d.c.end_address_id, d.c.end_position_id, d.c.end_date.is_not(None)),
        (d, d.c.start_address_id, d.c.start_position_id, d.c.end_date.is_not(None)),
        (cp, cp.c.address_id, cp.c.position_id, sa.true()),
    ]


def find_missing(
    conn: sa.Connection, *, replace_offline: bool, limit: int = DEFAULT_LIMIT
) -> list[MissingAddress]:
    """Address columns to fill, newest rows first, at most `limit` in all."""
    p = t.positions
    out: list[MissingAddress] = []
    for table, column, position, closed in _targets():
        if len(out) >= limit:
            break
        wanted: sa.ColumnElement[bool] = column.is_(None)
        if replace_offline:
            wanted = sa.or_(wanted, column.in_(_offline_ids()))
        rows = conn.execute(
            sa.select(table.c.id, p.c.latitude, p.c.longitude)
            .join(p, p.c.id == position)
            .where(wanted, closed)
            .order_by(table.c.id.desc())
            .limit(limit - len(out))
        ).all()
        out.extend(
            MissingAddress(table.name, column.name, row_id, float(lat), float(lon))
            for row_id, lat, lon in rows
        )
    return out


def _fill(conn: sa.Connection, targets: Sequence[MissingAddress], address_id: int) -> int:
    filled = 0
    for target in targets:
        table = t.metadata.tables[target.table]
        column = table.c[target.column]
        # Only fill what is still a gap: a writer may have set it meanwhile.
        still_missing = sa.or_(column.is_(None), column.in_(_offline_ids()))
        result = conn.execute(
            sa.update(table)
            .where(table.c.id == target.row_id, still_missing, column.is_distinct_from(address_id))
            .values({target.column: address_id})
        )
        filled += result.rowcount
    return filled


async def repair_addresses(
    engine: sa.Engine,
    geocoder: Geocoder,
    *,
    language: str | None = None,
    limit: int = DEFAULT_LIMIT,
    max_failures: int = FUSE_FAILURES,
) -> RepairReport:
    """One pass: geocode the points of rows without an address and store the results."""
    replace_offline = geocoder.source != OFFLINE
    with engine.connect() as conn:
        targets = find_missing(conn, replace_offline=replace_offline, limit=limit)
        language = language or current_language(conn)
    groups: dict[tuple[float, float], list[MissingAddress]] = defaultdict(list)
    for target in targets:
        key = (
            round(target.latitude, _GROUPING_DECIMALS),
            round(target.longitude, _GROUPING_DECIMALS),
        )
        groups[key].append(target)
    filled = requests = failures = in_a_row = 0
    stopped = False
    for members in groups.values():
        first = members[0]
        requests += 1
        try:
            address = await geocoder.reverse(first.latitude, first.longitude, language)
        except GeocoderError as exc:
            failures += 1
            in_a_row += 1
            log_event(
                log,
                logging.WARNING,
                "geocoding failed",
                lat=first.latitude,
                lon=first.longitude,
                error=str(exc),
            )
            if in_a_row >= max_failures:
                stopped = True
                break
            continue
        in_a_row = 0
        with engine.begin() as conn:
            address_id = save_address(conn, address or unknown_address())
            filled += _fill(conn, members, address_id)
    report = RepairReport(len(targets), filled, requests, failures, stopped)
    if targets:
        log_event(
            log,
            logging.INFO if not stopped else logging.WARNING,
            "address repair pass",
            found=report.found,
            filled=report.filled,
            requests=report.requests,
            failures=report.failures,
            stopped_early=report.stopped_early,
        )
    return report


async def refresh_language(
    engine: sa.Engine, geocoder: Geocoder, *, language: str | None = None
) -> int:
    """Re-fetch every OpenStreetMap address when the language changed; returns how many.

    The first run on a database only records the language (its addresses are taken to be
    in it). :class:`GeocoderError` propagates: the language stays marked as not yet done.
    """
    a = t.addresses
    with engine.begin() as conn:
        language = language or current_language(conn)
        stored = read_meta(conn).get(ADDRESS_LANGUAGE_KEY)
        if stored is None:
            write_meta(conn, ADDRESS_LANGUAGE_KEY, language)
            return 0
        if stored == language:
            return 0
        known = conn.execute(
            sa.select(a.c.osm_type, a.c.osm_id).where(a.c.osm_type.in_(OSM_TYPES))
        ).all()
    fresh = await geocoder.lookup([(kind, int(osm_id)) for kind, osm_id in known], language)
    with engine.begin() as conn:
        for address in fresh:
            save_address(conn, address)
        write_meta(conn, ADDRESS_LANGUAGE_KEY, language)
    log_event(log, logging.INFO, "addresses refreshed", language=language, count=len(fresh))
    return len(fresh)


class AddressRepair:
    """The long-running task: a pass every `interval_s`, or sooner when poked."""

    def __init__(
        self,
        engine: sa.Engine,
        geocoder: Geocoder,
        *,
        interval_s: float = 3600.0,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.engine = engine
        self.geocoder = geocoder
        self.interval_s = interval_s
        self.limit = limit
        self._wake = asyncio.Event()
        self.last_report: RepairReport | None = None

    def poke(self) -> None:
        """Run a pass soon (e.g. after a drive closed without an address)."""
        self._wake.set()

    async def run_once(self) -> RepairReport:
        try:
            await refresh_language(self.engine, self.geocoder)
        except GeocoderError as exc:
            log_event(log, logging.WARNING, "address language refresh postponed", error=str(exc))
        self.last_report = await repair_addresses(self.engine, self.geocoder, limit=self.limit)
        return self.last_report

    async def run(self) -> None:
        """Forever; a failing pass is logged and the next one comes as usual."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_event(log, logging.ERROR, "address repair pass failed", error=repr(exc))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
