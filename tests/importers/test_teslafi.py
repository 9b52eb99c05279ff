"""TeslaFi import: the fixture set built from the documented layout, on both databases."""

from __future__ import annotations

import filecmp
import importlib.util
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from fleetlog.importers import runs
from fleetlog.importers.replay import CarReplay
from fleetlog.importers.teslafi import TeslaFiError, import_teslafi
from fleetlog.importers.teslafi_csv import LocalClock, Reason, month_files
from fleetlog.store import make_engine, upgrade
from fleetlog.store import tables as t

FIXTURES = Path(__file__).parents[1] / "fixtures" / "teslafi"
DST_SET = FIXTURES / "two_cars_dst"
BERLIN = ZoneInfo("Europe/Berlin")
VIN_A, VIN_B = "5YJ3E7EA1KF000001", "5YJSA7E2XKF000002"


def _naive(*parts: int) -> datetime:
    return datetime(*parts)  # type: ignore[misc]


def _logbook(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the import wrote, by VIN instead of ids (ids differ after a rollback)."""
    with engine.connect() as conn:
        vins = dict(conn.execute(sa.select(t.cars.c.id, t.cars.c.vin)).all())
        d, cp, st = t.drives, t.charging_processes, t.states
        drives = [
            (vins[r.car_id], r.start_date, r.end_date, round(r.distance, 3), r.duration_min)
            for r in conn.execute(sa.select(d).order_by(d.c.start_date))
        ]
        charges = [
            (vins[r.car_id], r.start_date, r.end_date, r.charge_energy_added, r.duration_min)
            for r in conn.execute(sa.select(cp).order_by(cp.c.start_date))
        ]
        states = [
            (vins[r.car_id], r.state, r.start_date, r.end_date)
            for r in conn.execute(sa.select(st).order_by(st.c.car_id, st.c.start_date))
        ]
        positions = [
            (vins[r.car_id], r.date, float(r.latitude), r.drive_id is not None)
            for r in conn.execute(sa.select(t.positions).order_by(t.positions.c.date))
        ]
        samples = conn.execute(sa.select(sa.func.count()).select_from(t.charges)).scalar_one()
    return {
        "drives": drives,
        "charges": charges,
        "states": states,
        "positions": positions,
        "samples": [(samples,)],
    }


def test_fixture_set_imports_expected_drives_charges_and_rejections(
    migrated_engine: sa.Engine,
) -> None:
    report = import_teslafi(migrated_engine, DST_SET, "Europe/Berlin")

    assert [f.name for f in report.files] == [
        "TeslaFi32019.csv",
        "TeslaFi92019.csv",
        "TeslaFi102019.csv",
        "TeslaFi112019.csv",
    ]
    assert report.ignored == ["notes.txt"]
    empty = report.files[-1]
    assert (empty.rows, empty.imported, empty.rejected) == (0, 0, 0)
    assert set(report.cars) == {VIN_A, VIN_B}
    assert report.imported == 623 and report.rejected == 6

    book = _logbook(migrated_engine)
    assert book["drives"] == [
        # across the spring-forward gap: 01:50 CET → 03:10 CEST is 20 minutes
        (VIN_A, _naive(2019, 3, 31, 0, 50), _naive(2019, 3, 31, 1, 10), 20.0, 20),
        # from September's file into October's: one drive, not two
        (VIN_A, _naive(2019, 9, 30, 21, 50), _naive(2019, 9, 30, 22, 15), 25.0, 25),
        # across the fall-back hour: 02:40 CEST → 02:20 CET is 40 minutes
        (VIN_A, _naive(2019, 10, 27, 0, 40), _naive(2019, 10, 27, 1, 20), 40.0, 40),
        (VIN_B, _naive(2019, 10, 28, 7, 14), _naive(2019, 10, 28, 7, 44), 40.0, 30),
    ]
    assert [(c[0], c[1], float(c[3]), c[4]) for c in book["charges"]] == [
        (VIN_A, _naive(2019, 9, 30, 12, 11), 11.0, 60),
        (VIN_B, _naive(2019, 10, 28, 7, 48), 10.5, 90),
        (VIN_A, _naive(2019, 10, 31, 9, 3), 60.0, 30),
    ]
    # states are contiguous, closed and never overlap (one car at a time)
    for vin in (VIN_A, VIN_B):
        rows = [s for s in book["states"] if s[0] == vin]
        assert all(s[3] is not None for s in rows)
        assert all(a[3] == b[2] for a, b in itertools.pairwise(rows))
        assert [s[1] for s in rows][:2] == ["asleep", "online"]

    report_rows = [
        (r.file_name, r.row, r.reason, r.fields)
        for r in runs.rejections(migrated_engine, report.run_id)
    ]
    assert report_rows == [
        ("TeslaFi102019.csv", 187, "column_count_mismatch", ()),
        ("TeslaFi102019.csv", 188, "invalid_date", ("Date",)),
        ("TeslaFi102019.csv", 189, "invalid_fields", ("battery_level",)),
        ("TeslaFi102019.csv", 190, "invalid_fields", ("latitude",)),
        ("TeslaFi102019.csv", 191, "invalid_fields", ("state",)),
        ("TeslaFi32019.csv", 78, "nonexistent_local_time", ("Date",)),
    ]
    with migrated_engine.connect() as conn:
        run = conn.execute(sa.select(t.import_runs)).mappings().one()
        assert run["status"] == "complete" and run["timezone"] == "Europe/Berlin"
        assert (
            conn.execute(
                sa.select(sa.func.count()).select_from(t.import_file_checkpoints)
            ).scalar_one()
            == 4
        )
        cars = conn.execute(sa.select(t.cars).order_by(t.cars.c.vin)).mappings().all()
        assert [(c["vin"], c["eid"], c["vid"], c["name"], c["model"]) for c in cars] == [
            (VIN_A, 11, 101, "Alpha", "3"),
            (VIN_B, 22, 202, "Bravo", "S"),
        ]


def test_an_interrupted_import_resumes_to_the_same_result(
    migrated_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_feed = CarReplay.feed
    fed = {"n": 0}

    def crashing_feed(self: CarReplay, *args: Any) -> None:
        fed["n"] += 1
        if fed["n"] == 400:  # in October's file, after March and September committed
            raise KeyboardInterrupt
        real_feed(self, *args)

    monkeypatch.setattr(CarReplay, "feed", crashing_feed)
    with pytest.raises(KeyboardInterrupt):
        import_teslafi(migrated_engine, DST_SET, "Europe/Berlin")
    monkeypatch.setattr(CarReplay, "feed", real_feed)
    with migrated_engine.connect() as conn:
        assert conn.execute(sa.select(t.import_runs.c.status)).scalar_one() == "running"
        names = conn.execute(sa.select(t.import_file_checkpoints.c.file_name)).scalars().all()
        assert sorted(names) == ["TeslaFi32019.csv", "TeslaFi92019.csv"]
        # the drive over the month boundary is open, waiting for October
        assert (
            conn.execute(
                sa.select(sa.func.count())
                .select_from(t.drives)
                .where(t.drives.c.end_date.is_(None))
            ).scalar_one()
            == 1
        )

    with pytest.raises(TeslaFiError, match="same time zone"):
        import_teslafi(migrated_engine, DST_SET, "Europe/Paris")
    resumed = import_teslafi(migrated_engine, DST_SET, "Europe/Berlin")
    assert resumed.resumed
    assert [f.already_done for f in resumed.files] == [True, True, False, False]
    interrupted = _logbook(migrated_engine)

    fresh_engine = make_engine(f"sqlite:///{tmp_path}/fresh.db")
    upgrade(fresh_engine)
    import_teslafi(fresh_engine, DST_SET, "Europe/Berlin")
    assert interrupted == _logbook(fresh_engine)
    fresh_engine.dispose()


def test_only_rows_before_existing_data_are_imported(migrated_engine: sa.Engine) -> None:
    live_start = _naive(2019, 10, 28, 0, 0)
    with migrated_engine.begin() as conn:
        settings_id = conn.execute(
            sa.insert(t.car_settings).values().returning(t.car_settings.c.id)
        ).scalar_one()
        car_id = conn.execute(
            sa.insert(t.cars)
            .values(
                eid=11,
                vid=101,
                vin=VIN_A,
                settings_id=settings_id,
                inserted_at=live_start,
                updated_at=live_start,
            )
            .returning(t.cars.c.id)
        ).scalar_one()
        conn.execute(
            sa.insert(t.states).values(car_id=car_id, state="online", start_date=live_start)
        )
    report = import_teslafi(migrated_engine, DST_SET, "Europe/Berlin")
    assert report.date_limit == live_start.replace(tzinfo=UTC)
    assert report.after_limit > 0
    assert report.cars == {VIN_A: car_id}  # car B has nothing before the limit
    book = _logbook(migrated_engine)
    assert max(d[2] for d in book["drives"]) < live_start
    assert all(c[1] < live_start for c in book["charges"])
    with migrated_engine.connect() as conn:
        open_states = (
            conn.execute(sa.select(t.states.c.start_date).where(t.states.c.end_date.is_(None)))
            .scalars()
            .all()
        )
    assert open_states == [live_start]  # the live state is untouched, still the open one

    again = import_teslafi(migrated_engine, DST_SET, "Europe/Berlin")
    assert again.imported == 0  # the first import's rows now set the limit
    assert _logbook(migrated_engine) == book


def test_unknown_time_zone_and_missing_directory(migrated_engine: sa.Engine) -> None:
    with pytest.raises(TeslaFiError, match="unknown time zone"):
        import_teslafi(migrated_engine, DST_SET, "Europe/Atlantis")
    with pytest.raises(TeslaFiError, match="not a directory"):
        import_teslafi(migrated_engine, DST_SET / "nope", "UTC")


def test_local_clock_resolves_the_repeated_hour_by_order() -> None:
    clock = LocalClock(BERLIN)
    first = clock.to_utc(_naive(2019, 10, 27, 2, 30))
    assert first == datetime(2019, 10, 27, 0, 30, tzinfo=UTC)  # CEST, first pass
    again = clock.to_utc(_naive(2019, 10, 27, 2, 10))
    assert again == datetime(2019, 10, 27, 1, 10, tzinfo=UTC)  # CET, second pass
    assert clock.to_utc(_naive(2019, 10, 27, 2, 5)) is Reason.AMBIGUOUS_LOCAL_TIME
    assert clock.to_utc(_naive(2019, 10, 27, 1, 0)) is Reason.OUT_OF_ORDER
    assert clock.to_utc(_naive(2019, 10, 27, 3, 0)) == datetime(2019, 10, 27, 2, 0, tzinfo=UTC)
    spring = LocalClock(BERLIN)
    assert spring.to_utc(_naive(2019, 3, 31, 2, 30)) is Reason.NONEXISTENT_LOCAL_TIME
    assert spring.to_utc(_naive(2019, 3, 31, 3, 0)) == datetime(2019, 3, 31, 1, 0, tzinfo=UTC)
    assert spring.to_utc(_naive(2019, 3, 31, 3, 0)) - timedelta(0) == datetime(
        2019, 3, 31, 1, 0, tzinfo=UTC
    )


def test_file_names(tmp_path: Path) -> None:
    for name in (
        "TeslaFi12018.csv",
        "TeslaFi112017.csv",
        "112023.csv",
        "teslafi52018.CSV",
        "TeslaFi132019.csv",
        "data.csv",
    ):
        (tmp_path / name).write_text("")
    files, other = month_files(tmp_path)
    assert [(f.name, f.year, f.month) for f in files] == [
        ("TeslaFi112017.csv", 2017, 11),
        ("TeslaFi12018.csv", 2018, 1),
        ("teslafi52018.CSV", 2018, 5),
        ("112023.csv", 2023, 11),
    ]
    assert sorted(p.name for p in other) == ["TeslaFi132019.csv", "data.csv"]


def test_the_builder_reproduces_the_checked_in_fixtures(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("teslafi_build", FIXTURES / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build_two_cars_dst(tmp_path)
    names = sorted(p.name for p in DST_SET.iterdir())
    _match, mismatch, errors = filecmp.cmpfiles(DST_SET, tmp_path, names, shallow=False)
    assert (mismatch, errors) == ([], [])
