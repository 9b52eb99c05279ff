"""Each car as the database last saw it: the summary the cars page shows without a runtime.

The keys are those of the live summary (TeslaMate's MQTT topics), so a page or script reads
the same shape whether a logger is running or not.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from fleetlog.store import tables as t
from fleetlog.web.reads import as_float


def car_info(conn: sa.Connection, car_id: int) -> dict[str, Any] | None:
    c = t.cars.c
    s = t.car_settings.c
    row = (
        conn.execute(
            sa.select(
                c.id,
                c.name,
                c.vin,
                c.model,
                c.marketing_name,
                c.trim_badging,
                c.exterior_color,
                c.wheel_type,
                c.efficiency,
                s.suspend_min,
                s.suspend_after_idle_min,
                s.req_not_unlocked,
                s.free_supercharging,
                s.use_streaming_api,
                s.enabled,
                s.lfp_battery,
            )
            .join(t.car_settings, t.car_settings.c.id == c.settings_id)
            .where(c.id == car_id)
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def recorded_summary(conn: sa.Connection, car_id: int) -> dict[str, Any]:
    """State and since, and the last position's values (the partial index on complete rows)."""
    p = t.positions.c
    st = t.states.c
    last = (
        conn.execute(
            sa.select(t.positions)
            .where(p.car_id == car_id, p.ideal_battery_range_km.is_not(None))
            .order_by(p.date.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    state = conn.execute(
        sa.select(st.state, st.start_date)
        .where(st.car_id == car_id)
        .order_by(st.start_date.desc())
        .limit(1)
    ).first()
    open_drive = conn.execute(
        sa.select(t.drives.c.start_date)
        .where(t.drives.c.car_id == car_id, t.drives.c.end_date.is_(None))
        .limit(1)
    ).first()
    open_charge = conn.execute(
        sa.select(t.charging_processes.c.start_date)
        .where(
            t.charging_processes.c.car_id == car_id,
            t.charging_processes.c.end_date.is_(None),
        )
        .limit(1)
    ).first()
    version = conn.execute(
        sa.select(t.updates.c.version)
        .where(t.updates.c.car_id == car_id)
        .order_by(t.updates.c.start_date.desc())
        .limit(1)
    ).scalar()
    name, since = "unavailable", None
    if state is not None:
        name, since = str(state.state), state.start_date
    if open_drive is not None:
        name, since = "driving", open_drive.start_date
    elif open_charge is not None:
        name, since = "charging", open_charge.start_date
    out: dict[str, Any] = {
        "state": name,
        "since": since.isoformat() + "Z" if since else None,
        "version": version.split(" ")[0] if version else None,
        "update_available": None,
        "healthy": None,
        "stream_connected": None,
        "recorded": True,
    }
    if last is not None:
        out.update(
            {
                "latitude": as_float(last["latitude"]),
                "longitude": as_float(last["longitude"]),
                "battery_level": last["battery_level"],
                "usable_battery_level": last["usable_battery_level"],
                "rated_battery_range_km": as_float(last["rated_battery_range_km"]),
                "ideal_battery_range_km": as_float(last["ideal_battery_range_km"]),
                "est_battery_range_km": as_float(last["est_battery_range_km"]),
                "odometer": as_float(last["odometer"]),
                "outside_temp": as_float(last["outside_temp"]),
                "inside_temp": as_float(last["inside_temp"]),
                "is_climate_on": last["is_climate_on"],
                "elevation": last["elevation"],
                "tpms_pressure_fl": as_float(last["tpms_pressure_fl"]),
                "tpms_pressure_fr": as_float(last["tpms_pressure_fr"]),
                "tpms_pressure_rl": as_float(last["tpms_pressure_rl"]),
                "tpms_pressure_rr": as_float(last["tpms_pressure_rr"]),
                "position_date": last["date"].isoformat() + "Z",
            }
        )
    return out
