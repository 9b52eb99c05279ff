"""The reads that moved into SQL equal the per-row computations they replaced (both databases).

Seeded history of two cars over several weeks (a DST change included); windows: everything,
one car, a span of days. The oracle is :mod:`tests.web._reference`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from tests.web import _reference as ref

from fleetlog.web.reads import battery, efficiency, idle, localtime, spending, statistics, timeline
from fleetlog.web.seed import seed
from fleetlog.web.window import Window

END = datetime(2026, 11, 20, 12, 0)  # the seeded weeks span the end of summer time


@pytest.fixture
def history(migrated_engine: sa.Engine) -> Iterator[sa.Engine]:
    seed(migrated_engine, cars=2, days=40, seed=11, end=END)
    yield migrated_engine


def _windows(tz: ZoneInfo) -> list[Window]:
    return [
        Window(None, None, None, tz),
        Window(1, None, None, tz),
        Window(2, date(2026, 10, 20), date(2026, 11, 5), tz),
    ]


def same(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), (path, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, (path, a, b)
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (path, a, b)
    else:
        assert a == b, (path, a, b)


ZONES = ("Europe/Berlin", "America/Sao_Paulo", "UTC")


@pytest.mark.parametrize("zone", ZONES)
def test_statistics_and_costs_per_local_period(history: sa.Engine, zone: str) -> None:
    tz = ZoneInfo(zone)
    with history.connect() as conn:
        for window in _windows(tz):
            for period in statistics.PERIODS:
                for preferred in ("rated", "ideal"):
                    got = statistics.statistics(conn, window, preferred, period)
                    same(ref.statistics_reference(conn, window, preferred, period), got)
                    assert got
            same(
                ref.charging_costs_reference(conn, window),
                spending.charging_costs(conn, window),
            )


def test_local_day_follows_the_zone_across_changes() -> None:
    tz = ZoneInfo("Europe/Berlin")
    spans = localtime.offset_spans(tz, datetime(2024, 1, 1), datetime(2025, 12, 31))
    assert [(at, off) for at, off in spans[1:3]] == [
        (datetime(2024, 3, 31, 1, 0), 7200),
        (datetime(2024, 10, 27, 1, 0), 3600),
    ]
    assert len(spans) == 5 and spans[0][1] == 3600


@pytest.mark.parametrize("preferred", ["rated", "ideal"])
def test_vampire_drain(history: sa.Engine, preferred: str) -> None:
    with history.connect() as conn:
        for window in _windows(ZoneInfo("Europe/Berlin")):
            got = idle.vampire_drain(conn, window, preferred)
            same(ref.vampire_drain_reference(conn, window, preferred), got)
        assert got["periods"]


def test_vampire_chart_bars_weigh_by_hours() -> None:
    start = datetime(2026, 1, 1)
    periods = [
        {
            "start_date": start + timedelta(hours=10 * i),
            "duration_h": 4.0 + i % 3,
            "range_lost_km": 1.0 + i % 2,
        }
        for i in range(10)
    ]
    assert idle.chart_bars(periods, max_bars=10) is periods
    bars = idle.chart_bars(periods, max_bars=5)
    assert len(bars) == 5
    first = periods[:2]
    assert bars[0]["range_lost_per_hour_km"] == pytest.approx(
        sum(p["range_lost_km"] for p in first) / sum(p["duration_h"] for p in first)
    )


class _Frozen(datetime):
    @classmethod
    def utcnow(cls) -> datetime:  # type: ignore[override]
        return datetime(2026, 11, 20, 12, 0)


@pytest.mark.parametrize("limit", [2000, 60, 7])
def test_timeline_newest_segments(
    history: sa.Engine, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    monkeypatch.setattr(timeline, "datetime", _Frozen)
    monkeypatch.setattr(ref, "datetime", _Frozen)
    # Short first spans, so the growing build is exercised on a few weeks of history.
    monkeypatch.setattr(timeline, "FIRST_SPAN", timedelta(days=1))
    with history.connect() as conn:
        for window in _windows(ZoneInfo("Europe/Berlin")):
            got = timeline.timeline(conn, window, limit=limit)
            same(ref.timeline_reference(conn, window, limit=limit), got)
            assert 0 < len(got) <= limit


@pytest.mark.parametrize("preferred", ["rated", "ideal"])
def test_efficiency(history: sa.Engine, preferred: str) -> None:
    with history.connect() as conn:
        for window in _windows(ZoneInfo("Europe/Berlin")):
            got = efficiency.efficiency(conn, window, preferred)
            same(ref.efficiency_reference(conn, window, preferred), got)
            sampled = efficiency.efficiency(conn, window, preferred, scatter_max=10)
            assert 5 <= len(sampled["drives"]) <= 10
            assert {k: v for k, v in sampled.items() if k != "drives"} == {
                k: v for k, v in got.items() if k != "drives"
            }
            assert all(p in got["drives"] for p in sampled["drives"])


def test_charge_level_buckets_hold_the_extremes(history: sa.Engine) -> None:
    with history.connect() as conn:
        window = Window(1, None, None, ZoneInfo("Europe/Berlin"))
        points = battery.charge_levels(conn, window)
        assert battery.charge_level_chart(conn, window, max_points=10_000) == {"points": points}
        chart = battery.charge_level_chart(conn, window, max_points=40)
        buckets = chart["buckets"]
        assert 1 < len(buckets) <= 20
        levels = [p["battery_level"] for p in points]
        assert min(b["min_level"] for b in buckets) == min(levels)
        assert max(b["max_level"] for b in buckets) == max(levels)
        dates = [b["date"] for b in buckets]
        assert dates == sorted(dates)
