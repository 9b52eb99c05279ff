"""The budget governor, driven directly in virtual time (it is pure: `now` is passed in)."""

from __future__ import annotations

import heapq
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from fleetlog.sources.tesla import BudgetPolicy, Category, Governor, WakeNotRequested
from fleetlog.sources.tesla._pricing import usd_to_micro

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)


def simulate_month(
    policy: BudgetPolicy, cars: list[str], poll: timedelta, *, awake: slice | None = None
) -> tuple[int, Counter[object], Counter[str], Governor]:
    """Cars that want vehicle_data every `poll` for a whole month; the governor decides.

    Returns micro-dollars spent, calls per day, calls per car and the governor.
    """
    g = Governor(policy, MARCH)
    queue = [(MARCH, car) for car in cars]
    spent = 0
    per_day: Counter[object] = Counter()
    per_car: Counter[str] = Counter()
    while queue:
        t, car = heapq.heappop(queue)
        if t >= APRIL:
            continue
        if awake is not None and not (awake.start <= t.hour < awake.stop):
            heapq.heappush(queue, (t + poll, car))  # asleep: no paid call is even asked
            continue
        d = g.acquire(t, car, Category.DATA)
        if d.go:
            assert d.permit is not None and d.at == t
            g.release(t, d.permit, status=200, billed=True)
            spent += d.permit.cost
            per_day[t.date()] += 1
            per_car[car] += 1
            assert g.state(t).spent_usd * 1_000_000 == pytest.approx(spent)
            heapq.heappush(queue, (t + poll, car))
        else:
            assert d.at > t, "a refusal must name a later time"
            heapq.heappush(queue, (max(d.at, t + poll), car))
    return spent, per_day, per_car, g


def test_tight_cap_is_never_exceeded_and_calls_spread_over_the_whole_month() -> None:
    cap = usd_to_micro(2)  # 1,000 vehicle_data calls for two cars that would make 89,280
    spent, per_day, per_car, g = simulate_month(
        BudgetPolicy(monthly_cap=cap), ["CAR-A", "CAR-B"], timedelta(seconds=60)
    )
    assert spent <= cap
    assert spent >= cap - usd_to_micro("0.002") * 2, "the money is used, not hoarded"
    assert len(per_day) == 31, "every day of the month gets calls: polling slows, never stops"
    assert max(per_day.values()) - min(per_day.values()) <= 2
    assert abs(per_car["CAR-A"] - per_car["CAR-B"]) <= 1, "cars share the account fairly"
    end = g.state(APRIL - timedelta(seconds=1))
    assert end.remaining_usd < 0.002
    assert end.next_data_call_at == APRIL


def test_money_saved_while_asleep_is_spent_later_in_bursts_within_the_day() -> None:
    cap = usd_to_micro(3)
    spent, per_day, _, _ = simulate_month(
        BudgetPolicy(monthly_cap=cap), ["CAR"], timedelta(seconds=30), awake=slice(7, 19)
    )
    # All but the pace of the last evening, when the car sleeps, is spent.
    assert cap * 0.99 <= spent <= cap
    assert len(per_day) == 31
    # The first day starts with an hour's allowance, the last loses its sleeping evening.
    middle = [
        n
        for day, n in per_day.items()
        if day not in (MARCH.date(), (APRIL - timedelta(days=1)).date())
    ]
    assert max(middle) - min(middle) <= 2
    assert min(per_day.values()) >= 0.8 * max(middle)


def test_daily_vehicle_data_cap_per_car() -> None:
    policy = BudgetPolicy(monthly_cap=usd_to_micro(1000), daily_data_cap=5)
    g = Governor(policy, MARCH)
    t = MARCH + timedelta(hours=10)
    for _ in range(5):
        d = g.acquire(t, "CAR", Category.DATA)
        assert d.go and d.permit
        g.release(t, d.permit, status=200, billed=True)
    refused = g.acquire(t, "CAR", Category.DATA)
    assert not refused.go and refused.at == MARCH + timedelta(days=1)
    assert "daily" in refused.reason
    assert g.acquire(t, "OTHER", Category.DATA).go, "the cap is per car"
    assert g.acquire(MARCH + timedelta(days=1), "CAR", Category.DATA).go


def test_unbilled_answers_give_the_reservation_back() -> None:
    t = MARCH + timedelta(days=20)
    g = Governor(BudgetPolicy(monthly_cap=usd_to_micro(10), daily_data_cap=1), t)
    for _ in range(3):
        d = g.acquire(t, "CAR", Category.DATA)
        assert d.go and d.permit
        g.release(t, d.permit, status=503, billed=False)  # 5xx: Tesla does not bill
    assert g.state(t).spent_usd == 0
    d = g.acquire(t, "CAR", Category.DATA)
    assert d.go and d.permit
    g.release(t, d.permit, status=408, billed=True)  # asleep: billed all the same
    assert g.state(t).spent_usd == pytest.approx(0.002)


def test_concurrent_grants_reserve_so_the_cap_holds() -> None:
    g = Governor(BudgetPolicy(monthly_cap=usd_to_micro("0.004")), MARCH + timedelta(days=30))
    t = MARCH + timedelta(days=30, hours=12)
    granted = [g.acquire(t, f"CAR-{i}", Category.DATA) for i in range(5)]
    assert sum(d.go for d in granted) == 2
    refused = [d for d in granted if not d.go]
    assert all(d.at == APRIL for d in refused)


def test_cap_resets_at_the_start_of_the_month() -> None:
    g = Governor(BudgetPolicy(monthly_cap=usd_to_micro(1)), MARCH, spent_this_month=1_000_000)
    d = g.acquire(MARCH + timedelta(days=3), "CAR", Category.DATA)
    assert not d.go and d.at == APRIL and "monthly cap" in d.reason
    later = g.acquire(APRIL + timedelta(hours=2), "CAR", Category.DATA)
    assert later.go
    assert g.state(APRIL + timedelta(hours=2)).month == "2026-04"


def test_the_governor_never_wakes_a_car_by_itself() -> None:
    g = Governor(BudgetPolicy(), MARCH)
    with pytest.raises(WakeNotRequested):
        g.acquire(MARCH, "CAR", Category.WAKE)
    d = g.acquire(MARCH, "CAR", Category.WAKE, user_requested=True)
    assert d.go and d.permit and d.permit.cost == usd_to_micro("0.02")


def test_user_wake_is_bounded_by_the_cap_only() -> None:
    g = Governor(BudgetPolicy(monthly_cap=usd_to_micro("0.03")), MARCH + timedelta(days=30))
    t = MARCH + timedelta(days=30, hours=23)
    assert g.acquire(t, "CAR", Category.WAKE, user_requested=True).go
    refused = g.acquire(t, "CAR", Category.WAKE, user_requested=True)
    assert not refused.go and refused.at == APRIL


def test_retry_after_holds_every_car_and_free_calls_too() -> None:
    g = Governor(BudgetPolicy(), MARCH)
    t = MARCH + timedelta(hours=1)
    g.rate_limited(t, t + timedelta(seconds=45))
    for car, cat in (("A", Category.DATA), ("B", Category.NONE), (None, Category.NONE)):
        d = g.acquire(t + timedelta(seconds=44), car, cat)
        assert not d.go and d.at == t + timedelta(seconds=45) and "429" in d.reason
    assert g.acquire(t + timedelta(seconds=45), "B", Category.DATA).go


def test_exceeded_limit_backs_off_15_minutes_then_probes_hourly_with_a_free_call() -> None:
    g = Governor(BudgetPolicy(), MARCH)
    t = MARCH + timedelta(hours=5)
    until = g.limit_exceeded(t)
    assert until == t + timedelta(minutes=15)
    assert g.state(t).account_disabled
    assert not g.acquire(t + timedelta(minutes=14), "A", Category.NONE).go
    # After 15 minutes: paid calls still wait; one free call is let through as the probe.
    assert not g.acquire(t + timedelta(minutes=15), "A", Category.DATA).go
    probe = g.acquire(t + timedelta(minutes=15), "A", Category.NONE)
    assert probe.go and probe.permit and probe.permit.probe
    assert not g.acquire(t + timedelta(minutes=15), "B", Category.NONE).go, "one probe at a time"
    # The probe meets EXCEEDED_LIMIT again: next probe an hour later.
    g.release(t + timedelta(minutes=15), probe.permit, status=403, billed=False)
    assert g.limit_exceeded(t + timedelta(minutes=15)) == t + timedelta(minutes=75)
    assert not g.acquire(t + timedelta(minutes=74), "B", Category.NONE).go
    probe = g.acquire(t + timedelta(minutes=75), "B", Category.NONE)
    assert probe.go and probe.permit
    g.release(t + timedelta(minutes=75), probe.permit, status=200, billed=False)
    assert not g.state(t + timedelta(minutes=75)).account_disabled
    assert g.acquire(t + timedelta(minutes=75), "A", Category.DATA).go


def test_owner_api_is_not_priced_but_blocks_still_apply() -> None:
    g = Governor(BudgetPolicy(monthly_cap=0, priced=False), MARCH)
    for _ in range(1000):
        d = g.acquire(MARCH, "CAR", Category.DATA)
        assert d.go and d.permit and d.permit.cost == 0
    g.rate_limited(MARCH, MARCH + timedelta(seconds=10))
    assert not g.acquire(MARCH, "CAR", Category.DATA).go


def test_state_reports_spend_projection_and_next_call() -> None:
    g = Governor(BudgetPolicy(monthly_cap=usd_to_micro(10)), MARCH)
    t = MARCH + timedelta(days=10)
    g2 = Governor(BudgetPolicy(monthly_cap=usd_to_micro(10)), t, spent_this_month=2_000_000)
    state = g2.state(t)
    assert state.spent_usd == 2.0 and state.remaining_usd == 8.0
    assert state.projected_month_end_usd == pytest.approx(2.0 * 31 / 10)
    assert state.next_data_call_at == t
    assert state.as_dict()["month"] == "2026-03"
    assert g.state(MARCH).cap_usd == 10.0


def test_bad_policy_and_naive_times_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="daily"):
        BudgetPolicy(daily_data_cap=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        Governor(BudgetPolicy(), datetime(2026, 3, 1))
