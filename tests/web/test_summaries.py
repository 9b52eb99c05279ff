"""Drive summaries (``fleetlog_drive_summaries``) never change what a page shows.

On the seeded weeks (both databases) the reads that use the summaries — battery charge
levels, vampire drain, locations — equal the reference computations from positions: with
every summary written, with none, with stale ones, after the logbook closes a new drive and
after an import into a fresh database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from tests.web import _reference as ref
from tests.web.test_reads_sql import END, _windows, same

from fleetlog.importers.table_copy import DatabaseSource, copy_logbook
from fleetlog.logbook import summaries
from fleetlog.logbook.records import Position
from fleetlog.logbook.writer import CarLogbook
from fleetlog.store import make_engine, upgrade
from fleetlog.store import tables as t
from fleetlog.vehicle import effects as fx
from fleetlog.web.reads import battery, idle, places
from fleetlog.web.seed import seed
from fleetlog.web.window import Window

S = t.drive_summaries


@pytest.fixture
def history(migrated_engine: sa.Engine) -> Iterator[sa.Engine]:
    seed(migrated_engine, cars=2, days=40, seed=11, end=END)
    yield migrated_engine


def _pages(conn: sa.Connection, window: Window) -> dict[str, Any]:
    visited = sorted(places.visited(conn, window), key=lambda v: (v["address_id"], v["place"]))
    return {
        "levels": battery.charge_levels(conn, window),
        "chart": battery.charge_level_chart(conn, window, max_points=40),
        "chart_all": battery.charge_level_chart(conn, window, max_points=100_000),
        "vampire_rated": idle.vampire_drain(conn, window, "rated"),
        "vampire_ideal": idle.vampire_drain(conn, window, "ideal"),
        "points": sorted(places.route_points(conn, window)),
        "points_few": len(places.route_points(conn, window, limit=7)),
        "visited": visited,
    }


def _reference(conn: sa.Connection, window: Window) -> dict[str, Any]:
    levels = ref.charge_levels_reference(conn, window)
    visited = sorted(
        ref.visited_reference(conn, window), key=lambda v: (v["address_id"], v["place"])
    )
    return {
        "levels": levels,
        # the buckets are checked against the levels in test_reads_sql; here: same as before
        "chart": battery.charge_level_chart(conn, window, max_points=40),
        "chart_all": {"points": levels},
        "vampire_rated": ref.vampire_drain_reference(conn, window, "rated"),
        "vampire_ideal": ref.vampire_drain_reference(conn, window, "ideal"),
        "points": sorted(ref.route_points_reference(conn, window)),
        "points_few": len(ref.route_points_reference(conn, window, limit=7)),
        "visited": visited,
    }


def _all_equal_reference(engine: sa.Engine) -> dict[str, Any]:
    """Each window's pages equal the reference; the pages of the last window."""
    got: dict[str, Any] = {}
    for window in _windows(ZoneInfo("Europe/Berlin")):
        with engine.connect() as conn:
            got = _pages(conn, window)
        with engine.connect() as conn:
            expected = _reference(conn, window)
        # the bucketed chart has no per-row oracle: it must only agree across cache states
        got_chart, exp_chart = got.pop("chart"), expected.pop("chart")
        same(expected, got)
        got["chart"] = got_chart
        assert got_chart == exp_chart or window.car_id is None
    return got


def _kept(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(S)).scalar_one())


def _closed(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(t.drives.c.end_date.is_not(None))
            ).scalar_one()
        )


def _summaries_match_positions(engine: sa.Engine) -> None:
    d = t.drives.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(S, d.start_position_id.label("dsp"), d.end_position_id.label("dep")).join(
                t.drives, d.id == S.c.drive_id
            )
        ).mappings()
        for r in rows:
            assert (r["start_position_id"], r["end_position_id"]) == (r["dsp"], r["dep"])
            for end in ("start", "end"):
                p = (
                    conn.execute(
                        sa.select(t.positions).where(t.positions.c.id == r[f"{end}_position_id"])
                    )
                    .mappings()
                    .one()
                )
                for name in summaries.KEPT:
                    assert r[f"{end}_{name}"] == p[name], (r["drive_id"], end, name)


def test_a_page_fills_the_summaries_and_reads_the_same(history: sa.Engine) -> None:
    assert _kept(history) == 0
    first = _all_equal_reference(history)  # read while the summaries are being written
    assert _kept(history) == _closed(history) > 100
    _summaries_match_positions(history)
    assert _all_equal_reference(history) == first


def test_stale_summaries_are_not_used(history: sa.Engine) -> None:
    with history.begin() as conn:
        summaries.refresh(conn)
    before = _all_equal_reference(history)
    # Nonsense values under the drives' own position ids are read: the cache is really used.
    with history.begin() as conn:
        conn.execute(sa.update(S).values(start_battery_level=3, end_battery_level=4))
    with history.connect() as conn:
        levels = battery.charge_levels(conn, Window(1, None, None, ZoneInfo("UTC")))
    assert {3, 4} <= {p["battery_level"] for p in levels}
    # Under other position ids (the drive was edited since) they are not: the pages look
    # the positions up and equal the reference again.
    with history.begin() as conn:
        conn.execute(
            sa.update(S).values(
                start_position_id=S.c.start_position_id + 1,
                end_position_id=None,
                start_latitude=0,
                end_longitude=0,
            )
        )
    assert _kept(history) == _closed(history)  # nothing missing: no refresh runs
    assert _all_equal_reference(history) == before
    with history.begin() as conn:
        summaries.refresh(conn)  # replaces every stale row
    _summaries_match_positions(history)
    assert _kept(history) == _closed(history)


def test_deleted_drives_take_their_summaries(history: sa.Engine) -> None:
    with history.begin() as conn:
        summaries.refresh(conn)
        gone = conn.execute(sa.select(sa.func.min(t.drives.c.id))).scalar_one()
        conn.execute(
            sa.update(t.positions).where(t.positions.c.drive_id == gone).values(drive_id=None)
        )
        conn.execute(sa.delete(t.drives).where(t.drives.c.id == gone))
    assert _kept(history) == _closed(history)
    _all_equal_reference(history)


def _pos(at: datetime, km: float, level: int) -> Position:
    return Position(
        date=at,
        latitude=53.55 + km / 100,
        longitude=9.99,
        odometer=20_000.0 + km,
        speed=50.0,
        power=12.0,
        ideal_battery_range_km=300.0 - km,
        rated_battery_range_km=290.0 - km,
        battery_level=level,
        outside_temp=5.0,
    )


def test_a_drive_closed_by_the_logbook_gets_its_summary(history: sa.Engine) -> None:
    with history.begin() as conn:
        summaries.refresh(conn)
    start = END.replace(tzinfo=UTC) + timedelta(hours=8)
    book = CarLogbook(history, 1)
    first, mid = _pos(start, 0, 71), _pos(start + timedelta(minutes=9), 6, 69)
    last = _pos(start + timedelta(minutes=20), 14, 66)
    book.apply([fx.OpenDrive(1, first), fx.InsertPosition(first, 1)])
    book.apply([fx.InsertPosition(mid, 1)])
    book.apply([fx.InsertPosition(last, 1), fx.CloseDrive(1, last.date, "P")])
    assert _kept(history) == _closed(history)  # written with the drive, not by a page
    _summaries_match_positions(history)
    _all_equal_reference(history)
    with history.connect() as conn:
        levels = battery.charge_levels(conn, Window(1, None, None, ZoneInfo("UTC")))
    assert levels[-2:] == [
        {"date": first.date.replace(tzinfo=None), "battery_level": 71},
        {"date": last.date.replace(tzinfo=None), "battery_level": 66},
    ]


def test_an_imported_logbook_is_summarized_on_first_read(
    history: sa.Engine, tmp_path: Path
) -> None:
    with history.begin() as conn:
        summaries.refresh(conn)
    target = make_engine(f"sqlite:///{tmp_path}/imported.db")
    upgrade(target)
    source = DatabaseSource(history)
    try:
        copy_logbook(source, target, "summaries")
    finally:
        source.close()
    try:
        assert _kept(target) == 0  # a cache: not part of a logbook copy
        got = _all_equal_reference(target)
        assert _kept(target) == _closed(target)
        _summaries_match_positions(target)
        assert got == _all_equal_reference(history)
    finally:
        target.dispose()


def test_only_kept_columns_can_be_read() -> None:
    with pytest.raises(ValueError, match="not 'odometer'"):
        summaries.checked("start", "odometer")


def test_a_locked_database_leaves_the_page_right_and_unsummarized(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    engine = make_engine(f"sqlite:///{path}", timeout_s=0.2)
    try:
        upgrade(engine)
        seed(engine, cars=1, days=6, seed=3, end=END)
        window = Window(1, None, None, ZoneInfo("Europe/Berlin"))
        locker = sqlite3.connect(path, isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
            with engine.connect() as conn:
                got = _pages(conn, window)
                expected = _reference(conn, window)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert _kept(engine) == 0
        got.pop("chart"), expected.pop("chart")
        same(expected, got)
        with engine.connect() as conn:
            battery.charge_levels(conn, window)  # the lock is gone: this read fills them
        assert _kept(engine) == _closed(engine) > 10
    finally:
        engine.dispose()
