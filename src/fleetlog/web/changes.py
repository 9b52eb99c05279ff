"""What the web app writes: global settings, car settings, a charge's cost, geofences.

Geofences go through :mod:`fleetlog.places.geofences`, which also relabels past drives and
charges. A charge's cost set by hand is written to ``charging_processes.cost`` (what TeslaMate's
dashboards read) and remembered in ``fleetlog_charge_cost_overrides``, so that recomputing
costs from tariffs never overwrites what the user typed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa

from fleetlog.store import tables as t
from fleetlog.web.display import LANGUAGES

CostMode = Literal["absolute", "per_kwh", "per_minute", "clear"]
CAR_FLAGS = (
    "req_not_unlocked",
    "free_supercharging",
    "use_streaming_api",
    "enabled",
    "lfp_battery",
)


class ChangeError(ValueError):
    """A change that cannot be made as asked; the message is for the user."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def save_settings(
    conn: sa.Connection,
    *,
    unit_of_length: str,
    unit_of_temperature: str,
    unit_of_pressure: str,
    preferred_range: str,
    language: str,
) -> None:
    choices = {
        "unit_of_length": ("km", "mi"),
        "unit_of_temperature": ("C", "F"),
        "unit_of_pressure": ("bar", "psi"),
        "preferred_range": ("rated", "ideal"),
        "language": LANGUAGES,
    }
    values = {
        "unit_of_length": unit_of_length,
        "unit_of_temperature": unit_of_temperature,
        "unit_of_pressure": unit_of_pressure,
        "preferred_range": preferred_range,
        "language": language,
    }
    for key, value in values.items():
        if value not in choices[key]:
            raise ChangeError(f"{key} must be one of {', '.join(choices[key])}")
    conn.execute(sa.update(t.settings).values(**values, updated_at=_now()))


def save_car_settings(
    conn: sa.Connection,
    car_id: int,
    *,
    suspend_min: int,
    suspend_after_idle_min: int,
    flags: dict[str, bool],
) -> None:
    if not 1 <= suspend_min <= 1440 or not 1 <= suspend_after_idle_min <= 1440:
        raise ChangeError("sleep times must be between 1 and 1440 minutes")
    settings_id = conn.execute(
        sa.select(t.cars.c.settings_id).where(t.cars.c.id == car_id)
    ).scalar()
    if settings_id is None:
        raise ChangeError(f"no car with id {car_id}")
    conn.execute(
        sa.update(t.car_settings)
        .where(t.car_settings.c.id == settings_id)
        .values(
            suspend_min=suspend_min,
            suspend_after_idle_min=suspend_after_idle_min,
            **{flag: bool(flags.get(flag)) for flag in CAR_FLAGS},
        )
    )


def set_charge_cost(
    conn: sa.Connection, charge_id: int, mode: CostMode, amount: Decimal | None
) -> Decimal | None:
    """Set (or with ``clear``, forget) a charge's cost; returns the stored cost."""
    cp = t.charging_processes.c
    row = conn.execute(
        sa.select(cp.charge_energy_added, cp.charge_energy_used, cp.duration_min).where(
            cp.id == charge_id
        )
    ).first()
    if row is None:
        raise ChangeError(f"no charge with id {charge_id}")
    overrides = t.charge_cost_overrides
    conn.execute(sa.delete(overrides).where(overrides.c.charging_process_id == charge_id))
    if mode == "clear":
        conn.execute(sa.update(t.charging_processes).where(cp.id == charge_id).values(cost=None))
        return None
    if amount is None or amount < 0:
        raise ChangeError("the amount must be a number of 0 or more")
    if mode == "absolute":
        cost = amount
    elif mode == "per_kwh":
        # TeslaMate bills per kWh on the larger of energy added and energy drawn.
        energy = max(Decimal(row.charge_energy_added or 0), Decimal(row.charge_energy_used or 0))
        cost = amount * energy
    elif mode == "per_minute":
        cost = amount * Decimal(row.duration_min or 0)
    else:
        raise ChangeError("mode must be absolute, per_kwh, per_minute or clear")
    cost = cost.quantize(Decimal("0.01"))
    stamp = _now()
    conn.execute(
        sa.insert(overrides).values(
            charging_process_id=charge_id,
            kind=mode,
            amount=amount,
            inserted_at=stamp,
            updated_at=stamp,
        )
    )
    conn.execute(sa.update(t.charging_processes).where(cp.id == charge_id).values(cost=cost))
    return cost


def decimal_or_none(raw: Any) -> Decimal | None:
    """A form field as a Decimal: empty is None, anything else must be a number."""
    if raw is None or str(raw).strip() == "":
        return None
    try:
        value = Decimal(str(raw).strip().replace(",", "."))
    except ArithmeticError:
        raise ChangeError(f"not a number: {raw!r}") from None
    if not value.is_finite():
        raise ChangeError(f"not a number: {raw!r}")
    return value
