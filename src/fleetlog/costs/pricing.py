"""What a charge cost (pure): TeslaMate's rules, plus time-of-use tariffs.

TeslaMate's rules, kept exactly:

* a Supercharger session (``fast_charger_type`` starting with ``Tesla``) of a car with
  free Supercharging costs 0;
* ``per_kwh``: ``max(energy added, energy used) × cost_per_unit + session_fee``;
* ``per_minute``: ``duration_min × cost_per_unit + session_fee``;
* either term may be missing; with neither, and outside every geofence, the cost is
  unknown (NULL).

With a time-of-use tariff the same billed quantity (the kWh or the minutes above) is
split over the prices in force while the car charged, and each part is priced at its
own rate. For energy the split follows the samples: between two samples the energy
drawn (charger power × time, as ``charge_energy_used`` is integrated) is spread evenly
over that interval, so an interval that straddles a window edge is divided at the edge.
A charge entirely inside one window therefore costs exactly what the flat rule gives.
If part of a charge falls where no price applies, the cost is unknown rather than
partly free.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo

from fleetlog.costs.tariff import PriceSpan, Tariff, price_spans
from fleetlog.logbook.aggregates import detect_phases, sample_power_kw
from fleetlog.logbook.records import ChargeSample

BillingType = Literal["per_kwh", "per_minute"]
ManualKind = Literal["absolute", "per_kwh", "per_minute"]
MANUAL_KINDS: tuple[ManualKind, ...] = ("absolute", "per_kwh", "per_minute")
_CENT = Decimal("0.01")
_UTC_ZONE = ZoneInfo("UTC")

# energy (kWh) drawn between two samples, given the hours between them
_EnergyOf = Callable[[ChargeSample, ChargeSample, float], float]


@dataclass(frozen=True, slots=True)
class Billing:
    """How a place bills: its geofence's columns and, optionally, a tariff."""

    billing_type: BillingType = "per_kwh"
    cost_per_unit: Decimal | None = None
    session_fee: Decimal | None = None
    tariff: Tariff | None = None
    zone: ZoneInfo = _UTC_ZONE  # the tariff's zone, resolved


@dataclass(frozen=True, slots=True)
class ChargeFacts:
    """What pricing needs to know about one charging process (times in UTC)."""

    start: datetime
    end: datetime
    energy_added: float | None
    energy_used: float | None
    duration_min: int
    fast_charger_type: str | None = None
    samples: tuple[ChargeSample, ...] = ()


def is_supercharger(fast_charger_type: str | None) -> bool:
    return bool(fast_charger_type) and str(fast_charger_type).startswith("Tesla")


def billed_energy(facts: ChargeFacts) -> float | None:
    """The kWh a per-kWh price applies to: the larger of energy added and energy used."""
    known = [e for e in (facts.energy_added, facts.energy_used) if e is not None]
    return max(known) if known else None


def round_cost(value: Decimal) -> Decimal:
    """To the cent, as ``charging_processes.cost`` (numeric(14,2)) stores it."""
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def charge_cost(
    facts: ChargeFacts, billing: Billing | None, *, free_supercharging: bool = False
) -> Decimal | None:
    """The cost of a charge at a place billed as `billing` (None: outside every geofence)."""
    if free_supercharging and is_supercharger(facts.fast_charger_type):
        return Decimal("0.00")
    if billing is None:
        return None
    if billing.tariff is not None:
        variable = _time_of_use(facts, billing)
        if variable is _UNPRICED:
            return None
    else:
        variable = _flat(facts, billing)
    fee = billing.session_fee
    if variable is None and fee is None:
        return None
    return round_cost((variable or Decimal(0)) + (fee or Decimal(0)))


def manual_cost(kind: ManualKind, amount: Decimal, facts: ChargeFacts) -> Decimal | None:
    """A cost the user set: an amount, or a rate times the energy or the minutes."""
    if kind == "absolute":
        return round_cost(amount)
    if kind == "per_kwh":
        energy = billed_energy(facts)
        return None if energy is None else round_cost(_dec(energy) * amount)
    return round_cost(Decimal(facts.duration_min) * amount)


# --- flat and time-of-use ----------------------------------------------------------------

_UNPRICED = Decimal("NaN")  # a sentinel: some of the charge fell where no price applies


def _dec(value: float) -> Decimal:
    return Decimal(repr(value))


def _flat(facts: ChargeFacts, billing: Billing) -> Decimal | None:
    price = billing.cost_per_unit
    if price is None:
        return None
    if billing.billing_type == "per_minute":
        return Decimal(facts.duration_min) * price
    energy = billed_energy(facts)
    return None if energy is None else _dec(energy) * price


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def _time_of_use(facts: ChargeFacts, billing: Billing) -> Decimal | None:
    tariff = billing.tariff
    assert tariff is not None
    start, end = _utc(facts.start), _utc(facts.end)
    spans = price_spans(tariff, start, end, zone=billing.zone, fallback=billing.cost_per_unit)
    if not spans:  # an instant: the price at that moment
        local = start.replace(tzinfo=UTC).astimezone(billing.zone)
        spans = [PriceSpan(start, start, tariff.price_at(local, billing.cost_per_unit))]
    if billing.billing_type == "per_minute":
        quantity: Decimal | None = Decimal(facts.duration_min)
        weights = _time_weights(spans)
    else:
        energy = billed_energy(facts)
        quantity = None if energy is None else _dec(energy)
        weights = _energy_weights(spans, facts.samples) or _time_weights(spans)
    if quantity is None:
        return None
    total = sum(weights.values())
    if total <= 0:
        weights, total = {spans[0].price: 1.0}, 1.0
    if any(price is None and w > 0 for price, w in weights.items()):
        return _UNPRICED
    return sum(
        (quantity * _dec(w / total) * price for price, w in weights.items() if price is not None),
        Decimal(0),
    )


def _time_weights(spans: Sequence[PriceSpan]) -> dict[Decimal | None, float]:
    weights: dict[Decimal | None, float] = defaultdict(float)
    for span in spans:
        weights[span.price] += (span.end - span.start).total_seconds()
    return dict(weights)


def _energy_weights(
    spans: Sequence[PriceSpan], samples: Sequence[ChargeSample]
) -> dict[Decimal | None, float]:
    """kWh drawn under each price, sample by sample; empty when the samples tell nothing."""
    rows = sorted(samples, key=lambda s: _utc(s.date))
    if len(rows) < 2:
        return {}
    phases = detect_phases(rows)
    by_power = _spread(spans, rows, lambda prev, cur, hours: sample_power_kw(cur, phases) * hours)
    if by_power:
        return by_power
    # no power readings: the growth of the energy-added counter says the same, coarser
    return _spread(
        spans, rows, lambda prev, cur, _h: cur.charge_energy_added - prev.charge_energy_added
    )


def _spread(
    spans: Sequence[PriceSpan],
    rows: Sequence[ChargeSample],
    energy_of: _EnergyOf,
) -> dict[Decimal | None, float]:
    weights: dict[Decimal | None, float] = defaultdict(float)
    i = 0
    for prev, cur in pairwise(rows):
        a, b = _utc(prev.date), _utc(cur.date)
        seconds = (b - a).total_seconds()
        if seconds <= 0:
            continue
        energy = energy_of(prev, cur, seconds / 3600)
        if energy <= 0:  # regen, a reset counter or a bad reading never takes energy back
            continue
        while i < len(spans) and spans[i].end <= a:
            i += 1
        j = i
        while j < len(spans) and spans[j].start < b:
            overlap = (min(b, spans[j].end) - max(a, spans[j].start)).total_seconds()
            if overlap > 0:
                weights[spans[j].price] += energy * overlap / seconds
            j += 1
    return {p: w for p, w in weights.items() if w > 0}
