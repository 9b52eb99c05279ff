"""GPX per drive and the drives/charges CSV logs."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from types import ModuleType

import pytest
import sqlalchemy as sa

from fleetlog.export import DriveNotFound, gpx_for_drive
from fleetlog.export.gpx import GPX_NS, drive_file_name
from fleetlog.export.logbook_csv import write_charges_csv, write_drives_csv
from fleetlog.store import tables as t

NS = {"g": GPX_NS}


@pytest.fixture
def engine_with_history(migrated_engine: sa.Engine, logbook: ModuleType) -> sa.Engine:
    logbook.populate(migrated_engine)
    return migrated_engine


def test_gpx_track_has_every_position_of_the_drive(engine_with_history: sa.Engine) -> None:
    engine = engine_with_history
    with engine.connect() as conn:
        drive = (
            conn.execute(
                sa.select(t.drives).where(t.drives.c.duration_min == 40)  # the fall-back drive
            )
            .mappings()
            .one()
        )
        count = conn.execute(
            sa.select(sa.func.count()).where(t.positions.c.drive_id == drive["id"])
        ).scalar_one()
    root = ET.fromstring(gpx_for_drive(engine, drive["id"]))
    points = root.findall("g:trk/g:trkseg/g:trkpt", NS)
    assert len(points) == count == 81
    times = [p.find("g:time", NS).text for p in points]  # type: ignore[union-attr]
    assert times[0] == "2019-10-27T00:40:00Z" and times[-1] == "2019-10-27T01:20:00Z"
    assert times == sorted(times)  # UTC: no jump back at the repeated hour
    assert -90 <= float(points[0].get("lat", "x")) <= 90
    assert "Alpha" in root.findtext("g:trk/g:name", namespaces=NS, default="")
    assert drive_file_name(engine, drive["id"]) == f"drive-{drive['id']}-2019-10-27.gpx"
    with pytest.raises(DriveNotFound):
        gpx_for_drive(engine, 999999)


def test_drives_and_charges_csv(engine_with_history: sa.Engine) -> None:
    out = io.StringIO()
    assert write_drives_csv(engine_with_history, out, tz="Europe/Berlin") == 4
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["distance_km"] for r in rows] == ["20.00", "25.00", "40.00", "40.00"]
    # local times: the fall-back drive starts 02:40 CEST and ends 02:20 CET
    assert (rows[2]["start"], rows[2]["end"]) == ("2019-10-27 02:40", "2019-10-27 02:20")
    assert rows[0]["from"] == "Home" and rows[0]["purpose"] == ""

    out = io.StringIO()
    assert write_charges_csv(engine_with_history, out) == 3
    charges = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [c["energy_added_kwh"] for c in charges] == ["11.00", "10.50", "60.00"]
    assert charges[0]["place"] == "Home" and charges[0]["cost"] == "3.47"
    out = io.StringIO()
    from datetime import UTC, datetime

    n = write_charges_csv(
        engine_with_history, out, since=datetime(2019, 10, 1, tzinfo=UTC), car_id=1
    )
    assert n == 1
