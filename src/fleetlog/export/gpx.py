"""One drive as a GPX 1.1 track: what map tools and photo taggers read.

:func:`gpx_for_drive` is shared by the web app's download and ``fleetlog export gpx``.
Every position of the drive becomes a track point with its time (UTC, ``Z``) and, when
known, its elevation; speed and battery level go into the point's ``<extensions>`` in
fleetlog's own namespace, which GPX readers ignore when they do not know it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from xml.sax.saxutils import escape

import sqlalchemy as sa

from fleetlog.store import tables as t

GPX_NS = "http://www.topografix.com/GPX/1/1"
FLEETLOG_NS = "https://fleetlog.invalid/gpx/1"


class DriveNotFound(LookupError):
    """No drive with that id."""

    user_facing = True


def _time(value: datetime) -> str:
    # TeslaMate's timestamps are UTC without a zone
    return value.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


def drive_file_name(engine: sa.Engine, drive_id: int) -> str:
    """A download name like ``drive-42-2024-05-01.gpx``."""
    with engine.connect() as conn:
        start = conn.execute(
            sa.select(t.drives.c.start_date).where(t.drives.c.id == drive_id)
        ).scalar()
    day = start.strftime("%Y-%m-%d") if start is not None else "unknown"
    return f"drive-{drive_id}-{day}.gpx"


def gpx_for_drive(engine: sa.Engine, drive_id: int) -> str:
    """The drive's positions as a GPX 1.1 document; raises :class:`DriveNotFound`."""
    d, p, c = t.drives, t.positions, t.cars
    with engine.connect() as conn:
        drive = conn.execute(
            sa.select(d.c.id, d.c.start_date, d.c.end_date, d.c.distance, c.c.name, c.c.vin)
            .join(c, c.c.id == d.c.car_id)
            .where(d.c.id == drive_id)
        ).first()
        if drive is None:
            raise DriveNotFound(f"no drive {drive_id}")
        points = conn.execute(
            sa.select(
                p.c.date, p.c.latitude, p.c.longitude, p.c.elevation, p.c.speed, p.c.battery_level
            )
            .where(p.c.drive_id == drive_id)
            .order_by(p.c.date, p.c.id)
        ).all()
    car = drive.name or drive.vin
    title = f"{car}: drive {drive.id} on {drive.start_date:%Y-%m-%d %H:%M} UTC"
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<gpx version="1.1" creator="fleetlog" xmlns="{GPX_NS}" xmlns:fleetlog="{FLEETLOG_NS}">',
        f"  <metadata><name>{escape(title)}</name>"
        f"<time>{_time(drive.start_date)}</time></metadata>",
        "  <trk>",
        f"    <name>{escape(title)}</name>",
        "    <type>driving</type>",
        "    <trkseg>",
    ]
    for row in points:
        inner = []
        if row.elevation is not None:
            inner.append(f"<ele>{row.elevation}</ele>")
        inner.append(f"<time>{_time(row.date)}</time>")
        ext = []
        if row.speed is not None:
            ext.append(f"<fleetlog:speed_kmh>{row.speed}</fleetlog:speed_kmh>")
        if row.battery_level is not None:
            ext.append(f"<fleetlog:battery_level>{row.battery_level}</fleetlog:battery_level>")
        if ext:
            inner.append(f"<extensions>{''.join(ext)}</extensions>")
        lines.append(
            f'      <trkpt lat="{float(row.latitude):.6f}" lon="{float(row.longitude):.6f}">'
            f"{''.join(inner)}</trkpt>"
        )
    lines += ["    </trkseg>", "  </trk>", "</gpx>", ""]
    return "\n".join(lines)
