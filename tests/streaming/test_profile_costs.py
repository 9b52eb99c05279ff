"""Each profile's signal estimate against what the simulator bills for a simulated day with
that profile applied (fast-forwarded, no sockets): the model, fed the day's own driving,
charging and awake time, lands within -30 %…+25 % of the billed signals."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from fleetlog.sim.push import PushHub
from fleetlog.sim.scenarios import build
from fleetlog.sim.world import CloudOptions, World
from fleetlog.sources.streaming.profiles import PROFILES, Usage, fleet_telemetry_config


def seconds_in(items: list[dict[str, Any]], a: datetime, b: datetime) -> float:
    total = 0.0
    for item in items:
        end = datetime.fromisoformat(item["end"]) if item["end"] else b
        total += max(
            0.0, (min(end, b) - max(datetime.fromisoformat(item["start"]), a)).total_seconds()
        )
    return total


def billed_day(profile: str, scenario: str, day: int) -> tuple[int, Usage]:
    """Signals billed for day `day` with `profile` set at its start, and that day's usage."""
    world = World(build(scenario, 1), CloudOptions(mode="fleet", billing_limit_usd=None))
    push = PushHub(world, ack_loss=0.0)
    push.attach()
    a = world.now + timedelta(days=day)
    world.advance(a)
    vin = world.cars[0].spec.vin
    world.telemetry_config_set([vin], fleet_telemetry_config(PROFILES[profile], hostname="t"))
    push.refresh()
    b = a + timedelta(days=1)
    world.advance(b)
    billed = sum(n for (_, category), n in world.ledger.billed.items() if category == "signals")
    car = world.truth()["cars"][0]
    driving = seconds_in(car["drives"], a, b)
    km = sum(d["distance_km"] for d in car["drives"] if a <= datetime.fromisoformat(d["start"]) < b)
    usage = Usage(
        driving_s=driving,
        charging_s=seconds_in(car["charges"], a, b),
        dc_charging_s=seconds_in([c for c in car["charges"] if c["kind"] == "dc"], a, b),
        awake_s=seconds_in([s for s in car["states"] if s["state"] == "online"], a, b),
        speed_m_s=km * 1000 / driving if driving else 11.0,
    )
    return billed, usage


@pytest.mark.parametrize(
    ("profile", "day"),
    [(name, 1) for name in sorted(PROFILES)] + [("precise", 5)],
    ids=[f"{name}-tuesday-commute" for name in sorted(PROFILES)] + ["precise-saturday-trip"],
)
def test_estimate_matches_the_billed_signals(profile: str, day: int) -> None:
    billed, usage = billed_day(profile, "commuter-week", day)
    estimate = PROFILES[profile].signals_per_day(usage)
    assert 0.7 <= billed / estimate <= 1.25, (billed, round(estimate))
