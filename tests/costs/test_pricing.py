"""Charge cost rules (pure): TeslaMate's flat rules and time-of-use tariffs.

Time-of-use cases cross window edges mid-interval, midnight, and both DST changes of
Europe/Berlin in 2026 (29 March: 02:00 CET → 03:00 CEST; 25 October: 03:00 CEST →
02:00 CET); times are given in UTC as the database stores them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from fleetlog.costs import (
    Billing,
    ChargeFacts,
    Tariff,
    TariffError,
    charge_cost,
    format_window,
    manual_cost,
    parse_window,
    windows_of,
)
from fleetlog.costs.tariff import EVERY_DAY, price_spans
from fleetlog.logbook.records import ChargeSample

BERLIN = ZoneInfo("Europe/Berlin")
D = Decimal


def steady(start: datetime, hours: float, kw: float, *, every_min: float = 1.0) -> ChargeFacts:
    """A charge at constant power with a sample every `every_min` minutes (UTC times)."""
    samples = []
    n = round(hours * 60 / every_min)
    for i in range(n + 1):
        at = start + timedelta(minutes=i * every_min)
        added = kw * (i * every_min / 60)
        samples.append(ChargeSample(date=at, charge_energy_added=added, charger_power=kw))
    energy = kw * hours
    return ChargeFacts(
        start=start,
        end=samples[-1].date,
        energy_added=energy,
        energy_used=energy,
        duration_min=round(hours * 60),
        samples=tuple(samples),
    )


def tou(*windows: str, default: str | None = "0.40", per: str = "per_kwh") -> Billing:
    tariff = Tariff("EUR", windows_of(windows), None if default is None else D(default))
    return Billing(billing_type=per, tariff=tariff, zone=BERLIN)  # type: ignore[arg-type]


# --- TeslaMate's flat rules ---------------------------------------------------------------

FLAT = ChargeFacts(
    start=datetime(2026, 5, 4, 10),
    end=datetime(2026, 5, 4, 11),
    energy_added=10.0,
    energy_used=11.5,
    duration_min=45,
)


def test_per_kwh_bills_the_larger_energy_plus_fee() -> None:
    billing = Billing("per_kwh", D("0.30"), D("1.00"))
    assert charge_cost(FLAT, billing) == D("4.45")  # 11.5 × 0.30 + 1


def test_per_minute_bills_duration_plus_fee() -> None:
    assert charge_cost(FLAT, Billing("per_minute", D("0.10"), D("0.50"))) == D("5.00")


def test_either_term_alone_and_neither() -> None:
    assert charge_cost(FLAT, Billing("per_kwh", None, D("2.50"))) == D("2.50")
    assert charge_cost(FLAT, Billing("per_kwh", D("0.20"), None)) == D("2.30")
    assert charge_cost(FLAT, Billing("per_kwh", None, None)) is None
    assert charge_cost(FLAT, None) is None  # outside every geofence


def test_unknown_energy_leaves_only_the_fee() -> None:
    facts = ChargeFacts(FLAT.start, FLAT.end, None, None, 45)
    assert charge_cost(facts, Billing("per_kwh", D("0.30"), D("1"))) == D("1.00")
    assert charge_cost(facts, Billing("per_kwh", D("0.30"), None)) is None


def test_free_supercharging() -> None:
    tesla = ChargeFacts(FLAT.start, FLAT.end, 30.0, 31.0, 25, fast_charger_type="Tesla")
    other = ChargeFacts(FLAT.start, FLAT.end, 30.0, 31.0, 25, fast_charger_type="ACSingleWire")
    billing = Billing("per_kwh", D("0.50"), None)
    assert charge_cost(tesla, billing, free_supercharging=True) == D("0.00")
    assert charge_cost(tesla, None, free_supercharging=True) == D("0.00")
    assert charge_cost(other, billing, free_supercharging=True) == D("15.50")
    assert charge_cost(tesla, billing, free_supercharging=False) == D("15.50")


def test_manual_costs() -> None:
    assert manual_cost("absolute", D("12.345"), FLAT) == D("12.35")
    assert manual_cost("per_kwh", D("0.40"), FLAT) == D("4.60")
    assert manual_cost("per_minute", D("0.20"), FLAT) == D("9.00")


# --- time of use ---------------------------------------------------------------------


def test_one_window_costs_what_the_flat_rule_costs() -> None:
    facts = steady(datetime(2026, 5, 4, 8), 2.0, 11.0)  # Monday
    flat = charge_cost(facts, Billing("per_kwh", D("0.31"), D("1")))
    timed = charge_cost(
        facts,
        Billing("per_kwh", None, D("1"), Tariff("EUR", windows_of(["* 00:00-24:00 0.31"]))),
    )
    assert flat == timed == D("7.82")


def test_a_charge_across_a_window_edge_is_split_at_the_edge() -> None:
    # Monday 2026-05-04, CEST (UTC+2): 21:00–23:00 local = 19:00–21:00 UTC, 11 kW
    facts = steady(datetime(2026, 5, 4, 19), 2.0, 11.0)
    billing = tou("mon-fri 22:00-06:00 0.20", default="0.40")
    assert charge_cost(facts, billing) == D("6.60")  # 11 kWh × 0.40 + 11 kWh × 0.20


def test_an_interval_straddling_the_edge_is_divided_by_time() -> None:
    # samples 40 minutes apart: 21:30 and 22:10 local → 30 min day, 10 min night
    start = datetime(2026, 5, 4, 19, 30)
    facts = steady(start, 40 / 60, 12.0, every_min=40)
    assert len(facts.samples) == 2
    cost = charge_cost(facts, tou("mon-fri 22:00-06:00 0.20", default="0.40"))
    assert cost == D("2.80")  # 8 kWh × 0.40 (6 kWh) … 6 × 0.40 + 2 × 0.20


def test_energy_follows_the_power_not_the_clock() -> None:
    # One hour at 2 kW before 22:00 and one hour at 10 kW after: energy, not time, splits
    start = datetime(2026, 5, 4, 19)
    samples = [ChargeSample(start, 0.0, 2.0)]
    for i in range(1, 121):
        kw = 2.0 if i <= 60 else 10.0
        samples.append(ChargeSample(start + timedelta(minutes=i), 0.0, kw))
    facts = ChargeFacts(start, samples[-1].date, 12.0, 12.0, 120, samples=tuple(samples))
    cost = charge_cost(facts, tou("mon-fri 22:00-06:00 0.20", default="0.40"))
    assert cost == D("2.80")  # 2 kWh × 0.40 + 10 kWh × 0.20


def test_midnight_belongs_to_the_day_the_window_starts() -> None:
    night = tou("fri 22:00-06:00 0.20", default="0.40")
    # Friday 23:00 → Saturday 02:00 local (CEST): all in Friday's night window
    friday = steady(datetime(2026, 5, 8, 21), 3.0, 10.0)
    assert charge_cost(friday, night) == D("6.00")
    # Saturday 23:00 → Sunday 02:00: no Saturday window, so the default price
    saturday = steady(datetime(2026, 5, 9, 21), 3.0, 10.0)
    assert charge_cost(saturday, night) == D("12.00")
    # Thursday 23:00 → Friday 01:00: not Thursday's night, and Friday's starts at 22:00
    thursday = steady(datetime(2026, 5, 7, 21), 2.0, 10.0)
    assert charge_cost(thursday, night) == D("8.00")


def test_a_day_window_ending_at_midnight() -> None:
    billing = tou("sun 00:00-24:00 0.10", default="0.40")
    # Sunday 23:00 → Monday 01:00 local: one hour each side of midnight
    facts = steady(datetime(2026, 5, 10, 21), 2.0, 10.0)
    assert charge_cost(facts, billing) == D("5.00")


def test_spring_forward() -> None:
    # 2026-03-29 03:00–06:00 UTC = 05:00–08:00 CEST; the night rate ends 06:00 local =
    # 04:00 UTC (with a fixed CET offset it would wrongly end at 05:00 UTC)
    facts = steady(datetime(2026, 3, 29, 3), 3.0, 10.0)
    assert charge_cost(facts, tou("* 22:00-06:00 0.20", default="0.40")) == D("10.00")


def test_fall_back() -> None:
    # 2026-10-25 03:00–07:00 UTC = 04:00–08:00 CET; night ends 06:00 CET = 05:00 UTC
    facts = steady(datetime(2026, 10, 25, 3), 4.0, 10.0)
    assert charge_cost(facts, tou("* 22:00-06:00 0.20", default="0.40")) == D("12.00")


def test_the_repeated_hour_is_priced_twice() -> None:
    # 00:00–02:00 UTC on 2026-10-25 = 02:00 CEST … 02:00 CET … 03:00 CET: two hours, both
    # inside a 02:00–03:00 window (the hour happens twice)
    facts = steady(datetime(2026, 10, 25, 0), 2.0, 10.0)
    assert charge_cost(facts, tou("* 02:00-03:00 0.10", default="0.40")) == D("2.00")


def test_the_skipped_hour_is_never_priced() -> None:
    # 2026-03-29 00:30–01:30 UTC = 01:30 CET → 03:30 CEST; a 02:00–03:00 window never occurs
    facts = steady(datetime(2026, 3, 29, 0, 30), 1.0, 10.0)
    assert charge_cost(facts, tou("* 02:00-03:00 0.10", default="0.40")) == D("4.00")


def test_seasons() -> None:
    billing = tou("06-01..09-30 * 10:00-16:00 0.05", default="0.30")
    july_noon = steady(datetime(2026, 7, 15, 10), 1.0, 10.0)
    october_noon = steady(datetime(2026, 10, 15, 10), 1.0, 10.0)
    assert charge_cost(july_noon, billing) == D("0.50")
    assert charge_cost(october_noon, billing) == D("3.00")
    winter = tou("11-01..02-28 * 00:00-24:00 0.50", default="0.30")  # wraps the year
    january = steady(datetime(2026, 1, 10, 10), 1.0, 10.0)
    assert charge_cost(january, winter) == D("5.00")
    assert charge_cost(july_noon, winter) == D("3.00")


def test_first_matching_window_wins() -> None:
    billing = tou("sat,sun 00:00-24:00 0.15", "* 00:00-24:00 0.30", default=None)
    saturday = steady(datetime(2026, 5, 9, 10), 1.0, 10.0)
    monday = steady(datetime(2026, 5, 11, 10), 1.0, 10.0)
    assert charge_cost(saturday, billing) == D("1.50")
    assert charge_cost(monday, billing) == D("3.00")


def test_per_minute_time_of_use_with_session_fee() -> None:
    facts = steady(datetime(2026, 5, 4, 19, 30), 1.0, 7.0)  # 21:30–22:30 local
    billing = tou("mon-fri 22:00-06:00 0.10", default="0.30", per="per_minute")
    billing = Billing("per_minute", None, D("2"), billing.tariff, BERLIN)
    assert charge_cost(facts, billing) == D("14.00")  # 30 × 0.30 + 30 × 0.10 + 2


def test_unpriced_time_makes_the_cost_unknown() -> None:
    facts = steady(datetime(2026, 5, 4, 19), 2.0, 11.0)  # crosses into the night window
    no_default = tou("mon-fri 22:00-06:00 0.20", default=None)
    assert charge_cost(facts, no_default) is None
    # …but the geofence's flat price stands in for the tariff's default
    with_flat = Billing("per_kwh", D("0.40"), None, no_default.tariff, BERLIN)
    assert charge_cost(facts, with_flat) == D("6.60")


def test_no_power_readings_fall_back_to_energy_added() -> None:
    start = datetime(2026, 5, 4, 19)
    samples = tuple(
        ChargeSample(start + timedelta(minutes=i), charge_energy_added=i * 0.1, charger_power=0)
        for i in range(121)
    )
    facts = ChargeFacts(start, samples[-1].date, 12.0, None, 120, samples=samples)
    assert charge_cost(facts, tou("mon-fri 22:00-06:00 0.20", default="0.40")) == D("3.60")


def test_price_spans_merge_equal_prices() -> None:
    tariff = Tariff("EUR", windows_of(["* 22:00-06:00 0.20"]), D("0.40"))
    spans = price_spans(tariff, datetime(2026, 5, 4, 12), datetime(2026, 5, 5, 12), zone=BERLIN)
    assert [(s.start.hour, s.end.hour, s.price) for s in spans] == [
        (12, 20, D("0.40")),
        (20, 4, D("0.20")),
        (4, 12, D("0.40")),
    ]


# --- the written form -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "mon-fri 22:00-06:00 0.21",
        "* 00:00-24:00 0.3",
        "sat,sun 10:00-16:00 0.1",
        "06-01..09-30 mon,wed,fri-sun 11:00-15:00 0.05",
        "fri-mon 00:00-07:30 0",
    ],
)
def test_windows_round_trip(text: str) -> None:
    window = parse_window(text)
    assert parse_window(format_window(window)) == window


def test_day_ranges() -> None:
    assert parse_window("fri-mon 00:00-01:00 1").weekdays == 0b1110001
    assert parse_window("* 00:00-01:00 1").weekdays == EVERY_DAY


@pytest.mark.parametrize(
    "text",
    [
        "",
        "mon-fri 22:00 0.2",
        "xyz 22:00-06:00 0.2",
        "mon 25:00-06:00 0.2",
        "mon 22:00-06:60 0.2",
        "mon 22:00-06:00 -1",
        "mon 22:00-06:00 cheap",
        "13-01..02-01 mon 22:00-06:00 0.2",
    ],
)
def test_bad_windows(text: str) -> None:
    with pytest.raises(TariffError):
        parse_window(text)


def test_bad_tariffs() -> None:
    with pytest.raises(TariffError):
        Tariff("euro")
    with pytest.raises(TariffError):
        Tariff("EUR", time_zone="Mars/Olympus")
