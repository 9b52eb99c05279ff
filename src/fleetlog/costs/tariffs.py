"""Tariffs in the database: one per geofence, its windows in order (``fleetlog_tariffs``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from fleetlog.costs.tariff import Season, Tariff, Window
from fleetlog.store import tables as t


def _dec(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def get_tariff(conn: sa.Connection, geofence_id: int) -> Tariff | None:
    """The tariff of a geofence, or None when it bills flat (or not at all)."""
    tt, tw = t.tariffs, t.tariff_windows
    row = conn.execute(sa.select(tt).where(tt.c.geofence_id == geofence_id)).mappings().first()
    if row is None:
        return None
    windows = conn.execute(
        sa.select(tw).where(tw.c.tariff_id == row["id"]).order_by(tw.c.position)
    ).mappings()
    return Tariff(
        currency=row["currency"],
        time_zone=row["time_zone"],
        default_price=_dec(row["default_price"]),
        windows=tuple(
            Window(
                weekdays=w["weekdays"],
                start_minute=w["start_minute"],
                end_minute=w["end_minute"],
                price=Decimal(str(w["price"])),
                season=(
                    None
                    if w["season_start"] is None or w["season_end"] is None
                    else Season(w["season_start"], w["season_end"])
                ),
            )
            for w in windows
        ),
    )


def set_tariff(
    conn: sa.Connection, geofence_id: int, tariff: Tariff, *, now: datetime | None = None
) -> None:
    """Store `tariff` as the geofence's tariff, replacing any earlier one."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None, microsecond=0)
    tt, tw = t.tariffs, t.tariff_windows
    values = {
        "currency": tariff.currency,
        "time_zone": tariff.time_zone,
        "default_price": tariff.default_price,
        "updated_at": stamp,
    }
    tariff_id = conn.execute(
        sa.select(tt.c.id).where(tt.c.geofence_id == geofence_id)
    ).scalar_one_or_none()
    if tariff_id is None:
        tariff_id = conn.execute(
            sa.insert(tt)
            .values(geofence_id=geofence_id, inserted_at=stamp, **values)
            .returning(tt.c.id)
        ).scalar_one()
    else:
        conn.execute(sa.update(tt).where(tt.c.id == tariff_id).values(**values))
        conn.execute(sa.delete(tw).where(tw.c.tariff_id == tariff_id))
    for position, window in enumerate(tariff.windows):
        conn.execute(
            sa.insert(tw).values(
                tariff_id=tariff_id,
                position=position,
                weekdays=window.weekdays,
                start_minute=window.start_minute,
                end_minute=window.end_minute,
                season_start=None if window.season is None else window.season.start,
                season_end=None if window.season is None else window.season.end,
                price=window.price,
            )
        )


def delete_tariff(conn: sa.Connection, geofence_id: int) -> bool:
    """Remove the geofence's tariff (it bills flat again); whether there was one."""
    tt, tw = t.tariffs, t.tariff_windows
    tariff_id = conn.execute(
        sa.select(tt.c.id).where(tt.c.geofence_id == geofence_id)
    ).scalar_one_or_none()
    if tariff_id is None:
        return False
    conn.execute(sa.delete(tw).where(tw.c.tariff_id == tariff_id))
    conn.execute(sa.delete(tt).where(tt.c.id == tariff_id))
    return True
