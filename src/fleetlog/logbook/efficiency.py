"""The car's efficiency factor (kWh per km of range) from its charges (reference §7), pure.

Each qualifying charge gives ``energy added / range gained``; rounded, the most
frequent value wins if it is frequent enough. Coarser roundings need fewer votes,
so a young car gets a factor after a few charges and an old one a precise factor.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

#: (decimal places, votes needed), tried in order.
PRECISIONS: tuple[tuple[int, int], ...] = ((5, 8), (4, 5), (3, 3), (2, 2))


@dataclass(frozen=True, slots=True)
class ChargeForEfficiency:
    """What the factor needs from one closed ``charging_processes`` row."""

    duration_min: int | None
    end_battery_level: int | None
    start_range_km: float | None
    end_range_km: float | None
    charge_energy_added: float | None


def qualifies(c: ChargeForEfficiency) -> bool:
    """Long enough (> 10 min), not topped up beyond 95 %, with a range gain and energy."""
    return (
        c.duration_min is not None
        and c.duration_min > 10
        and c.end_battery_level is not None
        and c.end_battery_level <= 95
        and c.start_range_km is not None
        and c.end_range_km is not None
        and c.end_range_km > c.start_range_km
        and c.charge_energy_added is not None
        and c.charge_energy_added > 0
    )


def efficiency_factor(charges: Iterable[ChargeForEfficiency]) -> float | None:
    """The factor, or ``None`` while no rounding has enough agreeing charges."""
    ratios = []
    for c in charges:
        if not qualifies(c):
            continue
        assert c.charge_energy_added is not None  # qualifies() checked these
        assert c.start_range_km is not None and c.end_range_km is not None
        ratios.append(c.charge_energy_added / (c.end_range_km - c.start_range_km))
    for places, votes in PRECISIONS:
        counts = Counter(round(r, places) for r in ratios)
        if not counts:
            return None
        value, count = counts.most_common(1)[0]
        if count >= votes:
            return value
    return None
