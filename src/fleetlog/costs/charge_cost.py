"""Charge cost against the database: at charge close, by hand, and after a tariff change.

* :class:`ChargeCostCalculator` is the logbook's hook, called inside the transaction
  that closes a charging process (before the row is updated): it reads the geofence's
  billing, its tariff and the car's free-Supercharging flag, and the process's samples.
* :func:`set_manual_cost` records what the user says a charge cost (an amount, or a
  rate per kWh or per minute) in ``fleetlog_charge_cost_overrides`` and writes it to
  ``charging_processes.cost``; recomputations leave such charges alone.
* :func:`recompute_costs` prices closed charges again (e.g. every charge at a geofence
  whose tariff changed) and reports each change; run it in a transaction that is rolled
  back for a dry run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from fleetlog.costs.pricing import (
    MANUAL_KINDS,
    Billing,
    ChargeFacts,
    ManualKind,
    charge_cost,
    manual_cost,
)
from fleetlog.costs.tariff import zone_of
from fleetlog.costs.tariffs import get_tariff
from fleetlog.logbook.aggregates import ChargeAggregates, fast_charger_type
from fleetlog.logbook.records import ChargeSample
from fleetlog.store import tables as t


class ChargeCostError(ValueError):
    """A cost that cannot be set as asked (no such charge, bad amount)."""

    user_facing = True


def _dec(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _float(value: object) -> float | None:
    return None if value is None else float(str(value))


def billing_at(
    conn: sa.Connection, geofence_id: int | None, *, default_time_zone: str = "UTC"
) -> Billing | None:
    """How the geofence bills (None: no geofence, so no known price)."""
    if geofence_id is None:
        return None
    g = t.geofences
    row = conn.execute(sa.select(g).where(g.c.id == geofence_id)).mappings().first()
    if row is None:
        return None
    tariff = get_tariff(conn, geofence_id)
    return Billing(
        billing_type=row["billing_type"],
        cost_per_unit=_dec(row["cost_per_unit"]),
        session_fee=_dec(row["session_fee"]),
        tariff=tariff,
        zone=zone_of(default_time_zone) if tariff is None else tariff.zone(default_time_zone),
    )


def has_free_supercharging(conn: sa.Connection, car_id: int) -> bool:
    """The car's ``car_settings.free_supercharging`` flag."""
    flag = conn.execute(
        sa.select(t.car_settings.c.free_supercharging)
        .join(t.cars, t.cars.c.settings_id == t.car_settings.c.id)
        .where(t.cars.c.id == car_id)
    ).scalar_one_or_none()
    return bool(flag)


def _samples(conn: sa.Connection, where: sa.ColumnElement[bool]) -> tuple[ChargeSample, ...]:
    c = t.charges
    rows = conn.execute(
        sa.select(
            c.c.date,
            c.c.charge_energy_added,
            c.c.charger_power,
            c.c.charger_actual_current,
            c.c.charger_voltage,
            c.c.charger_phases,
            c.c.fast_charger_type,
        )
        .select_from(c.join(t.charging_processes))
        .where(where)
        .order_by(c.c.date, c.c.id)
    ).all()
    return tuple(
        ChargeSample(
            date=r.date,
            charge_energy_added=float(r.charge_energy_added),
            charger_power=float(r.charger_power),
            charger_actual_current=r.charger_actual_current,
            charger_voltage=r.charger_voltage,
            charger_phases=r.charger_phases,
            fast_charger_type=r.fast_charger_type,
        )
        for r in rows
    )


def facts_of_process(conn: sa.Connection, process_id: int) -> ChargeFacts | None:
    """A closed charging process as pricing sees it (None: missing or still open)."""
    cp = t.charging_processes
    row = conn.execute(sa.select(cp).where(cp.c.id == process_id)).mappings().first()
    if row is None or row["end_date"] is None:
        return None
    samples = _samples(conn, t.charges.c.charging_process_id == process_id)
    duration = row["duration_min"]
    if duration is None:
        duration = round((row["end_date"] - row["start_date"]).total_seconds() / 60)
    return ChargeFacts(
        start=row["start_date"],
        end=row["end_date"],
        energy_added=_float(row["charge_energy_added"]),
        energy_used=_float(row["charge_energy_used"]),
        duration_min=int(duration),
        fast_charger_type=fast_charger_type(samples),
        samples=samples,
    )


class ChargeCostCalculator:
    """The logbook's cost hook: prices a charge as it closes."""

    def __init__(self, default_time_zone: str = "UTC") -> None:
        zone_of(default_time_zone)  # fail at start-up, not at the first charge
        self.default_time_zone = default_time_zone

    def cost(
        self,
        conn: sa.Connection,
        car_id: int,
        aggregates: ChargeAggregates,
        geofence_id: int | None,
    ) -> float | None:
        """Cost of the charge of `car_id` summarised by `aggregates` at `geofence_id`."""
        free = has_free_supercharging(conn, car_id)
        billing = billing_at(conn, geofence_id, default_time_zone=self.default_time_zone)
        if billing is None and not free:
            return None
        samples: tuple[ChargeSample, ...] = ()
        if billing is not None and billing.tariff is not None:
            # A car charges in one place at a time: its samples in this span are this charge's.
            c = t.charges
            samples = _samples(
                conn,
                sa.and_(
                    t.charging_processes.c.car_id == car_id,
                    c.c.date >= _naive(aggregates.start_date),
                    c.c.date <= _naive(aggregates.end_date),
                ),
            )
        facts = ChargeFacts(
            start=aggregates.start_date,
            end=aggregates.end_date,
            energy_added=aggregates.charge_energy_added,
            energy_used=aggregates.charge_energy_used,
            duration_min=aggregates.duration_min,
            fast_charger_type=aggregates.fast_charger_type,
            samples=samples,
        )
        cost = charge_cost(facts, billing, free_supercharging=free)
        return None if cost is None else float(cost)


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def _override(conn: sa.Connection, process_id: int) -> tuple[ManualKind, Decimal] | None:
    o = t.charge_cost_overrides
    row = conn.execute(
        sa.select(o.c.kind, o.c.amount).where(o.c.charging_process_id == process_id)
    ).first()
    return None if row is None else (row.kind, Decimal(str(row.amount)))


def cost_of_process(
    conn: sa.Connection, process_id: int, *, default_time_zone: str = "UTC"
) -> Decimal | None:
    """What a closed charge costs now: the user's cost if set, else the place's billing."""
    facts = facts_of_process(conn, process_id)
    if facts is None:
        return None
    override = _override(conn, process_id)
    if override is not None:
        return manual_cost(override[0], override[1], facts)
    cp = t.charging_processes
    car_id, geofence_id = conn.execute(
        sa.select(cp.c.car_id, cp.c.geofence_id).where(cp.c.id == process_id)
    ).one()
    billing = billing_at(conn, geofence_id, default_time_zone=default_time_zone)
    return charge_cost(facts, billing, free_supercharging=has_free_supercharging(conn, car_id))


def set_manual_cost(
    conn: sa.Connection,
    process_id: int,
    kind: str,
    amount: Decimal,
    *,
    now: datetime | None = None,
) -> Decimal | None:
    """Record the user's cost for a charge and write it; returns the stored cost."""
    if kind not in MANUAL_KINDS:
        raise ChargeCostError(f"cost kind must be one of {', '.join(MANUAL_KINDS)}")
    if not amount.is_finite() or amount < 0:
        raise ChargeCostError("a cost cannot be negative")
    facts = facts_of_process(conn, process_id)
    if facts is None:
        raise ChargeCostError(f"no closed charging process with id {process_id}")
    manual_kind: ManualKind = next(k for k in MANUAL_KINDS if k == kind)
    cost = manual_cost(manual_kind, amount, facts)
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None, microsecond=0)
    o = t.charge_cost_overrides
    conn.execute(sa.delete(o).where(o.c.charging_process_id == process_id))
    conn.execute(
        sa.insert(o).values(
            charging_process_id=process_id,
            kind=kind,
            amount=amount,
            inserted_at=stamp,
            updated_at=stamp,
        )
    )
    _write_cost(conn, process_id, cost)
    return cost


def clear_manual_cost(
    conn: sa.Connection, process_id: int, *, default_time_zone: str = "UTC"
) -> Decimal | None:
    """Forget the user's cost; the charge is priced by its place again (returned)."""
    o = t.charge_cost_overrides
    conn.execute(sa.delete(o).where(o.c.charging_process_id == process_id))
    cost = cost_of_process(conn, process_id, default_time_zone=default_time_zone)
    _write_cost(conn, process_id, cost)
    return cost


def _write_cost(conn: sa.Connection, process_id: int, cost: Decimal | None) -> None:
    cp = t.charging_processes
    conn.execute(sa.update(cp).where(cp.c.id == process_id).values(cost=cost))


@dataclass(frozen=True, slots=True)
class CostChange:
    """One charge whose stored cost differs from what it costs now."""

    process_id: int
    start_date: datetime
    old: Decimal | None
    new: Decimal | None


def recompute_costs(
    conn: sa.Connection,
    *,
    geofence_id: int | None = None,
    process_ids: Sequence[int] | None = None,
    default_time_zone: str = "UTC",
    apply: bool = True,
) -> list[CostChange]:
    """Price closed charges again (at one geofence, or the given ones); list the changes.

    Charges with a cost the user set are skipped. With `apply` false nothing is written.
    """
    cp, o = t.charging_processes, t.charge_cost_overrides
    query = (
        sa.select(cp.c.id, cp.c.start_date, cp.c.cost)
        .where(cp.c.end_date.is_not(None))
        .where(~sa.exists().where(o.c.charging_process_id == cp.c.id))
        .order_by(cp.c.start_date, cp.c.id)
    )
    if geofence_id is not None:
        query = query.where(cp.c.geofence_id == geofence_id)
    if process_ids is not None:
        query = query.where(cp.c.id.in_(list(process_ids)))
    changes: list[CostChange] = []
    for process_id, start_date, stored in conn.execute(query).all():
        new = cost_of_process(conn, process_id, default_time_zone=default_time_zone)
        old = _dec(stored)
        if old != new:
            changes.append(CostChange(process_id, start_date, old, new))
            if apply:
                _write_cost(conn, process_id, new)
    return changes
