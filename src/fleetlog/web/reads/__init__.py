"""What the pages and the JSON API read: one module per subject, canonical units out.

Each function takes a connection and a :class:`~fleetlog.web.window.Window` and returns plain
data (dicts and lists of numbers, UTC naive datetimes) in TeslaMate's units: km, km/h, kWh,
°C, %. Conversion for display happens in :mod:`fleetlog.web.display`. Queries go through the
tables' indexes (car_id, dates, primary keys); nothing here scans ``positions`` except by
``drive_id`` for one drive.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa


def no_jit(conn: sa.Connection) -> None:
    """PostgreSQL: no JIT compilation for this request's transaction.

    The pages' aggregates cost enough for the planner to JIT-compile them, which took 20-70 ms
    a query on the ten-year benchmark, more than running them. ``SET LOCAL`` ends with the
    transaction, so the pooled connection goes back unchanged.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")


def as_float(value: Any) -> float | None:
    """Numeric columns come back as Decimal on some drivers; the pages want floats."""
    if value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return float(value)
    return float(value)


def place_label(
    fence: str | None, name: str | None, road: str | None, city: str | None
) -> str | None:
    """A geofence wins over the address; an address is its name, else road and city."""
    if fence:
        return fence
    if name:
        return name if not city or city in name else f"{name}, {city}"
    parts = [p for p in (road, city) if p]
    return ", ".join(parts) if parts else None
